// Network namespaces for tests that need a real network between our service and its peers
// (NAT, loss, links that go down): shell steps that throw with the refused command, a check
// that the machine allows them, and our service run inside a namespace as a child process
// (fixtures/nat-service.js) commanded over IPC. Deleting a namespace deletes the veth ends in it.
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const path = require('node:path')
const { track, terminate, which, tmpDir } = require('./process')
const { sleep } = require('./wait')
const A = require('./audio')

function sh(args, { ignore = false } = {}) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 10000 })
  if (r.status !== 0 && !ignore) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr || r.error}`)
  return r.stdout
}
const inNs = (ns, args, o) => sh(['ip', 'netns', 'exec', ns, ...args], o)

/**
 * Why namespace tests cannot run here (a missing binary, not root), or null. Under CI=true the
 * caller throws it (a missing tool must fail CI), otherwise skips with it.
 */
function netnsUnavailable(bins = ['ip']) {
  const missing = bins.filter((bin) => !which(bin))
  if (missing.length) return `${missing.join(', ')} not installed`
  if (process.getuid && process.getuid() !== 0) return 'network namespaces need root'
  return null
}

/** Deletes `names` (those that exist); also at process exit, so a crashed test leaves none. */
function namespaces(names) {
  const remove = () => {
    for (const ns of names) sh(['ip', 'netns', 'del', ns], { ignore: true })
  }
  process.on('exit', remove)
  remove()
  for (const ns of names) {
    sh(['ip', 'netns', 'add', ns])
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up'])
  }
  return remove
}

/** A veth pair from `a` = [ns, dev, cidr] to `b`, both ends up. */
function veth(a, b) {
  sh(['ip', 'link', 'add', a[1], 'netns', a[0], 'type', 'veth', 'peer', 'name', b[1], 'netns', b[0]])
  for (const [ns, dev, cidr] of [a, b]) {
    inNs(ns, ['ip', 'addr', 'add', cidr, 'dev', dev])
    inNs(ns, ['ip', 'link', 'set', dev, 'up'])
  }
}

/** Our SipService in namespace `ns`, a child process commanded over IPC (stopped when `t` ends). */
function startServiceIn(t, ns, config) {
  const script = path.join(__dirname, '..', 'fixtures', 'nat-service.js')
  const child = track(
    spawn('ip', ['netns', 'exec', ns, process.execPath, script, JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  )
  const events = []
  const waiters = new Set()
  const pending = new Map()
  let nextId = 1
  child.on('message', (m) => {
    if (m.event) {
      m.at = Date.now()
      events.push(m)
      for (const w of [...waiters]) w()
    } else if (pending.has(m.id)) {
      const { resolve, reject } = pending.get(m.id)
      pending.delete(m.id)
      m.error ? reject(new Error(m.error)) : resolve(m.result)
    }
  })
  const call = (method, ...args) =>
    new Promise((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve, reject })
      child.send({ id, method, args })
    })
  const describe = () => events.map((e) => JSON.stringify(e)).join('\n')
  /** The first event `name` matching `pred` (seen ones count), within `timeoutMs`. */
  const waitEvent = (name, pred = () => true, timeoutMs = 10000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const e = events.find((x) => x.event === name && pred(x))
        if (!e) return false
        clearTimeout(timer)
        waiters.delete(check)
        resolve(e)
        return true
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for our '${name}'; events:\n${describe()}`))
      }, timeoutMs)
      if (!check()) waiters.add(check)
    })
  const stop = async () => {
    if (child.exitCode === null && child.connected) await Promise.race([call('stop'), sleep(5000)]).catch(() => {})
    await terminate(child, 2000)
  }
  t.after(stop)
  return { child, events, call, waitEvent, stop, describe }
}

/**
 * Tones both ways on a confirmed call between our service in a namespace (`us`) and a PJSIP
 * phone (`pj`): ours (1000 Hz) reaches PJSIP, PJSIP's (440 Hz) reaches us, each checked by
 * frequency and level. Returns both measurements. Over a lossy path a lost packet is a gap of
 * silence in the recording: `lossy` measures the longest unbroken stretch (from 100 ms on) instead
 * of asking for 500 ms of it, and allows ±6 dB instead of ±3: a stretch can hold a packet that
 * was reordered behind the 60 ms hold and played out of place, which lowers the tone's share of
 * the power (seen once in CI: 438.5 Hz at -14.2 dBFS) while its frequency stays exact.
 */
async function tonesBothWays(us, pj, callId, label, { lossy = false } = {}) {
  const check = lossy ? { skipMs: 20 } : {}
  const expect = lossy ? { minMs: 100, levelTolDb: 6 } : {}
  const dir = tmpDir('netns-audio')
  const pjRec = path.join(dir, 'pjsip-heard.wav')
  await pj.record(pjRec)
  await us.call('playTone', callId, { frequency: 1000, durationMs: 2000, level: -10 })
  await sleep(A.PLAYOUT_MS)
  await pj.stopRecord()
  const theyHeard = A.toneCheck(pjRec, check)
  A.assertTone(theyHeard, { ...expect, freq: 1000, levelDb: -10, what: `${label}: PJSIP's recording of our 1000 Hz` })
  const ourRec = path.join(dir, 'we-heard.wav')
  await us.call('record', callId, ourRec)
  await pj.playTone(440, 2000, -10)
  await pj.toneDone()
  await sleep(A.PLAYOUT_MS)
  await us.call('stopRecording', callId)
  const weHeard = A.toneCheck(ourRec, check)
  A.assertTone(weHeard, { ...expect, freq: 440, levelDb: -10, what: `${label}: our recording of PJSIP's 440 Hz` })
  return { theyHeard, weHeard }
}

/**
 * Our service's network to a PBX through a router, for loss and outages on the way:
 *
 *   [ua] 10.88.1.2 --uaDev-- 10.88.1.1 [rt] 10.88.2.1 --rtPbxDev-- 10.88.2.2 (Kamailio), .3 (phone) [pbx]
 *
 * Loss and reordering on the router apply to both directions of everything between us and
 * the PBX (signaling and media); a capture on `uaDev` sees what we send before any loss.
 * `tag` keeps the names apart between test files. Returns the names and remove().
 */
function uaRouterPbx(tag) {
  const p = `sn-${tag}-${process.pid}`
  const ns = { ua: `${p}-ua`, rt: `${p}-rt`, pbx: `${p}-pbx` }
  const remove = namespaces(Object.values(ns))
  const id = `${tag.slice(0, 3)}${process.pid}`
  const dev = { ua: `${id}u`, rtUa: `${id}r`, rtPbx: `${id}R`, pbx: `${id}p` }
  const addr = { ua: '10.88.1.2', rtUa: '10.88.1.1', rtPbx: '10.88.2.1', kamailio: '10.88.2.2', phone: '10.88.2.3' }
  veth([ns.ua, dev.ua, `${addr.ua}/24`], [ns.rt, dev.rtUa, `${addr.rtUa}/24`])
  veth([ns.rt, dev.rtPbx, `${addr.rtPbx}/24`], [ns.pbx, dev.pbx, `${addr.kamailio}/24`])
  inNs(ns.pbx, ['ip', 'addr', 'add', `${addr.phone}/24`, 'dev', dev.pbx])
  inNs(ns.ua, ['ip', 'route', 'add', 'default', 'via', addr.rtUa])
  inNs(ns.pbx, ['ip', 'route', 'add', 'default', 'via', addr.rtPbx])
  inNs(ns.rt, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  /**
   * Drops `pct` % of the UDP datagrams forwarded either way and reorders `reorderPct` % of the
   * rest, with nftables and HTB (this kernel has no sch_netem): those go through a slow HTB class
   * (32 kbit/s, no burst), where each waits until the ones before it are paid for (60 ms for a
   * 240-byte RTP packet), and the datagrams sent after them overtake them.
   */
  const impair = (pct, reorderPct = 25) => {
    for (const d of [dev.rtUa, dev.rtPbx]) {
      inNs(ns.rt, ['tc', 'qdisc', 'add', 'dev', d, 'root', 'handle', '1:', 'htb', 'default', '10'])
      inNs(ns.rt, ['tc', 'class', 'add', 'dev', d, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1gbit', 'quantum', '1514'])
      inNs(ns.rt, ['tc', 'class', 'add', 'dev', d, 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '32kbit', 'ceil', '32kbit', 'burst', '1', 'cburst', '1', 'quantum', '1514'])
    }
    inNs(ns.rt, ['nft', 'add table inet impair'])
    inNs(ns.rt, ['nft', 'add chain inet impair lossy { type filter hook forward priority 0 ; }'])
    inNs(ns.rt, ['nft', `add rule inet impair lossy meta l4proto udp numgen random mod 100 < ${pct} counter drop`])
    inNs(ns.rt, ['nft', `add rule inet impair lossy meta l4proto udp numgen random mod 100 < ${reorderPct} counter meta priority set 1:20`])
    inNs(ns.rt, ['nft', 'add rule inet impair lossy meta l4proto udp counter accept'])
    return { lossPct: pct, reorderPct }
  }
  /** UDP datagrams the router dropped, held back (to be overtaken) and passed so far (nft counters). */
  const impairCounts = () => {
    const out = inNs(ns.rt, ['nft', 'list chain inet impair lossy'])
    const [dropped, heldBack, passed] = [...out.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]))
    return { dropped, heldBack, passed }
  }
  /** The PBX side's link down (`false`) or up again: nothing passes between us and it. */
  const pbxLink = (up) => inNs(ns.rt, ['ip', 'link', 'set', dev.rtPbx, up ? 'up' : 'down'])
  return { ns, dev, addr, impair, impairCounts, pbxLink, remove }
}

/**
 * The PBX side of `uaRouterPbx(...)`: Kamailio (registrar and proxy for `us` and `phone`, each
 * `{ username, password }`) on its address, and a PJSIP phone (real pjsua2, auto-answering)
 * registered to it as `phone`. `timeoutMs` bounds Kamailio, `phoneSeconds` the phone.
 * Resolves to `{ kam, pj, domain }` once the phone is registered.
 */
async function startPbx(t, net, { us, phone, timeoutMs, phoneSeconds }) {
  const { startKamailio } = require('../peers/kamailio')
  const { startPjsua2 } = require('../peers/pjsua2')
  const domain = net.addr.kamailio
  const kam = await startKamailio({ users: [us, phone], host: domain, port: 5060, netns: net.ns.pbx, t, timeoutMs })
  const pj = await startPjsua2({
    t,
    host: net.addr.phone,
    port: 5070,
    netns: net.ns.pbx,
    user: phone.username,
    autoAnswer: true,
    maxSeconds: phoneSeconds,
    register: { registrar: `sip:${domain}:5060`, password: phone.password, domain },
  })
  await pj.registered()
  return { kam, pj, domain }
}

/**
 * Captures the SIP datagrams on `dev` in namespace `ns` (helpers/sipcapture.py): resolves once it
 * listens, to { packets: [{ t, dir, src, dst, line, branch, cseq, callId }], rtp, stop() }; after
 * stop(), `rtp` is { packets, reordered } of the RTP received.
 */
async function captureSip(t, ns, dev) {
  const script = path.join(__dirname, 'sipcapture.py')
  const child = track(spawn('ip', ['netns', 'exec', ns, 'python3', '-u', script, dev], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
  const packets = []
  let buf = ''
  let err = ''
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d))
  const ready = new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`sipcapture exited (${code}): ${err}`)))
    child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, i))
        buf = buf.slice(i + 1)
        if (m.ready) resolve()
        else if (m.rtp) handle.rtp = m.rtp
        else packets.push(m)
      }
    })
  })
  const handle = { packets, rtp: null, stop: () => terminate(child, 1000) }
  t.after(handle.stop)
  await Promise.race([ready, sleep(5000).then(() => Promise.reject(new Error(`sipcapture not ready: ${err}`)))])
  return handle
}

module.exports = { sh, inNs, netnsUnavailable, namespaces, veth, uaRouterPbx, startPbx, startServiceIn, tonesBothWays, captureSip }
