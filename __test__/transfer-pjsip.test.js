// Blind and attended transfer among three parties: us and two PJSIP phones (pjsua2 wheel, null
// audio), in each role we can take: transferor, transferee, and the target an INVITE with
// Replaces reaches. After each step the audio is checked by tone on the call that is up
// (frequency within 2 %, level within 3 dB): our recording, or a PJSIP phone's.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const A = require('./helpers/audio')
const { startPjsua2 } = require('./peers/pjsua2')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779' }
const TONE_MS = 1200

function recordTransfers(sip, events) {
  for (const name of ['transfer', 'call_replaced']) sip.on(name, (e) => events.push({ name, ...e }))
}

async function parties(t) {
  const svc = await startService(t, { accounts: [ACCOUNT] })
  recordTransfers(svc.sip, svc.events)
  const [p1, p2] = await Promise.all([
    startPjsua2({ t, user: 'alice', autoAnswer: true, multi: true, maxSeconds: 40 }),
    startPjsua2({ t, user: 'bob', autoAnswer: true, multi: true, maxSeconds: 40 }),
  ])
  return { ...svc, p1, p2, dir: tmpDir('transfer-pjsip'), ourUri: `sip:${ACCOUNT.extension}@127.0.0.1:${svc.port}` }
}

/** `pj` plays `freq` on its current call; our recording of call `callId` must hold it. */
async function weHear(sip, callId, pj, freq, file) {
  await sip.record(callId, file)
  await pj.playTone(freq, TONE_MS, -10)
  await pj.toneDone()
  await sleep(A.PLAYOUT_MS)
  await sip.stopRecording(callId)
  A.assertTone(A.toneCheck(file), { freq, levelDb: -10, what: `our recording of ${freq} Hz from PJSIP on ${callId}` })
}

/** We play `freq` on `callId`; `pj`'s recording of its current call must hold it. */
async function pjHearsUs(sip, callId, pj, freq, file) {
  await pj.record(file)
  await sip.playTone(callId, { frequency: freq, durationMs: TONE_MS, level: -10 })
  await sleep(A.PLAYOUT_MS)
  await pj.stopRecord()
  A.assertTone(A.toneCheck(file), { freq, levelDb: -10, what: `PJSIP's recording of our ${freq} Hz` })
}

/** `from` plays `freq` on its current call; `to` records its current call: PJSIP to PJSIP. */
async function pjHearsPj(from, to, freq, file) {
  await to.record(file)
  await from.playTone(freq, TONE_MS, -10)
  await from.toneDone()
  await sleep(A.PLAYOUT_MS)
  await to.stopRecord()
  A.assertTone(A.toneCheck(file), { freq, levelDb: -10, what: `PJSIP-to-PJSIP ${freq} Hz after the transfer` })
}

const confirmed = (sip, events, callId) =>
  waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')

test('blind, we transfer: our REFER moves PJSIP 1 to PJSIP 2; NOTIFYs 100..200; they talk', { timeout: 40000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const { sip, events, p1, p2, dir } = await parties(t)
  const call = await sip.makeCall('7779', p1.uri)
  await confirmed(sip, events, call.id)
  await p1.established()
  await pjHearsUs(sip, call.id, p1, 1000, path.join(dir, 'b1.wav'))

  await call.transfer(p2.uri)
  const last = await waitFor(sip, events, 'transfer', (e) => e.callId === call.id && e.final, 15000)
  assert.equal(last.code, 200, JSON.stringify(events.filter((e) => e.name === 'transfer')))
  await p2.waitEvent('call_state', (e) => e.state === 'confirmed' && e.role === 'uas')
  await sip.hangup(call)
  await p1.waitEvent('call_state', (e) => e.state === 'confirmed' && e.role === 'uac')
  await pjHearsPj(p1, p2, 440, path.join(dir, 'b2.wav'))
})

test('blind, PJSIP transfers us: its REFER (accepted by default) has us call PJSIP 2; audio on the new call', { timeout: 40000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const { sip, events, p1, p2, dir, ourUri } = await parties(t)
  sip.on('incoming_call', (e) => sip.answer(e.callId))
  p1.dial(ourUri)
  const first = await waitFor(sip, events, 'incoming_call')
  await confirmed(sip, events, first.callId)
  await p1.established()
  await weHear(sip, first.callId, p1, 440, path.join(dir, 'i1.wav'))

  p1.cmd('xfer', p2.uri)
  const placed = await waitFor(sip, events, 'call_state', (e) => e.callId !== first.callId && e.state === 'confirmed', 15000)
  assert.equal(sip.getCall(placed.callId)?.referredFrom, first.callId)
  const st = await p1.waitEvent('transfer_status', (e) => e.final, 10000)
  assert.equal(st.code, 200, p1.describe())
  await disconnected(sip, events, first.callId) // PJSIP hangs up once the transfer succeeded
  await p2.waitEvent('media_active')
  await weHear(sip, placed.callId, p2, 1000, path.join(dir, 'i2.wav'))
  await sip.hangup(placed.callId)
})

test('attended, we transfer: REFER with Replaces; PJSIP 2 lets PJSIP 1 take our call over; they talk', { timeout: 40000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const { sip, events, p1, p2, dir } = await parties(t)
  const a = await sip.makeCall('7779', p1.uri)
  const b = await sip.makeCall('7779', p2.uri)
  await Promise.all([confirmed(sip, events, a.id), confirmed(sip, events, b.id), p1.established(), p2.established()])
  await pjHearsUs(sip, b.id, p2, 1000, path.join(dir, 'a1.wav'))

  await sip.transfer(a, b)
  const d = await disconnected(sip, events, b.id, 15000) // PJSIP 2 ends our call: replaced
  assert.equal(d.code, 200, JSON.stringify(d))
  await p2.waitEvent('replaced', () => true, 5000)
  const last = await waitFor(sip, events, 'transfer', (e) => e.callId === a.id && e.final, 10000)
  assert.equal(last.code, 200)
  await sip.hangup(a)
  await pjHearsPj(p1, p2, 440, path.join(dir, 'a2.wav'))
})

// PJSIP 1 in a call with PJSIP 2 and, answered by us, one with us (its 440 Hz heard here):
// the start of both attended transfers that PJSIP 1 makes.
async function pjsipCallsBoth(t, recording) {
  const { sip, events, p1, p2, dir, ourUri } = await parties(t)
  sip.on('incoming_call', (e) => sip.answer(e.callId))
  p1.dial(p2.uri)
  const toP2 = await p1.waitEvent('calling')
  await p1.waitEvent('call_state', (e) => e.id === toP2.id && e.state === 'confirmed')
  p1.dial(ourUri)
  const toUs = await p1.waitEvent('calling', (e) => e.id !== toP2.id)
  const first = await waitFor(sip, events, 'incoming_call')
  await confirmed(sip, events, first.callId)
  await weHear(sip, first.callId, p1, 440, path.join(dir, recording))
  return { sip, events, p1, p2, dir, toP2, toUs, first }
}

test('attended, PJSIP transfers us: REFER with Replaces has us call PJSIP 2, which swaps calls', { timeout: 40000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const { sip, events, p1, p2, dir, toP2, toUs, first } = await pjsipCallsBoth(t, 't1.wav')
  const refers = []
  sip.on('refer', (e) => (refers.push(e), e.accept()))

  p1.cmd('select', toUs.id)
  p1.cmd('xfer_replaces', toP2.id)
  const placed = await waitFor(sip, events, 'call_state', (e) => e.callId !== first.callId && e.state === 'confirmed', 15000)
  assert.equal(refers.length, 1)
  assert.match(refers[0].replaces, /;to-tag=.+;from-tag=/, JSON.stringify(refers[0]))
  assert.equal(sip.getCall(placed.callId)?.referredFrom, first.callId)
  await p2.waitEvent('replaced', () => true, 5000)
  await p2.waitEvent('media_active', () => true, 5000, p2.events.findIndex((e) => e.event === 'replaced'))
  await weHear(sip, placed.callId, p2, 1000, path.join(dir, 't2.wav'))
  await sip.hangup(placed.callId)
})

test('attended, PJSIP transfers its peer to us: the INVITE with Replaces takes our call over', { timeout: 40000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const { sip, events, p1, p2, dir, toP2, toUs, first } = await pjsipCallsBoth(t, 'r1.wav')

  p1.cmd('select', toP2.id)
  p1.cmd('xfer_replaces', toUs.id)
  const replaced = await waitFor(sip, events, 'call_replaced', () => true, 15000)
  assert.equal(replaced.callId, first.callId)
  const d = await disconnected(sip, events, first.callId)
  assert.equal(d.reason, 'replaced')
  await confirmed(sip, events, replaced.newCallId)
  await weHear(sip, replaced.newCallId, p2, 1000, path.join(dir, 'r2.wav'))
  await sip.hangup(replaced.newCallId)
})
