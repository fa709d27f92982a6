// SipService.options(): the out-of-dialog OPTIONS ping (RFC 3261 §11) of the library API,
// against sipp and a silent UDP socket; the CLI's `options` command is in cli.test.js.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { SipService } = require('..')
const { requirePeer, freePort } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService } = require('./helpers/sip')

test('options() resolves with any final response: a 404 is an answer, with its round trip', async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_options_404', calls: 1, t })
  const { sip } = await startService(t, { accounts: [{ extension: '7779', register: false }] })
  const r = await sip.options(`sip:127.0.0.1:${uas.port}`, { timeoutMs: 5000 })
  assert.deepEqual({ code: r.code, reason: r.reason }, { code: 404, reason: 'Not Found' })
  assert.ok(r.rttMs > 0 && r.rttMs < 1000, `rttMs ${r.rttMs}`)
  const s = await uas.done
  assert.equal(s.code, 0, describeSipp(s))
  // what went out: an OPTIONS from the account, with Contact and Accept (RFC 3261 §11.1)
  assert.match(s.messages, /OPTIONS sip:127\.0\.0\.1:\d+ SIP\/2\.0/)
  assert.match(s.messages, /From: <sip:7779@[^>]+>;tag=/)
  assert.match(s.messages, /Accept: application\/sdp/)
  assert.match(s.messages, /Contact: <sip:7779@127\.0\.0\.1:\d+>/)
})

test('options(): no answer rejects naming the URI and the wait; an ICMP error names the target', async (t) => {
  const silent = dgram.createSocket('udp4')
  await new Promise((res) => silent.bind(0, '127.0.0.1', res))
  t.after(() => silent.close())
  const seen = []
  silent.on('message', (m) => seen.push(m.toString()))
  const { sip } = await startService(t)
  const port = silent.address().port
  const started = Date.now()
  await assert.rejects(sip.options(`127.0.0.1:${port}`, { timeoutMs: 700 }), (e) => {
    assert.ok(!(e instanceof TypeError), 'a timeout is not a usage error')
    assert.equal(e.message, `OPTIONS sip:127.0.0.1:${port}: no response within 700 ms`)
    return true
  })
  const took = Date.now() - started
  assert.ok(took >= 650 && took < 2500, `bounded by timeoutMs: ${took} ms`)
  assert.ok(seen.length >= 1 && /^OPTIONS sip:127\.0\.0\.1:\d+ SIP\/2\.0\r\n/.test(seen[0]), 'the request went out')
  const dead = await freePort()
  await assert.rejects(sip.options(`sip:127.0.0.1:${dead}`), /cannot reach 127\.0\.0\.1:\d+: destination unreachable \(ICMP\)/)
})

test('options(): bad arguments are TypeErrors naming them; before start() an Error', async (t) => {
  const idle = new SipService({ bindAddress: '127.0.0.1', localPort: 0 })
  await assert.rejects(idle.options('sip:127.0.0.1'), /not started/)
  const { sip } = await startService(t)
  await assert.rejects(sip.options(42), { name: 'TypeError', message: /options\(uri\): uri must be a non-empty string/ })
  await assert.rejects(sip.options('sip:a b'), { name: 'TypeError', message: /uri: not a SIP URI/ })
  await assert.rejects(sip.options('1000'), { name: 'TypeError', message: /no server is configured/ })
  await assert.rejects(sip.options('sip:127.0.0.1', { timeoutMs: -1 }), { name: 'TypeError', message: /timeoutMs must be a positive integer/ })
  await assert.rejects(sip.options('sips:127.0.0.1'), { name: 'TypeError', message: /needs transport tls/ })
})

test('options() with an outboundProxy: sent to the proxy with Route: <proxy;lr>, the Request-URI kept', async (t) => {
  if (!requirePeer('sipp', t)) return
  const proxy = await startSipp({ scenario: 'uas_options_404', calls: 1, t })
  const elsewhere = await freePort()
  const { sip } = await startService(t, { outboundProxy: `sip:127.0.0.1:${proxy.port}` })
  const r = await sip.options(`sip:127.0.0.1:${elsewhere}`, { timeoutMs: 5000 })
  assert.equal(r.code, 404, 'the proxy answered')
  const s = await proxy.done
  assert.equal(s.code, 0, describeSipp(s))
  assert.match(s.messages, new RegExp(`OPTIONS sip:127\\.0\\.0\\.1:${elsewhere} SIP/2\\.0`))
  assert.match(s.messages, new RegExp(`Route: <sip:127\\.0\\.0\\.1:${proxy.port};lr>`))
})
