// The pluggable logger: the engine's log records reach `config.logger` as one object argument
// ({ level, target, message, msg, callId?, ...fields }), the SIP trace (`sipTrace`) adds every
// message sent and received (UDP and TCP) with credentials masked, a call's records carry its
// callId and reach only its own service's logger, real pino and winston loggers print them,
// a logger that throws changes nothing but a counter, and one that blocks the JS thread loses
// the records beyond the bounded queue (counted) instead of growing it. Records are routed to the logger of
// the service that produced them, so these tests run in this process (unlike logging.test.js,
// whose stderr writer is process-wide).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { Writable } = require('node:stream')
const { SipService } = require('..')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startService, waitFor, disconnected } = require('./helpers/sip')
const { until } = require('./helpers/wait')

const LEVELS = ['error', 'warn', 'info', 'debug', 'trace']
const TRACE = 'sip_native::trace'

/** A logger object that keeps what it gets. */
function memoryLogger() {
  const records = []
  const logger = { records }
  for (const m of ['debug', 'info', 'warn', 'error']) logger[m] = (r) => records.push({ method: m, ...r })
  return logger
}

/**
 * Registers 7779/secret with sipp's digest registrar, stops; returns what sipp saw. Over TCP,
 * sipp's verifyauth reports "authentication must be digest" and answers 401 to the
 * pre-authenticated un-REGISTER (the engine answers the challenge and gets its 200), which marks
 * the scenario failed: only UDP checks sipp's verdict.
 */
async function registerWithSipp(t, config, transport = 'udp') {
  const reg = await startSipp({ scenario: 'registrar_auth', transport, t, timeoutMs: 20000 })
  const sip = new SipService({
    bindAddress: '127.0.0.1',
    localPort: 0,
    server: '127.0.0.1',
    serverPort: reg.port,
    transport,
    accounts: [{ extension: '7779', password: 'secret' }],
    ...config,
  })
  t.after(() => (sip.isRunning ? sip.stop() : undefined))
  const events = []
  sip.on('registration', (e) => events.push({ name: 'registration', ...e }))
  sip.on('error', () => {})
  await sip.start()
  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  await sip.stop()
  const sipp = await reg.done
  if (transport === 'udp') assert.equal(sipp.code, 0, 'the registrar verified the digest: ' + describeSipp(sipp))
  // the digest responses the engine really sent, to look for them in the records
  const responses = [...sipp.messages.matchAll(/response="?([0-9a-fA-F]{32})"?/g)].map((m) => m[1].toLowerCase())
  assert.ok(responses.length > 0, 'sipp saw a digest response: ' + describeSipp(sipp))
  return { sip, sipp, responses }
}

function assertNoSecrets(text, responses) {
  assert.doesNotMatch(text, /secret/i, 'no password in the records')
  assert.doesNotMatch(text, /response\s*=\s*\\?"?[0-9a-fA-F]{32}/i, 'no digest response in the records')
  const lower = text.toLowerCase()
  for (const r of responses) assert.ok(!lower.includes(r), `digest response ${r} is not in the records`)
}

test('a custom logger gets the records of a digest REGISTER; no SIP trace without sipTrace', async (t) => {
  if (!requirePeer('sipp', t)) return
  const logger = memoryLogger()
  const { responses } = await registerWithSipp(t, { logger, logLevel: 'debug' })
  const records = logger.records
  assert.ok(records.length > 0, 'the logger got records')
  for (const r of records) {
    assert.ok(LEVELS.includes(r.level), `level: ${JSON.stringify(r)}`)
    assert.equal(r.method, r.level === 'trace' ? 'debug' : r.level, 'the method of the level was called')
    assert.equal(typeof r.target, 'string')
    assert.equal(typeof r.message, 'string')
    assert.equal(r.msg, r.message)
  }
  const registered = records.find((r) => r.message === 'registration registered')
  assert.ok(registered, 'a record says the account registered: ' + records.map((r) => r.message).join(' | '))
  assert.equal(registered.level, 'info')
  assert.match(registered.target, /^sipua::account/)
  assert.equal(registered.account, '7779')
  assert.equal(registered.code, 200)
  assert.ok(records.some((r) => r.message === 'registration unregistered'), 'stop() unregistered, logged')
  assert.deepEqual(records.filter((r) => r.target === TRACE), [], 'no SIP trace records without sipTrace')
  assert.ok(!records.some((r) => /^(REGISTER|SIP\/2\.0) /m.test(JSON.stringify(r))), 'no whole SIP message logged')
  assertNoSecrets(JSON.stringify(records), responses)
})

test('sipTrace: the REGISTERs and their 401/200 are debug trace records, Authorization masked', async (t) => {
  if (!requirePeer('sipp', t)) return
  const logger = memoryLogger()
  const { responses } = await registerWithSipp(t, { logger, sipTrace: true })
  const traces = logger.records.filter((r) => r.target === TRACE)
  const line = (r) => `${r.direction} ${r.sipMessage.split('\r\n')[0]}`
  const seen = traces.map(line)
  for (const expected of [/^sent REGISTER sip:/, /^received SIP\/2\.0 401 /, /^received SIP\/2\.0 200 /]) {
    assert.ok(seen.some((l) => expected.test(l)), `${expected} among the trace: ${seen.join(' | ')}`)
  }
  for (const r of traces) {
    assert.equal(r.level, 'debug', 'trace records are debug whatever logLevel (info here)')
    assert.equal(r.method, 'debug')
    assert.equal(r.transport, 'udp')
    assert.match(r.remote, /^127\.0\.0\.1:\d+$/)
    assert.ok(r.message.startsWith(`${r.direction} ${r.sipMessage.split('\r\n')[0]} (udp `), r.message)
  }
  const withAuth = traces.filter((r) => r.direction === 'sent' && /^Authorization: /m.test(r.sipMessage))
  assert.ok(withAuth.length > 0, 'the authenticated REGISTER was traced with its Authorization header')
  for (const r of withAuth) assert.match(r.sipMessage, /^Authorization: Digest username="7779", \*\*\*\r$/m)
  assert.equal(logger.records.filter((r) => r.level === 'debug' && r.target !== TRACE).length, 0, 'no other debug records at info')
  assertNoSecrets(JSON.stringify(logger.records), responses)
})

test('sipTrace over TCP: our stream transport traces both directions', async (t) => {
  if (!requirePeer('sipp', t)) return
  const logger = memoryLogger()
  const { responses } = await registerWithSipp(t, { logger, sipTrace: true }, 'tcp')
  const traces = logger.records.filter((r) => r.target === TRACE)
  const seen = traces.map((r) => r.message)
  assert.ok(seen.some((m) => /^sent REGISTER sip:\S+ SIP\/2\.0 \(tcp to 127\.0\.0\.1:\d+\)$/.test(m)), seen.join(' | '))
  assert.ok(seen.some((m) => /^received SIP\/2\.0 200 OK \(tcp from /.test(m)), seen.join(' | '))
  for (const r of traces) assert.equal(r.transport, 'tcp')
  assertNoSecrets(JSON.stringify(logger.records), responses)
})

test("a call's records carry its callId, and reach its own service's logger only", async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 20000 })
  const mine = memoryLogger()
  const other = memoryLogger()
  const { sip, events } = await startService(t, { accounts: [{ extension: '7779' }], logger: mine, sipTrace: true })
  // a second service in the process, with its own logger, running at the same time
  await startService(t, { accounts: [{ extension: '7780' }], logger: other, logLevel: 'debug', sipTrace: true })
  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await sip.hangup(call.id)
  await disconnected(sip, events, call.id)
  const r = await uas.done
  assert.equal(r.code, 0, describeSipp(r))

  const ofCall = mine.records.filter((rec) => rec.callId === call.id)
  const says = (m) => ofCall.some((rec) => rec.message === m && rec.level === 'info')
  assert.ok(says('call confirmed') && says('call disconnected'), 'state records: ' + ofCall.map((x) => x.message).join(' | '))
  const invite = ofCall.find((rec) => rec.target === TRACE && /^sent INVITE /.test(rec.message))
  assert.ok(invite, 'the INVITE sent by the call is traced with its callId: ' + JSON.stringify(mine.records.filter((x) => /INVITE/.test(x.message)).map(({ sipMessage, ...x }) => x)))
  assert.match(invite.sipMessage, /^m=audio \d+ RTP\/AVP/m)
  assert.equal(invite.sipCallId, call.sipCallId)
  assert.ok(ofCall.some((rec) => rec.target === TRACE && /^received SIP\/2\.0 200 /.test(rec.message)), 'its 200 OK, read by the stack, too')
  assert.ok(ofCall.some((rec) => rec.target === TRACE && /^sent BYE /.test(rec.message)), 'the BYE too')
  assert.deepEqual(
    other.records.filter((rec) => rec.callId === call.id || /INVITE|BYE/.test(rec.message)),
    [],
    "the other service's logger gets none of this call's records",
  )
})

test('pino and winston loggers print the records: message, level and fields', async (t) => {
  if (!requirePeer('sipp', t)) return
  const pino = require('pino')
  const winston = require('winston')
  const sink = () => {
    const s = new Writable({
      write(chunk, _enc, cb) {
        s.text += chunk.toString()
        cb()
      },
    })
    s.text = ''
    return s
  }
  const pinoOut = sink()
  await registerWithSipp(t, { logger: pino({ level: 'debug' }, pinoOut) })
  const pinoLines = pinoOut.text.trim().split('\n').map((l) => JSON.parse(l))
  const p = pinoLines.find((l) => l.msg === 'registration registered')
  assert.ok(p, 'pino printed the record with its message as msg:\n' + pinoOut.text)
  assert.equal(p.account, '7779')
  assert.equal(p.code, 200)
  assert.match(p.target, /^sipua::account/)
  // pino writes its numeric level, then the record's: a JSON reader keeps the record's name
  assert.ok(pinoOut.text.includes('"level":30'), "pino's own level is there")
  assert.equal(p.level, 'info')

  const winstonOut = sink()
  const w = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: winstonOut })],
  })
  await registerWithSipp(t, { logger: w })
  await until(() => winstonOut.text.includes('registration registered'), 2000, 'winston wrote the record')
  const winstonLines = winstonOut.text.trim().split('\n').map((l) => JSON.parse(l))
  const wr = winstonLines.find((l) => l.message === 'registration registered')
  assert.ok(wr, 'winston printed the record:\n' + winstonOut.text)
  assert.equal(wr.level, 'info')
  assert.equal(wr.account, '7779')
  assert.match(wr.target, /^sipua::account/)
})

test('a logger that throws: registration and a call go on, the errors are counted', async (t) => {
  if (!requirePeer('sipp', t)) return
  const boom = () => {
    throw new Error('logger down')
  }
  const logger = { debug: boom, info: boom, warn: boom, error: boom }
  const { sip } = await registerWithSipp(t, { logger, sipTrace: true })
  const afterRegister = sip._loggerErrors
  assert.ok(afterRegister > 0, `the throws were counted: ${afterRegister}`)

  const uas = await startSipp({ scenario: 'uas_answer', t, timeoutMs: 20000 })
  const { sip: caller, events } = await startService(t, { accounts: [{ extension: '7779' }], logger })
  const call = await caller.makeCall('7779', `sip:1000@127.0.0.1:${uas.port}`)
  await waitFor(caller, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  await caller.hangup(call.id)
  await disconnected(caller, events, call.id)
  const r = await uas.done
  assert.equal(r.code, 0, 'the call went through: ' + describeSipp(r))
  assert.ok(caller._loggerErrors >= 2, `the call's records threw and were counted: ${caller._loggerErrors}`)
  assert.equal(caller._loggerDropped, 0)
})

test('a logger that falls behind: records beyond the queue are dropped and counted, the engine goes on', async (t) => {
  const path = require('node:path')
  const fs = require('node:fs')
  const { spawn } = require('node:child_process')
  const { tmpDir } = require('./helpers/process')
  const done = path.join(tmpDir('flood'), 'done')
  const { sendOptions } = require('./helpers/sipwire')
  let got = 0
  let blocked = false
  const block = (r) => {
    got++
    if (blocked || r.target !== TRACE || !/OPTIONS/.test(r.message)) return
    // The JS thread stops until the flood is sent (and 300 ms more): the engine keeps
    // tracing it meanwhile, two records per OPTIONS (received, 200 sent).
    blocked = true
    const end = Date.now() + 15000
    while (Date.now() < end && !fs.existsSync(done));
    const settle = Date.now() + 300
    while (Date.now() < settle);
  }
  const logger = { debug: block, info: block, warn: block, error: block }
  const { sip, port } = await startService(t, { logger, sipTrace: true })
  const flood = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'options-flood.js'), String(port), '4000', done], { stdio: 'ignore' })
  t.after(() => flood.exitCode === null && flood.kill('SIGKILL'))
  await new Promise((resolve) => flood.on('exit', resolve))
  await until(() => blocked && sip._loggerDropped > 0, 5000, () => `dropped ${sip._loggerDropped}, got ${got}`)
  // the record that blocked, then the queue (4096) was delivered, the rest dropped: nothing grew
  // without bound, and every record of the 4000 OPTIONS (received, 200 sent) is accounted for
  await until(() => got >= 4097, 5000, () => `got ${got}`)
  assert.ok(got <= 4097 + 50, `at most the queue was kept: ${got} delivered`)
  assert.ok(got + sip._loggerDropped >= 2 * 4000, `${got} delivered + ${sip._loggerDropped} dropped`)
  t.diagnostic(`${got} records delivered, ${sip._loggerDropped} dropped`)
  // the public figure is the same count (or later records' more), as an object field and as text
  const dropped = sip._loggerDropped
  assert.ok(sip.metrics().logRecordsDropped >= dropped, `metrics().logRecordsDropped >= ${dropped}`)
  const line = sip.metricsText().match(/^sip_native_log_records_dropped_total (\d+)$/m)
  assert.ok(line && Number(line[1]) >= dropped, `sip_native_log_records_dropped_total >= ${dropped}: ${line}`)
  assert.match(await sendOptions({ transport: 'udp', host: '127.0.0.1', port, timeoutMs: 3000 }), /^SIP\/2\.0 200 /, 'the engine still answers')
  assert.equal(sip._loggerErrors, 0)
})

test('a logger that is not an object, or lacks a method, is a TypeError naming logger', () => {
  for (const logger of ['console', 42, null, true]) {
    assert.throws(() => new SipService({ logger }), { name: 'TypeError', message: /config\.logger must be an object with debug, info, warn and error methods/ })
  }
  const { warn, ...noWarn } = memoryLogger()
  assert.equal(typeof warn, 'function')
  assert.throws(() => new SipService({ logger: noWarn }), { name: 'TypeError', message: /config\.logger\.warn must be a function, got undefined/ })
  assert.throws(() => new SipService({ logger: { ...memoryLogger(), info: 'x' } }), { name: 'TypeError', message: /config\.logger\.info must be a function/ })
  assert.throws(() => SipService.fromSettings({ pbx_server: 'pbx.test' }, [], { logger: 7 }), { name: 'TypeError', message: /config\.logger must be/ })
  assert.throws(() => new SipService({ logger: memoryLogger(), logLevel: 'loud' }), { name: 'TypeError', message: /logLevel.*loud/ })
  assert.throws(() => new SipService({ sipTrace: 'yes' }), { name: 'TypeError', message: /config\.sipTrace must be a boolean/ })
})
