// Soak: calls back to back through Kamailio (registrar and proxy, 407 on every INVITE) to a sipp
// UAS that echoes RTP, each call carrying audio both ways. After the first 100 calls the
// process's RSS, open file descriptors, runtime tasks and live SIP transactions, dialogs and calls
// are the baseline; after the last call they must be back near it. A leak of a socket, a task,
// a transaction or a dialog per call shows as a growth of the number of calls.
//
// CI form: SOAK_CALLS (default 300) calls, SOAK_CONCURRENCY (default 4) at a time. Full form:
//   SOAK_CALLS=10000 node --test __test__/soak.test.js
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const v8 = require('node:v8')
const vm = require('node:vm')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer, freePort, openFds } = require('./helpers/process')
const { startKamailio } = require('./peers/kamailio')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { sleep, until } = require('./helpers/wait')

const CALLS = Number(process.env.SOAK_CALLS || 300)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY || 4)
const BASELINE_AFTER = 100
/** Each call's audio: long enough for a few 20 ms packets to go out and come back. */
const HOLD_MS = 200
/** T1 shortened so that Timer M (64·T1) of the last calls' INVITEs ends within the settle wait. */
const T1_MS = 100
const SETTLE_MS = 15000
// The stated bounds of growth between the baseline and the end.
const BOUNDS = { rssMb: 24, fds: 2, tasksAlive: 4, transactions: 1, dialogs: 0, liveCalls: 0 }

const USERS = [
  { username: '1001', password: 'soak-pw-1001' },
  { username: '1002', password: 'soak-pw-1002' },
]

// A full GC before each reading, so RSS says what is held, not what waits for a collection.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

/** Waits until no call, dialog or transaction of finished calls is left (bounded), then reads. */
async function settledFigures(sip) {
  await until(() => sip.metrics().dialogs === 0 && sip.counters().liveCalls === 0, 10000, 'the calls to end').catch(() => {})
  // a finished INVITE client transaction stays for Timer M (RFC 6026: 64·T1), a BYE's for
  // Timer K (T4, 5 s): wait them out (bounded), whatever is left then counts
  const start = Date.now()
  while (sip.metrics().transactions > 0 && Date.now() - start < SETTLE_MS) await sleep(100)
  gc()
  await sleep(100)
  const m = sip.metrics()
  return {
    rssMb: Math.round((process.memoryUsage().rss / 1048576) * 10) / 10,
    fds: openFds(),
    tasksAlive: m.tasksAlive,
    transactions: m.transactions,
    dialogs: m.dialogs,
    liveCalls: sip.counters().liveCalls,
  }
}

test(`soak: ${CALLS} calls with audio through Kamailio, resources back to their level`, { timeout: 120000 + CALLS * 400 }, async (t) => {
  if (!requirePeer('kamailio', t) || !requirePeer('sipp', t)) return
  const lifetimeMs = 60000 + CALLS * 400
  const kam = await startKamailio({ users: USERS, t, timeoutMs: lifetimeMs })
  const mediaPort = await freePort()
  const uas = await startSipp({
    scenario: 'uas_answer_echo',
    // room for sipp's own counting of stray retransmissions; stopped with the test
    calls: CALLS * 2,
    timeoutMs: lifetimeMs,
    args: ['-rtp_echo', '-mp', String(mediaPort), '-max_reconnect', '0'],
    t,
  })
  const reg = await startSipp({
    scenario: 'register_contact',
    remote: `${kam.host}:${kam.port}`,
    service: USERS[1].username,
    keys: { contact_port: String(uas.port) },
    args: ['-au', USERS[1].username, '-ap', USERS[1].password],
    t,
  })
  const regResult = await reg.done
  assert.equal(regResult.code, 0, describeSipp(regResult))

  const { sip, events } = await startService(t, {
    server: kam.host,
    serverPort: kam.port,
    registerExpires: 3600,
    timerT1Ms: T1_MS,
    accounts: [{ extension: USERS[0].username, password: USERS[0].password }],
  })
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  // the soak records no events of its own: the list would be the only thing growing
  sip.removeAllListeners('call_state')
  events.length = 0

  // Each call's states, kept from the first event on: a call's `confirmed` may reach JS before
  // makeCall's promise does (they travel by different queues).
  const seen = new Map() // callId -> Set of states
  const waiters = new Map() // callId -> { state, resolve, reject }
  sip.on('call_state', (e) => {
    if (!seen.has(e.callId)) seen.set(e.callId, new Set())
    seen.get(e.callId).add(e.state)
    const w = waiters.get(e.callId)
    if (w && (e.state === w.state || e.state === 'disconnected')) w.settle()
  })
  const reached = (id, state, timeoutMs = 10000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${state} state in ${timeoutMs} ms`)), timeoutMs)
      const settle = () => {
        const states = seen.get(id) || new Set()
        if (!states.has(state) && !states.has('disconnected')) return
        clearTimeout(timer)
        waiters.delete(id)
        if (states.has(state)) resolve()
        else reject(new Error(`call ended before ${state}: ${[...states]}`))
      }
      waiters.set(id, { state, settle })
      settle()
    })

  const silent = []
  let placed = 0
  let done = 0
  async function oneCall() {
    const call = await sip.makeCall(USERS[0].username, USERS[1].username)
    await reached(call.id, 'confirmed').catch((err) => {
      const info = sip.callInfo(call.id)
      const theirs = fs.readFileSync(path.join(uas.dir, 'messages.log'), 'utf8').split(/\n(?=-{10,})/).filter((m) => m.includes(info.sipCallId))
      err.message += `; our call ${JSON.stringify(info)}; sipp saw of it:\n${theirs.join('\n').slice(-6000)}`
      throw err
    })
    await sleep(HOLD_MS)
    const stats = sip.callStats(call.id)
    if (!(stats.packetsSent > 0 && stats.packetsReceived > 0)) silent.push({ n: done, ...stats })
    await sip.hangup(call.id)
    await reached(call.id, 'disconnected')
    seen.delete(call.id)
    done++
  }
  async function runUntil(target) {
    const worker = async () => {
      while (placed < target) {
        placed++
        await oneCall()
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  }

  const started = Date.now()
  let baseline
  let end
  try {
    await runUntil(Math.min(BASELINE_AFTER, CALLS))
    baseline = await settledFigures(sip)
    console.log(`soak baseline after ${done} calls: ${JSON.stringify(baseline)}`)
    await runUntil(CALLS)
    const wallS = (Date.now() - started) / 1000
    end = await settledFigures(sip)
    const m = sip.metrics()
    console.log(`soak end after ${done} calls: ${JSON.stringify(end)}`)
    console.log(
      `soak: ${done} calls in ${wallS.toFixed(1)} s (${(done / wallS).toFixed(1)} calls/s, ${CONCURRENCY} at a time), ` +
        `established ${m.callsEstablished.outgoing}, failures ${JSON.stringify(m.callFailures.outgoing)}, ` +
        `RTP sent ${m.rtp.packetsSent} received ${m.rtp.packetsReceived}, calls without audio ${silent.length}`,
    )
    const growth = Object.fromEntries(Object.keys(BOUNDS).map((k) => [k, Math.round((end[k] - baseline[k]) * 10) / 10]))
    console.log(`soak growth (bound): ${Object.keys(BOUNDS).map((k) => `${k} ${growth[k]} (${BOUNDS[k]})`).join(', ')}`)

    assert.equal(done, CALLS)
    assert.equal(m.callsEstablished.outgoing, CALLS)
    assert.deepEqual(silent, [], 'every call received its echoed audio')
    for (const k of Object.keys(BOUNDS)) assert.ok(growth[k] <= BOUNDS[k], `${k} grew by ${growth[k]} (bound ${BOUNDS[k]})`)
    await sip.stop()
  } catch (err) {
    err.message += `\n--- after ${done} calls; kamailio log (tail):\n` + kam.log().split('\n').slice(-30).join('\n')
    throw err
  }
})
