// Bounded cargo-fuzz run of every target in fuzz/ (step of `npm test`): one `cargo fuzz build`
// for all targets, then each target for FUZZ_SECONDS (default 6) from its committed seeds in
// fuzz/corpus/<target>/ (the corpus growth stays there, git-ignored). Prints inputs tried per
// target; exits non-zero on any crash, leak, timeout or OOM (libFuzzer leaves the input in
// fuzz/artifacts/<target>/). Without cargo-fuzz or nightly it skips, except under CI=true.
// Long form: FUZZ_SECONDS=300 node scripts/fuzz.js [target...]
// `--build` only builds and `--run` only runs (npm test builds in the background, niced, while
// the node suites mostly wait on the network, then runs the targets after them).
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const fuzzDir = path.join(root, 'fuzz')
const seconds = Number(process.env.FUZZ_SECONDS || 6)
const ci = process.env.CI === 'true'

function has(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: fuzzDir, encoding: 'utf8' })
  return r.status === 0
}

if (!has('cargo', ['+nightly', 'fuzz', '--version'])) {
  const how = 'install with: rustup toolchain install nightly && cargo install cargo-fuzz --locked'
  if (ci) {
    console.error(`fuzz: cargo-fuzz or the nightly toolchain is missing (${how})`)
    process.exit(1)
  }
  console.log(`fuzz: skipped, cargo-fuzz or the nightly toolchain is missing (${how})`)
  process.exit(0)
}

const all = fs
  .readdirSync(path.join(fuzzDir, 'fuzz_targets'))
  .filter((f) => f.endsWith('.rs'))
  .map((f) => f.slice(0, -3))
  .sort()
const args = process.argv.slice(2)
const buildOnly = args.includes('--build')
const runOnly = args.includes('--run')
const only = args.filter((a) => !a.startsWith('--'))
const targets = only.length ? all.filter((t) => only.includes(t)) : all

const started = Date.now()
if (!runOnly) {
  const build = spawnSync('cargo', ['+nightly', 'fuzz', 'build', '-O'], { cwd: fuzzDir, stdio: 'inherit' })
  if (build.status !== 0) process.exit(1)
  console.log(`fuzz: built ${all.length} targets in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  if (buildOnly) process.exit(0)
}

const binDir = path.join(fuzzDir, 'target', 'x86_64-unknown-linux-gnu', 'release')
let failed = false
const rows = []
for (const t of targets) {
  const corpus = path.join(fuzzDir, 'corpus', t)
  const artifacts = path.join(fuzzDir, 'artifacts', t) + path.sep
  fs.mkdirSync(artifacts, { recursive: true })
  const args = [
    corpus,
    `-max_total_time=${seconds}`,
    // SIP over TCP buffers up to 64 KiB per message; larger inputs test nothing more.
    '-max_len=65536',
    // one slow input (a parser gone quadratic) fails the run instead of hanging it
    '-timeout=5',
    '-rss_limit_mb=1024',
    `-artifact_prefix=${artifacts}`,
    '-print_final_stats=1',
  ]
  // the process itself is bounded too, in case libFuzzer's own limits fail to fire
  const r = spawnSync(path.join(binDir, t), args, {
    encoding: 'utf8',
    timeout: (seconds + 60) * 1000,
    maxBuffer: 64 * 1024 * 1024,
  })
  const out = `${r.stdout}${r.stderr}`
  const runs = /stat::number_of_executed_units:\s*(\d+)/.exec(out)
  const cov = /cov: (\d+)/g
  let last
  for (let m; (m = cov.exec(out)); ) last = m[1]
  const ok = r.status === 0
  rows.push({ target: t, inputs: runs ? Number(runs[1]) : 0, coverage: last ? Number(last) : 0, ok })
  if (!ok) {
    failed = true
    console.error(`fuzz: ${t} FAILED (status ${r.status}, signal ${r.signal})\n${out.split('\n').slice(-60).join('\n')}`)
  }
}
console.log(`fuzz: ${seconds} s per target`)
console.table(rows)
const total = rows.reduce((n, r) => n + r.inputs, 0)
console.log(`fuzz: ${total} inputs over ${rows.length} targets, ${((Date.now() - started) / 1000).toFixed(1)} s wall`)
process.exit(failed ? 1 : 0)
