// Command-line parsing of the sip-native CLI: one table of flags, so that --help, the parser
// and the config mapping cannot disagree. A wrong flag is a UsageError (exit code 2, one line).
'use strict'

class UsageError extends Error {}

const COMMANDS = ['register', 'call', 'listen', 'options']

// name → { type, key (camelCase config field, or CLI option), help, commands (default all) }
// type: 'string' | 'int' | 'port' | 'bool' | 'list' (repeatable)
const FLAGS = {
  // the PBX and the transport (the library's SipServiceConfig)
  server: { type: 'string', key: 'server', group: 'config', arg: 'host', help: 'PBX / registrar host' },
  port: { type: 'port', key: 'serverPort', group: 'config', arg: 'n', help: 'PBX SIP port (default: DNS SRV, else 5060)' },
  transport: { type: 'string', key: 'transport', group: 'config', arg: 'udp|tcp|tls|ws|wss', choices: ['udp', 'tcp', 'tls', 'ws', 'wss'], help: 'SIP transport (default udp)' },
  'websocket-url': { type: 'string', key: 'websocketUrl', group: 'config', arg: 'url', help: 'ws://host:port/path of the ws/wss transports' },
  'outbound-proxy': { type: 'string', key: 'outboundProxy', group: 'config', arg: 'uri', help: 'outbound proxy SIP URI' },
  'bind-address': { type: 'string', key: 'bindAddress', group: 'config', arg: 'ip', help: 'local address to bind (default 0.0.0.0)' },
  'local-port': { type: 'port0', key: 'localPort', group: 'config', arg: 'n', help: 'local SIP port (default 0: any free port)' },
  'public-address': { type: 'string', key: 'publicAddress', group: 'config', arg: 'ip', help: 'address to advertise (fixed NAT mapping)' },
  stun: { type: 'string', key: 'stunServer', group: 'config', arg: 'host[:port]', help: 'STUN server' },
  'rtp-port-min': { type: 'port', key: 'rtpPortMin', group: 'config', arg: 'n', help: 'lowest RTP port (default 10000)' },
  'rtp-port-max': { type: 'port', key: 'rtpPortMax', group: 'config', arg: 'n', help: 'highest RTP port (default 20000)' },
  dns: { type: 'list', key: 'dnsServers', group: 'config', arg: 'ip[:port]', help: 'DNS server for SIP lookups (repeatable)' },
  expires: { type: 'int', key: 'registerExpires', group: 'config', arg: 's', help: 'registration lifetime (default 300)' },
  't1-ms': { type: 'int', key: 'timerT1Ms', group: 'config', arg: 'ms', help: 'SIP timer T1 (default 500)' },
  'user-agent': { type: 'string', key: 'userAgent', group: 'config', arg: 'text', help: 'User-Agent header' },
  'tls-ca': { type: 'string', key: 'caFile', group: 'tls', arg: 'file', help: 'PEM CA file to trust (private PBX CA)' },
  'tls-cert': { type: 'string', key: 'certFile', group: 'tls', arg: 'file', help: 'PEM client certificate' },
  'tls-key': { type: 'string', key: 'keyFile', group: 'tls', arg: 'file', help: 'PEM key of --tls-cert' },
  'tls-server-name': { type: 'string', key: 'serverName', group: 'tls', arg: 'name', help: 'name to verify the server certificate against' },
  'tls-no-verify': { type: 'bool', key: 'verify', group: 'tls', negate: true, help: 'accept any server certificate' },
  // the account
  extension: { type: 'string', key: 'extension', group: 'account', arg: 'ext', help: 'extension (user part of the address of record)' },
  username: { type: 'string', key: 'username', group: 'account', arg: 'name', help: 'digest user name (default: the extension)' },
  password: { type: 'string', key: 'password', group: 'account', arg: 'secret', help: 'digest password (or env SIP_NATIVE_PASSWORD)' },
  'display-name': { type: 'string', key: 'displayName', group: 'account', arg: 'text', help: 'display name of From' },
  domain: { type: 'string', key: 'domain', group: 'account', arg: 'host', help: 'domain of the address of record (default: --server)' },
  'no-register': { type: 'bool', key: 'noRegister', help: 'do not register the account (call, listen)', commands: ['call', 'listen'] },
  config: { type: 'string', key: 'config', arg: 'file.json', help: 'SipServiceConfig (camelCase) or pbx_* settings rows: { "pbx": {...}, "operators": [...] } or one flat row' },
  // what to do
  play: { type: 'string', key: 'play', arg: 'file.wav', help: 'play a WAV file once answered', commands: ['call', 'listen'] },
  tone: { type: 'number', key: 'tone', arg: 'Hz', help: 'play a sine tone once answered', commands: ['call', 'listen'] },
  'tone-level': { type: 'number', key: 'toneLevel', arg: 'dBFS', help: 'level of --tone (default -10)', commands: ['call', 'listen'] },
  record: { type: 'string', key: 'record', arg: 'out.wav', help: 'record the call, both sides mixed (listen --count N: out-1.wav ...)', commands: ['call', 'listen'] },
  stereo: { type: 'bool', key: 'stereo', help: 'record two channels: 1 = the peer, 2 = us', commands: ['call', 'listen'] },
  dtmf: { type: 'string', key: 'dtmf', arg: 'digits', help: 'send DTMF (RFC 4733) after answer', commands: ['call', 'listen'] },
  'dtmf-delay': { type: 'int', key: 'dtmfDelayMs', arg: 'ms', help: 'wait after answer before --dtmf (default 500)', commands: ['call', 'listen'] },
  duration: { type: 'number', key: 'duration', arg: 's', help: 'hang up after this many seconds (default: when --play ends, else when the peer hangs up)', commands: ['call', 'listen'] },
  'answer-timeout': { type: 'number', key: 'answerTimeout', arg: 's', help: 'give up a call not answered by then (default 30)', commands: ['call'] },
  count: { type: 'int', key: 'count', arg: 'n', help: 'calls to handle before exiting (default 1)', commands: ['listen'] },
  timeout: { type: 'number', key: 'timeout', arg: 's', help: 'register/options: wait for the answer (default 10 / 5); listen: for the calls (default: no limit)', commands: ['register', 'listen', 'options'] },
  hold: { type: 'bool', key: 'hold', help: 'stay registered until Ctrl-C', commands: ['register'] },
  any: { type: 'bool', key: 'anyResponse', help: 'exit 0 on any response, not only 2xx', commands: ['options'] },
  json: { type: 'bool', key: 'json', help: 'machine output: one JSON object per line on stdout' },
  'log-level': { type: 'string', key: 'logLevel', arg: 'level', choices: ['error', 'warn', 'info', 'debug', 'trace'], help: 'engine log to stderr (credentials masked)' },
  help: { type: 'bool', key: 'help', short: 'h', help: 'this help' },
  version: { type: 'bool', key: 'version', short: 'V', help: 'the version' },
}

const SHORT = Object.fromEntries(Object.entries(FLAGS).filter(([, f]) => f.short).map(([n, f]) => [f.short, n]))

function convert(name, flag, raw) {
  const bad = (want) => new UsageError(`--${name} needs ${want}, got ${JSON.stringify(raw)}`)
  switch (flag.type) {
    case 'int': {
      if (!/^\d+$/.test(raw)) throw bad('a non-negative integer')
      return Number(raw)
    }
    case 'port':
    case 'port0': {
      const n = Number(raw)
      const min = flag.type === 'port' ? 1 : 0
      if (!/^\d+$/.test(raw) || n < min || n > 65535) throw bad(`a port number ${min}-65535`)
      return n
    }
    case 'number': {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(n)) throw bad('a number')
      return n
    }
    default:
      if (raw === '') throw bad('a value')
      if (flag.choices && !flag.choices.includes(raw.toLowerCase())) throw bad(`one of ${flag.choices.join(', ')}`)
      return flag.choices ? raw.toLowerCase() : raw
  }
}

/**
 * Parses argv (without node and the script) into `{ command, positional, opts, config,
 * tls, account }`: `opts` keyed by each flag's `key`, `config`/`tls`/`account` the flags of
 * those groups as camelCase library fields. Throws UsageError naming the wrong flag.
 */
function parseArgs(argv) {
  const out = { command: null, positional: [], opts: {}, config: {}, tls: {}, account: {} }
  const seen = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    let name
    let value
    if (arg === '--') {
      out.positional.push(...argv.slice(i + 1))
      break
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      name = eq > 0 ? arg.slice(2, eq) : arg.slice(2)
      if (eq > 0) value = arg.slice(eq + 1)
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = SHORT[arg[1]]
      if (!name) throw new UsageError(`unknown option ${arg}`)
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      throw new UsageError(`unknown option ${arg}`)
    } else {
      if (out.command === null) {
        if (!COMMANDS.includes(arg)) throw new UsageError(`unknown command ${JSON.stringify(arg)} (commands: ${COMMANDS.join(', ')})`)
        out.command = arg
      } else out.positional.push(arg)
      continue
    }
    const flag = FLAGS[name]
    if (!flag) throw new UsageError(`unknown option --${name}`)
    if (flag.type === 'bool') {
      if (value !== undefined) throw new UsageError(`--${name} takes no value`)
      value = true
    } else if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value (${flag.arg})`)
      value = argv[++i]
    }
    const v = flag.type === 'bool' ? true : convert(name, flag, value)
    seen.push(name)
    const into = flag.group ? out[flag.group] : out.opts
    if (flag.type === 'list') (into[flag.key] = into[flag.key] || []).push(v)
    else into[flag.key] = flag.negate ? !v : v
  }
  if (out.command) {
    for (const name of seen) {
      const cmds = FLAGS[name].commands
      if (cmds && !cmds.includes(out.command)) throw new UsageError(`--${name} is not an option of ${out.command}`)
    }
  }
  return out
}

function help(version) {
  const lines = [
    `sip-native ${version}: a SIP softphone for checking a PBX`,
    '',
    'Usage:',
    '  sip-native register [flags]            register the account(s); exit 0 once registered',
    '  sip-native call <target> [flags]       call a number or SIP URI; exit 0 if answered and all asked was done',
    '  sip-native listen [flags]              answer incoming calls (--count N); exit 0 once handled',
    '  sip-native options [<uri>] [flags]     SIP ping (OPTIONS); exit 0 on a 2xx (--any: on any response)',
    '',
    'Flags:',
  ]
  for (const [name, f] of Object.entries(FLAGS)) {
    const left = `  ${f.short ? `-${f.short}, ` : ''}--${name}${f.arg ? ` <${f.arg}>` : ''}`
    lines.push(`${left.padEnd(34)} ${f.help}${f.commands ? ` [${f.commands.join(', ')}]` : ''}`)
  }
  lines.push(
    '',
    'Flags override --config. The password may come from the environment: SIP_NATIVE_PASSWORD.',
    'Exit codes: 0 done as asked, 1 failed (not registered, not answered, no response, ...), 2 wrong usage.',
    'A status line per call goes to stderr (one line per second when stderr is not a terminal).',
  )
  return lines.join('\n')
}

module.exports = { parseArgs, help, UsageError, FLAGS }
