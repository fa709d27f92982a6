// The transport harness proven without sip-native: the test certificates refused by an
// independent TLS client (node's) for the reasons the engine must give; Kamailio answering over
// every listener (UDP, TCP, TLS, WS, WSS, on 127.0.0.1 and [::1]); and two PJSIP phones that
// register at Kamailio over TCP, over TLS (verifying its certificate) and over TLS on [::1] and
// call each other through it with a tone each way, so Kamailio reaches a UA over the connection
// the UA opened. A PJSIP phone that verifies refuses a Kamailio serving an unknown CA's certificate.
// For WS/WSS there is no SIP client here but ours: a hand-written WebSocket UA (helpers/sipwire)
// registers with an unroutable Contact and a PJSIP call reaches it over its own WebSocket.
// If this fails, transports.test.js failures are about the harness, not us.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const path = require('node:path')
const net = require('node:net')
const tls = require('node:tls')
const fs = require('node:fs')
// Loads neither the addon nor the helpers that do (./helpers/sip, ./helpers/interop).
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const { makeCerts, removeCerts } = require('./helpers/certs')
const { sendOptions, openSip } = require('./helpers/sipwire')
const { startKamailio } = require('./peers/kamailio')
const { startPjsua2 } = require('./peers/pjsua2')
const { startSipp, describeSipp } = require('./peers/sipp')
const A = require('./helpers/audio')

const USERS = [
  { username: '1001', password: 'pw1001' },
  { username: '1002', password: 'pw1002' },
]

function certsFor(t) {
  if (!requirePeer('openssl', t)) return null
  const certs = makeCerts()
  t.after(() => removeCerts(certs))
  return certs
}

/** What node's TLS client says of `server` when it trusts `ca` and expects `servername`. */
async function nodeVerdict(server, ca, servername) {
  const srv = tls.createServer({ cert: fs.readFileSync(server.cert), key: fs.readFileSync(server.key) }, (s) => s.end())
  srv.on('tlsClientError', () => {})
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  try {
    return await new Promise((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port: srv.address().port, ca: fs.readFileSync(ca), servername }, () => {
        c.destroy()
        resolve('ok')
      })
      c.on('error', (e) => resolve(e.code || e.message))
    })
  } finally {
    srv.close()
  }
}

test('the test certificates: node trusts the server one for localhost and refuses the unknown-CA, wrong-name and expired ones', async (t) => {
  const certs = certsFor(t)
  if (!certs) return
  assert.equal(await nodeVerdict(certs.server, certs.ca.cert, 'localhost'), 'ok')
  assert.equal(await nodeVerdict(certs.unknown, certs.ca.cert, 'localhost'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  assert.equal(await nodeVerdict(certs.wrongName, certs.ca.cert, 'localhost'), 'ERR_TLS_CERT_ALTNAME_INVALID')
  assert.equal(await nodeVerdict(certs.expired, certs.ca.cert, 'localhost'), 'CERT_HAS_EXPIRED')
})

test('Kamailio answers OPTIONS over UDP, TCP, TLS, WS and WSS on 127.0.0.1 and [::1]; TLS without the CA is refused; killed and restarted it answers on the same ports', async (t) => {
  if (!requirePeer('kamailio-tls', t) || !requirePeer('kamailio-websocket', t)) return
  const certs = certsFor(t)
  if (!certs) return
  const kam = await startKamailio({ users: USERS, t, transports: ['tcp', 'tls', 'ws', 'wss'], certs: certs.server, ipv6: true })
  for (const transport of ['udp', 'tcp', 'tls', 'ws', 'wss']) {
    for (const host of ['127.0.0.1', '::1']) {
      const line = await sendOptions({ transport, host, port: kam.ports[transport], ca: certs.ca.cert, servername: 'localhost' })
      assert.match(line, /^SIP\/2\.0 200 /, `${transport} on ${host}`)
    }
  }
  await assert.rejects(sendOptions({ transport: 'wss', host: '127.0.0.1', port: kam.ports.wss }), /unable to verify/)
  // the WS listener is Kamailio's xhttp: a GET without the upgrade is answered 404, not 101
  const plain = await new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port: kam.ports.ws }, () => c.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
    c.setTimeout(2000, () => c.destroy(new Error('no HTTP answer')))
    c.on('data', (d) => (c.destroy(), resolve(d.toString('latin1').split('\r\n')[0])))
    c.on('error', reject)
  })
  assert.match(plain, /^HTTP\/1\.[01] 404/)

  // killed and restarted: an open connection drops, the same ports answer again
  const conn = await openSip({ transport: 'tls', host: '127.0.0.1', port: kam.ports.tls, ca: certs.ca.cert, servername: 'localhost' })
  const dropped = conn.next(() => false, 10000).catch((e) => e.message)
  await kam.restart({ kill: true })
  assert.match(await dropped, /connection closed|ECONNRESET/, 'the TLS connection dropped with Kamailio')
  for (const transport of ['udp', 'tcp', 'tls', 'ws', 'wss']) {
    assert.match(await sendOptions({ transport, host: '127.0.0.1', port: kam.ports[transport], ca: certs.ca.cert }), /^SIP\/2\.0 200 /, `${transport} after restart`)
  }
  assert.match(kam.log(), /--- restarted ---/)
})

for (const [transport, host] of [
  ['tcp', '127.0.0.1'],
  ['tls', '127.0.0.1'],
  ['tls', '::1'],
]) {
  test(`PJSIP registers at Kamailio over ${transport} on ${host} and calls PJSIP through it: a tone each way${host === '::1' ? ' (RTP on 127.0.0.1: the wheel has no IPv6 media)' : ''}`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('kamailio-tls', t) || !requirePeer('pjsua2', t)) return
    const certs = certsFor(t)
    if (!certs) return
    const kam = await startKamailio({ users: USERS, t, transports: [transport], certs: certs.server, ipv6: host === '::1' })
    const hostInUri = host.includes(':') ? `[${host}]` : host
    const registrar = `sip:${hostInUri}:${kam.ports[transport]};transport=${transport}`
    const tlsOpts = { caFile: certs.ca.cert, verifyServer: true }
    const phone = (user, autoAnswer) =>
      startPjsua2({ t, user, autoAnswer, transport, host, tls: tlsOpts, maxSeconds: 50, register: { registrar, password: `pw${user}` } })
    const a = await phone('1001', false)
    const b = await phone('1002', true)
    await a.registered()
    await b.registered()

    a.dial(`sip:1002@${hostInUri}:${kam.ports[transport]};transport=${transport}`)
    await a.established()
    await b.established()
    const dir = tmpDir('selftest-tr')
    const aRec = path.join(dir, 'a-heard.wav')
    const bRec = path.join(dir, 'b-heard.wav')
    await a.record(aRec)
    await b.record(bRec)
    await b.playTone(1000, 1500, -10)
    await a.playTone(440, 1500, -10)
    await Promise.all([a.toneDone(), b.toneDone()])
    await sleep(A.PLAYOUT_MS)
    await a.stopRecord()
    await b.stopRecord()
    A.assertTone(A.toneCheck(aRec), { freq: 1000, levelDb: -10, minMs: 1000, what: '1001 heard 1002' })
    A.assertTone(A.toneCheck(bRec), { freq: 440, levelDb: -10, minMs: 1000, what: '1002 heard 1001' })
    a.cmd('hangup')
    await b.waitEvent('call_state', (e) => e.state === 'disconnected')

    // Kamailio reached 1002 over the connection 1002 opened: its log shows the INVITE relayed to
    // the registration's received address, and no second connection towards 1002's listener
    const relayed = kam.log().match(/relay INVITE to \S+ via (\S+)/)
    t.diagnostic(relayed && relayed[0])
    assert.ok(relayed, `Kamailio relayed the INVITE:\n${kam.log().slice(-3000)}`)
    assert.notEqual(relayed[1], '<null>', 'the INVITE went to the received address (the UA connection)')
    assert.ok(!relayed[1].includes(`:${b.port}`), `not to the UA's listener port ${b.port}: ${relayed[1]}`)
    fs.rmSync(dir, { recursive: true, force: true })
  })
}

test('PJSIP verifying the server refuses a Kamailio with a certificate of an unknown CA', { timeout: 30000 }, async (t) => {
  if (!requirePeer('kamailio-tls', t) || !requirePeer('pjsua2', t)) return
  const certs = certsFor(t)
  if (!certs) return
  const kam = await startKamailio({ users: USERS, t, transports: ['tls'], certs: certs.unknown })
  const a = await startPjsua2({
    t,
    user: '1001',
    transport: 'tls',
    tls: { caFile: certs.ca.cert, verifyServer: true },
    register: { registrar: kam.uris.tls, password: 'pw1001' },
  })
  await assert.rejects(a.registered(), /registration failed: (?!200)\d+/)
})

/** The header `name` of a SIP message (first one), or undefined. */
const header = (msg, name) => (msg.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im')) || [])[1]

/** A REGISTER of a WebSocket UA with an unroutable Contact (RFC 7118 §5), digest-authenticated. */
async function wsRegister(conn, { transport, user, password }) {
  const callId = `${crypto.randomBytes(6).toString('hex')}@selftest`
  const request = (cseq, auth = '') =>
    `REGISTER sip:127.0.0.1 SIP/2.0\r\n` +
    `Via: SIP/2.0/${transport.toUpperCase()} ws-ua.invalid;branch=z9hG4bK${crypto.randomBytes(6).toString('hex')}\r\n` +
    `From: <sip:${user}@127.0.0.1>;tag=ws${cseq}\r\nTo: <sip:${user}@127.0.0.1>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\nMax-Forwards: 70\r\n` +
    `Contact: <sip:${user}@ws-ua.invalid;transport=${transport}>;expires=60\r\n${auth}Content-Length: 0\r\n\r\n`
  conn.send(request(1))
  const challenge = await conn.next((m) => m.startsWith('SIP/2.0 401'))
  const www = header(challenge, 'WWW-Authenticate')
  const param = (k) => (www.match(new RegExp(`${k}="?([^",]+)"?`)) || [])[1]
  const md5hex = (s) => crypto.createHash('md5').update(s).digest('hex')
  const [realm, nonce, qop] = [param('realm'), param('nonce'), param('qop')]
  const cnonce = crypto.randomBytes(4).toString('hex')
  const ha1 = md5hex(`${user}:${realm}:${password}`)
  const ha2 = md5hex('REGISTER:sip:127.0.0.1')
  const response = qop ? md5hex(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5hex(`${ha1}:${nonce}:${ha2}`)
  const qopPart = qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : ''
  conn.send(
    request(
      2,
      `Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="sip:127.0.0.1", response="${response}", algorithm=MD5${qopPart}\r\n`,
    ),
  )
  const ok = await conn.next((m) => /^SIP\/2\.0 [2-6]\d\d/.test(m) && !m.startsWith('SIP/2.0 100'))
  return ok.split('\r\n')[0]
}

/**
 * Our answer to `request`: its Vias, From, To (with a tag), Call-ID and CSeq; for a 200 to an
 * INVITE also its Record-Route, a Contact on `transport` and an SDP offer answer (PCMU, port 9).
 */
function answer(request, status, transport) {
  const lines = request.split('\r\n')
  const all = (name) => lines.filter((l) => new RegExp(`^${name}\\s*:`, 'i').test(l))
  const isInvite = /^INVITE /.test(request) && status.startsWith('200')
  const sdp = isInvite ? 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n' : ''
  const to = header(request, 'To')
  return [
    `SIP/2.0 ${status}`,
    ...all('Via'),
    ...(isInvite ? all('Record-Route') : []),
    `From: ${header(request, 'From')}`,
    `To: ${/;tag=/.test(to) ? to : `${to};tag=ws${crypto.randomBytes(3).toString('hex')}`}`,
    `Call-ID: ${header(request, 'Call-ID')}`,
    `CSeq: ${header(request, 'CSeq')}`,
    ...(isInvite ? [`Contact: <sip:1001@ws-ua.invalid;transport=${transport}>`, 'Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ].join('\r\n')
}

for (const transport of ['ws', 'wss']) {
  test(`a hand-written ${transport.toUpperCase()} UA registers at Kamailio with an unroutable Contact; a PJSIP call to it arrives over its WebSocket and its 486 goes back; a second call is answered and the ACK and BYE come back over the WebSocket`, { timeout: 30000 }, async (t) => {
    if (!requirePeer('kamailio-websocket', t) || !requirePeer('kamailio-tls', t) || !requirePeer('pjsua2', t)) return
    const certs = certsFor(t)
    if (!certs) return
    const kam = await startKamailio({ users: USERS, t, transports: [transport], certs: certs.server })
    const conn = await openSip({ transport, host: '127.0.0.1', port: kam.ports[transport], ca: certs.ca.cert, servername: 'localhost' })
    t.after(() => conn.close())
    assert.equal(await wsRegister(conn, { transport, user: '1001', password: 'pw1001' }), 'SIP/2.0 200 OK')

    const caller = await startPjsua2({ t, user: '1002', register: { registrar: kam.uri, password: 'pw1002' }, maxSeconds: 25 })
    await caller.registered()
    caller.dial(`sip:1001@127.0.0.1:${kam.port}`)
    const invite = await conn.next((m) => m.startsWith('INVITE '), 10000)
    assert.match(invite.split('\r\n')[0], /^INVITE sip:1001@ws-ua\.invalid;transport=ws/i, 'the R-URI is the registered Contact')
    const vias = invite.split('\r\n').filter((l) => /^Via\s*:/i.test(l))
    assert.match(vias[0], new RegExp(`^Via: SIP/2\\.0/${transport}`, 'i'), `Kamailio sent it over ${transport}: ${vias[0]}`)
    conn.send(answer(invite, '486 Busy Here'))
    const ack = await conn.next((m) => m.startsWith('ACK '), 5000)
    assert.equal(header(ack, 'Call-ID'), header(invite, 'Call-ID'), 'Kamailio ACKed our 486 over the same WebSocket')
    const end = await caller.waitEvent('call_state', (e) => e.state === 'disconnected', 10000)
    assert.equal(end.code, 486, 'the caller got our 486 through Kamailio')

    // a second call we answer: the ACK and the caller's BYE come back over our WebSocket (the
    // Contact of our 200, unroutable, was aliased by Kamailio with our connection)
    const from = caller.events.length
    caller.dial(`sip:1001@127.0.0.1:${kam.port}`)
    const invite2 = await conn.next((m) => m.startsWith('INVITE '), 10000)
    conn.send(answer(invite2, '200 OK', transport))
    const ack2 = await conn.next((m) => m.startsWith('ACK '), 5000)
    assert.match(ack2.split('\r\n')[0], /^ACK sip:1001@ws-ua\.invalid/i, `the ACK of our 200 is for our Contact: ${ack2.split('\r\n')[0]}`)
    await caller.waitEvent('call_state', (e) => e.state === 'confirmed', 5000, from)
    caller.cmd('hangup')
    const bye = await conn.next((m) => m.startsWith('BYE '), 5000)
    assert.equal(header(bye, 'Call-ID'), header(invite2, 'Call-ID'))
    conn.send(answer(bye, '200 OK'))
    const end2 = await caller.waitEvent('call_state', (e) => e.state === 'disconnected', 5000, from)
    assert.equal(end2.code, 200, JSON.stringify(end2))
  })
}

test('sipp over TCP: a UAC calls a UAS (both -t t1) through the whole call', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ t, scenario: 'uas', transport: 'tcp' })
  const uac = await startSipp({ t, scenario: 'uac', transport: 'tcp', remote: `127.0.0.1:${uas.port}` })
  const [rc, rs] = await Promise.all([uac.done, uas.done])
  assert.equal(rc.code, 0, describeSipp(rc))
  assert.match(rc.messages, /Via: SIP\/2\.0\/TCP/, 'the UAC sent its messages over TCP')
  // the UAS answered the BYE; sipp then counts the UAC's close of the connection, during the
  // UAS's final timewait, as a failed call (FailedTcpClosed), and that is its only failure
  assert.match(rs.messages, /TCP message received[^\n]*\n+BYE /, describeSipp(rs))
  assert.equal(rs.stats.raw['FailedTcpClosed(C)'], String(rs.stats.failed), describeSipp(rs))
})
