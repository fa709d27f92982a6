// Service lifecycle: the process exits by itself after stop(), start()/stop() are idempotent, a
// stopped service refuses work with a clear Error, and a port already in use fails start().
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { SipService } = require('..')
const { freePort, requirePeer } = require('./helpers/process')
const { startSipp } = require('./peers/sipp')


/**
 * Runs a fixture in a child Node process until it prints STOPPED, then gives it `exitMs` to end
 * by itself. Resolves to { stdout, stoppedAt, exit: { code, signal, at } }; fails the test if
 * either step times out.
 */
async function runUntilExit(t, fixture, args, { stopMs = 20000, exitMs = 5000 } = {}) {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', fixture), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })))
  const stopped = new Promise((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d
      if (/^STOPPED\b/m.test(stdout)) resolve(Date.now())
    })
  })
  const info = () => `--- child stdout:\n${stdout}\n--- child stderr:\n${stderr.slice(-3000)}`
  const bound = (ms, what) => new Promise((resolve) => setTimeout(() => resolve({ timeout: what }), ms).unref())

  const first = await Promise.race([stopped.then((at) => ({ stoppedAt: at })), exited.then((e) => ({ exit: e })), bound(stopMs, 'STOPPED')])
  if (!first.stoppedAt) {
    child.kill('SIGKILL')
    assert.fail(`the child did not print STOPPED (${JSON.stringify(first)})\n${info()}`)
  }
  // then the process must end on its own, with nothing left holding the event loop
  const end = await Promise.race([exited, bound(exitMs, 'exit')])
  if (end.timeout) {
    child.kill('SIGKILL')
    assert.fail(`the process was still alive ${exitMs} ms after stop()\n${info()}`)
  }
  assert.equal(end.signal, null, info())
  assert.equal(end.code, 0, info())
  return { stdout, info, stoppedAt: first.stoppedAt, exit: end }
}

test('after a call and stop() on both services the process exits by itself (code 0 within 5 s)', async (t) => {
  const { stdout, stoppedAt, exit } = await runUntilExit(t, 'stop-exits.js', [])
  assert.match(stdout, /^CONFIRMED$/m)
  assert.match(stdout, /^DISCONNECTED$/m)
  assert.ok(exit.at - stoppedAt < 5000)
})

test('stop() with silent peers (un-REGISTER, CANCEL and BYE never answered) ends within stopGraceMs; the process exits', { timeout: 60000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_unregister_ignored', t, timeoutMs: 40000 })
  const ringing = await startSipp({ scenario: 'uas_cancel_ignored', t, timeoutMs: 40000 })
  const answering = await startSipp({ scenario: 'uas_bye_ignored', t, timeoutMs: 40000 })
  const { stdout, info } = await runUntilExit(t, 'stop-silent-peers.js', [reg.port, ringing.port, answering.port], { exitMs: 3000 })
  const ms = Number(/^STOPPED (\d+)$/m.exec(stdout)[1])
  // stopGraceMs 1000 in the fixture, plus the teardown itself; the peers' silence would be 32 s
  assert.ok(ms >= 900 && ms < 2500, `stop() took ${ms} ms with stopGraceMs 1000\n${info()}`)
  assert.match(stdout, /^REGISTRATION unregistering/m, info())
  assert.match(stdout, /^REGISTRATION unregistered 408/m, 'the un-REGISTER timed out within the grace\n' + info())
  assert.equal((stdout.match(/^DISCONNECTED /gm) || []).length, 2, 'both calls reported disconnected\n' + info())
  for (const [peer, method] of [[reg, 'REGISTER'], [ringing, 'CANCEL'], [answering, 'BYE']]) {
    await peer.kill()
    const r = await peer.done
    assert.match(r.messages, new RegExp(`^${method} sip:`, 'm'), `${method} was sent`)
  }
})

const NOT_STARTED = /not started/i

async function assertNotStarted(sip, when) {
  const sync = { localAddress: () => sip.localAddress(), counters: () => sip.counters() }
  for (const [name, fn] of Object.entries(sync)) {
    assert.throws(fn, (err) => err instanceof Error && NOT_STARTED.test(err.message), `${name}() ${when}`)
  }
  const asyncs = {
    makeCall: () => sip.makeCall('100', 'sip:200@127.0.0.1:5060'),
    answer: () => sip.answer('no-such-call'),
    reject: () => sip.reject('no-such-call', 486),
    hangup: () => sip.hangup('no-such-call'),
  }
  for (const [name, fn] of Object.entries(asyncs)) {
    await assert.rejects(
      async () => fn(),
      (err) => err instanceof Error && NOT_STARTED.test(err.message),
      `${name}() ${when}`,
    )
  }
}

test('start() twice and stop() twice are harmless; methods after stop() throw "not started"', async (t) => {
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, accounts: [{ extension: '100' }] })
  const errors = []
  sip.on('error', (e) => errors.push(e))
  t.after(() => (sip.isRunning ? sip.stop() : undefined))

  await assertNotStarted(sip, 'before start()')
  assert.equal(sip.isRunning, false)

  // concurrent starts share one endpoint, a later start() is a no-op
  await Promise.all([sip.start(), sip.start()])
  assert.equal(sip.isRunning, true)
  const addr = sip.localAddress()
  assert.ok(addr.port > 0)
  await sip.start()
  assert.deepEqual(sip.localAddress(), addr, 'the second start() did not rebind')
  assert.equal(sip.counters().liveCalls, 0)

  await sip.stop()
  assert.equal(sip.isRunning, false)
  await sip.stop() // harmless
  assert.equal(sip.isRunning, false)
  await assertNotStarted(sip, 'after stop()')

  // stop() on a never-started service is harmless too
  const idle = new SipService({ bindAddress: '127.0.0.1', localPort: 0 })
  await idle.stop()
  assert.equal(idle.isRunning, false)

  assert.deepEqual(errors, [])
})

// stop() must free the port at once (the socket used to stay bound until the native object was
// garbage-collected).
test('stop() releases the UDP port at once', async (t) => {
  const first = new SipService({ bindAddress: '127.0.0.1', localPort: 0 })
  await first.start()
  const { port } = first.localAddress()
  await first.stop()
  const again = new SipService({ bindAddress: '127.0.0.1', localPort: port })
  t.after(() => (again.isRunning ? again.stop() : undefined))
  await again.start()
  assert.equal(again.localAddress().port, port)
  await again.stop()
})

test('stop() while start() is in flight waits for the start, then stops: the port is free afterwards', async (t) => {
  const port = await freePort()
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: port })
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  const starting = sip.start()
  await sip.stop()
  await starting
  assert.equal(sip.isRunning, false, 'the endpoint the start() brought up was stopped')
  const again = new SipService({ bindAddress: '127.0.0.1', localPort: port })
  t.after(() => (again.isRunning ? again.stop() : undefined))
  await again.start()
  assert.equal(again.localAddress().port, port, 'the port was free again')
  await again.stop()
})

test('binding a port already in use rejects start() with an Error naming the address', async (t) => {
  const port = await freePort()
  const first = new SipService({ bindAddress: '127.0.0.1', localPort: port })
  await first.start()
  t.after(() => (first.isRunning ? first.stop() : undefined))
  assert.equal(first.localAddress().port, port)

  const second = new SipService({ bindAddress: '127.0.0.1', localPort: port })
  t.after(() => (second.isRunning ? second.stop() : undefined))
  await assert.rejects(
    second.start(),
    (err) => {
      assert.ok(err instanceof Error, `an Error: ${err}`)
      assert.ok(err.message.includes(`127.0.0.1:${port}`), `message names the address: ${err.message}`)
      return true
    },
  )
  assert.equal(second.isRunning, false)
  // the first service is unaffected
  assert.equal(first.isRunning, true)
  assert.equal(first.localAddress().port, port)
  await first.stop()
})
