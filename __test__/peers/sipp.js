// Driver for sipp (sip-tester): one scenario per process, from __test__/scenarios/ or sipp's
// builtins, on 127.0.0.1. It traces its errors, statistics and messages to files in a temp dir,
// read back when it exits, for assertions and their messages.
//
//   const uas = await startSipp({ scenario: 'uas_answer', t })
//   await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
//   const r = await uas.done
//   assert.equal(r.code, 0, describeSipp(r))
//
// Bounded: sipp's own -timeout, a SIGKILL a little later, and a stop when the test ends (pass `t`).
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { HOST, freePort, freeTcpPort, tmpDir, readIfExists, track, exited, terminate, killGroup, waitUdpBound, waitTcpListening } = require('../helpers/process')

const SCENARIOS = path.join(__dirname, '..', 'scenarios')

function resolveScenario(scenario) {
  if (fs.existsSync(scenario) && scenario.endsWith('.xml')) return { file: path.resolve(scenario) }
  const name = scenario.endsWith('.xml') ? scenario : scenario + '.xml'
  const file = path.join(SCENARIOS, name)
  if (fs.existsSync(file)) return { file }
  return { builtin: scenario } // sipp -sn uac / uas / regexp / branchc ...
}

/** The last row of sipp's -trace_stat CSV (its final counts). */
function parseStats(csv) {
  const lines = csv.split('\n').filter((l) => l.trim())
  if (lines.length < 2) return null
  const head = lines[0].split(';')
  const row = lines[lines.length - 1].split(';')
  const out = {}
  head.forEach((h, i) => {
    if (h) out[h] = row[i]
  })
  const num = (k) => (out[k] === undefined ? undefined : Number(out[k]))
  return {
    successful: num('SuccessfulCall(C)'),
    failed: num('FailedCall(C)'),
    created: num('TotalCallCreated'),
    raw: out,
  }
}

/**
 * Starts sipp. Resolves once it is running (for a UAS: once its UDP port is bound) to
 * `{ port, dir, args, done, kill }`; `done` resolves when sipp exits, to
 * `{ code, signal, stdout, stderr, stats, errors, messages, dir }` where `code` 0 means every
 * call of the scenario succeeded, 1 that at least one failed (sipp's exit codes).
 *
 * @param {object} o
 * @param {string} o.scenario   file in __test__/scenarios (with or without .xml), a path, or a builtin name
 * @param {string} [o.remote]   'host:port' to call (UAC scenarios; '[::1]:port' for IPv6); omit for a UAS
 * @param {string} [o.host]     local address (-i), default 127.0.0.1; '::1' runs sipp on IPv6
 * @param {number} [o.port]     local port, 0 = a free one
 * @param {number} [o.calls]    -m, default 1
 * @param {number} [o.timeoutMs] global bound (sipp -timeout, plus a hard kill), default 20000
 * @param {number} [o.recvTimeoutMs] -recv_timeout, default 10000
 * @param {string} [o.service]  -s, Request-URI user of UAC scenarios, default '7779'
 * @param {number} [o.durationMs] -d, length of <pause/> without a value, default 300
 * @param {Object<string,string>} [o.keys] -key k v (scenario keywords [k]); defaults: display, expected
 * @param {'udp'|'tcp'} [o.transport] 'tcp': -t t1, one TCP connection (a UAS listens on `port`); default UDP
 * @param {string[]} [o.args]   extra sipp arguments
 * @param {object} [o.t]        node:test context: kill sipp when the test ends
 */
async function startSipp(o) {
  const opts = { calls: 1, timeoutMs: 20000, recvTimeoutMs: 10000, service: '7779', durationMs: 300, ...o }
  const host = opts.host || HOST
  const tcp = opts.transport === 'tcp'
  const port = opts.port || (tcp ? await freeTcpPort() : await freePort(host))
  const dir = tmpDir('sipp')
  const sc = resolveScenario(opts.scenario)
  const keys = { display: 'sipp', expected: '486', ...(opts.keys || {}) }
  const args = []
  if (opts.remote) args.push(opts.remote)
  if (sc.file) args.push('-sf', sc.file)
  else args.push('-sn', sc.builtin)
  args.push(
    '-i', host, '-bind_local', '-p', String(port),
    '-m', String(opts.calls),
    '-nostdin',
    '-timeout', `${Math.max(1, Math.ceil(opts.timeoutMs / 1000))}s`, '-timeout_error',
    '-recv_timeout', String(opts.recvTimeoutMs),
    '-max_recv_loops', '1000', '-max_sched_loops', '1000',
    '-s', opts.service,
    '-d', String(opts.durationMs),
    '-trace_err', '-error_file', path.join(dir, 'errors.log'),
    '-trace_stat', '-stf', path.join(dir, 'stats.csv'),
    '-trace_msg', '-message_file', path.join(dir, 'messages.log'),
    '-trace_logs', '-log_file', path.join(dir, 'logs.log'),
  )
  if (tcp) args.push('-t', 't1')
  // only when a key is used by the scenario would sipp need it; unknown -key values are harmless
  for (const [k, v] of Object.entries(keys)) args.push('-key', k, String(v))
  if (opts.args) args.push(...opts.args)

  const child = track(spawn('sipp', args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout = (stdout + d).slice(-65536)))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-65536)))
  const spawnError = new Promise((resolve) => child.once('error', resolve))
  const hardKill = setTimeout(() => killGroup(child, 'SIGKILL'), opts.timeoutMs + 5000)

  const done = Promise.race([exited(child), spawnError.then((e) => ({ code: -1, signal: null, error: e }))]).then(
    (r) => {
      clearTimeout(hardKill)
      return {
        code: r.code,
        signal: r.signal,
        error: r.error,
        stdout,
        stderr,
        stats: parseStats(readIfExists(path.join(dir, 'stats.csv'))),
        errors: readIfExists(path.join(dir, 'errors.log')),
        messages: readIfExists(path.join(dir, 'messages.log')),
        logs: readIfExists(path.join(dir, 'logs.log')),
        dir,
      }
    },
  )
  const kill = () => terminate(child, 1000)
  if (opts.t && typeof opts.t.after === 'function') opts.t.after(kill)

  if (!opts.remote) await (tcp ? waitTcpListening(port, child) : waitUdpBound(port, child))
  if (child.exitCode !== null) {
    const r = await done
    throw new Error(`sipp exited at once (code ${r.code}): ${r.stderr || r.stdout || r.errors}`)
  }
  return { port, dir, args, child, done, kill }
}

/** A readable summary of a finished sipp run, for assertion messages. */
function describeSipp(r) {
  const tail = (s, n = 3000) => (s && s.length > n ? '...' + s.slice(-n) : s)
  return `sipp exit ${r.code}${r.signal ? ' ' + r.signal : ''}; stats ${JSON.stringify(
    r.stats && { ok: r.stats.successful, failed: r.stats.failed },
  )}\n--- errors:\n${tail(r.errors)}\n--- stderr:\n${tail(r.stderr, 1000)}\n--- messages:\n${tail(r.messages)}`
}

module.exports = { startSipp, describeSipp }
