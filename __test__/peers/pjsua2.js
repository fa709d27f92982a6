// Driver for __test__/peers/pjsua2_peer.py: a PJSIP phone (pjsua2 wheel, null audio) as a child
// process, commanded by lines on its stdin, reporting JSON events on its stdout.
//
//   const pj = await startPjsua2({ t, autoAnswer: true })
//   await pj.cmd('call', `sip:7779@127.0.0.1:${port}`)
//   await pj.waitEvent('call_state', (e) => e.state === 'confirmed')
//
// Bounded: the peer exits by itself after maxSeconds, is SIGKILLed a little later if it has not,
// and is stopped when the test ends (pass `t`).
'use strict'

const { spawn } = require('node:child_process')
const path = require('node:path')
const { HOST, freePort, freeTcpPort, track, exited, terminate, killGroup, hasExited, waitUdpBound } = require('../helpers/process')

const SCRIPT = path.join(__dirname, 'pjsua2_peer.py')

/**
 * @param {object} [o]
 * @param {object} [o.t]            node:test context: stop the peer when the test ends
 * @param {number} [o.port]         SIP port, default a free one
 * @param {string} [o.user]         user part of its URI (default 'pjsua')
 * @param {boolean} [o.autoAnswer]  answer incoming calls with 200 at once (otherwise 180, then `answer`)
 * @param {boolean} [o.multi]       several calls at once (transfers); commands act on the current call
 *                                  (`select <id>` changes it; events carry the pjsua call `id`)
 * @param {number} [o.maxSeconds]   lifetime bound, default 60
 * @param {string} [o.codecs]       enabled codecs in order, default 'PCMU/8000,PCMA/8000'
 * @param {number} [o.logLevel]     pjsua log level to stderr (kept in .log()), default 3
 * @param {'udp'|'tcp'|'tls'} [o.transport] SIP transport of its listener and requests, default 'udp'
 * @param {string} [o.host]         SIP address to bind and advertise: '127.0.0.1' (default) or '::1'
 *                                  (RTP stays on 127.0.0.1: this pjsua2 wheel has no IPv6 media)
 * @param {{caFile?:string,certFile?:string,keyFile?:string,verifyServer?:boolean}} [o.tls]
 *        TLS: the CA to verify servers with (and `verifyServer` to refuse one that fails), its own
 *        certificate and key (needed to accept TLS calls)
 * @param {{registrar:string,username?:string,password?:string,domain?:string}} [o.register]
 *        registers at `registrar` (e.g. kam.uris.tls) as `user`@domain (default 127.0.0.1);
 *        then `registered()` and `reg_state` events
 * @param {'off'|'optional'|'mandatory'} [o.srtp] SDES SRTP (srtpUse; srtpSecureSignaling 0: keys over UDP)
 * @param {string[]} [o.srtpCryptos] the SRTP suites it offers/accepts, in order (default: PJSIP's list)
 * @param {string} [o.netns]        network namespace to run in (`ip netns exec`); `o.port` is then required
 */
async function startPjsua2(o = {}) {
  const port = o.port || (o.transport && o.transport !== 'udp' ? await freeTcpPort() : await freePort())
  const maxSeconds = o.maxSeconds || 60
  const args = [SCRIPT, '--port', String(port), '--max-seconds', String(maxSeconds), '--log-level', String(o.logLevel ?? 3)]
  if (o.user) args.push('--user', o.user)
  if (o.autoAnswer) args.push('--auto-answer')
  if (o.multi) args.push('--multi')
  if (o.codecs) args.push('--codecs', o.codecs)
  const transport = o.transport || 'udp'
  const host = o.host || HOST
  args.push('--transport', transport, '--host', host)
  const tls = o.tls || {}
  if (tls.caFile) args.push('--ca-file', tls.caFile)
  if (tls.certFile) args.push('--cert-file', tls.certFile)
  if (tls.keyFile) args.push('--key-file', tls.keyFile)
  if (tls.verifyServer) args.push('--verify-server')
  if (o.register) {
    args.push('--registrar', o.register.registrar)
    if (o.register.username) args.push('--username', o.register.username)
    if (o.register.password) args.push('--password', o.register.password)
    if (o.register.domain) args.push('--domain', o.register.domain)
  }
  if (o.srtp) args.push('--srtp', o.srtp)
  if (o.srtpCryptos) args.push('--srtp-cryptos', o.srtpCryptos.join(','))
  const argv = o.netns ? ['ip', ['netns', 'exec', o.netns, 'python3', '-u', ...args]] : ['python3', ['-u', ...args]]
  const child = track(spawn(argv[0], argv[1], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] }))
  const events = []
  const waiters = new Set()
  let log = ''
  let buf = ''
  child.stdin.on('error', () => {})
  child.stderr.setEncoding('utf8').on('data', (d) => (log = (log + d).slice(-200000)))
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim()
      buf = buf.slice(i + 1)
      if (!line) continue
      let e
      try {
        e = JSON.parse(line)
      } catch {
        log += `\n[stdout] ${line}`
        continue
      }
      e.at = Date.now()
      events.push(e)
      for (const w of [...waiters]) w(e)
    }
  })
  const hardKill = setTimeout(() => killGroup(child, 'SIGKILL'), maxSeconds * 1000 + 5000)
  hardKill.unref()
  child.on('exit', () => {
    clearTimeout(hardKill)
    for (const w of [...waiters]) w(null)
  })

  const describe = () =>
    `pjsua2 peer :${port} (exit ${child.exitCode ?? '-'}${child.signalCode ? ' ' + child.signalCode : ''}); events:\n` +
    events.map((e) => JSON.stringify(e)).join('\n') +
    `\n--- pjsua log (tail):\n${log.slice(-4000)}`

  /** Resolves with the first event named `name` matching `pred` after index `from` (default: any). */
  function waitEvent(name, pred = () => true, timeoutMs = 10000, from = 0) {
    const seen = events.slice(from).find((e) => e.event === name && pred(e))
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for pjsua2 '${name}'; ${describe()}`))
      }, timeoutMs)
      const w = (e) => {
        if (e === null) {
          clearTimeout(timer)
          waiters.delete(w)
          reject(new Error(`pjsua2 peer exited while waiting for '${name}'; ${describe()}`))
          return
        }
        if (e.event === name && pred(e)) {
          clearTimeout(timer)
          waiters.delete(w)
          resolve(e)
        }
      }
      waiters.add(w)
    })
  }

  /** Sends a command line; resolves at once (follow its events). */
  function cmd(name, ...a) {
    if (hasExited(child)) throw new Error(`pjsua2 peer has exited; ${describe()}`)
    child.stdin.write([name, ...a].join(' ') + '\n')
  }

  /** Calls `uri`; resolves at once (then `established()`). */
  const dial = (uri) => cmd('call', uri)

  /** Resolves once its registration is active (a 200 to its REGISTER); rejects on a failure code. */
  async function registered(timeoutMs = 10000) {
    const e = await waitEvent('reg_state', () => true, timeoutMs)
    if (e.code !== 200 || !e.active) throw new Error(`pjsua2 registration failed: ${e.code} ${e.reason}; ${describe()}`)
    return e
  }

  /** Resolves once its call is confirmed and its audio media active. */
  async function established() {
    await waitEvent('call_state', (e) => e.state === 'confirmed')
    await waitEvent('media_active')
  }

  let toneFrom = 0 // events index of the last play_tone

  /**
   * Plays a sine on the call with pjsua2's ToneGenerator. `levelDb` (dBFS, sine convention) sets
   * the generator's amplitude (32768 * 10^(levelDb/20)); omitted, pjmedia's default amplitude 12288
   * (-8.5 dBFS) is used. Resolves once the peer reports it started (then `toneDone()`).
   */
  async function playTone(freq, ms, levelDb) {
    const from = events.length
    toneFrom = from
    const amp = levelDb === undefined ? 0 : Math.max(1, Math.min(32767, Math.round(32768 * Math.pow(10, levelDb / 20))))
    cmd('play_tone', freq, ms, amp)
    const e = await Promise.race([
      waitEvent('playing', () => true, 5000, from),
      waitEvent('error', (x) => /^play_tone:/.test(x.message), 5000, from),
    ])
    if (e.event === 'error') throw new Error(`pjsua2 ${e.message}`)
    return e
  }

  /** Resolves once the tone of the last `playTone` has played to its end. */
  const toneDone = (timeoutMs = 10000) => waitEvent('tone_done', () => true, timeoutMs, toneFrom)

  /** Starts recording what the call receives to `file` (8 kHz mono WAV); resolves once started. */
  async function record(file) {
    const from = events.length
    cmd('record', file)
    const e = await Promise.race([
      waitEvent('recording', () => true, 10000, from),
      waitEvent('error', (x) => /^record:/.test(x.message), 10000, from),
    ])
    if (e.event === 'error') throw new Error(`pjsua2 ${e.message}`)
    return e
  }

  /** Sends `stop_record` and resolves once the WAV is closed. */
  async function stopRecord(timeoutMs = 5000) {
    const from = events.length
    cmd('stop_record')
    await waitEvent('record_stopped', () => true, timeoutMs, from)
  }

  /** Asks for the stream statistics; resolves to { tx_pkt, rx_pkt, rx_loss, codec, dir, ... }. */
  async function stats(timeoutMs = 5000) {
    const from = events.length
    cmd('stats')
    return Promise.race([
      waitEvent('stats', () => true, timeoutMs, from),
      waitEvent('error', (e) => /^stats:/.test(e.message), timeoutMs, from).then((e) => {
        throw new Error(e.message)
      }),
    ])
  }

  /** The digits received so far (RFC 2833 / INFO), in order. */
  const dtmfDigits = () =>
    events
      .filter((e) => e.event === 'dtmf')
      .map((e) => e.digit)
      .join('')

  async function stop() {
    clearTimeout(hardKill)
    if (!hasExited(child)) {
      try {
        child.stdin.end('quit\n')
      } catch {}
      const t = setTimeout(() => terminate(child, 1000), 3000)
      await exited(child)
      clearTimeout(t)
    }
  }
  if (o.t && typeof o.t.after === 'function') o.t.after(stop)

  try {
    await Promise.race([
      waitEvent('ready', () => true, 15000),
      exited(child).then((r) => {
        throw new Error(`pjsua2 peer exited at start (code ${r.code}): ${log.slice(-3000)}`)
      }),
    ])
    // /proc/net/udp shows this namespace's sockets only
    if (transport === 'udp' && !o.netns) await waitUdpBound(port, child)
  } catch (e) {
    await terminate(child, 500)
    throw e
  }
  return {
    port,
    host,
    transport,
    uri: `sip:${o.user || 'pjsua'}@${host.includes(':') ? `[${host}]` : host}:${port}${transport === 'udp' ? '' : `;transport=${transport}`}`,
    child,
    events,
    cmd,
    waitEvent,
    dial,
    established,
    registered,
    playTone,
    toneDone,
    record,
    stopRecord,
    stats,
    dtmfDigits,
    stop,
    describe,
    log: () => log,
  }
}

module.exports = { startPjsua2, SCRIPT }
