// Who may call us (#10 item 6) on the stream transports: TCP, TLS and WebSocket connections go
// through the same admission as UDP (a dialog-creating request from outside the PBX's addresses
// or `acceptFrom` gets a stateless 403, no event, no call) and the same `maxMessageSize` (a
// larger message is answered 513 Message Too Large and its connection closed). Scanners are raw
// connections from other loopback addresses (127.0.0.5 and up); the PBX is sipp over TCP from
// 127.0.0.1; the WebSocket server our service dials is the `ws` package's, written by the test.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const net = require('node:net')
const { WebSocketServer } = require('ws')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService } = require('./helpers/sip')
const { openSip } = require('./helpers/sipwire')
const { makeCerts, removeCerts } = require('./helpers/certs')

const ACCOUNT = { extension: '7779', register: false }
const LIMIT = 2000

/** A port nothing listens on: the service's PBX flow just retries there in the background. */
async function closedPort() {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address()
  await new Promise((r) => srv.close(r))
  return port
}

/**
 * A request outside any dialog as a scanner sends it (random Call-ID, tags); `pad` bytes of an
 * extension header make it as large as a test needs.
 */
function request(method, { via, from, to, pad = 0 }) {
  const id = crypto.randomBytes(8).toString('hex')
  const padding = pad > 0 ? `X-Pad: ${'a'.repeat(pad)}\r\n` : ''
  return (
    `${method} sip:7779@${to} SIP/2.0\r\n` +
    `Via: SIP/2.0/${via} ${from};branch=z9hG4bK${id}\r\n` +
    `From: "sipvicious" <sip:100@${from}>;tag=${id.slice(0, 6)}\r\n` +
    `To: <sip:7779@${to}>\r\nCall-ID: ${id}\r\nCSeq: 1 ${method}\r\nMax-Forwards: 70\r\n` +
    `Contact: <sip:100@${from}>\r\nUser-Agent: friendly-scanner\r\n${padding}Content-Length: 0\r\n\r\n`
  )
}

const status = (m) => /^SIP\/2\.0 (\d{3})/.exec(m)?.[1]
const streamPort = (sip, transport) => sip.localAddresses().find((a) => a.transport === transport).port

/** A scanner connection from `localAddress` to the service's `transport` listener. */
async function scannerConn(sip, transport, localAddress, extra = {}) {
  const port = streamPort(sip, transport)
  const conn = await openSip({ transport, host: '127.0.0.1', port, localAddress, verify: false, ...extra })
  const from = `${conn.local.address}:${conn.local.port}`
  return { conn, from, to: `127.0.0.1:${port}` }
}

test('TCP and TLS: a scanner INVITE gets 403 and no event; the PBX (sipp over TCP) still calls in', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: await closedPort(),
    transport: 'tcp',
    accounts: [ACCOUNT],
  })
  const scan = await scannerConn(sip, 'tcp', '127.0.0.5')
  t.after(() => scan.conn.close())
  scan.conn.send(request('INVITE', { via: 'TCP', ...scan }))
  const answer = await scan.conn.next((m) => m.startsWith('SIP/2.0 '))
  assert.equal(status(answer), '403', answer)
  assert.match(answer, /\r\nTo: <sip:7779@[^>]+>;tag=/, 'the 403 carries a To tag')
  // an OPTIONS from the same unknown source is only rate limited: answered as usual
  scan.conn.send(request('OPTIONS', { via: 'TCP', ...scan }))
  assert.equal(status(await scan.conn.next((m) => m.startsWith('SIP/2.0 '))), '200')
  let tr = sip.metrics().transport
  assert.equal(tr.forbiddenSent, 1, JSON.stringify(tr))
  assert.equal(events.filter((e) => e.name === 'incoming_call').length, 0, 'no incoming_call for the scanner')
  assert.equal(sip.counters().liveCalls, 0, 'no call state, so no RTP port taken')

  sip.on('incoming_call', (e) => sip.answer(e.callId).catch(() => {}))
  const uac = await startSipp({ scenario: 'uac_call', transport: 'tcp', remote: scan.to, durationMs: 200, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'the PBX call over TCP went through: ' + describeSipp(r))
  await sip.stop()

  const certs = makeCerts()
  t.after(() => removeCerts(certs))
  const tls = await startService(t, {
    server: '127.0.0.1',
    serverPort: await closedPort(),
    transport: 'tls',
    tls: { caFile: certs.ca.cert, certFile: certs.server.cert, keyFile: certs.server.key },
    accounts: [ACCOUNT],
  })
  const scan2 = await scannerConn(tls.sip, 'tls', '127.0.0.6')
  t.after(() => scan2.conn.close())
  scan2.conn.send(request('INVITE', { via: 'TLS', ...scan2 }))
  const answer2 = await scan2.conn.next((m) => m.startsWith('SIP/2.0 '))
  assert.equal(status(answer2), '403', answer2)
  tr = tls.sip.metrics().transport
  assert.equal(tr.forbiddenSent, 1, JSON.stringify(tr))
  t.diagnostic(`TCP and TLS scanners: 403 each; PBX call over TCP answered (sipp: ${r.stats?.successful} successful, ${r.stats?.failed} failed)`)
  assert.equal(tls.events.filter((e) => e.name === 'incoming_call').length, 0)
  await tls.sip.stop()
})

test('TCP: a message over maxMessageSize gets 513 and its connection closes; one under it is answered', async (t) => {
  const { sip } = await startService(t, {
    server: '127.0.0.1',
    serverPort: await closedPort(),
    transport: 'tcp',
    maxMessageSize: LIMIT,
    accounts: [ACCOUNT],
  })
  const peer = await scannerConn(sip, 'tcp', '127.0.0.1')
  t.after(() => peer.conn.close())
  const under = request('OPTIONS', { via: 'TCP', ...peer, pad: 1500 })
  assert.ok(under.length < LIMIT && under.length > LIMIT - 400, `${under.length} bytes`)
  peer.conn.send(under)
  assert.equal(status(await peer.conn.next((m) => m.startsWith('SIP/2.0 '))), '200', 'under the limit: answered')
  const over = request('OPTIONS', { via: 'TCP', ...peer, pad: 2500 })
  peer.conn.send(over)
  const answer = await peer.conn.next((m) => m.startsWith('SIP/2.0 '))
  assert.match(answer, /^SIP\/2\.0 513 Message Too Large\r\n/, answer)
  await peer.conn.closed
  const tr = sip.metrics().transport
  assert.equal(tr.oversizedMessages, 1, JSON.stringify(tr))
  t.diagnostic(`TCP, limit ${LIMIT}: ${under.length} bytes answered 200, ${over.length} bytes 513 then closed`)
  await sip.stop()
})

/** A WebSocket server (subprotocol `sip`) on 127.0.0.1 recording each connection our service opens. */
async function wsServer(t) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'sip' })
  await new Promise((r) => wss.once('listening', r))
  // close() waits for the connections, which a failed test may leave open: end them first
  t.after(() => new Promise((r) => (wss.clients.forEach((ws) => ws.terminate()), wss.close(r))))
  const conns = []
  const waiting = []
  wss.on('connection', (ws, req) => {
    const c = { ws, inbox: [], closeCode: null, local: `${req.socket.localAddress}:${req.socket.localPort}` }
    c.closed = new Promise((r) => ws.on('close', (code) => r((c.closeCode = code))))
    c.next = (pred, ms = 5000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const i = c.inbox.findIndex(pred)
          if (i < 0) return false
          clearTimeout(timer)
          resolve(c.inbox.splice(i, 1)[0])
          return true
        }
        const timer = setTimeout(() => reject(new Error(`no matching WebSocket message within ${ms} ms: ${c.inbox}`)), ms)
        if (!check()) c.check = check
      })
    ws.on('message', (data) => {
      c.inbox.push(data.toString('utf8'))
      c.check?.()
    })
    conns.push(c)
    waiting.splice(0).forEach((w) => w())
  })
  const port = wss.address().port
  /** The `n`th connection (0-based), once our service has opened it. */
  const conn = async (n) => {
    while (conns.length <= n) await new Promise((r) => waiting.push(r))
    return conns[n]
  }
  return { port, conn }
}

test('WS: the server outside acceptFrom gets 403; over maxMessageSize 513 then close 1009', async (t) => {
  const server = await wsServer(t)
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: server.port,
    transport: 'ws',
    websocketUrl: `ws://127.0.0.1:${server.port}`,
    acceptFrom: ['127.0.0.9/32'],
    maxMessageSize: LIMIT,
    accounts: [ACCOUNT],
  })
  const c = await server.conn(0)
  const ends = { via: 'WS', from: c.local, to: '127.0.0.1' }
  c.ws.send(request('INVITE', ends))
  const answer = await c.next((m) => m.startsWith('SIP/2.0 '))
  assert.equal(status(answer), '403', answer)
  assert.equal(events.filter((e) => e.name === 'incoming_call').length, 0, 'no incoming_call')
  assert.equal(sip.metrics().transport.forbiddenSent, 1)
  const sizes = [1500, 2500, LIMIT * 3].map((pad) => request('OPTIONS', { ...ends, pad }).length)
  c.ws.send(request('OPTIONS', { ...ends, pad: 1500 }))
  assert.equal(status(await c.next((m) => m.startsWith('SIP/2.0 '))), '200', 'under the limit: answered')
  c.ws.send(request('OPTIONS', { ...ends, pad: 2500 }))
  const too = await c.next((m) => m.startsWith('SIP/2.0 '))
  assert.match(too, /^SIP\/2\.0 513 Message Too Large\r\n/, too)
  assert.equal(await c.closed, 1009, 'closed as "message too big"')
  // the flow comes back; a message beyond what the library reads at all: 1009 without a 513
  const c2 = await server.conn(1)
  c2.ws.send(request('OPTIONS', { ...ends, from: c2.local, pad: LIMIT * 3 }))
  assert.equal(await c2.closed, 1009)
  assert.deepEqual(c2.inbox, [], 'nothing could be answered')
  const tr = sip.metrics().transport
  assert.equal(tr.oversizedMessages, 2, JSON.stringify(tr))
  t.diagnostic(
    `WS, limit ${LIMIT}: 403 to the server outside acceptFrom; ${sizes[0]} bytes 200, ` +
      `${sizes[1]} bytes 513 + close 1009, ${sizes[2]} bytes close 1009 unanswered`,
  )
  await sip.stop()
})
