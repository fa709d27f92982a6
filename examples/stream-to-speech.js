#!/usr/bin/env node
// Streams a call's audio to a speech service over a WebSocket, and plays the service's spoken
// reply back into the call: the shape of a voice bot (speech-to-text + text-to-speech).
// Answers every incoming call and opens one WebSocket per call to --ws-url.
//
//   call.audio.readable  (20 ms frames, 16-bit LE mono PCM)  ->  binary WebSocket messages
//   binary WebSocket messages (same PCM format)              ->  call.audio.writable
//
// Protocol, kept minimal so that a small adapter fits any speech API:
//   first, a text message  {"type":"start","callId":"...","from":"sip:...","sampleRate":8000,
//                           "encoding":"pcm_s16le","channels":1}
//   then binary messages of the caller's audio, as it comes (one per 20 ms frame);
//   at hang-up a text message {"type":"stop"} and the socket closes.
//   From the service: binary messages are PCM played to the caller (any length; the
//   writable's back-pressure paces them to real time); text messages are JSON such as
//   {"type":"transcript","text":"..."}, printed; {"type":"hangup"} ends the call.
// The service closing the socket ends the call too.
//
//   node examples/stream-to-speech.js --ws-url ws://127.0.0.1:8080/stream --local-port 5070
//   SPEECH_WS_URL=wss://speech.example.com/v1/stream node examples/stream-to-speech.js --server pbx.example.com --extension 7002 --password s3cret
//
// Needs a WebSocket client: Node 22's global WebSocket, else the `ws` package (npm install ws).
// Own flags: --ws-url <url> (SPEECH_WS_URL, required). SIP flags: examples/common.js.
'use strict'

const { parseSettings, startService, short } = require('./common')

const USAGE = `usage: node examples/stream-to-speech.js --ws-url ws://host:port/path [SIP flags]
SIP flags: --server --server-port --transport --extension --username --password --bind --local-port --log-level
(see examples/common.js; each also as an environment variable, e.g. SIP_SERVER)`

const values = parseSettings(USAGE, { 'ws-url': { type: 'string', env: 'SPEECH_WS_URL' } }, { extension: 'speech' })
if (!/^wss?:\/\//.test(values['ws-url'] || '')) {
  console.error(`--ws-url: expected a ws:// or wss:// URL, got '${values['ws-url'] ?? ''}'`)
  process.exit(2)
}

function webSocketClient() {
  if (typeof globalThis.WebSocket === 'function') return { WebSocket: globalThis.WebSocket, source: "Node's global WebSocket" }
  try {
    return { WebSocket: require('ws'), source: 'the ws package' }
  } catch {
    console.error('stream-to-speech: no WebSocket client: use Node 22 or later, or npm install ws')
    process.exit(2)
  }
}
const { WebSocket, source } = webSocketClient()
// More than this much unsent (a service that stopped reading): frames are dropped, not queued.
const MAX_BUFFERED_BYTES = 64 * 1024

/** Connects one answered call to the speech service until either side ends. */
function streamCall(sip, call, from) {
  const log = (msg) => console.log(`call ${short(call.id)} ${msg}`)
  const { sampleRate, readable, writable } = call.audio
  const url = new URL(values['ws-url'])
  url.searchParams.set('callId', call.id)
  const ws = new WebSocket(url)
  ws.binaryType = 'arraybuffer'
  let sentFrames = 0
  let dropped = 0
  let receivedBytes = 0

  const onFrame = (frame) => {
    if (ws.readyState !== 1) return
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      dropped++
      return
    }
    ws.send(frame)
    sentFrames++
  }
  ws.addEventListener('open', () => {
    log(`streaming to ${url.origin}${url.pathname} at ${sampleRate} Hz`)
    ws.send(JSON.stringify({ type: 'start', callId: call.id, from, sampleRate, encoding: 'pcm_s16le', channels: 1 }))
    readable.on('data', onFrame)
  })
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data === 'string') {
      let msg
      try {
        msg = JSON.parse(ev.data)
      } catch {
        return log(`ignored a text message that is not JSON: ${ev.data.slice(0, 80)}`)
      }
      if (msg.type === 'transcript') log(`transcript: ${msg.text}`)
      else if (msg.type === 'hangup') sip.hangup(call.id).catch(() => {})
      return
    }
    const pcm = Buffer.from(ev.data)
    receivedBytes += pcm.length
    // an odd byte count would shift every later sample: drop the stray byte
    writable.write(pcm.length % 2 ? pcm.subarray(0, pcm.length - 1) : pcm)
  })
  ws.addEventListener('error', (ev) => log(`websocket error: ${ev.message || ev.error?.message || 'connection failed'}`))
  ws.addEventListener('close', (ev) => {
    readable.off('data', onFrame)
    log(`websocket closed (${ev.code}); sent ${sentFrames} frames (${dropped} dropped), received ${receivedBytes} bytes`)
    // the bot is gone: end the call (a no-op when it ended already)
    sip.hangup(call.id).catch(() => {})
  })
  const onState = (e) => {
    if (e.callId !== call.id || e.state !== 'disconnected') return
    sip.off('call_state', onState)
    if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'stop' }))
    if (ws.readyState <= 1) ws.close(1000, 'call ended')
  }
  sip.on('call_state', onState)
  // the call ending destroys nothing by itself; a write after it rejects: ignore
  writable.on('error', () => {})
}

async function main() {
  console.log(`websocket client: ${source}`)
  const sip = await startService(values, 'stream-to-speech')
  const callers = new Map()
  sip.on('incoming_call', (e) => {
    console.log(`call ${short(e.callId)} incoming from ${e.from}`)
    callers.set(e.callId, e.from)
    sip.answer(e.callId).catch((err) => console.error(`call ${short(e.callId)} answer failed: ${err.message}`))
  })
  sip.on('call_state', (e) => {
    if (e.state === 'confirmed' && callers.has(e.callId)) {
      const call = sip.getCall(e.callId)
      if (call) streamCall(sip, call, callers.get(e.callId))
      callers.delete(e.callId)
    }
    if (e.state === 'disconnected') console.log(`call ${short(e.callId)} ended (${e.code} ${e.reason})`)
  })
}

main().catch((err) => {
  console.error(`stream-to-speech: ${err.message}`)
  process.exit(1)
})
