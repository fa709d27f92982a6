// SIP by hand over any transport (UDP, TCP, TLS, WebSocket, secure WebSocket), without
// sip-native: an OPTIONS probe (the peers' readiness) and a raw connection to send and receive
// messages on (the harness selftest's WebSocket UA). The WebSocket client
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

/** Splits complete SIP messages off a stream buffer by Content-Length: [messages, rest]. */
function splitStream(buf) {
  const out = []
  for (;;) {
    while (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) buf = buf.subarray(2) // keep-alive CRLFs
    const end = buf.indexOf('\r\n\r\n')
    if (end < 0) break
    const head = buf.subarray(0, end).toString('utf8')
    const m = head.match(/^(?:content-length|l)\s*:\s*(\d+)/im)
    const total = end + 4 + (m ? Number(m[1]) : 0)
    if (buf.length < total) break
    out.push(buf.subarray(0, total).toString('utf8'))
    buf = buf.subarray(total)
  }
  return [out, buf]
}

/**
 * A SIP connection over tcp/tls/ws/wss, opened by hand: `{ send(text), next(pred, timeoutMs),
 * local: { address, port }, close() }`; `next` resolves with the first received message (a
 * string) matching `pred` that no earlier `next` took. Rejects naming the step that failed
 * (connect, TLS, WebSocket upgrade). For tls/wss, `ca` is a PEM file to trust and `servername`
 * the SNI (default host); `verify: false` accepts any server certificate. `localAddress` is the
 * address to connect from (any 127.0.0.x is a distinct source on loopback); `closed` resolves
 * once the connection has closed, whoever closed it.
 */
function openSip(o) {
  const { transport, host, port } = o
  const what = `${transport} to ${host}:${port}`
  const secure = transport === 'tls' || transport === 'wss'
  const ws = transport === 'ws' || transport === 'wss'
  const timeoutMs = o.timeoutMs || 2000
  return new Promise((resolve, reject) => {
    const inbox = []
    const waiters = new Set()
    let buf = Buffer.alloc(0)
    let upgraded = !ws
    let accept
    let settled = false
    let onClosed
    const closed = new Promise((r) => (onClosed = r))
    const fail = (err) => {
      sock.destroy()
      if (!settled) {
        settled = true
        clearTimeout(timer)
        reject(new Error(`${what}: ${err}`))
      }
      for (const w of [...waiters]) w.fail(err)
    }
    const timer = setTimeout(() => fail(`not connected within ${timeoutMs} ms`), timeoutMs)
    const deliver = (msg) => {
      for (const w of waiters) {
        if (w.pred(msg)) return w.take(msg)
      }
      inbox.push(msg)
    }
    const api = {
      local: null,
      closed,
      send(text) {
        sock.write(ws ? wsFrame(text) : text)
      },
      next(pred = () => true, ms = 5000) {
        const i = inbox.findIndex(pred)
        if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0])
        return new Promise((res, rej) => {
          const w = {
            pred,
            take: (m) => (clearTimeout(w.timer), waiters.delete(w), res(m)),
            fail: (e) => (clearTimeout(w.timer), waiters.delete(w), rej(new Error(`${what}: ${e}`))),
          }
          w.timer = setTimeout(() => w.fail(`no matching message within ${ms} ms`), ms)
          waiters.add(w)
        })
      },
      close: () => sock.destroy(),
    }
    const ready = () => {
      settled = true
      clearTimeout(timer)
      resolve(api)
    }
    const onConnect = () => {
      api.local = { address: sock.localAddress, port: sock.localPort }
      if (!ws) return ready()
      const key = crypto.randomBytes(16).toString('base64')
      accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
      sock.write(
        `GET ${o.path || '/'} HTTP/1.1\r\nHost: ${host.includes(':') ? `[${host}]` : host}:${port}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n`,
      )
    }
    const sni = o.servername || host
    const sock = secure
      ? tls.connect(
          {
            host,
            port,
            localAddress: o.localAddress,
            ca: o.ca ? fs.readFileSync(o.ca) : undefined,
            servername: net.isIP(sni) ? undefined : sni,
            rejectUnauthorized: o.verify !== false,
          },
          onConnect,
        )
      : net.connect({ host, port, localAddress: o.localAddress }, onConnect)
    sock.on('error', (e) => fail(e.message))
    sock.on('close', () => {
      onClosed()
      fail('connection closed')
    })
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.subarray(0, end).toString('latin1')
        buf = buf.subarray(end + 4)
        if (!/^HTTP\/1\.1 101/.test(head)) return fail(`WebSocket upgrade refused: ${head.split('\r\n')[0]}`)
        if (!head.includes(accept)) return fail('WebSocket upgrade: wrong Sec-WebSocket-Accept')
        if (!/sec-websocket-protocol:\s*sip/i.test(head)) return fail('WebSocket upgrade: no sip subprotocol')
        upgraded = true
        ready()
      }
      if (ws) {
        let f
        while ((f = wsParse(buf))) {
          buf = f.rest
          if (f.opcode === 0x9) sock.write(Buffer.from([0x8a, 0x80, 0, 0, 0, 0])) // ping -> masked empty pong
          else if (f.opcode === 0x8) return fail('WebSocket closed by the server')
          else if (f.opcode === 0x1 || f.opcode === 0x2) deliver(f.text)
        }
      } else {
        const [msgs, rest] = splitStream(buf)
        buf = rest
        msgs.forEach(deliver)
      }
    })
  })
}

/**
 * Sends an OPTIONS to host:port over `transport` and resolves to the status line of the answer
 * ('SIP/2.0 200 Keepalive'), or rejects naming what failed (connect, TLS, WebSocket upgrade,
 * timeout). Options as for `openSip`.
 *
 * @param {object} o
 * @param {'udp'|'tcp'|'tls'|'ws'|'wss'} o.transport
 * @param {string} o.host
 * @param {number} o.port
 * @param {string} [o.ca]
 * @param {string} [o.servername]
 * @param {boolean} [o.verify] default true
 * @param {string} [o.path] WebSocket resource, default '/'
 * @param {number} [o.timeoutMs] default 2000
 */
async function sendOptions(o) {
  const timeoutMs = o.timeoutMs || 2000
  const what = `OPTIONS over ${o.transport} to ${o.host}:${o.port}`
  if (o.transport === 'udp') return udpOptions(o, what, timeoutMs)
  const conn = await openSip(o)
  try {
    conn.send(optionsMessage({ ...o, localHost: conn.local.address, localPort: conn.local.port }))
    const answer = await conn.next((m) => m.startsWith('SIP/2.0 '), timeoutMs).catch((e) => {
      throw new Error(`${what}: ${e.message}`)
    })
    return answer.split('\r\n')[0]
  } finally {
    conn.close()
  }
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

module.exports = { sendOptions, optionsMessage, openSip, splitStream, wsFrame, wsParse }
