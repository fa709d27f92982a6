// Command-line options of the bench scripts: `--name value` or `--name=value`.
'use strict'

function arg(name, dflt) {
  const hit = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (!hit) return dflt
  if (hit.includes('=')) return hit.slice(hit.indexOf('=') + 1)
  return process.argv[process.argv.indexOf(hit) + 1]
}

module.exports = { arg }
