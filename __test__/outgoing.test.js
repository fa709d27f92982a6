// Outgoing calls from sip-native to sipp acting as the called party (UAS).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, callStates, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779', displayName: 'Test' }

async function callSipp(t, scenario, config = {}) {
  const uas = await startSipp({ scenario, t, timeoutMs: 20000 })
  const svc = await startService(t, { accounts: [ACCOUNT], ...config })
  const call = await svc.sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  assert.equal(typeof call.id, 'string')
  assert.equal(call.direction, 'outgoing')
  return { uas, call, ...svc }
}

test('answered call: calling -> ringing -> confirmed, hangup sends BYE', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { uas, call, sip, events } = await callSipp(t, 'uas_answer')
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  const states = callStates(events, call.id)
  assert.equal(states[0], 'calling', `first state: ${states}`)
  assert.ok(states.includes('ringing') || states.includes('early'), `ringing before confirmed: ${states}`)
  assert.ok(sip.calls().some((c) => c.id === call.id), 'confirmed call is listed in calls()')
  await sip.hangup(call.id)
  const d = await disconnected(sip, events, call.id)
  assert.equal(d.direction, 'outgoing')
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp UAS got INVITE, ACK and BYE: ' + describeSipp(r))
  assert.match(r.messages, /^BYE sip:/m)
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
  assert.equal(sip.isRunning, false)
})

for (const [scenario, code] of [
  ['uas_busy', 486],
  ['uas_unavailable', 503],
]) {
  test(`rejected call: ${code} -> disconnected with code ${code}`, async (t) => {
    if (!requirePeer('sipp', t)) return
    const { uas, call, sip, events } = await callSipp(t, scenario)
    const d = await disconnected(sip, events, call.id)
    assert.equal(d.code, code, JSON.stringify(d))
    assert.ok(!callStates(events, call.id).includes('confirmed'))
    const r = await uas.done
    assert.equal(r.code, 0, 'sipp UAS got the ACK for the final response: ' + describeSipp(r))
    assert.equal(sip.counters().liveCalls, 0)
    await sip.stop()
  })
}

test('no answer: hangup while ringing sends CANCEL -> 487', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { uas, call, sip, events } = await callSipp(t, 'uas_noanswer')
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && (e.state === 'ringing' || e.state === 'early'))
  await sip.hangup(call)
  const d = await disconnected(sip, events, call.id)
  assert.equal(d.code, 487, JSON.stringify(d))
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp UAS got CANCEL and the ACK for 487: ' + describeSipp(r))
  assert.match(r.messages, /^CANCEL sip:/m)
  await sip.stop()
})

test('no answer: inviteTimeoutMs cancels the call -> 408 (no answer)', async (t) => {
  if (!requirePeer('sipp', t)) return
  const started = Date.now()
  const { uas, call, sip, events } = await callSipp(t, 'uas_noanswer', { inviteTimeoutMs: 2000 })
  const d = await disconnected(sip, events, call.id, 10000)
  const elapsed = Date.now() - started
  // We sent the CANCEL (the peer answers 487); the event says why: our timeout.
  assert.equal(d.code, 408, JSON.stringify(d))
  assert.match(d.reason, /no answer/, JSON.stringify(d))
  assert.ok(elapsed >= 1800 && elapsed < 8000, `cancelled after ${elapsed} ms, expected about 2000`)
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp UAS got CANCEL: ' + describeSipp(r))
  await sip.stop()
})
