// Shared by the bench scripts: command-line options; for the runners (run.js, media.js) the /proc
// sampling of the UA under test, a bounded stop of their child processes and the report writer;
// for the UA scripts their lifecycle (start and print READY, stop on SIGTERM/SIGINT/--max-seconds
// with a bounded stop(), exit codes) and the auto-answering with its counts.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { setTimeout: sleep } = require('node:timers/promises')

// ---------------------------------------------------------------------------------------------
// Options

/** The runners' own options: `--name` present. */
const flag = (name) => process.argv.slice(2).includes(`--${name}`)

/** The runners' own options: `--name=value` only (so they can be passed through verbatim). */
function opt(name, dflt) {
  const hit = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))
  return hit ? hit.slice(name.length + 3) : dflt
}

/** The runners' `--only=ours|pjsua2` (null when absent); anything else exits 2. */
function onlyUa() {
  const only = opt('only', null)
  if (only && !['ours', 'pjsua2'].includes(only)) {
    console.error(`--only must be ours or pjsua2, not ${only}`)
    process.exit(2)
  }
  return only
}

/** The UA scripts' options: `--name value` or `--name=value`, else `dflt`. */
function arg(name, dflt) {
  const hit = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (!hit) return dflt
  if (hit.includes('=')) return hit.slice(hit.indexOf('=') + 1)
  return process.argv[process.argv.indexOf(hit) + 1]
}

// ---------------------------------------------------------------------------------------------
// The UA scripts (uas.js, media_uas.js)

/**
 * Starts `sip`, prints READY, and stops it once on a signal or after `maxSeconds` (then on
 * `stopAfterMs` more it exits hard). `counts()` is printed with the STOP line. Returns
 * `shutdown(why)` for other reasons to stop (stdin EOF).
 */
function runUa(sip, { maxSeconds, stopAfterMs, counts }) {
  let stopping = false
  async function shutdown(why) {
    if (stopping) return
    stopping = true
    clearTimeout(limit)
    console.log(`STOP (${why}) ${JSON.stringify(counts())}`)
    const force = setTimeout(() => {
      console.error(`stop() did not finish within ${stopAfterMs / 1000} s`)
      process.exit(2)
    }, stopAfterMs)
    force.unref()
    try {
      await sip.stop()
    } catch (err) {
      console.error(`stop: ${err && err.message}`)
      process.exitCode = 1
    }
    process.stdin.destroy()
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  const limit = setTimeout(() => shutdown('max-seconds'), maxSeconds * 1000)
  sip.start().then(
    () => {
      const la = sip.localAddress()
      console.log(`READY sip-native ${la.address}:${la.port}/${la.transport}`)
    },
    (err) => {
      console.error(`start failed: ${err && err.stack}`)
      process.exit(1)
    },
  )
  return shutdown
}

/**
 * Answers every incoming call with 200 and counts: returns the live counts object
 * { incoming, answered, answerErrors, confirmed, disconnected, errors } (the first 5 failures of
 * each kind are logged to stderr).
 */
function answerAll(sip) {
  const counts = { incoming: 0, answered: 0, answerErrors: 0, confirmed: 0, disconnected: 0, errors: 0 }
  sip.on('incoming_call', (e) => {
    counts.incoming++
    sip.answer(e.callId).then(
      () => counts.answered++,
      (err) => {
        if (counts.answerErrors++ < 5) console.error(`answer ${e.callId}: ${err && err.message}`)
      },
    )
  })
  sip.on('call_state', (e) => {
    if (e.state === 'confirmed') counts.confirmed++
    else if (e.state === 'disconnected') counts.disconnected++
  })
  sip.on('error', (e) => {
    if (counts.errors++ < 5) console.error(`error event: ${e && e.message}`)
  })
  return counts
}

// ---------------------------------------------------------------------------------------------
// The runners: measuring the UA under test, stopping processes, writing the report

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/**
 * One sample of process `pid` from /proc; null once it is gone (or a zombie).
 *   cpuSec  utime + stime (fields 14 and 15 of /proc/PID/stat, all its threads) ÷ CLK_TCK: the
 *           CPU of the process itself. Not cutime/cstime, which are the CPU of children it has
 *           waited for: that is not the UA's work (the UAs have none, but the load bench used to
 *           add them and the media bench not, so the two reports' CPU % were not the same measure).
 *   rssKb   VmRSS of /proc/PID/status, now; hwmKb VmHWM, the peak so far (the reports' "peak RSS").
 *   at      process.hrtime.bigint() of the sample, for CPU % over a window.
 */
function readProc(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the fields after the parenthesised comm (which may hold spaces) start at field 3, state
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (f[0] === 'Z') return null
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = /VmRSS:\s+(\d+) kB/.exec(status)
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
    return {
      cpuSec: (Number(f[11]) + Number(f[12])) / CLK_TCK,
      rssKb: rss ? Number(rss[1]) : 0,
      hwmKb: hwm ? Number(hwm[1]) : 0,
      at: process.hrtime.bigint(),
    }
  } catch {
    return null
  }
}

const hasExited = (child) => child.exitCode !== null || child.signalCode !== null

/** Resolves true once `child` has exited, false if it is still running after `ms`. */
function exitWithin(child, ms) {
  if (hasExited(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const onExit = () => {
      clearTimeout(timer)
      resolve(true)
    }
    const timer = setTimeout(() => {
      child.off('exit', onExit)
      resolve(false)
    }, ms)
    child.once('exit', onExit)
  })
}

/** SIGTERM; SIGKILL if `child` still runs after `graceMs`; resolves once it has exited (at most 2 s after a SIGKILL). */
async function stopChild(child, graceMs) {
  if (hasExited(child)) return
  child.kill('SIGTERM')
  if (await exitWithin(child, graceMs)) return
  child.kill('SIGKILL')
  await exitWithin(child, 2000)
}

/** The reason a UA died, for the report: its signal or exit code and the last error-like line of its log. */
function deathNote(logFile, { signal, code }) {
  const log = fs.readFileSync(logFile, 'utf8')
  const why = log.split('\n').reverse().find((l) => /Assert|abort|panic|Error|fatal/i.test(l))
  return `UA died (${signal || `exit ${code}`})${why ? `: ${why.trim().slice(0, 140)}` : ''}`
}

/** A number for the report's tables, '–' when there is none. */
const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '–' : v.toFixed(d))

/** Writes the report: `md` to `out` (a .md path), `rows` as JSON beside it, `md` to stdout. */
function writeReport(out, md, rows, tag) {
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, md)
  fs.writeFileSync(out.replace(/\.md$/, '.json'), JSON.stringify(rows, null, 2) + '\n')
  console.log(md)
  console.error(`[${tag}] written ${path.relative(process.cwd(), out)}`)
}

module.exports = { arg, flag, opt, onlyUa, sleep, runUa, answerAll, readProc, stopChild, deathNote, fmt, writeReport }
