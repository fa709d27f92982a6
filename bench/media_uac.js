#!/usr/bin/env node
// Media bench, the load driver: a sip-native UAC that places N calls to the UA under test at
// --cps, plays a 1000 Hz tone on each (G.711 both ways), holds them all for --hold seconds, reads
// callStats() of every call at the start and end of the hold window, then hangs up.
// sipp's pcap playback starts one thread per call and cannot drive 2,000 media calls; this can.
//
// stdout, one line each: READY, UP {...} (every call confirmed or failed, or the setup deadline
// passed), HOLD_START, HOLD_END, RESULT {...}, DONE. After RESULT it waits for a line "hangup" on
// stdin (at most 15 s), so the driver can query the UA under test while every call is still up.
//
// usage: node bench/media_uac.js --target 127.0.0.1:15170 --n 200 [--cps 100] [--hold 30]
//                                [--port 15171] [--rtp-min 30000 --rtp-max 37999]
'use strict'

const path = require('node:path')
const readline = require('node:readline')
const { SipService } = require(path.join(__dirname, '..'))

const { arg, sleep } = require('./common')

const TARGET = arg('target', '127.0.0.1:15170')
const N = Number(arg('n', 50))
const CPS = Number(arg('cps', 100))
const HOLD_S = Number(arg('hold', 30))
const SETTLE_MS = 1000
const PPS = 50 // G.711, 20 ms frames
const out = (line) => console.log(line)

const sip = new SipService({
  bindAddress: '127.0.0.1',
  localPort: Number(arg('port', 0)),
  rtpPortMin: Number(arg('rtp-min', 30000)),
  rtpPortMax: Number(arg('rtp-max', 37999)),
  inviteTimeoutMs: 30000,
  accounts: [{ extension: '100' }],
})

const calls = new Map() // id -> { confirmed, disconnected, code, reason }
const codes = {}
let confirmed = 0
let failed = 0
let makeErrors = 0
let toneErrors = 0
let droppedDuringHold = 0
let holding = false

sip.on('call_state', (e) => {
  const c = calls.get(e.callId)
  if (!c) return
  if (e.state === 'confirmed' && !c.confirmed) {
    c.confirmed = true
    confirmed++
    sip.playTone(e.callId, { frequency: 1000, durationMs: 0 }).catch((err) => {
      if (toneErrors++ < 5 && !c.disconnected) console.error(`playTone ${e.callId}: ${err && err.message}`)
    })
  } else if (e.state === 'disconnected' && !c.disconnected) {
    c.disconnected = true
    if (!c.confirmed) {
      failed++
      const k = `${e.code} ${e.reason}`
      codes[k] = (codes[k] || 0) + 1
    } else if (holding) {
      droppedDuringHold++
      const k = `dropped during hold: ${e.code} ${e.reason}`
      codes[k] = (codes[k] || 0) + 1
    }
  }
})
sip.on('error', (e) => console.error(`error event: ${e && e.message}`))

function snapshot() {
  const snap = new Map()
  for (const [id, c] of calls) {
    if (!c.confirmed || c.disconnected) continue
    try {
      snap.set(id, sip.callStats(id))
    } catch {
      /* ended meanwhile */
    }
  }
  return snap
}

async function placeAll() {
  const target = `sip:uas@${TARGET}`
  const t0 = Date.now()
  let placed = 0
  while (placed < N) {
    const due = Math.min(N, Math.floor(((Date.now() - t0) / 1000) * CPS) + 1)
    const batch = []
    for (; placed < due; placed++) {
      batch.push(
        sip.makeCall('100', target).then(
          (call) => {
            if (!calls.has(call.id)) calls.set(call.id, { confirmed: false, disconnected: false })
          },
          (err) => {
            failed++
            const k = `makeCall: ${err && err.message}`
            if (makeErrors++ < 5) console.error(k)
            codes[k] = (codes[k] || 0) + 1
          },
        ),
      )
    }
    await Promise.all(batch)
    await sleep(10)
  }
  return (Date.now() - t0) / 1000
}

async function main() {
  await sip.start()
  out(`READY uac ${N} calls to ${TARGET} at ${CPS} cps, hold ${HOLD_S} s`)
  // call_state events can in principle arrive before makeCall resolves; register ids early.
  const early = (e) => {
    if (!calls.has(e.callId) && e.direction === 'outgoing' && e.state === 'calling') {
      calls.set(e.callId, { confirmed: false, disconnected: false })
    }
  }
  sip.prependListener('call_state', early)
  const rampSec = await placeAll()
  const deadline = Date.now() + 15000
  while (confirmed + failed < N && Date.now() < deadline) await sleep(50)
  out(`UP ${JSON.stringify({ placed: calls.size, confirmed, failed, rampSec, codes })}`)

  await sleep(SETTLE_MS)
  holding = true
  const s0 = snapshot()
  const t0 = process.hrtime.bigint()
  out('HOLD_START')
  await sleep(HOLD_S * 1000)
  const s1 = snapshot()
  const holdSec = Number(process.hrtime.bigint() - t0) / 1e9
  holding = false
  out('HOLD_END')

  // Calls up through the whole window.
  let ok = 0
  let dRecv = 0
  let dLost = 0
  let dSent = 0
  let dropped = 0
  const jitters = []
  let codec = {}
  for (const [id, a] of s0) {
    const b = s1.get(id)
    if (!b) continue
    ok++
    dRecv += b.packetsReceived - a.packetsReceived
    dLost += b.packetsLost - a.packetsLost
    dSent += b.packetsSent - a.packetsSent
    dropped += b.packetsDropped - a.packetsDropped
    jitters.push(b.jitterMs)
    codec[b.codec] = (codec[b.codec] || 0) + 1
  }
  jitters.sort((x, y) => x - y)
  const q = (p) => (jitters.length ? jitters[Math.min(jitters.length - 1, Math.ceil(p * jitters.length) - 1)] : null)
  const expectedByTime = ok * holdSec * PPS
  out(
    `RESULT ${JSON.stringify({
      n: N,
      placed: calls.size,
      confirmed,
      failed,
      ok,
      droppedDuringHold,
      codes,
      codec,
      holdSec,
      rx: { packets: dRecv, lost: dLost, dropped, expectedBySeq: dRecv + dLost, expectedByTime },
      tx: { packets: dSent, expectedByTime },
      jitterMs: { mean: jitters.length ? jitters.reduce((s, j) => s + j, 0) / jitters.length : null, p50: q(0.5), p99: q(0.99), max: q(1) },
      uacClock: sip.mediaClock(),
    })}`,
  )

  // Wait for the driver (it queries the UA under test while the calls are still up).
  await new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin })
    const t = setTimeout(() => (rl.close(), resolve()), 15000)
    rl.on('line', (l) => {
      if (l.trim() === 'hangup') {
        clearTimeout(t)
        rl.close()
        resolve()
      }
    })
    rl.on('close', () => (clearTimeout(t), resolve()))
  })
  const live = [...calls.entries()].filter(([, c]) => c.confirmed && !c.disconnected).map(([id]) => id)
  for (let i = 0; i < live.length; i += 20) {
    await Promise.all(live.slice(i, i + 20).map((id) => sip.hangup(id).catch(() => {})))
    await sleep(50)
  }
  await sleep(500)
  await sip.stop()
  out('DONE')
}

const hard = setTimeout(() => {
  console.error('media_uac: hard timeout')
  process.exit(3)
}, (N / CPS + HOLD_S + 120) * 1000)
hard.unref()

main().then(
  () => {
    process.stdin.destroy()
  },
  (err) => {
    console.error(`media_uac: ${err && err.stack}`)
    process.exit(1)
  },
)
