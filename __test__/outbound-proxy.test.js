// Outbound proxy (RFC 3261 §8.1.2) and route sets (§12.1.2, loose routing): sipp stands for the
// proxy and checks every request it gets; Kamailio is a real record-routing proxy in front of a
// second SipService.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { until } = require('./helpers/wait')

test('REGISTER goes to the outbound proxy with Route: <proxy;lr>, Request-URI the registrar', async (t) => {
  if (!requirePeer('sipp', t)) return
  const proxy = await startSipp({ scenario: 'proxy_registrar', t, timeoutMs: 20000 })
  // pbx.test resolves nowhere: only the proxy is ever looked up
  const { sip, events } = await startService(t, {
    server: 'pbx.test',
    outboundProxy: `sip:127.0.0.1:${proxy.port};transport=udp`,
    accounts: [{ extension: '7779' }],
  })
  const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed')
  assert.equal(ok.state, 'registered', JSON.stringify(ok))
  await sip.stop()
  const r = await proxy.done
  assert.equal(r.code, 0, 'both REGISTERs carried the Route and the registrar URI: ' + describeSipp(r))
})

test('over TCP: the PBX connection goes to the outbound proxy, and the REGISTERs on it carry Route: <proxy;lr>', async (t) => {
  if (!requirePeer('sipp', t)) return
  const proxy = await startSipp({ scenario: 'proxy_registrar', transport: 'tcp', t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: 'pbx.test', // resolves nowhere: only the proxy is dialled
    transport: 'tcp',
    outboundProxy: `sip:127.0.0.1:${proxy.port};transport=tcp`,
    accounts: [{ extension: '7779' }],
  })
  const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed')
  assert.equal(ok.state, 'registered', JSON.stringify(ok))
  const up = events.find((e) => e.type === 'transport' && e.state === 'connected')
  assert.equal(up && up.remote, `127.0.0.1:${proxy.port}`, JSON.stringify(events.filter((e) => e.type === 'transport')))
  await sip.stop()
  // stop() closes the connection during the scenario's last wait, which sipp counts as a
  // failed call: the checks are on what it received
  const r = await proxy.done
  const registers = r.messages.split('\n').filter((l) => l.startsWith('REGISTER sip:pbx.test SIP/2.0'))
  const routes = r.messages.split('\n').filter((l) => l.startsWith(`Route: <sip:127.0.0.1:${proxy.port};transport=TCP;lr>`))
  assert.equal(registers.length, 2, 'REGISTER and un-REGISTER reached the proxy: ' + describeSipp(r))
  assert.equal(routes.length, 2, 'both carried Route: <proxy;lr>: ' + describeSipp(r))
})

test('INVITE via the outbound proxy; ACK and BYE follow the Record-Route, not the Contact', async (t) => {
  if (!requirePeer('sipp', t)) return
  const proxy = await startSipp({ scenario: 'proxy_uas_record_route', t, timeoutMs: 20000 })
  const { sip, events } = await startService(t, {
    server: 'pbx.test',
    outboundProxy: `sip:127.0.0.1:${proxy.port}`,
    accounts: [{ extension: '7779', register: false }],
  })
  const call = await sip.makeCall('7779', '1000')
  const up = await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && (e.state === 'confirmed' || e.state === 'disconnected'))
  assert.equal(up.state, 'confirmed', JSON.stringify(up))
  await sip.hangup(call.id)
  const down = await disconnected(sip, events, call.id, 5000)
  assert.equal(down.code, 200, `the BYE was answered through the route set: ${JSON.stringify(down)}`)
  const r = await proxy.done
  assert.equal(r.code, 0, 'INVITE, ACK and BYE were routed as checked: ' + describeSipp(r))
})

test('outboundProxy must be a SIP URI, naming the field', () => {
  const { SipService } = require('..')
  for (const bad of ['proxy.example.com', 'http://proxy', 'sip:proxy;transport=sctp-bogus', 'sip:proxy:0']) {
    assert.throws(() => new SipService({ bindAddress: '127.0.0.1', localPort: 0, outboundProxy: bad }), /outboundProxy/, bad)
  }
})

test('Kamailio as outbound proxy: the INVITE and, by its Record-Route, the BYE pass through it', async (t) => {
  if (!requirePeer('kamailio', t)) return
  const { startKamailio } = require('./peers/kamailio')
  const users = [{ username: '1000', password: 'pw-1000' }]
  const kam = await startKamailio({ users, t })
  // the callee registers at Kamailio directly; the caller knows its PBX only by a name that
  // resolves nowhere and reaches it through the proxy
  const b = await startService(t, { server: kam.host, serverPort: kam.port, accounts: [{ extension: '1000', password: 'pw-1000' }] })
  await waitFor(b.sip, b.events, 'registration', (e) => e.state === 'registered')
  const a = await startService(t, {
    server: 'pbx.test',
    outboundProxy: `sip:${kam.host}:${kam.port}`,
    accounts: [{ extension: '7779', register: false }],
  })
  try {
    const incoming = new Promise((resolve) => b.sip.once('incoming_call', resolve))
    const call = await a.sip.makeCall('7779', '1000')
    const inc = await incoming
    await b.sip.answer(inc.callId)
    await waitFor(a.sip, a.events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
    await a.sip.hangup(call.id)
    await disconnected(a.sip, a.events, call.id)
    await disconnected(b.sip, b.events, inc.callId)
    const from = `from udp:127.0.0.1:${a.port}`
    const byeLine = () => kam.log().split('\n').find((l) => l.includes('REQ BYE') && l.includes(from))
    // Kamailio's log reaches us through a pipe, possibly after the callee got the BYE
    await until(byeLine, 2000, 'the BYE in the log').catch(() => {})
    assert.ok(kam.log().includes(`REQ INVITE sip:1000@pbx.test ${from}`), 'the INVITE reached Kamailio, Request-URI kept')
    const bye = byeLine()
    assert.ok(bye, 'the BYE went through Kamailio (its Record-Route)')
    assert.ok(bye.includes(`@127.0.0.1:${b.port}`), `the BYE's Request-URI is the callee's Contact: ${bye}`)
  } catch (err) {
    err.message += '\n--- kamailio log (tail):\n' + kam.log().split('\n').filter((l) => !/epoll_wait/.test(l)).slice(-60).join('\n')
    throw err
  }
})
