// Loss and reordering between us and the PBX, in network namespaces (helpers/netns.js
// uaRouterPbx): the router drops 20 % of the datagrams each way and reorders a quarter of the
// rest (nftables and HTB: the kernel has no netem), on
// signaling and media alike. Kamailio (registrar with digest auth, proxy with 407 for INVITEs)
// and a PJSIP phone registered to it sit behind that router. Registration and a fixed number of
// calls (both directions, hung up by either side) complete through RFC 3261 retransmissions; a
// capture on our interface (before the loss) checks every retransmission's gap against Timers
// A/E and the 2xx retransmission of §13.3.1.4; tones both ways are still recognised.
//
// Long form: SIP_NATIVE_LOSS_LONG=1 (10 calls at 30 % loss).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { netnsUnavailable, uaRouterPbx, startPbx, startServiceIn, tonesBothWays, captureSip } = require('./helpers/netns')
const { retransmissions } = require('./helpers/retransmissions')

const LONG = process.env.SIP_NATIVE_LOSS_LONG === '1'
const CALLS = LONG ? 10 : 3
const LOSS_PCT = LONG ? 30 : 20
const US = { username: '1001', password: 'pw-1001' }
const PHONE = { username: '1002', password: 'pw-1002' }
// one call: setup and teardown through retransmissions (Timer B/F is 32 s), tones of 2 × 2.3 s
const STEP_MS = 40000

/** A tone measurement in short: frequency, level, the longest unbroken stretch of it. */
const toneFigures = (r) => `${r.freq.toFixed(1)} Hz ${r.levelDb.toFixed(1)} dBFS ${Math.round(r.activeMs)} ms`

test(`${LOSS_PCT} % loss and reordering on signaling and media: REGISTER, ${CALLS} calls with tones, timers as RFC 3261 says`, { timeout: CALLS * 60000 + 60000 }, async (t) => {
  if (!requirePeer('kamailio', t) || !requirePeer('pjsua2', t)) return
  const why = netnsUnavailable(['ip', 'nft', 'python3'])
  if (why) {
    if (process.env.CI === 'true') throw new Error(why)
    return t.skip(why)
  }
  const net = uaRouterPbx('loss')
  t.after(net.remove)
  const { ns } = net
  const { kam, pj, domain } = await startPbx(t, net, { us: US, phone: PHONE, timeoutMs: CALLS * 60000 + 60000, phoneSeconds: CALLS * 60 + 50 })
  const cap = await captureSip(t, ns.ua, net.dev.ua)
  const impaired = net.impair(LOSS_PCT)

  const us = startServiceIn(t, ns.ua, {
    bindAddress: '0.0.0.0',
    localPort: 5062,
    server: domain,
    serverPort: 5060,
    registerExpires: 3600, // one REGISTER (with its challenge) in this test, not refreshes
    rtpPortMin: 30000,
    rtpPortMax: 30100,
    stopGraceMs: 3000,
    accounts: [{ extension: US.username, password: US.password }],
  })
  const done = []
  try {
    await us.waitEvent('registration', (e) => e.state === 'registered', STEP_MS)
    for (let i = 0; i < CALLS; i++) {
      const weCall = i % 2 === 0
      const from = pj.events.length
      let callId
      if (weCall) {
        const out = await us.call('makeCall', US.username, `sip:${PHONE.username}@${domain}`)
        callId = out.id
      } else {
        const seen = us.events.filter((e) => e.event === 'incoming_call').length
        pj.dial(`sip:${US.username}@${domain}`)
        await us.waitEvent('incoming_call', () => us.events.filter((e) => e.event === 'incoming_call').length > seen, STEP_MS)
        callId = us.events.filter((e) => e.event === 'incoming_call').pop().callId
        await us.call('answer', callId)
      }
      await us.waitEvent('call_state', (e) => e.callId === callId && e.state === 'confirmed', STEP_MS)
      await pj.waitEvent('media_active', () => true, STEP_MS, from)
      const label = `call ${i + 1} (${weCall ? 'we call' : 'PJSIP calls'})`
      const tones = await tonesBothWays(us, pj, callId, label, { lossy: true })
      // who hangs up alternates with the direction every other pair of calls
      const weHangUp = (i >> 1) % 2 === 0
      if (weHangUp) await us.call('hangup', callId)
      else pj.cmd('hangup')
      await us.waitEvent('call_state', (e) => e.callId === callId && e.state === 'disconnected', STEP_MS)
      await pj.waitEvent('call_state', (e) => e.state === 'disconnected', STEP_MS, from)
      done.push({ label, hangup: weHangUp ? 'we' : 'PJSIP', theyHeard: toneFigures(tones.theyHeard), weHeard: toneFigures(tones.weHeard) })
    }
    await us.stop()
  } catch (err) {
    err.message += `\n--- calls done: ${JSON.stringify(done)}\n--- our events:\n${us.describe()}\n--- kamailio log (tail):\n` + kam.log().split('\n').slice(-30).join('\n')
    throw err
  }
  await cap.stop()

  const { dropped, heldBack, passed } = net.impairCounts()
  const lossPct = (100 * dropped) / (passed + dropped)
  const ours = retransmissions(cap.packets, 'out')
  const theirs = retransmissions(cap.packets, 'in')
  const figures = {
    ...impaired,
    datagrams: passed + dropped,
    dropped,
    heldBack,
    rtpReceived: cap.rtp.packets,
    rtpReceivedOutOfOrder: cap.rtp.reordered,
    lossAppliedPct: Number(lossPct.toFixed(1)),
    sipDatagramsCaptured: cap.packets.length,
    ourMessages: ours.messages,
    ourRetransmissions: ours.copies,
    peerRetransmissionsReceived: theirs.copies,
    callsCompleted: done.length,
    calls: done,
  }
  console.log(`loss: ${JSON.stringify(figures)}`)
  for (const r of ours.resent) console.log(`loss: we resent ${r.cseq} ${r.line.slice(0, 40)}: ${r.copies} copies, gaps ${r.gaps} ms (timer ${r.expected})`)
  assert.equal(done.length, CALLS)
  // the router really dropped packets (a sanity bound on the tool, not a timing)
  assert.ok(lossPct > LOSS_PCT / 2 && lossPct < LOSS_PCT * 1.5, `loss applied ${lossPct.toFixed(1)} % (asked ${LOSS_PCT} %)`)
  assert.ok(cap.rtp.reordered > 0, `the router reordered RTP: ${JSON.stringify(cap.rtp)}`)
  assert.ok(ours.copies > 0, `with ${LOSS_PCT} % loss some of our requests or 2xx must have been resent: ${JSON.stringify(ours)}`)
  assert.ok(ours.resent.some((r) => r.expected.some((e) => e !== null)), 'a timer-driven retransmission of ours was seen')
  assert.deepEqual(ours.offTimer, [], 'every retransmission of ours follows T1 doubling (Timer A; Timer E and 2xx capped at T2)')
})
