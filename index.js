// sip-native: the public JavaScript API (types in index.d.ts). A thin facade over the native
// binding: argument checks (lib/checks.js) that throw TypeError with the field's name, config shapes, Call
// objects and an EventEmitter. Every SIP decision is made in the Rust engine.
'use strict'

const { EventEmitter } = require('node:events')
const { Readable, Writable } = require('node:stream')
const native = require('./lib/native.js')
const {
  describe,
  normalizeConfig,
  normalizeAccount,
  logSettings,
  checkString,
  checkOptions,
  checkHeaders,
  checkOperatorRow,
  callIdOf,
  rethrow,
  checkHoldOptions,
  checkOfferOptions,
} = require('./lib/checks.js')

class Call {
  constructor(service, info) {
    this._service = service
    this.id = info.id
    this.sipCallId = info.sipCallId
    this.direction = info.direction
    this.from = info.from
    this.to = info.to
    // Set on a call placed for a peer's REFER: the transferee's call.
    if (info.referredFrom) this.referredFrom = info.referredFrom
  }

  /** The call's state now, as the engine has it ('disconnected' once it is over). */
  get state() {
    const endpoint = this._service._endpoint
    const info = endpoint && endpoint.call(this.id)
    return info ? info.state : 'disconnected'
  }

  hangup(options) {
    return this._service.hangup(this.id, options)
  }

  hold(options) {
    return this._service.hold(this.id, options)
  }

  unhold() {
    return this._service.unhold(this.id)
  }

  progress(options) {
    return this._service.progress(this.id, options)
  }

  reinvite(options) {
    return this._service.reinvite(this.id, options)
  }

  update(options) {
    return this._service.update(this.id, options)
  }

  playFile(path, options) {
    return this._service.playFile(this.id, path, options)
  }

  playTone(options) {
    return this._service.playTone(this.id, options)
  }

  stopPlayback() {
    return this._service.stopPlayback(this.id)
  }

  record(path, options) {
    return this._service.record(this.id, path, options)
  }

  stopRecording() {
    return this._service.stopRecording(this.id)
  }

  sendDtmf(digits, options) {
    return this._service.sendDtmf(this.id, digits, options)
  }

  stats() {
    return this._service.callStats(this.id)
  }

  answer(options) {
    return this._service.answer(this.id, options)
  }

  reject(code, reason, options) {
    return this._service.reject(this.id, code, reason, options)
  }

  /** A snapshot: state, parties, account, codec, times (see SipService.callInfo). */
  callInfo() {
    return this._service.callInfo(this.id)
  }

  transfer(target, options) {
    return this._service.transfer(this.id, target, options)
  }

  /** PCM streams of the call, created on first access (the call must be answered). */
  get audio() {
    if (!this._audio) this._audio = this._service._audioStreams(this.id)
    return this._audio
  }
}

class SipService extends EventEmitter {
  constructor(config) {
    super()
    this._options = { config: normalizeConfig(config) }
    this._init(logSettings(config))
  }

  /** Builds a service from the `pbx_*` settings rows of the call-center service. */
  static fromSettings(pbx, operators = [], overrides = {}) {
    if (typeof pbx !== 'object' || pbx === null || Array.isArray(pbx)) {
      throw new TypeError(`sip-native: fromSettings(pbx) needs the PBX settings row (an object), got ${describe(pbx)}`)
    }
    if (!Array.isArray(operators)) {
      throw new TypeError(`sip-native: fromSettings(pbx, operators) needs an array of operator rows, got ${describe(operators)}`)
    }
    const service = Object.create(this.prototype)
    EventEmitter.call(service)
    service._options = { pbx, operators, overrides: normalizeConfig(overrides) }
    service._init(logSettings(overrides))
    return service
  }

  _init({ logLevel, logger, sipTrace }) {
    try {
      native.validateConfig(this._options)
    } catch (err) {
      rethrow(err)
    }
    // With a logger, the engine's records go to it (attached at start, per service); else
    // logLevel or sipTrace turn on the process-wide stderr writer.
    this._logger = logger || null
    this._logOptions = logger ? { level: (logLevel || 'info').toLowerCase(), sipTrace } : null
    this._loggerErrors = 0
    this._loggerDroppedBefore = 0
    if (!logger && (logLevel || sipTrace)) {
      try {
        native.initLogging(logLevel || 'info', sipTrace)
      } catch (err) {
        rethrow(err)
      }
    }
    this._endpoint = null
    this._starting = null
    // The engine refuses incoming calls with 480 while nobody listens for them.
    const listening = (event) => {
      if (event === 'incoming_call') process.nextTick(() => this._tellIncomingHandler())
    }
    this.on('newListener', listening)
    this.on('removeListener', listening)
  }

  _tellIncomingHandler() {
    if (this._endpoint) this._endpoint.setIncomingHandler(this.listenerCount('incoming_call') > 0)
  }

  get isRunning() {
    return this._endpoint !== null
  }

  async start() {
    if (this._endpoint) return
    if (!this._starting) {
      const onLog = this._logger ? (record) => this._onLog(record) : undefined
      this._starting = native
        .startEndpoint(this._options, (event) => this._onEvent(event), this._logOptions, onLog)
        .then((endpoint) => {
          this._endpoint = endpoint
          this._tellIncomingHandler()
        })
        .catch(rethrow)
        .finally(() => {
          this._starting = null
        })
    }
    return this._starting
  }

  async stop() {
    // A stop() while start() is in flight waits for the start, then stops what it started.
    if (this._starting) await this._starting.catch(() => {})
    const endpoint = this._endpoint
    if (!endpoint) return
    await endpoint.stop()
    // The run's last figures (counters kept, gauges zero) stay readable until the next start().
    this._finalMetrics = endpoint.metrics()
    if (this._endpoint === endpoint) {
      this._loggerDroppedBefore += endpoint.logRecordsDropped()
      this._endpoint = null
    }
  }

  /** Log records dropped because the logger fell behind (the engine does not wait for JS). */
  get _loggerDropped() {
    return this._loggerDroppedBefore + (this._endpoint ? this._endpoint.logRecordsDropped() : 0)
  }

  /** One engine record to the logger: a logger that throws or rejects is counted, never fatal. */
  _onLog(r) {
    const record = { ...r.fields, level: r.level, target: r.target, message: r.message, msg: r.message }
    if (r.callId) record.callId = r.callId
    const logger = this._logger
    const method = r.level === 'trace' && typeof logger.trace !== 'function' ? 'debug' : r.level
    try {
      const out = logger[method](record)
      if (out && typeof out.then === 'function') out.then(undefined, () => this._loggerErrors++)
    } catch {
      this._loggerErrors++
    }
  }

  _native() {
    if (!this._endpoint) throw new Error('sip-native: the service is not started; call start() first')
    return this._endpoint
  }

  localAddress() {
    return this._native().localAddress()
  }

  localAddresses() {
    return this._native().localAddresses()
  }

  counters() {
    return this._native().counters()
  }

  /**
   * Counters and gauges as a plain object. Never throws: before start() every figure is 0;
   * after stop() the counters keep the run's totals and the gauges are 0; a new start()
   * begins from 0 again (a counter reset).
   */
  metrics() {
    const m = this._endpoint
      ? this._endpoint.metrics()
      : this._finalMetrics
        ? structuredClone(this._finalMetrics)
        : native.idleMetrics()
    m.loggerErrors = this._loggerErrors
    m.logRecordsDropped = this._loggerDropped
    return m
  }

  /** metrics() in the Prometheus text exposition format 0.0.4 (names prefixed `sip_native_`). */
  metricsText() {
    return native.formatMetrics(this.metrics())
  }

  async makeCall(from, to, options = {}) {
    checkString('makeCall(from): from', from)
    checkString('makeCall(from, to): to', to)
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`sip-native: makeCall options must be an object, got ${describe(options)}`)
    }
    const headers = checkHeaders('makeCall options.headers', options.headers)
    const { followRedirects } = options
    if (followRedirects !== undefined && typeof followRedirects !== 'boolean') {
      throw new TypeError(`sip-native: makeCall options.followRedirects must be a boolean, got ${describe(followRedirects)}`)
    }
    const info = await this._native().makeCall(from, to, headers, followRedirects).catch(rethrow)
    return new Call(this, info)
  }

  /**
   * SIP ping: an out-of-dialog OPTIONS to `uri`. Resolves `{ code, reason, rttMs }` with any
   * final response (as fetch() resolves on any HTTP status); rejects when nothing answered.
   */
  async options(uri, options) {
    checkString('options(uri): uri', uri)
    const { timeoutMs } = checkOptions('options', options)
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 0xffffffff)) {
      throw new TypeError(`sip-native: options options.timeoutMs must be a positive integer, got ${describe(timeoutMs)}`)
    }
    return this._native().options(uri, timeoutMs).catch(rethrow)
  }

  /** Answers an incoming call; `options.headers` go on the 200. */
  async answer(callId, options) {
    const id = callIdOf(callId)
    checkString('answer(callId): callId', id)
    const headers = checkHeaders('answer options.headers', checkOptions('answer', options).headers)
    await this._native().answer(id, headers).catch(rethrow)
  }

  /** Rejects an incoming call (default 486); `options.headers` go on the final response. */
  async reject(callId, code = 486, reason, options) {
    const id = callIdOf(callId)
    checkString('reject(callId): callId', id)
    if (!Number.isInteger(code) || code < 300 || code > 699) {
      throw new TypeError(`sip-native: reject(callId, code): code must be an integer 300-699, got ${describe(code)}`)
    }
    if (reason !== undefined && typeof reason !== 'string') {
      throw new TypeError(`sip-native: reject(callId, code, reason): reason must be a string`)
    }
    const headers = checkHeaders('reject options.headers', checkOptions('reject', options).headers)
    await this._native().reject(id, code, reason, headers).catch(rethrow)
  }

  /**
   * Ends a call whatever its state. `options.code`/`options.reason` become an RFC 3326
   * `Reason: SIP;cause=<code>;text="<reason>"` on the BYE, CANCEL or 603; `options.headers`
   * go on it too.
   */
  async hangup(callId, options) {
    const id = callIdOf(callId)
    checkString('hangup(callId): callId', id)
    const { code, reason, headers } = checkOptions('hangup', options)
    if (code !== undefined && (!Number.isInteger(code) || code < 100 || code > 699)) {
      throw new TypeError(`sip-native: hangup options.code must be an integer 100-699, got ${describe(code)}`)
    }
    if (reason !== undefined && typeof reason !== 'string') {
      throw new TypeError(`sip-native: hangup options.reason must be a string, got ${describe(reason)}`)
    }
    const pairs = checkHeaders('hangup options.headers', headers)
    await this._native().hangup(id, code, reason, pairs).catch(rethrow)
  }

  /**
   * Adds an operator's account at run time: a typed account (`{ extension, password, ... }`)
   * or an operator settings row (`{ pbx_extension, pbx_password, ... }`), checked as at
   * start. Resolves once it is in the table; its `registration` events follow.
   */
  async addAccount(row) {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new TypeError(`sip-native: addAccount(row) needs an account or an operator settings row (an object), got ${describe(row)}`)
    }
    const endpoint = this._native()
    if (Object.keys(row).some((k) => k.startsWith('pbx_'))) {
      await endpoint.addOperator(checkOperatorRow('addAccount(row)', row)).catch(rethrow)
    } else {
      await endpoint.addAccount(normalizeAccount(row, 'addAccount(account)')).catch(rethrow)
    }
  }

  /** Removes an account: un-REGISTERs it and ends its calls (bounded as stop()). */
  async removeAccount(extension) {
    checkString('removeAccount(extension): extension', extension)
    await this._native().removeAccount(extension).catch(rethrow)
  }

  /** The accounts: `[{ extension, username, state }]` (state: the registration's). */
  accounts() {
    return this._endpoint ? this._endpoint.accounts() : []
  }

  /**
   * A snapshot of a call: `{ id, sipCallId, state, direction, account, localUri, remoteUri,
   * remoteContact, codec, startTime, answerTime, endTime, referredFrom }` (times in ms since
   * the epoch). Throws for a call the engine does not know (any more).
   */
  callInfo(callId) {
    const id = callIdOf(callId)
    checkString('callInfo(callId): callId', id)
    try {
      return this._native().callInfo(id)
    } catch (err) {
      rethrow(err)
    }
  }

  async hold(callId, options) {
    const id = callId instanceof Call ? callId.id : callId
    checkString('hold(callId): callId', id)
    const { music } = checkHoldOptions(options)
    await this._native().hold(id, music).catch(rethrow)
  }

  async unhold(callId) {
    const id = callId instanceof Call ? callId.id : callId
    checkString('unhold(callId): callId', id)
    await this._native().unhold(id).catch(rethrow)
  }

  /**
   * Transfers a confirmed call by REFER: to `target`, a number or SIP URI (blind), or to the
   * peer of another of our calls, a Call or its id (attended: Replaces in the Refer-To).
   * Resolves when the peer accepted the REFER (2xx); `transfer` events report its progress.
   */
  async transfer(callId, target, options) {
    const id = callId instanceof Call ? callId.id : callId
    checkString('transfer(callId): callId', id)
    const to = target instanceof Call ? target.id : target
    checkString('transfer(callId, target): target', to)
    const { headers } = checkOptions('transfer', options)
    await this._native().transfer(id, to, checkHeaders('transfer options.headers', headers)).catch(rethrow)
  }

  /**
   * A peer's REFER as a `refer` event with accept()/reject(code = 603). Without a listener it
   * is accepted at once; a listener that decides nothing within 4 s gets the default (accept)
   * from the engine. The first decision holds; later ones return false.
   */
  _offerRefer(event) {
    const endpoint = this._endpoint
    let decided = false
    const decide = (accept, code) => {
      if (decided || !endpoint) return false
      decided = true
      try {
        endpoint.answerRefer(event.callId, accept, code)
        return true
      } catch {
        // The REFER was answered meanwhile (the default applied, or the call ended).
        return false
      }
    }
    const offered = {
      ...event,
      accept: () => decide(true),
      reject: (code) => {
        if (code !== undefined && (!Number.isInteger(code) || code < 400 || code > 699)) {
          throw new TypeError(`sip-native: refer reject(code): code must be an integer 400-699, got ${describe(code)}`)
        }
        return decide(false, code)
      },
    }
    if (this.listenerCount('refer') === 0) decide(true)
    this.emit('refer', offered)
  }

  /** 183 with our SDP answer on an incoming call (reliable under 100rel); early media starts. */
  async progress(callId, options) {
    const id = callId instanceof Call ? callId.id : callId
    checkString('progress(callId): callId', id)
    const headers = checkHeaders('progress options.headers', checkOptions('progress', options).headers)
    await this._native().progress(id, headers).catch(rethrow)
  }

  async reinvite(callId, options) {
    const id = callId instanceof Call ? callId.id : callId
    checkString('reinvite(callId): callId', id)
    const { offer = true } = checkOfferOptions('reinvite', options)
    await this._native().reinvite(id, offer).catch(rethrow)
  }

  async update(callId, options) {
    const id = callId instanceof Call ? callId.id : callId
    checkString('update(callId): callId', id)
    const { offer = true } = checkOfferOptions('update', options)
    await this._native().update(id, offer).catch(rethrow)
  }

  async playFile(callId, path, options) {
    checkString('playFile(callId): callId', callId)
    checkString('playFile(callId, path): path', path)
    const { loop = false } = checkOptions('playFile', options)
    if (typeof loop !== 'boolean') throw new TypeError('sip-native: playFile options.loop must be a boolean')
    await this._native().playFile(callId, path, loop).catch(rethrow)
  }

  async playTone(callId, options) {
    checkString('playTone(callId): callId', callId)
    const { frequency = 1000, durationMs = 1000, level = -10 } = checkOptions('playTone', options)
    const freqs = Array.isArray(frequency) ? frequency : [frequency]
    if (freqs.length < 1 || freqs.length > 2 || !freqs.every((f) => typeof f === 'number' && Number.isFinite(f))) {
      throw new TypeError(`sip-native: playTone options.frequency must be a number or two numbers, got ${describe(frequency)}`)
    }
    if (!Number.isInteger(durationMs) || durationMs < 0) {
      throw new TypeError(`sip-native: playTone options.durationMs must be a non-negative integer, got ${describe(durationMs)}`)
    }
    if (typeof level !== 'number' || !Number.isFinite(level)) {
      throw new TypeError(`sip-native: playTone options.level must be a number (dBFS), got ${describe(level)}`)
    }
    await this._native().playTone(callId, freqs, durationMs, level).catch(rethrow)
  }

  async stopPlayback(callId) {
    checkString('stopPlayback(callId): callId', callId)
    try {
      this._native().stopPlayback(callId)
    } catch (err) {
      rethrow(err)
    }
  }

  async record(callId, path, options) {
    checkString('record(callId): callId', callId)
    checkString('record(callId, path): path', path)
    const { channels = 1 } = checkOptions('record', options)
    if (channels !== 1 && channels !== 2) {
      throw new TypeError(`sip-native: record options.channels must be 1 or 2, got ${describe(channels)}`)
    }
    await this._native().record(callId, path, channels).catch(rethrow)
  }

  async stopRecording(callId) {
    checkString('stopRecording(callId): callId', callId)
    return this._native().stopRecording(callId).catch(rethrow)
  }

  async sendDtmf(callId, digits, options) {
    checkString('sendDtmf(callId): callId', callId)
    checkString('sendDtmf(callId, digits): digits', digits)
    const { method = 'rfc4733', durationMs = 100 } = checkOptions('sendDtmf', options)
    if (method !== 'rfc4733' && method !== 'info') {
      throw new TypeError(`sip-native: sendDtmf options.method must be 'rfc4733' or 'info', got ${describe(method)}`)
    }
    if (!Number.isInteger(durationMs)) {
      throw new TypeError(`sip-native: sendDtmf options.durationMs must be an integer, got ${describe(durationMs)}`)
    }
    await this._native().sendDtmf(callId, digits, method, durationMs).catch(rethrow)
  }

  async bridge(callIdA, callIdB) {
    checkString('bridge(callIdA): callIdA', callIdA)
    checkString('bridge(callIdA, callIdB): callIdB', callIdB)
    try {
      this._native().bridge(callIdA, callIdB)
    } catch (err) {
      rethrow(err)
    }
  }

  async unbridge(callId) {
    checkString('unbridge(callId): callId', callId)
    try {
      this._native().unbridge(callId)
    } catch (err) {
      rethrow(err)
    }
  }

  callStats(callId) {
    checkString('callStats(callId): callId', callId)
    try {
      return this._native().callStats(callId)
    } catch (err) {
      rethrow(err)
    }
  }

  /** Media clock tick intervals `{ p50, p99 }` in ms (20 = perfect pacing). */
  mediaClock() {
    return this._native().mediaClock()
  }

  _audioStreams(callId) {
    const endpoint = this._native()
    let sampleRate
    try {
      sampleRate = endpoint.pcmOpen(callId)
    } catch (err) {
      rethrow(err)
    }
    const frameBytes = Math.round(sampleRate * 0.02) * 2
    let reading = false
    const readable = new Readable({
      // Only pull from the engine when the consumer wants more: a reader that stops leaves
      // the engine's bounded queue to drop old frames (counted in stats().framesDropped).
      read() {
        if (reading) return
        reading = true
        endpoint.pcmRead(callId).then(
          (buf) => {
            reading = false
            if (buf === null) {
              this.push(null)
              return
            }
            // One chunk per 20 ms frame, as documented.
            for (let off = 0; off < buf.length; off += frameBytes) this.push(buf.subarray(off, off + frameBytes))
          },
          (err) => {
            reading = false
            this.destroy(err)
          },
        )
      },
    })
    const writable = new Writable({
      write(chunk, _encoding, callback) {
        endpoint.pcmWrite(callId, chunk).then(() => callback(), callback)
      },
    })
    return { sampleRate, readable, writable }
  }

  /** The calls not yet disconnected, as the engine lists them. */
  calls() {
    return this._endpoint ? this._endpoint.calls().map((info) => new Call(this, info)) : []
  }

  /** The call with this id, or undefined when the engine does not know it (any more). */
  getCall(callId) {
    const info = this._endpoint && this._endpoint.call(callId)
    return info ? new Call(this, info) : undefined
  }

  _onEvent(event) {
    switch (event.type) {
      case 'error':
        // An unhandled 'error' event would throw inside the native callback; report instead.
        if (this.listenerCount('error') === 0) {
          process.emitWarning(`sip-native: ${event.message}`)
          return
        }
        break
      case 'transfer': {
        // `final` is a Rust keyword: the engine calls it `last`.
        const { last, ...rest } = event
        this.emit('transfer', { ...rest, final: last })
        return
      }
      case 'refer':
        this._offerRefer(event)
        return
    }
    this.emit(event.type, event)
  }
}

class PJSIPNativeService extends SipService {}

module.exports = { SipService, PJSIPNativeService, Call }
module.exports.default = SipService
