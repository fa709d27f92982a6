// SRTP (SDES, RFC 4568) with real peers: PJSIP (pjsua2 wheel, srtpUse optional/mandatory,
// srtpSecureSignaling 0 so that keys may go over UDP) both ways with tones checked in both
// directions, one call per suite; sipp for the refusals: 'mandatory' answers a plain RTP/AVP
// offer with 488, 'optional' still sets up a plain call with a UAS that has no SRTP.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { startSipp, describeSipp } = require('./peers/sipp')
const { sleep } = require('./helpers/wait')
const A = require('./helpers/audio')
const { callWithPeer } = require('./helpers/interop')
const { srtpReceiver, ulawToFloat } = require('./helpers/srtp')
const dgram = require('node:dgram')

const SUITE_80 = 'AES_CM_128_HMAC_SHA1_80'
const SUITE_32 = 'AES_CM_128_HMAC_SHA1_32'

// Each case: who calls, our mode, PJSIP's mode and the suites it lists (its offer order, or
// the only one it accepts of ours), and the suite that must be in use.
const CASES = [
  { direction: 'outgoing', ours: 'mandatory', theirs: 'mandatory', cryptos: [SUITE_32], suite: SUITE_32 },
  { direction: 'incoming', ours: 'mandatory', theirs: 'mandatory', cryptos: [SUITE_80], suite: SUITE_80 },
  { direction: 'outgoing', ours: 'optional', theirs: 'optional', cryptos: undefined, suite: SUITE_80 },
  { direction: 'incoming', ours: 'optional', theirs: 'mandatory', cryptos: [SUITE_32, SUITE_80], suite: SUITE_32 },
]

for (const c of CASES) {
  const label = c.direction === 'outgoing' ? 'we call PJSIP' : 'PJSIP calls us'
  test(`SRTP ${c.ours}/${c.theirs}, ${label}: ${c.suite}, tones both ways`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('pjsua2', t)) return
    const service = await startService(t, { accounts: [{ extension: '7779' }], srtp: c.ours })
    const { sip, callId, peer: pj } = await callWithPeer(t, 'pjsua2', c.direction, {
      service,
      peerOptions: { srtp: c.theirs, srtpCryptos: c.cryptos },
    })
    const dir = tmpDir('srtp')
    assert.equal(sip.callStats(callId).srtp, c.suite, `suite in use: ${JSON.stringify(sip.callStats(callId))}`)

    const pjRec = path.join(dir, 'pjsip-heard.wav')
    await pj.record(pjRec)
    await sip.playTone(callId, { frequency: 1000, durationMs: 2000, level: -10 })
    await sleep(A.PLAYOUT_MS)
    await pj.stopRecord()
    A.assertTone(A.toneCheck(pjRec), { freq: 1000, levelDb: -10, minMs: 800, what: `PJSIP's recording of our 1000 Hz over SRTP` })

    const ourRec = path.join(dir, 'we-heard.wav')
    await sip.record(callId, ourRec)
    await pj.playTone(440, 2000, -10)
    await pj.toneDone()
    await sleep(A.PLAYOUT_MS)
    await sip.stopRecording(callId)
    A.assertTone(A.toneCheck(ourRec), { freq: 440, levelDb: -10, minMs: 800, what: `our recording of PJSIP's 440 Hz over SRTP` })

    const st = sip.callStats(callId)
    assert.equal(st.srtpAuthFailures, 0, `no packet failed authentication: ${JSON.stringify(st)}`)
    assert.ok(st.packetsReceived > 100 && st.packetsSent > 100, `SRTP both ways: ${JSON.stringify(st)}`)
    t.diagnostic(`${c.suite}: sent ${st.packetsSent}, received ${st.packetsReceived}, auth failures ${st.srtpAuthFailures}`)
    await sip.hangup(callId)
  })
}

test("SRTP mandatory: a caller offering plain RTP/AVP gets 488, and no incoming_call", { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [{ extension: '7779' }], srtp: 'mandatory' })
  const sipp = await startSipp({ scenario: 'srtp_uac_plain_488', remote: addr, t })
  const r = await sipp.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.equal(events.filter((e) => e.name === 'incoming_call').length, 0, 'no incoming_call for a refused offer')
  assert.equal(sip.calls().length, 0, 'no call kept')
})

test('SRTP optional: a UAS without SRTP answers our best-effort offer, the call is plain RTP', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t })
  const { sip, events } = await startService(t, { accounts: [{ extension: '7779' }], srtp: 'optional' })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  assert.equal(sip.callStats(call.id).srtp, null, `plain call: ${JSON.stringify(sip.callStats(call.id))}`)
  await sip.hangup(call.id)
  await disconnected(sip, events, call.id)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  const invite = r.messages.slice(r.messages.indexOf('INVITE sip:'))
  assert.match(invite, /m=audio \d+ RTP\/AVP /, 'optional offers RTP/AVP')
  assert.match(invite, /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:/, 'with a=crypto lines')
})

test('SRTP suite switched by re-INVITEs and back: the return to a suite sends under a fresh key of ours', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [{ extension: '7779' }], srtp: 'mandatory' })
  const sipp = await startSipp({ scenario: 'srtp_uac_suite_switch', remote: addr, t })
  const { callId } = await waitFor(sip, events, 'incoming_call')
  await sip.answer(callId)
  const r = await sipp.done
  assert.equal(r.code, 0, describeSipp(r))
  // our 200 OKs to the three INVITEs, in order: the suite and key we send under in each
  const answers = r.messages
    .split(/(?=SIP\/2\.0 200 OK)/)
    .filter((m) => /^SIP\/2\.0 200 OK/.test(m) && /CSeq:\s*\d+ INVITE/i.test(m))
    .map((m) => m.match(/a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)/))
  assert.equal(answers.length, 3, `three answers with a=crypto:\n${describeSipp(r)}`)
  const [first, switched, back] = answers.map((a) => ({ suite: a[1], key: a[2] }))
  assert.deepEqual([first.suite, switched.suite, back.suite], [SUITE_80, SUITE_32, SUITE_80])
  assert.notEqual(back.key, first.key, 'back on _80, our key is a new one (the first _80 context ended with the switch)')
  assert.notEqual(switched.key, first.key)
})

test('SRTP on the wire: our packets authenticate and decrypt with the key we offered (RFC 3711 in JS), and carry no plain audio', { timeout: 30000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const wire = dgram.createSocket('udp4')
  const packets = []
  wire.on('message', (m) => packets.push(m))
  await new Promise((resolve) => wire.bind(0, '127.0.0.1', resolve))
  t.after(() => wire.close())
  const uas = await startSipp({ scenario: 'srtp_uas_answer', keys: { mport: wire.address().port }, t })
  const { sip, events } = await startService(t, { accounts: [{ extension: '7779' }], srtp: 'mandatory' })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await sip.playTone(call.id, { frequency: 1000, durationMs: 1000, level: -10 })
  await sleep(1300)
  await sip.hangup(call.id)
  await disconnected(sip, events, call.id)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  const key = r.messages.match(/a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/]+={0,2})/)?.[1]
  assert.ok(key, `our offer carries the _80 key: ${describeSipp(r)}`)

  const rtp = packets.filter((p) => p.length > 12 && (p[1] & 0x7f) === 0)
  assert.ok(rtp.length > 40, `our RTP reached the answer's port (${rtp.length} packets of ${packets.length})`)
  const rx = srtpReceiver(key, SUITE_80)
  const opened = rtp.map((p) => rx.unprotect(p))
  const failed = opened.filter((o) => !o.ok)
  assert.deepEqual(failed, [], `every packet's 80-bit tag checks under our key (${failed.length} of ${rtp.length} failed)`)
  assert.ok(rtp.every((p) => p.length === 12 + 160 + 10), 'header + 160 bytes of PCMU + a 10-byte tag')
  const audio = (list) => {
    const bytes = Buffer.concat(list)
    return { sampleRate: 8000, channelData: [Float32Array.from(bytes, ulawToFloat)] }
  }
  const plain = A.toneCheck(audio(opened.map((o) => o.rtp.subarray(o.headerLen))), { freq: 1000 })
  const onWire = A.toneCheck(audio(rtp.map((p) => p.subarray(12, p.length - 10))), { freq: 1000 })
  t.diagnostic(`decrypted: ${A.describeTone(plain)}; as sent: ${A.describeTone(onWire)}`)
  A.assertTone(plain, { freq: 1000, levelDb: -10, minMs: 500, what: 'our SRTP decrypted by the RFC 3711 reference' })
  assert.ok(onWire.purityDb < -10, `the payload as sent is noise, not the tone: ${A.describeTone(onWire)}`)
})

test('config.srtp: a value other than off/optional/mandatory is a TypeError naming the field', () => {
  const { SipService } = require('..')
  assert.throws(() => new SipService({ srtp: 'yes' }), { name: 'TypeError', message: /config\.srtp: expected off, optional, mandatory, got "yes"/ })
  assert.throws(() => new SipService({ srtp: true }), { name: 'TypeError', message: /config\.srtp must be a string/ })
})
