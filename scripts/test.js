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

// bounded cargo-fuzz run of every parser of network bytes (skips without cargo-fuzz, not in CI);
// not when only some test files are asked for
if (process.env.SIP_NATIVE_SKIP_FUZZ !== '1' && process.argv.length <= 2) {
  run(process.execPath, [path.join('scripts', 'fuzz.js')])
}

const testDir = path.join(root, '__test__')
const only = process.argv.slice(2)
const files = fs
  .readdirSync(testDir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => path.join('__test__', f))
// node 20 does not expand globs itself: pass the files explicitly
run(process.execPath, ['--test', '--test-concurrency=1', ...files])

process.exit(failed ? 1 : 0)
