// The migrated service example type-checks against index.d.ts.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { requirePeer } = require('./helpers/process')

const root = path.join(__dirname, '..')

test('tsc --noEmit -p examples/pjsip-service exits 0', (t) => {
  if (!requirePeer('tsc', t)) return
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', 'examples/pjsip-service'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120000,
  })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}\n${r.stderr}`)
})
