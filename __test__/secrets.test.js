// The secrets check itself (scripts/check-secrets.js, run by scripts/test.js over the whole
// suite's capture): it finds the tests' passwords, and it catches a planted password and a
// digest response, so that its "0 hits" means something. And the capture preload records a
// real service's trace-level log (SIP messages too) and its events.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { tmpDir } = require('./helpers/process')
const { testPasswords, scan } = require('../scripts/check-secrets')

const TESTS = __dirname

test('the check collects the tests\' passwords', () => {
  const { passwords } = testPasswords(TESTS)
  for (const p of ['pw-1001', 'secret', 'redirect-secret']) assert.ok(passwords.includes(p), `${p} in ${passwords}`)
})

test('a planted password, digest response and SDES key are caught, with file and line', () => {
  const dir = tmpDir('secrets')
  fs.writeFileSync(
    path.join(dir, 'capture-1.log'),
    [
      'log {"message":"REGISTER sip:127.0.0.1 SIP/2.0","fields":{}}',
      'log {"message":"Authorization: Digest username=\\"1001\\", response=\\"<masked>\\""}',
      'event registration [{"password":"pw-1001"}]',
      'log {"message":"Authorization: Digest username=\\"1001\\", response=\\"6629fae49393a05397450978507c4ef1\\""}',
      'log {"message":"pw-10010 is another token, not the password"}',
      'log {"sipMessage":"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:***"}',
      'log {"sipMessage":"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"}',
    ].join('\n'),
  )
  const r = scan(dir, testPasswords(TESTS).passwords)
  assert.equal(r.lines, 7)
  assert.deepEqual(
    r.hits.map((h) => [h.file, h.line, h.what]),
    [
      ['capture-1.log', 3, 'password "pw-1001"'],
      ['capture-1.log', 4, 'digest response'],
      ['capture-1.log', 7, 'SDES key'],
    ],
  )
})

test('the preload captures a service at trace level and its events; the CLI check fails on a hit', async () => {
  const dir = tmpDir('capture')
  const script = `
    const { SipService } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const sip = new SipService({ bindAddress: '127.0.0.1', localPort: 0, server: '127.0.0.1', serverPort: 9,
      accounts: [{ extension: '1001', password: 'pw-1001' }] })
    sip.on('registration', () => {})
    sip.start().then(() => new Promise((r) => setTimeout(r, 300))).then(() => sip.stop())`
  const r = spawnSync(process.execPath, ['--require', path.join(__dirname, 'helpers', 'capture-secrets.js'), '-e', script], {
    env: { ...process.env, SIP_NATIVE_CAPTURE_DIR: dir },
    encoding: 'utf8',
    timeout: 20000,
  })
  assert.equal(r.status, 0, r.stderr)
  const files = fs.readdirSync(dir)
  assert.equal(files.length, 1)
  const text = fs.readFileSync(path.join(dir, files[0]), 'utf8')
  assert.match(text, /^log .*"level":"(trace|debug)"/m, 'trace-level records captured')
  assert.match(text, /^log .*sip_native::trace.*REGISTER sip:/m, 'SIP messages captured')
  assert.match(text, /^event registration /m, 'events captured')
  const check = path.join(__dirname, '..', 'scripts', 'check-secrets.js')
  const clean = spawnSync(process.execPath, [check, dir], { encoding: 'utf8' })
  console.log(clean.stdout.trim())
  assert.equal(clean.status, 0, clean.stdout + clean.stderr)
  fs.appendFileSync(path.join(dir, files[0]), 'log {"message":"planted: pw-1001"}\n')
  const dirty = spawnSync(process.execPath, [check, dir], { encoding: 'utf8' })
  assert.equal(dirty.status, 1)
  assert.match(dirty.stderr, new RegExp(`${files[0]}:\\d+: password "pw-1001"`))
})
