//! A call's media: the RTP ports reserved for it (and their public mapping, by STUN when a
//! server is configured), then the RTP session that starts when the call is answered (our
//! 200 OK, or the peer's 2xx), follows re-INVITEs and ends with the call; and the SDP we send.
//! It takes the [`UaContext`] and knows nothing of the call around it. With SRTP on, the call
//! has its own SDES keys (one per suite), offered and answered with; a key we stop sending
//! under is replaced, never used for a second context.

use crate::config::{SrtpMode, TransportKind};
use crate::context::UaContext;
use crate::event::Event;
use crate::media::session::MediaSession;
use crate::media::srtp::LocalKeys;
use crate::media::{MediaDirection, MediaEvent, MediaEvents};
use crate::rtp_ports::{PortLease, RtpPortPair};
use crate::sdp;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// How long call setup waits for the STUN server: a dead one must not hold a call up.
const RTP_STUN_BUDGET: Duration = Duration::from_millis(800);

/// The RTP ports of a new call, and the address and port others reach its RTP port at.
pub(crate) struct CallPorts {
    pub pair: RtpPortPair,
    /// The STUN mapping of the RTP port, `None` without a STUN server or an answer from it.
    pub public: Option<SocketAddr>,
}

/// Reserves a call's RTP ports and, with a STUN server configured, learns the NAT's mapping
/// of the RTP port (the SIP socket's mapping, from rport or STUN, says nothing of it) within
/// [`RTP_STUN_BUDGET`]; without an answer the SDP carries the local address, and symmetric
/// RTP at the peer (or its `comedia`) still finds us.
pub(crate) async fn reserve_ports(ctx: &UaContext) -> crate::Result<CallPorts> {
    let pair = ctx.ports.allocate()?;
    let public = tokio::time::timeout(RTP_STUN_BUDGET, stun_rtp(ctx, &pair.rtp))
        .await
        .unwrap_or_else(|_| Err("no STUN response".into()));
    let public = match public {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(port = pair.rtp_port, error = %why, "STUN for RTP failed; SDP has the local address");
            None
        }
    };
    Ok(CallPorts { pair, public })
}

/// The STUN mapping of `rtp` (`Ok(None)`: no STUN server configured). Runs on a clone of the
/// socket, which nobody reads before the call's media session starts.
async fn stun_rtp(ctx: &UaContext, rtp: &UdpSocket) -> Result<Option<SocketAddr>, String> {
    let local = rtp.local_addr().map_err(|e| e.to_string())?;
    let Some(server) = ctx.stun_server(local).await else {
        return Ok(None);
    };
    let server = server.map_err(|e| e.to_string())?;
    let clone = rtp.try_clone().map_err(|e| e.to_string())?;
    clone.set_nonblocking(true).map_err(|e| e.to_string())?;
    let socket = tokio::net::UdpSocket::from_std(clone).map_err(|e| e.to_string())?;
    crate::transport::stun::binding(&socket, server, RTP_STUN_BUDGET)
        .await
        .map(Some)
        .map_err(|e| format!("STUN server {server}: {e}"))
}

/// The RTP side of one call.
pub(crate) struct CallMedia {
    /// Our even RTP port, held for the call's life.
    rtp_port: u16,
    /// Where the peer sends RTP, written in our SDP: the STUN mapping of the RTP port, else
    /// the advertised address (`publicAddress` or this host's) and our port.
    sdp_address: Option<SocketAddr>,
    lease: Mutex<Option<PortLease>>,
    /// The RTP and RTCP sockets until the media session takes them.
    sockets: Mutex<Option<(UdpSocket, UdpSocket)>>,
    session: Mutex<Option<Arc<MediaSession>>>,
    /// The `o=` session id of every SDP of this call (RFC 4566: constant for the session).
    sdp_session: u64,
    /// The `o=` version, bumped for each new offer or answer.
    sdp_version: AtomicU64,
    /// The last SDP we sent, offer or answer: a session refresh re-INVITE sends it unchanged.
    last_sdp: Mutex<Option<String>>,
    /// The codec the session started with (for `callInfo`, also after the call ended).
    codec: Mutex<Option<&'static str>>,
    /// The endpoint's `srtp` mode, and our SDES keys (unused with `off`).
    srtp: SrtpMode,
    keys: Mutex<LocalKeys>,
    /// The plain-transport warning was logged for this call.
    warned_plain: std::sync::atomic::AtomicBool,
}

impl CallMedia {
    pub(super) fn new(ports: CallPorts, srtp: SrtpMode) -> Self {
        let CallPorts {
            pair: ports,
            public,
        } = ports;
        Self {
            rtp_port: ports.rtp_port,
            sdp_address: public,
            lease: Mutex::new(Some(ports.lease)),
            sockets: Mutex::new(Some((ports.rtp, ports.rtcp))),
            session: Mutex::new(None),
            sdp_session: sdp_session_id(),
            sdp_version: AtomicU64::new(0),
            last_sdp: Mutex::new(None),
            codec: Mutex::new(None),
            srtp,
            keys: Mutex::new(LocalKeys::generate()),
            warned_plain: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Warns, once per call, when our SDP carries SRTP keys over a transport that does not
    /// encrypt them (anyone who reads the signalling can decrypt the media then; TLS and WSS,
    /// and `sips:` URIs, which need TLS, keep them secret).
    fn warn_plain_keys(&self, ctx: &UaContext) {
        let plain = !matches!(
            ctx.config.transport,
            TransportKind::Tls | TransportKind::Wss
        );
        if plain && !self.warned_plain.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                transport = ctx.config.transport.as_str(),
                "SRTP keys (SDES) sent over a plain SIP transport: anyone on the path can read them; use tls or wss"
            );
        }
    }

    /// The running RTP session, once the call is answered.
    pub(super) fn session(&self) -> Option<Arc<MediaSession>> {
        self.session.lock().ok().and_then(|m| m.clone())
    }

    /// The codec the RTP session started with, once it did.
    pub(super) fn codec(&self) -> Option<String> {
        self.codec.lock().ok().and_then(|c| c.map(str::to_string))
    }

    fn next_sdp_version(&self) -> u64 {
        self.sdp_version.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The address and port of `c=` and `m=`.
    fn sdp_address(&self, ctx: &UaContext) -> (std::net::IpAddr, u16) {
        match self.sdp_address {
            Some(a) => (a.ip(), a.port()),
            None => (ctx.addressing.advertised, self.rtp_port),
        }
    }

    /// Our SDP offer (initial INVITE, re-INVITE for hold/resume, or a 200 to an INVITE without
    /// an offer) with `direction`.
    pub(super) fn offer(&self, ctx: &UaContext, direction: MediaDirection) -> String {
        let (ip, port) = self.sdp_address(ctx);
        if self.srtp != SrtpMode::Off {
            self.warn_plain_keys(ctx);
        }
        self.sent(sdp::build_offer(
            self.sdp_session,
            self.next_sdp_version(),
            ip,
            port,
            direction,
            self.srtp,
            &self.keys(),
        ))
    }

    /// Our SDP answer to `offer`.
    pub(super) fn answer(&self, ctx: &UaContext, offer: &sdp::Negotiated) -> String {
        let (ip, port) = self.sdp_address(ctx);
        if offer.srtp.is_some() {
            self.warn_plain_keys(ctx);
        }
        self.sent(sdp::build_answer(
            self.sdp_session,
            self.next_sdp_version(),
            ip,
            port,
            offer,
            &self.keys(),
        ))
    }

    /// Remembers `sdp` as the last one we sent, and returns it.
    fn sent(&self, sdp: String) -> String {
        if let Ok(mut last) = self.last_sdp.lock() {
            *last = Some(sdp.clone());
        }
        sdp
    }

    /// The last SDP we sent (`None` before the first offer or answer).
    pub(super) fn last_local_sdp(&self) -> Option<String> {
        self.last_sdp.lock().ok().and_then(|l| l.clone())
    }

    /// Starts the RTP session with what offer/answer settled. Idempotent.
    pub(super) fn start(&self, ctx: &UaContext, call_id: &str, negotiated: &sdp::Negotiated) {
        if self.session().is_some() {
            return;
        }
        let Some((rtp, rtcp)) = self.sockets.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let params = negotiated.media_params(&self.keys());
        if let Ok(mut c) = self.codec.lock() {
            *c = Some(params.codec.name());
        }
        match MediaSession::new(call_id.to_string(), rtp, rtcp, params, media_events(ctx)) {
            Ok(session) => {
                if let Ok(mut m) = self.session.lock() {
                    *m = Some(session.clone());
                }
                ctx.media.add(session.clone());
                tokio::spawn(session.receive_loop().instrument(super::span(call_id)));
            }
            Err(e) => ctx.emit(Event::Error {
                message: format!("call {call_id}: cannot start RTP: {e}"),
            }),
        }
    }

    /// Ends the RTP session and gives the ports back; keeps a recording's summary for a late
    /// `stopRecording`. A partner bridged to this call falls back to silence.
    pub(super) fn stop(&self, ctx: &UaContext, call_id: &str) {
        if let Some(session) = self.session.lock().ok().and_then(|mut m| m.take()) {
            ctx.media.remove(call_id);
            if let Some(partner) = session.bridged_to() {
                if partner
                    .bridged_to()
                    .is_some_and(|p| Arc::ptr_eq(&p, &session))
                {
                    partner.unbridge();
                }
            }
            if let Some(info) = session.close() {
                ctx.keep_recording(call_id, info);
            }
        }
        if let Ok(mut s) = self.sockets.lock() {
            s.take();
        }
        if let Ok(mut l) = self.lease.lock() {
            l.take();
        }
    }

    /// Answers a re-INVITE/UPDATE offer negotiated by the caller: the session follows the new
    /// address, codec or direction. `None` without a session.
    pub(super) fn answer_reoffer(
        &self,
        ctx: &UaContext,
        negotiated: &sdp::Negotiated,
    ) -> Option<String> {
        let session = self.session()?;
        self.follow(&session, negotiated);
        Some(self.answer(ctx, negotiated))
    }

    /// Follows the SDP answer to our re-INVITE (hold, resume). Leaves the media as it was when
    /// the answer is unusable.
    pub(super) fn follow_answer(&self, answer: &[u8]) -> Result<(), sdp::SdpError> {
        let negotiated = sdp::parse(&String::from_utf8_lossy(answer))
            .and_then(|a| sdp::negotiate(&a, self.srtp))?;
        if let Some(session) = self.session() {
            self.follow(&session, &negotiated);
        }
        Ok(())
    }

    /// Moves the session to what a re-offer settled, and retires the key of a suite it stopped
    /// sending under.
    fn follow(&self, session: &MediaSession, negotiated: &sdp::Negotiated) {
        let ended = session.update(negotiated.media_params(&self.keys()));
        if let (Some(suite), Ok(mut keys)) = (ended, self.keys.lock()) {
            keys.retire(suite);
        }
    }

    /// A copy of our current SDES keys.
    fn keys(&self) -> LocalKeys {
        self.keys
            .lock()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

/// Where a session's events go: to the user as the same events as signalled ones (DTMF by RTP
/// is a `dtmf` event like DTMF by INFO, told apart by `method`).
fn media_events(ctx: &UaContext) -> MediaEvents {
    let events = ctx.event_sender();
    Box::new(move |event| {
        let event = match event {
            MediaEvent::Dtmf {
                call_id,
                digit,
                duration_ms,
            } => Event::Dtmf {
                call_id,
                digit: digit.to_string(),
                method: "rfc4733".into(),
                duration_ms,
            },
        };
        let _ = events.send(event);
    })
}

/// An `o=` session id: NTP-like seconds, unique enough per call and constant for its life.
fn sdp_session_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SIP INFO bodies carrying DTMF (`application/dtmf-relay`, `application/dtmf`).
pub(crate) fn dtmf_from_info(content_type: Option<&str>, body: &[u8]) -> Option<(char, u32)> {
    let ct = content_type?.to_ascii_lowercase();
    if !ct.starts_with("application/dtmf") {
        return None;
    }
    crate::media::dtmf::parse_dtmf_relay(&String::from_utf8_lossy(body))
}
