#!/usr/bin/env node
// Two sip-native user agents on loopback call each other, with audio: no PBX, no registration.
//
//   B (extension 200) listens, answers every incoming call and records it to a temp WAV file;
//   A (extension 100) calls sip:200@127.0.0.1:<B's port>; once both sides are confirmed, A plays
//   the bundled prompt (examples/assets/prompt.wav: 440, 660, 880 Hz) and sends the DTMF digits
//   42#; B prints the digits it receives, stops recording, prints both sides' RTP statistics and
//   checks that the recording holds the three notes; A hangs up; both stop.
//
//   npm run demo        (or: node examples/demo.js)
//
// Exits 0 when every step happened, every digit arrived and the recording holds all three notes;
// 1 with a message otherwise or after 30 s.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { SipService } = require(path.join(__dirname, '..'))
const prompt = require(path.join(__dirname, 'assets', 'make-prompt.js'))

const TIMEOUT_MS = 30000
const PROMPT = path.join(__dirname, 'assets', 'prompt.wav')
const DIGITS = '42#'
const t0 = Date.now()
const stamp = () => `+${String(Date.now() - t0).padStart(5)} ms`
const short = (id) => (id.length > 16 ? `${id.slice(0, 14)}…` : id)
const log = (who, msg) => console.log(`${stamp()}  ${who}  ${msg}`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

let recordingPath = null
function cleanup() {
  if (recordingPath) fs.rmSync(path.dirname(recordingPath), { recursive: true, force: true })
}
function fail(msg) {
  console.error(`demo FAILED: ${msg}`)
  if (recordingPath) console.error(`(recording kept at ${recordingPath})`)
  process.exit(1)
}
const watchdog = setTimeout(() => fail(`not done after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS)

/** Resolves with the first event `name` on `emitter` for which `pred` holds. */
function waitFor(emitter, name, pred) {
  return new Promise((resolve) => {
    const on = (e) => {
      if (!pred(e)) return
      emitter.off(name, on)
      resolve(e)
    }
    emitter.on(name, on)
  })
}

function describe(e) {
  switch (e.type) {
    case 'incoming_call':
      return `incoming_call ${short(e.callId)} from ${e.displayName ? `"${e.displayName}" ` : ''}${e.from} to ${e.to}`
    case 'call_state':
      return `call_state    ${short(e.callId)} ${e.direction} → ${e.state}${e.code ? ` (${e.code} ${e.reason})` : ''}`
    case 'registration':
      return `registration  ${e.account} ${e.state} ${e.code} ${e.reason}`
    case 'dtmf':
      return `dtmf          ${short(e.callId)} '${e.digit}' (${e.method}${e.durationMs ? `, ${e.durationMs} ms` : ''})`
    default:
      return JSON.stringify(e)
  }
}

function describeStats(s) {
  const rtt = s.rttMs === null ? 'RTT n/a (no RTCP report yet: the first comes 1-3 s in)' : `RTT ${s.rttMs.toFixed(1)} ms`
  return (
    `${s.codec}/${s.payloadType} ${s.direction}, sent ${s.packetsSent} pkts, received ${s.packetsReceived}, ` +
    `lost ${s.packetsLost}, jitter ${s.jitterMs.toFixed(2)} ms, ${rtt}`
  )
}

// ---------------------------------------------------------------------------------------------
// Recording analysis: find where the prompt starts (the recording starts before playback), then
// the dominant frequency of the middle of each note, by a Goertzel scan.

function readWav(file) {
  const buf = fs.readFileSync(file)
  let off = 12
  let fmt = null
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4)
    const len = buf.readUInt32LE(off + 4)
    if (id === 'fmt ') fmt = { channels: buf.readUInt16LE(off + 10), rate: buf.readUInt32LE(off + 12), bits: buf.readUInt16LE(off + 22) }
    if (id === 'data' && fmt) {
      if (fmt.bits !== 16) throw new Error(`${file}: ${fmt.bits}-bit WAV, expected 16-bit`)
      const end = Math.min(buf.length, off + 8 + len)
      const n = Math.floor((end - off - 8) / (2 * fmt.channels))
      const x = new Float64Array(n)
      // Channel 1 (the only one by default: what B heard).
      for (let i = 0; i < n; i++) x[i] = buf.readInt16LE(off + 8 + i * 2 * fmt.channels) / 32768
      return { rate: fmt.rate, x }
    }
    off += 8 + len + (len & 1)
  }
  throw new Error(`${file}: no PCM data chunk`)
}

/** Power of `freq` in x[from, to) (Goertzel). */
function goertzel(x, from, to, freq, rate) {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate)
  let s1 = 0
  let s2 = 0
  for (let i = from; i < to; i++) {
    const s = x[i] + k * s1 - s2
    s2 = s1
    s1 = s
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2
}

/** Dominant frequency (1 Hz steps, 200-2000 Hz) of x[from, to). */
function dominant(x, from, to, rate) {
  let best = { freq: 0, power: -1 }
  for (let f = 200; f <= 2000; f++) {
    const p = goertzel(x, from, to, f, rate)
    if (p > best.power) best = { freq: f, power: p }
  }
  return best.freq
}

function analyse(file) {
  const { rate, x } = readWav(file)
  const ms = (n) => Math.round((n * rate) / 1000)
  // Onset: the first 10 ms block louder than -30 dBFS (the prompt plays at -12 dBFS).
  const block = ms(10)
  let onset = -1
  for (let b = 0; b + block <= x.length; b += block) {
    let e = 0
    for (let i = b; i < b + block; i++) e += x[i] * x[i]
    if (Math.sqrt(e / block) > 10 ** (-30 / 20)) {
      onset = b
      break
    }
  }
  if (onset < 0) return { onsetMs: null, notes: prompt.NOTES.map((n) => ({ want: n.freq, got: null, ok: false })) }
  const first = prompt.NOTES[0].startMs
  const notes = prompt.NOTES.map((n) => {
    // The middle of the note: skip 150 ms at each end (fades, onset error of one block).
    const from = onset + ms(n.startMs - first + 150)
    const to = onset + ms(n.startMs - first + n.ms - 150)
    if (to > x.length) return { want: n.freq, got: null, ok: false }
    const got = dominant(x, from, to, rate)
    return { want: n.freq, got, ok: Math.abs(got - n.freq) <= 0.02 * n.freq }
  })
  return { rate, onsetMs: (onset * 1000) / rate, durationMs: (x.length * 1000) / rate, notes }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(PROMPT)) fail(`${PROMPT} is missing; run node examples/assets/make-prompt.js`)
  const common = { bindAddress: '127.0.0.1', localPort: 0 }
  const a = new SipService({ ...common, rtpPortMin: 30000, rtpPortMax: 30999, accounts: [{ extension: '100', displayName: 'Alice (A)' }] })
  const b = new SipService({ ...common, rtpPortMin: 31000, rtpPortMax: 31999, accounts: [{ extension: '200', displayName: 'Bob (B)' }] })

  for (const [who, sip] of [['A', a], ['B', b]]) {
    for (const name of ['registration', 'incoming_call', 'call_state', 'dtmf']) sip.on(name, (e) => log(who, describe(e)))
    sip.on('error', (e) => log(who, `error         ${e.message}`))
  }

  // B answers whatever comes in.
  b.on('incoming_call', (e) => {
    b.answer(e.callId).then(
      () => log('B', `answered      ${short(e.callId)}`),
      (err) => fail(`B could not answer: ${err.message}`),
    )
  })
  const digits = []
  b.on('dtmf', (e) => digits.push(e.digit))

  await Promise.all([a.start(), b.start()])
  const la = a.localAddress()
  const lb = b.localAddress()
  log('A', `listening on ${la.address}:${la.port}/${la.transport}`)
  log('B', `listening on ${lb.address}:${lb.port}/${lb.transport}`)

  const target = `sip:200@127.0.0.1:${lb.port}`
  const bIncoming = waitFor(b, 'incoming_call', () => true)
  const aConfirmed = waitFor(a, 'call_state', (e) => e.state === 'confirmed' || e.state === 'disconnected')
  // B's only call; listening before the INVITE goes out: B can confirm before makeCall resolves
  const bConfirmed = waitFor(b, 'call_state', (e) => e.state === 'confirmed' || e.state === 'disconnected')

  log('A', `calling ${target} as 100`)
  const call = await a.makeCall('100', target)
  log('A', `INVITE sent, call id ${short(call.id)}`)

  const inc = await bIncoming
  const [ea, eb] = await Promise.all([aConfirmed, bConfirmed])
  if (ea.state !== 'confirmed') fail(`A's call ended before it was confirmed (${ea.code} ${ea.reason})`)
  if (eb.state !== 'confirmed') fail(`B's call ended before it was confirmed (${eb.code} ${eb.reason})`)
  log('*', 'call confirmed on both sides')

  // B records what it hears; A plays the prompt, then sends DTMF.
  recordingPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sip-native-demo-')), 'b-heard.wav')
  await b.record(inc.callId, recordingPath)
  log('B', `recording to ${recordingPath}`)
  log('A', `playing ${path.relative(process.cwd(), PROMPT)} (${prompt.TOTAL_MS} ms: ${prompt.NOTES.map((n) => `${n.freq} Hz`).join(', ')})`)
  await a.playFile(call.id, PROMPT)
  log('A', 'prompt played')

  const allDigits = new Promise((resolve) => {
    const check = () => (digits.length >= DIGITS.length ? resolve() : setTimeout(check, 20))
    check()
  })
  log('A', `sending DTMF '${DIGITS}' (RFC 4733)`)
  await a.sendDtmf(call.id, DIGITS)
  log('A', 'DTMF sent')
  await Promise.race([allDigits, sleep(3000)])
  await sleep(300) // the last audio frames pass B's jitter buffer

  const info = await b.stopRecording(inc.callId)
  log('B', `recording stopped: ${info.durationMs} ms${info.droppedFrames ? `, ${info.droppedFrames} frames dropped` : ''}`)
  log('A', `stats  ${describeStats(a.callStats(call.id))}`)
  log('B', `stats  ${describeStats(b.callStats(inc.callId))}`)

  const bDisconnected = waitFor(b, 'call_state', (e) => e.callId === inc.callId && e.state === 'disconnected')
  const aDisconnected = waitFor(a, 'call_state', (e) => e.callId === call.id && e.state === 'disconnected')
  await a.hangup(call.id)
  await Promise.all([aDisconnected, bDisconnected])
  log('*', 'both sides disconnected; stopping')
  await Promise.all([a.stop(), b.stop()])
  clearTimeout(watchdog)
  log('*', `stopped: A running=${a.isRunning}, B running=${b.isRunning}`)

  // Verdict.
  const r = analyse(recordingPath)
  const got = r.notes.map((n) => `${n.want} Hz ${n.ok ? '✓' : `✗ (${n.got === null ? 'nothing' : `${n.got} Hz`})`}`).join(' ')
  console.log('')
  console.log(`DTMF received by B: '${digits.join('')}' (sent '${DIGITS}') ${digits.join('') === DIGITS ? '✓' : '✗'}`)
  if (r.onsetMs === null) console.log('recording contains no audio above -30 dBFS')
  else console.log(`prompt starts ${r.onsetMs.toFixed(0)} ms into the ${r.durationMs.toFixed(0)} ms recording (${r.rate} Hz)`)
  console.log(`recording contains the prompt: ${got}`)
  if (digits.join('') !== DIGITS) fail(`B received DTMF '${digits.join('')}', expected '${DIGITS}'`)
  const missing = r.notes.filter((n) => !n.ok)
  if (missing.length) fail(`the recording lacks ${missing.map((n) => `${n.want} Hz`).join(', ')}`)
  cleanup()
  recordingPath = null
}

main().then(
  () => {
    process.exitCode = 0
    // After stop() nothing may hold the event loop open: the process should end by itself.
    setTimeout(() => fail('the process did not exit within 3 s after stop() (a handle is still open)'), 3000).unref()
  },
  (err) => fail(err && err.stack ? err.stack : String(err)),
)
