// Incoming calls: sipp (UAC) calls sip-native.
'use strict'

const { SipService } = require('..')

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779' }

test('answered incoming call: incoming_call, answer, sipp ACKs and BYEs -> disconnected', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_call', remote: addr, durationMs: 500, t })
  const inc = await seen
  assert.equal(inc.type, 'incoming_call')
  assert.equal(typeof inc.callId, 'string')
  assert.match(inc.from, /^sip:1000@127\.0\.0\.1/)
  assert.match(inc.to, /^sip:7779@127\.0\.0\.1/)
  assert.equal(inc.fromUser, '1000')
  assert.ok(Array.isArray(inc.headers) && inc.headers.some(([n]) => /^call-id$/i.test(n)), 'headers carry Call-ID')
  const callIdHeader = inc.headers.find(([n]) => /^call-id$/i.test(n))[1]
  assert.equal(inc.sipCallId, callIdHeader, 'the event carries the SIP Call-ID')
  assert.equal(sip.getCall(inc.callId).sipCallId, callIdHeader, 'and so does the Call object')
  await sip.answer(inc.callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed')
  const d = await disconnected(sip, events, inc.callId)
  assert.equal(d.direction, 'incoming')
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 200 with SDP and 200 for its BYE: ' + describeSipp(r))
  // RFC 3261 §17.2.1: our first answer to the INVITE is 100 Trying, before the 180
  const responses = r.messages.match(/^SIP\/2\.0 \d{3} .*$/gm) || []
  assert.match(responses[0] || '', /^SIP\/2\.0 100 /, `first response: ${responses.join(' | ')}`)
  assert.match(responses[1] || '', /^SIP\/2\.0 180 /, `second response: ${responses.join(' | ')}`)
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
})

test('reject(486): sipp receives 486', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  sip.on('incoming_call', (e) => sip.reject(e.callId, 486).catch(() => {}))
  const uac = await startSipp({ scenario: 'uac_rejected', remote: addr, keys: { expected: '486' }, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 486: ' + describeSipp(r))
  const inc = events.find((e) => e.name === 'incoming_call')
  assert.ok(inc, 'incoming_call was emitted')
  const d = await disconnected(sip, events, inc.callId)
  assert.equal(d.code, 486)
  await sip.stop()
})

test('sipp cancels: disconnected with code 487', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_cancel', remote: addr, t })
  const inc = await seen
  const d = await disconnected(sip, events, inc.callId)
  assert.equal(d.code, 487, JSON.stringify(d))
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 180, 200 for CANCEL and 487: ' + describeSipp(r))
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
})

test('no incoming_call listener: the call is refused with 480', async (t) => {
  if (!requirePeer('sipp', t)) return
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, accounts: [ACCOUNT] })
  await sip.start()
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  const addr = `127.0.0.1:${sip.localAddress().port}`
  assert.equal(sip.listenerCount('incoming_call'), 0)
  const uac = await startSipp({ scenario: 'uac_rejected', remote: addr, keys: { expected: '480' }, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 480: ' + describeSipp(r))
  await sip.stop()
})

test('incomingCallTimeoutMs: an unanswered call gets 480', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT], incomingCallTimeoutMs: 1500 })
  sip.on('incoming_call', () => {}) // listen, never answer
  const started = Date.now()
  const uac = await startSipp({ scenario: 'uac_rejected', remote: addr, keys: { expected: '480' }, t })
  const r = await uac.done
  const elapsed = Date.now() - started
  assert.equal(r.code, 0, 'sipp got 480: ' + describeSipp(r))
  assert.ok(elapsed >= 1400, `480 came after ${elapsed} ms, expected after the 1500 ms timeout`)
  const inc = events.find((e) => e.name === 'incoming_call')
  assert.ok(inc)
  const d = await disconnected(sip, events, inc.callId)
  assert.equal(d.code, 480)
  await sip.stop()
})

test('an offer with no codec in common (G.729 only) is refused with 488 and no call is offered', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  sip.on('incoming_call', () => {})
  const uac = await startSipp({ scenario: 'uac_g729_only', remote: addr, keys: { expected: '488' }, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 488: ' + describeSipp(r))
  assert.equal(events.filter((e) => e.name === 'incoming_call').length, 0)
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
})
