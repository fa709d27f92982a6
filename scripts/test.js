// npm test: cargo fmt --check, clippy -D warnings and the Rust workspace tests, then the
// node:test suites in __test__/ (one file at a time: they start real SIP peers on loopback).
// Exits non-zero if any step fails.
'use strict'
const { spawnSync } = require('node:child_process')
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

process.exit(failed ? 1 : 0)
