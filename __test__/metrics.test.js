// Metrics: service.metrics() and service.metricsText() after real calls against sipp over real
// sockets: a registration with digest auth, an answered outgoing call whose RTP the test sends
// itself (a known count, a gap of lost packets, uneven pacing for jitter), a busy callee (486),
// a garbage datagram, and incoming calls over TCP (answered, rejected 486) for the connection
// figures. metricsText() is read with a Prometheus parser from npm (parse-prometheus-text-format)
// and checked line by line against the exposition grammar (format 0.0.4), and served from an
// HTTP /metrics route beside prom-client's own registry.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const http = require('node:http')
const parsePrometheus = require('parse-prometheus-text-format')
const promClient = require('prom-client')
const { SipService } = require('..')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { sleep, until } = require('./helpers/wait')
const { startService, waitFor, disconnected } = require('./helpers/sip')

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*'
// a label value: anything but a raw quote, backslash or line feed, or one of the three escapes
const LABEL_VALUE = '(?:[^"\\\\\\n]|\\\\["\\\\n])*'
// a value as Go's ParseFloat reads it (decimal; NaN and Inf in any case, as prom-client writes
// "Nan" for an empty event-loop histogram)
const FLOAT = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN])'
const HELP_LINE = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`)
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|summary|histogram|untyped)$`)
const SAMPLE_LINE = new RegExp(
  `^(${NAME})(\\{(?:${LABEL}="${LABEL_VALUE}"(?:,${LABEL}="${LABEL_VALUE}")*,?)?\\})? (${FLOAT})(?: -?\\d+)?$`,
)
const SUFFIXES = { summary: ['', '_sum', '_count'], histogram: ['_bucket', '_sum', '_count'] }

/**
 * A strict reading of a text exposition (format 0.0.4): every line a HELP, a TYPE, a sample or
 * empty; each family announced once, its TYPE before its samples and its samples together;
 * counters named `_total`; a series written once; the text ends with a line feed. With
 * `prefix`, every family name starts with it. Returns the samples, `series -> number`. Throws
 * an Error naming the line otherwise.
 */
function checkExposition(text, { prefix } = {}) {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a line feed')
  const families = new Map()
  const samples = new Map()
  let current = null
  text
    .slice(0, -1)
    .split('\n')
    .forEach((line, i) => {
      const fail = (why) => {
        throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`)
      }
      if (line === '') return
      let m
      if ((m = HELP_LINE.exec(line)) || (m = TYPE_LINE.exec(line))) {
        const [, name, what] = m
        const isType = line.startsWith('# TYPE')
        const family = families.get(name) || { name, type: null, help: null, done: false }
        if (family.done) fail(`family ${name} continues after another family`)
        if (isType ? family.type : family.help !== null) fail(`second ${isType ? 'TYPE' : 'HELP'} for ${name}`)
        if (isType && family.samples) fail(`TYPE after the samples of ${name}`)
        if (isType) family.type = what
        else family.help = what
        if (isType && what === 'counter' && !name.endsWith('_total')) fail('a counter not named _total')
        if (prefix && !name.startsWith(prefix)) fail(`a family not prefixed ${prefix}`)
        if (current && current !== family) current.done = true
        families.set(name, family)
        current = family
        return
      }
      if (line.startsWith('#')) return // other comments are allowed and ignored
      if (!(m = SAMPLE_LINE.exec(line))) fail('not a sample line (name{label="value"} number)')
      const [, name, labels = '', value] = m
      const family =
        current &&
        (SUFFIXES[current.type] || ['']).some((s) => name === current.name + s) &&
        current
      if (!family) fail(`a sample outside the family announced before it (${current && current.name})`)
      if (!family.type) fail(`a sample of ${family.name} before its TYPE`)
      family.samples = (family.samples || 0) + 1
      const series = name + labels.replace(/,\}$/, '}')
      if (samples.has(series)) fail('a series written twice')
      samples.set(series, /^[+-]?i/i.test(value) ? (value.startsWith('-') ? -Infinity : Infinity) : Number(value))
    })
  return samples
}

/** One sample's value from parse-prometheus-text-format's families, by name and labels. */
function parsedValue(families, name, labels = {}) {
  const family = families.find((f) => f.name === name)
  assert.ok(family, `family ${name} in the parsed text`)
  const sample = family.metrics.find((s) => JSON.stringify(s.labels || {}) === JSON.stringify(labels))
  assert.ok(sample, `${name} ${JSON.stringify(labels)} in ${JSON.stringify(family.metrics)}`)
  return Number(sample.value)
}

/** The text, read both ways: the strict grammar and the npm parser. */
function scrape(sip) {
  const text = sip.metricsText()
  return { text, samples: checkExposition(text, { prefix: 'sip_native_' }), families: parsePrometheus(text) }
}

/** An RTP packet: PCMU silence, 20 ms. */
function rtpPacket(seq, timestamp, ssrc = 0x5eed) {
  const p = Buffer.alloc(12 + 160, 0xff)
  p[0] = 0x80
  p[1] = 0
  p.writeUInt16BE(seq & 0xffff, 2)
  p.writeUInt32BE(timestamp >>> 0, 4)
  p.writeUInt32BE(ssrc, 8)
  return p
}

test('the exposition check refuses what is not valid exposition', () => {
  const good = '# HELP sip_native_x_total X.\n# TYPE sip_native_x_total counter\nsip_native_x_total{code="486"} 1\n'
  assert.equal(checkExposition(good, { prefix: 'sip_native_' }).get('sip_native_x_total{code="486"}'), 1)
  for (const [bad, why] of [
    [good.slice(0, -1), /line feed/],
    [good.replace('{code="486"}', '{code="4"6"}'), /not a sample line/],
    [good.replace('{code="486"}', '{code=486}'), /not a sample line/],
    [good.replace(' 1\n', ' one\n'), /not a sample line/],
    [good.replace(' 1\n', ' 1,5\n'), /not a sample line/],
    [good.replace('# TYPE sip_native_x_total counter\n', ''), /before its TYPE/],
    [good.replace(/_total/g, ''), /counter not named _total/],
    [good + 'sip_native_x_total{code="486"} 2\n', /written twice/],
    [good + good, /second HELP/],
    [good + 'sip_native_y 1\n', /outside the family/],
    [good.replace(/sip_native_x/g, 'other_x'), /not prefixed/],
  ]) {
    assert.throws(() => checkExposition(bad, { prefix: 'sip_native_' }), why, JSON.stringify(bad))
  }
})

test('before start() every figure is 0; metricsText() is valid all the same', () => {
  const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, accounts: [{ extension: '7779' }] })
  const m = sip.metrics()
  assert.equal(m.running, false)
  assert.equal(m.registrations.registered, 0)
  assert.deepEqual(m.callAttempts, { outgoing: 0, incoming: 0 })
  assert.deepEqual(m.callFailures, { outgoing: {}, incoming: {} })
  assert.equal(m.rtp.packetsSent, 0)
  assert.equal(m.loggerErrors, 0)
  const { samples, families } = scrape(sip)
  assert.equal(samples.get('sip_native_running'), 0)
  assert.equal(parsedValue(families, 'sip_native_call_attempts_total', { direction: 'outgoing' }), 0)
  // no failure yet: the labelled family is left out rather than written empty
  assert.ok(!samples.has('sip_native_call_failures_total{direction="outgoing",code="486"}'))
})

test('registration, an answered call with RTP, a 486 and a garbage datagram show in metrics() and metricsText()', { timeout: 60000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const registrar = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 50000 })
  const rtp = dgram.createSocket('udp4')
  await new Promise((resolve) => rtp.bind(0, '127.0.0.1', resolve))
  t.after(() => rtp.close())
  const answering = await startSipp({ scenario: 'uas_answer_media', t, timeoutMs: 40000, keys: { mport: rtp.address().port } })
  const busy = await startSipp({ scenario: 'uas_busy', t, timeoutMs: 40000 })
  const { sip, events, port } = await startService(t, {
    server: '127.0.0.1',
    serverPort: registrar.port,
    registerExpires: 300,
    accounts: [{ extension: '7779', password: 'secret' }],
  })

  await waitFor(sip, events, 'registration', (e) => e.state === 'registered')
  let m = sip.metrics()
  assert.equal(m.running, true)
  assert.deepEqual(m.registrations, { registering: 0, registered: 1, unregistering: 0, unregistered: 0, failed: 0 })

  const call = await sip.makeCall('7779', `sip:1000@127.0.0.1:${answering.port}`)
  await waitFor(sip, events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed')
  m = sip.metrics()
  assert.equal(m.calls.outgoing.confirmed, 1, JSON.stringify(m.calls))
  assert.equal(m.callsEstablished.outgoing, 1)
  assert.equal(m.rtp.sessions, 1)
  // 50 packets numbered 1000..1049 of which 1010..1014 never leave: 45 received, 5 lost;
  // sent 10 and 30 ms apart in turn for 20 ms of media each: interarrival jitter
  const ourRtp = { port: sip.callStats(call.id).localPort, address: '127.0.0.1' }
  for (let i = 0; i < 50; i++) {
    if (i < 10 || i >= 15) rtp.send(rtpPacket(1000 + i, 160 * i), ourRtp.port, ourRtp.address)
    await sleep(i % 2 ? 30 : 10)
  }
  m = await until(
    () => {
      const now = sip.metrics()
      return now.rtp.packetsReceived >= 45 && now
    },
    5000,
    () => `45 RTP packets received (${JSON.stringify(sip.metrics().rtp)})`,
  )
  assert.equal(m.rtp.packetsReceived, 45, JSON.stringify(m.rtp))
  assert.equal(m.rtp.packetsLost, 5, JSON.stringify(m.rtp))
  assert.equal(m.rtp.bytesReceived, 45 * 160)
  assert.ok(m.rtp.packetsSent > 0, JSON.stringify(m.rtp))
  assert.ok(m.rtp.jitterMaxMs > 1 && m.rtp.jitterMaxMs < 100, `jitter ${m.rtp.jitterMaxMs} ms`)
  assert.equal(m.rtp.jitterMeanMs, m.rtp.jitterMaxMs, 'one receiving session: mean = max')
  const live = m.rtp
  await sip.hangup(call)
  await disconnected(sip, events, call.id)
  assert.equal((await answering.done).code, 0, describeSipp(await answering.done))

  const busyCall = await sip.makeCall('7779', `sip:1000@127.0.0.1:${busy.port}`)
  const ended = await disconnected(sip, events, busyCall.id)
  assert.equal(ended.code, 486)

  const garbage = dgram.createSocket('udp4')
  await new Promise((resolve) => garbage.send(Buffer.from('this is not SIP\r\n\r\n\x00\x01'), port, '127.0.0.1', resolve))
  garbage.close()
  m = await until(
    () => {
      const now = sip.metrics()
      return now.transport.malformedMessages >= 1 && now
    },
    5000,
    'the garbage datagram counted',
  )

  assert.equal(m.transport.malformedMessages, 1)
  assert.deepEqual(m.callAttempts, { outgoing: 2, incoming: 0 })
  assert.deepEqual(m.callsEstablished, { outgoing: 1, incoming: 0 })
  assert.deepEqual(m.callFailures, { outgoing: { 486: 1 }, incoming: {} })
  assert.equal(m.calls.outgoing.confirmed, 0)
  // the ended session's figures are kept: the counters did not go back
  assert.equal(m.rtp.sessions, 0)
  assert.equal(m.rtp.endedSessions, 1)
  assert.ok(m.rtp.packetsReceived >= live.packetsReceived && m.rtp.packetsSent >= live.packetsSent, JSON.stringify(m.rtp))
  assert.equal(m.rtp.packetsLost, 5)
  assert.ok(m.rtp.endedJitterMsSum > 0)
  assert.equal(m.rtp.jitterMaxMs, 0, 'no live session')

  const { samples, families } = scrape(sip)
  for (const [series, value] of [
    ['sip_native_running', 1],
    ['sip_native_registrations{state="registered"}', 1],
    ['sip_native_call_attempts_total{direction="outgoing"}', 2],
    ['sip_native_calls_established_total{direction="outgoing"}', 1],
    ['sip_native_call_failures_total{direction="outgoing",code="486"}', 1],
    ['sip_native_calls{direction="outgoing",state="confirmed"}', 0],
    ['sip_native_rtp_packets_lost_total', 5],
    ['sip_native_rtp_sessions', 0],
    ['sip_native_rtp_call_jitter_seconds_count', 1],
    ['sip_native_malformed_messages_total', 1],
    ['sip_native_logger_errors_total', 0],
  ]) {
    assert.equal(samples.get(series), value, series)
  }
  assert.ok(samples.get('sip_native_rtp_packets_received_total') >= 45)
  assert.equal(samples.get('sip_native_rtp_call_jitter_seconds_sum'), sip.metrics().rtp.endedJitterMsSum / 1000)
  // the npm parser reads the same figures
  assert.equal(parsedValue(families, 'sip_native_call_failures_total', { direction: 'outgoing', code: '486' }), 1)
  assert.equal(parsedValue(families, 'sip_native_registrations', { state: 'registered' }), 1)
  assert.equal(families.find((f) => f.name === 'sip_native_call_failures_total').type, 'COUNTER')
  assert.equal(families.find((f) => f.name === 'sip_native_calls').type, 'GAUGE')
  const summary = families.find((f) => f.name === 'sip_native_rtp_call_jitter_seconds')
  assert.equal(summary.type, 'SUMMARY')
  assert.equal(Number(summary.metrics[0].count), 1)

  // served beside prom-client's own registry on a plain HTTP /metrics route
  const registry = new promClient.Registry()
  promClient.collectDefaultMetrics({ register: registry })
  const server = http.createServer(async (req, res) => {
    if (req.url !== '/metrics') return res.writeHead(404).end()
    res.setHeader('Content-Type', registry.contentType)
    res.end((await registry.metrics()) + '\n' + sip.metricsText())
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const res = await fetch(`http://127.0.0.1:${server.address().port}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const body = await res.text()
  const served = checkExposition(body)
  assert.ok([...served.keys()].some((s) => s.startsWith('process_cpu_user_seconds_total')), 'prom-client metrics served')
  assert.equal(served.get('sip_native_call_failures_total{direction="outgoing",code="486"}'), 1)
  assert.equal(parsedValue(parsePrometheus(body), 'sip_native_rtp_packets_lost_total'), 5)

  await sip.stop()
  m = sip.metrics()
  assert.equal(m.running, false)
  assert.equal(m.registrations.registered, 0, 'gauges read 0 after stop()')
  assert.equal(m.callAttempts.outgoing, 2, 'counters keep the run totals after stop()')
  assert.equal(m.rtp.packetsLost, 5)
  assert.equal(checkExposition(sip.metricsText()).get('sip_native_running'), 0)
  assert.equal((await registrar.done).code, 0, 'registrar saw REGISTER and un-REGISTER: ' + describeSipp(await registrar.done))
})

test('incoming calls over TCP: attempts, established, a 486, and the stream connections they came on', { timeout: 60000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const { sip, events } = await startService(t, { transport: 'tcp', accounts: [{ extension: '7779' }] })
  const tcpPort = sip.localAddresses().find((a) => a.transport === 'tcp').port
  const remote = `127.0.0.1:${tcpPort}`
  const answered = new Promise((resolve) => sip.once('incoming_call', resolve))
  const uac = await startSipp({ scenario: 'uac_call', transport: 'tcp', remote, durationMs: 1000, t })
  const inc = await answered
  await sip.answer(inc.callId)
  await waitFor(sip, events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed')
  let m = sip.metrics()
  assert.equal(m.calls.incoming.confirmed, 1, JSON.stringify(m.calls))
  assert.equal(m.transport.connections, 1, JSON.stringify(m.transport))
  assert.equal(m.transport.connects, 1)
  assert.equal(checkExposition(sip.metricsText()).get('sip_native_transport_connections'), 1)
  await disconnected(sip, events, inc.callId)
  const r = await uac.done
  assert.equal(r.code, 0, describeSipp(r))
  m = await until(
    () => {
      const now = sip.metrics()
      return now.transport.disconnects === 1 && now
    },
    5000,
    () => `sipp's connection closed (${JSON.stringify(sip.metrics().transport)})`,
  )
  assert.equal(m.transport.connections, 0)

  sip.on('incoming_call', (e) => sip.reject(e.callId, 486).catch(() => {}))
  const rejected = await startSipp({ scenario: 'uac_rejected', transport: 'tcp', remote, keys: { expected: '486' }, t })
  const rr = await rejected.done
  assert.equal(rr.code, 0, describeSipp(rr))
  m = await until(
    () => {
      const now = sip.metrics()
      return now.transport.disconnects === 2 && now
    },
    5000,
    () => `the second connection closed (${JSON.stringify(sip.metrics().transport)})`,
  )
  assert.deepEqual(m.callAttempts, { outgoing: 0, incoming: 2 })
  assert.deepEqual(m.callsEstablished, { outgoing: 0, incoming: 1 })
  assert.deepEqual(m.callFailures, { outgoing: {}, incoming: { 486: 1 } })
  assert.deepEqual(
    { connections: m.transport.connections, connects: m.transport.connects },
    { connections: 0, connects: 2 },
  )
  const { samples, families } = scrape(sip)
  assert.equal(samples.get('sip_native_call_failures_total{direction="incoming",code="486"}'), 1)
  assert.equal(samples.get('sip_native_transport_connects_total'), 2)
  assert.equal(parsedValue(families, 'sip_native_transport_disconnects_total'), 2)
  assert.equal(parsedValue(families, 'sip_native_calls_established_total', { direction: 'incoming' }), 1)
  await sip.stop()
})

test('loggerErrors counted by the facade shows in both forms', async (t) => {
  const { sip } = await startService(t, {})
  sip._loggerErrors = 3
  assert.equal(sip.metrics().loggerErrors, 3)
  assert.equal(checkExposition(sip.metricsText()).get('sip_native_logger_errors_total'), 3)
  assert.equal(sip.metrics().logRecordsDropped, 0, 'no logger, nothing dropped')
  assert.equal(checkExposition(sip.metricsText()).get('sip_native_log_records_dropped_total'), 0)
  await sip.stop()
})
