// The sip-native CLI: parse, build the service from the same config as the library, run one
// command, stop the service (calls hung up, accounts unregistered) and exit with
// 0 = done as asked, 1 = failed, 2 = wrong usage. Every failure is one line on stderr that
// names the problem; no stack traces.
'use strict'

const { parseArgs, help, UsageError } = require('./args')
const { buildService } = require('./config')
const { Output } = require('./status')
const { CallStates, callCommand, listenCommand } = require('./calls')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Waits for the first final registration event of each account: `{ account → event }`. */
function registrations(service, accounts) {
  const pending = new Map(accounts.map((a) => [a, null]))
  const waiters = []
  service.on('registration', (e) => {
    if (!pending.has(e.account) || pending.get(e.account)) return
    if (e.state === 'registered' || e.state === 'failed') {
      pending.set(e.account, e)
      if ([...pending.values()].every(Boolean)) waiters.splice(0).forEach((w) => w(pending))
    }
  })
  return new Promise((resolve) => waiters.push(resolve))
}

/** Waits for the accounts' registration; returns the exit code on failure, else 0. */
async function awaitRegistration(ctx, timeoutS) {
  const { out, accounts, server, registered } = ctx
  if (!accounts.length) return 0
  const results = await Promise.race([registered, sleep(timeoutS * 1000).then(() => null), ctx.interrupted.then(() => null)])
  let failed = 0
  for (const account of accounts) {
    const e = results && results.get(account)
    if (e && e.state === 'registered') {
      out.result(`registered ${account} at ${server} (${e.code} ${e.reason}, expires ${e.expires} s)`, {
        type: 'registration', ok: true, account, server, code: e.code, reason: e.reason, expires: e.expires,
      })
    } else {
      failed++
      const why = e ? `${e.code} ${e.reason}` : `no answer within ${timeoutS} s`
      out.error(`registration of ${account} at ${server} failed: ${why}`)
      if (out.json) out.result('', { type: 'registration', ok: false, account, server, code: e ? e.code : 0, reason: why })
    }
  }
  return failed ? 1 : 0
}

async function optionsCommand(ctx, uri) {
  const { service, opts, out, server } = ctx
  const target = uri || server
  if (!target) throw new UsageError('options needs a <uri> or --server')
  const timeoutS = opts.timeout ?? 5
  try {
    const r = await service.options(target, { timeoutMs: Math.max(1, Math.round(timeoutS * 1000)) })
    const ok = (r.code >= 200 && r.code < 300) || opts.anyResponse === true
    out.result(`${r.code} ${r.reason} from ${target} in ${r.rttMs.toFixed(1)} ms`, { type: 'options', ok, uri: target, ...r })
    return ok ? 0 : 1
  } catch (e) {
    if (e instanceof TypeError) throw e
    out.error(e.message)
    if (out.json) out.result('', { type: 'options', ok: false, uri: target, error: e.message })
    return 1
  }
}

async function registerCommand(ctx) {
  const { out, accounts, opts } = ctx
  if (!ctx.server) throw new UsageError('register needs --server (or a --config with one)')
  if (!accounts.length) throw new UsageError('register needs an account: --extension/--username (or a --config with one)')
  const code = await awaitRegistration(ctx, opts.timeout ?? 10)
  if (code === 0 && opts.hold) {
    out.note('registered; Ctrl-C to unregister and exit', { type: 'hold' })
    await ctx.interrupted
  }
  return code
}

async function run(argv, { stdout = process.stdout, stderr = process.stderr, env = process.env } = {}) {
  let out = new Output({ stdout, stderr })
  let service
  try {
    const parsed = parseArgs(argv)
    const version = require('../../package.json').version
    if (parsed.opts.help) {
      stdout.write(help(version) + '\n')
      return 0
    }
    if (parsed.opts.version) {
      stdout.write(`sip-native ${version}\n`)
      return 0
    }
    if (!parsed.command) throw new UsageError('no command (register, call, listen or options; --help)')
    out = new Output({ json: parsed.opts.json === true, stdout, stderr })
    const opts = parsed.opts
    const cmd = parsed.command
    const want = { register: 0, call: 1, listen: 0, options: 1 }[cmd]
    if (parsed.positional.length > want || (cmd === 'call' && parsed.positional.length < 1)) {
      throw new UsageError(cmd === 'call' ? 'call needs one <target>' : `${cmd} takes ${want ? 'one argument' : 'no arguments'}, got ${parsed.positional.join(' ')}`)
    }
    if (opts.play !== undefined && opts.tone !== undefined) throw new UsageError('--play and --tone cannot be combined')
    if (cmd === 'call' && opts.answerTimeout !== undefined) parsed.config.inviteTimeoutMs = Math.round(opts.answerTimeout * 1000)
    else if (cmd === 'call') parsed.config.inviteTimeoutMs = 30000
    const built = buildService(parsed, { withAccounts: cmd !== 'options', env })
    service = built.service
    let interrupt
    const interrupted = new Promise((r) => (interrupt = r))
    let sigints = 0
    process.on('SIGINT', () => {
      if (++sigints > 1) process.exit(130)
      interrupt()
    })
    process.on('SIGTERM', () => interrupt())
    service.on('error', (e) => out.note(`sip-native: warning: ${e.message}`, { type: 'warning', message: e.message }))
    const ctx = { service, opts, out, interrupted, ...built }
    ctx.registered = registrations(service, built.accounts)
    ctx.calls = new CallStates(service, (e) => out.state(e.callId, e.state))
    try {
      await service.start()
    } catch (e) {
      const where = built.server ? ` (server ${built.server})` : ''
      out.error(`cannot start${where}: ${e.message.replace(/^sip-native: /, '')}`)
      return 1
    }
    let code
    if (cmd === 'register') code = await registerCommand(ctx)
    else if (cmd === 'options') code = await optionsCommand(ctx, parsed.positional[0])
    else {
      code = await awaitRegistration(ctx, opts.timeout ?? 10)
      if (code === 0) code = cmd === 'call' ? await callCommand(ctx, parsed.positional[0]) : await listenCommand(ctx)
    }
    return code
  } catch (e) {
    if (e instanceof UsageError || e instanceof TypeError) {
      // the library's TypeErrors are about what the user typed (a target that is no URI)
      out.error(`${e.message.replace(/^sip-native: (invalid argument: )?/, '')} (see sip-native --help)`)
      return 2
    }
    out.error(e && e.message ? e.message.replace(/^sip-native: /, '') : String(e))
    return 1
  } finally {
    if (service) await service.stop().catch(() => {})
  }
}

module.exports = { run }
