// Who may call us (#10 item 6): with `server` set only the PBX opens dialogs; scanners get a
// stateless 403, then silence beyond their rate limit; oversized datagrams are dropped; and a
// flood of 10,000 sipvicious-style INVITEs leaves the PBX's calls alone. The PBX is sipp on
// 127.0.0.1; scanners are raw UDP sockets on other loopback addresses (127.0.0.5 and up).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const crypto = require('node:crypto')
const { requirePeer, freePort } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService } = require('./helpers/sip')

const ACCOUNT = { extension: '7779', register: false }
const PBX = { server: '127.0.0.1', serverPort: 5099, accounts: [ACCOUNT] }
const FLOOD = Number(process.env.SIP_NATIVE_FLOOD_INVITES || 10000)

/** A scanner's INVITE, as sipvicious sends it: random Call-ID, From tag and user. */
function scannerInvite(from, to, user) {
  const id = crypto.randomBytes(8).toString('hex')
  return Buffer.from(
    `INVITE sip:${user || id.slice(0, 4)}@${to} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP ${from};branch=z9hG4bK${id}\r\n` +
      `From: "sipvicious" <sip:${id.slice(4)}@${from}>;tag=${id.slice(0, 6)}\r\n` +
      `To: <sip:100@${to}>\r\n` +
      `Call-ID: ${id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n` +
      `Contact: <sip:100@${from}>\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n`,
  )
}

/** A UDP socket on `host` that counts the status codes it gets back. */
async function scanner(host) {
  const sock = dgram.createSocket('udp4')
  const codes = {}
  sock.on('message', (m) => {
    const code = /^SIP\/2\.0 (\d{3})/.exec(m.toString('latin1'))?.[1] || 'other'
    codes[code] = (codes[code] || 0) + 1
  })
  await new Promise((resolve) => sock.bind(0, host, resolve))
  const { port } = sock.address()
  const send = (buf, port2) => new Promise((resolve) => sock.send(buf, port2, '127.0.0.1', resolve))
  return { sock, codes, addr: `${host}:${port}`, send }
}

const settle = (ms) => new Promise((r) => setTimeout(r, ms))

/** CPU seconds (user + system) of this process's tokio threads, i.e. the service's engine, from
 * /proc/self/task/<tid>/stat (clock ticks of 10 ms); null where /proc is not readable. */
function serviceCpuSeconds() {
  const fs = require('node:fs')
  try {
    let ticks = 0
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      if (!name.startsWith('tokio')) continue
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of stat)
    }
    return ticks / 100
  } catch {
    return null
  }
}

/** Datagrams the kernel dropped at the UDP socket bound to `port` (receive buffer full), from
 * the `drops` column of /proc/net/udp; null where that file is not readable (not Linux). */
function kernelDrops(port) {
  let text
  try {
    text = require('node:fs').readFileSync('/proc/net/udp', 'utf8')
  } catch {
    return null
  }
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] && f[1].endsWith(`:${hex}`))
    .reduce((n, f) => n + Number(f[12]), 0)
}

test('the PBX calls in; a scanner gets 403, no event, no call; then silence past its bucket', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr, port } = await startService(t, { ...PBX, rateLimit: { perSecond: 1, burst: 3 } })
  const scan = await scanner('127.0.0.5')
  t.after(() => scan.sock.close())
  for (let i = 0; i < 10; i++) await scan.send(scannerInvite(scan.addr, addr), port)
  await settle(300)
  assert.equal(scan.codes['403'], 3, `the bucket's 3 answered 403, the rest dropped: ${JSON.stringify(scan.codes)}`)
  const tr = sip.metrics().transport
  assert.equal(tr.forbiddenSent, 3)
  assert.equal(tr.rateLimited, 7)
  assert.equal(events.filter((e) => e.name === 'incoming_call').length, 0, 'no incoming_call for the scanner')
  assert.equal(sip.counters().liveCalls, 0, 'no call state, so no RTP port taken')
  // the PBX (127.0.0.1) is not refused
  sip.on('incoming_call', (e) => sip.answer(e.callId).catch(() => {}))
  const uac = await startSipp({ scenario: 'uac_call', remote: addr, durationMs: 200, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'the PBX call went through: ' + describeSipp(r))
  await sip.stop()
})

test('acceptFrom widened lets the scanner in; narrowed shuts the PBX out', async (t) => {
  if (!requirePeer('sipp', t)) return
  const wide = await startService(t, { ...PBX, acceptFrom: ['0.0.0.0/0', '::/0'] })
  const scan = await scanner('127.0.0.6')
  t.after(() => scan.sock.close())
  const seen = new Promise((resolve) => wide.sip.once('incoming_call', resolve))
  await scan.send(scannerInvite(scan.addr, wide.addr, '7779'), wide.port)
  const inc = await seen
  await wide.sip.reject(inc.callId, 486)
  await settle(200)
  assert.equal(scan.codes['403'], undefined, JSON.stringify(scan.codes))
  await wide.sip.stop()

  const narrow = await startService(t, { ...PBX, acceptFrom: ['127.0.0.6/32'] })
  const uac = await startSipp({ scenario: 'uac_rejected', remote: narrow.addr, keys: { expected: '403' }, t })
  const r = await uac.done
  assert.equal(r.code, 0, 'the PBX, not in acceptFrom, got 403: ' + describeSipp(r))
  assert.equal(narrow.events.filter((e) => e.name === 'incoming_call').length, 0)
  assert.equal(narrow.sip.metrics().transport.forbiddenSent, 1)
  await narrow.sip.stop()
})

test('acceptFrom, rateLimit and maxMessageSize are checked', async () => {
  const { SipService } = require('..')
  const bad = new SipService({ ...PBX, localPort: 0, bindAddress: '127.0.0.1', acceptFrom: ['10.0.0.0/33'] })
  await assert.rejects(bad.start(), /acceptFrom\[0\]: prefix must be 0-32/)
  const slow = new SipService({ ...PBX, localPort: 0, bindAddress: '127.0.0.1', rateLimit: { perSecond: 0 } })
  await assert.rejects(slow.start(), /rateLimit: perSecond must be above 0/)
  assert.throws(
    () => new SipService({ ...PBX, localPort: 0, bindAddress: '127.0.0.1', maxMessageSize: 100 }),
    /maxMessageSize: must be at least 1300 bytes, got 100/,
  )
})

test('an oversized datagram is dropped and counted', async (t) => {
  const { sip, port, addr } = await startService(t, { ...PBX, maxMessageSize: 2000 })
  const scan = await scanner('127.0.0.1')
  t.after(() => scan.sock.close())
  const big = scannerInvite(scan.addr, addr).toString().replace('Content-Length: 0', `X-Pad: ${'a'.repeat(2500)}\r\nContent-Length: 0`)
  await scan.send(Buffer.from(big), port)
  await settle(300)
  assert.equal(sip.metrics().transport.oversizedMessages, 1)
  assert.deepEqual(scan.codes, {}, 'no answer to an oversized datagram')
  await sip.stop()
})

test(`a flood of ${FLOOD} scanner INVITEs leaves the PBX's calls alone`, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, addr, port } = await startService(t, PBX)
  // each PBX call carries audio: sipp echoes our RTP (-rtp_echo); its stats are read mid-call
  const audio = []
  sip.on('incoming_call', (e) => {
    sip.answer(e.callId).catch(() => {})
    setTimeout(() => {
      try {
        audio.push(sip.callStats(e.callId))
      } catch (err) {
        audio.push({ error: err.message })
      }
    }, 800)
  })
  const scanners = []
  for (let i = 0; i < 10; i++) scanners.push(await scanner(`127.0.0.${20 + i}`))
  t.after(() => scanners.forEach((s) => s.sock.close()))
  const calls = 5
  const drops0 = kernelDrops(port)
  const uac = await startSipp({
    scenario: 'uac_call',
    remote: addr,
    calls,
    durationMs: 1200,
    timeoutMs: 40000,
    args: ['-rtp_echo', '-mp', String(await freePort())],
    t,
  })
  const cpu0 = process.cpuUsage()
  const service0 = serviceCpuSeconds()
  const wall0 = process.hrtime.bigint()
  let sent = 0
  // bounded: FLOOD datagrams, batches awaited so the loop cannot run away
  while (sent < FLOOD) {
    const batch = []
    for (let j = 0; j < 100 && sent < FLOOD; j++, sent++) {
      const s = scanners[sent % scanners.length]
      batch.push(s.send(scannerInvite(s.addr, addr), port))
    }
    await Promise.all(batch)
  }
  const wallFlood = Number(process.hrtime.bigint() - wall0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  const cores = (cpu.user + cpu.system) / 1e6 / wallFlood
  // the service's own CPU (its tokio threads), from the flood's start until it has handled it
  const handled = () => sip.metrics().transport.forbiddenSent + sip.metrics().transport.rateLimited + (kernelDrops(port) - drops0)
  for (let i = 0; i < 50 && drops0 !== null && handled() < sent; i++) await settle(20)
  const wallHandled = Number(process.hrtime.bigint() - wall0) / 1e9
  const serviceCores = service0 === null ? null : (serviceCpuSeconds() - service0) / wallHandled
  const r = await uac.done
  await settle(300)
  const tr = sip.metrics().transport
  const got403 = scanners.reduce((n, s) => n + (s.codes['403'] || 0), 0)
  const completed = r.stats?.successful ?? (r.code === 0 ? calls : 0)
  const drops = drops0 === null ? null : kernelDrops(port) - drops0
  const echoed = audio.map((a) => a.packetsReceived ?? 0)
  console.log(
    `flood: ${sent} INVITEs sent in ${wallFlood.toFixed(2)} s, ${got403} 403s received, ` +
      `${tr.rateLimited} dropped by the rate limit, ${tr.forbiddenSent} 403s sent, ` +
      `${drops ?? 'unknown'} dropped by the kernel (socket receive buffer full), ` +
      `PBX calls completed ${completed}/${calls}, echoed RTP packets per call at 0.8 s ${echoed.join('/')}, ` +
      `CPU of the service ${serviceCores?.toFixed(2) ?? 'unknown'} cores over the ${wallHandled.toFixed(2)} s until it had handled the flood, ` +
      `of this process (sender + service) ${cores.toFixed(2)} cores while sending`,
  )
  assert.equal(r.code, 0, 'every PBX call answered during the flood: ' + describeSipp(r))
  assert.equal(audio.length, calls, `stats of every call: ${JSON.stringify(audio)}`)
  for (const a of audio) assert.ok(a.packetsSent > 0 && a.packetsReceived > 0, `audio both ways in every PBX call: ${JSON.stringify(a)}`)
  assert.ok(tr.forbiddenSent + tr.rateLimited <= sent, 'each INVITE counted once at most')
  if (drops !== null) {
    // every scanner INVITE is accounted for: answered 403, dropped by the limit, or by the kernel
    // (whose count may also hold a PBX datagram lost in the same full buffer, then retransmitted)
    assert.ok(
      tr.forbiddenSent + tr.rateLimited + drops >= sent,
      `every INVITE of the flood is accounted for: ${tr.forbiddenSent} + ${tr.rateLimited} + ${drops} of ${sent}`,
    )
  }
  assert.ok(tr.rateLimited > sent / 2, `most of the flood dropped silently (${tr.rateLimited})`)
  assert.equal(sip.counters().liveCalls, 0, 'no scanner call state')
  // a guard against a runaway, not a timing: the sender shares the process and the 2 cores
  if (serviceCores !== null) assert.ok(serviceCores < 1.5, `the service's CPU below 1.5 cores during the flood (${serviceCores.toFixed(2)})`)
  await sip.stop()
})
