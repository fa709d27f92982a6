#!/usr/bin/env node
// Auto-answering sip-native UAS for the load bench: answers every incoming call with 200 OK and
// lets the remote end hang up. Prints READY once bound; stops cleanly on SIGTERM/SIGINT or after
// --max-seconds.
//
// usage: node bench/uas.js --port 15070 [--max-seconds 120]
'use strict'

const path = require('node:path')
const { SipService } = require(path.join(__dirname, '..'))

const { arg, runUa, answerAll } = require('./common')

const port = Number(arg('port', 15070))
const maxSeconds = Number(arg('max-seconds', 120))

const sip = new SipService({
  bindAddress: '127.0.0.1',
  localPort: port,
  rtpPortMin: 20000,
  rtpPortMax: 60000,
})
const counts = answerAll(sip)

runUa(sip, { maxSeconds, stopAfterMs: 5000, counts: () => counts })
