// Real SIP peers for the node:test suites: sipp scenarios and a Kamailio registrar/proxy, started
// as child processes on 127.0.0.1 with free ports. Every process is bounded by a timeout and is
// killed when the test ends (pass `t` to register the cleanup) and, at the latest, when this Node
// process exits.
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const dgram = require('node:dgram')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const HOST = '127.0.0.1'
const SCENARIOS = path.join(__dirname, '..', 'scenarios')

// ---------------------------------------------------------------------------------------------
// process bookkeeping

const live = new Set() // ChildProcess objects started by this module (each a process group leader)

function killGroup(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal) // the whole group: kamailio forks its workers
  } catch {
    try {
      child.kill(signal)
    } catch {}
  }
}

process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL')
})

function track(child) {
  live.add(child)
  child.on('exit', () => live.delete(child))
  return child
}

/** Resolves when `child` has exited ({ code, signal }), immediately if it already has. */
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function terminate(child, graceMs = 2000) {
  if (child.exitCode !== null || child.signalCode !== null) return exited(child)
  killGroup(child, 'SIGTERM')
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs)
  const r = await exited(child)
  clearTimeout(timer)
  killGroup(child, 'SIGKILL') // stray workers of the group, if any
  return r
}

function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sip-native-${prefix}-`))
}

function readIfExists(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------
// binaries

function which(bin) {
  for (const dir of (process.env.PATH || '').split(path.delimiter).concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue
    const p = path.join(dir, bin)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {}
  }
  return null
}

const PEERS = {
  sipp: { check: () => which('sipp'), hint: 'install with: apt-get install sip-tester' },
  kamailio: {
    check: () => which('kamailio') && which('sqlite3') && kamailioModuleDir(),
    hint: 'install with: apt-get install kamailio kamailio-sqlite-modules sqlite3',
  },
  baresip: { check: () => which('baresip'), hint: 'install with: apt-get install baresip-core' },
  pjsua2: {
    check: () =>
      spawnSync('python3', ['-c', 'import pjsua2'], { stdio: 'ignore', timeout: 20000 }).status === 0,
    hint: 'install with: pip install pjsua2-python==2.15.1.post1',
  },
  tsc: {
    check: () => fs.existsSync(path.join(__dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc')),
    hint: 'install with: npm ci (devDependency typescript)',
  },
}

/**
 * True when the peer is available. Otherwise: under CI=true throws (the test fails); elsewhere
 * skips the test with the install hint and returns false. Usage: `if (!requirePeer('sipp', t)) return`.
 */
function requirePeer(name, t) {
  const peer = PEERS[name]
  if (!peer) throw new Error(`requirePeer: unknown peer ${name}`)
  if (peer.check()) return true
  const msg = `${name} is not available; ${peer.hint}`
  if (process.env.CI === 'true') throw new Error(msg)
  if (t && typeof t.skip === 'function') t.skip(msg)
  return false
}

// ---------------------------------------------------------------------------------------------
// ports

/** A UDP port on 127.0.0.1 that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.once('error', reject)
    s.bind(0, HOST, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether some process has a UDP socket bound to `port` (Linux /proc). */
function udpBound(port) {
  const hex = ':' + port.toString(16).toUpperCase().padStart(4, '0')
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    const lines = readIfExists(f).split('\n').slice(1)
    for (const l of lines) {
      const local = l.trim().split(/\s+/)[1]
      if (local && local.endsWith(hex)) return true
    }
  }
  return false
}

async function waitUdpBound(port, child, timeoutMs = 5000) {
  if (!fs.existsSync('/proc/net/udp')) return sleep(300)
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (udpBound(port)) return
    if (child.exitCode !== null || child.signalCode !== null) return
    await sleep(20)
  }
  throw new Error(`nothing bound UDP port ${port} within ${timeoutMs} ms`)
}

// ---------------------------------------------------------------------------------------------
// sipp

function resolveScenario(scenario) {
  if (fs.existsSync(scenario) && scenario.endsWith('.xml')) return { file: path.resolve(scenario) }
  const name = scenario.endsWith('.xml') ? scenario : scenario + '.xml'
  const file = path.join(SCENARIOS, name)
  if (fs.existsSync(file)) return { file }
  return { builtin: scenario } // sipp -sn uac / uas / regexp / branchc ...
}

function parseStats(csv) {
  const lines = csv.split('\n').filter((l) => l.trim())
  if (lines.length < 2) return null
  const head = lines[0].split(';')
  const row = lines[lines.length - 1].split(';')
  const out = {}
  head.forEach((h, i) => {
    if (h) out[h] = row[i]
  })
  const num = (k) => (out[k] === undefined ? undefined : Number(out[k]))
  return {
    successful: num('SuccessfulCall(C)'),
    failed: num('FailedCall(C)'),
    created: num('TotalCallCreated'),
    raw: out,
  }
}

/**
 * Starts sipp. Resolves once it is running (for a UAS: once its UDP port is bound) to
 * `{ port, dir, args, done, kill }`; `done` resolves when sipp exits, to
 * `{ code, signal, stdout, stderr, stats, errors, messages, dir }` where `code` 0 means every
 * call of the scenario succeeded, 1 that at least one failed (sipp's exit codes).
 *
 * @param {object} o
 * @param {string} o.scenario   file in __test__/scenarios (with or without .xml), a path, or a builtin name
 * @param {string} [o.remote]   'host:port' to call (UAC scenarios); omit for a UAS
 * @param {number} [o.port]     local port, 0 = a free one
 * @param {number} [o.calls]    -m, default 1
 * @param {number} [o.timeoutMs] global bound (sipp -timeout, plus a hard kill), default 20000
 * @param {number} [o.recvTimeoutMs] -recv_timeout, default 10000
 * @param {string} [o.service]  -s, Request-URI user of UAC scenarios, default '7779'
 * @param {number} [o.durationMs] -d, length of <pause/> without a value, default 300
 * @param {Object<string,string>} [o.keys] -key k v (scenario keywords [k]); defaults: display, expected
 * @param {string[]} [o.args]   extra sipp arguments
 * @param {object} [o.t]        node:test context: kill sipp when the test ends
 */
async function startSipp(o) {
  const opts = { calls: 1, timeoutMs: 20000, recvTimeoutMs: 10000, service: '7779', durationMs: 300, ...o }
  const port = opts.port || (await freePort())
  const dir = tmpDir('sipp')
  const sc = resolveScenario(opts.scenario)
  const keys = { display: 'sipp', expected: '486', ...(opts.keys || {}) }
  const args = []
  if (opts.remote) args.push(opts.remote)
  if (sc.file) args.push('-sf', sc.file)
  else args.push('-sn', sc.builtin)
  args.push(
    '-i', HOST, '-bind_local', '-p', String(port),
    '-m', String(opts.calls),
    '-nostdin',
    '-timeout', `${Math.max(1, Math.ceil(opts.timeoutMs / 1000))}s`, '-timeout_error',
    '-recv_timeout', String(opts.recvTimeoutMs),
    '-max_recv_loops', '1000', '-max_sched_loops', '1000',
    '-s', opts.service,
    '-d', String(opts.durationMs),
    '-trace_err', '-error_file', path.join(dir, 'errors.log'),
    '-trace_stat', '-stf', path.join(dir, 'stats.csv'),
    '-trace_msg', '-message_file', path.join(dir, 'messages.log'),
    '-trace_logs', '-log_file', path.join(dir, 'logs.log'),
  )
  // only when a key is used by the scenario would sipp need it; unknown -key values are harmless
  for (const [k, v] of Object.entries(keys)) args.push('-key', k, String(v))
  if (opts.args) args.push(...opts.args)

  const child = track(spawn('sipp', args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout = (stdout + d).slice(-65536)))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-65536)))
  const spawnError = new Promise((resolve) => child.once('error', resolve))
  const hardKill = setTimeout(() => killGroup(child, 'SIGKILL'), opts.timeoutMs + 5000)

  const done = Promise.race([exited(child), spawnError.then((e) => ({ code: -1, signal: null, error: e }))]).then(
    (r) => {
      clearTimeout(hardKill)
      return {
        code: r.code,
        signal: r.signal,
        error: r.error,
        stdout,
        stderr,
        stats: parseStats(readIfExists(path.join(dir, 'stats.csv'))),
        errors: readIfExists(path.join(dir, 'errors.log')),
        messages: readIfExists(path.join(dir, 'messages.log')),
        logs: readIfExists(path.join(dir, 'logs.log')),
        dir,
      }
    },
  )
  const kill = () => terminate(child, 1000)
  if (opts.t && typeof opts.t.after === 'function') opts.t.after(kill)

  if (!opts.remote) await waitUdpBound(port, child)
  if (child.exitCode !== null) {
    const r = await done
    throw new Error(`sipp exited at once (code ${r.code}): ${r.stderr || r.stdout || r.errors}`)
  }
  return { port, dir, args, child, done, kill }
}

/** A readable summary of a finished sipp run, for assertion messages. */
function describeSipp(r) {
  const tail = (s, n = 3000) => (s && s.length > n ? '...' + s.slice(-n) : s)
  return `sipp exit ${r.code}${r.signal ? ' ' + r.signal : ''}; stats ${JSON.stringify(
    r.stats && { ok: r.stats.successful, failed: r.stats.failed },
  )}\n--- errors:\n${tail(r.errors)}\n--- stderr:\n${tail(r.stderr, 1000)}\n--- messages:\n${tail(r.messages)}`
}

// ---------------------------------------------------------------------------------------------
// a UDP SIP probe

/** Sends an OPTIONS to host:port and resolves to the status line of the answer (or null on timeout). */
function sipOptions(port, host = HOST, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    const timer = setTimeout(() => {
      s.close()
      resolve(null)
    }, timeoutMs)
    s.on('message', (m) => {
      clearTimeout(timer)
      s.close()
      resolve(m.toString('utf8').split('\r\n')[0])
    })
    s.on('error', () => {})
    s.bind(0, HOST, () => {
      const lp = s.address().port
      const branch = 'z9hG4bK' + crypto.randomBytes(6).toString('hex')
      const msg =
        `OPTIONS sip:${host}:${port} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP ${HOST}:${lp};branch=${branch};rport\r\n` +
        `From: <sip:probe@${HOST}:${lp}>;tag=${branch.slice(7)}\r\n` +
        `To: <sip:${host}:${port}>\r\n` +
        `Call-ID: ${branch}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`
      s.send(msg, port, host)
    })
  })
}

// ---------------------------------------------------------------------------------------------
// kamailio

function kamailioModuleDir() {
  const candidates = [
    '/usr/lib/x86_64-linux-gnu/kamailio/modules',
    '/usr/lib/aarch64-linux-gnu/kamailio/modules',
    '/usr/lib64/kamailio/modules',
    '/usr/lib/kamailio/modules',
    '/usr/local/lib64/kamailio/modules',
    '/usr/local/lib/kamailio/modules',
  ]
  return candidates.find((d) => fs.existsSync(path.join(d, 'db_sqlite.so'))) || null
}

const KAMAILIO_SCHEMA = `
CREATE TABLE version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
INSERT INTO version (table_name, table_version) values ('version','1');
CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);
CREATE INDEX subscriber_username_idx ON subscriber (username);
INSERT INTO version (table_name, table_version) values ('subscriber','7');
`

const md5 = (s) => crypto.createHash('md5').update(s).digest('hex')
const sqlStr = (s) => "'" + String(s).replace(/'/g, "''") + "'"

function kamailioCfg({ port, domain, db, mpath }) {
  return `#!KAMAILIO
# generated by __test__/helpers/peers.js: registrar + digest auth (sqlite) + proxy on loopback

debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
auto_aliases=no
disable_tcp=yes
disable_sctp=yes
dns=no
rev_dns=no
use_dns_cache=no
listen=udp:127.0.0.1:${port}
alias="${domain}:${port}"
mpath="${mpath}"

loadmodule "db_sqlite.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
loadmodule "auth_db.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
# Kamailio's default min_expires (60) would stretch a short test registration (registerExpires: 2)
# to 60 s; accept down to 1 s so refreshes can be tested
modparam("registrar", "min_expires", 1)
modparam("registrar", "default_expires", 300)
modparam("auth_db", "db_url", "sqlite:///${db}")
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "use_domain", 0)
modparam("auth_db", "load_credentials", "")
modparam("tm", "fr_inv_timer", 30000)

request_route {
	xlog("L_INFO", "REQ $rm $ru from $si:$sp ci=$ci\\n");
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {
		sl_send_reply("200", "Keepalive");
		exit;
	}
	# in-dialog requests follow the Record-Route set
	if (has_totag()) {
		if (loose_route()) {
			if (!t_relay()) sl_reply_error();
			exit;
		}
		if (is_method("ACK")) {
			if (t_check_trans()) t_relay();
			exit;
		}
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) t_relay();
		exit;
	}
	t_check_trans();
	remove_hf("Route");

	if (is_method("REGISTER")) {
		if (!auth_check("${domain}", "subscriber", "1")) {
			xlog("L_INFO", "REGISTER auth failed/missing for $fu: $rc\\n");
			auth_challenge("${domain}", "1");
			exit;
		}
		consume_credentials();
		if (!save("location")) sl_reply_error();
		exit;
	}

	if (is_method("INVITE|MESSAGE|SUBSCRIBE|REFER") && $fd == "${domain}") {
		# local users must authenticate (407)
		if (!auth_check("${domain}", "subscriber", "1")) {
			xlog("L_INFO", "$rm auth failed/missing for $fu: $rc\\n");
			auth_challenge("${domain}", "1");
			exit;
		}
		consume_credentials();
	}
	if (is_method("INVITE|SUBSCRIBE")) record_route();

	if ($rU == $null) {
		sl_send_reply("484", "Address Incomplete");
		exit;
	}
	if (!lookup("location")) {
		xlog("L_INFO", "no contact for $ru\\n");
		sl_send_reply("404", "Not Found");
		exit;
	}
	xlog("L_INFO", "relay $rm to $ru\\n");
	if (!t_relay()) sl_reply_error();
	exit;
}
`
}

/**
 * Starts Kamailio on 127.0.0.1:<free port> as registrar (digest auth against an SQLite
 * `subscriber` table, realm = domain = 127.0.0.1) and proxy (INVITEs from local users need
 * 407 proxy auth; requests are forwarded to registered contacts with record_route; in-dialog
 * requests by loose_route). Resolves once it answers an OPTIONS probe.
 *
 * @param {object} o
 * @param {Array<{username:string,password:string}>} o.users
 * @param {object} [o.t] node:test context: stop Kamailio when the test ends
 * @param {number} [o.timeoutMs] hard bound on its lifetime, default 120000
 */
async function startKamailio(o = {}) {
  const users = o.users || []
  const domain = HOST
  const realm = domain
  const mpath = kamailioModuleDir()
  if (!mpath) throw new Error('kamailio modules (db_sqlite.so) not found; apt-get install kamailio-sqlite-modules')
  const dir = tmpDir('kamailio')
  const db = path.join(dir, 'kamailio.db')
  const sql =
    KAMAILIO_SCHEMA +
    users
      .map(
        (u) =>
          `INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (${sqlStr(u.username)}, ${sqlStr(
            domain,
          )}, ${sqlStr(u.password)}, ${sqlStr(md5(`${u.username}:${realm}:${u.password}`))}, ${sqlStr(
            md5(`${u.username}@${domain}:${realm}:${u.password}`),
          )});`,
      )
      .join('\n')
  const r = spawnSync('sqlite3', [db], { input: sql, encoding: 'utf8', timeout: 10000 })
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr || r.error}`)

  const port = await freePort()
  const cfg = path.join(dir, 'kamailio.cfg')
  fs.writeFileSync(cfg, kamailioCfg({ port, domain, db, mpath }))
  const args = ['-f', cfg, '-DD', '-E', '-w', dir, '-Y', dir, '-P', path.join(dir, 'kamailio.pid'), '-m', '64', '-M', '8']
  const child = track(spawn('kamailio', args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
  let log = ''
  const onData = (d) => {
    log = (log + d).slice(-262144)
  }
  child.stdout.setEncoding('utf8').on('data', onData)
  child.stderr.setEncoding('utf8').on('data', onData)
  child.on('error', (e) => (log += `\nspawn error: ${e.message}`))
  const hardKill = setTimeout(() => killGroup(child, 'SIGKILL'), o.timeoutMs || 120000)
  hardKill.unref()

  const stop = async () => {
    clearTimeout(hardKill)
    await terminate(child, 3000)
  }
  if (o.t && typeof o.t.after === 'function') o.t.after(stop)

  const end = Date.now() + 10000
  let ready = false
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) break
    const status = await sipOptions(port, HOST, 300)
    if (status && / 200 /.test(status)) {
      ready = true
      break
    }
  }
  if (!ready) {
    await stop()
    throw new Error(`kamailio did not come up on ${HOST}:${port} (exit ${child.exitCode}):\n${log.slice(-4000)}`)
  }
  return {
    host: HOST,
    port,
    domain,
    realm,
    users,
    dir,
    cfg,
    db,
    uri: `sip:${HOST}:${port}`,
    log: () => log,
    stop,
  }
}

module.exports = {
  HOST,
  SCENARIOS,
  freePort,
  requirePeer,
  startSipp,
  describeSipp,
  startKamailio,
  sipOptions,
  which,
  sleep,
  tmpDir,
  // process bookkeeping, for the peer drivers in __test__/peers/
  track,
  exited,
  terminate,
  killGroup,
  waitUdpBound,
}
