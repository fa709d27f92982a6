#!/usr/bin/env node
// Auto-answering sip-native UAS for the load bench: answers every incoming call with 200 OK and
// lets the remote end hang up. Prints READY once bound; stops cleanly on SIGTERM/SIGINT or after
// --max-seconds.
//
// usage: node bench/uas.js --port 15070 [--max-seconds 120]
'use strict'

const path = require('node:path')
const { SipService } = require(path.join(__dirname, '..'))

const { arg, runUa } = require('./common')

const port = Number(arg('port', 15070))
const maxSeconds = Number(arg('max-seconds', 120))

const stats = { incoming: 0, answered: 0, answerErrors: 0, confirmed: 0, disconnected: 0, errors: 0 }

const sip = new SipService({
  bindAddress: '127.0.0.1',
  localPort: port,
  rtpPortMin: 20000,
  rtpPortMax: 60000,
})

sip.on('incoming_call', (e) => {
  stats.incoming++
  sip.answer(e.callId).then(
    () => stats.answered++,
    (err) => {
      if (stats.answerErrors++ < 5) console.error(`answer ${e.callId}: ${err && err.message}`)
    },
  )
})
sip.on('call_state', (e) => {
  if (e.state === 'confirmed') stats.confirmed++
  else if (e.state === 'disconnected') stats.disconnected++
})
sip.on('error', (e) => {
  if (stats.errors++ < 5) console.error(`error event: ${e && e.message}`)
})

runUa(sip, { maxSeconds, stopAfterMs: 5000, counts: () => stats })
