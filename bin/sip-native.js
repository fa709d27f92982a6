#!/usr/bin/env node
// sip-native CLI: a softphone for checking a PBX (register, call, listen, options).
// `sip-native --help` for the flags; the code is in lib/cli/.
'use strict'

const fail = (e) => {
  process.stderr.write(`sip-native: ${e && e.message ? e.message.replace(/^sip-native: /, '') : e}\n`)
  process.exit(1)
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

let run
try {
  ;({ run } = require('../lib/cli/main.js'))
} catch (e) {
  // e.g. no prebuilt binary for this platform: the loader's message says which and what to do
  fail(e)
}
run(process.argv.slice(2)).then((code) => process.exit(code), fail)
