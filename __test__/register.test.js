// Registration with digest auth against sipp as the registrar (registrar_auth.xml: 7779/secret).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor } = require('./helpers/sip')

test('REGISTER with digest: registering -> registered (200); stop() unregisters', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    registerExpires: 300,
    accounts: [{ extension: '7779', password: 'secret' }],
  })
  const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  assert.equal(ok.code, 200)
  assert.equal(ok.account, '7779')
  assert.ok(ok.expires > 0, `expires ${ok.expires}`)
  const states = events.filter((e) => e.name === 'registration').map((e) => e.state)
  assert.equal(states[0], 'registering', `states: ${states}`)
  await sip.stop()
  const after = events.filter((e) => e.name === 'registration').map((e) => e.state)
  assert.equal(after[after.length - 1], 'unregistered', `states after stop: ${after}`)
  const r = await reg.done
  assert.equal(r.code, 0, 'registrar saw a verified REGISTER and un-REGISTER: ' + describeSipp(r))
  // the password never travels in clear
  assert.doesNotMatch(r.messages, /secret/)
})

test('wrong password: 403 -> failed', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 15000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    accounts: [{ extension: '7779', password: 'not-the-password' }],
  })
  const failed = await waitFor(sip, events, 'registration', (e) => e.state === 'failed')
  assert.equal(failed.code, 403, JSON.stringify(failed))
  assert.ok(!events.some((e) => e.name === 'registration' && e.state === 'registered'))
  await sip.stop()
  await reg.kill()
})
