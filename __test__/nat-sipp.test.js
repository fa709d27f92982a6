// NAT behaviour on loopback, against sipp. Contact rewrite by rport (RFC 3581): registrars that
// answer as if we sat behind a NAT (Via received=203.0.113.5;rport=40000): we learn the public
// address from a 2xx or a 401, re-register at once with it (removing the old binding in the same
// REGISTER), and keep using it (Via sent-by, the un-REGISTER); contactRewrite: false leaves the
// Contact alone. A dead STUN server holds nothing up for long. The NAT for real (namespaces,
// nftables, Kamailio, stund) is nat-netns.test.js.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor } = require('./helpers/sip')

const account = { extension: '7779', password: 'secret' }
const publicEvents = (events) => events.filter((e) => e.name === 'public_address')
const registered = (events) => events.filter((e) => e.name === 'registration' && e.state === 'registered')

test('a 2xx showing received/rport: public_address event, immediate re-REGISTER with the public Contact, old binding removed', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_rport', t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    registerExpires: 300,
    keepAliveIntervalS: 0, // sipp would take a CRLF for an unexpected message
    accounts: [account],
  })
  const ev = await waitFor(sip, events, 'public_address')
  assert.deepEqual({ address: ev.address, port: ev.port, source: ev.source }, { address: '203.0.113.5', port: 40000, source: 'rport' })
  const started = Date.now()
  await waitFor(sip, events, 'registration', () => registered(events).length >= 2, 3000).catch(async (e) => {
    await reg.kill()
    throw new Error(`${e.message}\n${describeSipp(await reg.done)}`)
  })
  assert.ok(Date.now() - started < 2000, 'the re-REGISTER follows at once, not at the refresh')
  assert.equal(publicEvents(events).length, 1, `one change, one event: ${JSON.stringify(publicEvents(events))}`)
  await sip.stop()
  const r = await reg.done
  assert.equal(r.code, 0, 'registrar saw public Contact + expires=0 for the old one + Via sent-by public, then the un-REGISTER of the public one: ' + describeSipp(r))
})

test('a 401 showing received/rport: the authenticated REGISTER already carries the public Contact', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_rport_401', t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    keepAliveIntervalS: 0,
    stopGraceMs: 200,
    accounts: [account],
  })
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  const r = await reg.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.equal(registered(events).length, 1, 'no second REGISTER needed: the Contact was right at once')
  assert.deepEqual(publicEvents(events).map((e) => `${e.address}:${e.port}/${e.source}`), ['203.0.113.5:40000/rport'])
  await sip.stop()
})

test('contactRewrite: false: the Contact stays, no re-REGISTER, no public_address event', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_rport_ignored', t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    contactRewrite: false,
    keepAliveIntervalS: 0,
    stopGraceMs: 200,
    accounts: [account],
  })
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  const r = await reg.done // a second REGISTER within its 2.5 s pause would fail it
  assert.equal(r.code, 0, describeSipp(r))
  await sleep(100)
  assert.equal(publicEvents(events).length, 0, JSON.stringify(publicEvents(events)))
  await sip.stop()
})

test('two accounts: the public address one learned is the endpoint\'s, the other re-registers with it at once', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_rport_two', calls: 2, t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    keepAliveIntervalS: 0,
    stopGraceMs: 200,
    accounts: [{ extension: '7001' }, { extension: '7002' }],
  })
  const r = await reg.done // each Call-ID: 200, then a REGISTER with the public Contact + the old one removed
  assert.equal(r.code, 0, describeSipp(r))
  assert.equal(r.stats.successful, 2, describeSipp(r))
  for (const account of ['7001', '7002']) {
    const n = events.filter((e) => e.name === 'registration' && e.state === 'registered' && e.account === account).length
    assert.equal(n, 2, `${account} registered twice (private, then public): ${JSON.stringify(events)}`)
  }
  assert.equal(publicEvents(events).length, 1, JSON.stringify(publicEvents(events)))
  await sip.stop()
})

test('a STUN server that never answers: start() and makeCall() are held up about 1 s at most, an error event names it, SDP falls back to the local address', async (t) => {
  if (!requirePeer('sipp', t)) return
  const dgram = require('node:dgram')
  const silent = dgram.createSocket('udp4')
  let requests = 0
  silent.on('message', () => requests++) // a STUN server that hears and never answers
  await new Promise((resolve) => silent.bind(0, '127.0.0.1', resolve))
  t.after(() => silent.close())
  const stunServer = `127.0.0.1:${silent.address().port}`
  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 20000 })
  const t0 = Date.now()
  const { sip, events } = await startService(t, { stunServer })
  const startMs = Date.now() - t0
  assert.ok(startMs < 2500, `start() took ${startMs} ms`)
  // Emitted before start() resolves, but the event and the promise reach JS by different
  // queues: wait for it rather than expect it first.
  const err = await waitFor(sip, events, 'error', (e) => /no STUN response/.test(e.message), 2000)
  assert.ok(err.message.includes(`stunServer ${stunServer}`), JSON.stringify(events))
  const t1 = Date.now()
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  const callMs = Date.now() - t1
  assert.ok(callMs < 1500, `makeCall() took ${callMs} ms with a dead STUN server`)
  assert.ok(requests >= 4, `we asked the STUN server (SIP socket and RTP port, with retransmissions): ${requests} requests`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await sip.hangup(call.id)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.match(r.messages, /c=IN IP4 127\.0\.0\.1\r?\n/, 'our offer has the local address')
})
