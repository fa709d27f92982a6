// `call` and `listen`: one answered call runs the same plan either way: record, play a file or
// a tone, send DTMF, hang up after --duration (or when the file has played, or when the peer
// hangs up), while the live status line follows it. A call "did what was asked" when every
// one of those succeeded; the summary line says what happened and what failed.
'use strict'

const path = require('node:path')
const { statusFields } = require('./status')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Every call_state event from start() on, and waits by call id: an event can reach JS before
 * the makeCall() promise does (a peer that answers at once), so a listener attached after it
 * would miss it. `onEvent` sees each one (the live line of a state change).
 */
class CallStates {
  constructor(service, onEvent) {
    this.events = []
    this.waiters = new Set()
    service.on('call_state', (e) => {
      this.events.push(e)
      onEvent(e)
      for (const w of [...this.waiters]) w(e)
    })
  }

  /** Resolves with the first event of `callId` matching `pred`, past or future. */
  wait(callId, pred) {
    const seen = this.events.find((e) => e.callId === callId && pred(e))
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve) => {
      const w = (e) => {
        if (e.callId === callId && pred(e)) {
          this.waiters.delete(w)
          resolve(e)
        }
      }
      this.waiters.add(w)
    })
  }

  disconnected(callId) {
    return this.wait(callId, (e) => e.state === 'disconnected')
  }
}

/** The path of recording number `n` of `count`: out.wav, or out-1.wav, out-2.wav ... */
function recordingPath(file, n, count) {
  if (count <= 1) return file
  const ext = path.extname(file)
  return `${file.slice(0, file.length - ext.length)}-${n}${ext}`
}

/**
 * Runs the plan on an answered call. `ended` resolves when the call is disconnected (its
 * event). Returns `{ ok, problems, summary, fields }`.
 */
async function runPlan(ctx, call, { ended, recordTo, answeredAt }) {
  const { service, opts, out, interrupted } = ctx
  const id = call.id
  const problems = []
  const done = [] // what was done, for the summary
  let last = statusFields(id, 'confirmed', null, answeredAt)
  const poll = () => {
    try {
      last = statusFields(id, call.state, service.callStats(id), answeredAt)
      out.status(last)
    } catch {
      // the call is gone: keep the last figures
    }
  }
  const timer = setInterval(poll, 250)
  poll()
  let over = false
  const endedEvent = ended.then((e) => {
    over = true
    return e
  })
  try {
    if (recordTo) {
      await service.record(id, recordTo, { channels: opts.stereo ? 2 : 1 }).catch((e) => problems.push(`--record ${recordTo}: ${e.message}`))
    }
    let playback = null
    if (opts.play) {
      playback = service.playFile(id, opts.play).then(
        () => done.push(`played ${opts.play}`),
        (e) => problems.push(`--play ${opts.play}: ${e.message}`),
      )
    } else if (opts.tone !== undefined) {
      // plays until the hangup stops it; only a failure to start it is news
      const level = opts.toneLevel ?? -10
      playback = service.playTone(id, { frequency: opts.tone, durationMs: 0, level }).then(
        () => done.push(`played ${opts.tone} Hz`),
        (e) => problems.push(`--tone ${opts.tone}: ${e.message}`),
      )
    }
    let dtmf = null
    if (opts.dtmf) {
      dtmf = sleep(opts.dtmfDelayMs ?? 500)
        .then(() => (over ? Promise.reject(new Error('the call ended first')) : service.sendDtmf(id, opts.dtmf)))
        .then(
          () => done.push(`sent DTMF ${opts.dtmf}`),
          (e) => problems.push(`--dtmf ${opts.dtmf}: ${e.message}`),
        )
    }
    // until: --duration, else the end of --play, else the peer's hangup (or Ctrl-C)
    const waits = [endedEvent.then(() => 'ended'), interrupted.then(() => 'interrupted')]
    if (opts.duration !== undefined) waits.push(sleep(opts.duration * 1000).then(() => 'duration'))
    else if (opts.play) waits.push(playback.then(() => 'played'))
    const why = await Promise.race(waits)
    if (dtmf && why !== 'ended') await Promise.race([dtmf, endedEvent])
    poll()
    let hungUpBy = 'peer'
    if (!over) {
      hungUpBy = 'us'
      await service.hangup(id).catch((e) => problems.push(`hangup: ${e.message}`))
    }
    if (why === 'ended' && opts.duration !== undefined) {
      problems.push(`the peer hung up after ${last.elapsedS.toFixed(1)} s, before --duration ${opts.duration}`)
    }
    if (why === 'interrupted') problems.push('interrupted')
    if (playback) await Promise.race([playback, sleep(2000)])
    if (recordTo) {
      try {
        const info = await service.stopRecording(id)
        if (info.durationMs > 0) done.push(`recorded ${info.path} (${(info.durationMs / 1000).toFixed(1)} s)`)
        else problems.push(`--record ${recordTo}: nothing was recorded`)
      } catch (e) {
        problems.push(`--record ${recordTo}: ${e.message}`)
      }
    }
    done.push(`hung up by ${hungUpBy}`)
    const s = last
    const summary =
      `[${id}] ${problems.length ? 'FAILED' : 'ok'}: answered, ${s.elapsedS.toFixed(1)} s, ${s.codec}, ` +
      `tx ${s.packetsSent} rx ${s.packetsReceived} lost ${s.packetsLost} jitter ${s.jitterMs.toFixed(1)} ms; ` +
      done.join('; ') +
      (problems.length ? `; problems: ${problems.join('; ')}` : '')
    return { ok: problems.length === 0, problems, done, summary, fields: s }
  } finally {
    clearInterval(timer)
  }
}

/** `sip-native call <target>`. Returns the exit code. */
async function callCommand(ctx, target) {
  const { service, opts, out, from } = ctx
  const caller = from || 'sip-native'
  const call = await service.makeCall(caller, target)
  const ended = ctx.calls.disconnected(call.id)
  out.note(`[${call.id}] calling ${target}`, { type: 'call', callId: call.id, to: target, state: 'calling' })
  const answered = ctx.calls.wait(call.id, (e) => e.state === 'confirmed' || e.state === 'disconnected')
  const first = await Promise.race([answered, ctx.interrupted.then(() => null)])
  if (!first || first.state !== 'confirmed') {
    if (!first) await service.hangup(call.id).catch(() => {})
    const why = first ? `${first.code || ''} ${first.reason || 'not answered'}`.trim() : 'interrupted'
    out.result(`[${call.id}] FAILED: ${target} not answered: ${why}`, {
      type: 'result', ok: false, callId: call.id, answered: false, code: first ? first.code : 0, reason: why,
    })
    return 1
  }
  const r = await runPlan(ctx, call, { ended, recordTo: opts.record, answeredAt: Date.now() })
  out.result(r.summary, { type: 'result', ok: r.ok, callId: call.id, answered: true, done: r.done, problems: r.problems, ...r.fields })
  return r.ok ? 0 : 1
}

/** `sip-native listen`: answers up to --count calls. Returns the exit code. */
async function listenCommand(ctx) {
  const { service, opts, out } = ctx
  const count = opts.count ?? 1
  let started = 0
  let okCalls = 0
  const running = []
  let allDone
  const finished = new Promise((r) => (allDone = r))
  service.on('incoming_call', (e) => {
    if (started >= count) {
      service.reject(e.callId, 486).catch(() => {})
      return
    }
    const n = ++started
    const job = (async () => {
      out.note(`[${e.callId}] incoming from ${e.from} to ${e.to}`, { type: 'incoming_call', callId: e.callId, from: e.from, to: e.to })
      const ended = ctx.calls.disconnected(e.callId)
      const call = service.getCall(e.callId)
      try {
        await service.answer(e.callId)
      } catch (err) {
        out.result(`[${e.callId}] FAILED: cannot answer: ${err.message}`, { type: 'result', ok: false, callId: e.callId, reason: err.message })
        return
      }
      const recordTo = opts.record ? recordingPath(opts.record, n, count) : undefined
      const r = await runPlan(ctx, call, { ended, recordTo, answeredAt: Date.now() })
      out.result(r.summary, { type: 'result', ok: r.ok, callId: e.callId, from: e.from, done: r.done, problems: r.problems, ...r.fields })
      if (r.ok) okCalls++
    })().finally(() => {
      if (running.length === count && started === count) Promise.all(running).then(allDone)
    })
    running.push(job)
  })
  // the engine answers 480 while nobody listens: say so only once the listener is on
  await new Promise((r) => setImmediate(r))
  const local = service.localAddress()
  out.note(`listening on ${local.transport} ${local.address}:${local.port} for ${count} call(s)`, {
    type: 'listening', ...local, count,
  })
  const waits = [finished.then(() => 'done'), ctx.interrupted.then(() => 'interrupted')]
  if (opts.timeout !== undefined) waits.push(sleep(opts.timeout * 1000).then(() => 'timeout'))
  const why = await Promise.race(waits)
  if (why !== 'done') {
    // let the calls in progress end with their summary
    await Promise.race([Promise.all(running), sleep(3000)])
    const what = why === 'timeout' ? `no more calls within ${opts.timeout} s` : 'interrupted'
    out.error(`listen: ${okCalls} of ${count} call(s) handled: ${what}`)
    return 1
  }
  return okCalls === count ? 0 : 1
}

module.exports = { CallStates, callCommand, listenCommand, recordingPath }
