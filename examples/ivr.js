#!/usr/bin/env node
// An IVR menu: answers every incoming call, plays a prompt and branches on the caller's DTMF.
//
//   1  plays an information tone (1000 Hz, 2 s), then the menu again
//   2  connects the caller to an operator: calls --operator and bridges the two calls' audio
//      (no operator configured, or the operator does not answer: a 480 Hz tone, then the menu)
//   0  goodbye: the IVR hangs up
//   any other key: a short 400 Hz error tone, then the menu again
//
// A key pressed while the prompt plays stops it (barge-in). No key within --menu-timeout after
// the prompt: the prompt again, and after three silent rounds the IVR hangs up.
//
//   node examples/ivr.js --local-port 5070                      # peer-to-peer: dial sip:ivr@<host>:5070
//   node examples/ivr.js --server pbx.example.com --extension 7000 --password secret
//   node examples/ivr.js --operator sip:7779@pbx.example.com --prompt welcome.wav
//
// Own flags: --prompt <wav> (IVR_PROMPT; default examples/assets/prompt.wav, any common WAV),
// --operator <uri> (IVR_OPERATOR), --menu-timeout <s> (default 8). SIP flags: examples/common.js.
// Needs only the package. Prints one line per step (`call <id> ...`) on stdout; Ctrl-C stops.
'use strict'

const path = require('node:path')
const { parseSettings, startService, short } = require('./common')

const USAGE = `usage: node examples/ivr.js [--prompt file.wav] [--operator sip:uri] [--menu-timeout s] [SIP flags]
SIP flags: --server --server-port --transport --extension --username --password --bind --local-port --log-level
(see examples/common.js; each also as an environment variable, e.g. SIP_SERVER)`

const values = parseSettings(
  USAGE,
  {
    prompt: { type: 'string', env: 'IVR_PROMPT' },
    operator: { type: 'string', env: 'IVR_OPERATOR' },
    'menu-timeout': { type: 'string', env: 'IVR_MENU_TIMEOUT' },
  },
  { extension: 'ivr', prompt: path.join(__dirname, 'assets', 'prompt.wav'), 'menu-timeout': '8' },
)
const MENU_TIMEOUT_MS = Number(values['menu-timeout']) * 1000
if (!(MENU_TIMEOUT_MS > 0)) {
  console.error(`--menu-timeout: expected seconds > 0, got '${values['menu-timeout']}'`)
  process.exit(2)
}
const INFO_TONE = { frequency: 1000, durationMs: 2000, level: -10 }
const NO_OPERATOR_TONE = { frequency: 480, durationMs: 1500, level: -10 }
const ERROR_TONE = { frequency: 400, durationMs: 400, level: -10 }
const MAX_SILENT_ROUNDS = 3
/** Bridged operator call id -> the caller's call id, so that either side hanging up ends both. */
const operatorLegs = new Map()

/**
 * One caller's pass through the menu. `digit` events are queued, so a key pressed during the
 * prompt both stops it and is the choice.
 */
class MenuSession {
  constructor(sip, callId) {
    this.sip = sip
    this.callId = callId
    this.digits = []
    this.wake = null
    this.started = false
    this.ended = false
    this.operatorCall = null
  }

  log(msg) {
    console.log(`call ${short(this.callId)} ${msg}`)
  }

  onDigit(digit) {
    this.digits.push(digit)
    if (this.wake) this.wake()
    // barge-in: stop the prompt (a no-op when nothing plays)
    this.sip.stopPlayback(this.callId).catch(() => {})
  }

  end() {
    this.ended = true
    if (this.wake) this.wake()
    if (this.operatorCall) this.sip.hangup(this.operatorCall).catch(() => {})
  }

  /** Resolves with the next digit, or null after `ms` or when the call ended. */
  nextDigit(ms) {
    if (this.digits.length) return Promise.resolve(this.digits.shift())
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), ms)
      const done = (d) => {
        clearTimeout(timer)
        this.wake = null
        resolve(d)
      }
      this.wake = () => done(this.ended ? null : this.digits.shift() ?? null)
    })
  }

  async run() {
    let silent = 0
    while (!this.ended) {
      this.log('menu: playing the prompt')
      await this.sip.playFile(this.callId, values.prompt)
      const digit = await this.nextDigit(MENU_TIMEOUT_MS)
      if (this.ended) return
      if (digit === null) {
        if (++silent >= MAX_SILENT_ROUNDS) {
          this.log('no choice made: hanging up')
          return this.sip.hangup(this.callId)
        }
        continue
      }
      silent = 0
      this.log(`digit ${digit}`)
      this.digits.length = 0 // keys pressed during the branch do not carry over
      switch (digit) {
        case '1':
          this.log(`branch 1: information tone ${INFO_TONE.frequency} Hz`)
          await this.sip.playTone(this.callId, INFO_TONE)
          this.log('branch 1: done')
          break
        case '2':
          if (await this.toOperator()) return
          break
        case '0':
          this.log('branch 0: goodbye, hanging up')
          return this.sip.hangup(this.callId)
        default:
          this.log(`no branch for ${digit}: error tone`)
          await this.sip.playTone(this.callId, ERROR_TONE)
      }
      this.digits.length = 0
    }
  }

  /** Calls the operator and bridges; true when bridged (the menu is over for this caller). */
  async toOperator() {
    if (!values.operator) {
      this.log('branch 2: no operator configured')
      await this.sip.playTone(this.callId, NO_OPERATOR_TONE)
      return false
    }
    this.log(`branch 2: calling the operator ${values.operator}`)
    const call = await this.sip.makeCall(values.extension, values.operator)
    this.operatorCall = call.id
    const outcome = await new Promise((resolve) => {
      const on = (e) => {
        if (e.callId !== call.id || (e.state !== 'confirmed' && e.state !== 'disconnected')) return
        this.sip.off('call_state', on)
        resolve(e)
      }
      this.sip.on('call_state', on)
    })
    if (this.ended) return true
    if (outcome.state !== 'confirmed') {
      this.operatorCall = null
      this.log(`branch 2: operator not reached (${outcome.code} ${outcome.reason})`)
      await this.sip.playTone(this.callId, NO_OPERATOR_TONE)
      return false
    }
    await this.sip.bridge(this.callId, call.id)
    operatorLegs.set(call.id, this.callId)
    this.log(`branch 2: bridged to the operator (call ${short(call.id)})`)
    return true
  }
}

async function main() {
  const sip = await startService(values, 'ivr')
  const sessions = new Map() // caller's callId -> MenuSession

  sip.on('incoming_call', (e) => {
    console.log(`call ${short(e.callId)} incoming from ${e.from}`)
    sessions.set(e.callId, new MenuSession(sip, e.callId))
    sip.answer(e.callId).catch((err) => console.error(`call ${short(e.callId)} answer failed: ${err.message}`))
  })
  sip.on('dtmf', (e) => sessions.get(e.callId)?.onDigit(e.digit))
  sip.on('call_state', (e) => {
    const session = sessions.get(e.callId)
    if (e.state === 'confirmed' && session && !session.started) {
      session.started = true
      session.run().catch((err) => {
        // a call hung up under us makes playFile/playTone reject: that is the end, not a fault
        if (!session.ended) console.error(`call ${short(e.callId)} menu failed: ${err.message}`)
      })
    }
    if (e.state !== 'disconnected') return
    console.log(`call ${short(e.callId)} ended (${e.code} ${e.reason})`)
    if (session) {
      session.end()
      sessions.delete(e.callId)
    }
    // the operator hung up: so does the caller's leg
    const caller = operatorLegs.get(e.callId)
    if (caller) {
      operatorLegs.delete(e.callId)
      sip.hangup(caller).catch(() => {})
    }
  })
}

main().catch((err) => {
  console.error(`ivr: ${err.message}`)
  process.exit(1)
})
