// Hold and resume from both sides: sipp holds us and we hold it (each direction checked by a regex
// in the scenario that fails it), `inactive` when both hold, `hold` events by 'local' and
// 'remote', our RTP stopping and restarting; with PJSIP: music on hold heard by PJSIP while we
// hold it, and a tone through after each resume, both ways.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { callWithPeer } = require('./helpers/interop')
const A = require('./helpers/audio')

const ACCOUNT = { extension: '7779' }

/** How many RTP packets we send to the call's peer in the next `ms`. */
async function sendingOver(sip, callId, ms) {
  const a = sip.callStats(callId).packetsSent
  await sleep(ms)
  return sip.callStats(callId).packetsSent - a
}

test('sipp holds us, we hold it too (inactive), it resumes us (we send again), we resume', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  const holds = []
  sip.on('hold', (e) => holds.push(e))
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'hold_both', remote: addr, t })
  const { callId } = await seen
  await sip.answer(callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')
  assert.equal(sip.callInfo(callId).hold, 'none')

  // sipp's re-INVITE a=sendonly: a hold by 'remote', and we stop sending
  await until(() => holds.length >= 1, 5000, () => `a hold event by remote (${JSON.stringify(holds)})`)
  assert.deepEqual(holds[0], { type: 'hold', callId, by: 'remote', held: true })
  assert.equal(sip.callInfo(callId).hold, 'remote')
  assert.equal(sip.callStats(callId).direction, 'recvonly')
  await sleep(60) // packets already scheduled
  const whileHeld = await sendingOver(sip, callId, 400)
  assert.ok(whileHeld <= 1, `held by the peer we must not send: ${whileHeld} packets in 400 ms`)

  // our hold while held: sipp's regex wants a=inactive
  await sip.hold(callId)
  assert.equal(sip.callInfo(callId).hold, 'both')
  assert.equal(sip.callStats(callId).direction, 'inactive')

  // sipp resumes us (a=sendrecv): we still hold, so our answer is a=sendonly and we send again
  await until(() => holds.length >= 3, 5000, () => `the resume by remote (${JSON.stringify(holds)})`)
  assert.deepEqual(holds[2], { type: 'hold', callId, by: 'remote', held: false })
  assert.equal(sip.callInfo(callId).hold, 'local')
  assert.equal(sip.callStats(callId).direction, 'sendonly')
  const resumed = await sendingOver(sip, callId, 400)
  assert.ok(resumed >= 10, `resumed by the peer we send again: ${resumed} packets in 400 ms`)

  // our unhold: sipp's regex wants a=sendrecv
  await sip.getCall(callId).unhold()
  assert.equal(sip.callInfo(callId).hold, 'none')
  assert.equal(sip.callStats(callId).direction, 'sendrecv')
  // events cross the thread boundary after the promise: wait for the last one
  await until(() => holds.length >= 4, 2000, () => `four hold events (${JSON.stringify(holds)})`)
  assert.deepEqual(
    holds.map((e) => `${e.by}:${e.held}`),
    ['remote:true', 'local:true', 'remote:false', 'local:false'],
  )
  await disconnected(sip, events, callId)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp saw a=recvonly, a=inactive, a=sendonly, a=sendrecv: ' + describeSipp(r))
})

test('hold() options and state are checked', { timeout: 20000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT] })
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'hold_local', remote: addr, t, durationMs: 100 })
  const { callId } = await seen
  await assert.rejects(sip.hold(callId), (e) => {
    assert.match(e.message, new RegExp(`hold: call ${callId} is incoming, not confirmed`))
    return true
  })
  await sip.answer(callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed')
  await assert.rejects(sip.hold(callId, { music: 5 }), TypeError)
  await assert.rejects(sip.hold(callId, { musik: 'x.wav' }), TypeError)
  await assert.rejects(sip.hold(callId, 'moh.wav'), TypeError)
  // an unreadable music file fails hold() alone: no re-INVITE went out, sipp still waits for it
  await assert.rejects(sip.hold(callId, { music: '/nonexistent/moh.wav' }), /music/)
  assert.equal(sip.callInfo(callId).hold, 'none')
  await sip.hold(callId)
  assert.equal(sip.callInfo(callId).hold, 'local')
  await sip.unhold(callId)
  await disconnected(sip, events, callId)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp saw a=sendonly then a=sendrecv: ' + describeSipp(r))
})

test('PJSIP: our music on hold reaches it while held, a tone after resume; its hold of us, a tone after', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const dir = tmpDir('hold-pjsip')
  const { sip, callId, peer: pj } = await callWithPeer(t, 'pjsua2', 'outgoing')
  const holds = []
  sip.on('hold', (e) => holds.push(e))
  const music = A.writeToneWav(path.join(dir, 'moh.wav'), { freq: 700, ms: 400, levelDb: -10 })

  // we hold PJSIP with music: it hears the 700 Hz loop
  let from = pj.events.length
  await sip.hold(callId, { music })
  await pj.waitEvent('media_state', (e) => e.status === 'remote_hold', 5000, from)
  assert.equal(sip.callStats(callId).direction, 'sendonly')
  const mohRec = path.join(dir, 'pjsip-heard-moh.wav')
  await pj.record(mohRec)
  await sleep(1500)
  await pj.stopRecord()
  A.assertTone(A.toneCheck(mohRec), { freq: 700, levelDb: -10, minMs: 800, what: 'PJSIP recording of our music on hold' })

  // we resume: the music stops, our tone reaches PJSIP
  from = pj.events.length
  await sip.unhold(callId)
  await pj.waitEvent('media_state', (e) => e.status === 'active' && e.dir === 'sendrecv', 5000, from)
  const afterOurs = path.join(dir, 'after-our-unhold.wav')
  await pj.record(afterOurs)
  await sip.playTone(callId, { frequency: 1000, durationMs: 1200, level: -10 })
  await sleep(A.PLAYOUT_MS)
  await pj.stopRecord()
  A.assertTone(A.toneCheck(afterOurs, { skipMs: 100 }), { freq: 1000, levelDb: -10, minMs: 400, what: 'PJSIP recording after our unhold (no music left)' })

  // PJSIP holds us, then resumes: hold events by remote, and its tone reaches our recording
  pj.cmd('hold')
  await until(() => holds.some((e) => e.by === 'remote' && e.held), 5000, () => `hold by remote (${JSON.stringify(holds)})`)
  assert.equal(sip.callInfo(callId).hold, 'remote')
  pj.cmd('unhold')
  await until(() => holds.some((e) => e.by === 'remote' && !e.held), 5000, () => `resume by remote (${JSON.stringify(holds)})`)
  assert.equal(sip.callInfo(callId).hold, 'none')
  await until(() => sip.callStats(callId).direction === 'sendrecv', 2000, 'sendrecv after its unhold')
  const ourRec = path.join(dir, 'we-heard.wav')
  await sip.record(callId, ourRec)
  await pj.playTone(440, 1200, -10)
  await pj.toneDone()
  await sleep(A.PLAYOUT_MS)
  await sip.stopRecording(callId)
  A.assertTone(A.toneCheck(ourRec, { skipMs: 100 }), { freq: 440, levelDb: -10, minMs: 400, what: "our recording of PJSIP's tone after its unhold" })
  assert.deepEqual(
    holds.map((e) => `${e.by}:${e.held}`),
    ['local:true', 'local:false', 'remote:true', 'remote:false'],
  )
  await sip.hangup(callId)
})
