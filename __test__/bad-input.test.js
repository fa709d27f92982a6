// Robustness: garbage on the wire, unanswered calls, bad JS arguments.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { until } = require('./helpers/wait')
const { startService, disconnected } = require('./helpers/sip')
const { SipService } = require('..')

const ACCOUNT = { extension: '7779' }

function sendRaw(port, buffers) {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.on('error', reject)
    s.bind(0, '127.0.0.1', async () => {
      try {
        s.setSendBufferSize(1 << 20)
      } catch {}
      for (const b of buffers) {
        await new Promise((r) => s.send(b, port, '127.0.0.1', () => r()))
      }
      s.close(resolve)
    })
  })
}

async function goodCall(t, sip, events, addr) {
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_call', remote: addr, durationMs: 200, t })
  const inc = await seen
  await sip.answer(inc.callId)
  await disconnected(sip, events, inc.callId)
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
}

test('garbage, a truncated INVITE and a 70 KB datagram do not break the next call', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr, port } = await startService(t, { accounts: [ACCOUNT] })
  await goodCall(t, sip, events, addr)
  const before = sip.counters().malformedMessages

  const truncated = Buffer.from(
    'INVITE sip:7779@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:7779@127.0.0.1>\r\nCall-ID: trunc@x\r\nCSeq: 1 INV',
  )
  const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a, 0x80, 0x81])
  const big = Buffer.alloc(70 * 1024, 'A')
  big.write('INVITE sip:7779@127.0.0.1 SIP/2.0\r\nX-Big: ')
  const noLength = Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 99999\r\n\r\nshort')
  await sendRaw(port, [garbage, truncated, big, noLength, Buffer.from('\u0000'.repeat(64))])
  await until(() => sip.counters().malformedMessages > before, 5000, () => `malformedMessages above ${before} (${JSON.stringify(sip.counters())})`)

  assert.ok(sip.isRunning)
  await goodCall(t, sip, events, addr)
  const after = sip.counters().malformedMessages
  assert.ok(after > before, `malformedMessages grew: ${before} -> ${after}`)
  assert.equal(sip.counters().liveCalls, 0)
  assert.ok(!events.some((e) => e.name === 'incoming_call' && /trunc@x/.test(JSON.stringify(e))))
  await sip.stop()
})

test('a spray of 250 malformed datagrams is counted, and logged at the 1st, 10th and 100th only', async (t) => {
  const records = []
  const logger = {}
  for (const m of ['debug', 'info', 'warn', 'error']) logger[m] = (r) => records.push(r)
  const { sip, port } = await startService(t, { accounts: [ACCOUNT], logger, logLevel: 'warn' })
  const before = sip.counters().malformedMessages
  const junk = Array.from({ length: 250 }, (_, i) => Buffer.from(`NOT SIP ${i}\r\n\r\n`))
  await sendRaw(port, junk)
  await until(() => sip.counters().malformedMessages >= before + 250, 5000, () => `250 counted (${JSON.stringify(sip.counters())})`)
  // the records reach JS through a queue: give the last ones time to arrive
  await new Promise((r) => setTimeout(r, 300))
  const lines = records.filter((r) => r.message === 'dropped malformed SIP datagram')
  assert.deepEqual(
    lines.map((r) => Number(r.total)),
    [1, 10, 100],
    `one line per decade of the count, not per packet: ${JSON.stringify(lines)}`,
  )
  await sip.stop()
})

test('an unanswered outgoing call ends by inviteTimeoutMs; no call is left', async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_noanswer', t })
  const { sip, events } = await startService(t, { accounts: [ACCOUNT], inviteTimeoutMs: 1500 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  const d = await disconnected(sip, events, call.id, 10000)
  assert.ok(d.code >= 400 || d.code === 0, JSON.stringify(d))
  await uas.done
  assert.equal(sip.counters().liveCalls, 0)
  assert.equal(sip.calls().length, 0)
  await sip.stop()
})

test('a call to a port where nobody listens ends disconnected', async (t) => {
  const { sip, events } = await startService(t, { accounts: [ACCOUNT], inviteTimeoutMs: 3000 })
  const call = await sip.makeCall('7779', 'sip:1000@127.0.0.1:9') // discard port: ICMP unreachable or silence
  await disconnected(sip, events, call.id, 40000)
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
})

test('bad JS arguments throw errors that name the field', async (t) => {
  assert.throws(() => new SipService({ localPort: 'x' }), (e) => e instanceof TypeError && /localPort/.test(e.message))
  assert.throws(() => new SipService({ accounts: 'x' }), (e) => e instanceof TypeError && /accounts/.test(e.message))
  assert.throws(
    () => new SipService({ accounts: [{ extension: 7 }] }),
    (e) => e instanceof Error && /extension/.test(e.message),
  )
  const { sip } = await startService(t, { accounts: [ACCOUNT] })
  await assert.rejects(() => Promise.resolve().then(() => sip.makeCall(123)), (e) => e instanceof Error && /from/.test(e.message))
  await assert.rejects(() => Promise.resolve().then(() => sip.makeCall('7779')), (e) => e instanceof Error && /to/.test(e.message))
  await assert.rejects(() => Promise.resolve().then(() => sip.answer(42)), (e) => e instanceof Error && /callId/.test(e.message))
  await assert.rejects(() => Promise.resolve().then(() => sip.answer('no-such-call')), Error)
  await sip.stop()
})
