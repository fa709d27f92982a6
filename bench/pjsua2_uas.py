#!/usr/bin/env python3
"""Auto-answering PJSIP UAS for the benches (pjsua2, the `pjsua2-python` wheel).

Binds UDP on 127.0.0.1:<port> and answers every incoming INVITE with 200 OK; the remote end hangs
up. Null audio device, no worker threads: the main thread polls libHandleEvents(10), so every SWIG
callback runs on this thread. Prints READY once the transport is up; runs until SIGTERM/SIGINT,
--max-seconds, or (with --stdin-commands) stdin EOF.

Call bench (bench/run.js): no media is connected. Media bench (bench/media.js, --tone 440): a
looping pj.ToneGenerator is connected to each call's audio (G.711 both ways) and the null sound
device is kept open (`sndAutoCloseTime = -1`: otherwise it closes after 1 s idle and stops clocking
the conference bridge, so the calls' streams stop sending).

The stock wheel is built with PJSUA_MAX_CALLS=4 and the select ioqueue (64 handles): calls beyond 4
get 486, and fast call churn (>= ~100 cps) makes it abort in pj_ioqueue_register_sock2. The bench
runners record that; this script does not try to hide it.

usage: pjsua2_uas.py --port 15070 [--tone 440 --rtp-min 20000 --stdin-commands]
                     [--max-calls 10000] [--max-seconds 120] [--log-level 0]
"""
import argparse
import select
import signal
import sys
import time

import pjsua2 as pj

stop = False


def on_signal(_signum, _frame):
    global stop
    stop = True


class Call(pj.Call):
    def __init__(self, acc, call_id, registry, tone_hz):
        pj.Call.__init__(self, acc, call_id)
        self.registry = registry
        self.tone_hz = tone_hz
        self.tone = None

    def onCallState(self, prm):
        try:
            ci = self.getInfo()
        except pj.Error:
            return
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Drop our reference; pjsua frees the call itself. Deleting inside the callback is
            # what the pjsua2 samples do as well, via the registry dict.
            self.registry.pop(ci.id, None)

    def onCallMediaState(self, prm):
        # Without a tone there is nothing to connect; keeping the callback avoids pjsua2's default
        # auto-connect to the (null) sound device.
        if not self.tone_hz:
            return
        try:
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    am = self.getAudioMedia(i)
                    if self.tone is None:
                        self.tone = pj.ToneGenerator()
                        self.tone.createToneGenerator(8000, 1)
                        td = pj.ToneDesc()
                        td.freq1 = self.tone_hz
                        td.freq2 = 0
                        td.on_msec = 20000  # pjmedia_tone_desc.on_msec is a short
                        td.off_msec = 0
                        tv = pj.ToneDescVector()
                        tv.append(td)
                        self.tone.play(tv, True)  # loop
                    self.tone.startTransmit(am)
        except pj.Error as exc:
            print("media error: %s" % exc.info(), file=sys.stderr, flush=True)


class Account(pj.Account):
    def __init__(self, registry, tone_hz):
        pj.Account.__init__(self)
        self.registry = registry
        self.tone_hz = tone_hz
        self.answered = 0
        self.failed = 0

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId, self.registry, self.tone_hz)
        self.registry[prm.callId] = call
        op = pj.CallOpParam()
        op.statusCode = 200
        try:
            call.answer(op)
            self.answered += 1
        except pj.Error:
            self.failed += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tone", type=int, default=0, help="Hz of a tone played to every call (0: no media)")
    ap.add_argument("--rtp-min", type=int, default=0, help="first RTP port (0: pjsua's default)")
    ap.add_argument("--stdin-commands", action="store_true", help="answer 'clock'/'stats' lines; stop at EOF")
    ap.add_argument("--max-calls", type=int, default=10000)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--log-level", type=int, default=0)
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    # The wheel silently clamps this to PJSUA_MAX_CALLS (4); a rebuilt pjproject honours it.
    cfg.uaConfig.maxCalls = args.max_calls
    cfg.logConfig.level = args.log_level
    cfg.logConfig.consoleLevel = args.log_level
    cfg.medConfig.noVad = True
    if args.tone:
        cfg.medConfig.sndAutoCloseTime = -1
    ep.libInit(cfg)

    tcfg = pj.TransportConfig()
    tcfg.port = args.port
    tcfg.boundAddress = args.host
    tcfg.publicAddress = args.host
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.audDevManager().setNullDev()
    ep.libStart()

    registry = {}
    acc = Account(registry, args.tone)
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:uas@%s:%d" % (args.host, args.port)
    acfg.mediaConfig.transportConfig.boundAddress = args.host
    acfg.mediaConfig.transportConfig.publicAddress = args.host
    if args.rtp_min:
        acfg.mediaConfig.transportConfig.port = args.rtp_min
    acc.create(acfg, True)  # default account: takes every incoming call

    media = " (media, %d Hz)" % args.tone if args.tone else ""
    print("READY pjsua2 %s%s maxCalls(requested)=%d" % (ep.libVersion().full, media, args.max_calls), flush=True)

    deadline = time.monotonic() + args.max_seconds
    while not stop and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        if args.stdin_commands:
            r, _, _ = select.select([sys.stdin], [], [], 0)
            if r:
                line = sys.stdin.readline()
                if not line:
                    break
                # Line commands of the sip-native bench UAS: no media clock figures here.
                if line.strip() == "clock":
                    print("CLOCK null", flush=True)
                elif line.strip() == "stats":
                    print('STATS {"calls": %d}' % len(registry), flush=True)

    print("STOP answered=%d failed=%d live=%d" % (acc.answered, acc.failed, len(registry)), flush=True)
    try:
        ep.hangupAllCalls()
        for _ in range(20):
            ep.libHandleEvents(10)
        registry.clear()
        acc.shutdown()
        ep.libDestroy()
    except Exception as exc:  # shutting down anyway
        print("shutdown error: %s" % exc, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
