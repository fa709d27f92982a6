// RFC 3261 retransmissions read from a capture (helpers/netns.js captureSip): which datagrams were
// sent again, and whether the gaps between the copies follow the transaction timers.
'use strict'

/**
 * The expected gap before copy k+1 (k >= 1) of a message, in ms, or null when no timer drives
 * it: INVITE requests double from T1 without a cap (Timer A, §17.1.1.2), other requests and a
 * UAS's 2xx to INVITE double from T1 up to T2 (Timer E §17.1.2.2, §13.3.1.4). ACKs and responses
 * to other requests are only sent again in answer to a retransmission (§17.2.2), 1xx not at all.
 */
function expectedGap(p, k, { t1 = 500, t2 = 4000 } = {}) {
  const doubled = t1 * 2 ** (k - 1)
  const method = (p.cseq || '').split(/\s+/)[1]
  if (!p.line.startsWith('SIP/2.0')) {
    if (method === 'ACK') return null
    return method === 'INVITE' ? doubled : Math.min(doubled, t2)
  }
  const code = Number(p.line.split(' ')[1])
  return method === 'INVITE' && code >= 200 && code < 300 ? Math.min(doubled, t2) : null
}

/**
 * Groups the datagrams of `packets` sent in direction `dir` ('out': ours) by message (first line,
 * branch, CSeq), and checks each timer-driven gap against expectedGap within a loose band
 * ([0.8, 1.5] of the value plus 150 ms of scheduling slack: copies are seen before any loss).
 * Returns { messages, resent: [{ line, cseq, copies, gaps, expected }], copies, offTimer: [...] }.
 */
function retransmissions(packets, dir = 'out', timers) {
  const groups = new Map()
  for (const p of packets.filter((x) => x.dir === dir)) {
    const key = `${p.line}|${p.branch}|${p.cseq}`
    if (!groups.has(key)) groups.set(key, [])
    groups.get(key).push(p)
  }
  const resent = []
  const offTimer = []
  for (const copies of groups.values()) {
    if (copies.length < 2) continue
    const gaps = copies.slice(1).map((p, i) => Math.round(p.t - copies[i].t))
    const expected = gaps.map((_, i) => expectedGap(copies[0], i + 1, timers))
    const entry = { line: copies[0].line, cseq: copies[0].cseq, copies: copies.length, gaps, expected }
    resent.push(entry)
    if (gaps.some((g, i) => expected[i] !== null && (g < 0.8 * expected[i] || g > 1.5 * expected[i] + 150))) offTimer.push(entry)
  }
  const copies = resent.reduce((n, r) => n + r.copies - 1, 0)
  return { messages: groups.size, resent, copies, offTimer }
}

module.exports = { expectedGap, retransmissions }
