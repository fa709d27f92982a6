// The release flow of .github/workflows/release.yml, run on this machine against a local npm
// registry: Verdaccio on 127.0.0.1 with a throwaway storage and no uplink (so every package a
// consumer installs must have been published to it), the packages staged from this checkout
// and published with @napi-rs/cli's own commands (create-npm-dirs, artifacts, pre-publish).
//
//   const tools = await ensureTools()           // Verdaccio and pnpm, cached under node_modules/.cache
//   const registry = await startRegistry(tools) // { url, stop }
//   const release = await stageRelease()        // root package + npm/<platform>/ in a temp dir
//   publishMuslIfBuilt(release)                 // the musl package too, when its binary exists
//   await publishRelease(release, registry)     // platform packages, then the root package
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { HOST, freeTcpPort, spawnPeer, tmpDir, which } = require('./process')
const { until } = require('./wait')

const ROOT = path.join(__dirname, '..', '..')
const PKG = require(path.join(ROOT, 'package.json'))
const { platformOfTriple } = require(path.join(ROOT, 'lib', 'platform.js'))

// Pinned so that the cache below is reused only for exactly these versions.
const TOOLS = { verdaccio: '6.8.0', pnpm: '10.34.9' }
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'sip-native-test')

const GNU = 'x86_64-unknown-linux-gnu'
const MUSL = 'x86_64-unknown-linux-musl'
/** The binaries of this run: `npm run build` (gnu) and helper musl.js's buildMusl() (musl). */
const binaryOf = (triple) => path.join(ROOT, `${PKG.napi.binaryName}.${platformOfTriple(triple)}.node`)

/** process.env without what an enclosing `npm test` exported (npm_config_prefix and co.). */
function envWithoutNpm(extra = {}) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  return { ...env, ...extra }
}

/**
 * Runs a command to completion without blocking the event loop (peers' pipes keep draining).
 * Resolves to { code, signal, stdout, stderr, ms, cmd }; never rejects (a spawn error is code -1).
 */
function run(cmd, args, { cwd, env = envWithoutNpm(), timeoutMs = 120000 } = {}) {
  const started = Date.now()
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    const finish = (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, cmd: `${cmd} ${args.join(' ')}` })
    }
    child.once('error', (e) => {
      stderr += `spawn error: ${e.message}`
      finish(-1, null)
    })
    child.once('close', finish)
  })
}

/** Throws with the command's output unless it exited 0; returns its result. */
async function mustRun(cmd, args, opts) {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) {
    const how = `${r.code}${r.signal ? ' ' + r.signal : ''}`
    throw new Error(`${r.cmd} (in ${opts && opts.cwd}) exited ${how}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`)
  }
  return r
}

const NPM = which('npm')

/**
 * Verdaccio and pnpm from the npm registry, installed once into node_modules/.cache/sip-native-test/
 * (an npm `overrides` entry pins node-fetch: verdaccio-audit asks for the dist-tag `node-fetch@cjs`,
 * which this registry does not serve). Returns { verdaccio, pnpm } (their JS entry points).
 */
async function ensureTools() {
  const dir = path.join(CACHE, `tools-verdaccio-${TOOLS.verdaccio}-pnpm-${TOOLS.pnpm}`)
  const tools = {
    verdaccio: path.join(dir, 'node_modules', 'verdaccio', 'bin', 'verdaccio'),
    pnpm: path.join(dir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs'),
  }
  if (Object.values(tools).every((f) => fs.existsSync(f))) return tools
  fs.mkdirSync(CACHE, { recursive: true })
  // install beside, then rename: a run interrupted half-way leaves no half-filled cache behind
  const work = fs.mkdtempSync(path.join(CACHE, 'install-'))
  try {
    fs.writeFileSync(
      path.join(work, 'package.json'),
      JSON.stringify({
        name: 'sip-native-test-tools',
        private: true,
        dependencies: { verdaccio: TOOLS.verdaccio, pnpm: TOOLS.pnpm },
        overrides: { 'node-fetch': '2.7.0' },
      }),
    )
    await mustRun(NPM, ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: work, timeoutMs: 300000 })
    fs.rmSync(dir, { recursive: true, force: true })
    fs.renameSync(work, dir)
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
  return tools
}

/**
 * Verdaccio on 127.0.0.1:<free port> with a fresh storage folder, no uplink, anonymous publish.
 * Resolves once it answers /-/ping, to { url, dir, log, stop } (stop kills it and removes the folder).
 */
async function startRegistry(tools) {
  const dir = tmpDir('registry')
  const port = await freeTcpPort()
  const config = path.join(dir, 'config.yaml')
  fs.writeFileSync(
    config,
    [
      `storage: ${path.join(dir, 'storage')}`,
      'uplinks: {}',
      'packages:',
      "  '**':",
      '    access: $all',
      '    publish: $all',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  )
  const peer = spawnPeer(process.execPath, [tools.verdaccio, '--config', config, '--listen', `${HOST}:${port}`], {
    cwd: dir,
    timeoutMs: 600000,
  })
  const url = `http://${HOST}:${port}/`
  const stop = async () => {
    await peer.stop()
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  }
  try {
    await until(
      async () => {
        if (peer.child.exitCode !== null) throw new Error(`verdaccio exited:\n${peer.log()}`)
        return fetch(url + '-/ping').then((r) => r.ok, () => false)
      },
      30000,
      () => `verdaccio answering on ${url}:\n${peer.log()}`,
    )
  } catch (e) {
    await stop()
    throw e
  }
  return { url, dir, log: peer.log, stop }
}

/**
 * An .npmrc for `url` (with a token, which Verdaccio's anonymous publish accepts and npm needs) and
 * an environment for npm/pnpm that reads only it: no ~/.npmrc, no cache or store shared with other
 * runs. `extra` adds variables.
 */
function registryEnv(registry, home, extra = {}) {
  fs.mkdirSync(home, { recursive: true })
  const host = registry.url.replace(/^http:/, '')
  const npmrc = path.join(home, '.npmrc')
  fs.writeFileSync(npmrc, `registry=${registry.url}\n${host}:_authToken=sip-native-test\n`)
  return envWithoutNpm({
    HOME: home,
    NPM_CONFIG_USERCONFIG: npmrc,
    NPM_CONFIG_GLOBALCONFIG: path.join(home, 'npmrc-global'),
    NPM_CONFIG_CACHE: path.join(home, 'npm-cache'),
    NPM_CONFIG_UPDATE_NOTIFIER: 'false',
    NPM_CONFIG_AUDIT: 'false',
    NPM_CONFIG_FUND: 'false',
    XDG_DATA_HOME: path.join(home, 'xdg-data'), // pnpm's store
    XDG_CACHE_HOME: path.join(home, 'xdg-cache'), // pnpm's metadata cache
    XDG_CONFIG_HOME: path.join(home, 'xdg-config'),
    ...extra,
  })
}

/**
 * A release laid out as CI has it before publishing: the root package (exactly what `npm pack`
 * of this checkout ships, plus scripts/prepare.js, which `npm publish` runs) in a git repository,
 * `napi create-npm-dirs` for every target of package.json, and an artifacts folder with the
 * binaries. Targets whose binary this machine cannot build (other OS or CPU; they can never be
 * installed here) get a placeholder file, so that the registry lists every platform package as
 * a real release does; the tests check that no placeholder is installed.
 * Returns { dir, stage, artifacts, targets, packOutput }.
 */
async function stageRelease() {
  const dir = tmpDir('release')
  try {
    return await stageReleaseIn(dir)
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

async function stageReleaseIn(dir) {
  const stage = path.join(dir, 'stage')
  const artifacts = path.join(stage, 'artifacts')
  // `npm pack` runs `prepare` (scripts/prepare.js): it must not build and must not fail
  const pack = await mustRun(NPM, ['pack', ROOT, '--pack-destination', dir], { cwd: dir })
  const tarball = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.tgz')))
  await mustRun('tar', ['xzf', tarball, '-C', dir])
  fs.renameSync(path.join(dir, 'package'), stage)
  const prepare = path.join(ROOT, 'scripts', 'prepare.js')
  if (fs.existsSync(prepare)) {
    fs.mkdirSync(path.join(stage, 'scripts'), { recursive: true })
    fs.copyFileSync(prepare, path.join(stage, 'scripts', 'prepare.js'))
  }
  const git = ['-c', 'user.name=sip-native-test', '-c', 'user.email=test@localhost']
  await mustRun('git', ['init', '-q'], { cwd: stage })
  // `napi pre-publish` reads the last commit message (the release tag style)
  await mustRun('git', [...git, 'commit', '-q', '--allow-empty', '-m', `v${PKG.version}`], { cwd: stage })
  await mustRun(process.execPath, [napiCli(), 'create-npm-dirs'], { cwd: stage })
  const release = { dir, stage, artifacts, targets: [], packOutput: pack.stdout + pack.stderr }
  addArtifact(release, GNU, binaryOf(GNU))
  for (const triple of PKG.napi.targets) {
    const p = platformOfTriple(triple)
    if (!p.startsWith(`${process.platform}-${process.arch}-`) && p !== `${process.platform}-${process.arch}`) {
      addArtifact(release, triple, null)
    }
  }
  return release
}

const napiCli = () => path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')

/** Puts a target's binary (or, for `file` null, a placeholder) where `napi artifacts` looks. */
function addArtifact(release, triple, file) {
  const name = `${PKG.napi.binaryName}.${platformOfTriple(triple)}.node`
  const dir = path.join(release.artifacts, `bindings-${triple}`)
  fs.mkdirSync(dir, { recursive: true })
  if (file) fs.copyFileSync(file, path.join(dir, name))
  else fs.writeFileSync(path.join(dir, name), `placeholder: ${name} is not built on this machine\n`)
  release.targets.push(triple)
}

/**
 * Adds the linux-x64-musl package to the release when this run built its binary
 * (sip-native.linux-x64-musl.node at the repository root). Call it before publishRelease.
 * Returns { published: boolean, reason }.
 */
function publishMuslIfBuilt(release) {
  const file = binaryOf(MUSL)
  if (!fs.existsSync(file)) {
    return { published: false, reason: `${path.basename(file)} was not built in this run (__test__/helpers/musl.js buildMusl())` }
  }
  addArtifact(release, MUSL, file)
  return { published: true, reason: `${path.basename(file)} built in this run` }
}

/**
 * The publish job of release.yml: `napi artifacts` moves the binaries into npm/<platform>/,
 * `napi pre-publish -t npm` publishes those packages and writes them into the root package's
 * optionalDependencies, then `npm publish` publishes the root package. Only the targets staged
 * in `release.targets` are published (a napi config file limits the commands to them).
 * Returns { env, manifest } (the environment used and the root package.json as published).
 */
async function publishRelease(release, registry) {
  const { stage } = release
  const config = path.join(release.dir, 'napi-targets.json')
  fs.writeFileSync(config, JSON.stringify({ binaryName: PKG.napi.binaryName, targets: release.targets }))
  const env = registryEnv(registry, path.join(release.dir, 'home'))
  const opts = { cwd: stage, env, timeoutMs: 180000 }
  await mustRun(process.execPath, [napiCli(), 'artifacts', '-c', config, '--output-dir', 'artifacts'], opts)
  await mustRun(process.execPath, [napiCli(), 'pre-publish', '-t', 'npm', '-c', config], opts)
  const publish = await mustRun(NPM, ['publish', '--tag', 'latest'], opts)
  const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'))
  return { env, manifest, publishOutput: publish.stdout + publish.stderr }
}

/** PATH without any folder that holds cargo or rustc: a consumer's machine with no Rust. */
function pathWithoutRust() {
  return (process.env.PATH || '')
    .split(path.delimiter)
    .filter((d) => d && !['cargo', 'rustc', 'rustup'].some((b) => fs.existsSync(path.join(d, b))))
    .join(path.delimiter)
}

module.exports = {
  ROOT,
  TOOLS,
  GNU,
  MUSL,
  run,
  mustRun,
  ensureTools,
  startRegistry,
  registryEnv,
  stageRelease,
  publishMuslIfBuilt,
  publishRelease,
  pathWithoutRust,
  platformOfTriple,
}
