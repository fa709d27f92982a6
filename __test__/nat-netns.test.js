// NAT for real: our service in a network namespace behind a router namespace that masquerades
// with nftables, Kamailio, a STUN server (stund) and a PJSIP phone outside, where nothing routes
// back to the private network:
//
//   [in] 10.77.0.2 --veth-- 10.77.0.1 [rt] 198.51.100.1 --veth-- 198.51.100.2/.3 [out]
//                                      masquerade
//
// We learn the public address (STUN at start, the registrar's rport), register with it (the
// Contact Kamailio saves is the router's address), calls both ways carry tones both ways, and
// with the router's UDP conntrack timeout lowered to 5 s an incoming call still arrives after
// 9 s of silence thanks to the UDP keep-alive; with keepAliveIntervalS 0 it does not (which shows
// the timeout is real). Needs root (ip netns, nft, sysctl); every namespace is removed at the end.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const { requirePeer, track, terminate, which } = require('./helpers/process')
const { sleep, until } = require('./helpers/wait')
const { sh, inNs, startServiceIn, tonesBothWays } = require('./helpers/netns')
const { startKamailio } = require('./peers/kamailio')
const { startPjsua2 } = require('./peers/pjsua2')

const P = `sn-nat-${process.pid}`
const NS = { in: `${P}-in`, rt: `${P}-rt`, out: `${P}-out` }
const INSIDE = '10.77.0.2'
const ROUTER_IN = '10.77.0.1'
const PUBLIC = '198.51.100.1' // the router's outside address: what masquerade gives us
const OUT = '198.51.100.2'
const OUT2 = '198.51.100.3' // stund's second address, and PJSIP's (From another domain than Kamailio's: no 407)
const CONNTRACK_TIMEOUT_S = 5
const USER = { username: '1001', password: 'pw-1001' }

function removeNamespaces() {
  // deleting a namespace deletes the veth ends inside it (and so their peers)
  for (const ns of Object.values(NS)) sh(['ip', 'netns', 'del', ns], { ignore: true })
}
process.on('exit', removeNamespaces)

/** Builds the three namespaces; throws with the refused command if the kernel says no. */
function buildNetwork() {
  removeNamespaces()
  for (const ns of Object.values(NS)) {
    sh(['ip', 'netns', 'add', ns])
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up'])
  }
  const vi = [`ni${process.pid}a`, `ni${process.pid}b`]
  const vo = [`no${process.pid}a`, `no${process.pid}b`]
  sh(['ip', 'link', 'add', vi[0], 'netns', NS.in, 'type', 'veth', 'peer', 'name', vi[1], 'netns', NS.rt])
  sh(['ip', 'link', 'add', vo[0], 'netns', NS.rt, 'type', 'veth', 'peer', 'name', vo[1], 'netns', NS.out])
  const up = (ns, dev, addr) => {
    inNs(ns, ['ip', 'addr', 'add', addr, 'dev', dev])
    inNs(ns, ['ip', 'link', 'set', dev, 'up'])
  }
  up(NS.in, vi[0], `${INSIDE}/24`)
  up(NS.rt, vi[1], `${ROUTER_IN}/24`)
  up(NS.rt, vo[0], `${PUBLIC}/24`)
  up(NS.out, vo[1], `${OUT}/24`)
  inNs(NS.out, ['ip', 'addr', 'add', `${OUT2}/24`, 'dev', vo[1]])
  inNs(NS.in, ['ip', 'route', 'add', 'default', 'via', ROUTER_IN])
  // [out] gets no route to 10.77.0.0/24: only the masqueraded address is reachable from there
  inNs(NS.rt, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  inNs(NS.rt, ['nft', 'add table ip nat'])
  inNs(NS.rt, ['nft', 'add chain ip nat post { type nat hook postrouting priority 100 ; }'])
  inNs(NS.rt, ['nft', `add rule ip nat post oifname "${vo[0]}" masquerade`])
  // conntrack now exists in [rt]: an idle UDP mapping (replied-to or not) dies after 5 s
  inNs(NS.rt, ['sysctl', '-qw', `net.netfilter.nf_conntrack_udp_timeout=${CONNTRACK_TIMEOUT_S}`])
  inNs(NS.rt, ['sysctl', '-qw', `net.netfilter.nf_conntrack_udp_timeout_stream=${CONNTRACK_TIMEOUT_S}`])
}

const startInside = (t, config) => startServiceIn(t, NS.in, config)

function serviceConfig(kam, localPort, extra = {}) {
  return {
    bindAddress: '0.0.0.0',
    localPort,
    server: OUT,
    serverPort: kam.port,
    registerExpires: 60, // refresh after 30 s: longer than every idle wait below
    rtpPortMin: 30000,
    rtpPortMax: 30100,
    stopGraceMs: 1000,
    accounts: [{ extension: USER.username, password: USER.password }],
    ...extra,
  }
}

const savedContacts = (kam) => [...kam.log().matchAll(/saved contact (\S+) for/g)].map((m) => m[1])

test('behind a masquerading NAT: public Contact at Kamailio, calls both ways with audio, keep-alive holds the binding', { timeout: 150000 }, async (t) => {
  if (!requirePeer('kamailio', t) || !requirePeer('pjsua2', t)) return
  const missing = ['ip', 'nft', 'stund'].filter((bin) => !which(bin))
  const why = missing.length
    ? `${missing.join(', ')} not installed (apt-get install iproute2 nftables stun-server)`
    : process.getuid && process.getuid() !== 0
      ? 'network namespaces need root'
      : null
  if (why) {
    if (process.env.CI === 'true') throw new Error(why)
    return t.skip(why)
  }
  t.after(removeNamespaces)
  buildNetwork()

  const kam = await startKamailio({ users: [USER], host: OUT, port: 5060, netns: NS.out, t })
  const stund = track(spawn('ip', ['netns', 'exec', NS.out, 'stund', '-h', OUT, '-a', OUT2], { detached: true, stdio: 'ignore' }))
  t.after(() => terminate(stund, 1000))
  const pj = await startPjsua2({ t, host: OUT2, port: 5070, netns: NS.out, autoAnswer: true, maxSeconds: 140, logLevel: 4 })
  const pjUri = `sip:pjsua@${OUT2}:5070`
  const us = startInside(t, serviceConfig(kam, 5062, { stunServer: OUT, keepAliveIntervalS: 2 }))
  try {
    // STUN at start, then the registrar's view: both the router's address and the same port
    const stun = await us.waitEvent('public_address', (e) => e.source === 'stun')
    assert.equal(stun.address, PUBLIC, JSON.stringify(stun))
    await us.waitEvent('registration', (e) => e.state === 'registered')
    assert.ok(
      !us.events.some((e) => e.event === 'public_address' && e.source === 'rport'),
      `STUN already gave the address the registrar sees: ${us.describe()}`,
    )
    // its log line may come a moment after its 200
    await until(() => savedContacts(kam).length > 0, 3000, 'Kamailio logging the saved contact')
    const contacts = savedContacts(kam)
    assert.equal(contacts[contacts.length - 1], `<sip:${USER.username}@${PUBLIC}:${stun.port}>`, `contacts saved: ${contacts}`)

    // PJSIP calls 1001 at Kamailio, which relays to our public Contact through the NAT
    const from1 = pj.events.length
    pj.dial(`sip:${USER.username}@${OUT}:5060`)
    const inc = await us.waitEvent('incoming_call')
    await us.call('answer', inc.callId)
    await pj.waitEvent('call_state', (e) => e.state === 'confirmed', 10000, from1)
    await pj.waitEvent('media_active', () => true, 10000, from1)
    await tonesBothWays(us, pj, inc.callId, 'PJSIP calls us')
    // our SDP answer carried the STUN mapping of our RTP port, not the private address
    // (pjsua logs the messages it receives at level 4)
    assert.match(pj.log(), new RegExp(`c=IN IP4 ${PUBLIC.replace(/\./g, '\\.')}\r?\n`), 'our SDP c= is the public address')
    assert.doesNotMatch(pj.log(), new RegExp(`c=IN IP4 ${INSIDE.replace(/\./g, '\\.')}`), 'the private address never reaches PJSIP')
    await us.call('hangup', inc.callId)
    await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 10000, from1)

    // we call PJSIP (directly: a URI naming another host), out through the NAT
    const from2 = pj.events.length
    const out = await us.call('makeCall', USER.username, pjUri)
    await us.waitEvent('call_state', (e) => e.callId === out.id && e.state === 'confirmed')
    await pj.waitEvent('media_active', () => true, 10000, from2)
    await tonesBothWays(us, pj, out.id, 'we call PJSIP')
    await us.call('hangup', out.id)
    await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 10000, from2)

    // silence on the signalling path for longer than the conntrack timeout: the keep-alive holds it
    await sleep((CONNTRACK_TIMEOUT_S + 4) * 1000)
    const from3 = pj.events.length
    const before = us.events.filter((e) => e.event === 'incoming_call').length
    pj.dial(`sip:${USER.username}@${OUT}:5060`)
    await us.waitEvent('incoming_call', () => us.events.filter((e) => e.event === 'incoming_call').length > before, 8000)
    const inc2 = us.events.filter((e) => e.event === 'incoming_call').pop()
    await us.call('reject', inc2.callId, 486)
    await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 10000, from3)
    await us.stop()

    // no STUN now: Kamailio's 401 shows the public address (received/rport), the authenticated
    // REGISTER carries it, and a call reaches us; then the control: without
    // keep-alive the mapping expires and Kamailio's next INVITE dies at the router
    const savedBefore = savedContacts(kam).length
    const quiet = startInside(t, serviceConfig(kam, 5064, { keepAliveIntervalS: 0 }))
    const rport = await quiet.waitEvent('public_address')
    assert.deepEqual([rport.address, rport.source], [PUBLIC, 'rport'], JSON.stringify(rport))
    await quiet.waitEvent('registration', (e) => e.state === 'registered' && e.at >= rport.at)
    await until(() => savedContacts(kam).length > savedBefore, 3000, 'Kamailio logging the saved contact')
    const saved = savedContacts(kam)
    assert.equal(saved[saved.length - 1], `<sip:${USER.username}@${PUBLIC}:${rport.port}>`, `contacts saved: ${saved}`)
    const fromQ = pj.events.length
    pj.dial(`sip:${USER.username}@${OUT}:5060`)
    const incQ = await quiet.waitEvent('incoming_call', () => true, 8000)
    await quiet.call('reject', incQ.callId, 486)
    await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 10000, fromQ)
    await sleep((CONNTRACK_TIMEOUT_S + 4) * 1000)
    const from4 = pj.events.length
    pj.dial(`sip:${USER.username}@${OUT}:5060`)
    await sleep(6000)
    assert.ok(
      quiet.events.filter((e) => e.event === 'incoming_call').length === 1,
      `without keep-alive the call must not get through the expired mapping: ${quiet.describe()}`,
    )
    pj.cmd('hangup')
    await pj.waitEvent('call_state', (e) => e.state === 'disconnected', 15000, from4).catch(() => {})
    await quiet.stop()
  } catch (err) {
    err.message += `\n--- our events:\n${us.describe()}\n--- kamailio log (tail):\n` + kam.log().split('\n').slice(-40).join('\n')
    throw err
  }
})
