#!/usr/bin/env node
// Media bench: N concurrent G.711 calls, RTP both ways, held --hold seconds, against an
// auto-answering UA that plays a 440 Hz tone on every call: sip-native (bench/media_uas.js) and
// PJSIP (bench/pjsua2_uas.py --tone 440, the pjsua2 wheel). The load is driven by a second sip-native
// process (bench/media_uac.js; sipp's pcap playback needs one thread per call and cannot reach
// 2,000 calls), which plays a 1000 Hz tone on each call and reads every call's callStats() at the
// start and end of the hold window.
//
//   node bench/media.js [--quick] [--only=ours|pjsua2] [--n=50,200] [--pj-n=4,50] [--hold=S]
//                       [--cps=100] [--out=FILE] [--python=PATH]
//   (also: node bench/run.js --media)
//
// Measured for the UA under test, over the steady hold window only (all calls up): CPU % =
// (utime+stime from /proc/PID/stat, readProc in bench/common.js as for the load bench) ÷ wall
// time of the window (100 % = one core); peak RSS =
// VmHWM; loss = packets lost ÷ packets expected (by RTP sequence numbers) as seen by the UAC;
// delivery = packets received ÷ (50 pps × window × calls), which also catches a stream that
// stops; send-interval p50/p99 = the UA's mediaClock() (pacing clock tick intervals, ms, since
// the UA started); UAC jitter = RFC 3550 interarrival jitter of the UA's streams at the UAC.
// Every run is bounded: the driver kills both processes after a hard deadline.
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.join(__dirname, '..')
const { flag, opt, onlyUa, sleep, readProc, stopChild, deathNote, fmt, writeReport } = require('./common')
const list = (s) => s.split(',').map(Number).filter((n) => n > 0)

const QUICK = flag('quick')
const ONLY = onlyUa()
const HOLD_S = Number(opt('hold', QUICK ? 10 : 30))
const CPS = Number(opt('cps', 100))
const OURS_N = list(opt('n', QUICK ? '50,200' : '4,50,200,500,1000,2000'))
const PJ_N = list(opt('pj-n', QUICK ? '4' : '4,50'))
const OUT = path.resolve(opt('out', path.join(__dirname, 'results', 'media-latest.md')))
const RUNS_DIR = path.resolve(opt('runs-dir', path.join(__dirname, 'results', 'runs')))
const PYTHON = opt('python', process.env.PYTHON || 'python3')
// Run the load driver at a lower CPU priority (nice value), so that on a small box the UA under
// test gets the CPU it asks for and its own limit shows (default 0: equal shares).
const DRIVER_NICE = Number(opt('driver-nice', 0))
const PJSIP_REBUILT_PER_CALL = 0.265 // % of a core per call: 200 uac_pcap calls at 53.0 % (anchors.md)
// the UA and the driver have this long to stop after SIGTERM (bench/media_uas.js bounds its own stop at 10 s)
const PROCESS_STOP_MS = 10000

const UAS = [
  { name: 'ours', label: 'sip-native', ns: OURS_N, cmd: (port) => [process.execPath, [path.join(__dirname, 'media_uas.js'), '--port', String(port), '--rtp-min', '20000', '--rtp-max', '27999', '--max-seconds', '900']] },
  { name: 'pjsua2', label: 'pjsua2 wheel', ns: PJ_N, cmd: (port) => [PYTHON, [path.join(__dirname, 'pjsua2_uas.py'), '--port', String(port), '--tone', '440', '--rtp-min', '20000', '--stdin-commands', '--max-seconds', '900']] },
].filter((ua) => !ONLY || ua.name === ONLY)

/** Spawns `cmd args` with the open-files soft limit raised to the hard limit; lines on stdout. */
function start(cmd, args, logFile, nice = 0) {
  const log = fs.openSync(logFile, 'w')
  const pre = nice ? ['nice', '-n', String(nice)] : []
  const child = spawn('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"', 'bash', ...pre, cmd, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', log],
    env: process.env,
  })
  const p = { child, exited: false, code: null, signal: null, waiters: [], lines: [] }
  child.on('exit', (code, signal) => Object.assign(p, { exited: true, code, signal }))
  child.stdin.on('error', () => {})
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    fs.appendFileSync(logFile, `[stdout] ${line}\n`)
    p.lines.push(line)
    p.waiters = p.waiters.filter((w) => !(line.startsWith(w.prefix) && (w.resolve(line), true)))
  })
  return p
}

/** The next stdout line starting with `prefix` (or an earlier one not yet consumed); null on timeout or exit. */
function waitLine(p, prefix, ms) {
  const i = p.lines.findIndex((l) => l.startsWith(prefix))
  if (i >= 0) return Promise.resolve(p.lines.splice(i, 1)[0])
  if (p.exited) return Promise.resolve(null)
  return new Promise((resolve) => {
    let done = false
    const finish = (l) => {
      if (done) return
      done = true
      clearTimeout(t)
      p.waiters = p.waiters.filter((x) => x !== w)
      if (l !== null) p.lines.splice(p.lines.indexOf(l), 1)
      resolve(l)
    }
    const w = { prefix, resolve: finish }
    const t = setTimeout(() => finish(null), ms)
    p.waiters.push(w)
    p.child.once('exit', () => setTimeout(() => finish(null), 50))
  })
}

const json = (line) => {
  try {
    return JSON.parse(line.slice(line.indexOf(' ') + 1))
  } catch {
    return null
  }
}

let portBase = 15170 + (process.pid % 40) * 10

async function oneRun(ua, n, idx) {
  const slug = `media-${ua.name}-${n}`
  const dir = path.join(RUNS_DIR, slug)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const uasPort = portBase + idx * 2
  const row = { ua: ua.label, uaName: ua.name, n, notes: [], logs: path.relative(ROOT, dir) }
  const hardMs = (n / CPS + HOLD_S + 90) * 1000
  const [ucmd, uargs] = ua.cmd(uasPort)
  const uas = start(ucmd, uargs, path.join(dir, 'uas.log'))
  const uacArgs = [path.join(__dirname, 'media_uac.js'), '--target', `127.0.0.1:${uasPort}`, '--port', String(uasPort + 1), '--n', String(n), '--cps', String(CPS), '--hold', String(HOLD_S), '--rtp-min', '30000', '--rtp-max', '37999']
  row.cmd = `${[ucmd, ...uargs].join(' ')}  &&  ${DRIVER_NICE ? `nice -n ${DRIVER_NICE} ` : ''}${[process.execPath, ...uacArgs].join(' ')}`
  let uac = null
  const hard = setTimeout(() => {
    row.notes.push(`hard deadline ${hardMs / 1000} s hit: killed`)
    uas.child.kill('SIGKILL')
    if (uac) uac.child.kill('SIGKILL')
  }, hardMs)
  try {
    if (!(await waitLine(uas, 'READY', 15000))) {
      row.status = 'no-start'
      row.notes.push(`UA did not start (see ${row.logs}/uas.log)`)
      return row
    }
    await sleep(300)
    uac = start(process.execPath, uacArgs, path.join(dir, 'uac.log'), DRIVER_NICE)
    const up = await waitLine(uac, 'UP', n / CPS * 1000 + 30000)
    if (!up) {
      row.status = 'no-up'
      row.notes.push(`UAC never reported its calls up (see ${row.logs}/uac.log)`)
      return row
    }
    row.up = json(up)
    if (!(await waitLine(uac, 'HOLD_START', 10000))) throw new Error('no HOLD_START')
    const s0 = readProc(uas.child.pid)
    const c0 = readProc(uac.child.pid)
    if (!(await waitLine(uac, 'HOLD_END', HOLD_S * 1000 + 20000))) throw new Error('no HOLD_END')
    const s1 = readProc(uas.child.pid)
    const c1 = readProc(uac.child.pid)
    uas.child.stdin.write('clock\nstats\n')
    const [clock, stats, result] = await Promise.all([waitLine(uas, 'CLOCK', 5000), waitLine(uas, 'STATS', 10000), waitLine(uac, 'RESULT', 20000)])
    uac.child.stdin.write('hangup\n')
    row.clock = clock && json(clock)
    row.uasStats = stats && json(stats)
    row.result = result && json(result)
    if (s0 && s1) {
      const wall = Number(s1.at - s0.at) / 1e9
      row.holdWall = wall
      row.cpuPct = ((s1.cpuSec - s0.cpuSec) / wall) * 100
      row.rssMb = s1.hwmKb / 1024
    } else row.notes.push('UA process gone during the hold window')
    if (c0 && c1) row.uacCpuPct = ((c1.cpuSec - c0.cpuSec) / (Number(c1.at - c0.at) / 1e9)) * 100
    const r = row.result
    if (r) {
      row.ok = r.ok
      if (r.ok > 0 && row.cpuPct !== undefined) row.cpuPerCall = row.cpuPct / r.ok
      row.lossPct = r.rx.expectedBySeq > 0 ? (100 * r.rx.lost) / r.rx.expectedBySeq : null
      row.deliveryPct = r.rx.expectedByTime > 0 ? (100 * r.rx.packets) / r.rx.expectedByTime : null
      const codes = Object.entries(r.codes || {}).sort((a, b) => b[1] - a[1]).map(([c, k]) => `${k}× ${c}`)
      if (codes.length) row.notes.push(`failures: ${codes.join(', ')}`)
      if (r.rx.dropped) row.notes.push(`UAC dropped ${r.rx.dropped} pkts`)
    }
    const u = row.uasStats
    if (u && u.packetsReceived !== undefined) {
      const exp = u.packetsReceived + u.packetsLost
      row.uasLossPct = exp > 0 ? (100 * u.packetsLost) / exp : null
      if (u.packetsLost || u.packetsDropped) row.notes.push(`UA saw ${u.packetsLost} lost, ${u.packetsDropped} dropped of the UAC's pkts (whole calls)`)
      if (u.counts && (u.counts.answerErrors || u.counts.toneErrors || u.counts.errors)) row.notes.push(`UA errors: ${JSON.stringify(u.counts)}`)
    }
    row.status = r && r.ok === n ? 'ok' : 'partial'
  } catch (err) {
    row.status = 'error'
    row.notes.push(String(err.message || err))
  } finally {
    clearTimeout(hard)
    if (uac) {
      const done = await waitLine(uac, 'DONE', 30000)
      if (!done && !uac.exited) row.notes.push('UAC did not finish hanging up in 30 s')
      await stopChild(uac.child, PROCESS_STOP_MS)
    }
    const uasDied = uas.exited
    await stopChild(uas.child, PROCESS_STOP_MS)
    if (uasDied && row.status !== 'no-start') {
      row.status = 'died'
      row.notes.push(deathNote(path.join(dir, 'uas.log'), uas))
    }
  }
  return row
}

function table(rows) {
  const out = [
    '| UA | N calls | ok calls | CPU % | CPU % per call | peak RSS MB | loss % (UAC view) | delivery % | send interval p50 / p99 ms | p99 − 20 ms | UAC jitter mean / p99 ms | driver CPU % | notes |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    const c = r.clock
    const j = r.result && r.result.jitterMs
    out.push(
      `| ${r.ua} | ${r.n} | ${r.ok ?? '–'}${r.status === 'died' ? ' **died**' : ''} | ${fmt(r.cpuPct)} | ${fmt(r.cpuPerCall, 3)} | ${fmt(r.rssMb)} | ${fmt(r.lossPct, 3)} | ${fmt(r.deliveryPct, 1)} | ` +
        `${c ? `${fmt(c.p50)} / ${fmt(c.p99)}` : 'n/a'} | ${c ? fmt(c.p99 - 20) : 'n/a'} | ${j && j.mean !== null ? `${fmt(j.mean, 2)} / ${fmt(j.p99, 2)}` : '–'} | ${fmt(r.uacCpuPct)} | ${r.notes.join('; ')} |`,
    )
  }
  return out.join('\n')
}

const clean = (r) => r.ok === r.n && r.lossPct !== null && r.lossPct < 0.1 && r.deliveryPct >= 99.5

function verdict(rows) {
  const ours = rows.filter((r) => r.uaName === 'ours' && r.ok)
  if (!ours.length) return []
  const big = ours.reduce((a, b) => (b.n > a.n ? b : a))
  const good = ours.filter(clean).reduce((a, b) => (!a || b.n > a.n ? b : a), null)
  const pj = rows.filter((r) => r.uaName === 'pjsua2' && r.ok > 0 && r.cpuPerCall).reduce((a, b) => (!a || b.ok > a.ok ? b : a), null)
  const ref = PJSIP_REBUILT_PER_CALL
  const lines = [`Targets (issue), for sip-native; "clean" = every call up for the whole window, loss < 0.1 % and delivery ≥ 99.5 % (no stream slowed down or stalled):`, '']
  lines.push(`- largest clean N: ${good ? good.n : 'none'}; 2,000 calls clean: ${big.n >= 2000 && clean(big) ? 'met' : 'not met'}`)
  lines.push(`- at N = ${big.n}: ${big.ok}/${big.n} calls up, loss ${fmt(big.lossPct, 3)} %, delivery ${fmt(big.deliveryPct, 1)} %` + (big.clock ? `, send interval p99 ${fmt(big.clock.p99)} ms (target within 2 ms of 20: ${Math.abs(big.clock.p99 - 20) < 2 ? 'met' : 'not met'}; 100.0 = the histogram's top bucket, ≥ 100 ms)` : ''))
  for (const r of ours.filter((x) => x.clock && clean(x))) {
    lines.push(`- N = ${r.n} (clean): send interval p99 ${fmt(r.clock.p99)} ms: ${Math.abs(r.clock.p99 - 20) < 2 ? 'within' : 'not within'} 2 ms of 20`)
  }
  if (good) {
    lines.push(
      `- CPU per call under a fifth of PJSIP's (${fmt(ref / 5, 3)} %/call): ${fmt(good.cpuPerCall, 3)} %/call at N = ${good.n} (largest clean N) vs PJSIP rebuilt ${ref} %/call (200 uac_pcap calls at 53.0 %, ../shared/anchors.md; the wheel cannot hold more than 4 calls), ` +
        `ratio ${fmt(good.cpuPerCall / ref, 3)}: ${good.cpuPerCall < ref / 5 ? 'met' : 'not met'}` +
        (pj ? `; pjsua2 wheel in this run: ${fmt(pj.cpuPerCall, 3)} %/call at N = ${pj.ok}` : ''),
    )
  }
  lines.push('- CPU per call of a run that is not clean is not comparable: the UA did less work than due (delivery < 100 %).')
  return lines
}

async function main() {
  fs.mkdirSync(RUNS_DIR, { recursive: true })
  const started = new Date()
  const rows = []
  let idx = 0
  const native = process.env.NAPI_RS_NATIVE_LIBRARY_PATH || '(default: the repo root .node)'
  for (const ua of UAS) {
    for (const n of ua.ns) {
      process.stderr.write(`[media] ${ua.label} / ${n} calls, hold ${HOLD_S} s ... `)
      const row = await oneRun(ua, n, idx++)
      process.stderr.write(
        `${row.status}: ok ${row.ok ?? '–'} cpu ${fmt(row.cpuPct)}% rss ${fmt(row.rssMb)} MB loss ${fmt(row.lossPct, 3)}% delivery ${fmt(row.deliveryPct)}% clock ${row.clock ? `${row.clock.p50}/${row.clock.p99}` : 'n/a'}${row.notes.length ? ` (${row.notes.join('; ')})` : ''}\n`,
      )
      rows.push(row)
      await sleep(1000)
    }
  }
  const md = [
    `# sip-native media bench (${QUICK ? 'quick' : 'full'})`,
    '',
    `${started.toISOString()}, ${os.cpus().length} cores, Node ${process.version}, addon ${native}. ` +
      `N concurrent G.711 calls placed at ${CPS} cps by a sip-native UAC process (bench/media_uac.js, 1000 Hz tone each way it sends), ` +
      `answered by the UA under test playing a 440 Hz tone on every call (bench/media_uas.js; bench/pjsua2_uas.py --tone 440: pjsua2 wheel, null sound device kept open, ToneGenerator per call); ` +
      `all calls held ${HOLD_S} s. Both processes share the 2 cores${DRIVER_NICE ? `; the driver runs at nice ${DRIVER_NICE}` : ''}.`,
    '',
    'CPU % = UA utime+stime ÷ wall time of the hold window (all calls up; 100 % = one core); peak RSS = VmHWM at the end of the window; ' +
      'loss % = packets lost ÷ expected (RTP sequence numbers) of the UA→UAC streams over the window, summed over calls; delivery % = packets received ÷ (50 pps × window × calls); ' +
      'send interval = the UA\'s mediaClock() tick intervals (p50/p99 since the UA started, ramp included; 0.1 ms buckets; n/a for PJSIP); ' +
      'UAC jitter = RFC 3550 interarrival jitter of the UA\'s streams measured by the UAC at the end of the window (an independent view of send pacing plus loopback/scheduling); ' +
      'driver CPU % = the UAC process over the same window. The pjsua2 wheel holds at most 4 calls (PJSUA_MAX_CALLS = 4, 486 beyond); ' +
      `reference for PJSIP at scale: pjsua2 rebuilt carried 200 media calls at 53.0 % of a core = ${PJSIP_REBUILT_PER_CALL} %/call (uac_pcap, ../shared/anchors.md).`,
    '',
    table(rows),
    '',
    ...verdict(rows),
    '',
    `Per-run logs: \`${path.relative(ROOT, RUNS_DIR)}/media-<ua>-<N>/\` (uas.log, uac.log). Commands per run are in media-latest.json (\`cmd\`).`,
    '',
  ].join('\n')
  writeReport(OUT, md, rows, 'media')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
