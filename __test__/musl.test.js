// The linux musl binary (what `npm install` picks on Alpine, e.g. node:22-alpine): built in this
// run with cargo-zigbuild, checked to link against musl's libc alone, resolved by musl's dynamic
// loader, and loaded under a musl-linked Node for a real call against sipp and the demo.
//
// On a glibc host the binary is cross-built (helpers/musl.js) and the musl Node is the one
// .ci/musl-node.sh fetched; inside an Alpine image (release.yml) this Node is the musl Node and
// the binary is the prebuilt artifact in the repo root (no Rust there).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer, track, exited, killGroup, tmpDir, freePort, waitUdpBound, hasExited, which } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { ROOT, muslTarget, isMuslProcess, missingBuildTools, buildMusl, findMuslNode, readElf } = require('./helpers/musl')

const TARGET = muslTarget()
const CI = process.env.CI === 'true'
const LINUX = { skip: process.platform !== 'linux' || !TARGET ? 'the musl binaries are linux x64/arm64' : false }

/** Fails under CI=true, else skips; returns false so that the test returns. */
function need(t, what, why) {
  const msg = `${what}: ${why}`
  if (CI) throw new Error(msg)
  t.skip(msg)
  return false
}

let built = null // the build's promise: run once, its result (or failure) shared by every test
async function muslAddon(t) {
  const prebuilt = path.join(ROOT, `sip-native.${TARGET.platform}.node`)
  if (isMuslProcess()) {
    // Alpine CI: the artifact of the build job; there is no Rust toolchain in the image
    if (!fs.existsSync(prebuilt)) return need(t, 'musl addon', `${prebuilt} is missing (download the build artifact)`) && null
    return prebuilt
  }
  const why = missingBuildTools(TARGET)
  if (why) return need(t, 'musl cross build', why) && null
  built = built || buildMusl({ log: (l) => t.diagnostic(l) })
  return built
}

test('linux musl build: an ELF shared object that needs musl libc only', LINUX, async (t) => {
  const file = await muslAddon(t)
  if (!file) return
  const elf = readElf(file)
  assert.equal(elf.elfClass, 64)
  assert.equal(elf.type, 3, 'ET_DYN (a shared object)')
  assert.equal(elf.machine, TARGET.machine, `e_machine of ${TARGET.triple}`)
  assert.equal(elf.interp, null, 'a shared object has no program interpreter')
  // musl's one library: `libc.so` when linked by zig, `libc.musl-<arch>.so.1` by Alpine's gcc
  assert.deepEqual(elf.needed.filter((n) => !/^libc\.(so|musl-[a-z0-9_]+\.so\.1)$/.test(n)), [], `NEEDED: ${elf.needed}`)
  assert.ok(elf.needed.length >= 1, `NEEDED lists libc: ${elf.needed}`)
  assert.ok(!/GLIBC_/.test(elf.dynstr), 'no glibc symbol versions')
  assert.ok(!/libgcc_s|libstdc\+\+|libpthread|libdl/.test(elf.dynstr), 'no libgcc_s/libstdc++ (nothing Alpine lacks by default)')
})

test("musl's loader resolves the musl build: only napi_* symbols left to Node", LINUX, async (t) => {
  const file = await muslAddon(t)
  if (!file) return
  if (!fs.existsSync(TARGET.loader)) return need(t, "musl's loader", `${TARGET.loader} is missing; install with: apt-get install musl`)
  // `ld-musl --list` is musl's ldd: it loads the object, resolves every symbol and prints the
  // ones it cannot find (exit 127 then): here only what Node exports to addons
  const r = spawnSync(TARGET.loader, ['--list', file], { encoding: 'utf8', timeout: 30000 })
  const text = `${r.stdout}\n${r.stderr}`
  assert.match(r.stdout, /libc\.(so|musl-\w+\.so\.1) => \/lib\/ld-musl-/, `libc resolved to the musl loader:\n${text}`)
  const missing = [...text.matchAll(/Error relocating [^:]+: (\S+): symbol not found/g)].map((m) => m[1])
  assert.ok(missing.length > 0, `the napi_* symbols are Node's, so the loader reports them missing:\n${text}`)
  assert.deepEqual(missing.filter((s) => !/^napi_/.test(s)), [], `only napi_* symbols unresolved:\n${text}`)
  assert.ok(!/not found|Error loading/i.test(text.replace(/Error relocating [^\n]*symbol not found/g, '')), `nothing else failed:\n${text}`)
})

/** A musl Node to run scripts in, or null (the test is skipped, or fails under CI). */
function muslNode(t) {
  const found = findMuslNode()
  if (found.node) {
    t.diagnostic(`musl Node ${found.version}: ${found.how}`)
    return found
  }
  return need(t, 'musl Node', found.reason) && null
}

/**
 * Runs `script args` under the musl Node; resolves to { code, signal, out, report } where
 * `report` is what fixtures/musl-report.js saw loaded at exit. The promise has the `child`.
 * `addon`: the file binding.js is to load (NAPI_RS_NATIVE_LIBRARY_PATH), none = its own choice.
 * `wrap`: a command prefix (see asMuslHost).
 */
function runMusl(node, script, args, { addon, env = {}, cwd = ROOT, timeoutMs = 30000, wrap = [] } = {}) {
  const fullEnv = { ...process.env, ...env }
  if (addon) fullEnv.NAPI_RS_NATIVE_LIBRARY_PATH = addon
  else delete fullEnv.NAPI_RS_NATIVE_LIBRARY_PATH
  const preload = path.join(__dirname, 'fixtures', 'musl-report.js')
  const argv = [...wrap, node.command, ...node.args, '--require', preload, script, ...args]
  const child = track(spawn(argv[0], argv.slice(1), { cwd, env: fullEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (out += d))
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs)
  const done = exited(child).then((r) => {
    clearTimeout(timer)
    const line = out.split('\n').find((l) => l.startsWith('musl-report '))
    return { ...r, out, report: line ? JSON.parse(line.slice('musl-report '.length)) : null }
  })
  done.child = child
  return done
}

function sameFile(a, b) {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b)
  } catch {
    return false
  }
}

/** The process ran on musl with `file` loaded, and neither glibc nor the glibc addon. */
function assertLoadedOnMusl(r, file) {
  assert.ok(r.report, `musl-report line:\n${r.out}`)
  const so = r.report.sharedObjects
  assert.equal(r.report.glibc, null, 'the process runs on musl, no glibc')
  assert.ok(so.some((o) => /ld-musl|libc\.musl|linux-musl\/libc\.so/.test(o)), `musl libc loaded: ${so}`)
  assert.ok(so.some((o) => sameFile(path.resolve(ROOT, o), file)), `the musl addon ${file} is loaded: ${so}`)
  assert.ok(!so.some((o) => /-gnu\.node|libc\.so\.6/.test(o)), `no glibc addon or libc: ${so}`)
}

test('under a musl-linked Node: the musl addon loads and calls sipp', LINUX, async (t) => {
  const file = await muslAddon(t)
  if (!file) return
  const node = muslNode(t)
  if (!node) return
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 20000 })
  const r = await runMusl(node, path.join(__dirname, 'fixtures', 'musl-call.js'), [String(uas.port)], { addon: file })
  assert.equal(r.code, 0, `musl-call.js under ${node.how}: ${r.signal || ''}\n${r.out}`)
  assertLoadedOnMusl(r, file)
  const result = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{"states"')))
  assert.deepEqual(result.states.filter((s) => s === 'confirmed' || s === 'disconnected'), ['confirmed', 'disconnected'], `states: ${result.states}`)
  const s = await uas.done
  assert.equal(s.code, 0, 'sipp UAS got INVITE, ACK and BYE: ' + describeSipp(s))
  assert.match(s.messages, /^BYE sip:/m)
})

test('under a musl-linked Node: the demo (two UAs, audio, DTMF) passes', LINUX, async (t) => {
  const file = await muslAddon(t)
  if (!file) return
  const node = muslNode(t)
  if (!node) return
  const r = await runMusl(node, path.join(ROOT, 'examples', 'demo.js'), [], { addon: file, timeoutMs: 40000 })
  assert.equal(r.code, 0, `demo under ${node.how}: ${r.signal || ''}\n${r.out}`)
  assertLoadedOnMusl(r, file)
  assert.match(r.out, /DTMF received by B: '42#'/, `the digits arrived:\n${r.out}`)
  assert.match(r.out, /recording contains the prompt: 440 Hz ✓ 660 Hz ✓ 880 Hz ✓/, r.out)
})

test('under a musl-linked Node: examples/docker/service.js answers a call from sipp', LINUX, async (t) => {
  const file = await muslAddon(t)
  if (!file) return
  const node = muslNode(t)
  if (!node) return
  if (!requirePeer('sipp', t)) return
  // `require('sip-native')` as in the image, resolved to this checkout through NODE_PATH
  const modules = path.join(tmpDir('musl-service'), 'node_modules')
  fs.mkdirSync(modules)
  fs.symlinkSync(ROOT, path.join(modules, 'sip-native'), 'dir')
  t.after(() => fs.rmSync(path.dirname(modules), { recursive: true, force: true }))
  const [sipPort, deadPbx] = [await freePort(), await freePort()]
  const rtpMin = 40000 + Math.floor(Math.random() * 20000)
  const env = {
    NODE_PATH: modules,
    SIP_SERVER: '127.0.0.1',
    SIP_PORT: String(deadPbx), // nobody there: registration retries in the background, calls still come in
    SIP_EXTENSION: '7779',
    SIP_PASSWORD: 'secret',
    SIP_LOCAL_PORT: String(sipPort),
    SIP_RTP_MIN: String(rtpMin),
    SIP_RTP_MAX: String(rtpMin + 100),
  }
  const service = runMusl(node, path.join(ROOT, 'examples', 'docker', 'service.js'), [], { addon: file, env })
  await waitUdpBound(sipPort, service.child, 10000)
  if (hasExited(service.child)) assert.fail(`service.js exited at start:\n${(await service).out}`)
  const uac = await startSipp({ scenario: 'uac_call', remote: `127.0.0.1:${sipPort}`, t, durationMs: 1000 })
  const s = await uac.done
  killGroup(service.child, 'SIGTERM')
  const r = await service
  assert.equal(s.code, 0, 'sipp UAC: INVITE answered 200, ACK, BYE answered: ' + describeSipp(s) + '\n--- service:\n' + r.out)
  assert.match(r.out, /incoming call \S+ from sip:/, r.out)
  assert.match(r.out, /call \S+ confirmed/, r.out)
  assert.match(r.out, /SIGTERM: un-registering and stopping/, r.out)
  assert.equal(r.code, 0, `service.js exits 0 after SIGTERM:\n${r.out}`)
  assertLoadedOnMusl(r, file)
})

/**
 * What makes binding.js see this host as musl, as it sees Alpine: there `/usr/bin/ldd` is musl's
 * (a script that runs ld-musl --list), here glibc's. Inside Alpine nothing is needed; on a glibc
 * host a private mount namespace (root, `unshare -m`) bind-mounts such a script over
 * /usr/bin/ldd for the one child. Returns the command prefix, or null with `reason`.
 */
function asMuslHost(dir) {
  if (isMuslProcess()) return { wrap: [] }
  if (process.getuid() !== 0 || !which('unshare') || !fs.existsSync('/usr/bin/ldd'))
    return { wrap: null, reason: 'needs root and unshare (util-linux) to show binding.js a musl /usr/bin/ldd' }
  const ldd = path.join(dir, 'ldd')
  fs.writeFileSync(ldd, `#!/bin/sh\n# musl libc (${TARGET.loader})\nexec ${TARGET.loader} --list "$@"\n`, { mode: 0o755 })
  return { wrap: ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /usr/bin/ldd && exec "$@"', ldd] }
}

/** `npm <args>` in `cwd`; throws with npm's output when it fails. */
function npm(cwd, args) {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 120000 })
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout.trim()
}

test('consumer install on musl: binding.js picks sip-native-<platform>-musl, which calls sipp', LINUX, async (t) => {
  const file = await muslAddon(t)
  if (!file) return
  const node = muslNode(t)
  if (!node) return
  if (!requirePeer('sipp', t)) return
  const dir = tmpDir('musl-consumer')
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const host = asMuslHost(dir)
  if (!host.wrap) return need(t, 'musl host view', host.reason)
  // the two tarballs the release publishes for this platform: the root package (no scripts run,
  // so no `prepare` build either) and npm/<platform>/ with the binary built above
  const platDir = path.join(dir, 'platform')
  fs.mkdirSync(platDir)
  fs.copyFileSync(path.join(ROOT, 'npm', TARGET.platform, 'package.json'), path.join(platDir, 'package.json'))
  fs.copyFileSync(file, path.join(platDir, path.basename(file)))
  const platTgz = path.join(dir, npm(platDir, ['pack', '--silent', '--pack-destination', dir]).split('\n').pop())
  const rootTgz = path.join(dir, npm(ROOT, ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir]).split('\n').pop())
  const app = path.join(dir, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  // on a glibc host npm refuses a package whose `libc` is musl (EBADPLATFORM) unless forced
  const force = isMuslProcess() ? [] : ['--force']
  npm(app, ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--offline', ...force, rootTgz, platTgz])
  const installed = path.join(app, 'node_modules', `sip-native-${TARGET.platform}`, path.basename(file))
  assert.ok(fs.existsSync(installed), `npm installed ${installed}`)

  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 20000 })
  const r = await runMusl(node, path.join(__dirname, 'fixtures', 'musl-call.js'), [String(uas.port)], {
    cwd: app,
    env: { SIP_NATIVE_FROM: app },
    wrap: host.wrap,
  })
  assert.equal(r.code, 0, `musl-call.js from the consumer project under ${node.how}: ${r.signal || ''}\n${r.out}`)
  assertLoadedOnMusl(r, installed)
  const s = await uas.done
  assert.equal(s.code, 0, 'sipp UAS got INVITE, ACK and BYE: ' + describeSipp(s))
})
