//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, hidden from the
//! docs): one function per parser of network bytes, taking the raw input and driving the
//! parser the way the engine does. Each must return without panicking, whatever the bytes.
//! Adding a target: a function here and a four-line file in `fuzz/fuzz_targets/`.

use crate::call::{redirect, reliable, session_timer};
use crate::config::SrtpMode;
use crate::media::srtp::LocalKeys;
use crate::media::{dtmf, rtp, stats, wav};
use crate::sdes;
use crate::sdp;
use crate::sip::{digest, guard, hangup_headers, replaces, sipfrag};
use crate::transport::{admission, framing, stun};
use rsipstack::sip::SipMessage;
use std::net::{IpAddr, Ipv4Addr};

/// Input as text, as the header parsers see it (rsipstack hands them `&str`).
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A UDP datagram (or WebSocket message: same guard): classify, parse, and the 400 built for it.
pub fn sip_datagram(data: &[u8]) {
    let _ = guard::classify(data, guard::MAX_DATAGRAM);
    if let Err(why) = guard::parse_checked(data) {
        let _ = guard::bad_request_for(data, why);
    }
}

/// A TCP/TLS byte stream, cut into reads at the first byte's value so that framing across
/// partial reads is exercised too; a first byte of 128 or more also sets a small
/// `maxMessageSize` (64 bytes per step above 127), so the 513 path is reached.
pub fn stream_framing(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(cut).max(1);
    let max = match cut {
        128.. => 64 * usize::from(cut - 127),
        _ => framing::MAX_MESSAGE,
    };
    let mut framer = framing::Framer::new(max);
    for chunk in rest.chunks(step) {
        framer.push(chunk);
        while let Ok(Some(_)) = framer.next_frame() {}
    }
}

/// An SDP offer: parsed, negotiated (SRTP optional, so that `a=crypto` lines are read too),
/// and answered.
pub fn sdp_offer(data: &[u8]) {
    let Ok(offer) = sdp::parse(&text(data)) else {
        return;
    };
    if let Ok(negotiated) = sdp::negotiate(&offer, SrtpMode::Optional) {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let keys = LocalKeys::generate();
        let answer = sdp::build_answer(1, 1, local, 4000, &negotiated, &keys);
        // Our own answer must parse back.
        let _ = sdp::parse(&answer);
    }
}

/// An RTP packet header.
pub fn rtp_header(data: &[u8]) {
    let _ = rtp::is_rtcp(data);
    let _ = rtp::parse(data);
}

/// A compound RTCP packet.
pub fn rtcp(data: &[u8]) {
    let _ = stats::parse_rtcp(data);
}

/// A STUN Binding response.
pub fn stun_response(data: &[u8]) {
    let _ = stun::is_stun(data);
    let _ = stun::transaction_id(data);
    let _ = stun::parse_binding_response(data);
}

/// RFC 4733 telephone-event payloads: the input is cut into 4-byte payloads fed to one
/// receiver with a timestamp taken from the bytes, as a stream of packets.
pub fn dtmf_rtp_event(data: &[u8]) {
    let mut receiver = dtmf::DtmfReceiver::new();
    for (i, payload) in data.chunks(6).enumerate() {
        let ts = payload.first().map_or(0, |b| u32::from(*b) << (i % 24));
        let _ = receiver.on_packet(ts, payload.get(1..).unwrap_or_default());
    }
}

/// An INFO `application/dtmf-relay` body.
pub fn dtmf_info(data: &[u8]) {
    let _ = dtmf::parse_dtmf_relay(&text(data));
}

/// A WWW-Authenticate / Proxy-Authenticate value, and a whole 401/407 answered by the
/// authenticator (as the registration and call tasks do).
pub fn digest_challenge(data: &[u8]) {
    if let Ok(challenge) = digest::Challenge::parse(&text(data)) {
        let _ = challenge.chosen_qop();
    }
    if let Ok(SipMessage::Response(resp)) = guard::parse_checked(data) {
        let mut auth = crate::sip::auth::Authenticator::new("alice", "secret");
        let _ = auth.answer(&resp, "REGISTER", "sip:example.com");
        let _ = auth.answer(&resp, "REGISTER", "sip:example.com");
    }
}

/// A WAV file's header and samples (read from a file, as `playFile` does).
pub fn wav_file(data: &[u8]) {
    let path = std::env::temp_dir().join(format!("sipua-fuzz-{}.wav", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = wav::read_wav_mono(&path, 8000);
    }
}

/// A NOTIFY's `message/sipfrag` body with a Subscription-State taken from its last line.
pub fn sipfrag(data: &[u8]) {
    let state = text(data);
    let _ = sipfrag::progress(data, state.lines().last());
}

/// A Replaces header value and a Refer-To carrying one.
pub fn replaces(data: &[u8]) {
    let value = text(data);
    let _ = replaces::Replaces::parse(&value);
    let _ = replaces::unescape(&value);
    if let Some((_, params)) = replaces::split_refer_to(&value) {
        for (_, v) in params {
            let _ = replaces::unescape(&v).and_then(|v| replaces::Replaces::parse(&v));
        }
    }
}

/// A Reason header value (RFC 3326).
pub fn reason(data: &[u8]) {
    let _ = hangup_headers::reason_text(&text(data));
}

/// Session-Expires and Min-SE values (RFC 4028), alone and in a whole message.
pub fn session_timer(data: &[u8]) {
    let _ = session_timer::parse_session_expires(&text(data));
    if let Ok(msg) = guard::parse_checked(data) {
        let headers = match &msg {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        };
        let _ = session_timer::session_expires_of(headers);
        let _ = session_timer::min_se_of(headers);
        let cfg = crate::config::SessionTimerConfig {
            mode: crate::config::SessionTimerMode::Optional,
            expires_sec: 1800,
            min_expires_sec: 90,
            refresh: None,
        };
        let _ = session_timer::decide_as_uas(&cfg, headers);
    }
}

/// A PRACK's RAck value (RFC 3262).
pub fn rack(data: &[u8]) {
    let _ = reliable::parse_rack(&text(data));
}

/// A 3xx's Contact values (lines of the input), sorted by q.
pub fn contact_q(data: &[u8]) {
    let values: Vec<String> = text(data).lines().map(str::to_owned).collect();
    let _ = redirect::contacts_by_q(&values);
}

/// An `a=crypto` value (RFC 4568): what we accept must format back into a line we accept.
pub fn sdes_crypto(data: &[u8]) {
    if let Ok(a) = sdes::parse(&text(data)) {
        let line = sdes::format(a.tag, a.suite, &a.key);
        assert!(
            sdes::parse(&line).is_ok(),
            "our own line is refused: {line}"
        );
    }
}

/// An `acceptFrom` CIDR (from config) matched against an address, and the out-of-dialog check
/// the admission runs on every datagram from the network.
pub fn admission(data: &[u8]) {
    let value = text(data);
    let (cidr, addr) = value.split_once(' ').unwrap_or((&value, "127.0.0.1"));
    if let (Ok(cidr), Ok(ip)) = (admission::Cidr::parse(cidr), addr.parse::<IpAddr>()) {
        let _ = cidr.contains(ip);
    }
    if let Some(method) = admission::out_of_dialog_method(data) {
        let _ = admission::creates_dialog(method);
        let _ = admission::forbidden_for(data);
    }
}
