// Output of the CLI: results on stdout, progress (the live line per call) and errors on stderr.
// On a terminal the live line is rewritten in place (\r); otherwise a line is printed when the
// call's state or codec changes and at most once a second, so that logs and tests can parse
// it. With --json every output is one JSON object per line on stdout instead.
'use strict'

/** `callStats` and the call's state → the fields of a status line. */
function statusFields(callId, state, stats, startedAt) {
  const s = stats || {}
  const received = s.packetsReceived || 0
  const lost = Math.max(0, s.packetsLost || 0)
  const expected = received + lost
  return {
    callId,
    state,
    codec: s.codec || '-',
    elapsedS: startedAt ? Math.round((Date.now() - startedAt) / 100) / 10 : 0,
    packetsSent: s.packetsSent || 0,
    packetsReceived: received,
    packetsLost: lost,
    lossPercent: expected ? Math.round((lost / expected) * 1000) / 10 : 0,
    jitterMs: Math.round((s.jitterMs || 0) * 10) / 10,
  }
}

function statusText(f) {
  return (
    `[${f.callId}] state=${f.state} codec=${f.codec} t=${f.elapsedS.toFixed(1)}s tx=${f.packetsSent} ` +
    `rx=${f.packetsReceived} lost=${f.packetsLost} loss=${f.lossPercent.toFixed(1)}% jitter=${f.jitterMs.toFixed(1)}ms`
  )
}

class Output {
  constructor({ json = false, stdout = process.stdout, stderr = process.stderr } = {}) {
    this.json = json
    this.stdout = stdout
    this.stderr = stderr
    this.tty = Boolean(stderr.isTTY) && !json
    this.lineOpen = false
    this.last = new Map() // callId → { key, at } of the last line printed
    this.fields = new Map() // callId → the last fields
  }

  /** Ends a rewritten status line before anything else is printed. */
  _breakLine() {
    if (this.lineOpen) {
      this.stderr.write('\n')
      this.lineOpen = false
    }
  }

  /** A result line (stdout) or, with --json, the object. */
  result(text, obj) {
    this._breakLine()
    this.stdout.write(this.json ? JSON.stringify(obj) + '\n' : text + '\n')
  }

  /** A progress note (stderr), or the object on stdout with --json. */
  note(text, obj) {
    this._breakLine()
    if (this.json) this.stdout.write(JSON.stringify(obj) + '\n')
    else this.stderr.write(text + '\n')
  }

  /** The one line of an error, on stderr (and as an object with --json). */
  error(message) {
    this._breakLine()
    this.stderr.write(`sip-native: ${message}\n`)
    if (this.json) this.stdout.write(JSON.stringify({ type: 'error', message }) + '\n')
  }

  /** A call's new state, with the figures it had last. */
  state(callId, state) {
    this.status({ ...(this.fields.get(callId) || statusFields(callId, state, null, 0)), state })
  }

  /** The live line of a call; printed as the mode says (see above). */
  status(fields) {
    this.fields.set(fields.callId, fields)
    const key = `${fields.state} ${fields.codec}`
    const prev = this.last.get(fields.callId)
    const now = Date.now()
    if (this.tty) {
      this.stderr.write(`\r${statusText(fields)}\x1b[K`)
      this.lineOpen = true
      return
    }
    if (prev && prev.key === key && now - prev.at < 1000) return
    this.last.set(fields.callId, { key, at: now })
    if (this.json) this.stdout.write(JSON.stringify({ type: 'status', ...fields }) + '\n')
    else this.stderr.write(statusText(fields) + '\n')
  }
}

module.exports = { Output, statusFields, statusText }
