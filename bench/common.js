// Shared by the bench scripts: command-line options, and the UA scripts' lifecycle (start and print
// READY, stop on SIGTERM/SIGINT/--max-seconds with a bounded stop(), exit codes).
'use strict'

/** The runners' own options: `--name` present. */
const flag = (name) => process.argv.slice(2).includes(`--${name}`)

/** The runners' own options: `--name=value` only (so they can be passed through verbatim). */
function opt(name, dflt) {
  const hit = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))
  return hit ? hit.slice(name.length + 3) : dflt
}

/** The UA scripts' options: `--name value` or `--name=value`, else `dflt`. */
function arg(name, dflt) {
  const hit = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (!hit) return dflt
  if (hit.includes('=')) return hit.slice(hit.indexOf('=') + 1)
  return process.argv[process.argv.indexOf(hit) + 1]
}

/**
 * Starts `sip`, prints READY, and stops it once on a signal or after `maxSeconds` (then on
 * `stopAfterMs` more it exits hard). `counts()` is printed with the STOP line. Returns
 * `shutdown(why)` for other reasons to stop (stdin EOF).
 */
function runUa(sip, { maxSeconds, stopAfterMs, counts }) {
  let stopping = false
  async function shutdown(why) {
    if (stopping) return
    stopping = true
    clearTimeout(limit)
    console.log(`STOP (${why}) ${JSON.stringify(counts())}`)
    const force = setTimeout(() => {
      console.error(`stop() did not finish within ${stopAfterMs / 1000} s`)
      process.exit(2)
    }, stopAfterMs)
    force.unref()
    try {
      await sip.stop()
    } catch (err) {
      console.error(`stop: ${err && err.message}`)
      process.exitCode = 1
    }
    process.stdin.destroy()
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  const limit = setTimeout(() => shutdown('max-seconds'), maxSeconds * 1000)
  sip.start().then(
    () => {
      const la = sip.localAddress()
      console.log(`READY sip-native ${la.address}:${la.port}/${la.transport}`)
    },
    (err) => {
      console.error(`start failed: ${err && err.stack}`)
      process.exit(1)
    },
  )
  return shutdown
}

module.exports = { arg, flag, opt, runUa }
