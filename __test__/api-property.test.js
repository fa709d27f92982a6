// Property test of the JS API: every public method of SipService and Call, the constructor and
// fromSettings, called with random argument types and values (seeded PRNG: the seed is printed,
// PROPERTY_SEED=<n> replays it; PROPERTY_CALLS=<n> per method, 2000 in all by default). Each
// call must throw (or reject with) a TypeError/Error, or return/resolve; never crash the
// process, never leave a promise hanging. Afterwards the service still answers: an OPTIONS to
// sipp gets its 404, and a call to sipp's UAS is answered and hung up.
'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { SipService, Call } = require('..')
const { requirePeer, tmpDir } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor } = require('./helpers/sip')

const seed = Number(process.env.PROPERTY_SEED || Date.now() % 2 ** 31)
// mulberry32: small, seedable, good enough to pick arguments
function prng(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(seed)
const pick = (xs) => xs[Math.floor(rand() * xs.length)]
// ids of live calls, so that random arguments also name a real call now and then
const liveIds = []

// option names the API reads, so that random objects reach the deeper checks too
const KEYS = [
  'headers', 'timeoutMs', 'followRedirects', 'code', 'reason', 'sdp', 'direction', 'loop', 'volume',
  'durationMs', 'gapMs', 'method', 'frequency', 'frequencies', 'channels', 'mode', 'replaces', 'extension',
  'password', 'register', 'domain', 'server', 'transport', 'localPort', 'bindAddress', 'logLevel',
  'accounts', 'expires', 'sampleRate', 'stereo', 'fromSettings', 'attended', 'toneMs', 'audio',
]
function scalar() {
  return pick([
    () => undefined, () => null, () => true, () => false, () => 0, () => -1, () => 1.5, () => NaN,
    () => Infinity, () => -Infinity, () => 2 ** 53, () => 0xffffffff + 1, () => Math.floor(rand() * 70000),
    () => 486, () => 200, () => 10n, () => Symbol('s'), () => () => 1, () => '', () => ' ', () => '\0',
    () => 'x'.repeat(Math.floor(rand() * 20000)), () => 'sip:1000@127.0.0.1:1', () => 'sips:a@[::1]',
    () => 'tel:+1', () => '1000', () => 'udp', () => 'wss', () => 'inactive', () => 'sendonly', () => '🙂\u202e',
    () => 'nosuch-call-id', () => '../../x.wav', () => 'a\r\nVia: evil', () => 'X-Foo', () => Buffer.from('ab'),
    () => new Date(0), () => /re/, () => new Map(), () => Promise.resolve(1),
    () => (liveIds.length ? pick(liveIds) : 'none'),
  ])()
}
function value(depth = 0) {
  const r = rand()
  if (depth > 2 || r < 0.6) return scalar()
  if (r < 0.75) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1))
  const o = {}
  for (let i = Math.floor(rand() * 4); i > 0; i--) o[pick(KEYS)] = value(depth + 1)
  if (rand() < 0.1) Object.defineProperty(o, 'headers', { get() { throw new Error('getter') }, enumerable: true })
  return o
}
const args = () => Array.from({ length: Math.floor(rand() * 4) }, () => value())

/** Awaits `p` but fails if it neither settles within `ms`. */
function settled(p, ms, what) {
  let timer
  const hang = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`hung promise: ${what}`)), ms)))
  return Promise.race([Promise.resolve(p).then((v) => ({ v }), (e) => ({ e })), hang]).finally(() => clearTimeout(timer))
}

function checkError(e, what) {
  assert.ok(e instanceof Error, `${what} threw a non-Error: ${String(e)}`)
}

const SERVICE_METHODS = Object.getOwnPropertyNames(SipService.prototype).filter(
  (m) => m !== 'constructor' && !m.startsWith('_') && m !== 'stop' && typeof Object.getOwnPropertyDescriptor(SipService.prototype, m).value === 'function',
)
const CALL_METHODS = Object.getOwnPropertyNames(Call.prototype).filter(
  (m) => m !== 'constructor' && typeof Object.getOwnPropertyDescriptor(Call.prototype, m).value === 'function',
)

// promises still to settle: awaited together, since a call to an unreachable URI may wait for
// its transaction timeout (32 s)
const pending = []

async function hammer(target, methods, per, figures, prefix) {
  for (const m of methods) {
    for (let i = 0; i < per; i++) {
      const a = args()
      const what = `${prefix}.${m}(${a.map((x) => typeof x).join(', ')}) [seed ${seed}]`
      try {
        const r = target[m](...a)
        if (r && typeof r.then === 'function') pending.push(settled(r, 40000, what).then((o) => o.e && checkError(o.e, what)))
      } catch (e) {
        checkError(e, what)
      }
    }
    figures[`${prefix}.${m}`] = per
  }
}

test('random arguments to every API entry: only TypeError/Error, no crash, no hung promise; the service works after', async (t) => {
  if (!requirePeer('sipp', t)) return
  console.log(`api-property: seed ${seed} (PROPERTY_SEED=${seed} replays it)`)
  const cwd = process.cwd()
  // random strings are also file paths (playFile, record): keep what they create in a temp dir
  process.chdir(tmpDir('api-property'))
  t.after(() => process.chdir(cwd))
  const total = Number(process.env.PROPERTY_CALLS || 2000)
  const per = Math.max(5, Math.floor(total / (SERVICE_METHODS.length + CALL_METHODS.length + 2)))
  const figures = {}

  // the constructor and fromSettings (started services are stopped again)
  for (const [name, make] of [
    ['new SipService', (...a) => new SipService(...a)],
    ['SipService.fromSettings', (...a) => SipService.fromSettings(...a)],
  ]) {
    for (let i = 0; i < per; i++) {
      try {
        make(...args())
      } catch (e) {
        checkError(e, `${name} [seed ${seed}]`)
      }
    }
    figures[name] = per
  }

  const uas = await startSipp({ scenario: 'uas', calls: 1, timeoutMs: 120000, recvTimeoutMs: 120000, t })
  const { sip, events } = await startService(t, { accounts: [{ extension: '7779', register: false }] })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  liveIds.push(call.id)
  await hammer(sip, SERVICE_METHODS.filter((m) => m !== 'hangup'), per, figures, 'SipService')
  await hammer(call, CALL_METHODS.filter((m) => m !== 'hangup'), per, figures, 'Call')
  // hangup last, when it may end the call
  await hammer(call, ['hangup'], per, figures, 'Call')
  await hammer(sip, ['hangup'], per, figures, 'SipService')
  await Promise.all(pending)
  console.table(figures)
  const tried = Object.values(figures).reduce((a, b) => a + b, 0)
  console.log(`api-property: ${tried} calls over ${Object.keys(figures).length} entries, seed ${seed}`)

  // still working: a new call to sipp is answered and hung up, and an OPTIONS is answered
  assert.equal(sip.isRunning, true)
  await call.hangup().catch(() => {})
  uas.kill()
  const answering = await startSipp({ scenario: 'uas_answer', t })
  const next = await sip.makeCall('7779', `sip:1000@127.0.0.1:${answering.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === next.id && e.state === 'confirmed', 15000)
  await next.hangup()
  const r = await answering.done
  assert.equal(r.code, 0, describeSipp(r))
  const options = await startSipp({ scenario: 'uas_options_404', calls: 1, t })
  const reply = await sip.options(`sip:127.0.0.1:${options.port}`, { timeoutMs: 5000 })
  assert.equal(reply.code, 404)
})
