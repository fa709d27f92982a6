// The child processes of the node:test suites and what they need from the host: every peer
// (sipp, Kamailio, baresip, pjsua2; drivers in __test__/peers/) runs as its own process group on
// 127.0.0.1 with free ports, is killed when its test ends (the drivers take `t`) and, at the
// latest, when this Node process exits. Also: which peers are installed (requirePeer).
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const dgram = require('node:dgram')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { sleep, until } = require('./wait')

const HOST = '127.0.0.1'

// ---------------------------------------------------------------------------------------------
// process bookkeeping

const live = new Set() // ChildProcess objects started by the drivers (each a process group leader)

const hasExited = (child) => child.exitCode !== null || child.signalCode !== null

function killGroup(child, signal) {
  if (!child || hasExited(child)) return
  try {
    process.kill(-child.pid, signal) // the whole group: kamailio forks its workers
  } catch {
    try {
      child.kill(signal)
    } catch {}
  }
}

process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL')
})

/** Registers a child spawned with `detached: true` (its own group) to be killed at exit. */
function track(child) {
  live.add(child)
  child.on('exit', () => live.delete(child))
  return child
}

/** Resolves when `child` has exited ({ code, signal }), immediately if it already has. */
function exited(child) {
  if (hasExited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function terminate(child, graceMs = 2000) {
  if (hasExited(child)) return exited(child)
  killGroup(child, 'SIGTERM')
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs)
  const r = await exited(child)
  clearTimeout(timer)
  killGroup(child, 'SIGKILL') // stray workers of the group, if any
  return r
}

// ---------------------------------------------------------------------------------------------
// files and binaries

function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sip-native-${prefix}-`))
}

/** The file's text, or '' when it does not exist (yet). */
function readIfExists(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

function which(bin) {
  for (const dir of (process.env.PATH || '').split(path.delimiter).concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue
    const p = path.join(dir, bin)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {}
  }
  return null
}

// ---------------------------------------------------------------------------------------------
// ports

/** A UDP port on `host` (default 127.0.0.1; '::1' for IPv6) that was free a moment ago. */
function freePort(host = HOST) {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    s.once('error', reject)
    s.bind(0, host, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for stream listeners). */
function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, HOST, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether some process has a UDP socket bound to `port` (Linux /proc). */
function udpBound(port) {
  const hex = ':' + port.toString(16).toUpperCase().padStart(4, '0')
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    const lines = readIfExists(f).split('\n').slice(1)
    for (const l of lines) {
      const local = l.trim().split(/\s+/)[1]
      if (local && local.endsWith(hex)) return true
    }
  }
  return false
}

/** Whether some process listens on TCP port `port` (Linux /proc; state 0A = LISTEN). */
function tcpListening(port) {
  const hex = ':' + port.toString(16).toUpperCase().padStart(4, '0')
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const l of readIfExists(f).split('\n').slice(1)) {
      const cols = l.trim().split(/\s+/)
      if (cols[1] && cols[1].endsWith(hex) && cols[3] === '0A') return true
    }
  }
  return false
}

/** Resolves once `port` listens for TCP (or `child` has exited: its caller reports that). */
async function waitTcpListening(port, child, timeoutMs = 5000) {
  if (!fs.existsSync('/proc/net/tcp')) return sleep(300)
  await until(() => tcpListening(port) || hasExited(child), timeoutMs, `a process listening on TCP port ${port}`)
}

/** Resolves once `port` is bound (or `child` has exited: its caller reports that). */
async function waitUdpBound(port, child, timeoutMs = 5000) {
  // without /proc there is nothing to observe: give the peer a moment
  if (!fs.existsSync('/proc/net/udp')) return sleep(300)
  await until(() => udpBound(port) || hasExited(child), timeoutMs, `a process bound UDP port ${port}`)
}

/** How many file descriptors this process has open (Linux /proc; null elsewhere): a leak check. */
function openFds() {
  try {
    return fs.readdirSync('/proc/self/fd').length
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// which peers are installed

// Each entry says why its peer cannot run here (null when it can). The drivers are required only
// when asked: they require this module.
const PEERS = {
  sipp: () => (which('sipp') ? null : 'install with: apt-get install sip-tester'),
  kamailio: () =>
    which('kamailio') && which('sqlite3') && require('../peers/kamailio').kamailioModuleDir()
      ? null
      : 'install with: apt-get install kamailio kamailio-sqlite-modules sqlite3',
  // the TLS and WebSocket listeners of startKamailio({ transports })
  'kamailio-tls': () => kamailioModules(['tls.so'], 'kamailio-tls-modules'),
  'kamailio-websocket': () => kamailioModules(['websocket.so', 'xhttp.so'], 'kamailio-websocket-modules'),
  openssl: () => (which('openssl') ? null : 'install with: apt-get install openssl'),
  baresip: () => {
    if (!which('baresip')) return 'install with: apt-get install baresip-core'
    const missing = require('../peers/baresip').missingBaresipModules()
    return missing.length ? `baresip modules missing: ${missing.join(', ')}` : null
  },
  pjsua2: () =>
    spawnSync('python3', ['-c', 'import pjsua2'], { stdio: 'ignore', timeout: 20000 }).status === 0
      ? null
      : 'install with: pip install pjsua2-python==2.15.1.post1',
  dnsmasq: () => (which('dnsmasq') ? null : 'install with: apt-get install dnsmasq-base'),
  tsc: () =>
    fs.existsSync(path.join(__dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'))
      ? null
      : 'install with: npm ci (devDependency typescript)',
}

function kamailioModules(files, pkg) {
  const dir = PEERS.kamailio() ? null : require('../peers/kamailio').kamailioModuleDir()
  return dir && files.every((f) => fs.existsSync(path.join(dir, f))) ? null : `install with: apt-get install kamailio ${pkg}`
}

/**
 * True when the peer is available. Otherwise: under CI=true throws (the test fails); elsewhere
 * skips the test with the reason and returns false. Usage: `if (!requirePeer('sipp', t)) return`.
 */
function requirePeer(name, t) {
  const absent = PEERS[name]
  if (!absent) throw new Error(`requirePeer: unknown peer ${name}`)
  const why = absent()
  if (!why) return true
  const msg = `${name} is not available; ${why}`
  if (process.env.CI === 'true') throw new Error(msg)
  if (t && typeof t.skip === 'function') t.skip(msg)
  return false
}

/**
 * Starts a peer as its own process group with its output kept (the last 256 KiB), a hard
 * SIGKILL after `timeoutMs`, and a stop when the test ends (pass `t`).
 * @returns {{ child, log: () => string, stop: () => Promise<void>, kill: () => Promise<void> }}
 */
function spawnPeer(cmd, args, { cwd, t, timeoutMs = 120000, graceMs = 3000 } = {}) {
  const child = track(spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
  let log = ''
  const onData = (d) => {
    log = (log + d).slice(-262144)
  }
  child.stdout.setEncoding('utf8').on('data', onData)
  child.stderr.setEncoding('utf8').on('data', onData)
  child.on('error', (e) => (log += `\nspawn error: ${e.message}`))
  const hardKill = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs)
  hardKill.unref()
  const stop = async () => {
    clearTimeout(hardKill)
    await terminate(child, graceMs)
  }
  const kill = async () => {
    clearTimeout(hardKill)
    killGroup(child, 'SIGKILL')
    await exited(child)
  }
  if (t && typeof t.after === 'function') t.after(stop)
  return { child, log: () => log, stop, kill }
}

module.exports = {
  HOST,
  spawnPeer,
  hasExited,
  killGroup,
  track,
  exited,
  terminate,
  tmpDir,
  readIfExists,
  which,
  freePort,
  freeTcpPort,
  openFds,
  waitUdpBound,
  waitTcpListening,
  requirePeer,
}
