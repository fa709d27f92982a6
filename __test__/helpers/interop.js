// Glue for the audio interop suites: a call between sip-native and a PJSIP or baresip peer, in
// either direction, up to 'confirmed' on both sides; DTMF collection; waiting helpers.
'use strict'

const assert = require('node:assert/strict')
const { sleep } = require('./peers')
const { startService, waitFor } = require('./sip')
const { startPjsua2 } = require('../peers/pjsua2')
const { startBaresip } = require('../peers/baresip')

const ACCOUNT = { extension: '7779' }
const DIGITS = '0123456789*#'

/** Collects our 'dtmf' events (of one call, or all) into an array, from now on. */
function collectDtmf(sip, callId) {
  const got = []
  sip.on('dtmf', (e) => {
    if (!callId || e.callId === callId) got.push(e)
  })
  return got
}

/** Polls `fn()` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
async function until(fn, timeoutMs = 5000, everyMs = 50) {
  const end = Date.now() + timeoutMs
  let v = fn()
  while (!v && Date.now() < end) {
    await sleep(everyMs)
    v = fn()
  }
  return v
}

/**
 * A confirmed call between a started SipService and a pjsua2 peer.
 * direction 'outgoing': we call the peer (it auto-answers); 'incoming': the peer calls us, we answer.
 * Resolves { sip, events, port, callId, call, pj }.
 */
async function callWithPjsip(t, direction, { service, pjOptions } = {}) {
  const svc = service || (await startService(t, { accounts: [ACCOUNT] }))
  const { sip, events, port } = svc
  const pj = await startPjsua2({ t, autoAnswer: true, maxSeconds: 90, ...(pjOptions || {}) })
  let callId
  if (direction === 'outgoing') {
    const call = await sip.makeCall('7779', pj.uri)
    callId = call.id
  } else {
    const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
    pj.cmd('call', `sip:7779@127.0.0.1:${port}`)
    const inc = await incoming
    callId = inc.callId
    await sip.answer(callId)
  }
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed', 10000)
  await pj.waitEvent('call_state', (e) => e.state === 'confirmed')
  await pj.waitEvent('media_active')
  return { ...svc, callId, call: sip.getCall(callId), pj }
}

/**
 * A confirmed call between a started SipService and baresip (which sends an ausine tone of
 * `toneHz` all the time and records what it hears with sndfile).
 */
async function callWithBaresip(t, direction, { service, toneHz = 440 } = {}) {
  const svc = service || (await startService(t, { accounts: [ACCOUNT] }))
  const { sip, events, port } = svc
  const bs = await startBaresip({ t, toneHz, maxSeconds: 90 })
  let callId
  if (direction === 'outgoing') {
    const call = await sip.makeCall('7779', bs.uri)
    callId = call.id
  } else {
    const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
    await bs.command('dial', `sip:7779@127.0.0.1:${port}`)
    const inc = await incoming
    callId = inc.callId
    await sip.answer(callId)
  }
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed', 10000)
  await bs.waitEvent('CALL_ESTABLISHED')
  return { ...svc, callId, call: sip.getCall(callId), bs }
}

/** Asserts that the digits arrived in order, with a readable message. */
function assertDigits(actual, expected, what, context = '') {
  assert.equal(actual, expected, `${what}: expected the digits '${expected}' in order, got '${actual}'${context ? '\n' + context : ''}`)
}

/** Samples `callStats(callId).packetsSent` now and after `ms`; returns [before, after]. */
async function sentOver(sip, callId, ms) {
  const a = sip.callStats(callId).packetsSent
  await sleep(ms)
  const b = sip.callStats(callId).packetsSent
  return [a, b]
}

module.exports = { ACCOUNT, DIGITS, collectDtmf, until, callWithPjsip, callWithBaresip, assertDigits, sentOver }
