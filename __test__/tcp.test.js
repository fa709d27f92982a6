// SIP over TCP (RFC 3261 §18) against a PBX whose bytes the test writes itself (peers/raw-tcp.js):
// registration over the connection we dial, an INVITE from the PBX over that same connection,
// framing (a body split across segments, two messages in one segment, whitespace before the
// colon of Content-Length), bad input (a 400 for a framed bad request, a garbage connection
// closed alone), reconnect and re-register after the PBX closes, a dead keep-alive, and a
// refused connect that fails at once, 100 times without leaking descriptors; sipp over TCP
// (-t t1) calling our TCP listener.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { startRawTcp, reply, connect, Framer } = require('./peers/raw-tcp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { startSipp, describeSipp } = require('./peers/sipp')
const { SipService } = require('..')
const { freePort, requirePeer } = require('./helpers/process')
const { until, sleep } = require('./helpers/wait')

const ACCOUNT = { extension: '7779', password: 'tcp-secret-7779' }

function tcpService(t, peer, extra = {}) {
  return startService(t, { server: peer.host, serverPort: peer.port, transport: 'tcp', accounts: [ACCOUNT], ...extra })
}

/** The transport events recorded so far (a live view). */
function transportEvents(events) {
  return {
    get list() {
      return events.filter((e) => e.name === 'transport')
    },
  }
}

const SDP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n')

function invite(to, callId, { clHeader = 'Content-Length: ' } = {}) {
  const head = [
    `INVITE ${to} SIP/2.0`,
    'Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-' + callId,
    'From: <sip:1000@127.0.0.1>;tag=pbx-' + callId,
    'To: <sip:7779@127.0.0.1>',
    'Call-ID: ' + callId,
    'CSeq: 1 INVITE',
    'Contact: <sip:1000@127.0.0.1:5999;transport=tcp>',
    'Max-Forwards: 70',
    'Content-Type: application/sdp',
    `${clHeader}${Buffer.byteLength(SDP)}`,
  ].join('\r\n')
  return `${head}\r\n\r\n${SDP}`
}

function options(callId) {
  return [
    'OPTIONS sip:7779@127.0.0.1 SIP/2.0',
    'Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-' + callId,
    'From: <sip:1000@127.0.0.1>;tag=o-' + callId,
    'To: <sip:7779@127.0.0.1>',
    'Call-ID: ' + callId,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n')
}

test('TCP: registers over the connection it dials; the PBX calls in over it; framing holds', { timeout: 60000 }, async (t) => {
  const peer = await startRawTcp({ t })
  const { sip, events } = await tcpService(t, peer)
  const tr = transportEvents(events)
  const reg = await peer.expect((m) => m.method === 'REGISTER', 'a REGISTER over TCP')
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  const conn = reg.conn
  // Via and Contact name TCP and the port of the connection we opened (the PBX reaches us there).
  assert.match(reg.get('via'), /^SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;/)
  const ourPort = conn.socket.remotePort
  assert.match(reg.get('contact'), new RegExp(`<sip:7779@127\\.0\\.0\\.1:${ourPort};transport=tcp>`, "i"))
  assert.deepEqual(
    tr.list.map((e) => e.state),
    ['connecting', 'connected'],
  )
  assert.equal(tr.list[1].remote, `127.0.0.1:${peer.port}`)
  const addrs = sip.localAddresses()
  assert.deepEqual(addrs.map((a) => a.transport), ['udp', 'tcp'])
  assert.equal(sip.localAddress().transport, 'tcp')
  // sips: needs TLS on every hop: refused on a TCP endpoint rather than sent in the clear.
  await assert.rejects(sip.makeCall('7779', 'sips:1000@127.0.0.1'), /sips: URI, which needs transport tls/)

  // An INVITE over our connection, split inside its body, with a space before the colon.
  const inv = Buffer.from(invite(`sip:7779@127.0.0.1:${ourPort};transport=tcp`, 'in-1', { clHeader: 'Content-Length : ' }))
  const cut = inv.length - 20
  conn.socket.write(inv.subarray(0, cut))
  await sleep(100)
  conn.socket.write(inv.subarray(cut))
  const call = await waitFor(sip, events, 'incoming_call', () => true, 8000)
  assert.equal(call.fromUser, '1000')
  const ringing = await peer.expect((m) => m.status === 180 && m.get('call-id') === 'in-1', '180 over our connection')
  assert.equal(ringing.conn, conn, 'the 180 came over the connection we opened')
  await sip.reject(call.callId, 486)
  const busy = await peer.expect((m) => m.status === 486 && m.get('call-id') === 'in-1', '486')
  assert.equal(busy.conn, conn)
  conn.socket.write(
    [
      `ACK sip:7779@127.0.0.1:${ourPort};transport=tcp SIP/2.0`,
      'Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-in-1',
      'From: <sip:1000@127.0.0.1>;tag=pbx-in-1',
      `To: ${busy.get('to')}`,
      'Call-ID: in-1',
      'CSeq: 1 ACK',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  )

  // Two requests in one segment, with a CRLF ping between: both answered, the ping ponged.
  const before = peer.messages.length
  conn.socket.write(options('two-a') + '\r\n\r\n' + options('two-b'))
  await peer.expect((m) => m.status === 200 && m.get('call-id') === 'two-a', '200 to the first OPTIONS', 5000, before)
  await peer.expect((m) => m.status === 200 && m.get('call-id') === 'two-b', '200 to the second OPTIONS', 5000, before)

  // A framed request with a broken CSeq: answered 400 by the RFC 3261 §8.2 checks, counted as
  // refused (not malformed: its framing and syntax are fine), the connection goes on.
  const malformed = sip.counters().malformedMessages
  const refused = sip.counters().refusedRequests
  conn.socket.write(options('bad-1').replace('CSeq: 1 OPTIONS', 'CSeq: x y z'))
  const bad = await peer.expect((m) => m.status === 400 && m.get('call-id') === 'bad-1', '400 to the broken CSeq')
  assert.equal(bad.conn, conn)
  assert.equal(sip.counters().refusedRequests, refused + 1)
  assert.equal(sip.counters().malformedMessages, malformed)

  // A garbage stream on another connection to our TCP listener: that one is closed and counted ...
  const tcpPort = addrs.find((a) => a.transport === 'tcp').port
  const garbage = await connect(tcpPort)
  const garbageClosed = new Promise((resolve) => garbage.once('close', resolve))
  garbage.on('error', () => {})
  garbage.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]))
  await garbageClosed
  assert.equal(sip.counters().malformedMessages, malformed + 1)
  // ... while a well-behaved peer connection to the listener and our PBX flow carry on.
  const other = await connect(tcpPort)
  const otherFramer = new Framer()
  const otherGot = []
  other.on('data', (d) => otherGot.push(...otherFramer.push(d)))
  other.write(options('other-1'))
  await until(() => otherGot.find((m) => m.status === 200), 5000, '200 on the second listener connection')
  other.destroy()
  const n = peer.messages.length
  conn.socket.write(options('after-garbage'))
  await peer.expect((m) => m.status === 200 && m.get('call-id') === 'after-garbage', 'the PBX flow still answers', 5000, n)
  assert.equal(conn.closed, false)
  assert.equal(peer.conns.length, 1, 'one connection to the PBX all along')
})

test('TCP: the PBX closes the connection: we reconnect and re-register at once', { timeout: 30000 }, async (t) => {
  const peer = await startRawTcp({ t })
  const { sip, events } = await tcpService(t, peer, { registerExpires: 3600 })
  const tr = transportEvents(events)
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  const first = peer.messages.filter((m) => m.method === 'REGISTER').length
  peer.conns[0].socket.destroy()
  const started = Date.now()
  await until(() => peer.conns.length === 2, 5000, 'a second connection')
  const again = await peer.expect((m) => m.method === 'REGISTER' && m.conn === peer.conns[1], 'a REGISTER on the new connection')
  assert.ok(Date.now() - started < 4000, 're-registered well before the 3600 s refresh')
  assert.equal(peer.messages.filter((m) => m.method === 'REGISTER').length, first + 1)
  assert.match(again.get('contact'), new RegExp(`:${peer.conns[1].socket.remotePort};transport=tcp>`, "i"))
  await until(() => tr.list.filter((e) => e.state === 'connected').length >= 2, 5000, 'connected again')
  const states = tr.list.map((e) => e.state)
  assert.deepEqual(states.slice(0, 5), ['connecting', 'connected', 'disconnected', 'reconnecting', 'connected'], JSON.stringify(tr.list))
  assert.equal(tr.list[2].reason, 'closed by the peer')
})

test('TCP: a server that stops answering keep-alive pings is taken as dead and re-dialled', { timeout: 30000 }, async (t) => {
  const peer = await startRawTcp({ t })
  const { sip, events } = await tcpService(t, peer, { keepAliveIntervalS: 1, registerExpires: 3600 })
  const tr = transportEvents(events)
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  await until(() => peer.conns[0].pings >= 2, 5000, 'two CRLF pings')
  peer.pong = false
  const down = await until(() => tr.list.find((e) => e.state === 'disconnected'), 6000, 'the flow declared dead')
  assert.equal(down.reason, 'no keep-alive pong')
  peer.pong = true
  await peer.expect((m) => m.method === 'REGISTER' && m.conn === peer.conns[1], 'a REGISTER on the new connection')
})

test('TCP: a refused connect fails the registration at once with the cause; 100 of them leak nothing', { timeout: 120000 }, async (t) => {
  const port = await freePort() // nothing listens on TCP there
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: port,
    transport: 'tcp',
    accounts: [ACCOUNT],
  })
  const tr = transportEvents(events)
  const started = Date.now()
  const failed = await waitFor(sip, events, 'registration', (e) => e.state === 'failed', 5000)
  assert.ok(Date.now() - started < 2000, `failed fast (${Date.now() - started} ms), not after Timer B`)
  assert.equal(failed.code, 503)
  assert.match(failed.reason, new RegExp(`cannot connect to TCP 127\\.0\\.0\\.1:${port}: connection refused`))
  await until(() => tr.list.find((e) => e.state === 'disconnected'), 2000, 'a transport event')
  assert.match(tr.list.find((e) => e.state === 'disconnected').reason, /connection refused/)
  await assert.rejects(sip.makeCall('7779', '1000'), /cannot connect to TCP .*connection refused/)
  await sip.stop()

  const fds = () => fs.readdirSync('/proc/self/fd').length
  const cycle = async () => {
    const s = new SipService({ bindAddress: '127.0.0.1', localPort: 0, server: '127.0.0.1', serverPort: port, transport: 'tcp', accounts: [ACCOUNT] })
    const failedOnce = new Promise((resolve) => s.on('registration', (e) => e.state === 'failed' && resolve()))
    await s.start()
    await failedOnce
    await s.stop()
  }
  await cycle() // warm up the runtime's own descriptors
  const before = fds()
  for (let i = 0; i < 100; i++) await cycle()
  await sleep(200)
  const after = fds()
  t.diagnostic(`open descriptors ${before} -> ${after} after 100 refused connects`)
  assert.ok(after <= before + 2, `open descriptors ${before} -> ${after} after 100 refused connects`)
})

test('TCP listener: sipp (-t t1) calls us over its own TCP connection; we answer, it hangs up', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events } = await startService(t, { transport: 'tcp', accounts: [{ extension: '7779' }] })
  const tcpPort = sip.localAddresses().find((a) => a.transport === 'tcp').port
  const uac = await startSipp({ scenario: 'uac_call', transport: 'tcp', remote: `127.0.0.1:${tcpPort}`, durationMs: 300, t })
  const inc = await waitFor(sip, events, 'incoming_call', () => true, 8000)
  await sip.answer(inc.callId)
  await disconnected(sip, events, inc.callId)
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.match(r.messages, /INVITE sip:7779@127\.0\.0\.1:\d+ SIP\/2\.0[\s\S]*Via: SIP\/2\.0\/TCP/)
})
