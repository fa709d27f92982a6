// Our UA over TCP, TLS, WS and WSS against real peers (harness proven by
// transports.selftest.test.js): it registers at Kamailio over each transport, a PJSIP call
// reaches it through Kamailio over the connection it opened (as behind NAT), and a tone goes each
// way; it calls out over the same connection. TLS: a server certificate from an unknown CA, for
// another name, or expired fails start() and the registration with a message that says why;
// `tls.serverName` and `tls.verify: false` do what they say; PJSIP is the direct peer over TLS in
// both directions with a tone each way.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const fs = require('node:fs')
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const { makeCerts, removeCerts } = require('./helpers/certs')
const { startService, record, waitFor, disconnected } = require('./helpers/sip')
const { startKamailio } = require('./peers/kamailio')
const { startPjsua2 } = require('./peers/pjsua2')
const A = require('./helpers/audio')
const { SipService } = require('..')

const USERS = [
  { username: '1001', password: 'pw1001' },
  { username: '1002', password: 'pw1002' },
]
const US = { extension: '1001', password: 'pw1001' }

function certsFor(t) {
  const certs = makeCerts()
  t.after(() => removeCerts(certs))
  return certs
}

/** The peers a Kamailio test over `transport` needs (skips, or fails under CI=true, without). */
const needs = (t, transport) =>
  requirePeer('openssl', t) &&
  requirePeer('kamailio', t) &&
  (!['tls', 'wss'].includes(transport) || requirePeer('kamailio-tls', t)) &&
  (!['ws', 'wss'].includes(transport) || requirePeer('kamailio-websocket', t))

/** Our config for Kamailio's listener of `transport` (the shared API of issue #7). */
function towards(kam, transport, certs) {
  const base = { server: kam.host, registerExpires: 120, accounts: [US] }
  const tls = { caFile: certs.ca.cert }
  switch (transport) {
    case 'tcp':
      return { ...base, transport: 'tcp', serverPort: kam.ports.tcp }
    case 'tls':
      return { ...base, transport: 'tls', serverPort: kam.ports.tls, tls }
    case 'ws':
      return { ...base, transport: 'ws', serverPort: kam.ports.ws, websocketUrl: kam.uris.ws }
    case 'wss':
      return { ...base, transport: 'wss', serverPort: kam.ports.wss, websocketUrl: kam.uris.wss, tls }
  }
  throw new Error(transport)
}

/** Adds Kamailio's log tail to a failure. */
async function withKamLog(kam, fn) {
  try {
    await fn()
  } catch (err) {
    err.message += '\n--- kamailio log (tail):\n' + kam.log().split('\n').slice(-60).join('\n')
    throw err
  }
}

/** Each side plays a tone in turn while the other records (our recording mixes both
 * directions, so the tones must not overlap); asserts each heard the other's. */
async function tonesBothWays(t, sip, callId, pj) {
  const dir = tmpDir('transports')
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const pjRec = path.join(dir, 'pjsip-heard.wav')
  const ourRec = path.join(dir, 'we-heard.wav')
  await pj.record(pjRec)
  await sip.playTone(callId, { frequency: 1000, durationMs: 2000, level: -10 })
  await sleep(A.PLAYOUT_MS)
  await pj.stopRecord()
  await sip.record(callId, ourRec)
  await pj.playTone(440, 2000, -10)
  await pj.toneDone()
  await sleep(A.PLAYOUT_MS)
  await sip.stopRecording(callId)
  A.assertTone(A.toneCheck(pjRec), { freq: 1000, levelDb: -10, minMs: 1500, what: 'PJSIP heard our 1000 Hz' })
  A.assertTone(A.toneCheck(ourRec), { freq: 440, levelDb: -10, minMs: 1500, what: "we heard PJSIP's 440 Hz" })
}

for (const transport of ['tcp', 'tls', 'ws', 'wss']) {
  test(`over ${transport}: we register at Kamailio, a PJSIP call reaches us over our connection with a tone each way, and we call out`, { timeout: 60000 }, async (t) => {
    if (!needs(t, transport) || !requirePeer('pjsua2', t)) return
    const certs = certsFor(t)
    const kam = await startKamailio({ users: USERS, t, transports: [transport], certs: certs.server })
    await withKamLog(kam, async () => {
      const { sip, events } = await startService(t, towards(kam, transport, certs))
      const reg = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed')
      assert.equal(reg.state, 'registered', JSON.stringify(reg))
      assert.equal(sip.localAddress().transport, transport, `localAddress(): ${JSON.stringify(sip.localAddress())}`)

      const pj = await startPjsua2({ t, user: '1002', register: { registrar: kam.uri, password: 'pw1002' }, maxSeconds: 50 })
      await pj.registered()
      const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
      pj.dial(`sip:1001@127.0.0.1:${kam.port}`)
      const inc = await incoming
      // Kamailio sent it to the source of our connection, not to a Contact it would dial anew
      const relayed = kam.log().match(/relay INVITE to \S+ via (\S+)/)
      assert.ok(relayed && relayed[1] !== '<null>', `INVITE relayed over our connection: ${relayed && relayed[0]}`)
      await sip.answer(inc.callId)
      await waitFor(sip, events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed')
      await pj.established()
      await tonesBothWays(t, sip, inc.callId, pj)
      await sip.hangup(inc.callId)
      await disconnected(sip, events, inc.callId)
      await pj.waitEvent('call_state', (e) => e.state === 'disconnected')

      const from = pj.events.length
      const out = await sip.makeCall('1001', '1002')
      await pj.waitEvent('incoming', () => true, 10000, from)
      pj.cmd('answer', 200)
      await waitFor(sip, events, 'call_state', (e) => e.callId === out.id && e.state === 'confirmed')
      await sip.hangup(out.id)
      await disconnected(sip, events, out.id)
      await sip.stop()
      assert.equal(events.filter((e) => e.name === 'registration').pop().state, 'unregistered')
    })
  })
}

for (const transport of ['tcp', 'tls']) {
  test(`over ${transport}: Kamailio killed and restarted, we reconnect, re-register and take a new call`, { timeout: 90000 }, async (t) => {
    if (!needs(t, transport) || !requirePeer('pjsua2', t)) return
    const certs = certsFor(t)
    const kam = await startKamailio({ users: USERS, t, transports: [transport], certs: certs.server })
    await withKamLog(kam, async () => {
      const { sip, events } = await startService(t, towards(kam, transport, certs))
      const transportEvents = []
      sip.on('transport', (e) => transportEvents.push(e))
      await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
      const before = events.length
      await kam.restart({ kill: true, downMs: 500 })
      // our connection dropped: we say so, dial again with back-off and register anew
      const again = await waitFor(sip, events.slice(before), 'registration', (e) => e.state === 'registered', 60000)
      assert.equal(again.code, 200)
      assert.ok(
        transportEvents.some((e) => e.state === 'disconnected' || e.state === 'reconnecting'),
        `a transport event told of the drop: ${JSON.stringify(transportEvents)}`,
      )
      assert.equal(transportEvents.filter((e) => e.state === 'connected').pop()?.transport, transport)

      const pj = await startPjsua2({ t, user: '1002', register: { registrar: kam.uri, password: 'pw1002' }, maxSeconds: 30 })
      await pj.registered()
      const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
      pj.dial(`sip:1001@127.0.0.1:${kam.port}`)
      const inc = await incoming
      await sip.answer(inc.callId)
      await waitFor(sip, events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed')
      await sip.hangup(inc.callId)
      await disconnected(sip, events, inc.callId)
    })
  })
}

test('wss from the settings rows (pbx_use_websocket, pbx_websocket_url) registers at Kamailio', { timeout: 30000 }, async (t) => {
  if (!needs(t, 'wss')) return
  const certs = certsFor(t)
  const kam = await startKamailio({ users: USERS, t, transports: ['wss'], certs: certs.server })
  const sip = SipService.fromSettings(
    { pbx_server: kam.host, pbx_port: kam.port, pbx_transport: 'UDP', pbx_use_websocket: 1, pbx_websocket_url: kam.uris.wss },
    [{ pbx_extension: '1001', pbx_password: 'pw1001' }],
    { bindAddress: '127.0.0.1', localPort: 0, tls: { caFile: certs.ca.cert } },
  )
  const events = record(sip)
  await sip.start()
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  const reg = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed')
  assert.equal(reg.state, 'registered', JSON.stringify(reg))
  assert.equal(sip.localAddress().transport, 'wss')
})

for (const [which, why] of [
  ['unknown', /unknown issuer/],
  ['wrongName', /name mismatch \(certificate is for wrong\.example\.test/],
  ['expired', /certificate expired/],
]) {
  test(`TLS: a server certificate that does not verify (${which}) fails start() and the registration, saying ${why.source}`, { timeout: 30000 }, async (t) => {
    if (!needs(t, 'tls')) return
    const certs = certsFor(t)
    const kam = await startKamailio({ users: USERS, t, transports: ['tls'], certs: certs[which] })
    const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, ...towards(kam, 'tls', certs) })
    const events = record(sip)
    t.after(() => (sip.isRunning ? sip.stop() : undefined))
    await assert.rejects(sip.start(), (e) => why.test(e.message) && e.message.includes('127.0.0.1'), 'start() rejects naming the server and why')
    const failed = await waitFor(sip, events, 'registration', (e) => e.state === 'failed')
    assert.match(failed.reason, why, JSON.stringify(failed))
  })
}

test('WSS: a server certificate of an unknown CA fails start() and the registration, saying unknown issuer', { timeout: 30000 }, async (t) => {
  if (!needs(t, 'wss')) return
  const certs = certsFor(t)
  const kam = await startKamailio({ users: USERS, t, transports: ['wss'], certs: certs.unknown })
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, ...towards(kam, 'wss', certs) })
  const events = record(sip)
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  await assert.rejects(sip.start(), (e) => /unknown issuer/.test(e.message) && e.message.includes('127.0.0.1'))
  const failed = await waitFor(sip, events, 'registration', (e) => e.state === 'failed')
  assert.match(failed.reason, /unknown issuer/, JSON.stringify(failed))
})

test('TLS: tls.serverName is what the certificate is checked against when we dial an address', { timeout: 30000 }, async (t) => {
  if (!needs(t, 'tls')) return
  const certs = certsFor(t)
  const kam = await startKamailio({ users: USERS, t, transports: ['tls'], certs: certs.wrongName })
  const cfg = towards(kam, 'tls', certs)
  const { sip, events } = await startService(t, { ...cfg, tls: { ...cfg.tls, serverName: 'wrong.example.test' } })
  const reg = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed')
  assert.equal(reg.state, 'registered', JSON.stringify(reg))
})

test('TLS: verify: false accepts a certificate of an unknown CA', { timeout: 30000 }, async (t) => {
  if (!needs(t, 'tls')) return
  const certs = certsFor(t)
  const kam = await startKamailio({ users: USERS, t, transports: ['tls'], certs: certs.unknown })
  const { sip, events } = await startService(t, { ...towards(kam, 'tls', certs), tls: { verify: false } })
  const reg = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed')
  assert.equal(reg.state, 'registered', JSON.stringify(reg))
})

for (const direction of ['outgoing', 'incoming']) {
  test(`PJSIP as the direct peer over TLS, ${direction === 'outgoing' ? 'we call it' : 'it calls us'}: a tone each way`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('openssl', t) || !requirePeer('pjsua2', t)) return
    const certs = certsFor(t)
    // both ends verify each other's server certificate; each listens with certs.server
    const tls = { caFile: certs.ca.cert, certFile: certs.server.cert, keyFile: certs.server.key }
    const { sip, events, port } = await startService(t, { transport: 'tls', tls, accounts: [{ extension: '7779' }] })
    const pj = await startPjsua2({
      t,
      transport: 'tls',
      autoAnswer: true,
      tls: { caFile: certs.ca.cert, certFile: certs.server.cert, keyFile: certs.server.key, verifyServer: true },
      maxSeconds: 50,
    })
    let callId
    if (direction === 'outgoing') {
      callId = (await sip.makeCall('7779', pj.uri)).id
    } else {
      const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
      pj.dial(`sip:7779@127.0.0.1:${port};transport=tls`)
      callId = (await incoming).callId
      await sip.answer(callId)
    }
    await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed', 10000)
    await pj.established()
    await tonesBothWays(t, sip, callId, pj)
    await sip.hangup(callId)
    await disconnected(sip, events, callId)
  })
}
