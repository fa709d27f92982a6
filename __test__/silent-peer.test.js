// Peers that go silent: every path ends the call (or the registration attempt) in bounded time,
// by the RFC 3261 timers, and leaves no call, transaction or RTP port behind. sipp scenarios go
// silent at each point; the services run with timerT1Ms 100, so 64·T1 is 6.4 s.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { sleep, until } = require('./helpers/wait')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const ACCOUNT = { extension: '7779' }
const T1 = 100
const T1X64 = 64 * T1
const FAST = { accounts: [ACCOUNT], timerT1Ms: T1 }
// Slack on top of a timer: the stack's timer wheel ticks every 20 ms, and the box is busy.
const SLACK = 2000

const drained = (sip, ms) =>
  until(
    () => {
      const c = sip.counters()
      return c.liveCalls === 0 && c.liveTransactions === 0 && c
    },
    ms,
    () => `liveCalls and liveTransactions back to 0 (now ${JSON.stringify(sip.counters())})`,
  )

/** sipp's messages so far: it is stopped first, so the log is complete. */
async function sippMessages(uas) {
  await uas.kill()
  return (await uas.done).messages
}

/** A UDP socket that reads and never answers. */
async function blackHole(t) {
  const s = dgram.createSocket('udp4')
  s.on('message', () => {})
  await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve))
  t.after(() => s.close())
  return s.address().port
}

const ringingOf = (sip, events, id) =>
  waitFor(sip, events, 'call_state', (e) => e.callId === id && (e.state === 'ringing' || e.state === 'early'))
const confirmedOf = (sip, events, id) => waitFor(sip, events, 'call_state', (e) => e.callId === id && e.state === 'confirmed')

test('CANCEL never answered: the call ends within 64·T1, hangup resolves, the RTP ports come back', { timeout: 40000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_cancel_ignored', t, timeoutMs: 30000 })
  // one RTP pair only: a second call gets it only if the first gave it back
  const { sip, events } = await startService(t, { ...FAST, rtpPortMin: 47200, rtpPortMax: 47202, stopGraceMs: 300 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await ringingOf(sip, events, call.id)
  const started = Date.now()
  await sip.hangup(call) // resolves, does not reject because the peer is silent
  const elapsed = Date.now() - started
  const d = await disconnected(sip, events, call.id, 1000)
  assert.ok([487, 408].includes(d.code), JSON.stringify(d))
  assert.match(d.reason, /CANCEL/, JSON.stringify(d))
  assert.ok(elapsed >= T1X64 - 500 && elapsed <= T1X64 + SLACK, `ended ${elapsed} ms after hangup, 64·T1 = ${T1X64}`)
  assert.equal(sip.calls().length, 0)
  await drained(sip, T1X64 + SLACK)
  const messages = await sippMessages(uas)
  assert.match(messages, /^CANCEL sip:/m)
  const next = await sip.makeCall('7779', `sip:1000@127.0.0.1:${await blackHole(t)}`)
  assert.equal(next.state, 'calling', 'the only RTP pair was free again')
  await sip.stop()
})

test('a 200 that crosses our CANCEL is ACKed and BYEd, and the call ends', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_cancel_crossing_200', t })
  const { sip, events } = await startService(t, FAST)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await ringingOf(sip, events, call.id)
  await sip.hangup(call)
  const d = await disconnected(sip, events, call.id, 1000)
  assert.equal(d.code, 487, JSON.stringify(d))
  assert.ok(!events.some((e) => e.name === 'call_state' && e.callId === call.id && e.state === 'confirmed'))
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp got the ACK for its 200 and then a BYE: ' + describeSipp(r))
  await drained(sip, T1X64 + SLACK)
  await sip.stop()
})

test('BYE never answered: disconnected at once; the transaction gives up within 64·T1; Contact parameters kept', { timeout: 40000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_bye_ignored', t, timeoutMs: 30000 })
  const { sip, events } = await startService(t, FAST)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  const started = Date.now()
  await sip.hangup(call.id)
  const elapsed = Date.now() - started
  assert.ok(elapsed < 1000, `hangup took ${elapsed} ms; a BYE is not waited for`)
  const d = await disconnected(sip, events, call.id, 100)
  assert.equal(d.code, 200, JSON.stringify(d))
  assert.match(d.reason, /local hangup/)
  assert.equal(sip.counters().liveCalls, 0)
  await drained(sip, T1X64 + SLACK)
  const messages = await sippMessages(uas)
  // the remote target is the Contact as sipp sent it, ;transport= and ;ob included (RFC 3261 §12.1.2)
  assert.match(messages, /^ACK sip:127\.0\.0\.1:\d+;transport=UDP;ob SIP\/2\.0/im)
  assert.match(messages, /^BYE sip:127\.0\.0\.1:\d+;transport=UDP;ob SIP\/2\.0/im)
  await sip.stop()
})

test('ACK never arriving for our 200: BYE and disconnected 408 after 64·T1; the caller Contact parameters are kept', { timeout: 40000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, FAST)
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_no_ack', remote: addr, t, timeoutMs: 30000 })
  const inc = await seen
  await sip.answer(inc.callId)
  const answered = Date.now()
  const d = await disconnected(sip, events, inc.callId, T1X64 + SLACK)
  const elapsed = Date.now() - answered
  assert.equal(d.code, 408, JSON.stringify(d))
  assert.ok(elapsed >= T1X64 - 500, `ended ${elapsed} ms after the 200, 64·T1 = ${T1X64}`)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got our BYE: ' + describeSipp(r))
  assert.match(r.messages, /^BYE sip:1000@127\.0\.0\.1:\d+;transport=UDP;ob SIP\/2\.0/im)
  await drained(sip, T1X64 + SLACK)
  await sip.stop()
})

test('re-INVITE never answered: hold() rejects with 408 after 64·T1, a request_failed event, the call keeps its media', { timeout: 40000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_reinvite_ignored', t, timeoutMs: 30000 })
  const { sip, events } = await startService(t, FAST)
  const failed = new Promise((resolve) => sip.once('request_failed', resolve))
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  const started = Date.now()
  await assert.rejects(call.hold(), (e) => e instanceof Error && /408/.test(e.message) && e.message.includes(call.id))
  const elapsed = Date.now() - started
  assert.ok(elapsed >= T1X64 - 500 && elapsed <= T1X64 + SLACK, `hold() failed after ${elapsed} ms, 64·T1 = ${T1X64}`)
  const ev = await failed
  assert.deepEqual([ev.callId, ev.method, ev.purpose, ev.code], [call.id, 'INVITE', 'hold', 408])
  assert.ok(!events.some((e) => e.name === 'call_state' && e.callId === call.id && e.state === 'disconnected'))
  assert.equal(sip.calls().find((c) => c.id === call.id)?.state, 'confirmed')
  const before = call.stats()
  await sleep(300) // the measurement: RTP goes on after the failed re-INVITE
  const after = call.stats()
  assert.equal(after.direction, 'sendrecv')
  assert.ok(after.packetsSent >= before.packetsSent + 10, `RTP still flows: ${before.packetsSent} -> ${after.packetsSent}`)
  await sip.hangup(call)
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp got our BYE after the ignored re-INVITE: ' + describeSipp(r))
  await drained(sip, T1X64 + SLACK)
  await sip.stop()
})

test('REGISTER never answered: failed 408 after 64·T1, a retry after the back-off, no transaction left behind', { timeout: 40000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_silent', t, timeoutMs: 30000 })
  const { sip, events } = await startService(t, {
    server: '127.0.0.1',
    serverPort: reg.port,
    accounts: [{ extension: '7779', password: 'secret' }],
    timerT1Ms: T1,
    stopGraceMs: 300,
  })
  const started = Date.now()
  const fail = await waitFor(sip, events, 'registration', (e) => e.state === 'failed', T1X64 + SLACK)
  const failedAt = Date.now()
  assert.equal(fail.code, 408, JSON.stringify(fail))
  assert.ok(failedAt - started >= T1X64 - 500, `failed after ${failedAt - started} ms, 64·T1 = ${T1X64}`)
  const registering = () => events.filter((e) => e.name === 'registration' && e.state === 'registering').length
  await until(() => registering() >= 2, 5000, 'a second REGISTER after the back-off')
  const retryAfter = Date.now() - failedAt
  assert.ok(retryAfter >= 1500, `retried ${retryAfter} ms after the failure; the back-off is 2 s`)
  // only the retry's own transaction is alive: the first one ended with its Timer F
  assert.ok(sip.counters().liveTransactions <= 1, JSON.stringify(sip.counters()))
  await sip.stop()
})

test('INVITE never answered at all: 408 after 64·T1 (Timer B), nothing left behind', { timeout: 30000 }, async (t) => {
  const { sip, events } = await startService(t, FAST)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${await blackHole(t)}`)
  const started = Date.now()
  const d = await disconnected(sip, events, call.id, T1X64 + SLACK)
  assert.equal(d.code, 408, JSON.stringify(d))
  assert.ok(Date.now() - started >= T1X64 - 500)
  await drained(sip, SLACK)
  await sip.stop()
})

test('rtpTimeoutMs: a peer that sends no RTP or RTCP gets a BYE with reason "RTP timeout"', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t })
  const { sip, events } = await startService(t, { ...FAST, rtpTimeoutMs: 1000 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  const confirmedAt = Date.now()
  const d = await disconnected(sip, events, call.id, 5000)
  const elapsed = Date.now() - confirmedAt
  assert.equal(d.reason, 'RTP timeout', JSON.stringify(d))
  assert.ok(elapsed >= 800 && elapsed < 1250 + SLACK, `ended ${elapsed} ms after answer, rtpTimeoutMs 1000`)
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp got our BYE: ' + describeSipp(r))
  assert.match(r.messages, /^Reason: SIP;cause=408;text="RTP timeout"/m)
  await sip.stop()
})

test('rtpTimeoutMs is off by default: a silent peer keeps its call', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t })
  const { sip, events } = await startService(t, FAST)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  await sleep(2500) // the measurement: no RTP timeout ends the call meanwhile
  assert.equal(sip.calls().find((c) => c.id === call.id)?.state, 'confirmed')
  await sip.hangup(call)
  assert.equal((await uas.done).code, 0)
  await sip.stop()
})

test('the first RTCP report goes out after the shorter randomised initial interval (RFC 3550 §6.2), not 5 s', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  // the media peer is two UDP sockets of this test: RTP on an even port, RTCP on the next
  let rtp
  let rtcp
  for (let port = 47300; port < 47400 && !rtcp; port += 2) {
    try {
      rtp = dgram.createSocket('udp4')
      await new Promise((resolve, reject) => rtp.once('error', reject).bind(port, '127.0.0.1', resolve))
      rtcp = dgram.createSocket('udp4')
      await new Promise((resolve, reject) => rtcp.once('error', reject).bind(port + 1, '127.0.0.1', resolve))
    } catch {
      for (const s of [rtp, rtcp]) s && s.close()
      rtp = rtcp = undefined
    }
  }
  assert.ok(rtcp, 'no free even/odd port pair in 47300-47399')
  t.after(() => [rtp, rtcp].forEach((s) => s.close()))
  let firstRtp = 0
  let firstRtcp = 0
  rtp.on('message', () => (firstRtp = firstRtp || Date.now()))
  rtcp.on('message', (m) => {
    // an SR (200) or RR (201) as the first packet of the compound
    if (m.length >= 8 && (m[1] === 200 || m[1] === 201)) firstRtcp = firstRtcp || Date.now()
  })
  const uas = await startSipp({ scenario: 'uas_answer_media', t, keys: { mport: rtp.address().port } })
  const { sip, events } = await startService(t, FAST)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await confirmedOf(sip, events, call.id)
  await until(() => firstRtp && firstRtcp, 7000, 'RTP and then RTCP from us')
  const gap = firstRtcp - firstRtp
  // 2.5 s × [0.5, 1.5] / (e - 3/2): between 1.03 and 3.08 s
  assert.ok(gap < 3300, `first RTCP ${gap} ms after the first RTP`)
  await sip.hangup(call)
  await sip.stop()
})
