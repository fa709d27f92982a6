// Waiting in the node:test suites: `sleep` for time that is itself the measurement (a window of
// RTP, a recording's length), `until` for a condition that has no event to wait for (a counter,
// a file, a port). Events of a SipService are waited for with waitFor in ./sip.js instead.
'use strict'

const { setTimeout: sleep } = require('node:timers/promises')

const POLL_MS = 50

/**
 * Calls `probe` (sync or async) every 50 ms until it returns a truthy value, and resolves to that
 * value. Throws an Error naming `what` and the timeout after `timeoutMs`; `what` may be a function,
 * called then, to describe the state at that moment. An exception from `probe` ends the wait.
 */
async function until(probe, timeoutMs, what) {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > end) {
      throw new Error(`not within ${timeoutMs} ms: ${typeof what === 'function' ? what() : what}`)
    }
    await sleep(POLL_MS)
  }
}

module.exports = { sleep, until }
