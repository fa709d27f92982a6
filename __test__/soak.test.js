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
  // the soak records no events of its own: the list would be the only thing growing
  events.length = 0
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  sip.removeAllListeners('call_state')

  const silent = []
  let placed = 0
  let done = 0
  async function oneCall() {
    let call = null
    const confirmed = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no confirmed state in 10 s')), 10000)
      const on = (e) => {
        if (!call || e.callId !== call.id) return
        if (e.state === 'confirmed' || e.state === 'disconnected') {
          clearTimeout(timer)
          sip.off('call_state', on)
          if (e.state === 'confirmed') resolve()
          else reject(new Error(`call ended before confirmed: ${JSON.stringify(e)}`))
        }
      }
      sip.on('call_state', on)
    })
    call = await sip.makeCall(USERS[0].username, USERS[1].username)
    await confirmed
    await sleep(HOLD_MS)
    const stats = sip.callStats(call.id)
    if (!(stats.packetsSent > 0 && stats.packetsReceived > 0)) silent.push({ n: done, ...stats })
    const ended = new Promise((resolve) => {
      const on = (e) => {
        if (e.callId === call.id && e.state === 'disconnected') {
          sip.off('call_state', on)
          resolve()
        }
      }
      sip.on('call_state', on)
    })
    await sip.hangup(call.id)
    await ended
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
