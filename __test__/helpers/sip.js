// Helpers around the sip-native API for the node:test suites.
'use strict'

const { SipService } = require('../..')

/** A started SipService on 127.0.0.1:<any port>; stopped when the test ends. */
async function startService(t, config = {}) {
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, ...config })
  const events = record(sip)
  await sip.start()
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  const { port } = sip.localAddress()
  return { sip, events, port, addr: `127.0.0.1:${port}` }
}

/** Records every event of the service, in order: [{ name, ...event }]. */
function record(sip) {
  const events = []
  for (const name of ['registration', 'incoming_call', 'call_state', 'public_address', 'transport', 'error']) {
    // an 'error' listener also keeps a stray error event from throwing
    sip.on(name, (e) => events.push({ name, ...e }))
  }
  return events
}

/** Resolves with the first event `name` matching `pred` (already recorded ones count). */
function waitFor(sip, events, name, pred = () => true, timeoutMs = 10000) {
  const seen = events.find((e) => e.name === name && pred(e))
  if (seen) return Promise.resolve(seen)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sip.off(name, on)
      reject(
        new Error(
          `timed out after ${timeoutMs} ms waiting for '${name}'; events so far:\n` +
            events.map((e) => JSON.stringify(e)).join('\n'),
        ),
      )
    }, timeoutMs)
    function on(e) {
      if (!pred(e)) return
      clearTimeout(timer)
      sip.off(name, on)
      resolve({ name, ...e })
    }
    sip.on(name, on)
  })
}

const callStates = (events, callId) =>
  events.filter((e) => e.name === 'call_state' && (!callId || e.callId === callId)).map((e) => e.state)

const disconnected = (sip, events, callId, timeoutMs) =>
  waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'disconnected', timeoutMs)

module.exports = { startService, record, waitFor, callStates, disconnected }
