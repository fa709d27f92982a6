// The service's own settings rows (pbx_*), and UTF-8 display names both ways.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { record, waitFor, disconnected, startService } = require('./helpers/sip')
const { SipService, PJSIPNativeService } = require('..')

const NAME = 'Оператор call-центра'
const PBX = { pbx_server: '127.0.0.1', pbx_port: '5060', pbx_transport: 'UDP', pbx_rtp_port_min: 10000, pbx_rtp_port_max: 12000 }
const OPERATOR = { pbx_extension: '7779', pbx_username: '7779', pbx_password: 'row-secret-7779', pbx_display_name: NAME }

test('PJSIPNativeService is the same class family as SipService', () => {
  assert.equal(typeof PJSIPNativeService, 'function')
  assert.ok(new PJSIPNativeService({ bindAddress: '127.0.0.1', localPort: 0 }) instanceof SipService)
})

test('fromSettings with the pbx_* rows; a Cyrillic display name arrives intact at sipp', async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t })
  // the registrar 127.0.0.1:5060 does not exist: registration may fail, calls must still work
  const sip = SipService.fromSettings(PBX, [OPERATOR], { localPort: 0, bindAddress: '127.0.0.1', registerExpires: 60 })
  assert.ok(sip instanceof SipService)
  const events = record(sip)
  await sip.start()
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  assert.equal(sip.localAddress().transport, 'udp')
  assert.ok(sip.localAddress().port > 0)
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await sip.hangup(call.id)
  await disconnected(sip, events, call.id)
  await sip.stop()
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))
  const invite = r.messages.slice(r.messages.indexOf('INVITE sip:'))
  const from = (invite.match(/^(From|f):.*$/im) || [''])[0]
  assert.ok(
    from.includes(NAME),
    `From carries the UTF-8 display name: ${from}`,
  )
  assert.match(from, /sip:7779@/)
})

test('fromSettings accepts numbers as strings and rejects an invalid port with the field name', () => {
  assert.throws(
    () => SipService.fromSettings({ ...PBX, pbx_port: 'abc' }, [OPERATOR], { localPort: 0 }),
    (e) => e instanceof Error && /pbx_port|serverPort/.test(e.message),
  )
})

test('settings rows as a database returns them: numbers for strings pass, a value of no usable type is a TypeError naming the field', () => {
  // a numeric password or extension column, as some schemas have
  SipService.fromSettings({ ...PBX, pbx_port: 5060 }, [{ ...OPERATOR, pbx_extension: 7779, pbx_password: 1234 }], { localPort: 0 })
  for (const [pbx, operators, field] of [
    [{ ...PBX, pbx_port: {} }, [OPERATOR], 'pbx_port'],
    [{ ...PBX, pbx_use_websocket: [] }, [OPERATOR], 'pbx_use_websocket'],
    [PBX, [{ ...OPERATOR, pbx_password: { secret: true } }], 'pbx_password'],
  ]) {
    assert.throws(
      () => SipService.fromSettings(pbx, operators, { localPort: 0 }),
      (e) => e instanceof TypeError && e.message.includes(field),
      field,
    )
  }
})

test('pbx_use_websocket: a malformed WebSocket URL fails the config naming pbx_websocket_url / websocketUrl', () => {
  for (const url of ['http://pbx/ws', 'ws://pbx:0/', 'ws://', 'pbx:8088']) {
    assert.throws(
      () => SipService.fromSettings({ ...PBX, pbx_use_websocket: 1, pbx_websocket_url: url }, [OPERATOR], { localPort: 0 }),
      (e) => /pbx_websocket_url/.test(e.message),
      url,
    )
  }
  assert.throws(
    () => new SipService({ localPort: 0, useWebsocket: true, websocketUrl: 'wss//pbx' }),
    /websocketUrl: not a WebSocket URL/,
  )
})

test('an incoming call with a Cyrillic display name gives displayName intact', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, { accounts: [{ extension: '7779' }] })
  const seen = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_call', remote: addr, keys: { display: NAME }, durationMs: 200, t })
  const inc = await seen
  assert.equal(inc.displayName, NAME)
  assert.equal(inc.fromUser, '1000')
  await sip.answer(inc.callId)
  await disconnected(sip, events, inc.callId)
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
  await sip.stop()
})

test('tls options: a wrong type or unknown key is a TypeError naming tls.<field>; an unreadable file names the field', () => {
  new SipService({ localPort: 0, tls: { caFile: __filename, serverName: 'pbx.example.com', verify: false } })
  for (const [tls, field] of [
    [{ verify: 'no' }, 'tls.verify'],
    [{ caFile: 5 }, 'tls.caFile'],
    [{ cafile: __filename }, 'tls.cafile'],
  ]) {
    assert.throws(() => new SipService({ localPort: 0, tls }), (e) => e instanceof TypeError && e.message.includes(field), field)
  }
  assert.throws(() => new SipService({ localPort: 0, tls: 'x' }), (e) => e instanceof TypeError && e.message.includes('config.tls'))
  assert.throws(
    () => new SipService({ localPort: 0, tls: { caFile: '/nonexistent/ca.pem' } }),
    (e) => /tls\.caFile/.test(e.message) && /nonexistent/.test(e.message),
  )
})
