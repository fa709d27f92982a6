// The examples, each run as `node examples/<name>.js` in a child process against real peers on
// loopback: PJSIP phones (pjsua2) call them, send DTMF, play and record tones; the speech
// service is a WebSocket server in this test (the `ws` package). What is checked is what a
// peer hears or what lands in a file, by tone frequency.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { WebSocketServer } = require('ws')
const { freePort, requirePeer, track, terminate, killGroup, tmpDir } = require('./helpers/process')
const { sleep } = require('./helpers/wait')
const A = require('./helpers/audio')
const { startPjsua2 } = require('./peers/pjsua2')

const root = path.join(__dirname, '..')
const TONE = { freq: 1000, ms: 2500, levelDb: -10 }

/**
 * Runs examples/<name> with `args`; `line(re)` resolves with the first stdout line matching
 * `re` (seen before or after the call). SIGTERM at the test's end; the exit code is kept.
 */
function startExample(t, name, args, env = {}) {
  const child = track(
    spawn(process.execPath, [path.join(root, 'examples', name), ...args], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    }),
  )
  const lines = []
  let stderr = ''
  const waiters = new Set()
  let buf = ''
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i)
      buf = buf.slice(i + 1)
      lines.push(l)
      for (const w of [...waiters]) w(l)
    }
  })
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-20000)))
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const describe = () => `${name} stdout:\n${lines.join('\n')}\n--- stderr:\n${stderr}`
  function line(re, timeoutMs = 15000) {
    const seen = lines.find((l) => re.test(l))
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = (l) => {
        if (l === null) return fail(`${name} exited`)
        if (!re.test(l)) return
        clearTimeout(timer)
        waiters.delete(w)
        resolve(l)
      }
      const fail = (why) => {
        clearTimeout(timer)
        waiters.delete(w)
        reject(new Error(`${why} while waiting for ${re}; ${describe()}`))
      }
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
      waiters.add(w)
    })
  }
  exit.then(() => {
    for (const w of [...waiters]) w(null)
  })
  const hardKill = setTimeout(() => killGroup(child, 'SIGKILL'), 120000)
  hardKill.unref()
  /** SIGTERM (the examples stop their service and exit 0); resolves to the exit. */
  async function stop() {
    clearTimeout(hardKill)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const t = setTimeout(() => terminate(child, 500), 5000)
    const r = await exit
    clearTimeout(t)
    return r
  }
  t.after(stop)
  return { line, lines, stop, exit, describe }
}

/** Starts an example on a free port of 127.0.0.1; resolves once it listens. */
async function listening(t, name, args = [], env = {}) {
  const port = await freePort()
  const ex = startExample(t, name, ['--bind', '127.0.0.1', '--local-port', String(port), ...args], env)
  await ex.line(/^listening sip:/)
  return { ...ex, port }
}

/** pjsua2 records what it hears from now until `until` resolves (+ the playout), then checks. */
async function heard(pj, file, until) {
  await pj.record(file)
  await until
  await sleep(A.PLAYOUT_MS)
  await pj.stopRecord()
  return A.toneCheck(file)
}

test('ivr.js: key 1 plays the 1000 Hz information tone, then the menu again; key 0 hangs up', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const dir = tmpDir('ex-ivr')
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const ivr = await listening(t, 'ivr.js')
  const caller = await startPjsua2({ t })
  caller.dial(`sip:ivr@127.0.0.1:${ivr.port}`)
  await caller.established()
  await ivr.line(/menu: playing the prompt/)
  caller.cmd('send_dtmf', '1')
  await ivr.line(/branch 1: information tone 1000 Hz/)
  const r = await heard(caller, path.join(dir, 'branch1.wav'), ivr.line(/branch 1: done/))
  A.assertTone(r, { freq: 1000, levelDb: -10, what: 'caller hears branch 1' })
  // the menu comes back; 0 ends the call from the IVR's side
  await ivr.line(/menu: playing the prompt/)
  assert.equal(ivr.lines.filter((l) => /menu: playing the prompt/.test(l)).length, 2, ivr.describe())
  caller.cmd('send_dtmf', '0')
  await ivr.line(/branch 0: goodbye/)
  await caller.waitEvent('call_state', (e) => e.state === 'disconnected', 5000)
  await ivr.line(/ended \(/)
  assert.deepEqual(await ivr.stop(), { code: 0, signal: null }, ivr.describe())
})

test('ivr.js: key 2 calls the operator and bridges: caller and operator hear each other', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const dir = tmpDir('ex-ivr')
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const operator = await startPjsua2({ t, autoAnswer: true, user: 'operator' })
  const ivr = await listening(t, 'ivr.js', ['--operator', operator.uri])
  const caller = await startPjsua2({ t })
  caller.dial(`sip:ivr@127.0.0.1:${ivr.port}`)
  await caller.established()
  await ivr.line(/menu: playing the prompt/)
  caller.cmd('send_dtmf', '2')
  await ivr.line(/branch 2: bridged to the operator/)
  await operator.established()
  // operator -> caller: 1500 Hz
  await operator.playTone(1500, 2500, -10)
  const toCaller = await heard(caller, path.join(dir, 'caller.wav'), operator.toneDone())
  A.assertTone(toCaller, { freq: 1500, levelDb: -10, levelTolDb: 4, what: 'caller hears the operator through the bridge' })
  // caller -> operator: 700 Hz
  await caller.playTone(700, 2500, -10)
  const toOperator = await heard(operator, path.join(dir, 'operator.wav'), caller.toneDone())
  A.assertTone(toOperator, { freq: 700, levelDb: -10, levelTolDb: 4, what: 'operator hears the caller through the bridge' })
  // the operator hangs up: the IVR ends the caller's leg too
  operator.cmd('hangup')
  await caller.waitEvent('call_state', (e) => e.state === 'disconnected', 5000)
})

for (const stereo of [false, true]) {
  test(`record-call.js${stereo ? ' --stereo' : ''}: the WAV holds the caller's 1000 Hz tone${stereo ? ' on channel 1 and our 440 Hz beep on channel 2' : ''}`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('pjsua2', t)) return
    const dir = tmpDir('ex-rec')
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    const args = ['--dir', dir, '--beep', stereo ? '1500' : '0', ...(stereo ? ['--stereo'] : [])]
    const rec = await listening(t, 'record-call.js', args)
    const caller = await startPjsua2({ t })
    caller.dial(`sip:recorder@127.0.0.1:${rec.port}`)
    await caller.established()
    await rec.line(/recording to /)
    await caller.playTone(TONE.freq, TONE.ms, TONE.levelDb)
    await caller.toneDone()
    await sleep(A.PLAYOUT_MS)
    caller.cmd('hangup')
    const saved = await rec.line(/^saved /)
    const [, file, ms, ch] = /^saved (.+) (\d+) ms (\d) ch$/.exec(saved)
    assert.equal(path.dirname(file), dir, saved)
    assert.equal(Number(ch), stereo ? 2 : 1)
    assert.ok(Number(ms) >= TONE.ms, `recording of ${ms} ms, the tone alone was ${TONE.ms} ms`)
    const wav = A.readWav(file)
    assert.equal(wav.channels, stereo ? 2 : 1, `${file}: ${wav.channels} channels`)
    A.assertTone(A.toneCheck(wav, { channel: 0 }), { freq: 1000, levelDb: -10, what: `${path.basename(file)} channel 1 (the caller)` })
    if (stereo) {
      // the beep (-16 dBFS) is ours: channel 2 only
      A.assertTone(A.toneCheck(wav, { channel: 1 }), { freq: 440, levelDb: -16, what: `${path.basename(file)} channel 2 (us)` })
      const leak = A.goertzelPower(wav.channelData[1], wav.sampleRate, 1000)
      assert.ok(A.powerDbfs(leak) < -40, `the caller's tone is not on channel 2: ${A.powerDbfs(leak).toFixed(1)} dBFS`)
    }
    assert.deepEqual(await rec.stop(), { code: 0, signal: null }, rec.describe())
  })
}

/** A speech service stand-in: collects each connection's start message and PCM; `reply` sends. */
async function speechServer(t) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((resolve) => wss.once('listening', resolve))
  t.after(() => new Promise((resolve) => wss.close(resolve)))
  const sessions = []
  let onSession = null
  wss.on('connection', (ws, req) => {
    const s = { ws, url: req.url, start: null, texts: [], pcm: [], closed: null }
    sessions.push(s)
    ws.on('message', (data, isBinary) => {
      if (isBinary) return s.pcm.push(Buffer.from(data))
      const msg = JSON.parse(data.toString())
      if (msg.type === 'start') s.start = msg
      s.texts.push(msg)
      if (msg.type === 'start' && onSession) onSession(s)
    })
    ws.on('close', (code) => (s.closed = code))
  })
  const next = () => new Promise((resolve) => (onSession = resolve))
  return { url: `ws://127.0.0.1:${wss.address().port}/speech`, sessions, next }
}

// The example takes Node's global WebSocket when there is one, else `ws`: run it both ways. Node
// 20 has the global behind --experimental-websocket, Node 22 has it on (--no-experimental-websocket
// turns it off), Node 18 has none.
const NODE_MAJOR = Number(process.versions.node.split('.')[0])
const variants = [{ name: 'the ws package', env: NODE_MAJOR >= 22 ? { NODE_OPTIONS: '--no-experimental-websocket' } : {} }]
if (NODE_MAJOR >= 20) {
  variants.push({ name: "Node's global WebSocket", env: NODE_MAJOR >= 22 ? {} : { NODE_OPTIONS: '--experimental-websocket' } })
}

for (const v of variants) {
  test(`stream-to-speech.js (${v.name}): the service gets the caller's 1000 Hz PCM, the caller hears the service's 1500 Hz reply`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('pjsua2', t)) return
    const dir = tmpDir('ex-speech')
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    const server = await speechServer(t)
    const ex = await listening(t, 'stream-to-speech.js', ['--ws-url', server.url], v.env)
    assert.equal(await ex.line(/^websocket client: /), `websocket client: ${v.name}`)
    const caller = await startPjsua2({ t })
    const session = server.next()
    caller.dial(`sip:speech@127.0.0.1:${ex.port}`)
    await caller.established()
    const s = await session
    assert.equal(s.start.encoding, 'pcm_s16le')
    assert.ok(s.start.sampleRate >= 8000, JSON.stringify(s.start))
    assert.match(s.url, /^\/speech\?callId=/, 'the call id is in the URL')
    assert.match(s.start.from, /^sip:pjsua@127\.0\.0\.1/, JSON.stringify(s.start))

    // caller -> service
    const before = s.pcm.length
    await caller.playTone(TONE.freq, TONE.ms, TONE.levelDb)
    await caller.toneDone()
    await sleep(A.PLAYOUT_MS)
    const got = Buffer.concat(s.pcm.slice(before))
    const frameBytes = Math.round(s.start.sampleRate * 0.02) * 2
    assert.ok(s.pcm.slice(before).every((f) => f.length === frameBytes), 'one 20 ms frame per message')
    const r = A.toneCheck({ sampleRate: s.start.sampleRate, channelData: [A.pcm16ToFloat(got)] })
    A.assertTone(r, { freq: 1000, levelDb: -10, what: 'PCM the speech service received' })

    // service -> caller: 2.5 s of 1500 Hz sent at once (the writable paces it), and a transcript
    const reply = A.toneSamples({ freq: 1500, ms: 2500, rate: s.start.sampleRate, levelDb: -10 })
    const replyMs = 2500
    const recording = path.join(dir, 'caller.wav')
    await caller.record(recording)
    s.ws.send(JSON.stringify({ type: 'transcript', text: 'hello from the bot' }))
    s.ws.send(Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength))
    await ex.line(/transcript: hello from the bot/)
    await sleep(replyMs + 500)
    await caller.stopRecord()
    A.assertTone(A.toneCheck(recording), { freq: 1500, levelDb: -10, what: 'caller hears the reply PCM' })

    // the service hangs up: the call ends
    s.ws.send(JSON.stringify({ type: 'hangup' }))
    await caller.waitEvent('call_state', (e) => e.state === 'disconnected', 5000)
    await ex.line(/websocket closed/)
    assert.equal(s.texts.at(-1).type, 'stop', 'the example says stop before it closes')
    assert.deepEqual(await ex.stop(), { code: 0, signal: null }, ex.describe())
  })
}

test('the examples refuse a bad flag or a missing setting with exit 2 and one line naming it', { timeout: 60000 }, () => {
  const { spawnSync } = require('node:child_process')
  const cases = [
    ['ivr.js', ['--no-such-flag'], /no-such-flag/],
    ['ivr.js', ['--local-port', 'abc'], /--local-port: expected a port number/],
    ['ivr.js', ['--menu-timeout', '0'], /--menu-timeout/],
    ['record-call.js', ['--beep', 'loud'], /--beep: expected a number/],
    ['record-call.js', ['--max-seconds=-1'], /--max-seconds: expected a number/],
    ['stream-to-speech.js', [], /--ws-url: expected a ws:\/\/ or wss:\/\/ URL/],
    ['stream-to-speech.js', ['--ws-url', 'http://127.0.0.1/'], /--ws-url/],
  ]
  for (const [name, args, re] of cases) {
    const r = spawnSync(process.execPath, [path.join(root, 'examples', name), ...args], { encoding: 'utf8', timeout: 20000 })
    const what = `node examples/${name} ${args.join(' ')}: exit ${r.status}, stderr ${JSON.stringify(r.stderr)}`
    assert.equal(r.status, 2, what)
    assert.match(r.stderr, re, what)
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no stack trace: ${what}`)
  }
  // --help prints the usage and exits 0
  for (const name of ['ivr.js', 'record-call.js', 'stream-to-speech.js']) {
    const r = spawnSync(process.execPath, [path.join(root, 'examples', name), '--help'], { encoding: 'utf8', timeout: 20000 })
    assert.equal(r.status, 0, `${name} --help: ${r.stderr}`)
    assert.match(r.stdout, new RegExp(`usage: node examples/${name.replace('.', '\\.')}`))
  }
})
