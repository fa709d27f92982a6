// Re-INVITE and UPDATE from either side with and without SDP (an offerless re-INVITE: the offer
// in the 200, the answer in the ACK), 488 to an unusable offer with the media going on, glare
// (491 to the peer's offer while ours is pending; ours retried after the RFC 3261 §14.1 delay),
// and UPDATE/INFO/NOTIFY on an early dialog, as callee and as caller. Every sipp scenario checks
// our messages with regexes that fail it.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779' }
const portOf = (address) => Number(address.split(':').pop())

async function incomingFromSipp(t, scenario, opts = {}) {
  const svc = await startService(t, { accounts: [ACCOUNT] })
  const seen = new Promise((resolve) => svc.sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario, remote: svc.addr, t, ...opts })
  const { callId } = await seen
  return { ...svc, uac, callId }
}

test('re-INVITE and UPDATE both ways, with and without SDP; 488 keeps the media', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, uac, callId } = await incomingFromSipp(t, 'reinvite_both')
  const failed = []
  sip.on('request_failed', (e) => failed.push(e))
  await sip.answer(callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')
  const port0 = portOf(sip.callStats(callId).remoteAddress)

  // sipp's offerless re-INVITE: its ACK answers our offer with its media port + 2
  await until(() => portOf(sip.callStats(callId).remoteAddress) === port0 + 2, 5000, () => `the answer in sipp's ACK followed (${JSON.stringify(sip.callStats(callId))})`)
  // then its UPDATEs and a G.729-only re-INVITE (488): the call keeps PCMU and goes on sending
  await sleep(800)
  const s1 = sip.callStats(callId)
  await sleep(300)
  const s2 = sip.callStats(callId)
  assert.equal(s2.codec, 'PCMU', `after the 488 the codec is the old one: ${JSON.stringify(s2)}`)
  assert.equal(portOf(s2.remoteAddress), port0 + 2)
  assert.ok(s2.packetsSent - s1.packetsSent >= 8, `RTP goes on after the 488: ${s1.packetsSent} -> ${s2.packetsSent} in 300 ms`)

  await assert.rejects(sip.reinvite(callId, { offer: 'no' }), TypeError)
  await assert.rejects(sip.update(callId, { body: true }), TypeError)
  // ours: an offerless re-INVITE (sipp checks the answer in our ACK), UPDATE with and without SDP
  await sip.reinvite(callId, { offer: false })
  await sip.getCall(callId).update()
  await sip.update(callId, { offer: false })
  assert.deepEqual(failed, [])
  await disconnected(sip, events, callId)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got our offer in the 200, 488, the answer in our ACK, our UPDATEs: ' + describeSipp(r))
})

test('glare: the peer re-INVITEs while ours is pending (491), ours gets 491 and is retried', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, uac, callId } = await incomingFromSipp(t, 'glare_uac')
  await sip.answer(callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')
  const holds = []
  sip.on('hold', (e) => holds.push(e))
  const t0 = Date.now()
  await sip.reinvite(callId)
  const took = Date.now() - t0
  // sipp placed the call, so our retry waits 0-2 s (RFC 3261 §14.1)
  assert.ok(took < 3500, `the retry came within the 0-2 s window: reinvite() took ${took} ms`)
  // its sendonly offer got 491: it did not put us on hold
  assert.deepEqual(holds, [])
  assert.equal(sip.callInfo(callId).hold, 'none')
  await disconnected(sip, events, callId)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 491 for its re-INVITE, and our retry after its 491: ' + describeSipp(r))
})

test('early dialog as callee: UPDATE with an offer, INFO and NOTIFY before the answer are answered', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, uac, callId } = await incomingFromSipp(t, 'update_early_uac')
  const dtmf = new Promise((resolve) => sip.once('dtmf', resolve))
  const d = await dtmf
  assert.equal(d.callId, callId)
  assert.equal(d.digit, '5')
  await assert.rejects(sip.reinvite(callId), new RegExp(`reinvite: call ${callId} is incoming, not confirmed`))
  await sleep(200) // its INFO 415 and NOTIFY 481 follow at once
  // the UPDATE's offer (PCMA, port + 2) replaced the INVITE's: our 200 to the INVITE answers it
  await sip.answer(callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')
  const st = sip.callStats(callId)
  assert.equal(st.codec, 'PCMA', `the media follows the early UPDATE: ${JSON.stringify(st)}`)
  await disconnected(sip, events, callId)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 200 with SDP to its early UPDATE, 200/415 to INFOs, 481 to NOTIFY: ' + describeSipp(r))
})

test('early dialog as caller: the callee UPDATEs and INFOs after its 180; we answer them', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'update_early_uas', t })
  const { sip, events } = await startService(t, { accounts: [ACCOUNT] })
  const dtmf = new Promise((resolve) => sip.once('dtmf', resolve))
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  const d = await dtmf
  assert.equal(d.digit, '7')
  await assert.rejects(call.hold(), new RegExp(`hold: call ${call.id} is ringing, not confirmed`))
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await sip.hangup(call.id)
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp got 200 with SDP to its early UPDATE and 200 to its INFO: ' + describeSipp(r))
})

test('a re-INVITE pending when the peer hangs up rejects at once, not 64·T1 later', { timeout: 10000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, uac, callId } = await incomingFromSipp(t, 'reinvite_bye')
  await sip.answer(callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')
  const t0 = Date.now()
  await assert.rejects(sip.reinvite(callId), /reinvite: call \S+ ended before its INVITE was answered/)
  assert.ok(Date.now() - t0 < 3000, `reinvite() ended with the call: ${Date.now() - t0} ms`)
  await disconnected(sip, events, callId)
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
})
