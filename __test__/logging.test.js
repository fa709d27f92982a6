// Secrets never reach a log: a child process registers with digest auth at logLevel 'debug' with
// sipTrace (every SIP message to stderr) and its stderr must carry the REGISTER with its
// Authorization header, masked: neither the password nor the digest response. Without logLevel,
// sipTrace or logger the engine writes nothing at all.
// Logging is process-global and can be initialised only once, hence the child process.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { requirePeer } = require('./helpers/process')
const { startSipp, describeSipp } = require('./peers/sipp')

const FIXTURE = path.join(__dirname, 'fixtures', 'log-register.js')

/** Runs `node <script> ...args`; resolves to { code, signal, stdout, stderr }, killed after `timeoutMs`. */
function runNode(t, script, args, timeoutMs) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  t.after(() => {
    clearTimeout(timer)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, timedOut, stdout, stderr })
    })
  })
}

test('logLevel debug: REGISTER with Authorization is logged, password and digest response are not', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 20000 })
  const r = await runNode(t, FIXTURE, [String(reg.port)], 20000)
  const tail = (s) => (s.length > 4000 ? '...' + s.slice(-4000) : s)
  const info = `child exit ${r.code}${r.signal ? ' ' + r.signal : ''}${r.timedOut ? ' (timed out)' : ''}\n--- stdout:\n${r.stdout}\n--- stderr:\n${tail(r.stderr)}`
  assert.equal(r.code, 0, info)
  assert.match(r.stdout, /REGISTRATION registered 200/, info)

  const sipp = await reg.done
  assert.equal(sipp.code, 0, 'registrar verified the digest: ' + describeSipp(sipp))
  // the digest response the engine really sent (sipp's message trace), to look for it in the log
  const sent = [...sipp.messages.matchAll(/response="?([0-9a-fA-F]{32})"?/g)].map((m) => m[1].toLowerCase())
  assert.ok(sent.length > 0, 'sipp saw a digest response: ' + describeSipp(sipp))

  const log = r.stderr
  assert.ok(log.length > 0, 'the engine logged something to stderr')
  assert.match(log, /REGISTER/, 'the REGISTER was logged')
  assert.match(log, /DEBUG sip_native::trace: sent REGISTER sip:/, 'as a SIP trace line')
  assert.match(log, /INFO sipua::account::registration: registration registered/, 'the engine says it registered')
  assert.match(log, /Authorization/i, 'the Authorization header was logged (masked)')
  assert.doesNotMatch(log, /secret/i, 'the password is not in the log')
  assert.doesNotMatch(log, /response\s*=\s*\\?"?[0-9a-fA-F]{32}/i, 'no digest response in the log (raw or Debug-escaped)')
  const lower = log.toLowerCase()
  for (const resp of sent) assert.ok(!lower.includes(resp), `digest response ${resp} is not in the log`)
})

test('no logLevel, no sipTrace, no logger: the engine writes nothing', async (t) => {
  if (!requirePeer('sipp', t)) return
  const reg = await startSipp({ scenario: 'registrar_auth', t, timeoutMs: 20000 })
  const r = await runNode(t, FIXTURE, [String(reg.port), 'off'], 20000)
  assert.equal(r.code, 0, `child exit ${r.code}\n${r.stdout}\n${r.stderr}`)
  assert.match(r.stdout, /REGISTRATION registered 200/)
  assert.equal(r.stderr, '', 'stderr is empty')
  await reg.done
})
