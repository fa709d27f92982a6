// The audio interop harness proven against the peers themselves, without sip-native: PJSIP calls
// baresip, and PJSIP calls PJSIP. A tone goes one way, another tone the other way; each side
// records what it hears and the recordings are analysed; DTMF goes both ways; a PJSIP hold stops
// the other side's RTP. If this fails, the audio-*.test.js failures are about the harness, not us.
//
// Calibration (measured here, PCMU, 8 kHz; see also __test__/peers/README.md):
//   - pjsua2 ToneGenerator with an explicit amplitude 32768*10^(L/20) arrives at about L+0.5 dB
//     at 1000 Hz (L = -10 -> -9.2 .. -9.3 dBFS; -20 -> -19.5; -3 -> -2.4) and at L (+-0.2) at 440 Hz.
//     With its default amplitude (volume 0 = 12288, -8.5 dBFS) 1000 Hz arrives at -7.9 dBFS but
//     440 Hz comes out distorted (purity -6 dB): always give an explicit level.
//   - baresip's ausine sends at about -7.3 dBFS (measured from its own sndfile "enc" dump and at
//     the receiving PJSIP).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
// Loads neither the addon nor the helpers that do (./helpers/sip, ./helpers/interop).
const { requirePeer, tmpDir } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const { startPjsua2 } = require('./peers/pjsua2')
const { startBaresip, AUSINE_DBFS } = require('./peers/baresip')
const A = require('./helpers/audio')

const DIGITS = '0123456789*#'

/**
 * `measure()`, then `check(result)` (which throws); measured once more when the first check
 * fails: a PJSIP jitter-buffer glitch on this shared 2-core box sometimes spoils one recording
 * (purity -4 dB, about one run in three). The harness must still hear a clean tone, once.
 */
async function checkedTwiceAtMost(t, what, measure, check) {
  const first = await measure()
  try {
    check(first)
    return first
  } catch (e) {
    t.diagnostic(`${what}, first try: ${e.message}; measuring again`)
  }
  const second = await measure()
  check(second)
  return second
}

test('PJSIP calls baresip: tones both ways arrive with their frequency and level; DTMF both ways in order', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t) || !requirePeer('baresip', t)) return
  const dir = tmpDir('selftest-pb')
  const bs = await startBaresip({ t, toneHz: 440, maxSeconds: 50 })
  const pj = await startPjsua2({ t, maxSeconds: 50 })
  pj.dial(bs.uri)
  await pj.established()
  await bs.established()

  // PJSIP hears baresip's ausine (it sends for the whole call) while its own 1 kHz goes out
  const heardExpect = { freq: 440, levelDb: AUSINE_DBFS, what: 'PJSIP recording of baresip ausine 440 Hz' }
  let attempt = 0
  const heard = await checkedTwiceAtMost(t, heardExpect.what, async () => {
    const pjRec = path.join(dir, `pjsip-heard-${attempt++}.wav`)
    await pj.record(pjRec)
    await pj.playTone(1000, 3000, -10)
    await pj.toneDone()
    await sleep(A.PLAYOUT_MS)
    await pj.stopRecord()
    return A.toneCheck(pjRec, { freq: 440 })
  }, (r) => A.assertTone(r, heardExpect))

  pj.cmd('send_dtmf', DIGITS)
  await until(() => bs.dtmfDigits().length >= DIGITS.length, 6000, () => `baresip received ${DIGITS} (got '${bs.dtmfDigits()}')`)
  await bs.sendDtmf(DIGITS)
  await until(() => pj.dtmfDigits().length >= DIGITS.length, 3000, () => `PJSIP received ${DIGITS} (got '${pj.dtmfDigits()}')`)

  pj.cmd('hangup')
  await bs.waitEvent('CALL_CLOSED')
  await bs.recordingsClosed()

  // what baresip says it sent agrees
  const sent = A.toneCheck(bs.sentWav(), { freq: 440 })
  A.assertTone(sent, { freq: 440, levelDb: AUSINE_DBFS, levelTolDb: 1, what: 'baresip enc dump' })
  // baresip heard PJSIP's 1 kHz at -10 dBFS (+0.7 dB of pjmedia tonegen)
  const got = A.toneCheck(bs.receivedWav(), { freq: 1000 })
  A.assertTone(got, { freq: 1000, levelDb: -10, what: 'baresip dec dump of PJSIP 1000 Hz' })
  t.diagnostic(`PJSIP heard ${A.describeTone(heard)}`)
  t.diagnostic(`baresip heard ${A.describeTone(got)}`)

  assert.equal(bs.dtmfDigits(), DIGITS, 'baresip received the digits PJSIP sent (RFC 2833), in order')
  assert.equal(bs.dtmfDigitsFromLog(), DIGITS, 'baresip log agrees')
  assert.equal(pj.dtmfDigits(), DIGITS, 'PJSIP received the digits baresip sent (sndcode), in order')
})

test('PJSIP calls PJSIP: tones both ways, DTMF, and hold (sendonly) stops the held side sending', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const dir = tmpDir('selftest-pp')
  const a = await startPjsua2({ t, autoAnswer: true, maxSeconds: 50, user: 'a' })
  const b = await startPjsua2({ t, maxSeconds: 50, user: 'b' })
  b.dial(a.uri)
  await b.established()
  await a.established()

  let attempt = 0
  const exchange = async () => {
    const aRec = path.join(dir, `a-heard-${attempt}.wav`)
    const bRec = path.join(dir, `b-heard-${attempt++}.wav`)
    await a.record(aRec)
    await b.record(bRec)
    await b.playTone(1000, 3000, -10)
    await a.playTone(440, 3000, -10)
    await Promise.all([a.toneDone(), b.toneDone()])
    await sleep(A.PLAYOUT_MS)
    await a.stopRecord()
    await b.stopRecord()
    return { ra: A.toneCheck(aRec), rb: A.toneCheck(bRec) }
  }
  const aExpect = { freq: 1000, levelDb: -10, what: 'A heard B' }
  const bExpect = { freq: 440, levelDb: -10, what: 'B heard A' }
  const { ra, rb } = await checkedTwiceAtMost(t, 'tone exchange', exchange, (r) => {
    A.assertTone(r.ra, aExpect)
    A.assertTone(r.rb, bExpect)
  })
  t.diagnostic(`A heard ${A.describeTone(ra)}; B heard ${A.describeTone(rb)}`)

  b.cmd('send_dtmf', DIGITS)
  await until(() => a.dtmfDigits().length >= DIGITS.length, 6000, () => `A received ${DIGITS} (got '${a.dtmfDigits()}')`)
  assert.equal(a.dtmfDigits(), DIGITS, 'A received the digits B sent, in order')

  // B holds: re-INVITE a=sendonly; A answers recvonly and stops sending
  const from = a.events.length
  b.cmd('hold')
  const held = await a.waitEvent('media_state', (e) => e.dir === 'recvonly', 5000, from)
  assert.equal(held.status, 'remote_hold')
  await sleep(200)
  const s1 = await a.stats()
  await sleep(1000)
  const s2 = await a.stats()
  assert.equal(s2.dir, 'recvonly')
  assert.ok(s2.tx_pkt - s1.tx_pkt <= 5, `A kept sending while held: ${s1.tx_pkt} -> ${s2.tx_pkt}`)
  const from2 = a.events.length
  b.cmd('unhold')
  await a.waitEvent('media_state', (e) => e.dir === 'sendrecv', 5000, from2)
  const s3 = await a.stats()
  await sleep(1000)
  const s4 = await a.stats()
  assert.ok(s4.tx_pkt - s3.tx_pkt >= 40, `A resumed sending after unhold: ${s3.tx_pkt} -> ${s4.tx_pkt}`)
  b.cmd('hangup')
  await a.waitEvent('call_state', (e) => e.state === 'disconnected')
})
