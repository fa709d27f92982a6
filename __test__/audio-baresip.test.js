// Audio interop with baresip 1.0 (ausine source, sndfile recorder, ctrl_tcp control): tones both
// ways checked by content (frequency within 2 %, level within 3 dB) and RFC 4733 DTMF both ways.
// baresip sends its ausine sine all the time, at about -7.3 dBFS (measured by
// peers.selftest.test.js); sndfile records what it decodes to <dir>/rec/dump-*-dec.wav.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, sleep, tmpDir } = require('./helpers/peers')
const A = require('./helpers/audio')
const { DIGITS, collectDtmf, until, callWithBaresip, assertDigits } = require('./helpers/interop')
const { missingBaresipModules } = require('./peers/baresip')

const AUSINE_DBFS = -7.3

function requireBaresip(t) {
  if (!requirePeer('baresip', t)) return false
  const missing = missingBaresipModules()
  if (missing.length === 0) return true
  const msg = `baresip modules missing: ${missing.join(', ')}`
  if (process.env.CI === 'true') throw new Error(msg)
  t.skip(msg)
  return false
}

for (const direction of ['outgoing', 'incoming']) {
  const label = direction === 'outgoing' ? 'we call baresip' : 'baresip calls us'

  test(`${label}: our 1000 Hz tone reaches baresip, its 440 Hz ausine reaches our recording`, { timeout: 60000 }, async (t) => {
    if (!requireBaresip(t)) return
    const dir = tmpDir('audio-baresip')
    const { sip, callId, bs } = await callWithBaresip(t, direction, { toneHz: 440 })

    // baresip -> us (ausine runs all the time)
    const ourRec = path.join(dir, 'we-heard.wav')
    await sip.record(callId, ourRec)
    await sleep(2500)
    const info = await sip.stopRecording(callId)
    assert.ok(info.durationMs >= 2000, `recording lasted ${info.durationMs} ms, expected >= 2000`)
    A.assertTone(A.toneCheck(ourRec), { freq: 440, levelDb: AUSINE_DBFS, what: `our recording of baresip's ausine 440 Hz` })

    // us -> baresip: sndfile records the whole call; the tone is its loudest part
    await sip.playTone(callId, { frequency: 1000, durationMs: 2500, level: -10 })
    await sleep(300)
    await sip.hangup(callId)
    await bs.waitEvent('CALL_CLOSED')
    await sleep(300) // sndfile closes its files
    const wav = bs.receivedWav()
    assert.ok(wav, `baresip sndfile wrote a recording of what it received: ${JSON.stringify(bs.recordings())}`)
    A.assertTone(A.toneCheck(wav), {
      freq: 1000,
      levelDb: -10,
      what: `baresip's recording of our playTone(1000 Hz, -10 dBFS)`,
    })
  })

  test(`${label}: DTMF ${DIGITS} both ways (RFC 4733), in order`, { timeout: 60000 }, async (t) => {
    if (!requireBaresip(t)) return
    const { sip, callId, bs } = await callWithBaresip(t, direction)
    const got = collectDtmf(sip, callId)

    await bs.sendDtmf(DIGITS)
    await until(() => got.length >= DIGITS.length, 5000)
    assertDigits(got.map((e) => e.digit).join(''), DIGITS, 'our dtmf events for the digits baresip sent (sndcode)')
    for (const e of got) assert.equal(e.method, 'rfc4733', `dtmf event method: ${JSON.stringify(e)}`)
    await sleep(300)
    assert.equal(got.length, DIGITS.length, `each digit reported once: ${JSON.stringify(got)}`)

    await sip.sendDtmf(callId, DIGITS)
    await until(() => bs.dtmfDigits().length >= DIGITS.length, 5000)
    assertDigits(bs.dtmfDigits(), DIGITS, 'baresip CALL_DTMF_START events for our sendDtmf digits')
    await sip.hangup(callId)
  })
}
