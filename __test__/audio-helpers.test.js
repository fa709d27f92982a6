// The audio analysis helpers themselves (no SIP): WAV in/out, Goertzel, tone and level detection.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { tmpDir } = require('./helpers/process')
const A = require('./helpers/audio')

const dir = tmpDir('audio-helpers')
test.after(() => fs.rmSync(dir, { recursive: true, force: true }))

for (const [freq, rate, levelDb] of [
  [1000, 8000, -10],
  [440, 8000, -20],
  [697, 8000, -3],
  [1633, 8000, -30],
  [1000, 16000, -10],
  [440, 44100, -6],
  [3000, 48000, -12],
]) {
  test(`generated ${freq} Hz at ${levelDb} dBFS, ${rate} Hz: measured within 0.5 % and 0.3 dB`, () => {
    const file = path.join(dir, `t-${freq}-${rate}.wav`)
    A.writeToneWav(file, { freq, ms: 1500, rate, levelDb })
    const r = A.toneCheck(file, { freq, levelDb })
    assert.equal(r.sampleRate, rate)
    assert.ok(r.freqErrPct <= 0.5, `freq: ${A.describeTone(r)}`)
    assert.ok(Math.abs(r.levelErrDb) <= 0.3, `level: ${A.describeTone(r)}`)
    assert.ok(Math.abs(r.rmsDb - levelDb) <= 0.3, `rms: ${A.describeTone(r)}`)
    assert.ok(r.purityDb > -0.3, `purity: ${A.describeTone(r)}`)
    assert.ok(Math.abs(r.activeMs - 1500) < 60, `active region ${r.activeMs} ms of a 1500 ms tone`)
  })
}

test('readWav: stereo, extra chunks (LIST, odd size), unfinalised data size', () => {
  const left = A.toneSamples({ freq: 1000, ms: 1000, rate: 8000, levelDb: -10 })
  const right = A.toneSamples({ freq: 440, ms: 1000, rate: 8000, levelDb: -20 })
  const inter = new Int16Array(left.length * 2)
  for (let i = 0; i < left.length; i++) {
    inter[2 * i] = left[i]
    inter[2 * i + 1] = right[i]
  }
  const plain = A.wavBuffer(inter, 8000, 2)
  // insert an odd-sized LIST chunk (with its pad byte) between fmt and data, and set the data
  // size to 0 as a writer that crashed would leave it
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc'), Buffer.from([0])])
  const buf = Buffer.concat([plain.subarray(0, 36), list, plain.subarray(36)])
  buf.writeUInt32LE(buf.length - 8, 4)
  buf.writeUInt32LE(0, 36 + list.length + 4)
  const w = A.readWav(buf)
  assert.equal(w.channels, 2)
  assert.equal(w.frames, 8000)
  const l = A.toneCheck(w, { channel: 0, freq: 1000, levelDb: -10 })
  const r = A.toneCheck(w, { channel: 1, freq: 440, levelDb: -20 })
  assert.ok(l.freqErrPct < 0.5 && Math.abs(l.levelErrDb) < 0.3, A.describeTone(l))
  assert.ok(r.freqErrPct < 0.5 && Math.abs(r.levelErrDb) < 0.3, A.describeTone(r))
})

test('readWav: rejects what is not a WAV', () => {
  assert.throws(() => A.readWav(Buffer.from('hello world, not a wave')), /not a RIFF\/WAVE/)
})

test('goertzelPower: a sine of amplitude A has power A^2/2 at its frequency and ~0 far away', () => {
  const s = A.pcm16ToFloat(Buffer.from(A.toneSamples({ freq: 1000, ms: 500, rate: 8000, levelDb: -6, ramp: false }).buffer))
  const amp = Math.pow(10, -6 / 20)
  const p = A.goertzelPower(s, 8000, 1000)
  assert.ok(Math.abs(10 * Math.log10(p / ((amp * amp) / 2))) < 0.1, `power ${p}`)
  assert.ok(A.goertzelPower(s, 8000, 2000) < p * 1e-4)
})

test('dominantFrequency picks the louder of two tones; silence has no active region', () => {
  const a = A.toneSamples({ freq: 700, ms: 500, rate: 8000, levelDb: -10 })
  const b = A.toneSamples({ freq: 1200, ms: 500, rate: 8000, levelDb: -20 })
  const s = new Float64Array(a.length)
  for (let i = 0; i < a.length; i++) s[i] = (a[i] + b[i]) / 32768
  const d = A.dominantFrequency(s, 8000, 100, 3800, 10)
  assert.ok(Math.abs(d.freq - 700) < 3.5, `dominant ${d.freq}`)
  assert.equal(A.activeRegion(new Float64Array(8000), 8000), null)
  assert.equal(A.rmsDbfs(new Float64Array(10)), -Infinity)
  const r = A.toneCheck({ sampleRate: 8000, channelData: [new Float64Array(8000)] })
  assert.equal(r.ms, 0)
})

test('toneCheck skips leading silence and measures only the tone', () => {
  const tone = A.toneSamples({ freq: 1000, ms: 1000, rate: 8000, levelDb: -15 })
  const pcm = new Int16Array(8000 + tone.length + 4000)
  pcm.set(tone, 8000)
  const file = path.join(dir, 'gap.wav')
  fs.writeFileSync(file, A.wavBuffer(pcm, 8000))
  const r = A.toneCheck(file, { freq: 1000, levelDb: -15 })
  assert.ok(r.freqErrPct < 0.5 && Math.abs(r.levelErrDb) < 0.3, A.describeTone(r))
  assert.ok(Math.abs(r.activeMs - 1000) < 60, `active ${r.activeMs}`)
  assert.ok(r.startMs >= 1000, `measured from ${r.startMs} ms`)
})
