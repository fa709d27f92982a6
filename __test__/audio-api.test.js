// The audio API between two sip-native instances on loopback (no external peer): playFile errors,
// PCM streams (call.audio), bounded buffering of an unread stream, and robustness of the RTP
// receiver against garbage datagrams.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const fs = require('node:fs')
const path = require('node:path')
const { tmpDir } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const A = require('./helpers/audio')

/** Two services; `a` calls `b`, `b` answers; both confirmed. */
async function twoParties(t) {
  const a = await startService(t, { accounts: [{ extension: '1000' }] })
  const b = await startService(t, { accounts: [{ extension: '7779' }] })
  const incoming = new Promise((resolve) => b.sip.once('incoming_call', resolve))
  const call = await a.sip.makeCall('1000', `sip:7779@127.0.0.1:${b.port}`)
  const inc = await incoming
  await b.sip.answer(inc.callId)
  await waitFor(a.sip, a.events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await waitFor(b.sip, b.events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed')
  return { a, b, aId: call.id, bId: inc.callId, aCall: a.sip.getCall(call.id), bCall: b.sip.getCall(inc.callId) }
}

/** Reads `ms` of PCM from a Readable; resolves { frames: Buffer[] } */
function readFor(readable, ms) {
  return new Promise((resolve, reject) => {
    const frames = []
    const onData = (d) => frames.push(Buffer.from(d))
    readable.on('data', onData)
    readable.once('error', reject)
    setTimeout(() => {
      readable.off('data', onData)
      readable.pause()
      resolve({ frames })
    }, ms)
  })
}

test('playFile of a missing file rejects with an Error naming the path; the call goes on', { timeout: 30000 }, async (t) => {
  const { a, aId } = await twoParties(t)
  const missing = path.join(tmpDir('audio-api'), 'no-such-prompt.wav')
  await assert.rejects(a.sip.playFile(aId, missing), (e) => {
    assert.ok(e instanceof Error, `rejects with an Error, got ${e}`)
    assert.ok(e.message.includes(missing), `the message names the path: ${e.message}`)
    return true
  })
  // a file that is not a WAV, too
  const junk = path.join(tmpDir('audio-api'), 'junk.wav')
  fs.writeFileSync(junk, 'this is not audio')
  await assert.rejects(a.sip.playFile(aId, junk), (e) => e instanceof Error && e.message.includes(junk))
  assert.equal(a.sip.getCall(aId).state, 'confirmed', 'the call survives a failed playFile')
  await a.sip.hangup(aId)
})

test('playFile plays a generated 16 kHz stereo WAV (converted) that the other side records', { timeout: 30000 }, async (t) => {
  const { a, b, aId, bId } = await twoParties(t)
  const dir = tmpDir('audio-api')
  const prompt = A.writeToneWav(path.join(dir, 'prompt.wav'), { freq: 1000, ms: 2000, rate: 16000, levelDb: -12, channels: 2 })
  const rec = path.join(dir, 'b-heard.wav')
  await b.sip.record(bId, rec)
  await a.sip.playFile(aId, prompt)
  await sleep(A.PLAYOUT_MS)
  await b.sip.stopRecording(bId)
  A.assertTone(A.toneCheck(rec), { freq: 1000, levelDb: -12, what: 'B recording of A playFile (16 kHz stereo 1000 Hz -12 dBFS)' })
  await a.sip.hangup(aId)
})

test('call.audio.readable yields 20 ms PCM frames carrying the tone the other side plays', { timeout: 30000 }, async (t) => {
  const { a, aId, bCall } = await twoParties(t)
  const audio = bCall.audio
  assert.ok(audio.sampleRate >= 8000, `sampleRate ${audio.sampleRate}`)
  const frameBytes = Math.round(audio.sampleRate * 0.02) * 2 // 320 bytes at 8 kHz
  const tone = a.sip.playTone(aId, { frequency: 1000, durationMs: 2500, level: -10 })
  await sleep(300) // the read window starts inside the tone, past its onset
  const { frames } = await readFor(audio.readable, 1500)
  await tone
  assert.ok(frames.length >= 50, `about 75 frames in 1.5 s, got ${frames.length}`)
  const sizes = new Set(frames.map((f) => f.length))
  assert.deepEqual([...sizes], [frameBytes], `every frame is 20 ms = ${frameBytes} bytes; sizes seen: ${[...sizes]}`)
  const pcm = A.pcm16ToFloat(Buffer.concat(frames))
  const r = A.toneCheck({ sampleRate: audio.sampleRate, channelData: [pcm] }, { skipMs: 100 })
  A.assertTone(r, { freq: 1000, levelDb: -10, minMs: 800, what: 'PCM read from call.audio.readable' })
  await a.sip.hangup(aId)
})

test('a tone written to call.audio.writable is recorded on the other side', { timeout: 30000 }, async (t) => {
  const { a, b, aCall, bId } = await twoParties(t)
  const rec = path.join(tmpDir('audio-api'), 'b-heard-writable.wav')
  await b.sip.record(bId, rec)
  const { sampleRate, writable } = aCall.audio
  const pcm = A.toneSamples({ freq: 440, ms: 2500, rate: sampleRate, levelDb: -10 })
  const buf = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength)
  const frame = Math.round(sampleRate * 0.02) * 2
  const started = Date.now()
  for (let off = 0; off < buf.length; off += frame) {
    // write() returns false under back-pressure (200 ms queued): wait for 'drain'
    if (!writable.write(buf.subarray(off, off + frame))) await new Promise((r) => writable.once('drain', r))
  }
  const elapsed = Date.now() - started
  assert.ok(elapsed >= 1800, `writes are paced by back-pressure: 2.5 s of audio accepted in ${elapsed} ms`)
  await sleep(200 + A.PLAYOUT_MS) // the 200 ms still queued when the last write returns, then its playout
  await b.sip.stopRecording(bId)
  A.assertTone(A.toneCheck(rec), { freq: 440, levelDb: -10, what: 'B recording of PCM written to A call.audio.writable' })
  await a.sip.hangup(aCall.id)
})

test('an unread call.audio.readable stays bounded: frames are dropped and counted, RSS does not grow', { timeout: 40000 }, async (t) => {
  const { a, aId, bCall, b, bId } = await twoParties(t)
  const readable = bCall.audio.readable // created, never read
  assert.ok(readable)
  global.gc?.()
  const rss0 = process.memoryUsage().rss
  const d0 = b.sip.callStats(bId).framesDropped
  await a.sip.playTone(aId, { frequency: 1000, durationMs: 6000, level: -10 })
  const st = b.sip.callStats(bId)
  const rss1 = process.memoryUsage().rss
  assert.ok(st.framesDropped - d0 >= 100, `6 s = 300 frames, most unread frames dropped and counted: framesDropped ${d0} -> ${st.framesDropped}`)
  assert.ok(readable.readableLength <= 64 * 1024, `JS-side buffer bounded: readableLength ${readable.readableLength}`)
  assert.ok(rss1 - rss0 < 20 * 1024 * 1024, `RSS grew by ${((rss1 - rss0) / 1048576).toFixed(1)} MB in 6 s of unread audio`)
  await a.sip.hangup(aId)
})

test('garbage, truncated and wrong-payload-type datagrams on our RTP port are dropped and counted; audio goes on', { timeout: 40000 }, async (t) => {
  const { a, b, aId, bId } = await twoParties(t)
  // symmetric RTP: B's remote address is latched from A's first packets, before the garbage
  await until(() => b.sip.callStats(bId).packetsReceived > 0, 5000, "B receiving A's RTP")
  const st0 = b.sip.callStats(bId)
  assert.ok(st0.localPort > 0, `callStats().localPort: ${JSON.stringify(st0)}`)
  const sock = dgram.createSocket('udp4')
  t.after(() => sock.close())
  await new Promise((r) => sock.bind(0, '127.0.0.1', r))
  const send = (buf) => new Promise((r) => sock.send(buf, st0.localPort, '127.0.0.1', () => r()))

  const rtp = (pt, seq, ssrc, payloadLen = 160) => {
    const h = Buffer.alloc(12 + payloadLen, 0xff)
    h[0] = 0x80
    h[1] = pt & 0x7f
    h.writeUInt16BE(seq & 0xffff, 2)
    h.writeUInt32BE(seq * 160, 4)
    h.writeUInt32BE(ssrc, 8)
    return h
  }
  const bad = [
    Buffer.from('not rtp at all, just text'), // version 1 bits
    Buffer.alloc(0), // empty
    Buffer.from([0x80, 0x00, 0x00]), // truncated header
    Buffer.from([0x80]),
    (() => {
      const b2 = rtp(0, 1, 0xdeadbeef, 0)
      b2[0] = 0x8f // CSRC count 15 but no CSRCs
      return b2
    })(),
    (() => {
      const b2 = rtp(0, 2, 0xdeadbeef, 4)
      b2[0] = 0x90 // extension bit, extension header missing
      return b2
    })(),
    (() => {
      const b2 = rtp(0, 3, 0xdeadbeef, 10)
      b2[0] = 0xa0 // padding bit, padding length byte 0xff > payload
      return b2
    })(),
  ]
  for (let i = 0; i < 20; i++) bad.push(rtp(99, 100 + i, 0xdeadbeef)) // payload type not negotiated
  for (let i = 0; i < 5; i++) bad.push(require('node:crypto').randomBytes(20 + i * 37))
  for (const d of bad) await send(d)
  await until(
    () => b.sip.callStats(bId).packetsDropped - st0.packetsDropped >= 20,
    5000,
    () => `packetsDropped to grow by 20 (${st0.packetsDropped} -> ${b.sip.callStats(bId).packetsDropped})`,
  )

  const st1 = b.sip.callStats(bId)
  assert.ok(
    st1.packetsDropped - st0.packetsDropped >= 20,
    `packetsDropped should grow by the ${bad.length} bad datagrams (at least the 20 wrong-PT ones): ${st0.packetsDropped} -> ${st1.packetsDropped}`,
  )
  assert.equal(b.sip.getCall(bId).state, 'confirmed', 'the call survives')
  assert.equal(st1.remoteAddress, st0.remoteAddress, `symmetric RTP must not latch onto the garbage source: ${st0.remoteAddress} -> ${st1.remoteAddress}`)

  // audio still flows both ways
  const rec = path.join(tmpDir('audio-api'), 'after-garbage.wav')
  await b.sip.record(bId, rec)
  await a.sip.playTone(aId, { frequency: 1000, durationMs: 1500, level: -10 })
  await sleep(A.PLAYOUT_MS)
  await b.sip.stopRecording(bId)
  A.assertTone(A.toneCheck(rec, { skipMs: 100 }), { freq: 1000, levelDb: -10, minMs: 400, what: 'B recording after the garbage' })
  const sentBefore = b.sip.callStats(bId).packetsSent
  await until(() => b.sip.callStats(bId).packetsSent > sentBefore + 20, 2000, 'B sending 20 more RTP packets')
  assert.ok(b.sip.callStats(bId).packetsSent > sentBefore + 20, 'B keeps sending RTP')
  await a.sip.hangup(aId)
})

test('an exhausted RTP port range: makeCall rejects with a clear error, and ports come back after the call', { timeout: 30000 }, async (t) => {
  const a = await startService(t, { rtpPortMin: 47000, rtpPortMax: 47002, accounts: [{ extension: '100' }] })
  const b = await startService(t, { rtpPortMin: 47100, rtpPortMax: 47200, accounts: [{ extension: '200' }] })
  b.sip.on('incoming_call', (e) => b.sip.answer(e.callId).catch(() => {}))
  const target = `sip:200@127.0.0.1:${b.port}`
  const first = await a.sip.makeCall('100', target)
  await assert.rejects(a.sip.makeCall('100', target), (e) => e instanceof Error && /RTP port range 47000-47002 exhausted/.test(e.message))
  await waitFor(a.sip, a.events, 'call_state', (e) => e.callId === first.id && e.state === 'confirmed')
  await a.sip.hangup(first.id)
  await disconnected(a.sip, a.events, first.id)
  const again = await a.sip.makeCall('100', target)
  assert.ok(again.id, 'the released pair serves the next call')
  await a.sip.hangup(again.id)
})
