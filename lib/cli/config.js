// The CLI's service configuration: a --config JSON file (the library's camelCase
// SipServiceConfig, or the service's pbx_* settings rows), then the flags on top, then
// SIP_NATIVE_PASSWORD for a password not given otherwise. Built on the public API only.
'use strict'

const fs = require('node:fs')
const { SipService } = require('../../index.js')
const { UsageError } = require('./args')

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v)
const hasPbxKeys = (o) => Object.keys(o).some((k) => k.startsWith('pbx_'))

/** Reads --config: `{ kind: 'typed', config }` or `{ kind: 'settings', pbx, operators }`. */
function readConfigFile(file) {
  let text
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (e) {
    throw new UsageError(`--config ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
  }
  let json
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new UsageError(`--config ${file}: not JSON (${e.message})`)
  }
  if (!isObject(json)) throw new UsageError(`--config ${file}: must hold a JSON object`)
  if (isObject(json.pbx)) {
    const operators = json.operators === undefined ? [] : json.operators
    if (!Array.isArray(operators) || !operators.every(isObject)) {
      throw new UsageError(`--config ${file}: "operators" must be an array of pbx_* rows`)
    }
    return { kind: 'settings', pbx: json.pbx, operators }
  }
  if (hasPbxKeys(json)) {
    // one flat row: the PBX's fields and, when it has them, one operator's
    const operator = json.pbx_extension !== undefined || json.pbx_username !== undefined
    return { kind: 'settings', pbx: json, operators: operator ? [json] : [] }
  }
  return { kind: 'typed', config: json }
}

const ACCOUNT_ROW = { extension: 'pbx_extension', username: 'pbx_username', password: 'pbx_password', displayName: 'pbx_display_name' }

/**
 * The SipService for `parsed` (from parseArgs). `withAccounts: false` (options) leaves the
 * accounts out, so nothing registers. Returns `{ service, accounts, server }` where
 * `accounts` are the extensions that register and `server` is `host[:port]` for messages.
 */
function buildService(parsed, { withAccounts = true, env = process.env } = {}) {
  const file = parsed.opts.config ? readConfigFile(parsed.opts.config) : { kind: 'typed', config: {} }
  const overrides = { ...parsed.config }
  if (Object.keys(parsed.tls).length) overrides.tls = parsed.tls
  if (parsed.opts.logLevel) overrides.logLevel = parsed.opts.logLevel
  const account = { ...parsed.account }
  if (account.extension === undefined && account.username !== undefined) account.extension = account.username
  const noRegister = parsed.opts.noRegister === true
  const password = env.SIP_NATIVE_PASSWORD

  let service
  let config
  try {
    if (file.kind === 'typed') {
      config = { localPort: 0, ...file.config, ...overrides }
      if (file.config.tls && overrides.tls) config.tls = { ...file.config.tls, ...overrides.tls }
      let accounts = Array.isArray(config.accounts) ? config.accounts.map((a) => ({ ...a })) : []
      if (Object.keys(account).length) accounts[0] = { ...(accounts[0] || {}), ...account }
      if (accounts[0] && accounts[0].password === undefined && password !== undefined) accounts[0].password = password
      if (!withAccounts) accounts = []
      else if (noRegister) accounts = accounts.map((a) => ({ ...a, register: false }))
      config.accounts = accounts
      service = new SipService(config)
    } else {
      let operators = file.operators.map((r) => ({ ...r }))
      if (Object.keys(account).length) {
        const row = { ...(operators[0] || {}) }
        for (const [k, v] of Object.entries(account)) {
          if (!ACCOUNT_ROW[k]) throw new UsageError(`--${k} cannot be combined with pbx_* rows in --config`)
          row[ACCOUNT_ROW[k]] = v
        }
        operators[0] = row
      }
      if (operators[0] && operators[0].pbx_password == null && password !== undefined) operators[0].pbx_password = password
      if (!withAccounts) operators = []
      if (noRegister && operators.length) throw new UsageError('--no-register cannot be combined with pbx_* rows in --config')
      service = SipService.fromSettings(file.pbx, operators, { localPort: 0, ...overrides })
      config = {
        server: overrides.server || file.pbx.pbx_server,
        serverPort: overrides.serverPort || file.pbx.pbx_port,
        accounts: operators.map((r) => ({ extension: String(r.pbx_extension ?? r.pbx_username) })),
      }
    }
  } catch (e) {
    if (e instanceof UsageError) throw e
    // the library's TypeError/Error names the field: a configuration mistake is a usage error
    throw new UsageError(String(e.message).replace(/^sip-native: /, ''))
  }
  const server = config.server ? `${config.server}${config.serverPort ? ':' + config.serverPort : ''}` : null
  const accounts = config.server ? (config.accounts || []).filter((a) => a.register !== false).map((a) => String(a.extension)) : []
  const from = (config.accounts || [])[0]
  return { service, accounts, server, from: from ? String(from.extension) : null }
}

module.exports = { buildService, readConfigFile }
