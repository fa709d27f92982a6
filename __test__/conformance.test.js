// RFC 4475 §3 torture messages and RFC 5118 IPv6 messages, byte-exact from
// crates/sipua/tests/fixtures, sent to a running service over real UDP (and a handful over TCP):
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
const viaToUs = (bytes, port) =>
  Buffer.from(bytes.toString('latin1').replace(/(SIP\s*\/\s*2\.0\s*\/\s*UDP\s+)([^;\s]+)/i, `$1${PEER}:${port}`), 'latin1')

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
  'rfc4475/semiuri': 200,
  'rfc4475/transports': 200,
  'rfc4475/noreason': null,
  'rfc4475/unreason': null,
  'rfc4475/badinv01': 400,
  'rfc4475/clerr': 400,
  'rfc4475/ncl': 400,
  'rfc4475/scalar02': 400,
  'rfc4475/scalarlg': null,
  'rfc4475/ltgtruri': 400,
  'rfc4475/lwsruri': 400,
  'rfc4475/lwsstart': 400,
  'rfc4475/trws': 400,
  'rfc4475/escruri': 400,
  'rfc4475/baddate': 'call',
  'rfc4475/badvers': 505,
  'rfc4475/mismatch01': 400,
  'rfc4475/mismatch02': 400,
  'rfc4475/bigcode': null,
  'rfc4475/badbranch': 200,
  'rfc4475/insuf': null,
  'rfc4475/unksm': 416,
  'rfc4475/unksm2': 405,
  'rfc4475/bext01': 420,
  'rfc4475/invut': 415,
  'rfc4475/regaut01': 405,
  'rfc4475/multi01': 400,
  'rfc4475/mcl01': 400,
  'rfc4475/zeromf': 200,
  'rfc4475/cparam01': 405,
  'rfc4475/sdp01': 406,
  'rfc4475/inv2543': 404,
  'rfc5118/ipv6-good': 405,
  'rfc5118/ipv6-bad': 400,
  'rfc5118/ipv6-port-bad': 405,
}
// Headers the RFC asks for with the answer.
const HEADERS = {
  'rfc4475/bext01': /^Unsupported: nothingSupportsThis, nothingSupportsThisEither$/m,
  'rfc4475/invut': /^Accept: application\/sdp$/m,
  'rfc4475/sdp01': /^Accept: application\/sdp$/m,
  'rfc4475/intmeth': /^Allow: .*INVITE/m,
  'rfc4475/escnull': /^Allow: .*INVITE/m,
}
// Valid messages rsipstack drops after our guard passed them (listed for upstream, see README):
// the test checks they still go unanswered, so a fix upstream shows up here.
const KNOWN_GAPS = {
  'rfc4475/wsinv': 'rsipstack: "from tags missing" for `;  tag = x` (LWS around ; and =)',
  'rfc4475/inv2543': 'rsipstack drops an RFC 2543 request (no From tag, no branch)',
}
// The syntactically invalid ones (RFC 4475 §3.1.2, RFC 5118 §4.10 and §4.4); the others are valid
// syntax (§3.1.1, §3.2-§3.4), whatever their semantics get.
const INVALID = new Set(['badinv01', 'clerr', 'ncl', 'scalar02', 'scalarlg', 'ltgtruri', 'lwsruri', 'lwsstart', 'trws',
  'escruri', 'baddate', 'badvers', 'mismatch01', 'mismatch02', 'bigcode', 'ipv6-bad', 'ipv6-port-bad'])
const TCP_CASES = ['rfc4475/badvers', 'rfc4475/mismatch01', 'rfc4475/bext01', 'rfc4475/unksm', 'rfc4475/lwsdisp']

/** A SIP response must at least have a status line, the headers it routes by, and end its head. */
function assertParses(name, text) {
  assert.match(text, /^SIP\/2\.0 [1-6]\d\d [^\r\n]*\r\n/, `${name}: status line of ${JSON.stringify(text)}`)
  for (const h of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    assert.match(text, new RegExp(`^(${h}|${h[0].toLowerCase()}):`, 'mi'), `${name}: ${h} in ${text}`)
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
  sock.on('message', (m) => {
    const text = m.toString('latin1')
    if (!callId || text.includes(callId)) inbox.push(text)
  })

  const byCode = {}
  let valid = 0
  let invalid = 0
  for (const [name, want] of Object.entries(CASES)) {
    const bytes = viaToUs(fs.readFileSync(path.join(FIXTURES, `${name}.dat`)), sock.address().port)
    inbox = []
    callId = (/^(?:call-id|i)\s*:\s*(\S+)/im.exec(bytes.toString('latin1')) || [])[1] || '(none: insuf)'
    const before = calls.length
    await new Promise((r) => sock.send(bytes, port, '127.0.0.1', r))
    if (INVALID.has(name.split('/')[1])) invalid++
    else valid++
    const gap = KNOWN_GAPS[name]
    const deadline = Date.now() + (want === null || gap ? 300 : 3000)
    while (Date.now() < deadline) {
      if (want === null ? false : want === 'call' ? calls.length > before && inbox.some((r) => code(r) >= 200) : inbox.length) break
      await new Promise((r) => setTimeout(r, 20))
    }
    for (const r of inbox) assertParses(name, r)
    const got = code(first(inbox))
    byCode[got ?? 'none'] = (byCode[got ?? 'none'] || 0) + 1
    if (gap) {
      assert.equal(got, null, `${name} is answered now (${got}): drop it from KNOWN_GAPS`)
      t.diagnostic(`known gap ${name}: ${gap}`)
    } else if (want === 'call') {
      assert.equal(calls.length, before + 1, `${name}: rings (${inbox.join('|')})`)
    } else {
      assert.equal(got, want, `${name}: ${JSON.stringify(inbox)}`)
      assert.equal(calls.length, before, `${name}: no call`)
    }
    if (HEADERS[name]) assert.match(first(inbox), HEADERS[name], name)
    assert.ok(sip.isRunning, `${name}: still running`)
  }
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
