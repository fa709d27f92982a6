// Which prebuilt binary this host needs, and the one error thrown when none loads: it names the
// platform and says what to do (lib/native.js throws it at `require('sip-native')` time).
'use strict'

const pkg = require('../package.json')

const ARCH = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }
const OS = { linux: 'linux', darwin: 'darwin', windows: 'win32', freebsd: 'freebsd' }

/** napi-rs's platform name of a Rust target triple: x86_64-unknown-linux-gnu -> linux-x64-gnu. */
function platformOfTriple(triple) {
  const [arch, , sys, abi] = triple.split('-')
  const os = OS[sys] || sys
  return [os, ARCH[arch] || arch, os === 'darwin' ? undefined : abi].filter(Boolean).join('-')
}

/** The platforms published with a prebuilt binary (package.json `napi.targets`). */
const prebuiltPlatforms = () => pkg.napi.targets.map(platformOfTriple)

/** This host's C library on Linux ('gnu' or 'musl'), as the package managers' `libc` field sees it. */
function hostLibc() {
  if (process.platform !== 'linux') return undefined
  try {
    process.report.excludeNetwork = true
    return process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'
  } catch {
    return 'gnu'
  }
}

/** { platform, arch, libc } of this process. */
const currentHost = () => ({ platform: process.platform, arch: process.arch, libc: hostLibc() })

/** The package name's platform suffix for a host: linux-x64-gnu, darwin-arm64, win32-x64-msvc. */
function platformOf({ platform, arch, libc }) {
  const abi = platform === 'linux' ? libc : platform === 'win32' ? 'msvc' : undefined
  return [platform, arch, abi].filter(Boolean).join('-')
}

const firstLine = (e) => String((e && e.message) || e).split('\n')[0]

/**
 * The error for "no binary loads here". `resolve(name)` and `load(name)` find and require the
 * per-platform package (parameters so that a test can describe another host).
 */
function noBinaryError({ host = currentHost(), resolve = require.resolve, load = require, loaderError } = {}) {
  const platform = platformOf(host)
  const hostText =
    `${host.platform}-${host.arch}` + (host.platform === 'linux' ? ` (${host.libc === 'musl' ? 'musl' : 'glibc'})` : '')
  const prebuilt = prebuiltPlatforms()
  const platformPkg = `${pkg.name}-${platform}`
  const fromSource =
    'build from source with Rust (https://rustup.rs): in a git checkout of sip-native run `npm install` ' +
    `(it builds the addon), then set NAPI_RS_NATIVE_LIBRARY_PATH to the built ${pkg.napi.binaryName}.${platform}.node.`
  const list = `Prebuilt binaries exist for ${prebuilt.join(', ')}.`
  let installed = null
  try {
    installed = resolve(`${platformPkg}/package.json`)
  } catch {}
  let lines
  if (!prebuilt.includes(platform)) {
    lines = [`sip-native: no prebuilt binary for ${hostText}.`, list, `To use sip-native here, ${fromSource}`]
  } else if (installed) {
    let why = firstLine(loaderError)
    try {
      load(platformPkg)
    } catch (e) {
      why = firstLine(e)
    }
    lines = [
      `sip-native: the prebuilt binary for ${hostText} does not load: ${why}`,
      `It comes from ${platformPkg} (${installed.replace(/[\\/]package\.json$/, '')}): delete node_modules and the lockfile and install again.`,
      `Or ${fromSource}`,
    ]
  } else {
    lines = [
      `sip-native: no prebuilt binary installed for ${hostText}: the optional dependency ${platformPkg} is missing.`,
      'Install sip-native with optional dependencies enabled (not with --omit=optional, --no-optional or pnpm --no-optional);',
      'if node_modules or the lockfile came from another platform, delete both and install again on this one.',
      list,
      `Or ${fromSource}`,
    ]
  }
  const message = lines.join('\n  ')
  const error = new Error(message)
  error.code = 'ERR_SIP_NATIVE_NO_BINARY'
  return error
}

module.exports = { platformOfTriple, prebuiltPlatforms, platformOf, currentHost, noBinaryError }
