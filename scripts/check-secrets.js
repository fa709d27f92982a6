// The secrets check of the suite: greps the capture files the preload
// (__test__/helpers/capture-secrets.js) wrote, every engine record at trace level and every
// event payload, for each password the tests use, any digest response value and any SDES key.
//
//   node scripts/check-secrets.js <capture-dir>   exit 1 and file:line of each hit
'use strict'

const fs = require('node:fs')
const path = require('node:path')

/** Shorter passwords ('x', 'pw') are not searchable: they occur in any text. */
const MIN_LENGTH = 4
/** A digest `response` parameter with its value (RFC 2617/7616: 32 to 64 hex digits), quoted, or quoted inside JSON. */
const DIGEST_RESPONSE = /response\s*=\s*(\\?")?[0-9a-f]{32,64}/i
/** An SDES key (RFC 4568 `inline:` and the base64 of 30 bytes of key and salt, or more). */
const SDES_KEY = /inline:[A-Za-z0-9+/]{38,}/i

/** The passwords written in the tests' files (`password: '...'`, `PASSWORD: '...'`). */
function testPasswords(testDir) {
  const found = new Set()
  const short = new Set()
  const re = /password['"]?\s*[:=]\s*['"]([^'"\n]+)['"]/gi
  for (const f of fs.readdirSync(testDir, { recursive: true })) {
    if (!/\.(js|py|xml)$/.test(f)) continue
    const text = fs.readFileSync(path.join(testDir, f), 'utf8')
    for (const m of text.matchAll(re)) (m[1].length >= MIN_LENGTH ? found : short).add(m[1])
  }
  return { passwords: [...found].sort(), short: [...short].sort() }
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Scans every file of `dir` line by line. A password hits where it stands as a word of its own
 * (not inside a longer token), a digest response and an SDES key wherever they appear.
 */
function scan(dir, passwords) {
  const words = passwords.map((p) => ({ p, re: new RegExp(`(?<![A-Za-z0-9_-])${escape(p)}(?![A-Za-z0-9_-])`) }))
  const hits = []
  let lines = 0
  let files = 0
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []) {
    files++
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    text.split('\n').forEach((line, i) => {
      lines++
      for (const { p, re } of words) if (re.test(line)) hits.push({ file: f, line: i + 1, what: `password ${JSON.stringify(p)}`, text: line })
      if (DIGEST_RESPONSE.test(line)) hits.push({ file: f, line: i + 1, what: 'digest response', text: line })
      if (SDES_KEY.test(line)) hits.push({ file: f, line: i + 1, what: 'SDES key', text: line })
    })
  }
  return { files, lines, hits }
}

module.exports = { testPasswords, scan, MIN_LENGTH }

if (require.main === module) {
  const dir = process.argv[2]
  if (!dir) {
    console.error('usage: node scripts/check-secrets.js <capture-dir>')
    process.exit(2)
  }
  const { passwords, short } = testPasswords(path.join(__dirname, '..', '__test__'))
  const r = scan(dir, passwords)
  for (const h of r.hits) console.error(`${path.join(dir, h.file)}:${h.line}: ${h.what}: ${h.text.slice(0, 300)}`)
  console.log(
    `secrets check: ${r.files} capture files, ${r.lines} lines scanned, ${passwords.length} passwords searched ` +
      `(${short.length} shorter than ${MIN_LENGTH} not searchable: ${short.join(', ')}), digest responses and SDES keys, ${r.hits.length} hits`,
  )
  process.exit(r.hits.length || r.files === 0 ? 1 : 0)
}
