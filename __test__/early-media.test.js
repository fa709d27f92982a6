// Early media and PRACK (RFC 3262). Outgoing: a 183 with SDP starts the media before the
// answer (recorded while `early`), a reliable 183 gets our PRACK with the right RAck.
// Incoming: a caller requiring 100rel gets reliable 180/183 (RSeq in order), each PRACKed,
// the 200 only after the PRACKs, and progress() sends our answer early with media.
// sipp plays the peer; a UDP socket of the test is its media (tone out, our RTP in).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, callStates } = require('./helpers/sip')
const { toneSamples, toneCheck, assertTone, dominantFrequency, pcm16ToFloat } = require('./helpers/audio')

const ACCOUNT = { extension: '7779' }

// G.711 µ-law, as the RTP peer of the test speaks it.
function ulawEncode(s) {
  const sign = s < 0 ? 0x80 : 0
  let m = Math.min(Math.abs(s), 32635) + 0x84
  let exp = 7
  for (let mask = 0x4000; (m & mask) === 0 && exp > 0; mask >>= 1) exp--
  const mant = (m >> (exp + 3)) & 0x0f
  return ~(sign | (exp << 4) | mant) & 0xff
}
function ulawDecode(u) {
  u = ~u & 0xff
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4)
  return u & 0x80 ? 0x84 - t : t - 0x84
}

/** A UDP socket as the peer's media: answers our first RTP with a 1 kHz PCMU tone (20 ms
 * packets) and keeps the payloads it receives, with their arrival times. */
async function mediaPeer(t) {
  const sock = dgram.createSocket('udp4')
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
  const tone = toneSamples({ freq: 1000, ms: 20000, levelDb: -10, ramp: false })
  const got = []
  let timer
  let seq = 0
  sock.on('message', (m, rinfo) => {
    if (m.length < 12 || m[0] >> 6 !== 2) return
    got.push({ at: Date.now(), payload: m.subarray(12) })
    if (timer) return
    timer = setInterval(() => {
      const p = Buffer.alloc(12 + 160)
      p[0] = 0x80
      p[1] = 0
      p.writeUInt16BE(seq & 0xffff, 2)
      p.writeUInt32BE((seq * 160) >>> 0, 4)
      p.writeUInt32BE(0x5eed1234, 8)
      for (let i = 0; i < 160; i++) p[12 + i] = ulawEncode(tone[(seq * 160 + i) % tone.length])
      seq++
      sock.send(p, rinfo.port, rinfo.address)
    }, 20)
  })
  t.after(() => {
    clearInterval(timer)
    sock.close()
  })
  return { port: sock.address().port, got }
}

/** The dominant frequency of what the peer received in [from, to) (ms since epoch). */
function heardFreq(got, from, to) {
  const bytes = got.filter((g) => g.at >= from && g.at < to).flatMap((g) => [...g.payload])
  const pcm = Int16Array.from(bytes.map(ulawDecode))
  return { n: pcm.length, ...dominantFrequency(pcm16ToFloat(Buffer.from(pcm.buffer)), 8000) }
}

test('183 with SDP: early media both ways, recorded while early; the 200 keeps the session', async (t) => {
  if (!requirePeer('sipp', t)) return
  const media = await mediaPeer(t)
  const uas = await startSipp({ scenario: 'early_183_media', keys: { mport: media.port }, t })
  const { sip, events } = await startService(t, { accounts: [ACCOUNT], rtpPortMin: 43000, rtpPortMax: 43999 })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'early')
  const wav = path.join(tmpDir('early'), 'ringback.wav')
  await sip.record(call.id, wav)
  await new Promise((r) => setTimeout(r, 1100))
  assert.equal(sip.getCall(call.id).state, 'early', 'still early when the recording stops')
  await sip.stopRecording(call.id)
  assert.ok(media.got.length > 20, `our RTP reached the peer before the answer (${media.got.length} packets)`)
  assertTone(toneCheck(fs.readFileSync(wav), { freq: 1000 }), { freq: 1000, minMs: 500, what: 'early media recording' })
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  assert.deepEqual(callStates(events, call.id), ['calling', 'early', 'confirmed'])
  const before = sip.callStats(call.id).packetsReceived
  await new Promise((r) => setTimeout(r, 200))
  assert.ok(sip.callStats(call.id).packetsReceived > before, 'the same session goes on after the 200')
  await sip.hangup(call)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
})

test('reliable 183 (Require: 100rel): our PRACK carries RAck = RSeq and the INVITE CSeq', async (t) => {
  if (!requirePeer('sipp', t)) return
  const media = await mediaPeer(t)
  const uas = await startSipp({ scenario: 'prack_uas_183', keys: { mport: media.port }, t })
  const { sip, events } = await startService(t, { accounts: [ACCOUNT], prack: 'required' })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await sip.hangup(call)
  const r = await uas.done
  assert.equal(r.code, 0, 'sipp checked Supported: 100rel and the PRACK: ' + describeSipp(r))
  const invite = r.messages.match(/^INVITE [^]*?\r?\n\r?\n/m)[0]
  assert.match(invite, /^Require:\s*100rel/im, "prack: 'required' puts Require: 100rel in our INVITE")
  const cseq = invite.match(/^CSeq:\s*(\d+) INVITE/im)[1]
  const rack = r.messages.match(/^RAck:\s*(\d+) (\d+) (\w+)/im)
  assert.deepEqual(rack.slice(1), ['4711', cseq, 'INVITE'])
  assert.ok(media.got.length > 0, 'early media from the reliable 183 flowed')
})

test('caller requires 100rel: reliable 180 and progress() 183 (RSeq in order), PRACKed before the 200; early media out', async (t) => {
  if (!requirePeer('sipp', t)) return
  const media = await mediaPeer(t)
  const { sip, addr } = await startService(t, { accounts: [ACCOUNT], timerT1Ms: 200 })
  let progressed = 0
  let answered = 0
  sip.on('call_state', (e) => e.state === 'connecting' && (answered = Date.now()))
  let app
  sip.on('incoming_call', (inc) => {
    app = (async () => {
      await sip.progress(inc.callId)
      progressed = Date.now()
      assert.equal(sip.getCall(inc.callId).state, 'incoming', 'progress() leaves the call incoming')
      // Resolves when the tone ends: with the call.
      sip.playTone(inc.callId, { frequency: 800, durationMs: 0 }).catch(() => {})
      // answer() at once: its 200 must wait for sipp's late PRACK of the 183.
      await new Promise((r) => setTimeout(r, 100))
      await sip.answer(inc.callId)
      await assert.rejects(sip.progress(inc.callId), /progress: call in-\S+ is (connecting|confirmed), not incoming/)
      await assert.rejects(sip.progress(inc.callId, { headers: { 'X-A': 1 } }), TypeError)
    })()
  })
  const uac = await startSipp({ scenario: 'prack_uac_invite', remote: addr, keys: { mport: media.port }, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'reliable 1xx, PRACKs answered, 200 after them, no retransmission: ' + describeSipp(r))
  await app
  // The 180 is PRACKed at once (well within T1 = 200 ms): a copy means we kept retransmitting
  // after its PRACK (sipp itself takes copies for retransmissions and lets them pass).
  const copies180 = (r.messages.match(/^SIP\/2\.0 180 /gm) || []).length
  assert.equal(copies180, 1, `the 180 was sent ${copies180} times`)
  // Retransmissions before a PRACK repeat its RSeq.
  const rseqs = [...new Set([...r.messages.matchAll(/^RSeq:\s*(\d+)/gim)].map((m) => Number(m[1])))]
  assert.equal(rseqs.length, 2, `one 180 and one 183: RSeq ${rseqs}`)
  assert.equal(rseqs[1], rseqs[0] + 1, `RSeq one higher: ${rseqs}`)
  assert.ok(answered && progressed, 'progress() resolved and the call was answered')
  const early = heardFreq(media.got, progressed + 100, answered)
  assert.ok(early.n >= 2000, `early media reached the caller before the 200 (${early.n} samples)`)
  assert.ok(Math.abs(early.freq - 800) < 20, `the tone played while incoming: ${early.freq} Hz`)
})

test("a PRACK matching nothing gets 481; a caller requiring 100rel with prack: 'off' gets 420", async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, addr } = await startService(t, { accounts: [ACCOUNT], prack: 'off' })
  sip.on('incoming_call', () => assert.fail('no call is offered'))
  const uac = await startSipp({ scenario: 'prack_uac_refused', remote: addr, t })
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
  assert.match(r.messages, /^Unsupported:\s*100rel/im)
})

test('no PRACK for our reliable 180: retransmitted with T1 doubling, then 500 after 64·T1', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [ACCOUNT], timerT1Ms: 25 })
  const offered = new Promise((resolve) => sip.once('incoming_call', resolve))
  const started = Date.now()
  const uac = await startSipp({ scenario: 'prack_uac_no_prack', remote: addr, t })
  const inc = await offered
  const d = await waitFor(sip, events, 'call_state', (e) => e.callId === inc.callId && e.state === 'disconnected')
  const elapsed = Date.now() - started
  assert.equal(d.code, 500, JSON.stringify(d))
  assert.ok(elapsed >= 1500 && elapsed < 4000, `given up after ${elapsed} ms, 64·T1 = 1600`)
  const r = await uac.done
  assert.equal(r.code, 0, 'sipp got the 180 (and copies), then 500: ' + describeSipp(r))
  // T1 doubling within 64·T1: copies at 25, 75, 175, 375, 775 ms (then 1575): about 6.
  const copies = (r.messages.match(/^SIP\/2\.0 180 /gm) || []).length
  assert.ok(copies >= 4 && copies <= 8, `the 180 and ${copies - 1} retransmissions`)
})
