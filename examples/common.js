// Shared by examples/ivr.js, record-call.js and stream-to-speech.js: the SIP settings of a
// SipService from command-line flags, else environment variables, else defaults, and a clean
// stop on Ctrl-C / SIGTERM. Not part of the package.
//
//   flag              environment        default
//   --server          SIP_SERVER         (none: peer-to-peer, no registration; callers dial us)
//   --server-port     SIP_SERVER_PORT    (DNS SRV, else 5060)
//   --transport       SIP_TRANSPORT      udp   (udp | tcp | tls | ws | wss)
//   --extension       SIP_EXTENSION      the example's own (ivr, recorder, speech)
//   --username        SIP_USERNAME       = extension
//   --password        SIP_PASSWORD       (none)
//   --bind            SIP_BIND           0.0.0.0
//   --local-port      SIP_LOCAL_PORT     5060 (0: any free port)
//   --log-level       SIP_LOG_LEVEL      warn
//
// With --server the account registers there and calls reach it through the PBX; without, dial
// sip:<extension>@<bind address>:<local port> directly.
'use strict'

const path = require('node:path')
const { parseArgs } = require('node:util')
// In your own project: require('sip-native')
const { SipService } = require(path.join(__dirname, '..'))

const SIP_OPTIONS = {
  server: { type: 'string', env: 'SIP_SERVER' },
  'server-port': { type: 'string', env: 'SIP_SERVER_PORT' },
  transport: { type: 'string', env: 'SIP_TRANSPORT' },
  extension: { type: 'string', env: 'SIP_EXTENSION' },
  username: { type: 'string', env: 'SIP_USERNAME' },
  password: { type: 'string', env: 'SIP_PASSWORD' },
  bind: { type: 'string', env: 'SIP_BIND' },
  'local-port': { type: 'string', env: 'SIP_LOCAL_PORT' },
  'log-level': { type: 'string', env: 'SIP_LOG_LEVEL' },
  help: { type: 'boolean', short: 'h' },
}

/**
 * Parses argv with the SIP flags and the example's own `options` (node:util parseArgs
 * descriptors, each with an optional `env` name and `default`). Prints `usage` and exits on
 * --help; exits 2 with one line on a bad flag.
 */
function parseSettings(usage, options = {}, defaults = {}) {
  const all = { ...SIP_OPTIONS, ...options }
  const descriptors = Object.fromEntries(Object.entries(all).map(([k, { env, ...d }]) => [k, d]))
  let values
  try {
    ;({ values } = parseArgs({ options: descriptors, strict: true, allowPositionals: false }))
  } catch (err) {
    console.error(`${err.message.replace(/\s*\n\s*/g, ' ')} (--help lists the flags)`)
    process.exit(2)
  }
  if (values.help) {
    console.log(usage)
    process.exit(0)
  }
  for (const [k, { env }] of Object.entries(all)) {
    if (values[k] === undefined && env && process.env[env] !== undefined) {
      values[k] = all[k].type === 'boolean' ? /^(1|true|yes)$/i.test(process.env[env]) : process.env[env]
    }
    if (values[k] === undefined && defaults[k] !== undefined) values[k] = defaults[k]
  }
  return values
}

/** A port number from a flag's string, or exit 2 naming the flag. */
function portFlag(values, name) {
  if (values[name] === undefined) return undefined
  const n = Number(values[name])
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`--${name}: expected a port number 0-65535, got '${values[name]}'`)
    process.exit(2)
  }
  return n
}

/** The SipServiceConfig the flags describe. */
function serviceConfig(values) {
  const config = {
    bindAddress: values.bind || '0.0.0.0',
    localPort: portFlag(values, 'local-port') ?? 5060,
    logLevel: values['log-level'] || 'warn',
    accounts: [
      {
        extension: values.extension,
        ...(values.username ? { username: values.username } : {}),
        ...(values.password ? { password: values.password } : {}),
      },
    ],
  }
  if (values.server) config.server = values.server
  if (values['server-port'] !== undefined) config.serverPort = portFlag(values, 'server-port')
  if (values.transport) config.transport = values.transport
  return config
}

/**
 * Creates and starts the service; logs where it listens and its registrations; on SIGINT/SIGTERM
 * runs `beforeStop`, stops the service (calls are hung up) and exits 0.
 */
async function startService(values, name, beforeStop = async () => {}) {
  const sip = new SipService(serviceConfig(values))
  sip.on('error', (e) => console.error(`${name}: error: ${e.message}`))
  sip.on('registration', (e) => console.log(`registration ${e.account} ${e.state} ${e.code} ${e.reason}`))
  await sip.start()
  const a = sip.localAddress()
  const host = a.address === '0.0.0.0' ? '<this host>' : a.address.includes(':') ? `[${a.address}]` : a.address
  console.log(`listening sip:${values.extension}@${host}:${a.port} (${a.transport})`)
  let stopping = false
  const stop = async (signal) => {
    if (stopping) return
    stopping = true
    console.log(`${signal}: stopping`)
    await beforeStop().catch((err) => console.error(`${name}: ${err.message}`))
    await sip.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  return sip
}

/** A short form of a call id for log lines. */
const short = (id) => (id.length > 12 ? `${id.slice(0, 12)}…` : id)

module.exports = { parseSettings, portFlag, startService, short, SipService }
