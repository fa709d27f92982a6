#!/usr/bin/env python3
"""Auto-answering PJSIP UAS for the load bench (pjsua2, the `pjsua2-python` wheel).

Binds UDP on 127.0.0.1:<port>, answers every incoming INVITE with 200 OK and lets the remote end
hang up. Null audio device, no worker threads: the main thread polls libHandleEvents(10), so every
SWIG callback runs on this thread. Prints READY once the transport is up. Runs until SIGTERM/SIGINT
or --max-seconds.

The stock wheel is built with PJSUA_MAX_CALLS=4 and the select ioqueue (64 handles): calls beyond 4
get 486, and fast call churn (>= ~100 cps) makes it abort in pj_ioqueue_register_sock2. The bench
runner records that as "died"; this script does not try to hide it.

usage: pjsua2_uas.py --port 15070 [--max-calls 10000] [--max-seconds 120] [--log-level 0]
"""
import argparse
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
        # No audio device: nothing to connect. Keeping the callback avoids pjsua2's default
        # auto-connect to the (null) sound device.
        pass


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
    acc.create(acfg, True)  # default account: takes every incoming call

    print("READY pjsua2 %s maxCalls(requested)=%d" % (ep.libVersion().full, args.max_calls), flush=True)

    deadline = time.monotonic() + args.max_seconds
    while not stop and time.monotonic() < deadline:
        ep.libHandleEvents(10)

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
