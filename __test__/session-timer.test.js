// Session timers (RFC 4028) against sipp scenarios (timer_*): our refresh as the refresher (UPDATE,
// re-INVITE), the peer's refreshes, expiry with BYE and its Reason, 422 both ways, and 'off'.
// Short intervals (3-6 s) through minSessionExpiresSec, which allows values below RFC 4028's 90 s
// for tests; sipp's message log (with timestamps) shows when each refresh arrived.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779' }
const LAB = { accounts: [ACCOUNT], minSessionExpiresSec: 2 }

/**
 * sipp's message log as [{ at (ms), received, firstLine, text }]: each block starts with a
 * `----- <date> <time>` line, then "UDP message received/sent".
 */
function timeline(log) {
  const out = []
  for (const block of log.split(/^-{20,} /m).slice(1)) {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(block)
    if (!m) continue
    const lines = block.split('\n')
    const start = lines.findIndex((l) => /message (received|sent)/.test(l))
    if (start < 0) continue
    const text = lines.slice(start + 1).join('\n').trim()
    out.push({
      at: Date.parse(`${m[1]}T${m[2].slice(0, 12)}`),
      received: /received/.test(lines[start]),
      firstLine: text.split(/\r?\n/)[0],
      text,
    })
  }
  return out
}

const requests = (tl, method) => tl.filter((m) => m.received && m.firstLine.startsWith(method + ' '))
const answers = (tl, code) => tl.filter((m) => !m.received && m.firstLine.startsWith(`SIP/2.0 ${code}`))
const oLine = (text) => (/^o=.*$/m.exec(text) || [''])[0].trim()

const confirmedOf = (sip, events, id) => waitFor(sip, events, 'call_state', (e) => e.callId === id && e.state === 'confirmed')

/** Answers every incoming call at once. */
const answerAll = (sip) => sip.on('incoming_call', (e) => sip.answer(e.callId).catch(() => {}))

test('as refresher we send UPDATE at half the interval, and again after its 200 restarted the timer', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'timer_uas_update', t })
  const { sip, events } = await startService(t, { ...LAB, sessionExpiresSec: 4 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  const d = await disconnected(sip, events, call.id, 12000)
  assert.match(d.reason, /remote hangup/, JSON.stringify(d))
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  const tl = timeline(r.messages)
  const ok = tl.find((m) => !m.received && /^SIP\/2\.0 200/.test(m.firstLine) && /INVITE/.test(m.text))
  const updates = requests(tl, 'UPDATE')
  assert.equal(updates.length, 2, 'two UPDATE refreshes')
  assert.doesNotMatch(updates[0].text, /Content-Type: application\/sdp/i, 'an UPDATE refresh has no SDP')
  // due at 2 s after the 200 and after each refresh's 200 (timer wheel and a busy box: slack)
  const gaps = [updates[0].at - ok.at, updates[1].at - updates[0].at]
  for (const gap of gaps) assert.ok(gap >= 1800 && gap <= 3000, `refresh gaps ${gaps} ms, expected ~2000`)
  await sip.stop()
})

test("with sessionRefresh 'invite' the refresh is a re-INVITE with the same SDP (same o= version)", { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'timer_uas_reinvite', t })
  const { sip, events } = await startService(t, { ...LAB, sessionExpiresSec: 4, sessionRefresh: 'invite' })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  const d = await disconnected(sip, events, call.id, 10000)
  assert.match(d.reason, /remote hangup/, JSON.stringify(d))
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  const tl = timeline(r.messages)
  const invites = requests(tl, 'INVITE')
  assert.equal(invites.length, 2, 'the INVITE and one re-INVITE refresh')
  assert.equal(requests(tl, 'UPDATE').length, 0, 'no UPDATE although the peer allows it')
  assert.ok(oLine(invites[0].text).length > 0)
  assert.equal(oLine(invites[1].text), oLine(invites[0].text), 'the SDP did not change: nor did its o= version')
  const gap = invites[1].at - invites[0].at
  assert.ok(gap >= 1800 && gap <= 3200, `re-INVITE ${gap} ms after the INVITE, expected ~2000`)
  await sip.stop()
})

test("'always' refreshes a peer without timer support; a refresh answered 481 ends the call with BYE", { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'timer_uas_always_481', t })
  const { sip, events } = await startService(t, { ...LAB, sessionTimers: 'always', sessionExpiresSec: 4 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  const d = await disconnected(sip, events, call.id, 6000)
  assert.equal(d.code, 481, JSON.stringify(d))
  assert.match(d.reason, /^session refresh failed: 481/, JSON.stringify(d))
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp got our UPDATE (Session-Expires: 4;refresher=uac) and then our BYE: ' + describeSipp(r))
  await sip.stop()
})

test('the peer refreshes by UPDATE and re-INVITE: our 200s carry Session-Expires and the call outlives the interval', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, LAB)
  answerAll(sip)
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'timer_uac_refresh', remote: addr, t })
  const inc = await seen
  await confirmedOf(sip, events, inc.callId)
  const started = Date.now()
  const d = await disconnected(sip, events, inc.callId, 10000)
  const lasted = Date.now() - started
  assert.match(d.reason, /remote hangup/, JSON.stringify(d))
  assert.ok(lasted >= 4000, `the call lasted ${lasted} ms, past the 3 s interval (expiry due at 2 s without refreshes)`)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp found Session-Expires: 3;refresher=uac in each of our 200s: ' + describeSipp(r))
  assert.equal(requests(timeline(r.messages), 'BYE').length, 0, 'we sent no BYE')
  await sip.stop()
})

test('the peer stops refreshing: BYE with Reason 408 "session timer expired", disconnected says so', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, LAB)
  answerAll(sip)
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'timer_uac_expire', remote: addr, t })
  const inc = await seen
  await confirmedOf(sip, events, inc.callId)
  const started = Date.now()
  const d = await disconnected(sip, events, inc.callId, 6000)
  const after = Date.now() - started
  assert.deepEqual([d.code, d.reason], [408, 'session timer expired'])
  // interval 3 s, the refresher's margin min(32 s, 3 s / 3): BYE at 2 s
  assert.ok(after >= 1700 && after <= 3000, `ended ${after} ms after confirmed, expected ~2000`)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got our BYE with the Reason: ' + describeSipp(r))
  await sip.stop()
})

test('a 422 to our INVITE: a new INVITE with Session-Expires and Min-SE raised to its Min-SE', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'timer_uas_422', t })
  const { sip, events } = await startService(t, { ...LAB, sessionExpiresSec: 4 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  await sip.hangup(call)
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp saw Session-Expires: 6 and Min-SE: 6 in the second INVITE: ' + describeSipp(r))
  assert.equal(requests(timeline(r.messages), 'INVITE').length, 2)
  await sip.stop()
})

test('a second 422 that asks for no more than we sent ends the call with 422 (no INVITE loop)', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'timer_uas_422_again', t })
  const { sip, events } = await startService(t, { ...LAB, sessionExpiresSec: 4 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  const d = await disconnected(sip, events, call.id, 5000)
  assert.equal(d.code, 422, JSON.stringify(d))
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.equal(requests(timeline(r.messages), 'INVITE').length, 2)
  await sip.stop()
})

test('an INVITE below our Min-SE gets 422 with Min-SE: 90 and never rings', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  answerAll(sip)
  const uac = await startSipp({ scenario: 'timer_uac_422', remote: addr, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got 422 with Min-SE: 90: ' + describeSipp(r))
  assert.ok(!events.some((e) => e.name === 'incoming_call'), 'no incoming_call')
  await sip.stop()
})

test("sessionTimers 'off': our INVITE has no Supported: timer, Session-Expires or Min-SE", { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t })
  const { sip, events } = await startService(t, { accounts: [ACCOUNT], sessionTimers: 'off' })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  await sip.hangup(call)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  const [invite] = requests(timeline(r.messages), 'INVITE')
  assert.ok(invite, 'sipp logged our INVITE')
  assert.doesNotMatch(invite.text, /^(Session-Expires|x|Min-SE):/im)
  assert.doesNotMatch(invite.text, /^(Supported|k|Require):.*\btimer\b/im)
  await sip.stop()
})

test('session timer options are checked: a wrong type is a TypeError, a bad value names the field', () => {
  const { SipService } = require('..')
  assert.doesNotThrow(() => new SipService({ sessionTimers: 'always', sessionExpiresSec: 4, minSessionExpiresSec: 2, sessionRefresh: 'invite' }))
  // checked in JS, before the engine: the message says what the field must be
  assert.throws(() => new SipService({ sessionExpiresSec: '90' }), (e) => e instanceof TypeError && /config\.sessionExpiresSec must be/.test(e.message))
  assert.throws(() => new SipService({ sessionTimers: 1 }), (e) => e instanceof TypeError && /config\.sessionTimers must be a string/.test(e.message))
  for (const [config, field] of [
    [{ sessionTimers: 'sometimes' }, 'sessionTimers'],
    [{ sessionRefresh: 'bye' }, 'sessionRefresh'],
    [{ minSessionExpiresSec: 1 }, 'minSessionExpiresSec'],
    [{ sessionExpiresSec: 30 }, 'sessionExpiresSec'],
  ]) {
    assert.throws(() => new SipService(config), (e) => e.message.includes(field), JSON.stringify(config))
  }
})
