// bridge(a, b): one SipService answers two calls from two external phones and connects their
// audio both ways; each phone's tone must arrive in the other phone's recording.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, sleep, tmpDir } = require('./helpers/peers')
const { startService } = require('./helpers/sip')
const A = require('./helpers/audio')
const { ACCOUNT, callWithPjsip, callWithBaresip } = require('./helpers/interop')
const { missingBaresipModules } = require('./peers/baresip')

test('bridge: PJSIP 1 kHz reaches a second PJSIP, and its 440 Hz reaches the first', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const dir = tmpDir('audio-bridge-pp')
  const svc = await startService(t, { accounts: [ACCOUNT] })
  const one = await callWithPjsip(t, 'incoming', { service: svc, pjOptions: { user: 'one' } })
  const two = await callWithPjsip(t, 'incoming', { service: svc, pjOptions: { user: 'two' } })
  const { sip } = svc
  await sip.bridge(one.callId, two.callId)

  const rec1 = path.join(dir, 'one-heard.wav')
  const rec2 = path.join(dir, 'two-heard.wav')
  await one.pj.record(rec1)
  await two.pj.record(rec2)
  await one.pj.playTone(1000, 3000, -10)
  await two.pj.playTone(440, 3000, -10)
  await sleep(3400)
  await one.pj.stopRecord()
  await two.pj.stopRecord()
  A.assertTone(A.toneCheck(rec2), { freq: 1000, levelDb: -10, what: 'peer two heard peer one (1000 Hz) through our bridge' })
  A.assertTone(A.toneCheck(rec1), { freq: 440, levelDb: -10, what: 'peer one heard peer two (440 Hz) through our bridge' })

  // unbridge: audio no longer crosses
  await sip.unbridge(one.callId)
  const rec3 = path.join(dir, 'two-after-unbridge.wav')
  await two.pj.record(rec3)
  await one.pj.playTone(1000, 1500, -10)
  await sleep(1800)
  await two.pj.stopRecord()
  const r3 = A.toneCheck(rec3, { freq: 1000 })
  assert.ok(!(r3.levelDb > -40), `after unbridge peer two must not hear peer one's tone; measured ${A.describeTone(r3)}`)

  await sip.hangup(one.callId)
  await sip.hangup(two.callId)
})

test('bridge: PJSIP 1 kHz reaches baresip, and baresip 440 Hz reaches PJSIP', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t) || !requirePeer('baresip', t)) return
  if (missingBaresipModules().length) {
    if (process.env.CI === 'true') throw new Error(`baresip modules missing: ${missingBaresipModules()}`)
    return t.skip(`baresip modules missing: ${missingBaresipModules()}`)
  }
  const dir = tmpDir('audio-bridge-pb')
  const svc = await startService(t, { accounts: [ACCOUNT] })
  const one = await callWithPjsip(t, 'incoming', { service: svc })
  const two = await callWithBaresip(t, 'incoming', { service: svc, toneHz: 440 })
  const { sip } = svc
  await sip.bridge(one.callId, two.callId)

  const rec1 = path.join(dir, 'pjsip-heard.wav')
  await one.pj.record(rec1)
  await one.pj.playTone(1000, 3000, -10)
  await sleep(3400)
  await one.pj.stopRecord()
  await sip.hangup(two.callId)
  await two.bs.waitEvent('CALL_CLOSED')
  await sleep(300)
  A.assertTone(A.toneCheck(rec1), { freq: 440, levelDb: -7.3, what: "PJSIP heard baresip's ausine 440 Hz through our bridge" })
  const wav = two.bs.receivedWav()
  assert.ok(wav, `baresip recorded what it received: ${JSON.stringify(two.bs.recordings())}`)
  A.assertTone(A.toneCheck(wav), { freq: 1000, levelDb: -10, what: "baresip heard PJSIP's 1000 Hz through our bridge" })
  await sip.hangup(one.callId)
})
