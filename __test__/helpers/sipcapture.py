#!/usr/bin/env python3
"""Captures the SIP datagrams (UDP, IPv4) on one interface and prints one JSON line for each:
its time (ms), direction ('out' for what this host sent, seen before any loss further on), the
addresses, the first line, the topmost Via branch, CSeq and Call-ID. RTP it receives is only
counted: on SIGTERM a last line gives the packets and how many came after a later one of their
stream (reordered). Run as root, inside the namespace whose interface is watched. Used by __test__/helpers/netns.js
(the test machines have no tcpdump)."""
import json
import re
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def header(text, name, compact):
    m = re.search(r"^(?:%s|%s)[ \t]*:[ \t]*(.*)$" % (name, compact), text, re.I | re.M)
    return m.group(1).strip() if m else None


def main():
    dev = sys.argv[1]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((dev, 0))
    rtp = {"packets": 0, "reordered": 0}
    highest = {}  # SSRC -> highest sequence number seen (mod 2^16)

    def done(*_):
        print(json.dumps({"rtp": rtp}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        frame, addr = s.recvfrom(65535)
        if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != 0x0800:
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 17:
            continue
        ip = frame[14:]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        payload = ip[ihl + 8:]
        head = payload[:16]
        if payload[:1] and payload[0] >> 6 == 2 and len(payload) >= 12 and not 200 <= payload[1] <= 206:
            if addr[2] != PACKET_OUTGOING:
                seq, ssrc = struct.unpack("!H", payload[2:4])[0], payload[8:12]
                rtp["packets"] += 1
                top = highest.get(ssrc)
                if top is not None and 0 < (top - seq) % 65536 < 32768:
                    rtp["reordered"] += 1
                else:
                    highest[ssrc] = seq
            continue
        if not (head.startswith(b"SIP/2.0") or re.match(rb"^[A-Z]+ sip", head)):
            continue
        text = payload.decode("utf-8", "replace")
        via = header(text, "Via", "v") or ""
        branch = re.search(r";\s*branch=([^;,\s]+)", via)
        print(json.dumps({
            "t": time.time() * 1000,
            "dir": "out" if addr[2] == PACKET_OUTGOING else "in",
            "src": "%s:%d" % (src, sport),
            "dst": "%s:%d" % (dst, dport),
            "line": text.split("\r\n", 1)[0],
            "branch": branch.group(1) if branch else None,
            "cseq": header(text, "CSeq", "CSeq"),
            "callId": header(text, "Call-ID", "i"),
        }), flush=True)


if __name__ == "__main__":
    main()
