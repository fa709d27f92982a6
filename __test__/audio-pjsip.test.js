// Audio interop with PJSIP (pjsua2 wheel, null audio): tones both ways checked by content
// (frequency within 2 %, level within 3 dB), RFC 4733 DTMF both ways, and hold from PJSIP.
// Harness proven by peers.selftest.test.js. PJSIP's ToneGenerator at an explicit level L sends
// 440 Hz at L (+-0.2 dB) and 1000 Hz at about L+0.7 dB.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const A = require('./helpers/audio')
const { DIGITS, callWithPeer, collectDtmf, assertDigits } = require('./helpers/interop')

for (const direction of ['outgoing', 'incoming']) {
  const label = direction === 'outgoing' ? 'we call PJSIP' : 'PJSIP calls us'

  test(`${label}: our 1000 Hz tone reaches PJSIP, PJSIP's 440 Hz tone reaches our recording`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('pjsua2', t)) return
    const dir = tmpDir('audio-pjsip')
    const { sip, callId, peer: pj } = await callWithPeer(t, 'pjsua2', direction)

    // us -> PJSIP
    const pjRec = path.join(dir, 'pjsip-heard.wav')
    await pj.record(pjRec)
    await sip.playTone(callId, { frequency: 1000, durationMs: 2500, level: -10 })
    await sleep(A.PLAYOUT_MS)
    await pj.stopRecord()
    A.assertTone(A.toneCheck(pjRec), { freq: 1000, levelDb: -10, what: `PJSIP's recording of our playTone(1000 Hz, -10 dBFS)` })

    // PJSIP -> us
    const ourRec = path.join(dir, 'we-heard.wav')
    await sip.record(callId, ourRec)
    await pj.playTone(440, 2500, -10)
    await pj.toneDone()
    await sleep(A.PLAYOUT_MS)
    const info = await sip.stopRecording(callId)
    assert.equal(info.path, ourRec, 'stopRecording() reports the path')
    assert.ok(info.durationMs >= 2000, `recording lasted ${info.durationMs} ms, expected >= 2000`)
    A.assertTone(A.toneCheck(ourRec), { freq: 440, levelDb: -10, what: `our recording of PJSIP's 440 Hz at -10 dBFS` })

    const st = sip.callStats(callId)
    assert.equal(st.codec, 'PCMU', `negotiated codec: ${JSON.stringify(st)}`)
    assert.ok(st.packetsReceived > 100 && st.packetsSent > 100, `RTP both ways: ${JSON.stringify(st)}`)
    const ps = await pj.stats()
    assert.ok(ps.rx_pkt > 100 && ps.rx_loss === 0, `PJSIP received our RTP without loss: ${JSON.stringify(ps)}`)
    await sip.hangup(callId)
  })

  test(`${label}: DTMF ${DIGITS} both ways (RFC 4733), in order`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('pjsua2', t)) return
    const { sip, callId, peer: pj } = await callWithPeer(t, 'pjsua2', direction)
    const got = collectDtmf(sip, callId)

    pj.cmd('send_dtmf', DIGITS)
    // PJSIP refuses dialDtmf (PJ_EINVALIDOP) when the SDP has no telephone-event: its errors show here
    const pjErrors = () => pj.events.filter((e) => e.event === 'error').map((e) => e.message).join('; ')
    const gotDigits = () => got.map((e) => e.digit).join('')
    await until(() => got.length >= DIGITS.length, 8000, () => `our dtmf events for ${DIGITS} (got '${gotDigits()}'; PJSIP errors: ${pjErrors()})`)
    assertDigits(gotDigits(), DIGITS, 'our dtmf events for the digits PJSIP sent', `PJSIP errors: ${pjErrors()}`)
    for (const e of got) {
      assert.equal(e.type, 'dtmf')
      assert.equal(e.method, 'rfc4733', `dtmf event method: ${JSON.stringify(e)}`)
    }
    await sleep(300) // the measurement: the repeated end packets of the last digit come and go unreported
    assert.equal(got.length, DIGITS.length, `each digit reported once (end packets are sent 3 times): ${JSON.stringify(got)}`)

    await sip.sendDtmf(callId, DIGITS)
    await until(() => pj.dtmfDigits().length >= DIGITS.length, 5000, () => `PJSIP received ${DIGITS} (got '${pj.dtmfDigits()}')`)
    assertDigits(pj.dtmfDigits(), DIGITS, 'PJSIP received our sendDtmf digits')
    await sip.hangup(callId)
  })

  test(`${label}: PJSIP puts us on hold (a=sendonly): we stop sending, and resume after unhold`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('pjsua2', t)) return
    const { sip, callId, peer: pj } = await callWithPeer(t, 'pjsua2', direction)
    await until(() => sip.callStats(callId).packetsSent > 10, 5000, 'our first RTP packets')
    const s0 = sip.callStats(callId)
    assert.equal(s0.direction, 'sendrecv', `before hold: ${JSON.stringify(s0)}`)
    assert.ok(s0.packetsSent > 10, `we send RTP before hold: ${JSON.stringify(s0)}`)

    const from = pj.events.length
    pj.cmd('hold')
    await pj.waitEvent('media_state', (e) => e.status === 'local_hold', 5000, from)
    // our answer to a=sendonly must be a=recvonly (or inactive)
    await until(() => sip.callStats(callId).direction !== 'sendrecv', 2000, () => `our direction to leave sendrecv (${JSON.stringify(sip.callStats(callId))})`)
    const held = sip.callStats(callId)
    assert.ok(['recvonly', 'inactive'].includes(held.direction), `our direction while held: ${JSON.stringify(held)}`)
    await sleep(100) // slack for packets already scheduled
    const h1 = sip.callStats(callId).packetsSent
    await sleep(1000)
    const h2 = sip.callStats(callId).packetsSent
    assert.ok(h2 - h1 <= 1, `while held we must not send RTP: packetsSent went ${h1} -> ${h2} in 1 s`)

    const from2 = pj.events.length
    pj.cmd('unhold')
    await pj.waitEvent('media_state', (e) => e.status === 'active' && e.dir === 'sendrecv', 5000, from2)
    await until(() => sip.callStats(callId).direction === 'sendrecv', 2000, () => `our direction back to sendrecv (${JSON.stringify(sip.callStats(callId))})`)
    const u1 = sip.callStats(callId).packetsSent
    await sleep(1000)
    const u2 = sip.callStats(callId).packetsSent
    assert.ok(u2 - u1 >= 40, `after unhold we send again (~50 pkt/s): packetsSent went ${u1} -> ${u2} in 1 s`)

    // and the audio flows again: our tone reaches PJSIP after the re-INVITEs
    const rec = path.join(tmpDir('audio-pjsip-hold'), 'after-unhold.wav')
    await pj.record(rec)
    await sip.playTone(callId, { frequency: 1000, durationMs: 1500, level: -10 })
    await sleep(A.PLAYOUT_MS)
    await pj.stopRecord()
    A.assertTone(A.toneCheck(rec, { skipMs: 100 }), { freq: 1000, levelDb: -10, minMs: 400, what: 'PJSIP recording after unhold' })
    await sip.hangup(callId)
  })
}

test('RTCP with PJSIP: our SR and its RR give a round-trip time, and its report shows no loss', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const { sip, callId } = await callWithPeer(t, 'pjsua2', 'outgoing')
  // We send an SR every 5 s; PJSIP's next RR echoes it (LSR/DLSR), which gives the RTT.
  const st = await until(
    () => {
      const s = sip.callStats(callId)
      return s.rttMs !== null && s.remotePacketsLost !== null ? s : null
    },
    20000,
    () => `rttMs from RTCP: ${JSON.stringify(sip.callStats(callId))}`,
  )
  assert.ok(st, `rttMs from RTCP within 20 s: ${JSON.stringify(sip.callStats(callId))}`)
  assert.ok(st.rttMs >= 0 && st.rttMs < 100, `loopback RTT ${st.rttMs} ms`)
  assert.equal(st.remotePacketsLost, 0, `PJSIP reports no loss of our stream: ${JSON.stringify(st)}`)
  assert.ok(st.remoteJitterMs !== null && st.remoteJitterMs < 20, `PJSIP's jitter of our stream: ${st.remoteJitterMs} ms`)
  await sip.hangup(callId)
})
