// `npm install sip-native` as a consumer does it, on this machine: the release flow publishes the
// root package and the per-platform packages to a local registry (Verdaccio on 127.0.0.1, no
// uplink: helpers/release.js), then fresh projects with no Rust on PATH install sip-native from
// it with npm, pnpm and `npm install --ignore-scripts`, and each places a real call to sipp from
// CommonJS, from ESM (`import { SipService } from 'sip-native'`) and from TypeScript compiled
// with `moduleResolution` node16 and bundler. Installing without optional dependencies gives the
// one clear error at require time; `--libc=musl` picks the musl package.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer, tmpDir, which } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const rel = require('./helpers/release')
const { buildMusl, missingBuildTools } = require('./helpers/musl')

const { ROOT } = rel
const PKG = require('../package.json')
const HOST_PACKAGE = `${PKG.name}-linux-x64-gnu`
const MUSL_PACKAGE = `${PKG.name}-linux-x64-musl`
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
// The musl binary is cross-built in this run (helpers/musl.js, cargo-zigbuild) and published too;
// under CI a missing build tool fails the musl install test instead of skipping it.
const MUSL_REQUIRED = process.env.CI === 'true'

const cleanups = []
test.after(async () => {
  for (const f of cleanups.reverse()) await f()
})

let ready
/** Tools, registry and the published release, once for the whole file. */
function setup() {
  ready ??= (async () => {
    const started = Date.now()
    const tools = await rel.ensureTools()
    const registry = await rel.startRegistry(tools)
    cleanups.push(registry.stop)
    const release = await rel.stageRelease()
    cleanups.push(() => fs.rmSync(release.dir, { recursive: true, force: true }))
    // build (or bring up to date) the musl binary of this commit, so that its package is real
    const muslTools = missingBuildTools()
    if (!muslTools) await buildMusl()
    const musl = rel.publishMuslIfBuilt(release)
    if (muslTools && !musl.published) musl.reason = `${musl.reason} (cannot build it: ${muslTools})`
    const published = await rel.publishRelease(release, registry)
    return { tools, registry, release, musl, published, setupMs: Date.now() - started }
  })()
  return ready
}

test('no binary for a platform: one error naming it, the prebuilt list and the way to build from source', () => {
  const { noBinaryError } = require('../lib/platform')
  const notInstalled = () => {
    throw Object.assign(new Error('not found'), { code: 'MODULE_NOT_FOUND' })
  }
  const freebsd = noBinaryError({ host: { platform: 'freebsd', arch: 'x64' }, resolve: notInstalled })
  assert.equal(freebsd.code, 'ERR_SIP_NATIVE_NO_BINARY')
  assert.match(freebsd.message, /^sip-native: no prebuilt binary for freebsd-x64\.\n  Prebuilt binaries exist for linux-x64-gnu, /)
  assert.match(freebsd.message, /To use sip-native here, build from source with Rust .*sip-native\.freebsd-x64\.node\.$/)
  // installed, but the loader refuses it (an older glibc, say): the reason is in the message
  const broken = noBinaryError({
    host: { platform: 'linux', arch: 'arm64', libc: 'gnu' },
    resolve: () => '/app/node_modules/sip-native-linux-arm64-gnu/package.json',
    load: () => {
      throw new Error("/lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found\nmore")
    },
  })
  assert.match(broken.message, /^sip-native: the prebuilt binary for linux-arm64 \(glibc\) does not load: .*GLIBC_2\.38' not found\n/)
  assert.match(broken.message, /\n  It comes from sip-native-linux-arm64-gnu \(\/app\/node_modules\/sip-native-linux-arm64-gnu\): delete/)
})

if (process.platform !== 'linux' || process.arch !== 'x64') {
  test('consumer install (linux-x64 only: it publishes the linux-x64-gnu binary of this run)', (t) => t.skip())
  return
}

// ------------------------------------------------------------------------------------------------
// the consumer's programs: one call to sipp, hung up once confirmed and some RTP was sent

const CALL_BODY = `
const target = process.argv[2]
const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, accounts: [{ extension: '7779' }] })
const states = []
const reached = (state) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ' + state + ' within 10 s; states: ' + states)), 10000)
    const on = (e) => {
      if (e.state !== state) return
      clearTimeout(timer)
      sip.off('call_state', on)
      resolve()
    }
    sip.on('call_state', on)
  })
sip.on('call_state', (e) => states.push(e.state))
await sip.start()
const confirmed = reached('confirmed')
const call = await sip.makeCall('7779', target)
await confirmed
await call.playTone({ durationMs: 200 }) // resolves when played
const { codec, packetsSent } = call.stats()
const disconnected = reached('disconnected')
await call.hangup()
await disconnected
await sip.stop()
console.log('RESULT ' + JSON.stringify({ states, codec, packetsSent }))
`

const PROGRAMS = {
  'call.cjs': [
    "'use strict'",
    "const { SipService } = require('sip-native')",
    `;(async () => {${CALL_BODY}})().catch((e) => {`,
    '  console.error(e)',
    '  process.exit(1)',
    '})',
    '',
  ].join('\n'),
  'call.mjs': `import { SipService } from 'sip-native'\n${CALL_BODY}`,
  // The same call, typed. The @ts-expect-error line fails the compile when the package's
  // declarations are not found (every import would be \`any\` and the directive unused).
  'src/call.ts': `import { SipService, type CallState, type CallStateEvent, type CallStats, type SipServiceConfig } from 'sip-native'

// @ts-expect-error localPort is a number in SipServiceConfig (index.d.ts)
const wrong: SipServiceConfig = { localPort: 'x' }
// @ts-expect-error packetsSent is a number in CallStats (binding.d.ts, imported by index.d.ts)
const wrongStats: CallStats['packetsSent'] = 'x'
void wrong, wrongStats
const target: string = process.argv[2] ?? ''
const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, accounts: [{ extension: '7779' }] })
const states: CallState[] = []
const reached = (state: CallState): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(\`no \${state} within 10 s; states: \${states}\`)), 10000)
    const on = (e: CallStateEvent): void => {
      if (e.state !== state) return
      clearTimeout(timer)
      sip.off('call_state', on)
      resolve()
    }
    sip.on('call_state', on)
  })
sip.on('call_state', (e: CallStateEvent) => states.push(e.state))
await sip.start()
const confirmed = reached('confirmed')
const call = await sip.makeCall('7779', target)
await confirmed
await call.playTone({ durationMs: 200 }) // resolves when played
const { codec, packetsSent }: { codec: string; packetsSent: number } = call.stats()
const disconnected = reached('disconnected')
await call.hangup()
await disconnected
await sip.stop()
console.log('RESULT ' + JSON.stringify({ states, codec, packetsSent }))
`,
}

// skipLibCheck false type-checks the package's own declarations under the consumer's settings too
// (once per resolution: it costs some 8 s more each on this machine)
const tsconfig = (resolution, module, skipLibCheck) => ({
  compilerOptions: {
    target: 'ES2022',
    module,
    moduleResolution: resolution,
    strict: true,
    skipLibCheck,
    types: ['node'],
    typeRoots: [path.join(ROOT, 'node_modules', '@types')], // @types/node of this checkout
    rootDir: 'src',
    outDir: `out-${resolution}`,
  },
  files: ['src/call.ts'],
})

/** A fresh project (ESM: "type": "module") with the programs, and the env of a machine without Rust. */
function newProject(ctx, name, { skipLibCheck = true } = {}) {
  const dir = tmpDir(`consumer-${name}`)
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, type: 'module' }))
  fs.mkdirSync(path.join(dir, 'src'))
  for (const [file, text] of Object.entries(PROGRAMS)) fs.writeFileSync(path.join(dir, file), text)
  fs.writeFileSync(path.join(dir, 'tsconfig.node16.json'), JSON.stringify(tsconfig('node16', 'node16', skipLibCheck), null, 2))
  fs.writeFileSync(path.join(dir, 'tsconfig.bundler.json'), JSON.stringify(tsconfig('bundler', 'esnext', skipLibCheck), null, 2))
  const env = rel.registryEnv(ctx.registry, path.join(dir, '.home'), { PATH: rel.pathWithoutRust() })
  for (const k of Object.keys(env)) if (/^(CARGO|RUSTUP|RUSTC)/.test(k)) delete env[k]
  return { dir, env }
}

/** The sip-native packages an install put into node_modules (npm's flat tree or pnpm's store). */
function installedPackages(dir) {
  const pnpm = path.join(dir, 'node_modules', '.pnpm')
  const names = fs.existsSync(pnpm)
    ? fs.readdirSync(pnpm).map((e) => e.replace(/@[^@]+$/, ''))
    : fs.readdirSync(path.join(dir, 'node_modules'))
  return names.filter((n) => n === PKG.name || n.startsWith(`${PKG.name}-`)).sort()
}

/** Every file of the installed root package, relative to it. */
function packageFiles(dir) {
  const root = fs.realpathSync(path.join(dir, 'node_modules', PKG.name))
  const out = []
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out.push(path.relative(root, p))
    }
  }
  walk(root)
  return out.sort()
}

async function callSippFrom(t, project, label, args) {
  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 30000 })
  const r = await rel.run(process.execPath, [...args, `sip:1000@127.0.0.1:${uas.port}`], {
    cwd: project.dir,
    env: project.env,
    timeoutMs: 30000,
  })
  const sipp = await uas.done
  assert.equal(r.code, 0, `${label}: the consumer's call exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  assert.ok(line, `${label}: a RESULT line in:\n${r.stdout}\n${r.stderr}`)
  const result = JSON.parse(line.slice('RESULT '.length))
  assert.ok(result.states.includes('confirmed') && result.states.at(-1) === 'disconnected', `${label}: states ${result.states}`)
  assert.match(result.codec, /^(PCMU|PCMA|G722)$/, `${label}: a negotiated codec`)
  assert.ok(result.packetsSent > 0, `${label}: RTP sent by the native media engine (${result.packetsSent} packets)`)
  assert.equal(sipp.code, 0, `${label}: sipp got INVITE, ACK and BYE: ${describeSipp(sipp)}`)
  return r.ms
}

/** Installs with `installer`, then checks the tree and calls sipp from CJS, ESM and TypeScript. */
async function installAndCall(t, name, installer, { skipLibCheck } = {}) {
  if (!requirePeer('sipp', t)) return
  if (!requirePeer('tsc', t)) return
  const ctx = await setup()
  const project = newProject(ctx, name, { skipLibCheck })
  const noRust = await rel.run('sh', ['-c', 'command -v cargo || command -v rustc'], { env: project.env })
  assert.notEqual(noRust.code, 0, `no Rust on the consumer's PATH (found ${noRust.stdout.trim()})`)

  const [cmd, ...args] = installer(ctx)
  const install = await rel.run(cmd, args, { cwd: project.dir, env: project.env, timeoutMs: 120000 })
  const output = install.stdout + install.stderr
  assert.equal(install.code, 0, `${name} install failed:\n${output}`)
  t.diagnostic(`${name}: ${install.ms} ms`)

  assert.deepEqual(installedPackages(project.dir), [PKG.name, HOST_PACKAGE], `${name} installs the root package and only this platform's package`)
  const lock = path.join(project.dir, 'package-lock.json')
  if (fs.existsSync(lock)) {
    const entry = JSON.parse(fs.readFileSync(lock, 'utf8')).packages[`node_modules/${PKG.name}`]
    assert.equal(entry.hasInstallScript, undefined, 'npm records no install script for sip-native')
  }
  assert.doesNotMatch(output, /Ignored build scripts|install script/i, `no install script to run or skip:\n${output}`)
  const files = packageFiles(project.dir)
  assert.deepEqual(
    files.filter((f) => /\.(node|rs)$|^Cargo\.|^(src|crates|scripts|__test__|npm|target)\//.test(f)),
    [],
    `the root package ships no binary, Rust source or repository tooling: ${files}`,
  )

  await t.test('CommonJS: require("sip-native")', async (t) => {
    t.diagnostic(`${await callSippFrom(t, project, `${name} cjs`, ['call.cjs'])} ms`)
  })
  await t.test('ESM: import { SipService } from "sip-native"', async (t) => {
    t.diagnostic(`${await callSippFrom(t, project, `${name} esm`, ['call.mjs'])} ms`)
  })
  await t.test('CLI: node_modules/.bin/sip-native call (what `npx sip-native` runs)', async (t) => {
    const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 30000 })
    const bin = path.join(project.dir, 'node_modules', '.bin', 'sip-native')
    const r = await rel.run(bin, ['call', `sip:1000@127.0.0.1:${uas.port}`, '--bind-address', '127.0.0.1', '--duration', '1', '--tone', '440'], {
      cwd: project.dir,
      env: project.env,
      timeoutMs: 30000,
    })
    const sipp = await uas.done
    assert.equal(r.code, 0, `${name}: the installed CLI's call exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
    assert.match(r.stderr, /state=confirmed/, `${name}: the CLI's live line showed the call confirmed:\n${r.stderr}`)
    assert.equal(sipp.code, 0, `${name}: sipp got INVITE, ACK and BYE from the CLI: ${describeSipp(sipp)}`)
  })
  for (const resolution of ['node16', 'bundler']) {
    await t.test(`TypeScript, moduleResolution ${resolution}`, async (t) => {
      const tsc = await rel.run(process.execPath, [TSC, '-p', `tsconfig.${resolution}.json`], { cwd: project.dir, env: project.env })
      assert.equal(tsc.code, 0, `tsc -p tsconfig.${resolution}.json:\n${tsc.stdout}\n${tsc.stderr}`)
      t.diagnostic(`tsc ${tsc.ms} ms, call ${await callSippFrom(t, project, `${name} ts ${resolution}`, [`out-${resolution}/call.js`])} ms`)
    })
  }
}

test('the release publishes every platform package and the root package lists them as optionalDependencies', async (t) => {
  const ctx = await setup()
  t.diagnostic(`setup (tools, registry, release published) ${ctx.setupMs} ms; musl: ${ctx.musl.reason}`)
  const expected = Object.fromEntries(ctx.release.targets.map((tr) => [`${PKG.name}-${rel.platformOfTriple(tr)}`, PKG.version]))
  assert.deepEqual(ctx.published.manifest.optionalDependencies, expected)
  assert.equal(ctx.published.manifest.scripts.install, undefined, 'no install hook')
  assert.match(ctx.release.packOutput, /prepare: npm pack; not building/, 'prepare did nothing in npm pack')
  assert.match(ctx.published.publishOutput, /prepare: npm publish; not building/, 'prepare did nothing in npm publish')
  // the committed npm/<platform>/package.json are what `napi create-npm-dirs` makes of package.json
  for (const dir of fs.readdirSync(path.join(ROOT, 'npm'))) {
    const committed = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', dir, 'package.json'), 'utf8'))
    const generated = JSON.parse(fs.readFileSync(path.join(ctx.release.stage, 'npm', dir, 'package.json'), 'utf8'))
    assert.deepEqual(committed, generated, `npm/${dir}/package.json is up to date`)
  }
  const res = await fetch(`${ctx.registry.url}${HOST_PACKAGE}`)
  const packument = await res.json()
  const v = packument.versions[PKG.version]
  assert.deepEqual([v.os, v.cpu, v.libc, v.main], [['linux'], ['x64'], ['glibc'], `${PKG.napi.binaryName}.linux-x64-gnu.node`])
})

test('npm install sip-native: no Rust, calls from CJS, ESM and TypeScript', (t) =>
  installAndCall(t, 'npm', () => [which('npm'), 'install', `${PKG.name}@${PKG.version}`], { skipLibCheck: false }))

test('pnpm add sip-native: no Rust, calls from CJS, ESM and TypeScript', (t) =>
  installAndCall(t, 'pnpm', (ctx) => [process.execPath, ctx.tools.pnpm, 'add', `${PKG.name}@${PKG.version}`]))

test('npm install --ignore-scripts sip-native: no Rust, calls from CJS, ESM and TypeScript', (t) =>
  installAndCall(t, 'npm-ignore-scripts', () => [which('npm'), 'install', '--ignore-scripts', `${PKG.name}@${PKG.version}`]))

test('npm install --omit=optional: require and import fail with the one clear error naming the platform', async (t) => {
  const ctx = await setup()
  const project = newProject(ctx, 'omit-optional')
  const install = await rel.run(which('npm'), ['install', '--omit=optional', `${PKG.name}@${PKG.version}`], {
    cwd: project.dir,
    env: project.env,
  })
  assert.equal(install.code, 0, `the install itself succeeds (nothing to build):\n${install.stdout}\n${install.stderr}`)
  assert.deepEqual(installedPackages(project.dir), [PKG.name])
  for (const [label, args] of [
    ['require', ['-e', "require('sip-native')"]],
    ['import', ['--input-type=module', '-e', "import { SipService } from 'sip-native'"]],
  ]) {
    const r = await rel.run(process.execPath, args, { cwd: project.dir, env: project.env })
    assert.notEqual(r.code, 0, `${label} fails`)
    assert.match(
      r.stderr,
      new RegExp(
        `Error: sip-native: no prebuilt binary installed for linux-x64 \\(glibc\\): the optional dependency ${HOST_PACKAGE} is missing\\.\\n` +
          '  Install sip-native with optional dependencies enabled \\(not with --omit=optional, --no-optional or pnpm --no-optional\\);',
      ),
      `${label}: the clear error:\n${r.stderr}`,
    )
    assert.match(r.stderr, /Prebuilt binaries exist for linux-x64-gnu, linux-x64-musl, .*win32-x64-msvc\./)
    assert.match(r.stderr, /build from source with Rust \(https:\/\/rustup\.rs\)/)
    assert.match(r.stderr, /code: 'ERR_SIP_NATIVE_NO_BINARY'/)
    assert.doesNotMatch(r.stderr, /Cannot find native binding|\[cause\]|binding\.js:/, `${label}: not the loader's chain of errors`)
  }
})

test('npm install --os=linux --cpu=x64 --libc=musl picks the musl package, not the glibc one', async (t) => {
  const ctx = await setup()
  if (!ctx.musl.published) {
    if (MUSL_REQUIRED) assert.fail(ctx.musl.reason)
    t.skip(ctx.musl.reason)
    return
  }
  const project = newProject(ctx, 'musl')
  const install = await rel.run(
    which('npm'),
    ['install', '--os=linux', '--cpu=x64', '--libc=musl', `${PKG.name}@${PKG.version}`],
    { cwd: project.dir, env: project.env },
  )
  assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`)
  assert.deepEqual(installedPackages(project.dir), [PKG.name, MUSL_PACKAGE])
  const musl = path.join(project.dir, 'node_modules', MUSL_PACKAGE, `${PKG.napi.binaryName}.linux-x64-musl.node`)
  assert.ok(fs.statSync(musl).size > 1_000_000, 'the musl package carries the binary built in this run')
})
