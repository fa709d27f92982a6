// npm test: cargo fmt --check, clippy -D warnings and the Rust workspace tests, then the
// node:test suites in __test__/ (one file at a time: they start real SIP peers on loopback).
// Exits non-zero if any step fails.
'use strict'
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
let failed = false

function run(cmd, args) {
  const started = Date.now()
  console.log(`\n$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  if (r.error) console.error(`${cmd}: ${r.error.message}`)
  const ok = r.status === 0
  console.log(`${ok ? 'ok' : 'FAILED'}: ${cmd} (${secs} s)`)
  if (!ok) failed = true
}

// The bounded cargo-fuzz run of every parser of network bytes (skips without cargo-fuzz, except
// under CI=true), not when only some test files are asked for. Its build (minutes of CPU on a
// 2-core machine) runs from the start at the lowest priority: the node suites below spend most
// of their time waiting on sockets and timers, so it takes the idle CPU and adds little wall time.
const fuzz = process.env.SIP_NATIVE_SKIP_FUZZ !== '1' && process.argv.length <= 2
let fuzzBuild
if (fuzz) {
  const log = path.join(root, 'fuzz', 'build.log')
  const out = fs.openSync(log, 'w')
  const child = spawn('nice', ['-n', '19', process.execPath, path.join('scripts', 'fuzz.js'), '--build'], {
    cwd: root,
    stdio: ['ignore', out, out],
  })
  fuzzBuild = new Promise((resolve) => {
    child.on('error', (e) => resolve({ ok: false, why: e.message }))
    child.on('exit', (code) => resolve({ ok: code === 0, why: `exit ${code}` }))
  }).then((r) => ({ ...r, log }))
}

if (process.env.SIP_NATIVE_SKIP_CARGO_TEST !== '1') {
  // style and lints first: they are as much a part of the suite as the tests
  run('cargo', ['fmt', '--all', '--', '--check'])
  run('cargo', ['clippy', '--workspace', '--all-targets', '--', '-D', 'warnings'])
  run('cargo', ['test', '--workspace'])
}

const testDir = path.join(root, '__test__')
const only = process.argv.slice(2)
const files = fs
  .readdirSync(testDir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => path.join('__test__', f))
// The secrets check: every service of every test file logs at trace level (SIP messages too)
// and writes its events into a capture dir, grepped at the end for the tests' passwords and
// digest responses. SIP_NATIVE_SKIP_SECRETS=1 runs the tests without it.
const capture = process.env.SIP_NATIVE_SKIP_SECRETS === '1' ? null : fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'sip-native-capture-'))
const preload = capture ? ['--require', path.join(root, '__test__', 'helpers', 'capture-secrets.js')] : []
if (capture) process.env.SIP_NATIVE_CAPTURE_DIR = capture
// node 20 does not expand globs itself: pass the files explicitly
run(process.execPath, [...preload, '--test', '--test-concurrency=1', ...files])
if (capture) {
  run(process.execPath, [path.join(root, 'scripts', 'check-secrets.js'), capture])
  fs.rmSync(capture, { recursive: true, force: true })
}

async function finish() {
  if (fuzzBuild) {
    const waited = Date.now()
    const b = await fuzzBuild
    const secs = ((Date.now() - waited) / 1000).toFixed(1)
    console.log(`\nfuzz build (background): ${b.ok ? 'ok' : 'FAILED'}, waited ${secs} s after the node suites`)
    if (!b.ok) {
      const text = fs.readFileSync(b.log, 'utf8')
      console.error(`fuzz build ${b.why}; the end of ${path.relative(root, b.log)}:\n${text.split('\n').slice(-40).join('\n')}`)
      failed = true
    } else {
      // a skip (no cargo-fuzz) prints its reason here, once
      const skipped = fs.readFileSync(b.log, 'utf8').match(/^fuzz: skipped.*$/m)
      if (skipped) console.log(skipped[0])
      else run(process.execPath, [path.join('scripts', 'fuzz.js'), '--run'])
    }
  }
  process.exit(failed ? 1 : 0)
}
finish()
