// bridge(a, b): one SipService answers two calls from two external phones and connects their
// audio both ways; each phone's tone must arrive in the other phone's recording.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const { startService } = require('./helpers/sip')
const A = require('./helpers/audio')
const { ACCOUNT, callWithPeer } = require('./helpers/interop')
const { AUSINE_DBFS } = require('./peers/baresip')

test('bridge: PJSIP 1 kHz reaches a second PJSIP, and its 440 Hz reaches the first', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const dir = tmpDir('audio-bridge-pp')
  const svc = await startService(t, { accounts: [ACCOUNT] })
  const one = await callWithPeer(t, 'pjsua2', 'incoming', { service: svc, peerOptions: { user: 'one' } })
  const two = await callWithPeer(t, 'pjsua2', 'incoming', { service: svc, peerOptions: { user: 'two' } })
  const { sip } = svc
  await sip.bridge(one.callId, two.callId)

  const rec1 = path.join(dir, 'one-heard.wav')
  const rec2 = path.join(dir, 'two-heard.wav')
  await one.peer.record(rec1)
  await two.peer.record(rec2)
  await one.peer.playTone(1000, 3000, -10)
  await two.peer.playTone(440, 3000, -10)
  await Promise.all([one.peer.toneDone(), two.peer.toneDone()])
  await sleep(A.PLAYOUT_MS)
  await one.peer.stopRecord()
  await two.peer.stopRecord()
  A.assertTone(A.toneCheck(rec2), { freq: 1000, levelDb: -10, what: 'peer two heard peer one (1000 Hz) through our bridge' })
  A.assertTone(A.toneCheck(rec1), { freq: 440, levelDb: -10, what: 'peer one heard peer two (440 Hz) through our bridge' })

  // unbridge: audio no longer crosses
  await sip.unbridge(one.callId)
  const rec3 = path.join(dir, 'two-after-unbridge.wav')
  await two.peer.record(rec3)
  await one.peer.playTone(1000, 1500, -10)
  await one.peer.toneDone()
  await sleep(A.PLAYOUT_MS)
  await two.peer.stopRecord()
  const r3 = A.toneCheck(rec3, { freq: 1000 })
  assert.ok(!(r3.levelDb > -40), `after unbridge peer two must not hear peer one's tone; measured ${A.describeTone(r3)}`)

  await sip.hangup(one.callId)
  await sip.hangup(two.callId)
})

test('bridge: PJSIP 1 kHz reaches baresip, and baresip 440 Hz reaches PJSIP', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t) || !requirePeer('baresip', t)) return
  const dir = tmpDir('audio-bridge-pb')
  const svc = await startService(t, { accounts: [ACCOUNT] })
  const one = await callWithPeer(t, 'pjsua2', 'incoming', { service: svc })
  const two = await callWithPeer(t, 'baresip', 'incoming', { service: svc, peerOptions: { toneHz: 440 } })
  const { sip } = svc
  await sip.bridge(one.callId, two.callId)

  const rec1 = path.join(dir, 'pjsip-heard.wav')
  await one.peer.record(rec1)
  await one.peer.playTone(1000, 3000, -10)
  await one.peer.toneDone()
  await sleep(A.PLAYOUT_MS)
  await one.peer.stopRecord()
  await sip.hangup(two.callId)
  await two.peer.waitEvent('CALL_CLOSED')
  await two.peer.recordingsClosed()
  A.assertTone(A.toneCheck(rec1), { freq: 440, levelDb: AUSINE_DBFS, what: "PJSIP heard baresip's ausine 440 Hz through our bridge" })
  const wav = two.peer.receivedWav()
  assert.ok(wav, `baresip recorded what it received: ${JSON.stringify(two.peer.recordings())}`)
  A.assertTone(A.toneCheck(wav), { freq: 1000, levelDb: -10, what: "baresip heard PJSIP's 1000 Hz through our bridge" })
  await sip.hangup(one.callId)
})
