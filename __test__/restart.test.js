// The PBX going away, in network namespaces (helpers/netns.js uaRouterPbx): Kamailio (registrar
// and record-routing proxy) and a PJSIP phone registered to it, our service behind a router.
//  1. Kamailio SIGKILLed mid-call: the call's media (direct to PJSIP) keeps flowing both ways,
//     our BYE through the dead proxy fails cleanly (the call ends, no crash); restarted, our
//     registration recovers and PJSIP's next call reaches us; killed again between calls, the
//     same.
//  2. The PBX unreachable (the router's port to it down, then up): registration goes failed,
//     retries back off (2, 4, 8 s ...), few events during the outage, registered once it is back.
// Short timers keep the wall time down: registerExpires 4 (refresh every 2 s), timerT1Ms 100
// (a silent transaction gives up after 6.4 s). Long form: SIP_NATIVE_LOSS_LONG=1 (a 60 s outage).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const { netnsUnavailable, uaRouterPbx, startPbx, startServiceIn, tonesBothWays } = require('./helpers/netns')
const { startKamailio } = require('./peers/kamailio')

const LONG = process.env.SIP_NATIVE_LOSS_LONG === '1'
const OUTAGE_MS = LONG ? 60000 : 15000
const US = { username: '1001', password: 'pw-1001' }
const PHONE = { username: '1002', password: 'pw-1002' }
const T1_MS = 100

function skipWithout(t) {
  if (!requirePeer('kamailio', t) || !requirePeer('pjsua2', t)) return true
  const why = netnsUnavailable(['ip'])
  if (!why) return false
  if (process.env.CI === 'true') throw new Error(why)
  t.skip(why)
  return true
}

function ourConfig(domain) {
  return {
    bindAddress: '0.0.0.0',
    localPort: 5062,
    server: domain,
    serverPort: 5060,
    registerExpires: 4,
    timerT1Ms: T1_MS,
    rtpPortMin: 30000,
    rtpPortMax: 30100,
    stopGraceMs: 2000,
    accounts: [{ extension: US.username, password: US.password }],
  }
}

const regEvents = (us, from = 0, to = Infinity) => us.events.filter((e) => e.event === 'registration' && e.at >= from && e.at <= to)

/** PJSIP calls us through Kamailio; we answer; tones both ways; PJSIP hangs up. */
async function callFromPhone(us, pj, domain, label) {
  const from = pj.events.length
  const seen = us.events.filter((e) => e.event === 'incoming_call').length
  pj.dial(`sip:${US.username}@${domain}`)
  await us.waitEvent('incoming_call', () => us.events.filter((e) => e.event === 'incoming_call').length > seen, 15000)
  const { callId } = us.events.filter((e) => e.event === 'incoming_call').pop()
  await us.call('answer', callId)
  await us.waitEvent('call_state', (e) => e.callId === callId && e.state === 'confirmed', 10000)
  await pj.waitEvent('media_active', () => true, 10000, from)
  await tonesBothWays(us, pj, callId, label)
  pj.cmd('hangup')
  await us.waitEvent('call_state', (e) => e.callId === callId && e.state === 'disconnected', 10000)
  await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 10000, from)
}

test('Kamailio killed mid-call and between calls: media keeps flowing, BYE fails cleanly, registration and calls recover', { timeout: 110000 }, async (t) => {
  if (skipWithout(t)) return
  const net = uaRouterPbx('rst')
  t.after(net.remove)
  const { ns } = net
  const { kam, pj, domain } = await startPbx(t, net, { us: US, phone: PHONE, phoneSeconds: 100 })
  const us = startServiceIn(t, ns.ua, ourConfig(domain))
  const figures = {}
  try {
    await us.waitEvent('registration', (e) => e.state === 'registered')
    // a call through Kamailio (407, record-routed), then Kamailio dies under it
    const from = pj.events.length
    const out = await us.call('makeCall', US.username, `sip:${PHONE.username}@${domain}`)
    await us.waitEvent('call_state', (e) => e.callId === out.id && e.state === 'confirmed')
    await pj.waitEvent('media_active', () => true, 10000, from)
    const killedAt = Date.now()
    await kam.kill()
    await tonesBothWays(us, pj, out.id, 'after Kamailio died mid-call')
    // our BYE follows the Record-Route to the dead proxy: it fails, the call still ends here
    const byeAt = Date.now()
    await us.call('hangup', out.id).catch((e) => (figures.hangupError = e.message))
    const gone = await us.waitEvent('call_state', (e) => e.callId === out.id && e.state === 'disconnected', 64 * T1_MS + 5000)
    figures.byeWithoutProxyMs = gone.at - byeAt
    // the call leaves the table once its BYE transaction is over (a 64·T1 timeout at the latest)
    const removedBy = Date.now() + 64 * T1_MS + 3000
    while ((await us.call('getCall', out.id)) !== null && Date.now() < removedBy) await sleep(100)
    figures.callRemovedAfterMs = Date.now() - byeAt
    assert.equal(await us.call('getCall', out.id), null, 'no call left behind')
    const failedWhileDown = regEvents(us, killedAt).filter((e) => e.state === 'failed')
    assert.ok(failedWhileDown.length > 0, `the refresh failed while Kamailio was dead: ${JSON.stringify(regEvents(us, killedAt))}`)

    // back up (its location table empty): our refresh registers again, PJSIP's next call arrives
    // (PJSIP needs no registration of its own to call: it answers Kamailio's 407)
    const upAt = Date.now()
    await kam.restart()
    const back = await us.waitEvent('registration', (e) => e.state === 'registered' && e.at > upAt, 20000)
    figures.reregisteredAfterRestartMs = back.at - upAt
    pj.cmd('hangup') // PJSIP's side of the first call: its BYE reaches us through the new Kamailio
    await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 10000, from)
    await callFromPhone(us, pj, domain, 'PJSIP calls after the restart')

    // killed between calls, down 3 s
    const restartAt = Date.now()
    await kam.restart({ kill: true, downMs: 3000 })
    const again = await us.waitEvent('registration', (e) => e.state === 'registered' && e.at > restartAt + 3000, 20000)
    figures.reregisteredAfterSecondRestartMs = again.at - restartAt - 3000
    await callFromPhone(us, pj, domain, 'PJSIP calls after a restart between calls')
    figures.registrationEvents = regEvents(us).length
    console.log(`restart: ${JSON.stringify(figures)}`)
    await us.stop()
    assert.equal(us.child.exitCode === null || us.child.exitCode === 0, true, 'our service exited cleanly')
  } catch (err) {
    err.message += `\n--- figures: ${JSON.stringify(figures)}\n--- our events:\n${us.describe()}\n--- kamailio log (tail):\n` + kam.log().split('\n').slice(-30).join('\n')
    throw err
  }
})

test(`the PBX unreachable for ${OUTAGE_MS / 1000} s: failed, retries backing off, few events, registered again once it is back`, { timeout: OUTAGE_MS + 90000 }, async (t) => {
  if (skipWithout(t)) return
  const net = uaRouterPbx('out')
  t.after(net.remove)
  const { ns, addr } = net
  const kam = await startKamailio({ users: [US], host: addr.kamailio, port: 5060, netns: ns.pbx, t, timeoutMs: OUTAGE_MS + 80000 })
  const us = startServiceIn(t, ns.ua, ourConfig(addr.kamailio))
  try {
    await us.waitEvent('registration', (e) => e.state === 'registered')
    const downAt = Date.now()
    net.pbxLink(false)
    await us.waitEvent('registration', (e) => e.state === 'failed' && e.at > downAt, 64 * T1_MS + 5000)
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)))
    const upAt = Date.now()
    net.pbxLink(true)
    // the next retry comes after at most the current back-off (and a transaction's 64·T1)
    const back = await us.waitEvent('registration', (e) => e.state === 'registered' && e.at > upAt, 300000 + 64 * T1_MS)
    const during = regEvents(us, downAt, upAt)
    // back-off: from each failure to the next attempt
    const backoffs = []
    const evs = regEvents(us, downAt, back.at)
    for (let i = 0; i + 1 < evs.length; i++) {
      if (evs[i].state === 'failed' && evs[i + 1].state === 'registering') backoffs.push(Math.round((evs[i + 1].at - evs[i].at) / 100) / 10)
    }
    const figures = {
      outageS: Math.round((upAt - downAt) / 100) / 10,
      registrationEventsDuringOutage: during.length,
      failures: during.filter((e) => e.state === 'failed').map((e) => e.code),
      backoffsS: backoffs,
      recoveredAfterLinkUpS: Math.round((back.at - upAt) / 100) / 10,
    }
    console.log(`outage: ${JSON.stringify(figures)}`)
    assert.ok(backoffs.length >= 2, `at least two retries during the outage: ${JSON.stringify(figures)}`)
    for (let i = 1; i < backoffs.length; i++) assert.ok(backoffs[i] > backoffs[i - 1], `the back-off grows: ${backoffs}`)
    assert.ok(backoffs.every((b) => b <= 300 + 1), `the back-off is bounded (5 min): ${backoffs}`)
    // no storm: each attempt is one registering and one failed event, and attempts halve in rate
    const bound = 2 * (Math.ceil(Math.log2(OUTAGE_MS / 2000)) + 3)
    assert.ok(during.length <= bound, `${during.length} registration events in a ${figures.outageS} s outage (bound ${bound})`)
    await us.stop()
  } catch (err) {
    err.message += `\n--- our events:\n${us.describe()}\n--- kamailio log (tail):\n` + kam.log().split('\n').slice(-20).join('\n')
    throw err
  }
})
