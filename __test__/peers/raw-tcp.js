// A SIP peer on a TCP socket written byte by byte by the test: it frames what it receives by
// Content-Length and sends whatever bytes it is told to, split and glued as the test wants. For
// the framing, garbage and reconnect cases that sipp cannot write.
'use strict'

const net = require('node:net')
const { until } = require('../helpers/wait')

const HOST = '127.0.0.1'

/** Splits a byte stream into SIP messages and lone CRLF keep-alives. */
class Framer {
  constructor() {
    this.buf = Buffer.alloc(0)
  }
  push(chunk) {
    this.buf = Buffer.concat([this.buf, chunk])
    const out = []
    for (;;) {
      if (this.buf.subarray(0, 4).toString() === '\r\n\r\n') {
        out.push({ ping: true })
        this.buf = this.buf.subarray(4)
        continue
      }
      if (this.buf.subarray(0, 2).toString() === '\r\n') {
        out.push({ pong: true })
        this.buf = this.buf.subarray(2)
        continue
      }
      const end = this.buf.indexOf('\r\n\r\n')
      if (end < 0) break
      const head = this.buf.subarray(0, end).toString()
      const m = /^(?:content-length|l)\s*:\s*(\d+)/im.exec(head)
      const len = m ? Number(m[1]) : 0
      if (this.buf.length < end + 4 + len) break
      const text = this.buf.subarray(0, end + 4 + len).toString()
      this.buf = this.buf.subarray(end + 4 + len)
      out.push(parse(text))
    }
    return out
  }
}

function parse(text) {
  const [head, body = ''] = text.split('\r\n\r\n')
  const lines = head.split('\r\n')
  const start = lines[0]
  const headers = lines.slice(1).map((l) => {
    const i = l.indexOf(':')
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()]
  })
  const get = (n) => (headers.find(([k]) => k === n) || [])[1]
  const status = /^SIP\/2\.0 (\d+)/.exec(start)
  return {
    text,
    start,
    method: status ? null : start.split(' ')[0],
    status: status ? Number(status[1]) : null,
    get,
    all: (n) => headers.filter(([k]) => k === n).map(([, v]) => v),
    body,
  }
}

/** A response to `req` with the given status line and extra header lines. */
function reply(req, statusLine, extra = [], body = '') {
  const copy = ['via', 'from', 'to', 'call-id', 'cseq']
    .flatMap((n) => req.all(n).map((v) => `${n === 'call-id' ? 'Call-ID' : n[0].toUpperCase() + n.slice(1)}: ${v}`))
  const to = copy.findIndex((l) => l.startsWith('To:'))
  if (to >= 0 && !/;tag=/.test(copy[to])) copy[to] += ';tag=raw' + Math.random().toString(16).slice(2, 8)
  return [`SIP/2.0 ${statusLine}`, ...copy, ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n')
}

/**
 * Starts the peer. Every message received is recorded with its connection; `onMessage(msg, conn)`
 * may answer. Options: `port` (default: any), `registrar` (answer REGISTER 200 with the Contact,
 * default true), `pong` (answer CRLF pings, default true).
 */
async function startRawTcp({ port = 0, registrar = true, pong = true, onMessage, t } = {}) {
  const peer = { messages: [], conns: [], pong }
  const server = net.createServer((socket) => {
    const conn = { socket, id: peer.conns.length, closed: false, pings: 0 }
    peer.conns.push(conn)
    const framer = new Framer()
    socket.on('data', (d) => {
      for (const m of framer.push(d)) {
        if (m.ping) {
          conn.pings++
          if (peer.pong) socket.write('\r\n')
          continue
        }
        if (m.pong) continue
        m.conn = conn
        peer.messages.push(m)
        if (registrar && m.method === 'REGISTER') {
          socket.write(reply(m, '200 OK', [`Contact: ${m.get('contact')};expires=${/Expires: (\d+)/i.exec(m.text)?.[1] ?? 60}`]))
        }
        if (onMessage) onMessage(m, conn)
      }
    })
    socket.on('close', () => (conn.closed = true))
    socket.on('error', () => {})
  })
  await new Promise((resolve) => server.listen(port, HOST, resolve))
  peer.port = server.address().port
  peer.host = HOST
  /** Waits for a message matching `pred` received after index `from`. */
  peer.expect = async (pred, what, timeoutMs = 8000, from = 0) => {
    let found
    await until(() => (found = peer.messages.slice(from).find(pred)), timeoutMs, what)
    return found
  }
  peer.close = () =>
    new Promise((resolve) => {
      for (const c of peer.conns) c.socket.destroy()
      server.close(() => resolve())
    })
  if (t) t.after(() => peer.close())
  return peer
}

/** Connects a client socket to `port` on loopback. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, HOST, () => resolve(s))
    s.once('error', reject)
  })
}

module.exports = { startRawTcp, reply, connect, Framer, parse }
