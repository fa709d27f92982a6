// The sip-native CLI (bin/sip-native.js) as an operator runs it: a child process against real
// peers (sipp as registrar, UAS and UAC; PJSIP as the remote phone; Kamailio answering
// OPTIONS), checked by its exit code, its one-line errors, its status lines and what the peers
// saw and heard.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { requirePeer, freePort, freeTcpPort, tmpDir, track, exited, terminate } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startPjsua2 } = require('./peers/pjsua2')
const { startKamailio } = require('./peers/kamailio')
const A = require('./helpers/audio')

const BIN = path.join(__dirname, '..', 'bin', 'sip-native.js')

/**
 * Runs the CLI; resolves `{ code, signal, stdout, stderr, out, err }` (`out`/`err`: the non-empty
 * lines) when it exits; `.child` is the process. Killed after `timeoutMs` and when the test ends.
 */
function cli(t, args, { env = {}, timeoutMs = 30000 } = {}) {
  const child = track(
    spawn(process.execPath, [BIN, '--bind-address', '127.0.0.1', ...args], {
      detached: true,
      env: { ...process.env, SIP_NATIVE_PASSWORD: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const timer = setTimeout(() => terminate(child, 1000), timeoutMs)
  t.after(() => terminate(child, 1000))
  const done = exited(child).then(({ code, signal }) => {
    clearTimeout(timer)
    const lines = (s) => s.split('\n').filter((l) => l.trim())
    return { code, signal, stdout, stderr, out: lines(stdout), err: lines(stderr) }
  })
  done.child = child
  return done
}

const show = (r) => `exit ${r.code}${r.signal ? ' ' + r.signal : ''}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`

/** The status lines of stderr, parsed: [{ callId, state, codec, tx, rx, lost, ... }]. */
function statusLines(stderr) {
  return stderr
    .split('\n')
    .map((l) => l.match(/^\[(\S+)\] state=(\S+) codec=(\S+) t=([\d.]+)s tx=(\d+) rx=(\d+) lost=(\d+) loss=([\d.]+)% jitter=([\d.]+)ms$/))
    .filter(Boolean)
    .map((m) => ({ callId: m[1], state: m[2], codec: m[3], t: +m[4], tx: +m[5], rx: +m[6], lost: +m[7], loss: +m[8], jitter: +m[9] }))
}

test('usage: an unknown flag, a bad value or no command exit 2 with one line naming it', async (t) => {
  const unknown = await cli(t, ['call', 'sip:x@127.0.0.1', '--colour', 'red'])
  assert.equal(unknown.code, 2, show(unknown))
  assert.deepEqual(unknown.err, ['sip-native: unknown option --colour (see sip-native --help)'], show(unknown))
  assert.equal(unknown.stdout, '')
  const badPort = await cli(t, ['register', '--server', '127.0.0.1', '--port', '70000'])
  assert.equal(badPort.code, 2, show(badPort))
  assert.equal(badPort.err.length, 1, show(badPort))
  assert.match(badPort.err[0], /--port needs a port number 1-65535, got "70000"/)
  const wrongCommand = await cli(t, ['listen', '--duration', '2', '--hold'])
  assert.equal(wrongCommand.code, 2, show(wrongCommand))
  assert.match(wrongCommand.err[0], /--hold is not an option of listen/)
  // a value the library refuses is a usage error too, named by the library
  const badTransport = await cli(t, ['options', 'sip:127.0.0.1', '--transport', 'carrier-pigeon'])
  assert.equal(badTransport.code, 2, show(badTransport))
  assert.equal(badTransport.err.length, 1, show(badTransport))
  assert.equal(badTransport.err[0], 'sip-native: --transport needs one of udp, tcp, tls, ws, wss, got "carrier-pigeon" (see sip-native --help)')
  assert.doesNotMatch(badTransport.stderr, /\n\s+at /, 'no stack trace')
  const help = await cli(t, ['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /sip-native call <target>/)
  for (const flag of ['--server', '--transport', '--extension', '--password', '--rtp-port-min', '--stun', '--outbound-proxy', '--tls-ca', '--config']) {
    assert.ok(help.stdout.includes(flag), `--help lists ${flag}`)
  }
  const version = await cli(t, ['--version'])
  assert.equal(version.stdout.trim(), `sip-native ${require('../package.json').version}`)
})

test('register against sipp (digest, password from SIP_NATIVE_PASSWORD): exit 0, then unregisters', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 20000 })
  const r = await cli(t, ['register', '--server', '127.0.0.1', '--port', String(reg.port), '--extension', '7779'], {
    env: { SIP_NATIVE_PASSWORD: 'secret' },
  })
  assert.equal(r.code, 0, show(r))
  // sipp's registrar grants 3600 s whatever we ask
  assert.deepEqual(r.out, [`registered 7779 at 127.0.0.1:${reg.port} (200 OK, expires 3600 s)`], show(r))
  const s = await reg.done
  assert.equal(s.code, 0, 'sipp verified the digest REGISTER and the un-REGISTER: ' + describeSipp(s))
  assert.doesNotMatch(s.messages, /secret/)
  assert.doesNotMatch(r.stdout + r.stderr, /secret/, 'the password is not printed')
})

test('register with a wrong password: exit 1, one line with the 403', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 15000 })
  const r = await cli(t, ['register', '--server', '127.0.0.1', '--port', String(reg.port), '--extension', '7779', '--password', 'wrong'])
  assert.equal(r.code, 1, show(r))
  assert.deepEqual(r.err, [`sip-native: registration of 7779 at 127.0.0.1:${reg.port} failed: 403 Forbidden`], show(r))
  await reg.kill()
})

test('register --config with the service pbx_* rows (numbers as strings), and as one flat row', async (t) => {
  if (!requirePeer('sipp', t)) return
  const dir = tmpDir('cli-config')
  for (const shape of ['rows', 'flat']) {
    const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 20000 })
    const pbx = { pbx_server: '127.0.0.1', pbx_port: String(reg.port), pbx_transport: 'UDP', pbx_rtp_port_min: '10000', pbx_rtp_port_max: '12000' }
    const operator = { pbx_extension: '7779', pbx_username: '7779', pbx_password: 'secret', pbx_display_name: 'Оператор call-центра' }
    const file = path.join(dir, `${shape}.json`)
    fs.writeFileSync(file, JSON.stringify(shape === 'rows' ? { pbx, operators: [operator] } : { ...pbx, ...operator }))
    const r = await cli(t, ['register', '--config', file, '--json'])
    assert.equal(r.code, 0, `${shape}: ${show(r)}`)
    const result = JSON.parse(r.out[r.out.length - 1])
    assert.deepEqual(
      { type: result.type, ok: result.ok, account: result.account, code: result.code },
      { type: 'registration', ok: true, account: '7779', code: 200 },
      show(r),
    )
    const s = await reg.done
    assert.equal(s.code, 0, `${shape}: ` + describeSipp(s))
    assert.match(s.messages, /From: "Оператор call-центра"/, 'the display name of the row is used')
  }
  // a config file that is not JSON: one line, exit 2
  const bad = path.join(dir, 'bad.json')
  fs.writeFileSync(bad, '{ pbx_server: ')
  const r = await cli(t, ['register', '--config', bad])
  assert.equal(r.code, 2, show(r))
  assert.equal(r.err.length, 1, show(r))
  assert.match(r.err[0], /--config .*bad\.json: not JSON/)
})

test('register to a dead PBX: non-zero, one line naming the server and the cause (UDP and TCP)', async (t) => {
  const udp = await freePort()
  const r = await cli(t, ['register', '--server', '127.0.0.1', '--port', String(udp), '--extension', '7779', '--timeout', '10'])
  assert.equal(r.code, 1, show(r))
  assert.equal(r.err.length, 1, show(r))
  assert.match(r.err[0], new RegExp(`^sip-native: registration of 7779 at 127\\.0\\.0\\.1:${udp} failed: 503 .*unreachable`), show(r))
  const tcp = await freeTcpPort()
  const rt = await cli(t, ['register', '--server', '127.0.0.1', '--port', String(tcp), '--transport', 'tcp', '--extension', '7779'])
  assert.equal(rt.code, 1, show(rt))
  assert.equal(rt.err.length, 1, show(rt))
  assert.match(rt.err[0], new RegExp(`127\\.0\\.0\\.1:${tcp}.*refused`, 'i'), show(rt))
  assert.doesNotMatch(r.stderr + rt.stderr, /\n\s+at /, 'no stack trace')
})

test('call PJSIP with --tone --dtmf --record --stereo --duration 3: exit 0; it heard the tone and the digits, we recorded both', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const pj = await startPjsua2({ t, autoAnswer: true })
  const dir = tmpDir('cli-call')
  const ours = path.join(dir, 'we-heard.wav')
  const theirs = path.join(dir, 'pjsip-heard.wav')
  const run = cli(t, ['call', pj.uri, '--tone', '1000', '--tone-level', '-10', '--dtmf', '159#', '--record', ours, '--stereo', '--duration', '3'])
  await pj.established()
  await pj.record(theirs)
  await pj.playTone(440, 1500, -10)
  const r = await run
  await pj.stopRecord()
  assert.equal(r.code, 0, show(r) + '\n' + pj.describe())
  // the live line: one per second at least, with media figures
  const st = statusLines(r.stderr)
  const confirmed = st.filter((s) => s.state === 'confirmed')
  assert.ok(confirmed.length >= 3, `a status line per second over 3 s: ${show(r)}`)
  const last = confirmed[confirmed.length - 1]
  assert.equal(last.codec, 'PCMU', show(r))
  assert.ok(last.tx >= 100 && last.rx >= 100, `packets both ways: ${JSON.stringify(last)}`)
  assert.equal(r.out.length, 1, show(r))
  assert.match(r.out[0], /^\[\S+\] ok: answered, \d+\.\d s, PCMU, tx \d+ rx \d+ lost 0 .*sent DTMF 159#.*recorded .*we-heard\.wav.*hung up by us/, show(r))
  assert.equal(pj.dtmfDigits(), '159#', 'PJSIP received the digits')
  A.assertTone(A.toneCheck(theirs), { freq: 1000, levelDb: -10, minMs: 1000, what: "PJSIP's recording of --tone 1000" })
  // channel 1 the peer, channel 2 us
  A.assertTone(A.toneCheck(ours, { channel: 0 }), { freq: 440, levelDb: -10, minMs: 800, what: 'our --record (peer channel) of its 440 Hz' })
  A.assertTone(A.toneCheck(ours, { channel: 1 }), { freq: 1000, levelDb: -10, minMs: 1500, what: 'our --record (our channel) of --tone 1000' })
})

test('call --play a WAV: hangs up when it has played; the peer heard it', { timeout: 60000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const pj = await startPjsua2({ t, autoAnswer: true })
  const dir = tmpDir('cli-play')
  const wav = path.join(dir, 'greeting.wav')
  A.writeToneWav(wav, { freq: 700, ms: 2000, rate: 16000, levelDb: -12 })
  const theirs = path.join(dir, 'pjsip-heard.wav')
  const run = cli(t, ['call', pj.uri, '--play', wav])
  await pj.established()
  await pj.record(theirs)
  const r = await run
  await pj.stopRecord()
  assert.equal(r.code, 0, show(r))
  assert.match(r.out[0], /ok: answered, (1\.[89]|2\.\d) s, .*played .*greeting\.wav; hung up by us/, show(r))
  A.assertTone(A.toneCheck(theirs), { freq: 700, levelDb: -12, minMs: 1000, what: 'PJSIP heard the WAV' })
})

test('call not answered (sipp 486): exit 1 with the status', async (t) => {
  if (!requirePeer('sipp', t)) return
  const busy = await startSipp({ scenario: 'uas_busy', t })
  const r = await cli(t, ['call', `sip:1000@127.0.0.1:${busy.port}`, '--tone', '440', '--duration', '1'])
  assert.equal(r.code, 1, show(r))
  assert.deepEqual(r.out, [`[${r.out[0].split(']')[0].slice(1)}] FAILED: sip:1000@127.0.0.1:${busy.port} not answered: 486 Busy Here`], show(r))
  const s = await busy.done
  assert.equal(s.code, 0, describeSipp(s))
})

test('call hung up by the peer before --duration: exit 1, the summary says so', { timeout: 40000 }, async (t) => {
  if (!requirePeer('pjsua2', t)) return
  const pj = await startPjsua2({ t, autoAnswer: true })
  const run = cli(t, ['call', pj.uri, '--tone', '440', '--duration', '20'])
  await pj.established()
  await new Promise((r) => setTimeout(r, 1000))
  pj.cmd('hangup')
  const r = await run
  assert.equal(r.code, 1, show(r))
  assert.match(r.out[0], /FAILED: answered, .*hung up by peer; problems: the peer hung up after [\d.]+ s, before --duration 20$/, show(r))
})

test('listen --count 1 answers sipp uac_call, plays a tone: exit 0 once the call is handled', { timeout: 40000 }, async (t) => {
  if (!requirePeer('sipp', t)) return
  const port = await freePort()
  let listening
  const ready = new Promise((r) => (listening = r))
  const run = cli(t, ['listen', '--local-port', String(port), '--count', '1', '--tone', '440', '--timeout', '30'])
  // the "listening" note goes to stderr; wait for it
  let err = ''
  run.child.stderr.on('data', (d) => {
    err += d
    if (/listening on udp 127\.0\.0\.1:\d+/.test(err)) listening()
  })
  await ready
  assert.match(err, new RegExp(`listening on udp 127\\.0\\.0\\.1:${port} for 1 call`))
  const uac = await startSipp({ scenario: 'uac_call', remote: `127.0.0.1:${port}`, durationMs: 2000, t })
  const r = await run
  const s = await uac.done
  assert.equal(s.code, 0, describeSipp(s))
  assert.equal(r.code, 0, show(r))
  assert.match(r.out[0], /^\[\S+\] ok: answered, .*played 440 Hz; hung up by peer/, show(r))
  const st = statusLines(r.stderr).filter((x) => x.state === 'confirmed')
  assert.ok(st.length >= 1 && st[st.length - 1].tx >= 50, `the tone was sent: ${show(r)}`)
})

test('listen with nobody calling: --timeout ends it with exit 1 and one line', async (t) => {
  const r = await cli(t, ['listen', '--count', '2', '--timeout', '1'])
  assert.equal(r.code, 1, show(r))
  assert.deepEqual(r.err.slice(1), ['sip-native: listen: 0 of 2 call(s) handled: no more calls within 1 s'], show(r))
})

test('options against Kamailio over UDP and over the TCP connection: exit 0, status and round trip', { timeout: 60000 }, async (t) => {
  if (!requirePeer('kamailio', t)) return
  const kam = await startKamailio({ users: [], transports: ['tcp'], t })
  const r = await cli(t, ['options', `sip:127.0.0.1:${kam.port}`])
  assert.equal(r.code, 0, show(r))
  assert.match(r.out[0], new RegExp(`^200 OK from sip:127\\.0\\.0\\.1:${kam.port} in \\d+\\.\\d ms$`), show(r))
  // over TCP to the server (its TCP port is not its UDP one: only TCP can get an answer)
  assert.notEqual(kam.ports.tcp, kam.port)
  const rt = await cli(t, ['options', '--server', '127.0.0.1', '--port', String(kam.ports.tcp), '--transport', 'tcp', '--json'])
  assert.equal(rt.code, 0, show(rt))
  const j = JSON.parse(rt.out[0])
  assert.equal(j.code, 200, show(rt))
  assert.equal(j.ok, true)
  assert.ok(j.rttMs > 0 && j.rttMs < 2000, `rttMs ${j.rttMs}`)
})

test('options to a dead port: exit 1, one line; to a silent peer: the timeout, named', async (t) => {
  const port = await freePort()
  const r = await cli(t, ['options', `sip:127.0.0.1:${port}`])
  assert.equal(r.code, 1, show(r))
  assert.deepEqual(r.err, [`sip-native: transport error: OPTIONS sip:127.0.0.1:${port}: cannot reach 127.0.0.1:${port}: destination unreachable (ICMP)`], show(r))
  const dgram = require('node:dgram')
  const silent = dgram.createSocket('udp4')
  await new Promise((res) => silent.bind(0, '127.0.0.1', res))
  t.after(() => silent.close())
  const sp = silent.address().port
  const started = Date.now()
  const rs = await cli(t, ['options', `127.0.0.1:${sp}`, '--timeout', '1.5'])
  const took = Date.now() - started
  assert.equal(rs.code, 1, show(rs))
  assert.deepEqual(rs.err, [`sip-native: OPTIONS sip:127.0.0.1:${sp}: no response within 1500 ms`], show(rs))
  assert.ok(took < 8000, `bounded by --timeout: ${took} ms`)
  // a URI that is not one is a usage error
  const bad = await cli(t, ['options', 'sip:a b'])
  assert.equal(bad.code, 2, show(bad))
  assert.match(bad.err[0], /uri: not a SIP URI/)
})

test('options answered with a non-2xx: exit 1 (--any: exit 0), the status printed', async (t) => {
  if (!requirePeer('sipp', t)) return
  const uas = await startSipp({ scenario: 'uas_options_404', calls: 2, t })
  const r = await cli(t, ['options', `sip:127.0.0.1:${uas.port}`])
  assert.equal(r.code, 1, show(r))
  assert.match(r.out[0], /^404 Not Found from sip:127\.0\.0\.1:\d+ in \d+\.\d ms$/, show(r))
  const ra = await cli(t, ['options', `sip:127.0.0.1:${uas.port}`, '--any'])
  assert.equal(ra.code, 0, show(ra))
  const s = await uas.done
  assert.equal(s.code, 0, describeSipp(s))
})
