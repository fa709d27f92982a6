// Argument checks of the public API: a wrong JS type throws a TypeError that names the field
// (`config.accounts[0].password must be a string, got a number`); value ranges are the
// engine's to check. Native errors of the InvalidArg kind become TypeErrors too.
'use strict'

const CONFIG_TYPES = {
  server: 'string',
  serverPort: 'port',
  transport: 'string',
  bindAddress: 'string',
  localPort: 'port0',
  publicAddress: 'string',
  rtpPortMin: 'port',
  rtpPortMax: 'port',
  registerExpires: 'uint',
  incomingCallTimeoutMs: 'uint',
  inviteTimeoutMs: 'uint',
  timerT1Ms: 'uint',
  rtpTimeoutMs: 'uint',
  stopGraceMs: 'uint',
  userAgent: 'string',
  useWebsocket: 'boolean',
  websocketUrl: 'string',
  outboundProxy: 'string',
  dnsServers: 'strings',
  stunServer: 'string',
  contactRewrite: 'boolean',
  keepAliveIntervalS: 'uint',
  tls: 'object',
  accounts: 'array',
  sessionTimers: 'string',
  sessionExpiresSec: 'uint',
  minSessionExpiresSec: 'uint',
  sessionRefresh: 'string',
  maxCalls: 'uint',
  followRedirects: 'boolean',
  maxRedirects: 'uint',
  acceptFrom: 'strings',
  rateLimit: 'object',
  maxMessageSize: 'uint',
  prack: 'string',
  srtp: 'string',
  logLevel: 'string',
  logger: 'logger',
  sipTrace: 'boolean',
}

// Options of the facade's log output, not of the engine's config.
const LOG_KEYS = new Set(['logLevel', 'logger', 'sipTrace'])
const SRTP_MODES = ['off', 'optional', 'mandatory']
const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace']
const LOGGER_METHODS = ['debug', 'info', 'warn', 'error']

function describe(v) {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? JSON.stringify(v) : typeof v
}

function checkType(path, value, kind, prefix = 'config.') {
  const ok = {
    string: () => typeof value === 'string',
    boolean: () => typeof value === 'boolean',
    array: () => Array.isArray(value),
    strings: () => Array.isArray(value) && value.every((v) => typeof v === 'string'),
    object: () => typeof value === 'object' && value !== null && !Array.isArray(value),
    uint: () => Number.isInteger(value) && value >= 0,
    port: () => Number.isInteger(value) && value >= 1 && value <= 65535,
    port0: () => Number.isInteger(value) && value >= 0 && value <= 65535,
    logger: () => (typeof value === 'object' || typeof value === 'function') && value !== null,
  }[kind]()
  if (!ok) {
    const want = {
      string: 'a string',
      boolean: 'a boolean',
      array: 'an array',
      strings: 'an array of strings',
      object: 'an object',
      uint: 'a non-negative integer',
      port: 'a port number 1-65535',
      port0: 'a port number 0-65535',
      logger: 'an object with debug, info, warn and error methods',
    }[kind]
    throw new TypeError(`sip-native: ${prefix}${path} must be ${want}, got ${describe(value)}`)
  }
}

/** Validates the typed config's JS types; the engine then checks values and ranges. */
function normalizeConfig(config) {
  if (config === undefined || config === null) return {}
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(`sip-native: config must be an object, got ${describe(config)}`)
  }
  const out = {}
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue
    const kind = CONFIG_TYPES[key]
    if (!kind) throw new TypeError(`sip-native: config.${key} is not a known option`)
    checkType(key, value, kind)
    if (key === 'transport') out[key] = value.toLowerCase()
    else if (key === 'accounts') out[key] = value.map((a, i) => normalizeAccount(a, `config.accounts[${i}]`))
    else if (key === 'tls') out[key] = normalizeTls(value)
    else if (!LOG_KEYS.has(key)) out[key] = value
  }
  if (config.logger !== undefined) {
    for (const m of LOGGER_METHODS) {
      if (typeof config.logger[m] !== 'function') {
        throw new TypeError(`sip-native: config.logger.${m} must be a function, got ${describe(config.logger[m])}`)
      }
    }
  }
  if (config.srtp !== undefined && !SRTP_MODES.includes(config.srtp)) {
    throw new TypeError(`sip-native: config.srtp: expected ${SRTP_MODES.join(', ')}, got ${describe(config.srtp)}`)
  }
  if (config.logLevel !== undefined && !LOG_LEVELS.includes(config.logLevel.toLowerCase())) {
    throw new TypeError(`sip-native: config.logLevel: expected ${LOG_LEVELS.join(', ')}, got ${describe(config.logLevel)}`)
  }
  return out
}

/** The log settings of a config (or of fromSettings' overrides). */
function logSettings(config) {
  const c = config || {}
  return { logLevel: c.logLevel, logger: c.logger, sipTrace: c.sipTrace === true }
}

const ACCOUNT_TYPES = {
  extension: 'string',
  username: 'string',
  password: 'string',
  displayName: 'string',
  domain: 'string',
  register: 'boolean',
  maxCalls: 'uint',
}

/** Checks a typed account (`where` names it in errors: `config.accounts[0]`, `addAccount(account)`). */
function normalizeAccount(account, where) {
  if (typeof account !== 'object' || account === null || Array.isArray(account)) {
    throw new TypeError(`sip-native: ${where} must be an object, got ${describe(account)}`)
  }
  const out = {}
  for (const [key, value] of Object.entries(account)) {
    if (value === undefined) continue
    if (!ACCOUNT_TYPES[key]) throw new TypeError(`sip-native: ${where}.${key} is not a known option`)
    checkType(`${where}.${key}`, value, ACCOUNT_TYPES[key], '')
    out[key] = value
  }
  return out
}

const TLS_TYPES = { caFile: 'string', certFile: 'string', keyFile: 'string', serverName: 'string', verify: 'boolean' }

function normalizeTls(tls) {
  const out = {}
  for (const [key, value] of Object.entries(tls)) {
    if (value === undefined) continue
    if (!TLS_TYPES[key]) throw new TypeError(`sip-native: config.tls.${key} is not a known option`)
    checkType(`tls.${key}`, value, TLS_TYPES[key])
    out[key] = value
  }
  return out
}

function checkString(name, value) {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`sip-native: ${name} must be a non-empty string, got ${describe(value)}`)
  }
}

/** Turns a native error (status InvalidArg) into a TypeError; keeps the message. */
// napi's statuses for a JS value of the wrong type (the message names the field), and ours.
const TYPE_ERROR_CODES = new Set(['InvalidArg', 'StringExpected', 'NumberExpected', 'BooleanExpected', 'ObjectExpected', 'ArrayExpected'])

function rethrow(err) {
  if (err && TYPE_ERROR_CODES.has(err.code)) {
    const e = new TypeError(`sip-native: ${err.message}`)
    e.code = 'ERR_INVALID_ARG'
    throw e
  }
  throw err
}

function checkOptions(name, options) {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`sip-native: ${name} options must be an object, got ${describe(options)}`)
  }
  return options
}

/**
 * Extra SIP headers `{ name: value }` as `[name, value]` pairs (`where` names the option in
 * errors); the engine checks that names are tokens and values one line.
 */
function checkHeaders(where, headers) {
  if (headers === undefined) return undefined
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new TypeError(`sip-native: ${where} must be an object of name: value, got ${describe(headers)}`)
  }
  return Object.entries(headers).map(([k, v]) => {
    if (typeof v !== 'string') throw new TypeError(`sip-native: ${where}.${k} must be a string, got ${describe(v)}`)
    return [k, v]
  })
}

/** The id of a call given as its id or its Call object (anything else fails checkString). */
function callIdOf(call) {
  return call !== null && typeof call === 'object' && typeof call.id === 'string' ? call.id : call
}

/** An operator settings row: a pbx_* value is a string or a number, as databases return it. */
function checkOperatorRow(where, row) {
  for (const [key, value] of Object.entries(row)) {
    if (key.startsWith('pbx_') && value !== undefined && value !== null && typeof value !== 'string' && typeof value !== 'number') {
      throw new TypeError(`sip-native: ${where}.${key} must be a string or a number, got ${describe(value)}`)
    }
  }
  return row
}

// Options of hold(call, { music }) and of reinvite/update(call, { offer }): unknown keys are
// refused so that a typo does not silently change what is sent.
function checkHoldOptions(options) {
  const opts = checkOptions('hold', options)
  for (const key of Object.keys(opts)) {
    if (key !== 'music') throw new TypeError(`sip-native: hold options.${key} is not an option (music)`)
  }
  if (opts.music !== undefined && (typeof opts.music !== 'string' || opts.music.length === 0)) {
    throw new TypeError(`sip-native: hold options.music must be a WAV file path, got ${describe(opts.music)}`)
  }
  return opts
}

function checkOfferOptions(name, options) {
  const opts = checkOptions(name, options)
  for (const key of Object.keys(opts)) {
    if (key !== 'offer') throw new TypeError(`sip-native: ${name} options.${key} is not an option (offer)`)
  }
  if (opts.offer !== undefined && typeof opts.offer !== 'boolean') {
    throw new TypeError(`sip-native: ${name} options.offer must be a boolean, got ${describe(opts.offer)}`)
  }
  return opts
}

module.exports = {
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
}
