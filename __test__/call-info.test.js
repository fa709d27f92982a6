// Headers and call info against sipp: every header of an incoming INVITE on the event, extra
// headers on answer/reject/hangup (regex checks in the scenarios), RFC 3326 Reason both ways
// (our BYE and CANCEL, the peer's BYE and CANCEL on the disconnected event), and callInfo()
// checked against what sipp sent. One service for the file.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const FAST = { timerT1Ms: 100, stopGraceMs: 1000, accounts: [{ extension: '7779' }] }

test('headers and call info', async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events, addr } = await startService(t, FAST)
  // what each incoming call gets, by the X-Test header of its INVITE (none: answered)
  let onIncoming = () => {}
  sip.on('incoming_call', (e) => onIncoming(e))

  await t.test('incoming: all INVITE headers on the event, X-Answer on the 200, callInfo, the peer\'s Reason on BYE', async () => {
    let info
    onIncoming = (e) => {
      sip
        .answer(sip.getCall(e.callId), { headers: { 'X-Answer': 'info-42' } })
        .then(() => waitFor(sip, events, 'call_state', (s) => s.callId === e.callId && s.state === 'confirmed'))
        .then(() => (info = sip.callInfo(e.callId)))
    }
    const sipp = await startSipp({ scenario: 'accounts_uac_info', remote: addr, durationMs: 400, t })
    const inc = await waitFor(sip, events, 'incoming_call')
    const names = inc.headers.map(([n]) => n)
    // in order, repeated headers kept, credentials masked
    const multi = inc.headers.filter(([n]) => n === 'X-Multi').map(([, v]) => v)
    assert.deepEqual(multi, ['one', 'two'])
    assert.ok(names.indexOf('X-CRM-Id') < names.indexOf('X-Multi'), names.join(','))
    assert.ok(names.indexOf('Max-Forwards') < names.indexOf('X-CRM-Id'), names.join(','))
    const auth = inc.headers.find(([n]) => n === 'Proxy-Authorization')
    assert.ok(auth && !auth[1].includes('0123456789abcdef'), `masked: ${auth}`)
    const r = await sipp.done
    assert.equal(r.code, 0, describeSipp(r))
    const end = await disconnected(sip, events, inc.callId)
    assert.equal(end.reasonHeader, 'SIP;cause=200;text="Caller gone"')
    assert.equal(end.reason, 'Caller gone')
    assert.ok(info, 'callInfo while confirmed')
    const contact = r.messages.match(/^Contact: <(sip:caller@[^>]+)>/m)[1]
    assert.equal(info.remoteContact, contact)
    assert.equal(info.codec, 'PCMA', 'the one codec sipp offered')
    assert.equal(info.direction, 'incoming')
    assert.equal(info.account, '7779')
    assert.equal(info.state, 'confirmed')
    assert.equal(info.sipCallId, inc.sipCallId)
    assert.equal(info.remoteUri, inc.from)
    assert.equal(info.localUri, inc.to)
    assert.equal(info.referredFrom, null)
    assert.ok(info.startTime <= info.answerTime, JSON.stringify(info))
    assert.equal(info.endTime, null)
    // after the end: still known, with its end time
    const after = sip.callInfo(inc.callId)
    assert.equal(after.state, 'disconnected')
    assert.ok(after.answerTime <= after.endTime && after.endTime <= Date.now(), JSON.stringify(after))
  })

  await t.test('reject: X-Why and the reason as an RFC 3326 Reason on the 486', async () => {
    onIncoming = (e) => sip.reject(e.callId, 486, 'Busy now', { headers: { 'X-Why': 'crm-busy' } })
    const sipp = await startSipp({ scenario: 'accounts_uac_reject', remote: addr, t })
    const r = await sipp.done
    assert.equal(r.code, 0, describeSipp(r))
  })

  await t.test('hangup before answer: X-Why and the Reason on the 603', async () => {
    onIncoming = (e) => sip.hangup(e.callId, { reason: 'Operator busy', headers: { 'X-Why': 'declined' } })
    const sipp = await startSipp({ scenario: 'accounts_uac_decline', remote: addr, t })
    const r = await sipp.done
    assert.equal(r.code, 0, describeSipp(r))
  })

  await t.test("the peer's CANCEL Reason on the disconnected event", async () => {
    onIncoming = () => {}
    const sipp = await startSipp({ scenario: 'accounts_uac_cancel', remote: addr, t })
    const inc = await waitFor(sip, events, 'incoming_call', (e) => !events.some((s) => s.name === 'call_state' && s.callId === e.callId && s.state === 'disconnected'))
    const r = await sipp.done
    assert.equal(r.code, 0, describeSipp(r))
    const end = await disconnected(sip, events, inc.callId)
    assert.equal(end.reasonHeader, 'SIP;cause=200;text="Call completed elsewhere"')
    assert.equal(end.reason, 'Call completed elsewhere')
  })

  await t.test('outgoing: callInfo from the answer, Reason and X-CRM-Id on our BYE', async () => {
    const uas = await startSipp({ scenario: 'accounts_uas_bye', t })
    const call = await sip.makeCall('7779', `sip:uas@127.0.0.1:${uas.port}`)
    await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
    const info = call.callInfo()
    assert.equal(info.direction, 'outgoing')
    assert.equal(info.account, '7779')
    assert.equal(info.remoteContact, `sip:uas@127.0.0.1:${uas.port}`)
    assert.equal(info.remoteUri, `sip:uas@127.0.0.1:${uas.port}`)
    assert.match(info.localUri, /^sip:7779@/)
    assert.equal(info.codec, 'PCMU')
    assert.ok(info.startTime <= info.answerTime && info.answerTime <= Date.now(), JSON.stringify(info))
    await call.hangup({ code: 200, reason: 'Operator done', headers: { 'X-CRM-Id': '42' } })
    const r = await uas.done
    assert.equal(r.code, 0, describeSipp(r))
    const end = await disconnected(sip, events, call.id)
    assert.equal(end.reasonHeader, null, 'our own hang-up has no peer Reason')
    assert.ok(sip.callInfo(call).endTime >= info.answerTime)
  })

  await t.test('outgoing: Reason and X-CRM-Id on our CANCEL', async () => {
    const uas = await startSipp({ scenario: 'accounts_uas_cancel', t })
    const call = await sip.makeCall('7779', `sip:uas@127.0.0.1:${uas.port}`)
    await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'ringing')
    await sip.hangup(call, { reason: 'Caller gave up', headers: { 'X-CRM-Id': '43' } })
    const r = await uas.done
    assert.equal(r.code, 0, describeSipp(r))
    assert.equal(sip.callInfo(call.id).answerTime, null, 'never answered')
  })

  await t.test('bad input: TypeErrors naming the option, unknown calls', async () => {
    await assert.rejects(sip.answer('in-x', { headers: { 'X-A': 1 } }), (e) => e instanceof TypeError && /answer options.headers.X-A must be a string/.test(e.message))
    await assert.rejects(sip.answer('in-x', { headers: 'X-A: 1' }), TypeError)
    await assert.rejects(sip.reject('in-x', 486, undefined, { headers: [] }), /reject options.headers must be an object/)
    await assert.rejects(sip.hangup('out-x', { code: 'busy' }), (e) => e instanceof TypeError && /hangup options.code/.test(e.message))
    await assert.rejects(sip.hangup('out-x', { reason: 5 }), (e) => e instanceof TypeError && /hangup options.reason/.test(e.message))
    await assert.rejects(sip.hangup('out-x', { headers: { 'X A': 'v' } }), (e) => e instanceof TypeError && /not a header name/.test(e.message))
    await assert.rejects(sip.hangup('out-x', { reason: 'a\r\nBYE' }), (e) => e instanceof TypeError && /reason: spans lines/.test(e.message))
    await assert.rejects(sip.hangup('out-x', { reason: 'x' }), /no such call: out-x/)
    assert.throws(() => sip.callInfo('out-nope'), /no such call: out-nope/)
    assert.throws(() => sip.callInfo(42), TypeError)
  })
  await sip.stop()
})
