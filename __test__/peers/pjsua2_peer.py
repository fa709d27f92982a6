#!/usr/bin/env python3
"""A controllable PJSIP phone for the node:test suites (pjsua2, null audio device).

Commands: one per line on stdin, either JSON ({"cmd": "call", "uri": "sip:..."}) or plain words
("call sip:..."). Events: one JSON object per line on stdout ({"event": "ready", "port": 5062}).
pjsua's own log goes to stderr.

  call <uri>                 make a call (one at a time, unless --multi); it becomes the current call
  answer [code]              answer the incoming call (default 200)
  hangup                     end the call (CANCEL/BYE/603 as pjsua decides)
  select <id>                make call <id> (pjsua's call id, the `id` of its events) the current one
  xfer <uri>                 blind transfer of the current call (REFER); transfer_status events follow
  xfer_replaces <id>         attended transfer: REFER the current call's peer to call <id>'s peer
                             with Replaces naming call <id>
  play_tone <hz> <ms> [vol]  ToneGenerator on the call (vol: pjmedia tone volume, 0 = default)
  play_file <path>           AudioMediaPlayer of a WAV on the call (no loop)
  stop_play                  stop the tone/file
  record <path>              AudioMediaRecorder of what the call receives -> WAV (8 kHz mono 16-bit)
  stop_record
  send_dtmf <digits> [method] call.dialDtmf (RFC 2833) or method "info" (SIP INFO)
  hold / unhold              re-INVITE with a=sendonly / a=sendrecv (call.setHold / reinvite UNHOLD)
  stats                      emits {"event":"stats", ...} of the call's audio stream
  quit

Transports: --transport udp|tcp|tls on --host 127.0.0.1 or ::1 (TLS: --ca-file to verify the
server with --verify-server, --cert-file/--key-file as its own certificate, which a TLS listener
needs). With --registrar it registers (digest --username/--password) and reports reg_state.

Every command acts on the current call: the last one made, received, created by a transfer or
taken over by an INVITE with Replaces, until it ends (then another live call, if any). With
--multi a peer holds several calls (an incoming call while one is up is not answered 486). Tones
and recordings are per call: they follow the call they were started on and stop with it.

Events: ready{port,uri}, reg_state{code,reason,expiration,active}, incoming{id,from,to,call_id}, call_state{id,state,code,reason,role},
transfer_request{id,dst}, transfer_status{id,code,reason,final}, replaced{id,new_id},
media_active{dir}, media_state{status,dir}, dtmf{digit,method,duration}, tone_done, stats{...},
error{message}, stopped{reason}.

Runs with threadCnt=0: pjsua's events are polled by libHandleEvents(10) on the main thread, so
every callback and every command runs on that one thread. stdin is read by a thread that only
queues lines. Exits on EOF, quit, SIGTERM or after --max-seconds.
"""
import argparse
import json
import os
import queue
import signal
import sys
import threading
import time

import pjsua2 as pj


def emit(event, **kw):
    kw = {"event": event, **kw}
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


class Peer:
    def __init__(self, args):
        self.args = args
        self.call = None  # the current call
        self.calls = {}  # pjsua call id -> Call, while it lives
        self.keep = []  # Call objects handed to pjsua before they have an id
        self.acc = None
        self.media_call = None  # the call the tone / player / recorder are attached to
        self.tone = None
        self.player = None
        self.recorder = None
        self.tone_end = None
        self.pending_record = None
        self.quit = False


PEER = None


def audio_media(call):
    """The call's active audio media, or None."""
    try:
        ci = call.getInfo()
    except pj.Error:
        return None
    for i, mi in enumerate(ci.media):
        if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in (
            pj.PJSUA_CALL_MEDIA_ACTIVE,
            pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
            pj.PJSUA_CALL_MEDIA_LOCAL_HOLD,
        ):
            try:
                return call.getAudioMedia(i)
            except pj.Error:
                return None
    return None


MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
DIRS = {0: "none", 1: "sendonly", 2: "recvonly", 3: "sendrecv"}


def adopt(call):
    """Makes `call` the current one and keeps it (and its Python object) while it lives."""
    PEER.call = call
    try:
        PEER.calls[call.getId()] = call
    except pj.Error:
        pass


class Call(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID):
        pj.Call.__init__(self, acc, call_id)
        self.connected = set()
        self.xfer_from = None  # the call whose REFER created this one

    def onCallTransferRequest(self, prm):
        # accept (202, pjsua's default) and follow the new call with our own Call object
        emit("transfer_request", id=self.getId(), dst=prm.dstUri)
        new = Call(PEER.acc)
        new.xfer_from = self
        PEER.keep.append(new)  # pjsua holds only the C++ side: keep the Python object alive
        prm.newCall = new

    def onCallTransferStatus(self, prm):
        emit("transfer_status", id=self.getId(), code=prm.statusCode, reason=prm.reason, final=prm.finalNotify)
        # as pjsua's app does: a transfer that succeeded ends our call with the transferee
        prm.cont = not prm.finalNotify
        if prm.finalNotify and prm.statusCode // 100 == 2:
            try:
                self.hangup(pj.CallOpParam())
            except pj.Error:
                pass

    def onCallReplaced(self, prm):
        new = Call(PEER.acc, prm.newCallId)
        prm.newCall = new
        emit("replaced", id=self.getId(), new_id=prm.newCallId)
        adopt(new)

    def onCallState(self, prm):
        ci = self.getInfo()
        state = {
            pj.PJSIP_INV_STATE_NULL: "null",
            pj.PJSIP_INV_STATE_CALLING: "calling",
            pj.PJSIP_INV_STATE_INCOMING: "incoming",
            pj.PJSIP_INV_STATE_EARLY: "early",
            pj.PJSIP_INV_STATE_CONNECTING: "connecting",
            pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
            pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
        }.get(ci.state, str(ci.state))
        if self.getId() not in PEER.calls and ci.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            adopt(self)  # a call pjsua made for a REFER we accepted
        emit("call_state", id=self.getId(), state=state, code=ci.lastStatusCode, reason=ci.lastReason,
             role="uac" if ci.role == pj.PJSIP_ROLE_UAC else "uas", call_id=ci.callIdString)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if PEER.media_call is self:
                stop_media(PEER)
            PEER.calls.pop(self.getId(), None)
            if PEER.call is self:
                PEER.call = next(iter(PEER.calls.values()), None)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                emit("media_state", status=MEDIA_STATUS.get(mi.status, str(mi.status)), dir=DIRS.get(mi.dir, str(mi.dir)))
        am = audio_media(self)
        if am is not None:
            emit("media_active", id=self.getId())
            if PEER.media_call is not None and PEER.media_call is not self:
                return
            # a recorder asked for before media was up
            if PEER.pending_record:
                path = PEER.pending_record
                PEER.pending_record = None
                start_record(PEER, path)
            # a re-INVITE recreates the stream: reconnect what was playing / recording
            reconnect(PEER, am)

    def onDtmfDigit(self, prm):
        # with onDtmfEvent also overridden, pjsua2 2.15 calls onDtmfEvent only; keep for older
        emit("dtmf_digit", digit=prm.digit)

    def onDtmfEvent(self, prm):
        method = {0: "rfc2833", 1: "info", 2: "rfc2833"}.get(prm.method, str(prm.method))
        # pjsua 2.15: flags PJMEDIA_STREAM_DTMF_IS_END (1) marks the end of an RFC 2833 event;
        # the callback fires at the start (flags 0) and at the end. Report the digit once: at the
        # start, with method info (INFO has no start/end)
        if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO or prm.flags == 0:
            emit("dtmf", digit=prm.digit, method=method, duration=prm.duration, flags=prm.flags)
        else:
            emit("dtmf_end", digit=prm.digit, method=method, duration=prm.duration, flags=prm.flags)


class Account(pj.Account):
    def onRegState(self, prm):
        info = self.getInfo()
        emit("reg_state", code=prm.code, reason=prm.reason, expiration=prm.expiration,
             active=info.regIsActive)

    def onIncomingCall(self, prm):
        c = Call(self, prm.callId)
        ci = c.getInfo()
        if PEER.call is not None and not PEER.args.multi:
            op = pj.CallOpParam()
            op.statusCode = 486
            c.hangup(op)
            emit("error", message="busy: a call is already up; answered 486")
            return
        adopt(c)
        emit("incoming", id=c.getId(), **{"from": ci.remoteUri, "to": ci.localUri, "call_id": ci.callIdString})
        op = pj.CallOpParam()
        if PEER.args.auto_answer:
            op.statusCode = 200
        else:
            op.statusCode = 180
        c.answer(op)


def stop_media(peer):
    for name in ("tone", "player"):
        obj = getattr(peer, name)
        if obj is not None:
            try:
                if name == "tone":
                    obj.stop()
            except pj.Error:
                pass
            setattr(peer, name, None)
    if peer.recorder is not None:
        peer.recorder = None  # deleting the recorder closes (finalises) the WAV
        emit("record_stopped")
    peer.tone_end = None
    peer.media_call = None


def reconnect(peer, am):
    try:
        if peer.tone is not None:
            peer.tone.startTransmit(am)
        if peer.player is not None:
            peer.player.startTransmit(am)
        if peer.recorder is not None:
            am.startTransmit(peer.recorder)
    except pj.Error as e:
        emit("error", message="reconnect: " + e.info())


def start_record(peer, path):
    am = audio_media(peer.call) if peer.call else None
    if am is None:
        peer.pending_record = path
        emit("record_pending", path=path)
        return
    rec = pj.AudioMediaRecorder()
    rec.createRecorder(path)
    am.startTransmit(rec)
    peer.recorder = rec
    peer.media_call = peer.call
    emit("recording", path=path)


def handle(peer, ep, acc, line):
    line = line.strip()
    if not line:
        return
    if line.startswith("{"):
        msg = json.loads(line)
        cmd = msg.get("cmd")
        argv = msg.get("args", [])
        if not isinstance(argv, list):
            argv = [argv]
        argv = [str(a) for a in argv]
    else:
        parts = line.split()
        cmd, argv = parts[0], parts[1:]
    try:
        if cmd == "quit":
            peer.quit = True
        elif cmd == "call":
            if peer.call is not None and not peer.args.multi:
                raise RuntimeError("a call is already up")
            c = Call(acc)
            op = pj.CallOpParam(True)
            c.makeCall(argv[0], op)
            adopt(c)
            emit("calling", id=c.getId(), uri=argv[0])
        elif cmd == "select":
            if int(argv[0]) not in peer.calls:
                raise RuntimeError("no call %s" % argv[0])
            peer.call = peer.calls[int(argv[0])]
        elif cmd == "xfer":
            need(peer).xfer(argv[0], pj.CallOpParam(True))
        elif cmd == "xfer_replaces":
            other = peer.calls.get(int(argv[0]))
            if other is None:
                raise RuntimeError("no call %s" % argv[0])
            need(peer).xferReplaces(other, pj.CallOpParam(True))
        elif cmd == "answer":
            op = pj.CallOpParam()
            op.statusCode = int(argv[0]) if argv else 200
            need(peer).answer(op)
        elif cmd == "hangup":
            if peer.call is not None:
                peer.call.hangup(pj.CallOpParam())
        elif cmd == "play_tone":
            freq, ms = int(argv[0]), int(argv[1])
            vol = int(argv[2]) if len(argv) > 2 else 0
            am = audio_media(need(peer))
            if am is None:
                raise RuntimeError("no active audio media")
            # a fresh generator per tone: re-using one queues the new tone behind the old state
            if peer.tone is not None:
                try:
                    peer.tone.stop()
                    peer.tone.stopTransmit(am)
                except pj.Error:
                    pass
                peer.tone = None
            peer.tone = pj.ToneGenerator()
            peer.tone.createToneGenerator(8000, 1)
            peer.tone.startTransmit(am)
            td = pj.ToneDesc()
            td.freq1 = freq
            td.freq2 = 0
            td.on_msec = ms
            td.off_msec = 0
            td.volume = vol
            tv = pj.ToneDescVector()
            tv.append(td)
            peer.tone.play(tv, False)
            peer.media_call = peer.call
            peer.tone_end = time.monotonic() + ms / 1000.0
            emit("playing", freq=freq, ms=ms)
        elif cmd == "play_file":
            am = audio_media(need(peer))
            if am is None:
                raise RuntimeError("no active audio media")
            p = pj.AudioMediaPlayer()
            p.createPlayer(argv[0], pj.PJMEDIA_FILE_NO_LOOP)
            p.startTransmit(am)
            peer.player = p
            emit("playing", path=argv[0])
        elif cmd == "stop_play":
            if peer.tone is not None:
                peer.tone.stop()
            peer.player = None
            peer.tone_end = None
            emit("play_stopped")
        elif cmd == "record":
            if peer.recorder is not None:
                raise RuntimeError("already recording")
            start_record(peer, argv[0])
        elif cmd == "stop_record":
            peer.pending_record = None
            if peer.recorder is not None:
                am = audio_media(peer.call) if peer.call else None
                if am is not None:
                    try:
                        am.stopTransmit(peer.recorder)
                    except pj.Error:
                        pass
                peer.recorder = None
            emit("record_stopped")
        elif cmd == "send_dtmf":
            c = need(peer)
            if len(argv) > 1 and argv[1] == "info":
                prm = pj.CallSendDtmfParam()
                prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                prm.digits = argv[0]
                prm.duration = 160
                c.sendDtmf(prm)
            else:
                c.dialDtmf(argv[0])
            emit("dtmf_sent", digits=argv[0])
        elif cmd == "hold":
            need(peer).setHold(pj.CallOpParam(True))
        elif cmd == "unhold":
            op = pj.CallOpParam(True)
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            need(peer).reinvite(op)
        elif cmd == "stats":
            c = need(peer)
            ci = c.getInfo()
            idx = next((i for i, mi in enumerate(ci.media) if mi.type == pj.PJMEDIA_TYPE_AUDIO), -1)
            if idx < 0:
                raise RuntimeError("no audio media")
            st = c.getStreamStat(idx).rtcp
            si = c.getStreamInfo(idx)
            emit("stats", tx_pkt=st.txStat.pkt, rx_pkt=st.rxStat.pkt, rx_loss=st.rxStat.loss,
                 rx_discard=st.rxStat.discard, codec=si.codecName, clock=si.codecClockRate,
                 remote=si.remoteRtpAddress, dir=DIRS.get(si.dir, str(si.dir)))
        else:
            raise RuntimeError("unknown command " + cmd)
    except pj.Error as e:
        emit("error", message="%s: %s" % (cmd, e.info()))
    except Exception as e:  # noqa: BLE001 - report, keep running
        emit("error", message="%s: %s" % (cmd, e))


def need(peer):
    if peer.call is None:
        raise RuntimeError("no call")
    return peer.call


def main():
    global PEER
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", default="pjsua")
    ap.add_argument("--auto-answer", action="store_true")
    ap.add_argument("--multi", action="store_true", help="several calls at once (transfers)")
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--log-level", type=int, default=3)
    ap.add_argument("--codecs", default="PCMU/8000,PCMA/8000",
                    help="audio codecs to enable, in priority order; the others are disabled")
    ap.add_argument("--no-vad", action="store_true", default=True)
    ap.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
    ap.add_argument("--host", default="127.0.0.1",
                    help="SIP address to bind and advertise (127.0.0.1 or ::1; RTP stays on 127.0.0.1)")
    ap.add_argument("--ca-file", help="TLS: CA list to verify the server with")
    ap.add_argument("--cert-file", help="TLS: our certificate (needed to accept TLS connections)")
    ap.add_argument("--key-file", help="TLS: the key of --cert-file")
    ap.add_argument("--verify-server", action="store_true", help="TLS: refuse a server certificate that does not verify")
    ap.add_argument("--registrar", help="registrar URI, e.g. sip:127.0.0.1:5061;transport=tls; registers when given")
    ap.add_argument("--domain", default="127.0.0.1", help="domain of the address of record when registering")
    ap.add_argument("--username", help="digest user name (default: --user)")
    ap.add_argument("--password", default="")
    ap.add_argument("--srtp", choices=["off", "optional", "mandatory"], default="off",
                    help="SDES SRTP (AccountConfig.mediaConfig.srtpUse); keys accepted over any transport")
    ap.add_argument("--srtp-cryptos", default="",
                    help="suites PJSIP offers/accepts, in order, e.g. AES_CM_128_HMAC_SHA1_32")
    args = ap.parse_args()
    PEER = Peer(args)

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = 4
    cfg.uaConfig.userAgent = "pjsua2-peer"
    cfg.logConfig.level = args.log_level
    cfg.logConfig.consoleLevel = args.log_level
    cfg.medConfig.noVad = True  # send a continuous stream: silence is not suppressed
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.channelCount = 1
    cfg.medConfig.ecTailLen = 0  # no echo canceller: it would colour what is recorded
    # pjsua closes an idle sound device after 1 s; the null device is the clock that drives the
    # streams (and their DTMF), so a call that plays nothing would stop sending mid-digit.
    cfg.medConfig.sndAutoCloseTime = -1
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()

    v6 = ":" in args.host
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = args.host
    tcfg.publicAddress = args.host
    tcfg.port = args.port
    if args.transport == "tls":
        tcfg.tlsConfig.CaListFile = args.ca_file or ""
        tcfg.tlsConfig.certFile = args.cert_file or ""
        tcfg.tlsConfig.privKeyFile = args.key_file or ""
        tcfg.tlsConfig.verifyServer = bool(args.verify_server)
    kind = {
        ("udp", False): pj.PJSIP_TRANSPORT_UDP, ("udp", True): pj.PJSIP_TRANSPORT_UDP6,
        ("tcp", False): pj.PJSIP_TRANSPORT_TCP, ("tcp", True): pj.PJSIP_TRANSPORT_TCP6,
        ("tls", False): pj.PJSIP_TRANSPORT_TLS, ("tls", True): pj.PJSIP_TRANSPORT_TLS6,
    }[(args.transport, v6)]
    tid = ep.transportCreate(kind, tcfg)
    port = ep.transportGetInfo(tid).localName.split(":")[-1]
    ep.libStart()

    wanted = [c.strip() for c in args.codecs.split(",") if c.strip()]
    for ci in ep.codecEnum2():
        cid = ci.codecId  # e.g. "PCMU/8000/1"
        prio = 0
        for i, w in enumerate(wanted):
            if cid.lower().startswith(w.lower()):
                prio = 255 - i
        ep.codecSetPriority(cid, prio)

    uri_host = "[%s]" % args.host if v6 else args.host
    acfg = pj.AccountConfig()
    acfg.sipConfig.transportId = tid
    if args.registrar:
        acfg.idUri = "sip:%s@%s" % (args.user, args.domain)
        acfg.regConfig.registrarUri = args.registrar
        acfg.regConfig.registerOnAdd = True
        acfg.regConfig.retryIntervalSec = 0  # a failed registration is reported, not retried
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", args.username or args.user, 0, args.password))
    else:
        acfg.idUri = "sip:%s@%s:%s" % (args.user, uri_host, port)
        acfg.regConfig.registerOnAdd = False
    # RTP stays IPv4 with SIP on ::1: this wheel's pjsua_acc_add aborts on any ipv6Use value
    # (sipConfig or mediaConfig: assertion "ipv6_sip_use == PJSUA_IPV6_DISABLED"), and without
    # it a media address of ::1 does not resolve (IPv4 family)
    media_host = "127.0.0.1" if v6 else args.host
    acfg.mediaConfig.transportConfig.boundAddress = media_host
    acfg.mediaConfig.transportConfig.publicAddress = media_host
    if args.srtp != "off":
        acfg.mediaConfig.srtpUse = {"optional": pj.PJMEDIA_SRTP_OPTIONAL,
                                    "mandatory": pj.PJMEDIA_SRTP_MANDATORY}[args.srtp]
        # 0: SDES keys over UDP too (the default 1 asks for TLS/sips and fails the call otherwise)
        acfg.mediaConfig.srtpSecureSignaling = 0
        for name in [c.strip() for c in args.srtp_cryptos.split(",") if c.strip()]:
            crypto = pj.SrtpCrypto()
            crypto.name = name
            acfg.mediaConfig.srtpOpt.cryptos.append(crypto)
    acfg.natConfig.sdpNatRewriteUse = False
    acfg.natConfig.viaRewriteUse = False
    acfg.natConfig.contactRewriteUse = False
    acc = Account()
    acc.create(acfg)
    PEER.acc = acc

    lines = queue.Queue()

    def reader():
        for l in sys.stdin:
            lines.put(l)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()

    stop_reason = []
    signal.signal(signal.SIGTERM, lambda *_: stop_reason.append("sigterm"))
    emit("ready", port=int(port), uri=acfg.idUri)
    deadline = time.monotonic() + args.max_seconds
    reason = "quit"
    while True:
        ep.libHandleEvents(10)
        if PEER.tone_end is not None and time.monotonic() >= PEER.tone_end:
            PEER.tone_end = None
            emit("tone_done")
        try:
            while True:
                l = lines.get_nowait()
                if l is None:
                    PEER.quit = True
                    reason = "eof"
                    break
                handle(PEER, ep, acc, l)
                if PEER.quit:
                    break
        except queue.Empty:
            pass
        if stop_reason:
            reason = stop_reason[0]
            break
        if PEER.quit:
            break
        if time.monotonic() > deadline:
            reason = "max-seconds"
            break

    # tidy end: hang up, give the BYE a moment, close the recorder (finalises the WAV)
    if PEER.call is not None:
        try:
            PEER.call.hangup(pj.CallOpParam())
        except pj.Error:
            pass
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            ep.libHandleEvents(10)
    stop_media(PEER)
    PEER.call = None
    emit("stopped", reason=reason)
    try:
        ep.libDestroy()
    except pj.Error:
        pass
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
