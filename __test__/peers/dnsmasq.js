// Driver for dnsmasq as an authoritative test DNS server on 127.0.0.1:<free port>: NAPTR, SRV and
// A records given by the test, NXDOMAIN for any other name of the test's domains (`--local`), no
// upstream, no hosts file. The queries it answered are in its log (`log()`), for assertions.
//
//   const dns = await startDnsmasq({ t, domains: ['pbx.test'],
//     naptr: [{ name: 'pbx.test', order: 10, pref: 10, service: 'SIP+D2U', replacement: '_sip._udp.pbx.test' }],
//     srv: [{ name: '_sip._udp.pbx.test', target: 'a.pbx.test', port: 5070, priority: 10, weight: 10 }],
//     hosts: [{ name: 'a.pbx.test', address: '127.0.0.1' }] })
//   await startService(t, { server: 'pbx.test', dnsServers: [dns.server], ... })
'use strict'

const dgram = require('node:dgram')
const { HOST, freePort, spawnPeer, hasExited, which } = require('../helpers/process')
const { until } = require('../helpers/wait')

/** Sends one A query for `name` and resolves true when any answer (even NXDOMAIN) comes back. */
function answers(port, name) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    const timer = setTimeout(() => {
      s.close()
      resolve(false)
    }, 300)
    s.on('message', () => {
      clearTimeout(timer)
      s.close()
      resolve(true)
    })
    s.on('error', () => {})
    const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]))
    const query = Buffer.concat([
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...labels,
      Buffer.from([0, 0, 1, 0, 1]),
    ])
    s.send(query, port, HOST)
  })
}

/**
 * Starts dnsmasq. Resolves, once it answers queries, to `{ port, server: '127.0.0.1:port', log(),
 * stop() }`.
 *
 * @param {object} o
 * @param {string[]} o.domains  domains dnsmasq is authoritative for (other names there: NXDOMAIN)
 * @param {Array<{name,order,pref,service,replacement}>} [o.naptr]  `s`-flag NAPTR records
 * @param {Array<{name,target,port,priority,weight}>} [o.srv]
 * @param {Array<{name,address}>} [o.hosts]  A/AAAA records
 * @param {object} [o.t]  node:test context: stop dnsmasq when the test ends
 */
async function startDnsmasq(o) {
  const bin = which('dnsmasq')
  if (!bin) throw new Error('dnsmasq not found; apt-get install dnsmasq-base')
  const port = await freePort()
  const args = [
    '--keep-in-foreground', '--no-daemon', '--log-queries', '--log-facility=-',
    '--no-resolv', '--no-hosts', '--no-poll', '--pid-file=', '--conf-file=/dev/null',
    `--port=${port}`, `--listen-address=${HOST}`, '--bind-interfaces',
    // as root, stay root rather than switch to a user ("nobody"/"dnsmasq") that may not exist
    ...(process.getuid && process.getuid() === 0 ? ['--user=root'] : []),
  ]
  for (const d of o.domains || []) args.push(`--local=/${d}/`)
  for (const n of o.naptr || []) {
    args.push(`--naptr-record=${n.name},${n.order},${n.pref},s,${n.service},,${n.replacement}`)
  }
  for (const s of o.srv || []) {
    args.push(`--srv-host=${s.name},${s.target},${s.port},${s.priority},${s.weight}`)
  }
  for (const h of o.hosts || []) args.push(`--host-record=${h.name},${h.address}`)

  const { child, log, stop } = spawnPeer(bin, args, { t: o.t, timeoutMs: o.timeoutMs, graceMs: 2000 })
  try {
    await until(
      async () => {
        if (hasExited(child)) throw new Error(`it exited (code ${child.exitCode})`)
        return answers(port, 'probe.invalid')
      },
      5000,
      'an answer to a DNS query',
    )
  } catch (err) {
    await stop()
    throw new Error(`dnsmasq did not come up on ${HOST}:${port} (${err.message}):\n${log().slice(-4000)}\nargs: ${args.join(' ')}`)
  }
  return { port, server: `${HOST}:${port}`, args, log, stop }
}

module.exports = { startDnsmasq }
