// Blind and attended transfer against sipp scenarios written for each flow: our REFER and the
// NOTIFY sequences that report it (`transfer` events), a REFER refused with 403; a REFER from
// a sipp transferor that we accept (202, a new call to a second sipp, NOTIFY 100 then the final
// status, checked by the transferor's scenario), refuse (403) or cannot use (400, the call goes
// on); an INVITE with Replaces that takes one of our calls over (answered at once, the old call
// BYE'd, `call_replaced`) and one that names no dialog (481).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { until } = require('./helpers/wait')

const ACCOUNT = { extension: '7779' }

/** Records the transfer events too (not `refer`: a listener there takes the decision over). */
function recordTransfers(sip, events) {
  for (const name of ['transfer', 'call_replaced']) sip.on(name, (e) => events.push({ name, ...e }))
}

async function confirmedCallTo(t, scenario, keys) {
  const uas = await startSipp({ scenario, t, keys, timeoutMs: 15000 })
  const svc = await startService(t, { accounts: [ACCOUNT] })
  recordTransfers(svc.sip, svc.events)
  const call = await svc.sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(svc.sip, svc.events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  return { uas, call, ...svc }
}

for (const [final, code, reason] of [
  ['200 OK', 200, 'OK'],
  ['486 Busy Here', 486, 'Busy Here'],
]) {
  test(`blind transfer: REFER accepted (202), NOTIFY 100 then ${code} -> transfer events, the last final`, async (t) => {
    if (!requirePeer('sipp', t)) return
    const { uas, call, sip, events } = await confirmedCallTo(t, 'refer_uas_notify', { final })
    await call.transfer('sip:2000@127.0.0.1:5999', { headers: { 'X-CRM-Id': '42' } })
    const last = await waitFor(sip, events, 'transfer', (e) => e.callId === call.id && e.final)
    const reports = events.filter((e) => e.name === 'transfer').map(({ code, reason, final }) => ({ code, reason, final }))
    assert.deepEqual(reports, [
      { code: 100, reason: 'Trying', final: false },
      { code, reason, final: true },
    ])
    assert.equal(last.callId, call.id)
    await sip.hangup(call)
    const r = await uas.done
    assert.equal(r.code, 0, 'sipp checked Refer-To, Referred-By and X-CRM-Id, got 200 to both NOTIFYs: ' + describeSipp(r))
    await sip.stop()
  })
}

test('blind transfer refused: the 403 rejects transfer() with the code; the call goes on', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { uas, call, sip, events } = await confirmedCallTo(t, 'refer_uas_refused')
  await assert.rejects(sip.transfer(call.id, 'sip:2000@127.0.0.1:5999'), /403 Forbidden/)
  assert.equal(call.state, 'confirmed')
  assert.equal(events.filter((e) => e.name === 'transfer').length, 0)
  await assert.rejects(sip.transfer('out-nosuchcall', '2000'), /out-nosuchcall/)
  await assert.rejects(sip.transfer(call, 42), TypeError)
  await assert.rejects(sip.transfer(call, 'not <a> uri'), (e) => e instanceof TypeError && /target:/.test(e.message))
  await assert.rejects(sip.transfer(call, call), /cannot be transferred to itself/)
  await assert.rejects(sip.transfer(call, 'out-gone00000000'), /no such call: out-gone00000000/, 'a call id that is gone is not dialled')
  await assert.rejects(sip.transfer(call, 'sip:2000@127.0.0.1', { headers: { 'Bad Name': 'x' } }), /Bad Name/)
  await sip.hangup(call)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  await sip.stop()
})

/** A sipp transferor calling us, and a sipp transfer target (`targetScenario`). */
async function transferredBySipp(t, transferor, targetScenario, onRefer, config = {}) {
  const target = await startSipp({ scenario: targetScenario, t, timeoutMs: 15000 })
  const svc = await startService(t, { accounts: [ACCOUNT], ...config })
  recordTransfers(svc.sip, svc.events)
  const refers = []
  if (onRefer) svc.sip.on('refer', (e) => (refers.push(e), onRefer(e)))
  svc.sip.on('incoming_call', (e) => svc.sip.answer(e.callId))
  const caller = await startSipp({
    scenario: transferor,
    remote: svc.addr,
    t,
    timeoutMs: 15000,
    durationMs: 100,
    keys: { target: `127.0.0.1:${target.port}` },
  })
  const incoming = await waitFor(svc.sip, svc.events, 'incoming_call')
  return { target, caller, incoming, refers, ...svc }
}

for (const [targetScenario, status] of [
  ['uas_answer', 'SIP/2.0 200 OK'],
  ['uas_busy', 'SIP/2.0 486 Busy Here'],
]) {
  test(`incoming REFER accepted: 202, a new call to the target, NOTIFY 100 then "${status}"`, async (t) => {
    if (!requirePeer('sipp', t)) return
    const { target, caller, incoming, sip, events } = await transferredBySipp(t, 'refer_uac_transferor', targetScenario)
    // The new call: an ordinary outgoing call whose referredFrom is the transferee's call.
    const placed = await waitFor(sip, events, 'call_state', (e) => e.callId !== incoming.callId && e.state === 'calling')
    assert.equal(sip.getCall(placed.callId)?.referredFrom, incoming.callId)
    if (status.includes('200')) {
      await waitFor(sip, events, 'call_state', (e) => e.callId === placed.callId && e.state === 'confirmed')
      await sip.hangup(placed.callId)
    }
    const r = await caller.done
    assert.equal(r.code, 0, 'the transferor checked 202 and both sipfrag NOTIFYs: ' + describeSipp(r))
    const notifies = r.messages.split(/^NOTIFY /m).slice(1)
    assert.equal(notifies.length, 2, r.messages)
    assert.match(notifies[0], /\r\n\r\nSIP\/2\.0 100 Trying\r\n/)
    assert.match(notifies[1], new RegExp(`\\r\\n\\r\\n${status.replace(/\//g, '\\/')}\\r\\n`))
    await disconnected(sip, events, incoming.callId)
    const rt = await target.done
    assert.equal(rt.code, 0, 'the target got the referred INVITE: ' + describeSipp(rt))
    assert.match(rt.messages, /^Referred-By: <sip:1000@/m)
    await sip.stop()
  })
}

test('incoming REFER: no Refer-To and a malformed one get 400, a rejected one 403; the call goes on', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { target, caller, incoming, refers, sip, events } = await transferredBySipp(t, 'refer_uac_bad', 'uas_answer', (e) => {
    assert.equal(e.reject(403), true)
    assert.equal(e.accept(), false, 'the first decision holds')
  })
  const r = await caller.done
  assert.equal(r.code, 0, '400, 400, 403, then 200 to the BYE: ' + describeSipp(r))
  assert.equal(refers.length, 1, 'only the usable REFER became a refer event')
  assert.match(refers[0].referTo, /^<sip:2000@127\.0\.0\.1:\d+>$/)
  assert.match(refers[0].referredBy, /^<sip:1000@/)
  assert.equal(refers[0].replaces, null)
  const d = await disconnected(sip, events, incoming.callId)
  assert.match(d.reason, /remote hangup/, 'ended by the BYE, not by a REFER: ' + JSON.stringify(d))
  assert.equal(events.filter((e) => e.name === 'call_state' && e.callId !== incoming.callId).length, 0, 'no call placed')
  target.kill()
  await sip.stop()
})

test('incoming REFER: a listener that decides nothing gets the default (accept) after a bounded wait', async (t) => {
  if (!requirePeer('sipp', t)) return
  // The bound is min(4 s, 64·T1 / 2): 1.6 s with T1 = 50 ms.
  let offeredAt
  const { target, caller, incoming, sip, events } = await transferredBySipp(
    t,
    'refer_uac_transferor',
    'uas_answer',
    () => (offeredAt = Date.now()),
    { timerT1Ms: 50 },
  )
  const placed = await waitFor(sip, events, 'call_state', (e) => e.callId !== incoming.callId && e.state === 'calling')
  const waited = Date.now() - offeredAt
  assert.ok(waited >= 1400 && waited < 3500, `placed ${waited} ms after the refer event, expected about 1600`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === placed.callId && e.state === 'confirmed')
  await sip.hangup(placed.callId)
  const r = await caller.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.equal((await target.done).code, 0)
  await sip.stop()
})

/** Our tag and the peer's in the dialog of our call, from the SIP trace of our INVITE's 200. */
async function dialogTags(records, sipCallId) {
  const ok = await until(
    () => records.find((r) => r.direction === 'received' && /^SIP\/2\.0 200 /.test(r.sipMessage || '') && r.sipMessage.includes(sipCallId)),
    3000,
    'the traced 200 of our INVITE',
  )
  const tag = (name) => ok.sipMessage.match(new RegExp(`^${name}:.*;tag=([^;\\r\\n]+)`, 'mi'))[1]
  return { local: tag('From'), remote: tag('To') }
}

test('INVITE with Replaces naming our call takes it over; one naming no dialog gets 481', async (t) => {
  if (!requirePeer('sipp', t)) return
  const records = []
  const logger = { debug: (r) => records.push(r), info() {}, warn() {}, error() {} }
  const old = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 15000 })
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT], logger, sipTrace: true })
  recordTransfers(sip, events)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${old.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  const tags = await dialogTags(records, call.sipCallId)

  const wrong = `${call.sipCallId};to-tag=${tags.remote};from-tag=${tags.local}` // tags swapped
  const nomatch = await startSipp({ scenario: 'replaces_uac_nomatch', remote: addr, t, keys: { replaces: wrong } })
  const rn = await nomatch.done
  assert.equal(rn.code, 0, '481 for a Replaces that names no dialog: ' + describeSipp(rn))
  assert.equal(call.state, 'confirmed', 'the call is untouched')

  const replaces = `${call.sipCallId};to-tag=${tags.local};from-tag=${tags.remote}`
  const taker = await startSipp({ scenario: 'replaces_uac_match', remote: addr, t, durationMs: 300, keys: { replaces } })
  const replaced = await waitFor(sip, events, 'call_replaced')
  assert.equal(replaced.callId, call.id)
  const d = await disconnected(sip, events, call.id)
  assert.equal(d.reason, 'replaced')
  await waitFor(sip, events, 'call_state', (e) => e.callId === replaced.newCallId && e.state === 'confirmed')
  const ro = await old.done
  assert.equal(ro.code, 0, 'the replaced call got our BYE: ' + describeSipp(ro))
  const rt = await taker.done
  assert.equal(rt.code, 0, 'the new call was answered without ringing and ended by its BYE: ' + describeSipp(rt))
  assert.doesNotMatch(rt.messages, /^SIP\/2\.0 180 /m)
  assert.ok(!events.some((e) => e.name === 'incoming_call'), 'a replacing call is answered, not offered')
  await sip.stop()
})
