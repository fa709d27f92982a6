// The smallest service for examples/docker: registers one extension to the PBX named by the
// environment, answers every call, plays a two-tone greeting, hangs up, and stops cleanly on
// SIGTERM (`docker stop`). Configuration:
//
//   SIP_SERVER, SIP_EXTENSION, SIP_PASSWORD   required
//   SIP_PORT (5060), SIP_TRANSPORT (udp), SIP_LOCAL_PORT (5060), SIP_RTP_MIN/SIP_RTP_MAX (10000-10100)
//
// __test__/musl.test.js runs this file under a musl Node with the musl addon and calls it with sipp.
'use strict'

const { SipService } = require('sip-native')

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback
  if (v === undefined) {
    console.error(`missing environment variable ${name}`)
    process.exit(2)
  }
  return v
}

const sip = new SipService({
  server: env('SIP_SERVER'),
  serverPort: Number(env('SIP_PORT', '5060')),
  transport: env('SIP_TRANSPORT', 'udp'),
  localPort: Number(env('SIP_LOCAL_PORT', '5060')),
  rtpPortMin: Number(env('SIP_RTP_MIN', '10000')),
  rtpPortMax: Number(env('SIP_RTP_MAX', '10100')),
  accounts: [{ extension: env('SIP_EXTENSION'), password: env('SIP_PASSWORD') }],
})

sip.on('registration', (e) => console.log(`registration ${e.account} ${e.state}${e.code ? ` (${e.code})` : ''}`))
sip.on('error', (e) => console.error(`error ${e.message}`))
sip.on('incoming_call', async (e) => {
  console.log(`incoming call ${e.callId} from ${e.from}`)
  try {
    await sip.answer(e.callId)
    await sip.playTone(e.callId, { frequency: [440, 620], durationMs: 2000 })
    await sip.hangup(e.callId)
  } catch (err) {
    console.error(`call ${e.callId}: ${err.message}`) // e.g. the caller hung up first
  }
})
sip.on('call_state', (e) => console.log(`call ${e.callId} ${e.state}${e.code ? ` (${e.code} ${e.reason})` : ''}`))

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, async () => {
    console.log(`${signal}: un-registering and stopping`)
    await sip.stop()
    process.exit(0)
  })
}

sip.start().then(
  () => console.log(`listening on ${JSON.stringify(sip.localAddress())}`),
  (err) => {
    console.error(`start failed: ${err.message}`)
    process.exit(1)
  },
)
