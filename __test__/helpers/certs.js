// Test certificates made with the openssl command line into a fresh temp dir: a CA, a server
// certificate it signs for localhost + 127.0.0.1 + ::1, and the bad ones a TLS client must
// refuse (a certificate from an unknown CA, one for another name, an expired one), plus a
// client certificate. EC P-256 keys: quick to make, understood by rustls, Kamailio's OpenSSL
// and PJSIP.
//
//   const certs = makeCerts()
//   certs.server.cert, certs.server.key, certs.ca.cert, certs.expired.cert, ...
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { tmpDir } = require('./process')

function openssl(dir, args) {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20000 })
  if (r.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed: ${r.error ? r.error.message : r.stderr}`)
  }
}

/** A self-signed CA: `<name>.pem`, `<name>.key`. */
function makeCa(dir, name, cn) {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ])
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) }
}

/**
 * A leaf signed by `ca`: `<name>.pem`, `<name>.key`. `sans` like ['DNS:localhost', 'IP:127.0.0.1'].
 * `days` < 0 makes it expired: openssl 3.0 (no `-not_after` before 3.4) takes a negative
 * `-days` and writes notAfter that many days before notBefore (now), so the certificate is
 * valid from now to a day ago: "expired" for any verifier.
 */
function makeLeaf(dir, name, ca, { cn, sans, days = 30 }) {
  openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`,
  ])
  const ext = path.join(dir, `${name}.ext`)
  fs.writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${sans.join(',')}`,
    ].join('\n') + '\n',
  )
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial',
    '-days', String(days), '-extfile', ext, '-out', `${name}.pem`,
  ])
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) }
}

/**
 * Makes the set in a new temp dir (about a second). Every entry is `{ cert, key }` (paths);
 * `ca` is what a client trusts (`tls.caFile: certs.ca.cert`), `unknownCa` is trusted by nobody.
 *
 * @param {object} [o]
 * @param {string} [o.dir] directory to write into (default: a fresh temp dir)
 * @param {string} [o.wrongName] the only name of `wrongName` (default 'wrong.example.test')
 */
function makeCerts(o = {}) {
  const dir = o.dir || tmpDir('certs')
  const local = { cn: 'localhost', sans: ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'] }
  const wrongName = o.wrongName || 'wrong.example.test'
  const ca = makeCa(dir, 'ca', 'sip-native test CA')
  const unknownCa = makeCa(dir, 'unknown-ca', 'sip-native unknown CA')
  const certs = {
    dir,
    ca,
    unknownCa,
    server: makeLeaf(dir, 'server', ca, local),
    unknown: makeLeaf(dir, 'unknown', unknownCa, local),
    wrongName: makeLeaf(dir, 'wrong-name', ca, { cn: wrongName, sans: [`DNS:${wrongName}`] }),
    expired: makeLeaf(dir, 'expired', ca, { ...local, days: -1 }),
    client: makeLeaf(dir, 'client', ca, { cn: 'client.example.test', sans: ['DNS:client.example.test'] }),
  }
  return certs
}

/** Removes the directory `makeCerts` wrote (tests call it in `t.after`). */
function removeCerts(certs) {
  fs.rmSync(certs.dir, { recursive: true, force: true })
}

module.exports = { makeCerts, removeCerts }
