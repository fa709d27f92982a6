// Kamailio as registrar and proxy (digest auth from SQLite): two accounts register, one calls the
// other through the proxy.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startKamailio } = require('./peers/kamailio')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const USERS = [
  { username: '1001', password: 'pw-1001' },
  { username: '1002', password: 'pw-1002' },
]

function account(u, password = u.password) {
  return { extension: u.username, password }
}

test('two accounts register via Kamailio and call each other through it', async (t) => {
  if (!requirePeer('kamailio', t)) return
  const kam = await startKamailio({ users: USERS, t })
  const cfg = { server: kam.host, serverPort: kam.port, registerExpires: 120 }
  const a = await startService(t, { ...cfg, accounts: [account(USERS[0])] })
  const b = await startService(t, { ...cfg, accounts: [account(USERS[1])] })
  try {
    const ra = await waitFor(a.sip, a.events, 'registration', (e) => e.state === 'registered')
    const rb = await waitFor(b.sip, b.events, 'registration', (e) => e.state === 'registered')
    assert.equal(ra.code, 200)
    assert.equal(rb.code, 200)

    const incoming = new Promise((resolve) => b.sip.once('incoming_call', resolve))
    const call = await a.sip.makeCall('1001', '1002')
    const inc = await incoming
    assert.equal(inc.type, 'incoming_call')
    assert.equal(inc.fromUser, '1001')
    assert.equal(inc.account, '1002')
    await b.sip.answer(inc.callId)
    await waitFor(a.sip, a.events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
    await waitFor(b.sip, b.events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed')

    await a.sip.hangup(call.id) // BYE follows the Record-Route through Kamailio
    await disconnected(a.sip, a.events, call.id)
    await disconnected(b.sip, b.events, inc.callId)
    assert.equal(a.sip.counters().liveCalls, 0)
    assert.equal(b.sip.counters().liveCalls, 0)
    await a.sip.stop()
    await b.sip.stop()
    assert.equal(a.events.filter((e) => e.name === 'registration').pop().state, 'unregistered')
  } catch (err) {
    err.message += '\n--- kamailio log (tail):\n' + kam.log().split('\n').filter((l) => !/epoll_wait/.test(l)).slice(-60).join('\n')
    throw err
  }
})

test('wrong password at Kamailio: registration failed (401/403)', async (t) => {
  if (!requirePeer('kamailio', t)) return
  const kam = await startKamailio({ users: USERS, t })
  const { sip, events } = await startService(t, {
    server: kam.host,
    serverPort: kam.port,
    accounts: [account(USERS[0], 'wrong')],
  })
  const failed = await waitFor(sip, events, 'registration', (e) => e.state === 'failed')
  assert.ok([401, 403].includes(failed.code), JSON.stringify(failed))
  await sip.stop()
})
