// RFC 3263 server location against a real DNS server (dnsmasq on a loopback port): NAPTR -> SRV
// (priority order) -> A for the PBX, SRV -> A for a dialled domain, failover from a dead or
// overloaded first target to the second, and a name that does not resolve named in the error.
'use strict'

const dgram = require('node:dgram')
const test = require('node:test')
const assert = require('node:assert/strict')
const { HOST, requirePeer, freePort, freeTcpPort } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startDnsmasq } = require('./peers/dnsmasq')
const { startService, waitFor, disconnected } = require('./helpers/sip')

test('NAPTR/SRV with the first target dead: REGISTER and a call go to the second', async (t) => {
  if (!requirePeer('sipp', t) || !requirePeer('dnsmasq', t)) return
  // the first target takes datagrams and never answers (a dead host shows only by its silence)
  const silent = dgram.createSocket('udp4')
  const silentGot = []
  silent.on('message', (m) => silentGot.push(m.toString('utf8').split('\r\n')[0]))
  await new Promise((resolve) => silent.bind(0, HOST, resolve))
  t.after(() => silent.close())
  const dead = silent.address().port
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 30000 })
  const busy = await startSipp({ scenario: 'uas_unavailable', t, timeoutMs: 30000 })
  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 30000 })
  const dns = await startDnsmasq({
    t,
    domains: ['pbx.test', 'callee.test'],
    naptr: [{ name: 'pbx.test', order: 10, pref: 10, service: 'SIP+D2U', replacement: '_sip._udp.pbx.test' }],
    srv: [
      // listed in the wrong order on purpose: priority decides
      { name: '_sip._udp.pbx.test', target: 'b.pbx.test', port: reg.port, priority: 20, weight: 10 },
      { name: '_sip._udp.pbx.test', target: 'a.pbx.test', port: dead, priority: 10, weight: 10 },
      { name: '_sip._udp.callee.test', target: 'ok.callee.test', port: uas.port, priority: 20, weight: 10 },
      { name: '_sip._udp.callee.test', target: 'busy.callee.test', port: busy.port, priority: 10, weight: 10 },
    ],
    hosts: ['a.pbx.test', 'b.pbx.test', 'ok.callee.test', 'busy.callee.test'].map((name) => ({ name, address: '127.0.0.1' })),
  })
  const started = Date.now()
  const { sip, events } = await startService(t, {
    server: 'pbx.test', // no serverPort: located by DNS
    dnsServers: [dns.server],
    timerT1Ms: 100, // a silent target is left after 16·T1 = 1.6 s
    accounts: [{ extension: '7779', password: 'secret' }],
  })
  const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed', 15000)
  assert.equal(ok.state, 'registered', JSON.stringify(ok))
  assert.equal(ok.code, 200)
  // the dead target was tried first (priority 10) and given up after its silence
  assert.ok(silentGot.includes('REGISTER sip:pbx.test SIP/2.0'), `the first target got: ${silentGot}`)
  assert.ok(Date.now() - started >= 1500, `registered after ${Date.now() - started} ms: the dead target was not waited for`)
  const log = dns.log()
  assert.match(log, /query\[NAPTR\] pbx\.test/, log)
  assert.match(log, /query\[SRV\] _sip\._udp\.pbx\.test/, log)

  // a dialled domain: no NAPTR there, so SRV; the first target answers 503, the second takes the call
  const call = await sip.makeCall('7779', 'sip:1000@callee.test')
  const up = await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && (e.state === 'confirmed' || e.state === 'disconnected'), 15000)
  assert.equal(up.state, 'confirmed', JSON.stringify(up))
  assert.match(dns.log(), /query\[SRV\] _sip\._udp\.callee\.test/)
  await sip.hangup(call.id)
  await disconnected(sip, events, call.id, 5000)
  const b = await busy.done
  assert.equal(b.code, 0, 'the 503 target got the INVITE and its ACK: ' + describeSipp(b))
  const u = await uas.done
  assert.equal(u.code, 0, 'the second target took the call: ' + describeSipp(u))
  await sip.stop()
  const r = await reg.done
  assert.equal(r.code, 0, 'the live registrar saw REGISTER and un-REGISTER: ' + describeSipp(r))
})

test('a refused UDP target (ICMP port unreachable) is left at once, not after its silence', async (t) => {
  if (!requirePeer('sipp', t) || !requirePeer('dnsmasq', t)) return
  const refused = await freePort() // nothing bound: the kernel answers port unreachable
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 30000 })
  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 30000 })
  const dns = await startDnsmasq({
    t,
    domains: ['pbx.test', 'callee.test'],
    srv: [
      { name: '_sip._udp.pbx.test', target: 'a.pbx.test', port: refused, priority: 10, weight: 10 },
      { name: '_sip._udp.pbx.test', target: 'b.pbx.test', port: reg.port, priority: 20, weight: 10 },
      { name: '_sip._udp.callee.test', target: 'a.callee.test', port: refused, priority: 10, weight: 10 },
      { name: '_sip._udp.callee.test', target: 'b.callee.test', port: uas.port, priority: 20, weight: 10 },
    ],
    hosts: ['a.pbx.test', 'b.pbx.test', 'a.callee.test', 'b.callee.test'].map((name) => ({ name, address: '127.0.0.1' })),
  })
  // default T1: a silent target would be waited for 8 s; a refusing one must not be
  const { sip, events } = await startService(t, {
    server: 'pbx.test',
    dnsServers: [dns.server],
    accounts: [{ extension: '7779', password: 'secret' }],
  })
  const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed', 4000)
  assert.equal(ok.state, 'registered', JSON.stringify(ok))
  const started = Date.now()
  const call = await sip.makeCall('7779', 'sip:1000@callee.test')
  const up = await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && (e.state === 'confirmed' || e.state === 'disconnected'), 4000)
  assert.equal(up.state, 'confirmed', JSON.stringify(up))
  assert.ok(Date.now() - started < 4000)
  await sip.hangup(call.id)
  await disconnected(sip, events, call.id, 5000)
  assert.equal((await uas.done).code, 0)
  await sip.stop()
  assert.equal((await reg.done).code, 0)
})

test('TCP: NAPTR SIP+D2T and _sip._tcp SRV with the first target refusing: the PBX connection goes to the second', async (t) => {
  if (!requirePeer('sipp', t) || !requirePeer('dnsmasq', t)) return
  const refused = await freeTcpPort() // nothing listens there: the connect is refused
  const reg = await startSipp({ scenario: 'registrar_received', transport: 'tcp', keys: { received: HOST }, t, timeoutMs: 30000 })
  const dns = await startDnsmasq({
    t,
    domains: ['pbx.test'],
    naptr: [
      { name: 'pbx.test', order: 10, pref: 10, service: 'SIP+D2U', replacement: '_sip._udp.pbx.test' },
      { name: 'pbx.test', order: 20, pref: 10, service: 'SIP+D2T', replacement: '_sip._tcp.pbx.test' },
    ],
    srv: [
      { name: '_sip._tcp.pbx.test', target: 'b.pbx.test', port: reg.port, priority: 20, weight: 10 },
      { name: '_sip._tcp.pbx.test', target: 'a.pbx.test', port: refused, priority: 10, weight: 10 },
    ],
    hosts: ['a.pbx.test', 'b.pbx.test'].map((name) => ({ name, address: '127.0.0.1' })),
  })
  const { sip, events } = await startService(t, {
    server: 'pbx.test', // no serverPort: located by DNS, over the transport in use
    transport: 'tcp',
    dnsServers: [dns.server],
    accounts: [{ extension: '7779' }],
  })
  const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed', 15000)
  assert.equal(ok.state, 'registered', JSON.stringify(ok))
  const up = events.filter((e) => e.type === 'transport' && e.state === 'connected')
  assert.ok(up.length >= 1 && up[0].remote === 'pbx.test', JSON.stringify(events.filter((e) => e.type === 'transport')))
  assert.match(dns.log(), /query\[NAPTR\] pbx\.test/)
  assert.match(dns.log(), /query\[SRV\] _sip\._tcp\.pbx\.test/)
  await sip.stop()
  assert.equal((await reg.done).code, 0, describeSipp(await reg.done))
})

test('a name that does not resolve: registration fails and makeCall rejects, naming it', async (t) => {
  if (!requirePeer('dnsmasq', t)) return
  const dns = await startDnsmasq({ t, domains: ['pbx.test'] })
  const { sip, events } = await startService(t, {
    server: 'nx.pbx.test',
    dnsServers: [dns.server],
    accounts: [{ extension: '7779', password: 'secret' }],
  })
  const failed = await waitFor(sip, events, 'registration', (e) => e.state === 'failed', 10000)
  assert.match(failed.reason, /cannot resolve nx\.pbx\.test: /, JSON.stringify(failed))
  assert.equal(failed.code, 502, JSON.stringify(failed))
  await assert.rejects(sip.makeCall('7779', 'sip:1000@nowhere.pbx.test'), /cannot resolve nowhere\.pbx\.test: /)
  await assert.rejects(sip.makeCall('7779', '1000'), /cannot resolve nx\.pbx\.test: /)
  assert.equal(sip.counters().liveCalls, 0)
  await sip.stop()
})

test('dnsServers entries are checked, naming the field', async () => {
  assert.throws(() => new (require('..').SipService)({ dnsServers: '127.0.0.1' }), /config\.dnsServers must be an array of strings/)
  const { SipService } = require('..')
  for (const bad of ['not-an-ip', '127.0.0.1:0', '[::1', '::1:99999x']) {
    assert.throws(() => new SipService({ bindAddress: '127.0.0.1', localPort: 0, dnsServers: ['127.0.0.1', bad] }), /dnsServers\[1\]/, bad)
  }
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, dnsServers: ['127.0.0.1:5353', '[::1]:53', '::1'] })
  await sip.start()
  await sip.stop()
})
