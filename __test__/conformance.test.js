// RFC 4475 §3 torture messages and RFC 5118 IPv6 messages, byte-exact from
// crates/sipua/tests/fixtures, sent to a running service over real UDP (a handful over TCP and WS):
// the answer each must get, every answer parses, nothing crashes, a sipp call works after.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const net = require('node:net')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, disconnected } = require('./helpers/sip')

const FIXTURES = path.join(__dirname, '..', 'crates', 'sipua', 'tests', 'fixtures')
// The placeholder the test fills in: the fixtures' top Via names a host of the RFC's, where the
// stack would send its responses (RFC 3261 §18.2.2); it becomes our socket's address.
const PEER = '127.0.0.77'
// So does a `received` in it (RFC 5118 §4.5): a response goes there (RFC 3261 §18.2.2).
const viaToUs = (bytes, port) =>
  Buffer.from(
    bytes
      .toString('latin1')
      .replace(/(SIP\s*\/\s*2\.0\s*\/\s*UDP\s+)([^;\s]+)([^\r\n]*?;received=)([^;\s]+)/i, `$1$2$3${PEER}`)
      .replace(/(SIP\s*\/\s*2\.0\s*\/\s*UDP\s+)([^;\s]+)/i, `$1${PEER}:${port}`),
    'latin1',
  )

// name → the status the RFC has a UAS answer with (null: no answer; a response message, or an
// invalid one without what a response needs). 'call' = a valid INVITE to our account: it rings;
// a valid one to a user we do not have gets the normal 404, one with a To tag the normal 481.
const CASES = {
  'rfc4475/wsinv': 481,
  'rfc4475/intmeth': 501,
  'rfc4475/esc01': 404,
  'rfc4475/escnull': 405,
  'rfc4475/esc02': 501,
  'rfc4475/lwsdisp': 200,
  'rfc4475/longreq': 'call',
  'rfc4475/dblreq': 405,
  'rfc4475/semiuri': 200,
  'rfc4475/transports': 200,
  'rfc4475/noreason': null,
  'rfc4475/unreason': null,
  'rfc4475/mpart01': 405,
  'rfc4475/badinv01': 400,
  'rfc4475/clerr': 400,
  'rfc4475/ncl': 400,
  'rfc4475/scalar02': 400,
  'rfc4475/scalarlg': null,
  'rfc4475/quotbal': 400,
  'rfc4475/ltgtruri': 400,
  'rfc4475/lwsruri': 400,
  'rfc4475/lwsstart': 400,
  'rfc4475/trws': 400,
  'rfc4475/escruri': 400,
  'rfc4475/baddate': 'call',
  'rfc4475/regbadct': 400,
  'rfc4475/badaspec': 400,
  'rfc4475/baddn': 400,
  'rfc4475/badvers': 505,
  'rfc4475/mismatch01': 400,
  'rfc4475/mismatch02': 400,
  'rfc4475/bigcode': null,
  'rfc4475/badbranch': 200,
  'rfc4475/insuf': null,
  'rfc4475/unkscm': 416,
  'rfc4475/novelsc': 416,
  'rfc4475/unksm2': 405,
  'rfc4475/bext01': 420,
  'rfc4475/invut': 415,
  'rfc4475/regaut01': 405,
  'rfc4475/multi01': 400,
  'rfc4475/mcl01': 400,
  'rfc4475/zeromf': 200,
  'rfc4475/cparam01': 405,
  'rfc4475/cparam02': 405,
  'rfc4475/regescrt': 405,
  'rfc4475/sdp01': 406,
  'rfc4475/inv2543': 404,
  // RFC 5118 §4, all of it (REGISTER: we are no registrar)
  'rfc5118/ipv6-good': 405,
  'rfc5118/ipv6-bad': 400,
  'rfc5118/port-ambiguous': 405,
  'rfc5118/port-unambiguous': 405,
  'rfc5118/via-received-param-with-delim': 481,
  'rfc5118/via-received-param-no-delim': 200,
  // G726-32 and H.263 only: no codec of ours, the offer is refused (RFC 3264 §6)
  'rfc5118/ipv6-in-sdp': 488,
  'rfc5118/mult-ip-in-header': 481,
  'rfc5118/mult-ip-in-sdp': 'call',
  'rfc5118/ipv4-mapped-ipv6': 488,
  'rfc5118/ipv6-bug-abnf-3-colons': 200,
  'rfc5118/ipv6-correct-abnf-2-colons': 200,
}
// Headers the RFC asks for with the answer.
const HEADERS = {
  'rfc4475/bext01': /^Unsupported: nothingSupportsThis, nothingSupportsThisEither$/m,
  'rfc4475/invut': /^Accept: application\/sdp$/m,
  'rfc4475/sdp01': /^Accept: application\/sdp$/m,
  'rfc4475/intmeth': /^Allow: .*INVITE/m,
  'rfc4475/escnull': /^Allow: .*INVITE/m,
  'rfc4475/mpart01': /^Allow: .*INVITE/m,
  // RFC 3261 §8.2.6.2: the response's From is the request's, without the tag we gave it
  'rfc4475/inv2543': /^From: <sip:\+13035551111@ift\.client\.example\.net;user=phone>\r$/m,
}
// The syntactically invalid ones (RFC 4475 §3.1.2, RFC 5118 §4.2); the others are valid syntax
// (§3.1.1, §3.2-§3.4; RFC 5118's §4.10 three colons are RFC 3261 ABNF, to be tolerated).
const INVALID = new Set(['badinv01', 'clerr', 'ncl', 'scalar02', 'scalarlg', 'ltgtruri', 'lwsruri', 'lwsstart', 'trws',
  'escruri', 'baddate', 'quotbal', 'regbadct', 'badaspec', 'baddn', 'badvers', 'mismatch01', 'mismatch02', 'bigcode', 'ipv6-bad'])
// Sent twice: the copy must map to the first one's transaction (the RFC 2543 matching rules).
const RETRANSMITTED = new Set(['rfc4475/inv2543'])
const TCP_CASES = ['rfc4475/badvers', 'rfc4475/mismatch01', 'rfc4475/bext01', 'rfc4475/unkscm', 'rfc4475/lwsdisp']

/** A SIP response must at least have a status line, the headers it routes by, and end its head. */
function assertParses(name, text) {
  assert.match(text, /^SIP\/2\.0 [1-6]\d\d [^\r\n]*\r\n/, `${name}: status line of ${JSON.stringify(text)}`)
  // with their compact forms (RFC 3261 §7.3.3): an answer copies the request's spelling
  for (const [h, short] of [['Via', 'v'], ['From', 'f'], ['To', 't'], ['Call-ID', 'i'], ['CSeq', 'CSeq']]) {
    assert.match(text, new RegExp(`^(${h}|${short})\\s*:`, 'mi'), `${name}: ${h} in ${text}`)
  }
  // a 100 may go without a To tag (RFC 3261 §8.2.6.2), every other answer has one
  if (!text.startsWith('SIP/2.0 100 ')) assert.match(text, /^To:.*;\s*tag\s*=/im, `${name}: To tag in ${text}`)
  assert.ok(text.includes('\r\n\r\n'), `${name}: end of head`)
}

const first = (replies) => replies.find((r) => !r.startsWith('SIP/2.0 100 ')) || replies[0]
const code = (reply) => (reply ? Number(reply.split(' ')[1]) : null)

test('RFC 4475 and RFC 5118 messages get the RFC answer over UDP and TCP; a call works after', async (t) => {
  if (!requirePeer('sipp', t)) return
  // `transport: 'tcp'` listens on UDP and TCP at one port (no `server`: no admission rules)
  const { sip, events, addr, port } = await startService(t, { transport: 'tcp', accounts: [{ extension: 'user' }] })
  const calls = []
  sip.on('incoming_call', (c) => {
    calls.push(c)
    sip.reject(c.callId, 486).catch(() => {})
  })
  const sock = dgram.createSocket('udp4')
  await new Promise((r, j) => (sock.once('error', j), sock.bind(0, PEER, r)))
  t.after(() => sock.close())
  // answers to this message only (a rejected call's 486 is retransmitted: we send no ACK)
  let inbox = []
  let callId = null
  let cseq = null
  sock.on('message', (m) => {
    const text = m.toString('latin1')
    // RFC 5118's messages share a Call-ID: the CSeq tells their answers apart
    if (!callId || (text.includes(callId) && (!cseq || cseq.test(text)))) inbox.push(text)
  })

  const byCode = {}
  let valid = 0
  let invalid = 0
  for (const [name, want] of Object.entries(CASES)) {
    const bytes = viaToUs(fs.readFileSync(path.join(FIXTURES, `${name}.dat`)), sock.address().port)
    inbox = []
    callId = (/^(?:call-id|i)\s*:\s*(\S+)/im.exec(bytes.toString('latin1')) || [])[1] || '(none: insuf)'
    const seq = /^CSeq\s*:\s*(\d+)\s+([A-Z]+)/im.exec(bytes.toString('latin1'))
    cseq = seq ? new RegExp(`^CSeq\\s*:\\s*${seq[1]}\\s+${seq[2]}`, 'im') : null
    const before = calls.length
    const copies = RETRANSMITTED.has(name) ? 2 : 1
    for (let i = 0; i < copies; i++) await new Promise((r) => sock.send(bytes, port, '127.0.0.1', r))
    if (INVALID.has(name.split('/')[1])) invalid++
    else valid++
    const deadline = Date.now() + (want === null ? 300 : 3000)
    let answeredAt = null
    while (Date.now() < deadline) {
      const finals = inbox.filter((r) => code(r) >= 200).length
      if (finals && !answeredAt) answeredAt = Date.now()
      // a copy taken for a new transaction would get its own answer within this grace
      const settled = answeredAt && Date.now() - answeredAt >= 300
      if (want === null ? false : want === 'call' ? calls.length > before && finals : copies > 1 ? settled : inbox.length) break
      await new Promise((r) => setTimeout(r, 20))
    }
    for (const r of inbox) assertParses(name, r)
    const got = code(first(inbox))
    byCode[got ?? 'none'] = (byCode[got ?? 'none'] || 0) + 1
    if (want === 'call') {
      assert.equal(calls.length, before + 1, `${name}: rings (${inbox.join('|')})`)
    } else {
      assert.equal(got, want, `${name}: ${JSON.stringify(inbox)}`)
      assert.equal(calls.length, before, `${name}: no call`)
    }
    if (HEADERS[name]) assert.match(first(inbox), HEADERS[name], name)
    if (copies > 1) {
      // the retransmission is the same transaction (RFC 3261 §17.2.3): its answer is the same
      const tags = new Set(inbox.filter((r) => code(r) >= 200).map((r) => /^To:.*;tag=(\S+)\r$/m.exec(r)?.[1]))
      assert.equal(tags.size, 1, `${name}: one transaction for both copies: ${inbox.join('|')}`)
    }
    assert.ok(sip.isRunning, `${name}: still running`)
  }
  // the §8.2 refusals are counted as such, apart from the malformed messages
  const counted = sip.counters()
  assert.ok(counted.refusedRequests >= byCode[405] + byCode[416], JSON.stringify(counted))
  console.log(`counters after UDP: ${JSON.stringify(counted)}`)
  t.diagnostic(`UDP: ${valid} valid / ${invalid} invalid messages tried; first answers by code: ${JSON.stringify(byCode)}`)
  console.log(`conformance UDP: ${valid} valid / ${invalid} invalid; answers by code ${JSON.stringify(byCode)}`)

  for (const name of TCP_CASES) {
    const bytes = fs.readFileSync(path.join(FIXTURES, `${name}.dat`))
    const reply = await new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.write(bytes))
      let buf = ''
      const timer = setTimeout(() => (c.destroy(), reject(new Error(`${name} over TCP: no answer: ${buf}`))), 3000)
      c.on('data', (d) => {
        buf += d.toString('latin1')
        if (buf.includes('\r\n\r\n')) (clearTimeout(timer), c.destroy(), resolve(buf))
      })
      c.on('error', reject)
    })
    assertParses(name, reply)
    assert.equal(code(reply), CASES[name], `${name} over TCP: ${reply}`)
    if (HEADERS[name]) assert.match(reply, HEADERS[name], name)
  }
  console.log(`conformance TCP: ${TCP_CASES.length} messages answered as over UDP`)

  // a normal call from sipp after the torture
  sip.removeAllListeners('incoming_call')
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_call', remote: addr, durationMs: 200, t, service: 'user' })
  const inc = await seen
  await sip.answer(inc.callId)
  await disconnected(sip, events, inc.callId)
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
})

/** One unmasked (server-to-client) text frame. */
const serverFrame = (bytes) => {
  const len = bytes.length
  const head = len < 126 ? Buffer.from([0x81, len]) : Buffer.from([0x81, 126, len >> 8, len & 0xff])
  return Buffer.concat([head, bytes])
}
/** The first whole masked (client-to-server) frame of `buf`: { text, rest } or null. */
function clientFrame(buf) {
  if (buf.length < 2) return null
  let len = buf[1] & 0x7f
  let off = 2
  if (len === 126) (len = buf.length >= 4 ? buf.readUInt16BE(2) : Infinity), (off = 4)
  if (buf.length < off + 4 + len) return null
  const mask = buf.subarray(off, off + 4)
  const body = Buffer.from(buf.subarray(off + 4, off + 4 + len))
  for (let i = 0; i < len; i++) body[i] ^= mask[i % 4]
  return { text: body.toString('latin1'), rest: buf.subarray(off + 4 + len) }
}

const WS_CASES = ['rfc4475/badvers', 'rfc4475/unkscm', 'rfc4475/bext01', 'rfc4475/intmeth', 'rfc4475/invut']
// folded `;  tag = x` (wsinv), three colons (RFC 5118 §4.10), a tagless RFC 2543 From (inv2543)
const WS_STACK_CASES = ['rfc4475/wsinv', 'rfc5118/ipv6-bug-abnf-3-colons', 'rfc4475/inv2543']

test('the RFC 3261 §8.2 refusals over WebSocket: the PBX connection we dial gets the RFC answers', async (t) => {
  // a WebSocket "PBX" (RFC 7118 subprotocol sip) written by hand: it takes our connection and
  // sends the RFC's messages down it
  const http = require('node:http')
  const crypto = require('node:crypto')
  const server = http.createServer()
  const conn = new Promise((resolve) =>
    server.on('upgrade', (req, sock) => {
      const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: sip\r\n\r\n`)
      resolve(sock)
    }),
  )
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => server.close())
  const wsPort = server.address().port
  const { sip } = await startService(t, {
    server: '127.0.0.1', transport: 'ws', serverPort: wsPort, websocketUrl: `ws://127.0.0.1:${wsPort}/`,
    registerExpires: 120, accounts: [{ extension: 'user', password: 'secret-ws' }],
  })
  const sock = await conn
  t.after(() => sock.destroy())
  let buf = Buffer.alloc(0)
  const inbox = []
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d])
    for (let f = clientFrame(buf); f; f = clientFrame(buf)) (inbox.push(f.text), (buf = f.rest))
  })
  /** Sends one fixture down the connection; the first answer with its Call-ID. */
  const exchange = async (name) => {
    const bytes = fs.readFileSync(path.join(FIXTURES, `${name}.dat`))
    const callId = /^(?:call-id|i)\s*:\s*(\S+)/im.exec(bytes.toString('latin1'))[1]
    sock.write(serverFrame(bytes))
    let reply
    for (let i = 0; i < 150 && !reply; i++) {
      reply = inbox.find((m) => /^SIP\/2\.0 [2-6]/.test(m) && m.includes(callId))
      if (!reply) await new Promise((r) => setTimeout(r, 20))
    }
    assert.ok(reply, `${name} over WS: no answer (${JSON.stringify(inbox)})`)
    assertParses(name, reply)
    assert.equal(code(reply), CASES[name], `${name} over WS: ${reply}`)
    if (HEADERS[name]) assert.match(reply, HEADERS[name], name)
  }
  const refusedBefore = sip.counters().refusedRequests
  for (const name of WS_CASES) await exchange(name)
  assert.equal(sip.counters().refusedRequests, refusedBefore + WS_CASES.length)
  // valid messages the stack answers only once `normalize` rewrote them, as on UDP
  for (const name of WS_STACK_CASES) await exchange(name)
  console.log(`conformance WS: ${WS_CASES.length + WS_STACK_CASES.length} messages answered as over UDP`)
  await sip.stop()
})
