#!/usr/bin/env node
// Call recording: answers every incoming call (or places one with --call), announces the
// recording with a short beep and records the call to a 16-bit WAV file, one per call, until
// either side hangs up (or --max-seconds). Then prints the file and its duration.
//
//   mono (default): what is heard on the call, both parties mixed
//   --stereo:       channel 1 = the remote party, channel 2 = us (for speaker-separated transcripts)
//
//   node examples/record-call.js --local-port 5070 --dir /tmp/recordings     # dial sip:recorder@<host>:5070
//   node examples/record-call.js --server pbx.example.com --extension 7001 --password s3cret --stereo
//   node examples/record-call.js --server pbx.example.com --extension 7001 --call 7779 --max-seconds 30
//
// Own flags: --dir <folder> (RECORD_DIR, default the current folder), --stereo (RECORD_STEREO=1),
// --beep <ms> (RECORD_BEEP_MS; default 500, 0 = no announcement), --call <target> (place a call
// and record it), --max-seconds <s> (hang up after that long; default: no limit).
// SIP flags: examples/common.js. Needs only the package. Ctrl-C stops (recordings are finalised).
// Each finished recording is one line: `saved <path> <durationMs> ms <channels> ch`.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { parseSettings, startService, short } = require('./common')

const USAGE = `usage: node examples/record-call.js [--dir folder] [--stereo] [--beep ms] [--call target] [--max-seconds s] [SIP flags]
SIP flags: --server --server-port --transport --extension --username --password --bind --local-port --log-level
(see examples/common.js; each also as an environment variable, e.g. SIP_SERVER)`

const values = parseSettings(
  USAGE,
  {
    dir: { type: 'string', env: 'RECORD_DIR' },
    stereo: { type: 'boolean', env: 'RECORD_STEREO' },
    beep: { type: 'string', env: 'RECORD_BEEP_MS' },
    call: { type: 'string' },
    'max-seconds': { type: 'string' },
  },
  { extension: 'recorder', dir: '.', beep: '500' },
)
const BEEP_MS = Number(values.beep)
const MAX_MS = values['max-seconds'] === undefined ? 0 : Number(values['max-seconds']) * 1000
for (const [flag, v] of [['beep', BEEP_MS], ['max-seconds', MAX_MS]]) {
  if (!(v >= 0)) {
    console.error(`--${flag}: expected a number >= 0, got '${values[flag]}'`)
    process.exit(2)
  }
}
fs.mkdirSync(values.dir, { recursive: true })

/** callId -> { path, timer } of the recordings under way. */
const recordings = new Map()

async function startRecording(sip, callId) {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = path.resolve(values.dir, `call-${stamp}-${callId.replace(/[^\w-]/g, '').slice(0, 16)}.wav`)
  const channels = values.stereo ? 2 : 1
  // start first, then announce: the beep is part of the recording (channel 2 in stereo)
  await sip.record(callId, file, { channels })
  const timer = MAX_MS ? setTimeout(() => sip.hangup(callId).catch(() => {}), MAX_MS) : null
  recordings.set(callId, { file, timer, channels })
  console.log(`call ${short(callId)} recording to ${file} (${channels} ch)`)
  if (BEEP_MS) await sip.playTone(callId, { frequency: 440, durationMs: BEEP_MS, level: -16 })
}

async function finish(sip, callId) {
  const rec = recordings.get(callId)
  if (!rec) return
  recordings.delete(callId)
  clearTimeout(rec.timer)
  // stopRecording works after the call ended too: the engine keeps the finished recording's summary
  const info = await sip.stopRecording(callId)
  console.log(`saved ${info.path} ${Math.round(info.durationMs)} ms ${rec.channels} ch`)
}

async function main() {
  // on Ctrl-C: close the files first, then the calls
  const sip = await startService(values, 'record-call', () => Promise.all([...recordings.keys()].map((id) => finish(sip, id))))
  sip.on('incoming_call', (e) => {
    console.log(`call ${short(e.callId)} incoming from ${e.from}`)
    sip.answer(e.callId).catch((err) => console.error(`call ${short(e.callId)} answer failed: ${err.message}`))
  })
  sip.on('call_state', (e) => {
    if (e.state === 'confirmed' && !recordings.has(e.callId)) {
      startRecording(sip, e.callId).catch((err) => console.error(`call ${short(e.callId)} recording failed: ${err.message}`))
    }
    if (e.state === 'disconnected') {
      console.log(`call ${short(e.callId)} ended (${e.code} ${e.reason})`)
      finish(sip, e.callId).then(
        () => values.call && process.kill(process.pid, 'SIGTERM'), // one call asked for: done
        (err) => console.error(`call ${short(e.callId)} stopRecording failed: ${err.message}`),
      )
    }
  })
  if (values.call) {
    const call = await sip.makeCall(values.extension, values.call)
    console.log(`call ${short(call.id)} calling ${values.call}`)
  }
}

main().catch((err) => {
  console.error(`record-call: ${err.message}`)
  process.exit(1)
})
