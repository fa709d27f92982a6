// 3xx redirects of our INVITE (RFC 3261 §8.1.3.4): followed to the Contacts in q order, one
// `redirect` event per hop, same call for the application, bounded (hop limit, loops), or
// reported when followRedirects is off. sipp plays the redirecting and the final UAS.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, callStates, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779', password: 'redirect-secret' }

async function service(t, config = {}) {
  const svc = await startService(t, { accounts: [ACCOUNT], timerT1Ms: 100, ...config })
  svc.redirects = []
  svc.sip.on('redirect', (e) => svc.redirects.push(e))
  return svc
}

test('302 chain: followed to the Contact, whose digest challenge is answered; same call, redirect event', async (t) => {
  if (!requirePeer('sipp', t)) return
  const final = await startSipp({ scenario: 'redirect_uas_auth', keys: { password: ACCOUNT.password }, t })
  const target = `sip:callee@127.0.0.1:${final.port}`
  const first = await startSipp({ scenario: 'redirect_302', keys: { contact: `<${target}>` }, t })
  const { sip, events, redirects } = await service(t)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${first.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  assert.deepEqual(redirects, [{ type: 'redirect', callId: call.id, code: 302, target, hop: 1 }])
  assert.deepEqual(callStates(events, call.id), ['calling', 'confirmed'])
  await sip.hangup(call)
  const r1 = await first.done
  assert.equal(r1.code, 0, 'the redirecting UAS got the ACK for its 302: ' + describeSipp(r1))
  const r2 = await final.done
  assert.equal(r2.code, 0, 'the final UAS got a good digest, the ACK and the BYE: ' + describeSipp(r2))
  assert.match(r2.messages, new RegExp(`^INVITE ${target} SIP/2.0`, 'm'), 'the new INVITE goes to the Contact')
})

test('two Contacts: the higher q is tried first', async (t) => {
  if (!requirePeer('sipp', t)) return
  const final = await startSipp({ scenario: 'uas_answer', t })
  const low = `sip:low@127.0.0.1:${final.port}`
  const high = `sip:high@127.0.0.1:${final.port}`
  const first = await startSipp({ scenario: 'redirect_302', keys: { contact: `<${low}>;q=0.5, <${high}>;q=0.9` }, t })
  const { sip, events, redirects } = await service(t)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${first.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  assert.deepEqual(
    redirects.map((e) => [e.target, e.hop]),
    [[high, 1]],
  )
  await sip.hangup(call)
  const r = await final.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.match(r.messages, /^INVITE sip:high@/m)
  assert.doesNotMatch(r.messages, /^INVITE sip:low@/m)
})

test('a 302 pointing back to a tried target ends the call: redirect loop', async (t) => {
  if (!requirePeer('sipp', t)) return
  // Both INVITEs are redirected to sip:loop@sipp: the second 302 names a target tried already.
  const port = await require('./helpers/process').freePort('127.0.0.1')
  const loop = `sip:loop@127.0.0.1:${port}`
  const uas = await startSipp({ scenario: 'redirect_loop', port, keys: { contact: `<${loop}>` }, t })
  const { sip, events, redirects } = await service(t)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${port}`)
  const d = await disconnected(sip, events, call.id)
  assert.equal(d.code, 302, JSON.stringify(d))
  assert.equal(d.reason, `redirect loop: ${loop} already tried`)
  assert.deepEqual(redirects.map((e) => e.hop), [1])
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp got two INVITEs and their ACKs: ' + describeSipp(r))
})

test('a chain of new targets ends at maxRedirects: too many redirects', async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'redirect_chain', t })
  const { sip, events, redirects } = await service(t, { maxRedirects: 2 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  const d = await disconnected(sip, events, call.id)
  assert.equal(d.code, 301, JSON.stringify(d))
  assert.equal(d.reason, 'too many redirects (2)')
  assert.deepEqual(redirects.map((e) => e.hop), [1, 2])
  assert.match(redirects[1].target, /^sip:hop2@/)
  const r = await uas.done
  assert.equal(r.code, 0, 'three INVITEs, no fourth: ' + describeSipp(r))
})

test('followRedirects: false (per call, and in the config): the 302 ends the call, naming the Contact', async (t) => {
  if (!requirePeer('sipp', t)) return
  const contact = '<sip:elsewhere@127.0.0.1:9>'
  const uas = await startSipp({ scenario: 'redirect_302', calls: 2, keys: { contact }, t })
  const { sip, events, redirects } = await service(t)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`, { followRedirects: false })
  const d = await disconnected(sip, events, call.id)
  assert.equal(d.code, 302, JSON.stringify(d))
  assert.match(d.reason, /sip:elsewhere@127\.0\.0\.1:9/, JSON.stringify(d))
  assert.equal(redirects.length, 0)
  await assert.rejects(sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`, { followRedirects: 'no' }), TypeError)
  const off = await service(t, { followRedirects: false })
  const call2 = await off.sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  const d2 = await disconnected(off.sip, off.events, call2.id)
  assert.equal(d2.code, 302, JSON.stringify(d2))
  assert.equal(off.redirects.length, 0)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
})
