#!/usr/bin/env node
// Two sip-native user agents on loopback call each other: no PBX, no registration.
//
//   B (extension 200) listens and answers every incoming call;
//   A (extension 100) calls sip:200@127.0.0.1:<B's port>, waits until both sides are confirmed,
//   hangs up after about one second; B sees the call disconnected; both stop.
//
//   npm run demo        (or: node examples/demo.js)
//
// Exits 0 when every step happened, 1 with a message otherwise or after 15 s.
'use strict'

const path = require('node:path')
const { SipService } = require(path.join(__dirname, '..'))

const TIMEOUT_MS = 15000
const t0 = Date.now()
const stamp = () => `+${String(Date.now() - t0).padStart(5)} ms`
const short = (id) => (id.length > 16 ? `${id.slice(0, 14)}…` : id)
const log = (who, msg) => console.log(`${stamp()}  ${who}  ${msg}`)

function fail(msg) {
  console.error(`demo FAILED: ${msg}`)
  process.exit(1)
}
const watchdog = setTimeout(() => fail(`not done after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS)

/** Resolves with the first event `name` on `emitter` for which `pred` holds. */
function waitFor(emitter, name, pred) {
  return new Promise((resolve) => {
    const on = (e) => {
      if (!pred(e)) return
      emitter.off(name, on)
      resolve(e)
    }
    emitter.on(name, on)
  })
}

function describe(e) {
  switch (e.type) {
    case 'incoming_call':
      return `incoming_call ${short(e.callId)} from ${e.displayName ? `"${e.displayName}" ` : ''}${e.from} to ${e.to}`
    case 'call_state':
      return `call_state    ${short(e.callId)} ${e.direction} → ${e.state}${e.code ? ` (${e.code} ${e.reason})` : ''}`
    case 'registration':
      return `registration  ${e.account} ${e.state} ${e.code} ${e.reason}`
    default:
      return JSON.stringify(e)
  }
}

async function main() {
  const common = { bindAddress: '127.0.0.1', localPort: 0, rtpPortMin: 30000, rtpPortMax: 30999 }
  const a = new SipService({ ...common, accounts: [{ extension: '100', displayName: 'Alice (A)' }] })
  const b = new SipService({ ...common, accounts: [{ extension: '200', displayName: 'Bob (B)' }] })

  for (const [who, sip] of [['A', a], ['B', b]]) {
    for (const name of ['registration', 'incoming_call', 'call_state']) sip.on(name, (e) => log(who, describe(e)))
    sip.on('error', (e) => log(who, `error         ${e.message}`))
  }

  // B answers whatever comes in.
  b.on('incoming_call', (e) => {
    b.answer(e.callId).then(
      () => log('B', `answered      ${short(e.callId)}`),
      (err) => fail(`B could not answer: ${err.message}`),
    )
  })

  await Promise.all([a.start(), b.start()])
  const la = a.localAddress()
  const lb = b.localAddress()
  log('A', `listening on ${la.address}:${la.port}/${la.transport}`)
  log('B', `listening on ${lb.address}:${lb.port}/${lb.transport}`)

  const target = `sip:200@127.0.0.1:${lb.port}`
  const bIncoming = waitFor(b, 'incoming_call', () => true)
  const aConfirmed = waitFor(a, 'call_state', (e) => e.state === 'confirmed' || e.state === 'disconnected')

  log('A', `calling ${target} as 100`)
  const call = await a.makeCall('100', target)
  log('A', `INVITE sent, call id ${short(call.id)}`)

  const inc = await bIncoming
  const bConfirmed = waitFor(b, 'call_state', (e) => e.callId === inc.callId && (e.state === 'confirmed' || e.state === 'disconnected'))
  const [ea, eb] = await Promise.all([aConfirmed, bConfirmed])
  if (ea.state !== 'confirmed') fail(`A's call ended before it was confirmed (${ea.code} ${ea.reason})`)
  if (eb.state !== 'confirmed') fail(`B's call ended before it was confirmed (${eb.code} ${eb.reason})`)
  log('*', 'call confirmed on both sides; A hangs up in 1 s')

  const bDisconnected = waitFor(b, 'call_state', (e) => e.callId === inc.callId && e.state === 'disconnected')
  const aDisconnected = waitFor(a, 'call_state', (e) => e.callId === call.id && e.state === 'disconnected')
  await new Promise((r) => setTimeout(r, 1000))
  await a.hangup(call.id)
  await Promise.all([aDisconnected, bDisconnected])
  log('*', 'both sides disconnected; stopping')

  await Promise.all([a.stop(), b.stop()])
  clearTimeout(watchdog)
  log('*', `done: A running=${a.isRunning}, B running=${b.isRunning}`)
}

main().then(
  () => {
    process.exitCode = 0
    // After stop() nothing may hold the event loop open: the process should end by itself.
    setTimeout(() => fail('the process did not exit within 3 s after stop() (a handle is still open)'), 3000).unref()
  },
  (err) => fail(err && err.stack ? err.stack : String(err)),
)
