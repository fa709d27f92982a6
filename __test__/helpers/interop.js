// Glue for the audio interop suites: a call between sip-native and a PJSIP or baresip peer, in
// either direction, up to 'confirmed' on both sides; DTMF collection and checks.
'use strict'

const assert = require('node:assert/strict')
const { startService, waitFor } = require('./sip')
const { startPjsua2 } = require('../peers/pjsua2')
const { startBaresip } = require('../peers/baresip')

const ACCOUNT = { extension: '7779' }
const DIGITS = '0123456789*#'

/** How callWithPeer starts each peer: both answer at once; baresip sends its 440 Hz ausine. */
const PEER_DRIVERS = {
  pjsua2: (t, o) => startPjsua2({ t, autoAnswer: true, maxSeconds: 90, ...o }),
  baresip: (t, o) => startBaresip({ t, toneHz: 440, maxSeconds: 90, ...o }),
}

/**
 * A confirmed call between a SipService (a fresh one with ACCOUNT, or `service`) and a new peer
 * (`kind` 'pjsua2' or 'baresip', started with `peerOptions`), established on both sides.
 * direction 'outgoing': we call the peer (it auto-answers); 'incoming': the peer calls us, we answer.
 * Resolves { sip, events, port, addr, callId, call, peer }.
 */
async function callWithPeer(t, kind, direction, { service, peerOptions } = {}) {
  const svc = service || (await startService(t, { accounts: [ACCOUNT] }))
  const { sip, events, port } = svc
  const peer = await PEER_DRIVERS[kind](t, peerOptions)
  let callId
  if (direction === 'outgoing') {
    callId = (await sip.makeCall(ACCOUNT.extension, peer.uri)).id
  } else {
    const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
    await peer.dial(`sip:${ACCOUNT.extension}@127.0.0.1:${port}`)
    callId = (await incoming).callId
    await sip.answer(callId)
  }
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed', 10000)
  await peer.established()
  return { ...svc, callId, call: sip.getCall(callId), peer }
}

/** Collects our 'dtmf' events (of one call, or all) into an array, from now on. */
function collectDtmf(sip, callId) {
  const got = []
  sip.on('dtmf', (e) => {
    if (!callId || e.callId === callId) got.push(e)
  })
  return got
}

/** Asserts that the digits arrived in order, with a readable message. */
function assertDigits(actual, expected, what, context = '') {
  assert.equal(actual, expected, `${what}: expected the digits '${expected}' in order, got '${actual}'${context ? '\n' + context : ''}`)
}

module.exports = { ACCOUNT, DIGITS, callWithPeer, collectDtmf, assertDigits }
