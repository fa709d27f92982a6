// Registration over time: refresh before expiry (Kamailio as registrar, with digest auth on every
// REGISTER) and back-off after a failure (sipp answering 503).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startKamailio } = require('./peers/kamailio')
const { startSipp, describeSipp } = require('./peers/sipp')
const { until } = require('./helpers/wait')
const { startService, waitFor } = require('./helpers/sip')

const USER = { username: '1001', password: 'pw-1001' }

const registrations = (events) => events.filter((e) => e.name === 'registration')

test('registerExpires 2 at Kamailio: the registration is refreshed (with auth) before it expires', async (t) => {
  if (!requirePeer('kamailio', t)) return
  // the helper's cfg sets registrar min_expires to 1: Kamailio's default (60) would stretch a
  // 2 s registration to 60 s and no refresh would happen within the test
  const kam = await startKamailio({ users: [USER], t })
  const { sip, events } = await startService(t, {
    server: kam.host,
    serverPort: kam.port,
    registerExpires: 2,
    accounts: [{ extension: USER.username, password: USER.password }],
  })
  try {
    const started = Date.now()
    const first = await waitFor(sip, events, 'registration', (e) => e.state === 'registered', 5000)
    assert.equal(first.code, 200)
    assert.ok(first.expires >= 1 && first.expires <= 2, `granted ${first.expires} s (asked 2)`)
    let n = 0
    const second = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' && ++n === 2, 6000)
    const elapsed = Date.now() - started
    assert.equal(second.code, 200, JSON.stringify(second))
    assert.ok(elapsed < 6000, `second registration after ${elapsed} ms`)
    const regs = registrations(events)
    assert.ok(!regs.some((e) => e.state === 'failed'), 'no failed registration: ' + JSON.stringify(regs))
    // Kamailio checked credentials on the refresh too: its route logs every REGISTER and every
    // one that failed auth_check (which precedes save), so at least two passed it. Its log
    // reaches us through a pipe a little after its replies do: poll it (still registered).
    const authenticated = () => {
      const lines = kam.log().split('\n')
      const seen = lines.filter((l) => /REQ REGISTER/.test(l)).length
      const unauthenticated = lines.filter((l) => /REGISTER auth failed\/missing/.test(l)).length
      return { seen, unauthenticated, passed: seen - unauthenticated }
    }
    const described = (a) => `Kamailio saw ${a.seen} REGISTERs, ${a.unauthenticated} without valid credentials`
    await until(() => authenticated().passed >= 2, 3000, () => described(authenticated()))
    const a = authenticated()
    assert.ok(a.passed >= 2, described(a))
    await sip.stop()
    assert.equal(registrations(events).pop().state, 'unregistered')
  } catch (err) {
    err.message +=
      '\n--- events:\n' + events.map((e) => JSON.stringify(e)).join('\n') +
      '\n--- kamailio log (tail):\n' + kam.log().split('\n').filter((l) => !/epoll_wait/.test(l)).slice(-40).join('\n')
    throw err
  }
})

test("503 with Retry-After: 4 from the registrar: the retry waits the registrar's 4 s, not the 2 s back-off", async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_503_retry_after', t, timeoutMs: 15000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    accounts: [{ extension: '7779', password: 'secret' }],
  })
  await waitFor(sip, events, 'registration', (e) => e.state === 'failed', 5000)
  const t1 = Date.now()
  let n = 0
  await waitFor(sip, events, 'registration', (e) => e.state === 'failed' && ++n === 2, 9000)
  const gap = Date.now() - t1
  await sip.stop()
  assert.ok(gap >= 4000 && gap < 6500, `gap between the failures ${gap} ms (Retry-After 4 s)`)
  const r = await reg.done
  assert.equal(r.code, 0, 'sipp answered two REGISTERs with 503 and Retry-After: ' + describeSipp(r))
})

test('503 from the registrar: failed, then a retry 1.5-2 s later (back-off with jitter), failed again', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_503', t, timeoutMs: 15000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    accounts: [{ extension: '7779', password: 'secret' }],
  })
  const failed1 = await waitFor(sip, events, 'registration', (e) => e.state === 'failed', 5000)
  const t1 = Date.now()
  let n = 0
  const failed2 = await waitFor(sip, events, 'registration', (e) => e.state === 'failed' && ++n === 2, 8000)
  const t2 = Date.now()
  await sip.stop()
  const states = registrations(events).map((e) => `${e.state}:${e.code}`)
  assert.equal(failed1.code, 503, JSON.stringify(failed1))
  assert.equal(failed2.code, 503, JSON.stringify(failed2))
  assert.deepEqual(states.slice(0, 4), ['registering:0', 'failed:503', 'registering:0', 'failed:503'], `states: ${states}`)
  const gap = t2 - t1
  assert.ok(gap >= 1500 && gap < 5000, `gap between the failures ${gap} ms (back-off 2 s)`)
  assert.ok(!states.includes('registered:200'))
  const r = await reg.done
  assert.equal(r.code, 0, 'sipp answered two REGISTERs with 503: ' + describeSipp(r))
})
