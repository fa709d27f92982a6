// The receiving side of SRTP (RFC 3711) for AES_CM_128_HMAC_SHA1_80 and _32, written from the
// RFC with node:crypto only: a check of what sip-native puts on the wire that does not go
// through the Rust crate it encrypts with. Key derivation rate 0 (what SDES lines without a
// lifetime/KDR parameter mean), one SSRC, packets in order (the rollover counter follows
// sequence wraps without reordering).
'use strict'

const crypto = require('node:crypto')

const TAG_LEN = { AES_CM_128_HMAC_SHA1_80: 10, AES_CM_128_HMAC_SHA1_32: 4 }

/** AES-CM keystream (RFC 3711 §4.1.1): AES-128 in counter mode from the 16-byte `iv`. */
function keystream(key, iv, length) {
  const c = crypto.createCipheriv('aes-128-ctr', key, iv)
  return Buffer.concat([c.update(Buffer.alloc(length)), c.final()])
}

/** The session key of `label` (§4.3.1 with r = 0: x = label << 48 XOR master salt). */
function derive(masterKey, masterSalt, label, length) {
  const x = Buffer.concat([masterSalt, Buffer.alloc(2)])
  x[7] ^= label
  return keystream(masterKey, x, length)
}

/**
 * A receiver for the SDES `inline:` key (base64 of 16 bytes of key and 14 of salt) under `suite`.
 * `unprotect(packet)` returns `{ ok: true, rtp }` (the plain RTP packet) or `{ ok: false, why }`.
 */
function srtpReceiver(inlineKey, suite) {
  const tagLen = TAG_LEN[suite]
  if (!tagLen) throw new Error(`srtpReceiver: unknown suite ${suite}`)
  const master = Buffer.from(inlineKey, 'base64')
  if (master.length !== 30) throw new Error(`srtpReceiver: the inline key has ${master.length} bytes, not 30`)
  const [mk, ms] = [master.subarray(0, 16), master.subarray(16)]
  const encKey = derive(mk, ms, 0x00, 16)
  const authKey = derive(mk, ms, 0x01, 20)
  const salt = derive(mk, ms, 0x02, 14)
  let roc = 0
  let lastSeq = null

  function unprotect(packet) {
    if (packet.length < 12 + tagLen) return { ok: false, why: 'too short' }
    const cc = packet[0] & 0x0f
    const ext = packet[0] & 0x10
    let headerLen = 12 + 4 * cc
    if (ext) headerLen += 4 + 4 * packet.readUInt16BE(headerLen + 2)
    const seq = packet.readUInt16BE(2)
    const ssrc = packet.readUInt32BE(8)
    // §3.3.1: the packet's rollover counter, guessed from the last sequence number seen
    const guess = lastSeq !== null && seq < 0x8000 && lastSeq > 0x8000 && lastSeq - seq > 0x8000 ? roc + 1 : roc
    const body = packet.subarray(0, packet.length - tagLen)
    const tag = packet.subarray(packet.length - tagLen)
    const rocBytes = Buffer.alloc(4)
    rocBytes.writeUInt32BE(guess)
    const mac = crypto.createHmac('sha1', authKey).update(body).update(rocBytes).digest().subarray(0, tagLen)
    if (!crypto.timingSafeEqual(mac, tag)) return { ok: false, why: 'authentication tag' }
    roc = guess
    lastSeq = seq
    // §4.1.1: IV = (salt << 16) XOR (SSRC << 64) XOR (index << 16), index = ROC << 16 | SEQ
    const iv = Buffer.concat([salt, Buffer.alloc(2)])
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4)
    const index = Buffer.alloc(6)
    index.writeUInt32BE(guess, 0)
    index.writeUInt16BE(seq, 4)
    for (let i = 0; i < 6; i++) iv[8 + i] ^= index[i]
    const cipher = body.subarray(headerLen)
    const ks = keystream(encKey, iv, cipher.length)
    const plain = Buffer.alloc(cipher.length)
    for (let i = 0; i < cipher.length; i++) plain[i] = cipher[i] ^ ks[i]
    return { ok: true, rtp: Buffer.concat([body.subarray(0, headerLen), plain]), headerLen }
  }
  return { unprotect }
}

/** G.711 µ-law byte to a linear sample in [-1, 1) (ITU-T G.711). */
function ulawToFloat(u) {
  const b = ~u & 0xff
  const t = (((b & 0x0f) << 3) + 0x84) << ((b & 0x70) >> 4)
  return (b & 0x80 ? 0x84 - t : t - 0x84) / 32768
}

module.exports = { srtpReceiver, ulawToFloat }
