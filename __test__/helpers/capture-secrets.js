// Preload of the secrets check (scripts/test.js runs `node --require` this, and node's test
// runner passes the flag on to each test file's process). With SIP_NATIVE_CAPTURE_DIR set, every
// SipService the tests create logs at trace level, SIP messages included, into
// <dir>/capture-<pid>.log, and every event it emits is written there too; scripts/
// check-secrets.js then greps those files for the tests' passwords and digest responses.
//
// The tests' own log behaviour is kept: a test that passes a logger still gets exactly the
// records its logLevel and sipTrace ask for; one that passes none gets no logger calls.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

const dir = process.env.SIP_NATIVE_CAPTURE_DIR
if (dir) install(require(path.join(__dirname, '..', '..', 'index.js')).SipService, dir)

function install(SipService, dir) {
  fs.mkdirSync(dir, { recursive: true })
  const fd = fs.openSync(path.join(dir, `capture-${process.pid}.log`), 'a')
  // buffered: trace level makes many records; flushed at 64 KiB and at exit
  let buf = []
  let size = 0
  const flush = () => {
    if (buf.length) fs.writeSync(fd, buf.join(''))
    buf = []
    size = 0
  }
  const write = (line) => {
    buf.push(line + '\n')
    size += line.length
    if (size > 65536) flush()
  }
  process.on('exit', flush)

  const start = SipService.prototype.start
  SipService.prototype.start = function () {
    if (!this._captured && !this._endpoint && !this._starting) {
      this._captured = true
      const forward = this._onLog
      if (this._logger) {
        // a test's own logger keeps its level: a raised one would fill the 4096-record queue it
        // shares with the capture and change what the test asserts (logger.test.js's flood)
        this._onLog = (r) => {
          write(`log ${JSON.stringify(r)}`)
          forward.call(this, r)
        }
      } else {
        this._logOptions = { level: 'trace', sipTrace: true }
        this._logger = {}
        this._onLog = (r) => write(`log ${JSON.stringify(r)}`)
      }
    }
    return start.call(this)
  }
  const emit = SipService.prototype.emit
  SipService.prototype.emit = function (name, ...args) {
    if (name !== 'newListener' && name !== 'removeListener') write(`event ${String(name)} ${safeJson(args)}`)
    return emit.call(this, name, ...args)
  }
}

function safeJson(v) {
  try {
    return JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? String(x) : x instanceof Error ? { message: x.message, stack: x.stack, ...x } : x))
  } catch {
    return String(v)
  }
}
