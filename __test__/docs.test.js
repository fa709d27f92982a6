// The API reference: TypeDoc (typedoc.json, the same run as `npm run docs`) builds index.d.ts
// with warnings as errors, and the pages it writes hold every public declaration of index.d.ts.
// Two mutated copies of index.d.ts (a broken {@link}, a type the API uses but does not export)
// must make the same run fail, so that the check cannot pass vacuously.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const ts = require('typescript')
const { requirePeer } = require('./helpers/process')

const root = path.join(__dirname, '..')
const TYPEDOC = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc')
// inside the repository (gitignored) so that the copies resolve @types/node like the original
const RUN = path.join(root, '__test__', '.run')

/** Runs TypeDoc with typedoc.json and `extra` options; returns { status, out }. */
function typedoc(extra) {
  assert.ok(fs.existsSync(TYPEDOC), `typedoc is not installed (${TYPEDOC}); run npm ci`)
  const r = spawnSync(process.execPath, [TYPEDOC, '--options', 'typedoc.json', ...extra], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  })
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '') }
}

/**
 * The public API as index.d.ts declares it, read with the TypeScript compiler: every exported
 * declaration's name, kind and member names (methods and properties).
 */
function publicApi() {
  const file = path.join(root, 'index.d.ts')
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true)
  const decls = []
  for (const st of sf.statements) {
    const exported = (st.modifiers || []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
    if (!exported || !st.name) continue
    // TypeDoc's folder for each kind of declaration
    const kind = ts.isClassDeclaration(st)
      ? 'classes'
      : ts.isInterfaceDeclaration(st)
        ? 'interfaces'
        : ts.isFunctionDeclaration(st)
          ? 'functions'
          : ts.isEnumDeclaration(st)
            ? 'enums'
            : 'types'
    const members = (st.members || [])
      .map((m) => m.name && m.name.getText(sf))
      .filter((n) => n && !n.startsWith('['))
    decls.push({ name: st.name.text, kind, members: [...new Set(members)] })
  }
  // re-exports of the binding's types: `export type { CallStats, ... }`
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) decls.push({ name: el.name.text, kind: 'interfaces', members: [] })
    }
  }
  return decls
}

/** A copy of index.d.ts and binding.d.ts in a fresh folder, `edit` applied to index.d.ts. */
function mutatedCopy(name, edit) {
  const dir = path.join(RUN, `docs-${name}-${process.pid}`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  fs.copyFileSync(path.join(root, 'binding.d.ts'), path.join(dir, 'binding.d.ts'))
  const src = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const out = edit(src)
  assert.notEqual(out, src, `mutation ${name} changed nothing (index.d.ts no longer has what it edits)`)
  fs.writeFileSync(path.join(dir, 'index.d.ts'), out)
  return dir
}

test('TypeDoc builds index.d.ts with no warning, and its pages hold the whole public API', { timeout: 120000 }, (t) => {
  const out = path.join(RUN, `docs-api-${process.pid}`)
  fs.rmSync(out, { recursive: true, force: true })
  t.after(() => fs.rmSync(out, { recursive: true, force: true }))
  const r = typedoc(['--out', out])
  assert.equal(r.status, 0, `typedoc failed (warnings are errors):\n${r.out}`)
  assert.doesNotMatch(r.out, /\[warning\]/, `typedoc warned:\n${r.out}`)

  const api = publicApi()
  const byName = new Map(api.map((d) => [d.name, d]))
  // a floor, in case the parse above ever finds less than is there
  for (const name of ['SipService', 'SipServiceConfig', 'Call', 'CallAudio', 'SipServiceEvents', 'CallStateEvent', 'IncomingCallEvent', 'RegistrationEvent', 'DtmfEvent']) {
    assert.ok(byName.has(name), `index.d.ts exports ${name}`)
  }
  for (const m of ['start', 'stop', 'makeCall', 'answer', 'reject', 'hangup', 'playFile', 'record', 'sendDtmf', 'bridge']) {
    assert.ok(byName.get('SipService').members.includes(m), `SipService declares ${m}`)
  }
  for (const f of ['server', 'serverPort', 'transport', 'localPort', 'accounts', 'useWebsocket', 'tls']) {
    assert.ok(byName.get('SipServiceConfig').members.includes(f), `SipServiceConfig declares ${f}`)
  }

  const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8')
  for (const d of api) {
    const page = path.join(out, d.kind, `${d.name}.html`)
    assert.ok(fs.existsSync(page), `no page for ${d.name} (${path.relative(out, page)})`)
    assert.ok(index.includes(`${d.kind}/${d.name}.html`), `index.html does not link ${d.name}`)
    const html = fs.readFileSync(page, 'utf8')
    for (const m of d.members) {
      const anchor = m.replace(/['"]/g, '').toLowerCase()
      assert.ok(html.includes(`id="${anchor}"`), `${d.name}.html has no entry for ${m}`)
    }
  }
  // the doc comments are on the pages, not just the names
  const svc = fs.readFileSync(path.join(out, 'classes', 'SipService.html'), 'utf8')
  assert.match(svc, /Places a call/, 'makeCall is documented on the SipService page')
  const events = fs.readFileSync(path.join(out, 'interfaces', 'SipServiceEvents.html'), 'utf8')
  for (const e of ['registration', 'incoming_call', 'call_state', 'dtmf', 'transport', 'error']) {
    assert.ok(events.includes(`id="${e}"`), `SipServiceEvents page lists the ${e} event`)
  }
})

test('a broken {@link} in a doc comment fails the docs build', { timeout: 120000 }, (t) => {
  const dir = mutatedCopy('badlink', (s) =>
    s.replace('/** One SIP account: an operator\'s extension on the PBX. */', '/** One SIP account, see {@link SipService.noSuchMethod}. */'),
  )
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const r = typedoc(['--entryPoints', path.join(dir, 'index.d.ts'), '--out', path.join(dir, 'out')])
  assert.notEqual(r.status, 0, `typedoc passed a broken link:\n${r.out}`)
  assert.match(r.out, /noSuchMethod/, `the failure names the link:\n${r.out}`)
})

test('a type used by the API but not exported fails the docs build', { timeout: 120000 }, (t) => {
  const dir = mutatedCopy('notexported', (s) =>
    s
      .replace('export interface TlsConfig {', 'interface TlsConfig {')
      .replace('export type { CallStats, Counters,', 'export type { CallStats,'),
  )
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const r = typedoc(['--entryPoints', path.join(dir, 'index.d.ts'), '--out', path.join(dir, 'out')])
  assert.notEqual(r.status, 0, `typedoc passed a non-exported type:\n${r.out}`)
  assert.match(r.out, /TlsConfig.*not included in the documentation/, `the failure names TlsConfig:\n${r.out}`)
  assert.match(r.out, /Counters.*not included in the documentation/, `the failure names Counters:\n${r.out}`)
})

// ---------------------------------------------------------------------------------------------
// docs/migration.md: its code and the names it gives must be true.

const MIGRATION = path.join(root, 'docs', 'migration.md')

/** The fenced blocks of `lang` in a Markdown text. */
function fenced(md, lang) {
  return [...md.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm'))].map((m) => m[1])
}

test('docs/migration.md: every TypeScript block type-checks against index.d.ts', { timeout: 120000 }, (t) => {
  const blocks = fenced(fs.readFileSync(MIGRATION, 'utf8'), 'ts')
  assert.ok(blocks.length >= 4, `expected the TypeScript examples in ${MIGRATION}, found ${blocks.length}`)
  const dir = path.join(RUN, `docs-snippets-${process.pid}`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  // ES modules (top-level await), as a service written today would be
  const files = blocks.map((code, i) => {
    const f = path.join(dir, `block${i + 1}.mts`)
    fs.writeFileSync(f, code.includes('export ') ? code : `${code}\nexport {}\n`)
    return f
  })
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    strict: true,
    noEmit: true,
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    paths: { 'sip-native': [path.join(root, 'index.d.ts')] },
  })
  const diags = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : ''
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
  assert.deepEqual(diags, [], `the migration page's TypeScript does not compile:\n${diags.join('\n')}`)
})

test('docs/migration.md: every pjsua2 name it gives exists in the installed pjsua2 module', { timeout: 60000 }, (t) => {
  if (!requirePeer('pjsua2', t)) return
  const md = fs.readFileSync(MIGRATION, 'utf8')
  const start = md.indexOf('## From the Python pjsua2 wrapper')
  const end = md.indexOf('## From sip.js')
  assert.ok(start >= 0 && end > start, 'the page has its pjsua2 and sip.js sections')
  const section = md.slice(start, end)
  // the pjsua2 column of the tables (the first cell of each row) and the Python code
  const cells = section
    .split('\n')
    .filter((l) => l.startsWith('| `') || l.startsWith('| custom'))
    .map((l) => l.slice(1).split(/(?<!\\)\|/)[0])
  const python = fenced(section, 'python')
  assert.ok(python.length >= 1 && cells.length >= 30, `found ${cells.length} table rows, ${python.length} Python blocks`)
  const text = [...cells, ...python].join('\n')
  const vars = { ep: 'Endpoint', acc: 'Account', call: 'Call', player: 'AudioMediaPlayer', am: 'AudioMedia', am1: 'AudioMedia', am2: 'AudioMedia' }
  const names = new Set()
  for (const [, cls, member] of text.matchAll(/\b([A-Z][A-Za-z0-9]+)\.([A-Za-z_]\w*)/g)) names.add(`${cls}.${member}`)
  for (const [, v, member] of text.matchAll(/\b(ep|acc|call|player|am1|am2|am)\.([A-Za-z_]\w*)\(/g)) names.add(`${vars[v]}.${member}`)
  for (const [, name] of text.matchAll(/(?<![…\w])pj\.([A-Za-z_]\w*)/g)) names.add(name)
  for (const [, name] of text.matchAll(/(?<![…\w])(PJ(?:SIP|SUA|MEDIA)_[A-Z0-9_]+[A-Z0-9])\b/g)) names.add(name)
  assert.ok(names.size >= 40, `expected many pjsua2 names, found ${names.size}: ${[...names].join(' ')}`)
  const check = `
import ast, json, sys
import pjsua2 as pj
names, blocks = json.load(sys.stdin)
for b in blocks:
    ast.parse(b)
missing = []
for n in names:
    obj = pj
    for part in n.split('.'):
        if not hasattr(obj, part):
            missing.append(n)
            break
        obj = getattr(obj, part)
print(json.dumps(missing))
`
  const r = require('node:child_process').spawnSync('python3', ['-c', check], {
    input: JSON.stringify([[...names], python]),
    encoding: 'utf8',
    timeout: 30000,
  })
  assert.equal(r.status, 0, `python3 check failed (a Python block that does not parse?):\n${r.stderr}`)
  assert.deepEqual(JSON.parse(r.stdout), [], `names on the page that pjsua2 does not have (of ${names.size} checked)`)
})
