// Audio interop with baresip 1.0 (ausine source, sndfile recorder, ctrl_tcp control): tones both
// ways checked by content (frequency within 2 %, level within 3 dB) and RFC 4733 DTMF both ways.
// baresip sends its ausine sine all the time, at about -7.3 dBFS (measured by
// peers.selftest.test.js); sndfile records what it decodes to <dir>/rec/dump-*-dec.wav.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const A = require('./helpers/audio')
const { DIGITS, callWithPeer, collectDtmf, assertDigits } = require('./helpers/interop')
const { AUSINE_DBFS } = require('./peers/baresip')

for (const direction of ['outgoing', 'incoming']) {
  const label = direction === 'outgoing' ? 'we call baresip' : 'baresip calls us'

  test(`${label}: our 1000 Hz tone reaches baresip, its 440 Hz ausine reaches our recording`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('baresip', t)) return
    const dir = tmpDir('audio-baresip')
    const { sip, callId, peer: bs } = await callWithPeer(t, 'baresip', direction, { peerOptions: { toneHz: 440 } })

    // baresip -> us (ausine runs all the time)
    const ourRec = path.join(dir, 'we-heard.wav')
    await sip.record(callId, ourRec)
    await sleep(2500) // the recording's length
    const info = await sip.stopRecording(callId)
    assert.ok(info.durationMs >= 2000, `recording lasted ${info.durationMs} ms, expected >= 2000`)
    A.assertTone(A.toneCheck(ourRec), { freq: 440, levelDb: AUSINE_DBFS, what: `our recording of baresip's ausine 440 Hz` })

    // us -> baresip: sndfile records the whole call; the tone is its loudest part
    await sip.playTone(callId, { frequency: 1000, durationMs: 2500, level: -10 })
    await sleep(A.PLAYOUT_MS)
    await sip.hangup(callId)
    await bs.waitEvent('CALL_CLOSED')
    await bs.recordingsClosed()
    const wav = bs.receivedWav()
    assert.ok(wav, `baresip sndfile wrote a recording of what it received: ${JSON.stringify(bs.recordings())}`)
    A.assertTone(A.toneCheck(wav), {
      freq: 1000,
      levelDb: -10,
      what: `baresip's recording of our playTone(1000 Hz, -10 dBFS)`,
    })
  })

  test(`${label}: DTMF ${DIGITS} both ways (RFC 4733), in order`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('baresip', t)) return
    const { sip, callId, peer: bs } = await callWithPeer(t, 'baresip', direction)
    const got = collectDtmf(sip, callId)

    await bs.sendDtmf(DIGITS)
    const gotDigits = () => got.map((e) => e.digit).join('')
    await until(() => got.length >= DIGITS.length, 5000, () => `our dtmf events for ${DIGITS} (got '${gotDigits()}')`)
    assertDigits(gotDigits(), DIGITS, 'our dtmf events for the digits baresip sent (sndcode)')
    for (const e of got) assert.equal(e.method, 'rfc4733', `dtmf event method: ${JSON.stringify(e)}`)
    await sleep(300) // the measurement: the repeated end packets of the last digit come and go unreported
    assert.equal(got.length, DIGITS.length, `each digit reported once: ${JSON.stringify(got)}`)

    await sip.sendDtmf(callId, DIGITS)
    await until(() => bs.dtmfDigits().length >= DIGITS.length, 5000, () => `baresip received ${DIGITS} (got '${bs.dtmfDigits()}')`)
    assertDigits(bs.dtmfDigits(), DIGITS, 'baresip CALL_DTMF_START events for our sendDtmf digits')
    await sip.hangup(callId)
  })
}
