#!/usr/bin/env python3
"""Media bench, PJSIP as the UA under test (pjsua2, the `pjsua2-python` wheel).

Auto-answers every incoming INVITE and connects a 440 Hz pj.ToneGenerator to each call's audio
(G.711 both ways: it also receives the caller's tone). Null sound device, kept open
(`sndAutoCloseTime = -1`: otherwise the null device closes after 1 s idle and stops clocking the
conference bridge, so the calls' streams stop sending). No worker threads: the main thread polls
libHandleEvents(10); the media clock runs on the null device's thread. Prints READY once bound;
runs until SIGTERM/SIGINT, stdin EOF or --max-seconds.

The stock wheel is built with PJSUA_MAX_CALLS=4: calls beyond 4 get 486 Busy Here. The driver
records that; this script does not hide it.

usage: pjsua2_media_uas.py --port 15170 [--rtp-min 20000] [--max-seconds 300]
"""
import argparse
import os
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
    def __init__(self, acc, call_id, registry):
        pj.Call.__init__(self, acc, call_id)
        self.registry = registry
        self.tone = None

    def onCallState(self, prm):
        try:
            ci = self.getInfo()
        except pj.Error:
            return
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.registry.pop(ci.id, None)

    def onCallMediaState(self, prm):
        try:
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    am = self.getAudioMedia(i)
                    if self.tone is None:
                        self.tone = pj.ToneGenerator()
                        self.tone.createToneGenerator(8000, 1)
                        td = pj.ToneDesc()
                        td.freq1 = 440
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
    def __init__(self, registry):
        pj.Account.__init__(self)
        self.registry = registry
        self.answered = 0
        self.failed = 0

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId, self.registry)
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
    ap.add_argument("--rtp-min", type=int, default=20000)
    ap.add_argument("--max-calls", type=int, default=10000)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--log-level", type=int, default=0)
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = args.max_calls  # the wheel clamps this to 4
    cfg.logConfig.level = args.log_level
    cfg.logConfig.consoleLevel = args.log_level
    cfg.medConfig.noVad = True
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
    acc = Account(registry)
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:uas@%s:%d" % (args.host, args.port)
    acfg.mediaConfig.transportConfig.boundAddress = args.host
    acfg.mediaConfig.transportConfig.publicAddress = args.host
    acfg.mediaConfig.transportConfig.port = args.rtp_min
    acc.create(acfg, True)

    print("READY pjsua2 %s (media) maxCalls(requested)=%d" % (ep.libVersion().full, args.max_calls), flush=True)

    deadline = time.monotonic() + args.max_seconds
    stdin_open = True
    while not stop and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        if stdin_open:
            r, _, _ = select.select([sys.stdin], [], [], 0)
            if r:
                line = sys.stdin.readline()
                if not line:
                    stdin_open = False
                    break
                # Line commands of the sip-native UAS: no media clock figures here.
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
    except Exception as exc:
        print("shutdown error: %s" % exc, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
