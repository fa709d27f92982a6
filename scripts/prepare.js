// npm "prepare" for a git checkout: `npm install` (or `npm ci`) in this repository builds the
// addon from source with cargo when no prebuilt binary loads, so that `npm install && npm run demo`
// works on a fresh clone with Rust installed. Not part of the published package: a consumer
// installing from a registry gets the per-platform package and never runs this.
//
// npm also runs prepare before `npm pack` and `npm publish`; there it does nothing (the release
// flow packs binaries built by CI, see .github/workflows/release.yml).
//   SIP_NATIVE_FORCE_BUILD=1  build even when a binary loads (.ci/run: always test a fresh build)
//   SIP_NATIVE_SKIP_BUILD=1   never build
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

function skip(why) {
  console.log(`sip-native prepare: ${why}; not building`)
  process.exit(0)
}

if (['pack', 'publish'].includes(process.env.npm_command)) skip(`npm ${process.env.npm_command}`)
if (process.env.SIP_NATIVE_SKIP_BUILD === '1') skip('SIP_NATIVE_SKIP_BUILD=1')
if (!fs.existsSync(path.join(root, 'Cargo.toml'))) skip('no Cargo.toml (not a source checkout)')

if (process.env.SIP_NATIVE_FORCE_BUILD !== '1') {
  // in a child process: a binary loaded here could not be replaced safely by the build
  const probe = spawnSync(process.execPath, ['-e', "require('./lib/native.js')"], { cwd: root, encoding: 'utf8' })
  if (probe.status === 0) skip('a binary for this platform loads')
}

if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error(
    `sip-native prepare: no binary loads for ${process.platform}-${process.arch} and there is no Rust ` +
      'toolchain to build one: install Rust (https://rustup.rs) and run npm install again ' +
      '(or SIP_NATIVE_SKIP_BUILD=1 npm install to install without the addon).',
  )
  process.exit(1)
}
console.log('sip-native prepare: building the native addon from source (npm run build)')
// npm_execpath: the package manager running this script (npm or pnpm), which runs `build` too
const pm = process.env.npm_execpath
const build = pm
  ? spawnSync(process.execPath, [pm, 'run', 'build'], { cwd: root, stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
process.exit(build.status ?? 1)
