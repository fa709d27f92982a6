// Many operators in one service, against Kamailio: ten accounts registered, each taking a call
// from sipp through the proxy at once; the global and per-account call limits (486 before
// ringing at the sipp caller, makeCall rejected); one account removed at run time (its call
// ends with a BYE, Kamailio no longer routes to it, the others go on) and one added at run time
// (a settings row: it registers and takes a call).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer, tmpDir } = require('./helpers/process')
const { startKamailio } = require('./peers/kamailio')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { until } = require('./helpers/wait')

const EXTS = Array.from({ length: 11 }, (_, i) => String(2001 + i))
const USERS = EXTS.map((e) => ({ username: e, password: `pw-${e}` }))
const START = EXTS.slice(0, 10)
const ADDED = EXTS[10]
const REMOVED = '2010'
const LIMITED = '2001' // maxCalls 1 of its own

/** An injection file for sipp: one callee extension per call. */
function calleeFile(exts) {
  const file = path.join(tmpDir('accounts-inf'), 'callees.csv')
  fs.writeFileSync(file, 'SEQUENTIAL\n' + exts.map((e) => `${e};\n`).join(''))
  return file
}

test('ten operators on Kamailio: calls at once, limits, one removed and one added at run time', async (t) => {
  if (!requirePeer('kamailio', t) || !requirePeer('sipp', t)) return
  const kam = await startKamailio({ users: USERS, t })
  const remote = `${kam.host}:${kam.port}`
  const { sip, events } = await startService(t, {
    server: kam.host,
    serverPort: kam.port,
    registerExpires: 60,
    timerT1Ms: 100,
    stopGraceMs: 2000,
    maxCalls: 10,
    accounts: START.map((e) => ({ extension: e, password: `pw-${e}`, ...(e === LIMITED ? { maxCalls: 1 } : {}) })),
  })
  const isRegistered = (ext) => events.some((e) => e.name === 'registration' && e.account === ext && e.state === 'registered')
  // every operator answers at once, with its own header on the 200
  const callOf = new Map()
  sip.on('incoming_call', (e) => {
    callOf.set(e.account, e.callId)
    sip.answer(e.callId, { headers: { 'X-Answer': `op-${e.account}` } }).catch(() => {})
  })
  const confirmed = (id) => events.some((e) => e.name === 'call_state' && e.callId === id && e.state === 'confirmed')
  try {
    await until(() => START.every(isRegistered), 10000, 'ten accounts registered')
    assert.deepEqual(
      sip.accounts().map((a) => [a.extension, a.state]),
      START.map((e) => [e, 'registered']),
    )

    // ten calls through the proxy, one to each operator, at once
    const main = await startSipp({ scenario: 'accounts_uac_calls', remote, calls: 10, timeoutMs: 30000, args: ['-inf', calleeFile(START), '-r', '50'], t })
    await until(() => START.every((e) => callOf.has(e) && confirmed(callOf.get(e))), 10000, 'ten confirmed calls')
    for (const e of START) assert.equal(sip.callInfo(callOf.get(e)).account, e)
    assert.equal(sip.calls().length, 10)

    // the service's limit: an 11th call is busy before it rings; makeCall too
    let busy = await startSipp({ scenario: 'accounts_uac_busy', remote, service: '2002', t })
    let r = await busy.done
    assert.equal(r.code, 0, describeSipp(r))
    await assert.rejects(sip.makeCall('2003', '2005'), (e) => !(e instanceof TypeError) && /makeCall: the service has 10 calls, its limit \(maxCalls 10\)/.test(e.message))

    // one operator leaves: its call ends with our BYE, it un-REGISTERs, the others go on
    await sip.removeAccount(REMOVED)
    await disconnected(sip, events, callOf.get(REMOVED), 1000)
    const unreg = await waitFor(sip, events, 'registration', (e) => e.account === REMOVED && e.state === 'unregistered', 1000)
    assert.equal(unreg.code, 200, JSON.stringify(unreg))
    assert.ok(!sip.accounts().some((a) => a.extension === REMOVED))
    const lost = await startSipp({ scenario: 'accounts_uac_not_found', remote, service: REMOVED, t })
    r = await lost.done
    assert.equal(r.code, 0, 'Kamailio has no contact for the removed account: ' + describeSipp(r))
    assert.deepEqual(
      sip.calls().map((c) => c.state),
      Array(9).fill('confirmed'),
    )

    // an operator's own limit: a second call to 2001 is busy (the service has room again)
    busy = await startSipp({ scenario: 'accounts_uac_busy', remote, service: LIMITED, t })
    r = await busy.done
    assert.equal(r.code, 0, describeSipp(r))
    await assert.rejects(sip.makeCall(LIMITED, '2005'), /makeCall: account 2001 has 1 calls, its limit \(accounts\[\]\.maxCalls 1\)/)

    // a new operator from a settings row: registers and takes a call
    await sip.addAccount({ pbx_extension: ADDED, pbx_password: `pw-${ADDED}`, pbx_display_name: 'Новый оператор' })
    assert.equal(sip.accounts().at(-1).extension, ADDED)
    await until(() => isRegistered(ADDED), 5000, 'the added account registered')
    const late = await startSipp({ scenario: 'accounts_uac_calls', remote, calls: 1, args: ['-inf', calleeFile([ADDED])], t })
    await until(() => callOf.has(ADDED) && confirmed(callOf.get(ADDED)), 5000, 'the added operator answered')
    assert.equal(sip.callInfo(callOf.get(ADDED)).account, ADDED)

    // bad input
    await assert.rejects(sip.addAccount({ extension: '2002' }), /account.extension: 2002 is already an account/)
    await assert.rejects(sip.addAccount({ extension: 'a b' }), /account.extension: not a SIP user part/)
    await assert.rejects(sip.addAccount({ extension: 7 }), (e) => e instanceof TypeError && /addAccount\(account\).extension must be a string/.test(e.message))
    await assert.rejects(sip.addAccount({ pbx_password: 'row-without-extension' }), /row.pbx_extension: missing/)
    await assert.rejects(sip.addAccount({ pbx_extension: true }), TypeError)
    await assert.rejects(sip.removeAccount('9999'), /extension: no account "9999"/)

    // every operator hangs up with a Reason and a header on the BYE
    for (const c of sip.calls()) await c.hangup({ code: 200, reason: 'Operator done', headers: { 'X-Bye': 'crm' } })
    r = await main.done
    assert.equal(r.code, 0, describeSipp(r))
    assert.match(r.messages, /Reason: SIP;cause=200;text="account removed"/)
    assert.equal((r.messages.match(/^X-Bye: crm/gm) || []).length, 9, 'X-Bye on the nine BYEs of hangup()')
    r = await late.done
    assert.equal(r.code, 0, describeSipp(r))
    await sip.stop()
  } catch (err) {
    err.message += '\n--- kamailio log (tail):\n' + kam.log().split('\n').filter((l) => !/epoll_wait/.test(l)).slice(-40).join('\n')
    throw err
  }
})
