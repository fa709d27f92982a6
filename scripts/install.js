// npm "install" hook: use a prebuilt binary when one matches this platform, otherwise build the
// addon from source with cargo (needs a Rust toolchain, https://rustup.rs).
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')

function prebuiltLoads() {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

if (process.env.SIP_NATIVE_SKIP_BUILD === '1') process.exit(0)
if (!process.env.SIP_NATIVE_FORCE_BUILD && prebuiltLoads()) process.exit(0)

const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
if (cargo.status !== 0) {
  console.error(
    'sip-native: no prebuilt binary for ' + process.platform + '-' + process.arch +
      ' and no Rust toolchain to build one. Install Rust (https://rustup.rs) and run npm install again.',
  )
  process.exit(1)
}
console.log('sip-native: building the native addon from source (cargo build --release)...')
const cliPkg = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
const cliBin = require(cliPkg).bin
const napi = path.join(path.dirname(cliPkg), typeof cliBin === 'string' ? cliBin : cliBin.napi)
const build = spawnSync(
  process.execPath,
  [napi, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'],
  { cwd: root, stdio: 'inherit' },
)
process.exit(build.status ?? 1)
