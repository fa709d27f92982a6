#!/usr/bin/env node
// Media bench, the UA under test: an auto-answering sip-native UAS that plays a 440 Hz tone on
// every call until the call ends (G.711 both ways; it also receives the caller's tone). Prints
// READY once bound. Answers line commands on stdin:
//   clock  -> CLOCK {"p50":..,"p99":..}   media clock tick intervals since start, ms
//   stats  -> STATS {...}                 sums of callStats() over the live calls
// Stops cleanly on SIGTERM/SIGINT, stdin EOF or after --max-seconds.
//
// usage: node bench/media_uas.js --port 15170 [--rtp-min 20000 --rtp-max 27999] [--max-seconds 300]
'use strict'

const path = require('node:path')
const readline = require('node:readline')
const { SipService } = require(path.join(__dirname, '..'))

const { arg, runUa, answerAll } = require('./common')

const port = Number(arg('port', 15170))
const maxSeconds = Number(arg('max-seconds', 300))
const live = new Set()

const sip = new SipService({
  bindAddress: '127.0.0.1',
  localPort: port,
  rtpPortMin: Number(arg('rtp-min', 20000)),
  rtpPortMax: Number(arg('rtp-max', 27999)),
  incomingCallTimeoutMs: 30000,
})

const counts = Object.assign(answerAll(sip), { toneErrors: 0 }) // answerAll keeps counting into it
sip.on('call_state', (e) => {
  if (e.state === 'confirmed') {
    live.add(e.callId)
    sip.playTone(e.callId, { frequency: 440, durationMs: 0 }).catch((err) => {
      if (counts.toneErrors++ < 5 && live.has(e.callId)) console.error(`playTone ${e.callId}: ${err && err.message}`)
    })
  } else if (e.state === 'disconnected') {
    live.delete(e.callId)
  }
})

function statsSum() {
  const s = { calls: 0, packetsSent: 0, packetsReceived: 0, packetsLost: 0, packetsDropped: 0, jitterMsSum: 0, jitterMsMax: 0, statsErrors: 0 }
  for (const id of live) {
    let st
    try {
      st = sip.callStats(id)
    } catch {
      s.statsErrors++
      continue
    }
    s.calls++
    s.packetsSent += st.packetsSent
    s.packetsReceived += st.packetsReceived
    s.packetsLost += st.packetsLost
    s.packetsDropped += st.packetsDropped
    s.jitterMsSum += st.jitterMs
    s.jitterMsMax = Math.max(s.jitterMsMax, st.jitterMs)
  }
  return { ...s, counts, liveCalls: sip.counters().liveCalls }
}

const shutdown = runUa(sip, { maxSeconds, stopAfterMs: 10000, counts: () => counts })

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const cmd = line.trim()
  if (cmd === 'clock') console.log(`CLOCK ${JSON.stringify(sip.mediaClock())}`)
  else if (cmd === 'stats') console.log(`STATS ${JSON.stringify(statsSum())}`)
})
rl.on('close', () => shutdown('stdin closed'))
