// IPv6 on loopback (::1), and the dual-stack '::' bind, against real peers: sipp as registrar,
// caller and callee, baresip with audio checked by tone both ways. What is checked:
// the bracket form of IPv6 literals in Request-URI, Via, Contact, From and To; `c=IN IP6` and
// `o=... IN IP6` in offers and answers both ways; responses to a request whose Via sent-by is not
// its source go to the source (rsipstack writes `received=[[::1]]`, which its own parser ignores:
// the engine repairs it, so the peer sees `received=::1`); a registrar's `received=[::1]` parses.
//
// Each case takes the transport as a parameter (`TRANSPORTS`): UDP today; TCP/TLS/WS join once
// their listeners exist, with the matching sipp `-t` and peer transport.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { SipService } = require('..')
const { requirePeer, tmpDir } = require('./helpers/process')
const { record, waitFor, startService } = require('./helpers/sip')
const { sleep } = require('./helpers/wait')
const { startSipp, describeSipp } = require('./peers/sipp')
const { startBaresip, AUSINE_DBFS } = require('./peers/baresip')
const { startKamailio } = require('./peers/kamailio')
const { makeCerts, removeCerts } = require('./helpers/certs')
const A = require('./helpers/audio')

const V6 = '::1'
const TRANSPORTS = ['udp']
const SIPP_TRANSPORT = { udp: 'u1', tcp: 't1' }
const ACCOUNT = { extension: '7779' }

/** The SIP messages of a sipp message log, each { dir: 'sent'|'received', text }. */
function sippMessages(log) {
  return log
    .split(/^-{10,}.*$/m)
    .map((chunk) => {
      const m = /^\s*\S+ message (sent|received)[^:]*:\s*\n([\s\S]*)$/m.exec(chunk)
      return m && { dir: m[1], text: m[2].trim() }
    })
    .filter(Boolean)
}

/** The value of the first header `name` of a message (compact forms aside), or undefined. */
function header(text, name) {
  const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'mi').exec(text)
  return m ? m[1].trim() : undefined
}

/** The messages sipp received whose start line matches `re`. */
const receivedBySipp = (r, re) => sippMessages(r.messages).filter((m) => m.dir === 'received' && re.test(m.text.split('\n')[0]))

/** Asserts the bracket form of our address in one request sipp received from us. */
function assertBracketed(msg, { port, transport, user = ACCOUNT.extension, what }) {
  const ctx = `${what}:\n${msg.text}`
  const ours = `[::1]:${port}`
  assert.match(header(msg.text, 'Via'), new RegExp(`^SIP/2\\.0/${transport} \\[::1\\]:${port};`, 'i'), `Via sent-by ${ours}; ${ctx}`)
  assert.match(header(msg.text, 'Contact'), new RegExp(`<sip:${user}@\\[::1\\]:${port}[;>]`), `Contact ${ours}; ${ctx}`)
  assert.match(header(msg.text, 'From'), new RegExp(`<sip:${user}@\\[::1\\](:\\d+)?>`), `From bracketed; ${ctx}`)
  assert.doesNotMatch(msg.text, /@::1[>;:\s]/, `no unbracketed IPv6 host in a URI; ${ctx}`)
}

for (const transport of TRANSPORTS) {
  const sippT = ['-t', SIPP_TRANSPORT[transport]]

  for (const form of ['::1', '[::1]']) {
    test(`${transport}: registering to an IPv6 registrar given as ${form} (a pbx_server row): brackets in REGISTER, its received=[::1] taken`, { timeout: 30000 }, async (t) => {
      if (!requirePeer('sipp', t)) return
      const reg = await startSipp({ scenario: 'registrar_received', host: V6, args: sippT, keys: { received: '[::1]' }, t })
      const sip = SipService.fromSettings(
        { pbx_server: form, pbx_port: String(reg.port), pbx_transport: transport.toUpperCase() },
        [{ pbx_extension: ACCOUNT.extension, pbx_password: '' }],
        { bindAddress: V6, localPort: 0, transport },
      )
      const events = record(sip)
      await sip.start()
      t.after(() => (sip.isRunning ? sip.stop() : undefined))
      const { address, port } = sip.localAddress()
      assert.equal(address, V6)
      const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed', 10000)
      assert.equal(ok.state, 'registered', `registration: ${JSON.stringify(events)}`)
      await sip.stop()
      const r = await reg.done
      assert.equal(r.code, 0, describeSipp(r))
      const registers = receivedBySipp(r, /^REGISTER /)
      assert.equal(registers.length, 2, `REGISTER and un-REGISTER: ${describeSipp(r)}`)
      for (const m of registers) {
        assert.equal(m.text.split('\n')[0].trim(), `REGISTER sip:[::1]:${reg.port} SIP/2.0`, `Request-URI:\n${m.text}`)
        assertBracketed(m, { port, transport, what: 'REGISTER' })
        assert.match(header(m.text, 'To'), /<sip:7779@\[::1\]>/, `To bracketed:\n${m.text}`)
      }
      const sent = sippMessages(r.messages).filter((m) => m.dir === 'sent')
      assert.ok(sent.every((m) => /received=\[::1\];rport=\d+/.test(header(m.text, 'Via'))), `the registrar's 200s carry received=[::1]: ${describeSipp(r)}`)
    })
  }

  test(`${transport}: sipp calls us over IPv6 with a Via sent-by that is not its address: the responses reach it (received=::1, not [[::1]])`, { timeout: 30000 }, async (t) => {
    if (!requirePeer('sipp', t)) return
    const { sip, events, port } = await startService(t, { bindAddress: V6, transport, accounts: [ACCOUNT] })
    sip.on('incoming_call', (e) => sip.answer(e.callId).catch(() => {}))
    // 2001:db8::/32 is the documentation prefix: nothing answers there, so a response sent to
    // the sent-by instead of the source never comes back and sipp's call fails
    const uac = await startSipp({
      scenario: 'uac_call_via',
      host: V6,
      remote: `[::1]:${port}`,
      args: sippT,
      keys: { via: '[2001:db8::9]:5999' },
      recvTimeoutMs: 5000,
      timeoutMs: 20000,
      t,
    })
    const r = await uac.done
    assert.equal(r.code, 0, `the call completed, every response at the source address: ${describeSipp(r)}`)
    const responses = sippMessages(r.messages).filter((m) => m.dir === 'received' && /^SIP\/2\.0 /.test(m.text))
    const ok = responses.find((m) => /^SIP\/2\.0 200 /.test(m.text) && / INVITE/.test(header(m.text, 'CSeq')))
    assert.ok(ok, `a 200 to the INVITE: ${describeSipp(r)}`)
    assert.match(ok.text, /^o=\S+ \d+ \d+ IN IP6 ::1$/m, `our answer's o= says IN IP6:\n${ok.text}`)
    assert.match(ok.text, /^c=IN IP6 ::1$/m, `our answer's c= says IN IP6:\n${ok.text}`)
    assert.match(header(ok.text, 'Contact'), new RegExp(`<sip:7779@\\[::1\\]:${port}>`), `our Contact:\n${ok.text}`)
    for (const m of responses) {
      const via = header(m.text, 'Via')
      assert.match(via, new RegExp(`^SIP/2\\.0/${transport} \\[2001:db8::9\\]:5999;.*received=::1(;|$)`, 'i'), `our response echoes the Via with received=::1:\n${m.text}`)
      assert.match(via, new RegExp(`rport=${uac.port}`), `and rport=${uac.port}:\n${m.text}`)
      assert.doesNotMatch(via, /\[\[/, `no double brackets:\n${m.text}`)
    }
    await waitFor(sip, events, 'call_state', (e) => e.state === 'disconnected', 5000)
  })

  test(`${transport}: we call sipp over IPv6: Request-URI, Via, Contact and From in the bracket form, the offer says IN IP6`, { timeout: 30000 }, async (t) => {
    if (!requirePeer('sipp', t)) return
    const uas = await startSipp({ scenario: 'uas_answer', host: V6, args: sippT, t })
    const { sip, events, port } = await startService(t, { bindAddress: V6, transport, accounts: [ACCOUNT] })
    const { id } = await sip.makeCall(ACCOUNT.extension, `sip:1000@[::1]:${uas.port}`)
    await waitFor(sip, events, 'call_state', (e) => e.callId === id && e.state === 'confirmed', 10000)
    await sip.hangup(id)
    const r = await uas.done
    assert.equal(r.code, 0, describeSipp(r))
    const [invite] = receivedBySipp(r, /^INVITE /)
    assert.ok(invite, describeSipp(r))
    assert.equal(invite.text.split('\n')[0].trim(), `INVITE sip:1000@[::1]:${uas.port} SIP/2.0`)
    assertBracketed(invite, { port, transport, what: 'INVITE' })
    assert.match(invite.text, /^o=\S+ \d+ \d+ IN IP6 ::1$/m, `o= IN IP6:\n${invite.text}`)
    assert.match(invite.text, /^c=IN IP6 ::1$/m, `c=IN IP6:\n${invite.text}`)
    const [bye] = receivedBySipp(r, /^BYE /)
    assert.ok(bye, describeSipp(r))
    assert.match(bye.text.split('\n')[0], new RegExp(`^BYE sip:\\[::1\\]:\\d+;transport=${transport} SIP/2\\.0`, 'i'), `BYE to sipp's Contact:\n${bye.text}`)
  })

  test(`${transport}: bound to '::' (dual stack), an IPv4 registrar gets an IPv4 Contact and an IPv4 caller's call completes`, { timeout: 30000 }, async (t) => {
    if (!requirePeer('sipp', t)) return
    const reg = await startSipp({ scenario: 'registrar_received', args: sippT, keys: { received: '127.0.0.1' }, t })
    const sip = new SipService({ bindAddress: '::', localPort: 0, server: '127.0.0.1', serverPort: reg.port, transport, accounts: [ACCOUNT] })
    const events = record(sip)
    await sip.start()
    t.after(() => (sip.isRunning ? sip.stop() : undefined))
    sip.on('incoming_call', (e) => sip.answer(e.callId).catch(() => {}))
    const { address, port } = sip.localAddress()
    assert.equal(address, '::')
    const ok = await waitFor(sip, events, 'registration', (e) => e.state === 'registered' || e.state === 'failed', 10000)
    assert.equal(ok.state, 'registered', JSON.stringify(events))

    const uac = await startSipp({ scenario: 'uac_call', remote: `127.0.0.1:${port}`, args: sippT, t })
    const call = await uac.done
    assert.equal(call.code, 0, `an IPv4 caller reaches the '::' socket and gets its responses: ${describeSipp(call)}`)
    await sip.stop()
    const r = await reg.done
    assert.equal(r.code, 0, describeSipp(r))
    const [register] = receivedBySipp(r, /^REGISTER /)
    assert.match(header(register.text, 'Contact'), new RegExp(`<sip:7779@127\\.0\\.0\\.1:${port}>`), `IPv4 Contact (not [::ffff:127.0.0.1] or [::1]):\n${register.text}`)
    assert.match(header(register.text, 'Via'), new RegExp(`^SIP/2\\.0/${transport} 127\\.0\\.0\\.1:${port};`, 'i'), `IPv4 Via:\n${register.text}`)
  })
}

for (const transport of ['udp', 'tcp', 'tls']) {
test(`Kamailio on [::1] over ${transport}: two accounts register over IPv6 (digest) and call each other through it, BYE along the Record-Route`, { timeout: 40000 }, async (t) => {
  if (!requirePeer('kamailio', t)) return
  if (transport === 'tls' && (!requirePeer('kamailio-tls', t) || !requirePeer('openssl', t))) return
  const users = [
    { username: '1001', password: 'pw-1001' },
    { username: '1002', password: 'pw-1002' },
  ]
  const certs = transport === 'tls' ? makeCerts() : null
  if (certs) t.after(() => removeCerts(certs))
  const kam = await startKamailio({ users, host: V6, transports: [transport], certs: certs && certs.server, t })
  const cfg = {
    bindAddress: V6,
    server: kam.host,
    serverPort: kam.ports[transport],
    transport,
    registerExpires: 120,
    // the certificate names 127.0.0.1, ::1 and localhost: checked against the IP dialled
    ...(certs ? { tls: { caFile: certs.ca.cert } } : {}),
  }
  const a = await startService(t, { ...cfg, accounts: [{ extension: '1001', password: users[0].password }] })
  const b = await startService(t, { ...cfg, accounts: [{ extension: '1002', password: users[1].password }] })
  try {
    for (const s of [a, b]) {
      const r = await waitFor(s.sip, s.events, 'registration', (e) => e.state === 'registered' || e.state === 'failed', 10000)
      assert.equal(r.state, 'registered', JSON.stringify(s.events))
    }
    const incoming = new Promise((resolve) => b.sip.once('incoming_call', resolve))
    const call = await a.sip.makeCall('1001', '1002')
    const inc = await incoming
    assert.equal(inc.fromUser, '1001')
    await b.sip.answer(inc.callId)
    await waitFor(a.sip, a.events, 'call_state', (e) => e.callId === call.id && e.state === 'confirmed', 10000)
    await waitFor(b.sip, b.events, 'call_state', (e) => e.callId === inc.callId && e.state === 'confirmed', 10000)
    await sleep(500)
    const st = a.sip.callStats(call.id)
    assert.match(st.remoteAddress, new RegExp(`^\\[::1\\]:${b.sip.callStats(inc.callId).localPort}$`), `A sends RTP to B's IPv6 socket: ${JSON.stringify(st)}`)
    assert.ok(st.packetsReceived > 10 && b.sip.callStats(inc.callId).packetsReceived > 10, 'RTP both ways over IPv6')
    await a.sip.hangup(call.id)
    await waitFor(b.sip, b.events, 'call_state', (e) => e.callId === inc.callId && e.state === 'disconnected', 10000)
  } catch (err) {
    err.message += '\n--- kamailio log (tail):\n' + kam.log().split('\n').filter((l) => !/epoll_wait/.test(l)).slice(-60).join('\n')
    throw err
  }
})
}

// PJSIP cannot be the IPv6 media peer: the pjsua2 wheel is built without PJ_HAS_IPV6
// (pjsua_acc_add asserts on any ipv6Use, and an IN IP6 offer gets 500), so baresip is.
for (const direction of ['outgoing', 'incoming']) {
  const label = direction === 'outgoing' ? 'we call baresip' : 'baresip calls us'
  test(`IPv6 (::1): ${label}: RTP on IPv6 both ways, our 1000 Hz reaches baresip, its 440 Hz reaches us`, { timeout: 60000 }, async (t) => {
    if (!requirePeer('baresip', t)) return
    const dir = tmpDir('ipv6-baresip')
    const { sip, events, port } = await startService(t, { bindAddress: V6, accounts: [ACCOUNT] })
    const bs = await startBaresip({ t, host: V6, toneHz: 440, maxSeconds: 50 })
    let callId
    if (direction === 'outgoing') {
      callId = (await sip.makeCall(ACCOUNT.extension, bs.uri)).id
    } else {
      const incoming = new Promise((resolve) => sip.once('incoming_call', resolve))
      await bs.command('dial', `sip:${ACCOUNT.extension}@[::1]:${port}`)
      callId = (await incoming).callId
      await sip.answer(callId)
    }
    await waitFor(sip, events, 'call_state', (e) => e.callId === callId && e.state === 'confirmed', 10000)
    await bs.waitEvent('CALL_ESTABLISHED')

    // baresip -> us: its ausine runs all the time
    const ourRec = path.join(dir, 'we-heard.wav')
    await sip.record(callId, ourRec)
    await sleep(2000)
    await sip.stopRecording(callId)
    A.assertTone(A.toneCheck(ourRec), { freq: 440, levelDb: AUSINE_DBFS, what: `our recording of baresip's 440 Hz over IPv6` })
    const st = sip.callStats(callId)
    // where we send RTP: the peer's c=IN IP6 address (and the source its packets come from)
    assert.match(st.remoteAddress, /^\[::1\]:\d+$/, `RTP to baresip's IPv6 address: ${JSON.stringify(st)}`)
    assert.ok(st.packetsReceived > 50 && st.packetsSent > 50, `RTP both ways: ${JSON.stringify(st)}`)

    // us -> baresip: its sndfile records the whole call; the tone is its loudest part
    await sip.playTone(callId, { frequency: 1000, durationMs: 2000, level: -10 })
    await sleep(A.PLAYOUT_MS)
    await sip.hangup(callId)
    await bs.waitEvent('CALL_CLOSED')
    await bs.recordingsClosed()
    const wav = bs.receivedWav()
    assert.ok(wav, `baresip recorded what it received: ${JSON.stringify(bs.recordings())}`)
    A.assertTone(A.toneCheck(wav), { freq: 1000, levelDb: -10, what: `baresip's recording of our 1000 Hz over IPv6` })
  })
}
