//! SDP offer/answer for audio calls (RFC 3264 on RFC 4566).
//!
//! Why this shape: the call layer needs three answers from SDP — where to send RTP, with
//! which payload type, and in which direction — and must produce offers and answers that
//! every PBX and phone accepts. The syntax layer is the webrtc-rs `rtc-sdp` crate (the
//! family the design picked for RTP/SDP), which parses and prints RFC 4566 faithfully;
//! this module adds the SIP audio semantics on top: G.711 (PCMU/PCMA) plus RFC 4733
//! `telephone-event`, session-level `c=` inherited by the media, direction mirroring,
//! and the m-line layout rule of RFC 3264 section 6 (an answer has as many m-lines as the
//! offer, unsupported ones rejected with port 0), and SRTP keys by SDES (RFC 4568, the
//! `a=crypto` syntax in [`crate::sdes`]) as the `srtp` mode says.
//!
//! Everything here is pure: no sockets, no clock. Session ids and versions come from the
//! caller.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use crate::config::SrtpMode;
use crate::media::codec::AudioCodec;
use crate::media::srtp::{CryptoSuite, LocalKeys, SrtpParams};
use crate::media::{dtmf, MediaDirection, MediaParams};
use crate::sdes::{self, CryptoAttribute};

use rtc_sdp::description::common::{Address, Attribute, ConnectionInformation};
use rtc_sdp::description::media::{MediaDescription as RtcMedia, MediaName, RangedPort};
use rtc_sdp::description::session::{Origin, TimeDescription, Timing};
use rtc_sdp::SessionDescription as RtcSession;

/// The session name we write in `s=`.
const SESSION_NAME: &str = "sip-native";
/// The DTMF events we accept and send: digits, `*`, `#`, A-D and flash (RFC 4733).
const TELEPHONE_EVENT_FMTP: &str = "0-16";
/// Our packetisation time in milliseconds.
const PTIME: u32 = 20;
/// The `a=rtpmap` encoding name of RFC 4733 events.
const TELEPHONE_EVENT: &str = "telephone-event";
/// The dynamic payload type we offer telephone-event under (101 by convention: what PBXs and
/// phones pick, so their answers keep it).
const TELEPHONE_EVENT_PT: u8 = 101;
/// The m-line transports of plain RTP and of SRTP (RFC 3711 §12).
const AVP: &str = "RTP/AVP";
const SAVP: &str = "RTP/SAVP";

/// Why an SDP could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SdpError {
    /// The text is not valid SDP (the message comes from the parser).
    #[error("invalid SDP: {0}")]
    Syntax(String),
    /// The SDP has no `m=audio` line.
    #[error("SDP has no audio media")]
    NoAudio,
    /// An `m=` line's port is not a number in 0-65535.
    #[error("invalid media port `{0}`")]
    BadPort(String),
    /// Neither the audio media nor the session has a `c=` address.
    #[error("SDP has no connection address for the audio media")]
    NoConnectionAddress,
    /// The `c=` address is not an IP literal (FQDNs are not resolved here).
    #[error("unsupported connection address `{0}`")]
    BadAddress(String),
    /// The audio media offers no codec we implement (PCMU or PCMA at 8 kHz).
    #[error("no common codec (we support PCMU and PCMA)")]
    NoCommonCodec,
    /// The audio media has port 0: the peer rejected or disabled it.
    #[error("audio media rejected (port 0)")]
    MediaRejected,
    /// The audio media uses a transport we do not implement (`RTP/SAVPF`, ..., or
    /// `RTP/SAVP` with `srtp: 'off'`).
    #[error("unsupported media transport `{0}`")]
    UnsupportedTransport(String),
    /// SRTP is required (`RTP/SAVP`, or our `srtp: 'mandatory'`) and no `a=crypto` line has
    /// a suite and parameters we implement.
    #[error("no usable a=crypto line (we support AES_CM_128_HMAC_SHA1_80 and _32)")]
    NoUsableCrypto,
}

/// The audio media of a session description, with session-level values applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaDescription {
    /// Where the peer receives RTP: the media `c=` address, else the session one.
    pub address: IpAddr,
    /// The RTP port; 0 means the stream is rejected/disabled.
    pub port: u16,
    /// The transport, e.g. `RTP/AVP`.
    pub protocol: String,
    /// The payload types of the `m=` line, in the peer's order of preference.
    pub payload_types: Vec<u8>,
    /// `(payload type, encoding name, clock rate)` for each payload type of the `m=` line
    /// that has an `a=rtpmap` or a well-known static assignment, in `m=` order.
    pub codecs: Vec<(u8, String, u32)>,
    /// The media direction (media level wins over session level).
    pub direction: MediaDirection,
    /// `a=ptime`, in milliseconds.
    pub ptime: Option<u32>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub telephone_event_pt: Option<u8>,
    /// `a=rtcp-mux` is present.
    pub rtcp_mux: bool,
    /// The `a=crypto` lines we can use, in the peer's order (the others are skipped).
    pub crypto: Vec<CryptoAttribute>,
}

/// One `m=` line as written, kept so an answer can mirror the offer's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaLine {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// The port of the line (0: rejected).
    pub port: u16,
    /// The transport, e.g. `RTP/AVP`.
    pub protocol: String,
    /// The format list (payload types for RTP).
    pub formats: Vec<String>,
}

/// What the call layer needs from a remote SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionDescription {
    /// The `o=` session id.
    pub session_id: u64,
    /// The `o=` session version (it changes on every re-offer).
    pub session_version: u64,
    /// The first audio media.
    pub audio: MediaDescription,
    /// Every `m=` line in order.
    pub media_lines: Vec<MediaLine>,
    /// The index of [`audio`](Self::audio) in [`media_lines`](Self::media_lines).
    pub audio_index: usize,
}

/// The outcome of offer/answer: what our media session sends and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// The payload type of the chosen codec, as the peer numbers it.
    pub codec_pt: u8,
    /// The chosen audio codec.
    pub codec: AudioCodec,
    /// The peer's `telephone-event/8000` payload type, when it supports RFC 4733 DTMF.
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Our direction: what we put in an answer and whether we send and/or receive.
    pub direction: MediaDirection,
    /// The offer's `m=` lines, so [`build_answer`] can reject the others in place.
    pub media_lines: Vec<MediaLine>,
    /// The index of the audio line in [`media_lines`](Self::media_lines).
    pub audio_index: usize,
    /// Both sides do RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// The audio `m=` transport of the peer's SDP (`RTP/AVP` or `RTP/SAVP`), which an answer
    /// repeats.
    pub protocol: String,
    /// The peer's `a=crypto` line we took (its tag, suite and key); `None`: plain RTP.
    pub srtp: Option<CryptoAttribute>,
}

impl Negotiated {
    /// What the media session needs of this outcome, with our `keys` for SRTP.
    pub(crate) fn media_params(&self, keys: &LocalKeys) -> MediaParams {
        MediaParams {
            codec: self.codec,
            payload_type: self.codec_pt,
            telephone_event_pt: self.telephone_event_pt,
            remote: self.remote,
            direction: self.direction,
            rtcp_mux: self.rtcp_mux,
            srtp: self.srtp.as_ref().map(|c| SrtpParams {
                suite: c.suite,
                local: keys.for_suite(c.suite).clone(),
                remote: c.key.clone(),
            }),
        }
    }
}

/// Our offer: PCMU, PCMA, G.722 and telephone-event 101, 20 ms, rtcp-mux (RTCP also listens
/// on the next port, for peers that do not mux), with `direction` (`sendonly` to hold). With
/// SRTP, one `a=crypto` line per suite (tag 1: _80, tag 2: _32) with our `keys`, in an
/// `RTP/SAVP` m-line when mandatory, else `RTP/AVP` (RFC 4568 §7.1.1: best-effort SRTP that a
/// peer without SRTP answers in plain RTP).
pub(crate) fn build_offer(
    session_id: u64,
    version: u64,
    local_ip: IpAddr,
    rtp_port: u16,
    direction: MediaDirection,
    srtp: SrtpMode,
    keys: &LocalKeys,
) -> String {
    let codecs = AudioCodec::ALL.map(|c| (c.payload_type(), c));
    let protocol = match srtp {
        SrtpMode::Mandatory => SAVP,
        SrtpMode::Off | SrtpMode::Optional => AVP,
    };
    let mut audio = audio_media(
        rtp_port,
        protocol,
        &codecs,
        Some(TELEPHONE_EVENT_PT),
        direction,
    );
    audio.attributes.push(attr("rtcp-mux", None));
    if srtp != SrtpMode::Off {
        for (tag, suite) in (1..).zip(CryptoSuite::ALL) {
            let line = sdes::format(tag, suite, keys.for_suite(suite));
            audio.attributes.push(attr("crypto", Some(line)));
        }
    }
    session(session_id, version, local_ip, vec![audio]).marshal()
}

/// Our answer to an offer negotiated with [`negotiate`]: the chosen codec and
/// telephone-event (when offered) under the offer's payload types, the mirrored direction,
/// and every other `m=` line of the offer rejected with port 0. With SRTP, the offer's
/// transport and the tag and suite of the line we took, with our own key for it (RFC 4568
/// §7.1.3: each side sends under its own key).
pub(crate) fn build_answer(
    session_id: u64,
    version: u64,
    local_ip: IpAddr,
    rtp_port: u16,
    negotiated: &Negotiated,
    keys: &LocalKeys,
) -> String {
    let protocol = if negotiated.srtp.is_some() && negotiated.protocol.eq_ignore_ascii_case(SAVP) {
        SAVP
    } else {
        AVP
    };
    let mut audio = audio_media(
        rtp_port,
        protocol,
        &[(negotiated.codec_pt, negotiated.codec)],
        negotiated.telephone_event_pt,
        negotiated.direction,
    );
    if negotiated.rtcp_mux {
        audio.attributes.push(attr("rtcp-mux", None));
    }
    if let Some(c) = &negotiated.srtp {
        let line = sdes::format(c.tag, c.suite, keys.for_suite(c.suite));
        audio.attributes.push(attr("crypto", Some(line)));
    }
    let mut media = Vec::new();
    for (i, line) in negotiated.media_lines.iter().enumerate() {
        if i == negotiated.audio_index {
            media.push(audio.clone());
        } else {
            media.push(rejected_media(line));
        }
    }
    if negotiated.media_lines.is_empty() {
        media.push(audio);
    }
    session(session_id, version, local_ip, media).marshal()
}

/// Parses an SDP and extracts its first audio media.
///
/// Errors: [`SdpError::Syntax`] for text that is not SDP, [`SdpError::BadPort`],
/// [`SdpError::NoAudio`], [`SdpError::NoConnectionAddress`], [`SdpError::BadAddress`].
/// Never panics, whatever the input.
pub(crate) fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
    check_media_ports(sdp)?;
    let desc = RtcSession::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| SdpError::Syntax(e.to_string()))?;

    let media_lines: Vec<MediaLine> = desc
        .media_descriptions
        .iter()
        .map(|m| MediaLine {
            media: m.media_name.media.clone(),
            port: u16::try_from(m.media_name.port.value).unwrap_or(0),
            protocol: m.media_name.protos.join("/"),
            formats: m.media_name.formats.clone(),
        })
        .collect();
    let audio_index = desc
        .media_descriptions
        .iter()
        .position(|m| m.media_name.media.eq_ignore_ascii_case("audio"))
        .ok_or(SdpError::NoAudio)?;
    let m = &desc.media_descriptions[audio_index];

    let address = connection_address(&desc, m)?;
    let payload_types: Vec<u8> = m
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse().ok())
        .collect();
    let codecs = codecs_of(m, &payload_types);
    let telephone_event_pt = codecs
        .iter()
        .find(|(_, name, clock)| is_telephone_event(name, *clock))
        .map(|(pt, _, _)| *pt);

    let direction = direction_of(&m.attributes)
        .or_else(|| direction_of(&desc.attributes))
        .unwrap_or_default();
    let ptime = m
        .attributes
        .iter()
        .chain(desc.attributes.iter())
        .find(|a| a.key == "ptime")
        .and_then(|a| a.value.as_deref()?.trim().parse().ok());
    let rtcp_mux = m.attributes.iter().any(|a| a.key == "rtcp-mux");
    let crypto = m
        .attributes
        .iter()
        .filter(|a| a.key.eq_ignore_ascii_case("crypto"))
        .filter_map(|a| sdes::parse(a.value.as_deref()?).ok())
        .collect();

    Ok(SessionDescription {
        session_id: desc.origin.session_id,
        session_version: desc.origin.session_version,
        audio: MediaDescription {
            address,
            port: media_lines[audio_index].port,
            protocol: media_lines[audio_index].protocol.clone(),
            payload_types,
            codecs,
            direction,
            ptime,
            telephone_event_pt,
            rtcp_mux,
            crypto,
        },
        media_lines,
        audio_index,
    })
}

/// The media's `c=` address, else the session's.
fn connection_address(desc: &RtcSession, m: &RtcMedia) -> Result<IpAddr, SdpError> {
    let connection = m
        .connection_information
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .or_else(|| {
            desc.connection_information
                .as_ref()
                .and_then(|c| c.address.as_ref())
        })
        .ok_or(SdpError::NoConnectionAddress)?;
    connection
        .address
        .parse()
        .map_err(|_| SdpError::BadAddress(connection.address.clone()))
}

/// `(payload type, encoding name, clock rate)` of the `m=` line's payload types that have an
/// `a=rtpmap` or a well-known static assignment, in `m=` order.
fn codecs_of(m: &RtcMedia, payload_types: &[u8]) -> Vec<(u8, String, u32)> {
    let rtpmaps: Vec<(u8, String, u32)> = m
        .attributes
        .iter()
        .filter(|a| a.key.eq_ignore_ascii_case("rtpmap"))
        .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
        .collect();
    payload_types
        .iter()
        .filter_map(|&pt| {
            rtpmaps
                .iter()
                .find(|(p, _, _)| *p == pt)
                .cloned()
                .or_else(|| static_payload_type(pt).map(|(n, c)| (pt, n.to_string(), c)))
        })
        .collect()
}

/// What the remote SDP settles, whether it is an offer we answer or the answer to our offer
/// (RFC 3264 reads both the same way): the first of its payload types that is PCMU or PCMA
/// (else G.722), its telephone-event payload type, where to send, and our direction, the
/// mirror of its own; and, as `srtp` says, the first `a=crypto` line we can use: none with
/// `off` (and `RTP/SAVP` refused), SRTP when there is one with `optional`, and a line required
/// with `mandatory` or an `RTP/SAVP` m-line.
pub(crate) fn negotiate(sd: &SessionDescription, srtp: SrtpMode) -> Result<Negotiated, SdpError> {
    let audio = &sd.audio;
    if audio.port == 0 {
        return Err(SdpError::MediaRejected);
    }
    let savp = audio.protocol.eq_ignore_ascii_case(SAVP);
    if !savp && !audio.protocol.eq_ignore_ascii_case(AVP) {
        return Err(SdpError::UnsupportedTransport(audio.protocol.clone()));
    }
    let crypto = match srtp {
        SrtpMode::Off if savp => {
            return Err(SdpError::UnsupportedTransport(audio.protocol.clone()))
        }
        SrtpMode::Off => None,
        SrtpMode::Optional | SrtpMode::Mandatory => audio.crypto.first().cloned(),
    };
    if crypto.is_none() && (savp || srtp == SrtpMode::Mandatory) {
        return Err(SdpError::NoUsableCrypto);
    }
    // G.711 first, in the peer's order (every PBX transcodes it, and it is what recordings and
    // speech engines expect); G.722 only when it is all the peer has in common with us.
    let pick = |wanted: &[AudioCodec]| {
        audio.codecs.iter().find_map(|(pt, name, clock)| {
            audio_codec(name, *clock)
                .filter(|c| wanted.contains(c))
                .map(|c| (*pt, c))
        })
    };
    let (codec_pt, codec) = pick(&[AudioCodec::Pcmu, AudioCodec::Pcma])
        .or_else(|| pick(&[AudioCodec::G722]))
        .ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        codec_pt,
        codec,
        telephone_event_pt: audio.telephone_event_pt,
        remote: SocketAddr::new(audio.address, audio.port),
        direction: audio.direction.mirror(),
        media_lines: sd.media_lines.clone(),
        audio_index: sd.audio_index,
        rtcp_mux: audio.rtcp_mux,
        protocol: audio.protocol.clone(),
        srtp: crypto,
    })
}

/// Rejects a bad `m=` port with a precise error before the generic parser sees it.
fn check_media_ports(sdp: &str) -> Result<(), SdpError> {
    for line in sdp.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("m=") {
            let port = rest.split_whitespace().nth(1).unwrap_or("");
            let port = port.split('/').next().unwrap_or("");
            if port.parse::<u16>().is_err() {
                return Err(SdpError::BadPort(port.to_string()));
            }
        }
    }
    Ok(())
}

/// `"96 PCMU/8000/1"` → `(96, "PCMU", 8000)`.
fn parse_rtpmap(value: &str) -> Option<(u8, String, u32)> {
    let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    let name = parts.next()?.trim();
    let clock = parts.next()?.trim().parse().ok()?;
    Some((pt.parse().ok()?, name.to_string(), clock))
}

/// Static audio payload types of RFC 3551 that phones list without an `a=rtpmap`.
fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    if let Some(codec) = AudioCodec::from_payload_type(pt) {
        return Some((codec.name(), codec.rtp_clock_rate()));
    }
    Some(match pt {
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// The codec of an `a=rtpmap` name and clock (the name case-insensitive, RFC 4855): the clock
/// must be the codec's, so `PCMU/16000` is not the G.711 we know.
fn audio_codec(name: &str, clock: u32) -> Option<AudioCodec> {
    AudioCodec::from_name(name).filter(|c| c.rtp_clock_rate() == clock)
}

/// `telephone-event/8000`: the RFC 4733 events our DTMF sender and receiver speak.
fn is_telephone_event(name: &str, clock: u32) -> bool {
    name.eq_ignore_ascii_case(TELEPHONE_EVENT) && clock == dtmf::CLOCK_RATE
}

fn direction_of(attributes: &[Attribute]) -> Option<MediaDirection> {
    attributes
        .iter()
        .find_map(|a| MediaDirection::from_name(&a.key))
}

fn address_type(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

fn session(session_id: u64, version: u64, local_ip: IpAddr, media: Vec<RtcMedia>) -> RtcSession {
    RtcSession {
        version: 0,
        origin: Origin {
            username: "-".to_string(),
            session_id,
            session_version: version,
            network_type: "IN".to_string(),
            address_type: address_type(local_ip).to_string(),
            unicast_address: local_ip.to_string(),
        },
        session_name: SESSION_NAME.to_string(),
        connection_information: Some(ConnectionInformation {
            network_type: "IN".to_string(),
            address_type: address_type(local_ip).to_string(),
            address: Some(Address {
                address: local_ip.to_string(),
                ttl: None,
                range: None,
            }),
        }),
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        media_descriptions: media,
        ..Default::default()
    }
}

fn attr(key: &str, value: Option<String>) -> Attribute {
    Attribute::new(key.to_string(), value)
}

fn audio_media(
    port: u16,
    protocol: &str,
    codecs: &[(u8, AudioCodec)],
    telephone_event_pt: Option<u8>,
    direction: MediaDirection,
) -> RtcMedia {
    let rtpmap =
        |pt: u8, name: &str, clock: u32| attr("rtpmap", Some(format!("{pt} {name}/{clock}")));
    let mut attributes: Vec<Attribute> = codecs
        .iter()
        .map(|&(pt, codec)| rtpmap(pt, codec.name(), codec.rtp_clock_rate()))
        .collect();
    let mut formats: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
    if let Some(pt) = telephone_event_pt {
        attributes.push(rtpmap(pt, TELEPHONE_EVENT, dtmf::CLOCK_RATE));
        attributes.push(attr("fmtp", Some(format!("{pt} {TELEPHONE_EVENT_FMTP}"))));
        formats.push(pt.to_string());
    }
    attributes.push(attr("ptime", Some(PTIME.to_string())));
    attributes.push(attr(direction.as_str(), None));
    RtcMedia {
        media_name: MediaName {
            media: "audio".to_string(),
            port: RangedPort {
                value: port as isize,
                range: None,
            },
            protos: protocol.split('/').map(str::to_string).collect(),
            formats,
        },
        attributes,
        ..Default::default()
    }
}

/// An offered line we do not accept, answered with port 0 (RFC 3264 section 6).
fn rejected_media(line: &MediaLine) -> RtcMedia {
    let mut formats: Vec<String> = line.formats.iter().take(1).cloned().collect();
    if formats.is_empty() {
        formats.push("0".to_string());
    }
    RtcMedia {
        media_name: MediaName {
            media: line.media.clone(),
            port: RangedPort {
                value: 0,
                range: None,
            },
            protos: line.protocol.split('/').map(str::to_string).collect(),
            formats,
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));

    /// What sipp's built-in uac scenario sends (`m=audio [media_port] RTP/AVP 0`).
    const SIPP_UAC: &str = "v=0\r\n\
        o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 6000 RTP/AVP 0\r\n\
        a=rtpmap:0 PCMU/8000\r\n";

    /// An Asterisk-style offer: many codecs, telephone-event 101, media-level attributes.
    const ASTERISK: &str = "v=0\r\n\
        o=- 1234567890 1234567891 IN IP4 10.0.0.5\r\n\
        s=Asterisk\r\n\
        c=IN IP4 10.0.0.5\r\n\
        t=0 0\r\n\
        m=audio 17564 RTP/AVP 9 8 0 3 111 101\r\n\
        a=rtpmap:9 G722/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:3 GSM/8000\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 useinbandfec=1\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=ptime:20\r\n\
        a=maxptime:150\r\n\
        a=sendrecv\r\n";

    fn keys() -> LocalKeys {
        LocalKeys::generate()
    }

    fn offer_with(media: &str) -> String {
        format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{media}")
    }

    #[test]
    fn offer_text_is_exact() {
        let offer = build_offer(
            42,
            7,
            LOCAL,
            10_000,
            MediaDirection::SendRecv,
            SrtpMode::Off,
            &keys(),
        );
        assert_eq!(
            offer,
            "v=0\r\n\
             o=- 42 7 IN IP4 192.168.1.10\r\n\
             s=sip-native\r\n\
             c=IN IP4 192.168.1.10\r\n\
             t=0 0\r\n\
             m=audio 10000 RTP/AVP 0 8 9 101\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:9 G722/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n\
             a=rtcp-mux\r\n"
        );
    }

    #[test]
    fn offer_round_trip() {
        let sd = parse(&build_offer(
            u64::MAX,
            0,
            LOCAL,
            10_002,
            MediaDirection::SendRecv,
            SrtpMode::Off,
            &keys(),
        ))
        .unwrap();
        assert_eq!(sd.session_id, u64::MAX);
        assert_eq!(sd.session_version, 0);
        assert_eq!(
            sd.audio,
            MediaDescription {
                address: LOCAL,
                port: 10_002,
                protocol: "RTP/AVP".into(),
                payload_types: vec![0, 8, 9, 101],
                codecs: vec![
                    (0, "PCMU".into(), 8000),
                    (8, "PCMA".into(), 8000),
                    (9, "G722".into(), 8000),
                    (101, "telephone-event".into(), 8000)
                ],
                direction: MediaDirection::SendRecv,
                ptime: Some(20),
                telephone_event_pt: Some(101),
                rtcp_mux: true,
                crypto: vec![],
            }
        );
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        assert_eq!((n.codec_pt, n.codec), (0, AudioCodec::Pcmu));
        assert_eq!(n.remote, SocketAddr::new(LOCAL, 10_002));
    }

    #[test]
    fn ipv6_offer_round_trip() {
        let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let offer = build_offer(
            1,
            2,
            ip,
            20_000,
            MediaDirection::SendRecv,
            SrtpMode::Off,
            &keys(),
        );
        assert!(offer.contains("o=- 1 2 IN IP6 2001:db8::1\r\n"));
        assert!(offer.contains("c=IN IP6 2001:db8::1\r\n"));
        let sd = parse(&offer).unwrap();
        assert_eq!(sd.audio.address, ip);
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        assert_eq!(n.remote, "[2001:db8::1]:20000".parse().unwrap());
    }

    #[test]
    fn sipp_uac_offer() {
        let sd = parse(SIPP_UAC).unwrap();
        assert_eq!(sd.session_id, 53655765);
        assert_eq!(sd.audio.payload_types, vec![0]);
        assert_eq!(sd.audio.telephone_event_pt, None);
        assert_eq!(sd.audio.ptime, None);
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        assert_eq!(
            n,
            Negotiated {
                codec_pt: 0,
                codec: AudioCodec::Pcmu,
                telephone_event_pt: None,
                remote: "127.0.0.1:6000".parse().unwrap(),
                direction: MediaDirection::SendRecv,
                media_lines: sd.media_lines.clone(),
                audio_index: 0,
                rtcp_mux: false,
                protocol: "RTP/AVP".into(),
                srtp: None,
            }
        );
        let answer = build_answer(5, 5, LOCAL, 10_004, &n, &keys());
        assert_eq!(
            answer,
            "v=0\r\n\
             o=- 5 5 IN IP4 192.168.1.10\r\n\
             s=sip-native\r\n\
             c=IN IP4 192.168.1.10\r\n\
             t=0 0\r\n\
             m=audio 10004 RTP/AVP 0\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );
        // The answer parses, and reading it back as an answer gives the same choice.
        let back = negotiate(&parse(&answer).unwrap(), SrtpMode::Off).unwrap();
        assert_eq!((back.codec_pt, back.codec), (0, AudioCodec::Pcmu));
        assert_eq!(back.remote, SocketAddr::new(LOCAL, 10_004));
    }

    #[test]
    fn sipp_static_pt_without_rtpmap() {
        let sd = parse(&offer_with("m=audio 6000 RTP/AVP 8\r\n")).unwrap();
        assert_eq!(sd.audio.codecs, vec![(8, "PCMA".into(), 8000)]);
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        assert_eq!((n.codec_pt, n.codec), (8, AudioCodec::Pcma));
        assert!(build_answer(1, 1, LOCAL, 10_000, &n, &keys()).contains("a=rtpmap:8 PCMA/8000\r\n"));
    }

    #[test]
    fn asterisk_offer_picks_first_g711_and_dtmf() {
        let sd = parse(ASTERISK).unwrap();
        assert_eq!(sd.audio.payload_types, vec![9, 8, 0, 3, 111, 101]);
        assert_eq!(sd.audio.codecs[4], (111, "opus".into(), 48000));
        assert_eq!(sd.audio.telephone_event_pt, Some(101));
        assert_eq!(sd.audio.ptime, Some(20));
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        assert_eq!((n.codec_pt, n.codec), (8, AudioCodec::Pcma));
        assert_eq!(n.telephone_event_pt, Some(101));
        assert_eq!(n.remote, "10.0.0.5:17564".parse().unwrap());
        let answer = build_answer(9, 9, LOCAL, 10_006, &n, &keys());
        assert!(
            answer.contains("m=audio 10006 RTP/AVP 8 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains(
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        ));
        assert!(!answer.contains("PCMU"));
        assert!(answer.ends_with("a=sendrecv\r\n"));
    }

    #[test]
    fn dynamic_pt_and_case_insensitive_names() {
        let sd = parse(&offer_with(
            "m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 pcmu/8000\r\na=rtpmap:97 Telephone-Event/8000\r\n",
        ))
        .unwrap();
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        assert_eq!((n.codec_pt, n.codec), (96, AudioCodec::Pcmu));
        assert_eq!(n.telephone_event_pt, Some(97));
        let answer = build_answer(1, 1, LOCAL, 10_000, &n, &keys());
        assert!(answer.contains("m=audio 10000 RTP/AVP 96 97\r\na=rtpmap:96 PCMU/8000\r\na=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-16\r\n"), "{answer}");
    }

    #[test]
    fn telephone_event_at_other_clock_is_ignored() {
        let sd = parse(&offer_with(
            "m=audio 4000 RTP/AVP 0 110 101\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n",
        ))
        .unwrap();
        assert_eq!(sd.audio.telephone_event_pt, Some(101));
    }

    #[test]
    fn rtpmap_overrides_static_and_wrong_clock_rejected() {
        // PCMU at 16 kHz is not G.711 as we know it.
        let sd = parse(&offer_with(
            "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/16000\r\n",
        ))
        .unwrap();
        assert_eq!(
            negotiate(&sd, SrtpMode::Off).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn g729_only_has_no_common_codec() {
        let sd = parse(&offer_with(
            "m=audio 4000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n",
        ))
        .unwrap();
        let err = negotiate(&sd, SrtpMode::Off).unwrap_err();
        assert_eq!(err, SdpError::NoCommonCodec);
        assert_eq!(
            err.to_string(),
            "no common codec (we support PCMU and PCMA)"
        );
    }

    #[test]
    fn direction_mirroring() {
        for (offered, answered) in [
            ("sendrecv", MediaDirection::SendRecv),
            ("sendonly", MediaDirection::RecvOnly),
            ("recvonly", MediaDirection::SendOnly),
            ("inactive", MediaDirection::Inactive),
        ] {
            let sd = parse(&offer_with(&format!(
                "m=audio 4000 RTP/AVP 0\r\na={offered}\r\n"
            )))
            .unwrap();
            let n = negotiate(&sd, SrtpMode::Off).unwrap();
            assert_eq!(n.direction, answered, "{offered}");
            let answer = build_answer(1, 1, LOCAL, 10_000, &n, &keys());
            assert!(answer.ends_with(&format!("a={}\r\n", answered.as_str())));
            // Reading that answer back, we are in the offered direction again.
            let back = negotiate(&parse(&answer).unwrap(), SrtpMode::Off).unwrap();
            assert_eq!(back.direction.as_str(), offered);
        }
    }

    #[test]
    fn session_level_direction_and_media_override() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            parse(sdp).unwrap().audio.direction,
            MediaDirection::SendOnly
        );
        let sdp = format!("{sdp}a=inactive\r\n");
        assert_eq!(
            parse(&sdp).unwrap().audio.direction,
            MediaDirection::Inactive
        );
    }

    #[test]
    fn session_level_connection_vs_media_level() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n";
        assert_eq!(
            parse(sdp).unwrap().audio.address,
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            parse(sdp).unwrap().audio.address,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        // Media-level only.
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::1\r\n";
        assert_eq!(
            parse(sdp).unwrap().audio.address,
            "::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_connection_line() {
        let sdp = "v=0\r\no=- 1 1 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 8\r\n";
        let n = negotiate(&parse(sdp).unwrap(), SrtpMode::Off).unwrap();
        assert_eq!(n.remote, "[2001:db8::5]:4000".parse().unwrap());
    }

    #[test]
    fn lf_only_line_endings() {
        let sdp = SIPP_UAC.replace("\r\n", "\n");
        assert_eq!(parse(&sdp).unwrap().audio.port, 6000);
    }

    #[test]
    fn missing_audio() {
        let sdp = offer_with("m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n");
        assert_eq!(parse(&sdp).unwrap_err(), SdpError::NoAudio);
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n";
        assert_eq!(parse(sdp).unwrap_err(), SdpError::NoAudio);
    }

    #[test]
    fn bad_port() {
        for port in ["x", "70000", "-1", ""] {
            let sdp = offer_with(&format!("m=audio {port} RTP/AVP 0\r\n"));
            assert!(
                matches!(
                    parse(&sdp).unwrap_err(),
                    SdpError::BadPort(_) | SdpError::Syntax(_)
                ),
                "{port}"
            );
        }
        let sdp = offer_with("m=audio 70000 RTP/AVP 0\r\n");
        assert_eq!(parse(&sdp).unwrap_err(), SdpError::BadPort("70000".into()));
    }

    #[test]
    fn no_connection_address() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(parse(sdp).unwrap_err(), SdpError::NoConnectionAddress);
    }

    #[test]
    fn hostname_connection_address() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            parse(sdp).unwrap_err(),
            SdpError::BadAddress("pbx.example.com".into())
        );
    }

    #[test]
    fn syntax_errors() {
        assert!(matches!(
            parse("").unwrap_err(),
            SdpError::Syntax(_) | SdpError::NoAudio
        ));
        assert!(matches!(parse("hello").unwrap_err(), SdpError::Syntax(_)));
        assert!(matches!(
            parse("v=0\r\ns=-\r\n").unwrap_err(),
            SdpError::Syntax(_)
        ));
    }

    #[test]
    fn port_zero_is_rejected() {
        let sd = parse(&offer_with("m=audio 0 RTP/AVP 0\r\n")).unwrap();
        assert_eq!(sd.audio.port, 0);
        assert_eq!(
            negotiate(&sd, SrtpMode::Off).unwrap_err(),
            SdpError::MediaRejected
        );
        assert_eq!(
            negotiate(&sd, SrtpMode::Off).unwrap_err(),
            SdpError::MediaRejected
        );
    }

    #[test]
    fn srtp_is_unsupported() {
        let sd = parse(&offer_with("m=audio 4000 RTP/SAVP 0\r\n")).unwrap();
        assert_eq!(
            negotiate(&sd, SrtpMode::Off).unwrap_err(),
            SdpError::UnsupportedTransport("RTP/SAVP".into())
        );
    }

    #[test]
    fn rtcp_mux_flag() {
        let sd = parse(&offer_with("m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\n")).unwrap();
        assert!(sd.audio.rtcp_mux);
    }

    #[test]
    fn answer_rejects_other_media_in_place() {
        let sdp = offer_with(
            "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             m=application 6000 UDP/BFCP *\r\n",
        );
        let sd = parse(&sdp).unwrap();
        assert_eq!(sd.audio_index, 1);
        assert_eq!(sd.media_lines.len(), 3);
        let n = negotiate(&sd, SrtpMode::Off).unwrap();
        let answer = build_answer(1, 1, LOCAL, 10_000, &n, &keys());
        let m_lines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            vec![
                "m=video 0 RTP/AVP 96",
                "m=audio 10000 RTP/AVP 0 101",
                "m=application 0 UDP/BFCP *"
            ]
        );
        // Our answer is valid SDP too.
        assert_eq!(parse(&answer).unwrap().audio.port, 10_000);
    }

    #[test]
    fn codec_helpers() {
        for c in AudioCodec::ALL {
            assert_eq!(audio_codec(&c.name().to_lowercase(), 8000), Some(c));
            assert_eq!(
                static_payload_type(c.payload_type()),
                Some((c.name(), 8000))
            );
        }
        assert_eq!(audio_codec("G729", 8000), None);
        assert_eq!(audio_codec("PCMA", 16000), None);
        assert!(is_telephone_event("Telephone-Event", 8000));
        assert!(!is_telephone_event("telephone-event", 48000));
        assert_eq!(static_payload_type(18), Some(("G729", 8000)));
        assert_eq!(static_payload_type(96), None);
        assert_eq!(
            parse_rtpmap("96 opus/48000/2"),
            Some((96, "opus".into(), 48000))
        );
        assert_eq!(parse_rtpmap("96"), None);
        assert_eq!(parse_rtpmap("x PCMU/8000"), None);
        assert_eq!(parse_rtpmap("300 PCMU/8000"), None);
    }

    #[test]
    fn parse_never_panics() {
        let sample = format!(
            "{ASTERISK}m=video 5000 RTP/AVP 96\r\nc=IN IP6 ::1/127/3\r\nb=AS:64\r\na=rtpmap:96 H264/90000\r\n"
        );
        for (i, _) in sample.char_indices() {
            let _ = parse(&sample[..i]);
            let _ = parse(&sample[i..]);
        }
        const SOUP: &[u8] = b"vosctmab=\r\n 0123456789/:audioRTP/AVP IN IP4\xff";
        for bytes in crate::test_support::byte_soup(0xdead_beef_cafe_f00d, 400, SOUP) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
            let _ = parse(&format!(
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n{text}"
            ));
        }
    }

    #[test]
    fn g711_is_preferred_and_g722_is_the_fallback() {
        let n = negotiate(&parse(ASTERISK).unwrap(), SrtpMode::Off).unwrap();
        assert_eq!((n.codec_pt, n.codec), (8, AudioCodec::Pcma));
        let only_g722 = offer_with("m=audio 4000 RTP/AVP 9 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n");
        let n = negotiate(&parse(&only_g722).unwrap(), SrtpMode::Off).unwrap();
        assert_eq!((n.codec_pt, n.codec), (9, AudioCodec::G722));
        assert!(build_answer(1, 1, LOCAL, 4000, &n, &keys()).contains("a=rtpmap:9 G722/8000"));
    }
}
