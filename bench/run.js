#!/usr/bin/env node
// Load bench: sipp (UAC) against an auto-answering UAS, sip-native vs PJSIP (pjsua2 wheel), on
// loopback. A fresh UA per run; its CPU time (utime+stime from /proc/PID/stat) and peak RSS
// (VmHWM) are sampled while sipp runs (readProc in bench/common.js, as the media bench does).
// CPU % = UA CPU time / sipp wall time (100 % = one core).
//
//   node bench/run.js [--quick] [--only=ours|pjsua2] [--scenarios=rate:200:0,conc:100]
//                     [--runs-dir=DIR] [--out=FILE] [--sipp=PATH] [--python=PATH]
//                     [--media | --no-media]
//
// Writes the markdown table to bench/results/latest.md (and prints it). Then runs the media bench
// (bench/media.js: N concurrent G.711 calls with RTP both ways, bench/results/media-latest.md),
// passing on --quick, --only and --python; --media runs only the media bench, --no-media skips it
// (so does --scenarios). Every run is bounded:
// sipp gets -timeout/-recv_timeout and is killed after a hard deadline; the UA gets SIGTERM, then
// SIGKILL.
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const argv = process.argv.slice(2)
const { flag, opt, onlyUa, sleep, readProc, stopChild, deathNote, fmt, writeReport } = require('./common')

const QUICK = flag('quick')
const MEDIA_ONLY = flag('media')
const WITH_MEDIA = MEDIA_ONLY || !(flag('no-media') || argv.some((a) => a.startsWith('--scenarios=')))
const ONLY = onlyUa()
const OUT = path.resolve(opt('out', path.join(__dirname, 'results', 'latest.md')))
const RUNS_DIR = path.resolve(opt('runs-dir', path.join(__dirname, 'results', 'runs')))
const SIPP = opt('sipp', process.env.SIPP || 'sipp')
const PYTHON = opt('python', process.env.PYTHON || 'python3')
const LOAD_SECONDS = 3
// a UA has this long to stop() after SIGTERM (bench/uas.js bounds its own stop at 5 s)
const UA_STOP_MS = 5000

if (!MEDIA_ONLY && spawnSync(SIPP, ['-v'], { encoding: 'utf8' }).error) {
  console.error(`sipp not found (${SIPP}); install sip-tester or pass --sipp=PATH`)
  process.exit(2)
}

// ---------------------------------------------------------------------------------------------
// The UAs under test

const UAS = [
  {
    name: 'ours',
    label: 'sip-native',
    cmd: (port, maxSeconds) => [
      process.execPath,
      [path.join(__dirname, 'uas.js'), '--port', String(port), '--max-seconds', String(maxSeconds)],
    ],
  },
  {
    name: 'pjsua2',
    label: 'pjsua2 wheel',
    cmd: (port, maxSeconds) => [
      PYTHON,
      [path.join(__dirname, 'pjsua2_uas.py'), '--port', String(port), '--max-seconds', String(maxSeconds)],
    ],
  },
].filter((ua) => !ONLY || ua.name === ONLY)

// ---------------------------------------------------------------------------------------------
// Scenarios

function rate(cps, holdMs = 1000) {
  const calls = cps * LOAD_SECONDS
  return {
    id: holdMs === 1000 ? `rate ${cps} cps` : `rate ${cps} cps, -d ${holdMs}`,
    offered: calls,
    // sipp stops by itself: all calls placed after LOAD_SECONDS, each lasts holdMs, a lost
    // response ends a call after recv_timeout.
    wallLimit: LOAD_SECONDS + holdMs / 1000 + 8 + 10,
    args: ['-r', String(cps), '-m', String(calls), '-d', String(holdMs)],
  }
}
function conc(n, holdMs = 5000, cps = 200) {
  return {
    id: `conc ${n} held ${holdMs / 1000} s`,
    offered: n,
    wallLimit: Math.ceil(n / cps) + holdMs / 1000 + 8 + 10,
    args: ['-r', String(cps), '-l', String(n), '-m', String(n), '-d', String(holdMs)],
  }
}

// --scenarios=rate:CPS[:HOLD_MS],conc:N[:HOLD_MS] replaces the default list.
function parseScenarios(spec) {
  return spec.split(',').map((item) => {
    const [kind, a, b] = item.split(':')
    const n = Number(a)
    const hold = b === undefined ? undefined : Number(b)
    if (!(n > 0) || (hold !== undefined && !(hold >= 0))) throw new Error(`bad scenario ${item}`)
    if (kind === 'rate') return rate(n, hold)
    if (kind === 'conc') return conc(n, hold)
    throw new Error(`bad scenario ${item} (rate:CPS[:HOLD_MS] or conc:N[:HOLD_MS])`)
  })
}

const SCENARIOS = opt('scenarios', null)
  ? parseScenarios(opt('scenarios'))
  : QUICK
    ? [rate(50, 0), rate(50), rate(200), conc(100)]
    : [rate(50, 0), rate(50), rate(100), rate(200), rate(400), rate(800), conc(100), conc(500), conc(2000)]

// ---------------------------------------------------------------------------------------------
// One run

let portBase = 15070 + (process.pid % 50) * 20

function startUa(ua, port, maxSeconds, logFile) {
  const [cmd, args] = ua.cmd(port, maxSeconds)
  const log = fs.openSync(logFile, 'w')
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', log] })
  const state = { child, exited: false, code: null, signal: null, ready: false, out: '' }
  child.on('exit', (code, signal) => {
    state.exited = true
    state.code = code
    state.signal = signal
  })
  child.stdout.on('data', (d) => {
    fs.appendFileSync(logFile, d)
    state.out += d
    if (!state.ready && /^READY/m.test(state.out)) state.ready = true
  })
  return state
}

async function waitReady(ua, ms) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (ua.ready) return true
    if (ua.exited) return false
    await sleep(50)
  }
  return ua.ready
}

function runSipp(scn, uaPort, sippPort, cwd) {
  const args = [
    '-sn', 'uac', `127.0.0.1:${uaPort}`,
    '-s', 'uas',
    '-i', '127.0.0.1',
    '-p', String(sippPort),
    ...scn.args,
    '-nostdin',
    '-trace_stat', '-fd', '1',
    '-trace_screen',
    '-trace_err',
    '-trace_error_codes',
    '-recv_timeout', '8000',
    '-timeout', `${Math.ceil(scn.wallLimit)}s`,
    '-max_recv_loops', '10000',
    '-max_sched_loops', '10000',
  ]
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(SIPP, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const hard = setTimeout(() => {
      child.kill('SIGKILL')
    }, (scn.wallLimit + 15) * 1000)
    child.on('exit', (code, signal) => {
      clearTimeout(hard)
      resolve({
        code,
        signal,
        wallSec: Number(process.hrtime.bigint() - t0) / 1e9,
        stderr: stderr.trim(),
        cmd: `${SIPP} ${args.join(' ')}`,
      })
    })
    child.on('error', (err) => {
      clearTimeout(hard)
      resolve({ code: -1, signal: null, wallSec: 0, stderr: String(err), cmd: SIPP })
    })
  })
}

function parseSippStats(cwd) {
  const files = fs.readdirSync(cwd)
  const csv = files.find((f) => /^uac_\d+_\.csv$/.test(f))
  const res = { created: null, ok: null, failed: null, codes: {} }
  if (csv) {
    const lines = fs.readFileSync(path.join(cwd, csv), 'utf8').trim().split('\n')
    if (lines.length >= 2) {
      const head = lines[0].split(';')
      const last = lines[lines.length - 1].split(';')
      const col = (name) => Number(last[head.indexOf(name)])
      res.created = col('TotalCallCreated')
      res.ok = col('SuccessfulCall(C)')
      res.failed = col('FailedCall(C)')
      res.retrans = col('Retransmissions(C)')
      res.timeouts = col('FailedMaxUDPRetrans(C)') + col('FailedCmdNotSent(C)')
    }
  }
  if (res.ok === null) {
    // Fall back to the final screen dump.
    const scr = files.find((f) => /^uac_\d+_screen\.log$/.test(f))
    if (scr) {
      const text = fs.readFileSync(path.join(cwd, scr), 'utf8')
      const grab = (re) => {
        const all = [...text.matchAll(re)]
        return all.length ? Number(all[all.length - 1][1]) : null
      }
      res.ok = grab(/Successful call\s+\|\s+\d+\s+\|\s+(\d+)/g)
      res.failed = grab(/Failed call\s+\|\s+\d+\s+\|\s+(\d+)/g)
      res.created = grab(/Total Calls created\s+\|\s+\|\s+(\d+)/g)
    }
  }
  const ec = files.find((f) => /^uac_\d+_error_codes\.csv$/.test(f))
  if (ec) {
    for (const line of fs.readFileSync(path.join(cwd, ec), 'utf8').split('\n')) {
      const codes = line.split(';')[2]
      if (!codes) continue
      for (const c of codes.split(',')) if (c) res.codes[c] = (res.codes[c] || 0) + 1
    }
  }
  return res
}

async function oneRun(ua, scn, runIdx) {
  const slug = `${ua.name}-${scn.id.replace(/[^a-z0-9]+/gi, '-')}`.replace(/-+$/, '')
  const cwd = path.join(RUNS_DIR, slug)
  fs.rmSync(cwd, { recursive: true, force: true })
  fs.mkdirSync(cwd, { recursive: true })
  const uaPort = portBase + runIdx * 2
  const sippPort = uaPort + 1
  const row = { ua: ua.label, uaName: ua.name, scenario: scn.id, offered: scn.offered, notes: [] }

  const maxSeconds = Math.ceil(scn.wallLimit + 30)
  const proc = startUa(ua, uaPort, maxSeconds, path.join(cwd, 'ua.log'))
  if (!(await waitReady(proc, 15000))) {
    await stopChild(proc.child, UA_STOP_MS)
    row.status = 'no-start'
    row.notes.push(`UA did not start (${proc.exited ? `exit ${proc.code ?? proc.signal}` : 'no READY in 15 s'}); see ${path.relative(ROOT, cwd)}/ua.log`)
    return row
  }
  const pid = proc.child.pid
  await sleep(300) // let the UA settle (JIT, lazy init) before the baseline sample
  const base = readProc(pid)
  let last = base
  const sampler = setInterval(() => {
    const s = readProc(pid)
    if (s) last = s
  }, 100)

  const sipp = await runSipp(scn, uaPort, sippPort, cwd)
  clearInterval(sampler)
  const end = readProc(pid) || last
  const diedDuringRun = proc.exited
  if (!diedDuringRun) await stopChild(proc.child, UA_STOP_MS)

  const stats = parseSippStats(cwd)
  row.ok = stats.ok
  row.failed = stats.failed
  row.codes = stats.codes
  row.sippWall = sipp.wallSec
  row.sippCode = sipp.code
  if (base && end && sipp.wallSec > 0) {
    row.cpuPct = ((end.cpuSec - base.cpuSec) / sipp.wallSec) * 100
    row.rssMb = end.hwmKb / 1024
  }
  fs.writeFileSync(path.join(cwd, 'sipp.cmd'), sipp.cmd + '\n')
  if (sipp.stderr) fs.writeFileSync(path.join(cwd, 'sipp.stderr'), sipp.stderr + '\n')

  if (diedDuringRun) {
    row.status = 'died'
    row.notes.push(deathNote(path.join(cwd, 'ua.log'), proc))
  } else if (row.ok === null) {
    row.status = 'no-stats'
    row.notes.push(`no sipp stats (sipp exit ${sipp.code ?? sipp.signal}${sipp.stderr ? `: ${sipp.stderr.split('\n')[0].slice(0, 120)}` : ''})`)
  } else {
    row.status = row.failed === 0 && row.ok === scn.offered ? 'ok' : 'partial'
  }
  if (proc.exited && !diedDuringRun && proc.code !== 0 && proc.signal !== 'SIGTERM') {
    row.notes.push(`UA exit ${proc.code ?? proc.signal} on stop`)
  }
  const codes = Object.entries(row.codes || {})
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${n}×${c}`)
  if (codes.length) row.notes.push(`failure codes: ${codes.join(', ')}`)
  if (stats.timeouts) row.notes.push(`${stats.timeouts} timeouts`)
  return row
}

// ---------------------------------------------------------------------------------------------
// Report

function table(rows) {
  const out = []
  out.push('| UA | scenario | offered | ok | failed | CPU % | peak RSS MB | notes |')
  out.push('|---|---|---|---|---|---|---|---|')
  for (const scn of SCENARIOS) {
    const byUa = rows.filter((r) => r.scenario === scn.id)
    for (const r of byUa) {
      const status = r.status === 'died' ? ' **died**' : ''
      out.push(
        `| ${r.ua} | ${r.scenario} | ${r.offered} | ${r.ok ?? '–'} | ${r.failed ?? '–'}${status} | ${fmt(r.cpuPct)} | ${fmt(r.rssMb)} | ${r.notes.join('; ')} |`,
      )
    }
    const ours = byUa.find((r) => r.uaName === 'ours')
    const pj = byUa.find((r) => r.uaName === 'pjsua2')
    if (ours && pj && ours.status === 'ok' && pj.status === 'ok' && pj.cpuPct > 0 && pj.rssMb > 0) {
      out.push(
        `| *ours/PJSIP* | ${scn.id} | | | | *${fmt(ours.cpuPct / pj.cpuPct, 2)}×* | *${fmt(ours.rssMb / pj.rssMb, 2)}×* | both completed every call |`,
      )
    }
  }
  return out.join('\n')
}

/** Runs bench/media.js as a child process; resolves with its exit code. */
function runMedia() {
  const pass = argv.filter((a) => a === '--quick' || /^--(only|python)=/.test(a))
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'media.js'), ...pass], { cwd: ROOT, stdio: 'inherit' })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

async function main() {
  if (MEDIA_ONLY) {
    process.exitCode = await runMedia()
    return
  }
  fs.mkdirSync(RUNS_DIR, { recursive: true })
  const sippVersion = (spawnSync(SIPP, ['-v'], { encoding: 'utf8' }).stdout || '').match(/v[\d.]+[^\s,]*/)
  const rows = []
  let runIdx = 0
  const started = new Date()
  for (const scn of SCENARIOS) {
    for (const ua of UAS) {
      process.stderr.write(`[bench] ${ua.label} / ${scn.id} ... `)
      const row = await oneRun(ua, scn, runIdx++)
      process.stderr.write(
        `${row.status}: ok ${row.ok ?? '–'} failed ${row.failed ?? '–'} cpu ${fmt(row.cpuPct)}% rss ${fmt(row.rssMb)} MB (${fmt(row.sippWall)} s)\n`,
      )
      rows.push(row)
      await sleep(500)
    }
  }
  const md = [
    `# sip-native load bench (${QUICK ? 'quick' : 'full'})`,
    '',
    `${started.toISOString()}, ${require('node:os').cpus().length} cores, Node ${process.version}, sipp ${sippVersion ? sippVersion[0] : '?'}; ` +
      `sipp \`uac\` on loopback against an auto-answering UAS (bench/uas.js, bench/pjsua2_uas.py), a fresh UA per run. ` +
      `Rate runs offer ${LOAD_SECONDS} s of load and hold each call 1 s (unless -d says otherwise); conc runs place N calls at 200 cps and hold them 5 s. ` +
      'CPU % = UA CPU time (utime+stime) ÷ sipp wall time, 100 % = one core; peak RSS = VmHWM. ' +
      'The pjsua2 wheel caps at 4 concurrent calls (486 beyond) and aborts at ≥100 cps (select ioqueue, 64 handles): see ../shared/anchors.md.',
    '',
    table(rows),
    '',
    `Per-run logs: \`${path.relative(ROOT, RUNS_DIR)}/<ua>-<scenario>/\` (ua.log, sipp.cmd, sipp CSV/screen/error files).`,
    '',
  ].join('\n')
  writeReport(OUT, md, rows, 'bench')
  if (WITH_MEDIA) process.exitCode = await runMedia()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
