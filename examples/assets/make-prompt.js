#!/usr/bin/env node
// Generates examples/assets/prompt.wav, the demo's bundled prompt: a three-note melody,
// 440 Hz, 660 Hz, 880 Hz, each 700 ms with 20 ms fades, 100 ms of silence between notes and at
// both ends (2.5 s in all), 8 kHz mono 16-bit PCM, -12 dBFS. Deterministic: running it again
// writes the same bytes.
//
//   node examples/assets/make-prompt.js [out.wav]
//
// examples/demo.js imports NOTES from here, so the demo checks the recording against the
// same layout that made the file.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

const SAMPLE_RATE = 8000
const GAP_MS = 100
const NOTE_MS = 700
const FADE_MS = 20
const LEVEL_DBFS = -12
/** Each note: frequency and start offset within the prompt, ms. */
const NOTES = [440, 660, 880].map((freq, i) => ({ freq, startMs: GAP_MS + i * (NOTE_MS + GAP_MS), ms: NOTE_MS }))
const TOTAL_MS = GAP_MS + NOTES.length * (NOTE_MS + GAP_MS)

function render() {
  const samples = new Int16Array(Math.round((TOTAL_MS * SAMPLE_RATE) / 1000))
  const amp = 32767 * 10 ** (LEVEL_DBFS / 20)
  const fade = (FADE_MS * SAMPLE_RATE) / 1000
  for (const n of NOTES) {
    const start = Math.round((n.startMs * SAMPLE_RATE) / 1000)
    const len = Math.round((n.ms * SAMPLE_RATE) / 1000)
    for (let i = 0; i < len; i++) {
      const env = Math.min(1, i / fade, (len - 1 - i) / fade)
      samples[start + i] = Math.round(amp * env * Math.sin((2 * Math.PI * n.freq * i) / SAMPLE_RATE))
    }
  }
  return samples
}

function wav(samples) {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)
  const h = Buffer.alloc(44)
  h.write('RIFF', 0)
  h.writeUInt32LE(36 + data.length, 4)
  h.write('WAVE', 8)
  h.write('fmt ', 12)
  h.writeUInt32LE(16, 16)
  h.writeUInt16LE(1, 20) // PCM
  h.writeUInt16LE(1, 22) // mono
  h.writeUInt32LE(SAMPLE_RATE, 24)
  h.writeUInt32LE(SAMPLE_RATE * 2, 28)
  h.writeUInt16LE(2, 32)
  h.writeUInt16LE(16, 34)
  h.write('data', 36)
  h.writeUInt32LE(data.length, 40)
  return Buffer.concat([h, data])
}

module.exports = { SAMPLE_RATE, NOTES, TOTAL_MS, GAP_MS }

if (require.main === module) {
  const out = path.resolve(process.argv[2] || path.join(__dirname, 'prompt.wav'))
  const bytes = wav(render())
  fs.writeFileSync(out, bytes)
  console.log(`wrote ${out}: ${bytes.length} bytes, ${TOTAL_MS} ms, ${SAMPLE_RATE} Hz mono 16-bit, notes ${NOTES.map((n) => n.freq).join('/')} Hz`)
}
