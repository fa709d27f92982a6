// A SIP OPTIONS sent by hand over any transport (UDP, TCP, TLS, WebSocket, secure WebSocket),
// without sip-native: the peers' readiness probes and the harness selftest. The WebSocket client
// is the few lines RFC 6455 needs for this (handshake with the `sip` subprotocol, masked text
// frames out, unmasked frames in), so no npm dependency.
'use strict'

const crypto = require('node:crypto')
const dgram = require('node:dgram')
const fs = require('node:fs')
const net = require('node:net')
const tls = require('node:tls')

const VIA_PROTO = { udp: 'UDP', tcp: 'TCP', tls: 'TLS', ws: 'WS', wss: 'WSS' }

function optionsMessage({ transport, host, port, localHost, localPort }) {
  const branch = 'z9hG4bK' + crypto.randomBytes(6).toString('hex')
  const h = host.includes(':') ? `[${host}]` : host
  const lh = localHost.includes(':') ? `[${localHost}]` : localHost
  const param = transport === 'udp' ? '' : `;transport=${transport}`
  return (
    `OPTIONS sip:${h}:${port}${param} SIP/2.0\r\n` +
    `Via: SIP/2.0/${VIA_PROTO[transport]} ${lh}:${localPort};branch=${branch};rport\r\n` +
    `From: <sip:probe@${lh}>;tag=${branch.slice(7)}\r\n` +
    `To: <sip:${h}:${port}>\r\n` +
    `Call-ID: ${branch}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`
  )
}

/** Encodes one masked (client-to-server) WebSocket text frame. */
function wsFrame(text) {
  const payload = Buffer.from(text, 'utf8')
  const len = payload.length
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff])
  if (len > 0xffff) throw new Error('wsFrame: payload too long for this probe')
  const mask = crypto.randomBytes(4)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i % 4]
  return Buffer.concat([head, mask, body])
}

/** Decodes the first complete unmasked frame of `buf`: { opcode, text, rest } or null. */
function wsParse(buf) {
  if (buf.length < 2) return null
  let len = buf[1] & 0x7f
  let off = 2
  if (len === 126) {
    if (buf.length < 4) return null
    len = buf.readUInt16BE(2)
    off = 4
  } else if (len === 127) {
    if (buf.length < 10) return null
    len = Number(buf.readBigUInt64BE(2))
    off = 10
  }
  if (buf.length < off + len) return null
  return { opcode: buf[0] & 0x0f, text: buf.subarray(off, off + len).toString('utf8'), rest: buf.subarray(off + len) }
}

/**
 * Sends an OPTIONS to host:port over `transport` and resolves to the status line of the answer
 * ('SIP/2.0 200 Keepalive'), or rejects naming what failed (connect, TLS, WebSocket upgrade,
 * timeout). For tls/wss, `ca` is a PEM file to trust and `servername` the SNI (default host).
 *
 * @param {object} o
 * @param {'udp'|'tcp'|'tls'|'ws'|'wss'} o.transport
 * @param {string} o.host
 * @param {number} o.port
 * @param {string} [o.ca]
 * @param {string} [o.servername]
 * @param {string} [o.path] WebSocket resource, default '/'
 * @param {number} [o.timeoutMs] default 2000
 */
function sendOptions(o) {
  const { transport, host, port } = o
  const timeoutMs = o.timeoutMs || 2000
  const what = `OPTIONS over ${transport} to ${host}:${port}`
  if (transport === 'udp') return udpOptions(o, what, timeoutMs)
  return new Promise((resolve, reject) => {
    let sock
    let buf = Buffer.alloc(0)
    let upgraded = false
    const done = (err, line) => {
      clearTimeout(timer)
      if (sock) sock.destroy()
      if (err) reject(new Error(`${what}: ${err}`))
      else resolve(line)
    }
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs)
    const secure = transport === 'tls' || transport === 'wss'
    const ws = transport === 'ws' || transport === 'wss'
    const onConnect = () => {
      const msg = optionsMessage({ transport, host, port, localHost: sock.localAddress, localPort: sock.localPort })
      if (!ws) return sock.write(msg)
      const key = crypto.randomBytes(16).toString('base64')
      sock.write(
        `GET ${o.path || '/'} HTTP/1.1\r\nHost: ${host.includes(':') ? `[${host}]` : host}:${port}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n`,
      )
      sock.pendingSip = msg
      sock.wsAccept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    }
    const opts = { host, port }
    sock = secure
      ? tls.connect({ ...opts, ca: o.ca ? fs.readFileSync(o.ca) : undefined, servername: net.isIP(o.servername || host) ? undefined : o.servername || host }, onConnect)
      : net.connect(opts, onConnect)
    sock.on('error', (e) => done(e.message))
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (ws && !upgraded) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.subarray(0, end).toString('latin1')
        buf = buf.subarray(end + 4)
        if (!/^HTTP\/1\.1 101/.test(head)) return done(`WebSocket upgrade refused: ${head.split('\r\n')[0]}`)
        if (!head.includes(sock.wsAccept)) return done('WebSocket upgrade: wrong Sec-WebSocket-Accept')
        if (!/sec-websocket-protocol:\s*sip/i.test(head)) return done('WebSocket upgrade: no sip subprotocol')
        upgraded = true
        sock.write(wsFrame(sock.pendingSip))
      }
      const text = ws ? (wsParse(buf) || {}).text : buf.toString('utf8')
      if (text && text.includes('\r\n')) done(null, text.split('\r\n')[0])
    })
  })
}

function udpOptions({ host, port }, what, timeoutMs) {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    const timer = setTimeout(() => {
      s.close()
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    s.on('message', (m) => {
      clearTimeout(timer)
      s.close()
      resolve(m.toString('utf8').split('\r\n')[0])
    })
    s.on('error', () => {})
    s.bind(0, host, () => {
      const msg = optionsMessage({ transport: 'udp', host, port, localHost: host, localPort: s.address().port })
      s.send(msg, port, host)
    })
  })
}

module.exports = { sendOptions, wsFrame, wsParse }
