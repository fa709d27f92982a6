// Audio analysis for the node:test suites: WAV files in and out, tone detection (Goertzel) and
// levels. Audio is checked by content: a known tone goes in one end, and its frequency and level
// are measured in what comes out of the other.
//
// Levels are dBFS of the RMS, with a full-scale *sine* at 0 dBFS (the AES17 convention, which
// is also what "level: -10" means in ToneOptions): a sine of amplitude A (of 32768) measures
// 20*log10(A/32768) dBFS. A full-scale square wave therefore measures +3 dBFS.
'use strict'

const fs = require('node:fs')

// Audio still in flight when a tone ends: RTP on loopback plus the receiver's jitter buffer. No
// event marks its playout, so the suites stop a recording this long after the tone is done.
const PLAYOUT_MS = 300

// ---------------------------------------------------------------------------------------------
// WAV

/**
 * Reads a RIFF/WAVE file: PCM 16-bit (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM subformat),
 * also 8-bit unsigned, 24/32-bit PCM and 32-bit float, any rate, any channel count. Walks the
 * chunks properly (LIST, fact, odd-sized chunks with their pad byte, a data chunk whose size is
 * 0 or 0xFFFFFFFF because the writer never finalised it).
 *
 * @returns {{ sampleRate: number, channels: number, bitsPerSample: number, format: number,
 *   frames: number, durationMs: number, channelData: Float64Array[] }}
 *   channelData[c][i] is sample i of channel c scaled to [-1, 1) (16-bit: value / 32768).
 */
function readWav(fileOrBuffer) {
  const buf = Buffer.isBuffer(fileOrBuffer) ? fileOrBuffer : fs.readFileSync(fileOrBuffer)
  const name = Buffer.isBuffer(fileOrBuffer) ? '<buffer>' : fileOrBuffer
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error(`${name}: not a RIFF/WAVE file (${buf.length} bytes)`)
  }
  let fmt = null
  let data = null
  let off = 12
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4)
    let size = buf.readUInt32LE(off + 4)
    const body = off + 8
    if (id === 'data' && (size === 0 || size === 0xffffffff || body + size > buf.length)) {
      size = buf.length - body // unfinalised or truncated: take what is there
    }
    if (id === 'fmt ') {
      if (size < 16) throw new Error(`${name}: fmt chunk too short (${size})`)
      let format = buf.readUInt16LE(body)
      if (format === 0xfffe && size >= 40) format = buf.readUInt16LE(body + 24) // extensible: subformat GUID
      fmt = {
        format,
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        blockAlign: buf.readUInt16LE(body + 12),
        bitsPerSample: buf.readUInt16LE(body + 14),
      }
    } else if (id === 'data') {
      data = buf.subarray(body, Math.min(buf.length, body + size))
    }
    off = body + size + (size & 1)
  }
  if (!fmt) throw new Error(`${name}: no fmt chunk`)
  if (!data) throw new Error(`${name}: no data chunk`)
  const { format, channels, sampleRate, bitsPerSample } = fmt
  if (channels < 1) throw new Error(`${name}: ${channels} channels`)
  const bytes = bitsPerSample / 8
  if (!((format === 1 && [8, 16, 24, 32].includes(bitsPerSample)) || (format === 3 && bitsPerSample === 32))) {
    throw new Error(`${name}: unsupported WAV format ${format} with ${bitsPerSample} bits`)
  }
  const blockAlign = fmt.blockAlign || bytes * channels
  const frames = Math.floor(data.length / blockAlign)
  const channelData = Array.from({ length: channels }, () => new Float64Array(frames))
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++) {
      const p = i * blockAlign + c * bytes
      let v
      if (format === 3) v = data.readFloatLE(p)
      else if (bitsPerSample === 16) v = data.readInt16LE(p) / 32768
      else if (bitsPerSample === 8) v = (data[p] - 128) / 128
      else if (bitsPerSample === 24) v = data.readIntLE(p, 3) / 8388608
      else v = data.readInt32LE(p) / 2147483648
      channelData[c][i] = v
    }
  }
  return { sampleRate, channels, bitsPerSample, format, frames, durationMs: (frames / sampleRate) * 1000, channelData }
}

/** Builds a 16-bit PCM WAV file image from interleaved Int16 samples. */
function wavBuffer(int16, sampleRate, channels = 1) {
  const dataBytes = int16.length * 2
  const b = Buffer.alloc(44 + dataBytes)
  b.write('RIFF', 0, 'latin1')
  b.writeUInt32LE(36 + dataBytes, 4)
  b.write('WAVE', 8, 'latin1')
  b.write('fmt ', 12, 'latin1')
  b.writeUInt32LE(16, 16)
  b.writeUInt16LE(1, 20)
  b.writeUInt16LE(channels, 22)
  b.writeUInt32LE(sampleRate, 24)
  b.writeUInt32LE(sampleRate * channels * 2, 28)
  b.writeUInt16LE(channels * 2, 32)
  b.writeUInt16LE(16, 34)
  b.write('data', 36, 'latin1')
  b.writeUInt32LE(dataBytes, 40)
  for (let i = 0; i < int16.length; i++) b.writeInt16LE(int16[i], 44 + i * 2)
  return b
}

/**
 * Int16 samples of a sine (or the sum of two, each at `levelDb`), with 5 ms raised-cosine ramps
 * at both ends so that no click spreads energy over the spectrum.
 */
function toneSamples({ freq = 1000, ms = 1000, rate = 8000, levelDb = -10, ramp = true } = {}) {
  const freqs = Array.isArray(freq) ? freq : [freq]
  const n = Math.round((rate * ms) / 1000)
  const amp = 32768 * Math.pow(10, levelDb / 20)
  const rampN = ramp ? Math.min(Math.round(rate * 0.005), Math.floor(n / 2)) : 0
  const out = new Int16Array(n)
  for (let i = 0; i < n; i++) {
    let v = 0
    for (const f of freqs) v += Math.sin((2 * Math.PI * f * i) / rate)
    let g = 1
    if (i < rampN) g = 0.5 - 0.5 * Math.cos((Math.PI * i) / rampN)
    else if (i >= n - rampN) g = 0.5 - 0.5 * Math.cos((Math.PI * (n - 1 - i)) / rampN)
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v * amp * g)))
  }
  return out
}

/** Writes a mono 16-bit WAV of a tone (see toneSamples); returns the path. */
function writeToneWav(file, { freq = 1000, ms = 1000, rate = 8000, levelDb = -10, channels = 1 } = {}) {
  const mono = toneSamples({ freq, ms, rate, levelDb })
  let pcm = mono
  if (channels > 1) {
    pcm = new Int16Array(mono.length * channels)
    for (let i = 0; i < mono.length; i++) for (let c = 0; c < channels; c++) pcm[i * channels + c] = mono[i]
  }
  fs.writeFileSync(file, wavBuffer(pcm, rate, channels))
  return file
}

/** Int16 PCM (a Buffer of little-endian 16-bit samples, e.g. a call.audio frame) as floats. */
function pcm16ToFloat(buf) {
  const n = Math.floor(buf.length / 2)
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = buf.readInt16LE(i * 2) / 32768
  return out
}

// ---------------------------------------------------------------------------------------------
// analysis

/**
 * Power of `freq` in `samples` (floats, full scale 1) by the Goertzel algorithm with a Hann
 * window, normalised so that a sine of amplitude A at exactly `freq` gives A^2/2 (its mean
 * power), whatever the block length.
 */
function goertzelPower(samples, rate, freq) {
  const n = samples.length
  if (n === 0) return 0
  const w = (2 * Math.PI * freq) / rate
  const coeff = 2 * Math.cos(w)
  let s1 = 0
  let s2 = 0
  let wsum = 0
  for (let i = 0; i < n; i++) {
    const win = n > 1 ? 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)) : 1
    wsum += win
    const s0 = samples[i] * win + coeff * s1 - s2
    s2 = s1
    s1 = s0
  }
  const re = s1 - s2 * Math.cos(w)
  const im = s2 * Math.sin(w)
  const mag = Math.sqrt(re * re + im * im) // = A * wsum / 2 for a sine of amplitude A
  const amp = (2 * mag) / wsum
  return (amp * amp) / 2
}

/**
 * The frequency in [lo, hi] with the most Goertzel power, searched on a grid of `step` Hz and
 * then refined by a parabola through the best bin and its neighbours on a finer grid.
 * Returns { freq, power }.
 */
function dominantFrequency(samples, rate, lo = 100, hi = Math.min(3800, rate / 2 - 50), step = 10) {
  let best = lo
  let bestP = -1
  for (let f = lo; f <= hi; f += step) {
    const p = goertzelPower(samples, rate, f)
    if (p > bestP) {
      bestP = p
      best = f
    }
  }
  // refine: golden-section-free local search with shrinking steps
  let f = best
  for (let s = step / 2; s >= 0.05; s /= 2) {
    const pl = goertzelPower(samples, rate, f - s)
    const pr = goertzelPower(samples, rate, f + s)
    if (pl > bestP && pl >= pr) {
      f -= s
      bestP = pl
    } else if (pr > bestP) {
      f += s
      bestP = pr
    }
  }
  return { freq: f, power: bestP }
}

/** RMS level in dBFS (sine convention: a full-scale sine is 0 dBFS); -Infinity for silence. */
function rmsDbfs(samples) {
  if (samples.length === 0) return -Infinity
  let sum = 0
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i]
  const rms = Math.sqrt(sum / samples.length)
  return rms > 0 ? 20 * Math.log10(rms * Math.SQRT2) : -Infinity
}

/** Power (A^2/2 of a sine) as dBFS in the same convention as rmsDbfs. */
const powerDbfs = (p) => (p > 0 ? 10 * Math.log10(p * 2) : -Infinity)

/**
 * Segments of `samples` whose 20 ms RMS is within 10 dB of the loudest segment: where the tone
 * is. Returns [startIndex, endIndex) of the longest such run, or null when all is silence.
 */
function activeRegion(samples, rate, thresholdDb = -50) {
  const blk = Math.max(1, Math.round(rate * 0.02))
  const levels = []
  for (let i = 0; i + blk <= samples.length; i += blk) levels.push(rmsDbfs(samples.subarray(i, i + blk)))
  const peak = Math.max(...levels, -Infinity)
  if (!(peak > thresholdDb)) return null
  const on = levels.map((l) => l > Math.max(thresholdDb, peak - 10))
  let bestStart = 0
  let bestLen = 0
  for (let i = 0; i < on.length; ) {
    if (!on[i]) {
      i++
      continue
    }
    let j = i
    while (j < on.length && on[j]) j++
    if (j - i > bestLen) {
      bestLen = j - i
      bestStart = i
    }
    i = j
  }
  return [bestStart * blk, (bestStart + bestLen) * blk]
}

/**
 * Measures a tone in a WAV file (or in { sampleRate, channelData } already read).
 * Finds the longest loud run of the chosen channel, drops `skipMs` at each end of it (ramps,
 * jitter buffer settling, codec start) and measures the middle part:
 *   freq      dominant frequency in [lo, hi] (default 100..min(3800, rate/2))
 *   levelDb   the tone's own level (Goertzel power at freq, dBFS)
 *   rmsDb     RMS level of everything in the part (dBFS)
 *   purityDb  levelDb - rmsDb (0 for a pure tone; noise and distortion make it negative)
 *   ms        duration of the measured part; activeMs of the loud run; totalMs of the file
 * If `freq` is given, also `freqErrPct` and (with `levelDb`) `levelErrDb` against it.
 * Returns { ..., ms: 0, levelDb: -Infinity } when the channel is silent.
 */
function toneCheck(wav, { freq, levelDb, channel = 0, skipMs = 200, lo, hi, maxMs = 2000 } = {}) {
  const w = typeof wav === 'string' || Buffer.isBuffer(wav) ? readWav(wav) : wav
  const rate = w.sampleRate
  if (channel >= w.channelData.length) throw new Error(`toneCheck: channel ${channel} of ${w.channelData.length}`)
  const all = w.channelData[channel]
  const totalMs = (all.length / rate) * 1000
  const region = activeRegion(all, rate)
  const base = { sampleRate: rate, channels: w.channelData.length, totalMs }
  if (!region) return { ...base, freq: NaN, levelDb: -Infinity, rmsDb: rmsDbfs(all), purityDb: NaN, ms: 0, activeMs: 0 }
  let [a, b] = region
  const activeMs = ((b - a) / rate) * 1000
  const skip = Math.round((rate * skipMs) / 1000)
  if (b - a > 2 * skip + rate * 0.1) {
    a += skip
    b -= skip
  }
  // the middle maxMs of what is left: enough for 0.1 % resolution, bounded cost
  const maxN = Math.round((rate * maxMs) / 1000)
  if (b - a > maxN) {
    const mid = Math.floor((a + b) / 2)
    a = mid - Math.floor(maxN / 2)
    b = a + maxN
  }
  const part = all.subarray(a, b)
  const loF = lo ?? 100
  const hiF = hi ?? Math.min(3800, rate / 2 - 50)
  const dom = dominantFrequency(part, rate, loF, hiF, 10)
  const lvl = powerDbfs(dom.power)
  const rms = rmsDbfs(part)
  const out = { ...base, freq: dom.freq, levelDb: lvl, rmsDb: rms, purityDb: lvl - rms, ms: (part.length / rate) * 1000, activeMs, startMs: (a / rate) * 1000 }
  if (freq !== undefined) out.freqErrPct = (Math.abs(dom.freq - freq) / freq) * 100
  if (levelDb !== undefined) out.levelErrDb = lvl - levelDb
  return out
}

/** One-line description of a toneCheck result, for assertion messages. */
function describeTone(r) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x))
  return `${f(r.freq)} Hz at ${f(r.levelDb)} dBFS (rms ${f(r.rmsDb)}, purity ${f(r.purityDb)} dB) over ${f(r.ms, 0)} ms of ${f(
    r.activeMs,
    0,
  )} ms loud / ${f(r.totalMs, 0)} ms total, ${r.sampleRate} Hz x${r.channels}`
}

/**
 * Asserts with node:assert that a measured tone matches: frequency within `freqTolPct` %, level
 * within `levelTolDb` dB (when `levelDb` is given), at least `minMs` of it.
 */
function assertTone(r, { freq, levelDb, freqTolPct = 2, levelTolDb = 3, minMs = 500, what = 'recording' }) {
  const assert = require('node:assert/strict')
  const desc = describeTone(r)
  assert.ok(r.ms >= minMs, `${what}: expected at least ${minMs} ms of a ${freq} Hz tone, got: ${desc}`)
  assert.ok(
    Math.abs(r.freq - freq) <= (freq * freqTolPct) / 100,
    `${what}: expected a ${freq} Hz tone (±${freqTolPct} %), measured ${desc}`,
  )
  if (levelDb !== undefined) {
    assert.ok(
      Math.abs(r.levelDb - levelDb) <= levelTolDb,
      `${what}: expected the ${freq} Hz tone at ${levelDb} dBFS (±${levelTolDb} dB), measured ${desc}`,
    )
  }
}

module.exports = {
  PLAYOUT_MS,
  readWav,
  wavBuffer,
  toneSamples,
  writeToneWav,
  pcm16ToFloat,
  goertzelPower,
  dominantFrequency,
  rmsDbfs,
  powerDbfs,
  activeRegion,
  toneCheck,
  describeTone,
  assertTone,
}
