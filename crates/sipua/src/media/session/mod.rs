//! One call's RTP session: the sockets, what is negotiated, the jitter buffer, the source we
//! send and the sinks of what we receive. The pacing clock ([`super::engine`]) drives
//! `MediaSession::tick_receive` and `MediaSession::tick_send` every 20 ms for all calls; a
//! tokio task per session reads the socket (`receive.rs`).
//!
//! The parts: `stream.rs` is the RTP/RTCP protocol without IO (it takes the time and returns
//! the datagrams to send); `source.rs` produces what we send (silence, a file, a tone, PCM from
//! JS, a bridged call), `sink.rs` takes what we receive (recorder, PCM to JS, a bridged call);
//! this file holds them under one lock and does the sending.
//!
//! Nothing in the per-packet path allocates: frames live in fixed arrays inside the session.

mod frame;
mod receive;
mod sink;
mod source;
mod stream;

use self::frame::Frame;
use self::sink::PcmOut;
use self::source::{PcmIn, Produced, Source};
use self::stream::{RtpStream, Transmit};
use super::codec::{AudioCodec, Decoder, Encoder};
use super::dtmf::{DtmfReceiver, DtmfSender};
use super::jitter::{JitterBuffer, Playout};
use super::recorder::{Recorder, RecordingInfo};
use super::srtp::{CryptoSuite, SrtpSession};
use super::{stats, MediaDirection, MediaParams};
use crate::transport::family::sendable;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{oneshot, Notify};

/// Packet time of everything we send.
pub(crate) const PTIME_MS: u32 = 20;

/// Something a session reports to the layer above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// An RFC 4733 DTMF digit arrived: reported once per event, however often its packets
    /// repeat.
    Dtmf {
        /// The call of the session.
        call_id: String,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// How long the peer says the tone lasted.
        duration_ms: u32,
    },
}

/// Where a session reports its [`MediaEvent`]s: called on the receive task, so it must not
/// block.
pub type MediaEvents = Box<dyn Fn(MediaEvent) + Send + Sync>;

/// Packets and frames the session could not use, for `stats()`. Atomic so that counting
/// never waits for the lock.
#[derive(Default)]
struct MediaCounters {
    dropped: AtomicU64,
    frames_dropped: AtomicU64,
    /// SRTP/SRTCP packets that failed authentication or the replay check (also in `dropped`).
    srtp_auth_failed: AtomicU64,
}

/// The mutable state of a session, behind one lock shared by the clock and the receive task.
struct State {
    params: MediaParams,
    stream: RtpStream,
    encoder: Encoder,
    decoder: Decoder,
    jitter: JitterBuffer,
    /// What we received this tick, decoded (the bridge partner's source).
    rx: Frame,
    /// The last frame that arrived, for concealing a lost one.
    last_rx: Frame,
    /// What we sent this tick (the recorder's second channel).
    tx: Frame,
    source: Source,
    pcm_in: PcmIn,
    pcm_out: Option<PcmOut>,
    recorder: Option<Recorder>,
    /// `None` while the peer takes no telephone-event.
    dtmf_tx: Option<DtmfSender>,
    /// Resolved when the sender has sent everything queued.
    dtmf_done: Vec<oneshot::Sender<()>>,
    dtmf_rx: DtmfReceiver,
    /// The SRTP contexts while the call is encrypted.
    srtp: Option<SrtpSession>,
}

impl State {
    fn new(params: MediaParams, now: Instant) -> Result<Self, String> {
        let codec = params.codec;
        let frame = codec.samples_per_frame(PTIME_MS);
        let srtp = params.srtp.clone().map(SrtpSession::new).transpose()?;
        Ok(Self {
            srtp,
            stream: RtpStream::new(&params, now),
            encoder: Encoder::new(codec),
            decoder: Decoder::new(codec),
            jitter: JitterBuffer::new(
                codec.rtp_clock_rate(),
                codec.timestamp_increment(PTIME_MS),
                40,
                300,
            ),
            rx: Frame::silent(frame),
            last_rx: Frame::silent(frame),
            tx: Frame::silent(frame),
            source: Source::Silence,
            pcm_in: PcmIn::new(),
            pcm_out: None,
            recorder: None,
            dtmf_tx: dtmf_sender(&params),
            dtmf_done: Vec::new(),
            dtmf_rx: DtmfReceiver::new(),
            params,
        })
    }

    /// A re-INVITE changed the codec: new coder state and frame size (the RTP clock, hence the
    /// jitter buffer and the statistics, is 8 kHz for every codec we have).
    fn set_codec(&mut self, codec: AudioCodec) {
        self.encoder = Encoder::new(codec);
        self.decoder = Decoder::new(codec);
        let frame = codec.samples_per_frame(PTIME_MS);
        self.rx = Frame::silent(frame);
        self.last_rx = Frame::silent(frame);
        self.tx = Frame::silent(frame);
    }

    /// Takes this tick's frame out of the jitter buffer into `rx`.
    fn play_out(&mut self, now: Instant) {
        let len = self.params.codec.samples_per_frame(PTIME_MS);
        self.rx.len = len;
        if !self.params.receives() {
            self.rx.clear();
            return;
        }
        match self.jitter.pop(self.stream.clock_us(now)) {
            Playout::Frame(payload) => {
                self.decoder
                    .decode_into(payload, &mut self.rx.samples[..len]);
                self.last_rx = self.rx;
            }
            Playout::Conceal => {
                // One lost frame: repeat the last one at half level (cheap PLC).
                for (o, i) in self.rx.samples[..len]
                    .iter_mut()
                    .zip(self.last_rx.samples[..len].iter())
                {
                    *o = *i / 2;
                }
            }
            Playout::Silence => self.rx.clear(),
        }
    }

    /// Gives the recorder this tick's frames both ways.
    fn record(&mut self) {
        if let Some(rec) = self.recorder.as_mut() {
            rec.push(self.rx.pcm(), self.tx.pcm());
        }
    }

    /// Writes this tick's RTP packet: a telephone-event while DTMF goes on, else `tx` encoded.
    fn next_rtp(&mut self) -> Transmit<'_> {
        let event = self.dtmf_tx.as_mut().and_then(DtmfSender::next_packet);
        if !self.dtmf_done.is_empty() && self.dtmf_tx.as_ref().is_none_or(DtmfSender::is_idle) {
            for done in self.dtmf_done.drain(..) {
                let _ = done.send(());
            }
        }
        match event {
            Some(event) => self.stream.event_packet(&event),
            None => {
                let (encoder, pcm) = (&mut self.encoder, self.tx.pcm());
                self.stream.audio_packet(self.params.payload_type, |out| {
                    encoder.encode_into(pcm, out)
                })
            }
        }
    }
}

/// One call's media.
pub struct MediaSession {
    /// The call it belongs to.
    pub(crate) call_id: String,
    /// Our RTP port (the SDP's `m=` port).
    pub(crate) local_port: u16,
    /// The RTP socket's address: an IPv6 one sends to IPv4 peers through mapped addresses.
    local_addr: SocketAddr,
    socket: UdpSocket,
    rtcp_socket: UdpSocket,
    state: Mutex<State>,
    counters: MediaCounters,
    /// Wakes PCM readers: frames arrived.
    pub(crate) pcm_out_ready: Notify,
    /// Wakes PCM writers: room in the queue.
    pub(crate) pcm_in_room: Notify,
    closed: AtomicBool,
    /// Ends the receive task at once when the session closes.
    close_token: tokio_util::sync::CancellationToken,
    events: MediaEvents,
}

impl MediaSession {
    /// A session on the call's reserved sockets (made non-blocking here), reporting to `events`.
    pub(crate) fn new(
        call_id: String,
        rtp_socket: UdpSocket,
        rtcp_socket: UdpSocket,
        params: MediaParams,
        events: MediaEvents,
    ) -> std::io::Result<Arc<Self>> {
        rtp_socket.set_nonblocking(true)?;
        rtcp_socket.set_nonblocking(true)?;
        let local_addr = rtp_socket.local_addr()?;
        let local_port = local_addr.port();
        let state = State::new(params, Instant::now()).map_err(std::io::Error::other)?;
        Ok(Arc::new(Self {
            call_id,
            local_port,
            local_addr,
            socket: rtp_socket,
            rtcp_socket,
            state: Mutex::new(state),
            counters: MediaCounters::default(),
            pcm_out_ready: Notify::new(),
            pcm_in_room: Notify::new(),
            closed: AtomicBool::new(false),
            close_token: tokio_util::sync::CancellationToken::new(),
            events,
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the media state half-written in a way
        // that matters more than losing the call's audio; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Ends the session: resolves pending playback/DTMF promises, finishes the recording.
    pub(crate) fn close(&self) -> Option<RecordingInfo> {
        self.closed.store(true, Ordering::Relaxed);
        self.close_token.cancel();
        let mut st = self.state();
        st.source = Source::Silence;
        st.dtmf_done.clear();
        if let Some(out) = st.pcm_out.as_mut() {
            out.close();
        }
        let rec = st.recorder.take();
        drop(st);
        self.pcm_out_ready.notify_waiters();
        self.pcm_in_room.notify_waiters();
        rec.map(Recorder::finish)
    }

    /// A re-INVITE changed address, port, codec or direction.
    /// Returns the SRTP suite we stopped sending under (suite changed, or SRTP off), whose
    /// key must not be used for a new context again.
    pub(crate) fn update(&self, params: MediaParams) -> Option<CryptoSuite> {
        let mut guard = self.state();
        let st = &mut *guard;
        if params.telephone_event_pt != st.params.telephone_event_pt {
            st.dtmf_tx = dtmf_sender(&params);
        }
        if params.codec != st.params.codec {
            st.set_codec(params.codec);
        }
        let ended = self.update_srtp(st, &params).unwrap_or_else(|e| {
            tracing::warn!(call_id = %self.call_id, error = %e, "SRTP unchanged");
            None
        });
        st.stream.update(&st.params, &params, Instant::now());
        st.params = params;
        ended
    }

    /// Follows SDES on a re-INVITE: SRTP on, off, or re-keyed (contexts with unchanged keys
    /// kept). Returns the suite whose sending context ended.
    fn update_srtp(
        &self,
        st: &mut State,
        params: &MediaParams,
    ) -> Result<Option<CryptoSuite>, String> {
        match (&mut st.srtp, &params.srtp) {
            (Some(session), Some(p)) => session.update(p.clone()),
            (srtp, p) => {
                let ended = srtp.as_ref().map(SrtpSession::suite);
                *srtp = p.clone().map(SrtpSession::new).transpose()?;
                Ok(ended)
            }
        }
    }

    /// How long the peer has been silent (no RTP, no RTCP) at `now`, while it should be
    /// sending: `None` when the media does not flow both ways (a hold) or the session closed.
    pub(crate) fn silent_for(&self, now: Instant) -> Option<Duration> {
        if self.is_closed() {
            return None;
        }
        let st = self.state();
        (st.params.direction == MediaDirection::SendRecv).then(|| st.stream.silent_for(now))
    }

    /// The rate of the PCM the session plays and records: the codec's.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.state().params.codec.sample_rate()
    }

    /// Pacing clock, phase 1: take this tick's received frame out of the jitter buffer.
    pub(crate) fn tick_receive(&self, now: Instant) {
        let mut guard = self.state();
        let st = &mut *guard;
        st.play_out(now);
        if let Some(out) = st.pcm_out.as_mut() {
            self.feed_pcm_out(out, st.rx);
        }
    }

    /// Pacing clock, phase 2: produce and record this tick's frame, send it, and RTCP when due.
    pub(crate) fn tick_send(&self, now: Instant) {
        let mut guard = self.produce_frame();
        let st = &mut *guard;
        st.record();
        if !st.params.sends() {
            return;
        }
        self.send_rtp(st, now);
        self.send_rtcp(st, now);
    }

    /// Fills `tx` from the source; returns with the lock held.
    fn produce_frame(&self) -> MutexGuard<'_, State> {
        let mut guard = self.state();
        let st = &mut *guard;
        let len = st.params.codec.samples_per_frame(PTIME_MS);
        st.tx.len = len;
        match st.source.produce(&mut st.tx, &mut st.pcm_in) {
            Produced::Ready => {}
            Produced::TookPcm => self.pcm_in_room.notify_one(),
            Produced::Finished(done) => {
                st.source = Source::Silence;
                let _ = done.send(());
            }
            Produced::FromPartner(peer) => {
                // Lock order: never hold our lock while taking the peer's.
                drop(guard);
                let mut frame = Frame::silent(len);
                peer.received_frame(&mut frame);
                guard = self.state();
                guard.tx = frame;
            }
        }
        guard
    }

    /// Sends this tick's RTP packet; the stream moves on whether the socket took it or not.
    fn send_rtp(&self, st: &mut State, now: Instant) {
        let step = st.params.codec.timestamp_increment(PTIME_MS);
        let mut srtp = st.srtp.take();
        let packet = st.next_rtp();
        let sealed = srtp.as_mut().map(|s| s.protect_rtp(packet.data));
        let data = match &sealed {
            None => Some(packet.data),
            Some(sealed) => sealed.as_deref(),
        };
        let delivered = data.is_some_and(|data| {
            sendable(self.local_addr, packet.to)
                .and_then(|to| self.socket.send_to(data, to))
                .is_ok()
        });
        st.srtp = srtp;
        if !delivered {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        st.stream.after_send(delivered, step, now);
    }

    /// Sends our RTCP sender report when it is due, on the RTP port with rtcp-mux.
    fn send_rtcp(&self, st: &mut State, now: Instant) {
        if !st.stream.rtcp_due(now) {
            return;
        }
        let socket = if st.params.rtcp_mux {
            &self.socket
        } else {
            &self.rtcp_socket
        };
        let ntp = stats::ntp_now(SystemTime::now());
        let mut srtp = st.srtp.take();
        if let Some(report) = st.stream.sender_report(now, ntp) {
            let sealed = srtp.as_mut().map(|s| s.protect_rtcp(report.data));
            let data = match &sealed {
                None => Some(report.data),
                Some(sealed) => sealed.as_deref(),
            };
            if let Some(data) = data {
                let _ =
                    sendable(self.local_addr, report.to).and_then(|to| socket.send_to(data, to));
            }
        }
        st.srtp = srtp;
    }

    /// Queues DTMF digits as RFC 4733 events; resolves once the last one's end packets went out.
    pub(crate) fn send_dtmf(
        &self,
        digits: &str,
        duration_ms: u32,
    ) -> Result<oneshot::Receiver<()>, String> {
        let mut st = self.state();
        let Some(sender) = st.dtmf_tx.as_mut() else {
            return Err(
                "the peer did not offer telephone-event (RFC 4733); use method 'info'".into(),
            );
        };
        sender.set_tone_duration(duration_ms);
        sender.send(digits).map_err(|e| e.to_string())?;
        let (tx, rx) = oneshot::channel();
        st.dtmf_done.push(tx);
        Ok(rx)
    }

    /// The figures of `call.stats()`.
    pub(crate) fn stats(&self) -> SessionStats {
        let st = self.state();
        let (rx, tx, peer) = (
            st.stream.receive_stats(),
            st.stream.send_stats(),
            st.stream.peer_report(),
        );
        let jitter = st.jitter.stats();
        SessionStats {
            codec: st.params.codec.name().to_string(),
            payload_type: st.params.payload_type,
            direction: st.params.direction.as_str().to_string(),
            local_port: self.local_port,
            remote_address: st.stream.remote().to_string(),
            packets_sent: u64::from(tx.packets()),
            bytes_sent: u64::from(tx.octets()),
            packets_received: rx.received(),
            bytes_received: st.stream.received_bytes(),
            packets_lost: rx.lost_clamped(),
            jitter_ms: rx.jitter_ms(),
            rtt_ms: peer.rtt_ms,
            remote_packets_lost: peer.lost,
            remote_jitter_ms: peer.jitter_ms,
            packets_dropped: self.counters.dropped.load(Ordering::Relaxed)
                + jitter.late
                + jitter.duplicate
                + jitter.too_large,
            frames_dropped: self.counters.frames_dropped.load(Ordering::Relaxed),
            srtp: st.srtp.as_ref().map(|s| s.suite().name().to_string()),
            srtp_auth_failures: self.counters.srtp_auth_failed.load(Ordering::Relaxed),
        }
    }
}

/// The RFC 4733 sender for the peer's telephone-event payload type, if it has one.
fn dtmf_sender(params: &MediaParams) -> Option<DtmfSender> {
    params
        .telephone_event_pt
        .map(|pt| DtmfSender::new(pt, super::dtmf::CLOCK_RATE, PTIME_MS))
}

/// Figures of `MediaSession::stats` (`call.stats()` in JS).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStats {
    /// The codec's encoding name, e.g. `PCMU`.
    pub codec: String,
    /// Its payload type.
    pub payload_type: u8,
    /// Our direction: `sendrecv`, `sendonly`, `recvonly` or `inactive`.
    pub direction: String,
    /// Our RTP port.
    pub local_port: u16,
    /// Where RTP goes (the latched address once the peer's packets came).
    pub remote_address: String,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// RTP payload bytes received.
    pub bytes_received: u64,
    /// Packets of the peer's stream that never came (RFC 3550 cumulative loss, at least 0).
    pub packets_lost: u64,
    /// Interarrival jitter of the peer's stream.
    pub jitter_ms: f64,
    /// Round-trip time from the peer's RTCP, once it reported.
    pub rtt_ms: Option<f64>,
    /// Packets of ours the peer reports lost.
    pub remote_packets_lost: Option<i64>,
    /// The jitter the peer reports on our stream.
    pub remote_jitter_ms: Option<f64>,
    /// Datagrams we did not use (strangers, wrong payload type, garbage, late or duplicate
    /// packets) plus packets our socket would not send.
    pub packets_dropped: u64,
    /// Received frames a slow PCM reader missed.
    pub frames_dropped: u64,
    /// The SRTP suite in use (`AES_CM_128_HMAC_SHA1_80`, ...); `None`: plain RTP.
    pub srtp: Option<String>,
    /// SRTP/SRTCP packets dropped for a bad authentication tag or as replays (also counted
    /// in `packets_dropped`).
    pub srtp_auth_failures: u64,
}

#[cfg(test)]
mod tests {
    use super::sink::PCM_OUT_FRAMES;
    use super::*;
    use crate::media::rtp;
    use std::net::SocketAddr;

    fn pair() -> (UdpSocket, UdpSocket) {
        (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        )
    }

    fn params(remote: SocketAddr, direction: MediaDirection) -> MediaParams {
        MediaParams {
            codec: AudioCodec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            remote,
            direction,
            rtcp_mux: false,
            srtp: None,
        }
    }

    /// A session whose peer is a plain socket: ticks are driven by hand, no clock thread.
    fn session(
        direction: MediaDirection,
    ) -> (
        Arc<MediaSession>,
        UdpSocket,
        tokio::sync::mpsc::UnboundedReceiver<MediaEvent>,
    ) {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (rtp, rtcp) = pair();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let s = MediaSession::new(
            "t".into(),
            rtp,
            rtcp,
            params(peer.local_addr().unwrap(), direction),
            Box::new(move |e| {
                let _ = tx.send(e);
            }),
        )
        .unwrap();
        (s, peer, rx)
    }

    fn recv(peer: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 1500];
        peer.recv_from(&mut buf)
            .ok()
            .map(|(n, a)| (buf[..n].to_vec(), a))
    }

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 12 + payload.len()];
        rtp::write_header(&mut p, false, pt, seq, ts, ssrc);
        p[12..].copy_from_slice(payload);
        p
    }

    #[test]
    fn sends_paced_packets_with_consecutive_sequence_and_timestamps() {
        let (s, peer, _rx) = session(MediaDirection::SendRecv);
        let now = Instant::now();
        for i in 0..3 {
            s.tick_send(now + Duration::from_millis(20 * i));
        }
        let views: Vec<_> = (0..3).map(|_| recv(&peer).unwrap().0).collect();
        let v: Vec<_> = views.iter().map(|p| rtp::parse(p).unwrap()).collect();
        assert!(v
            .iter()
            .all(|x| x.payload_type == 0 && x.payload_end - x.payload_start == 160));
        assert_eq!(v[1].sequence, v[0].sequence.wrapping_add(1));
        assert_eq!(v[2].timestamp, v[0].timestamp.wrapping_add(320));
        assert_eq!(v[0].ssrc, v[2].ssrc);
        assert!(
            v[0].marker && !v[1].marker,
            "marker on the first packet of the stream only"
        );
        assert_eq!(s.stats().packets_sent, 3);
    }

    #[test]
    fn symmetric_rtp_latches_to_the_source_and_drops_strangers() {
        let (s, peer, _rx) = session(MediaDirection::SendRecv);
        let nat = UdpSocket::bind("127.0.0.1:0").unwrap();
        nat.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let now = Instant::now();
        // The peer's packets come from another port than its SDP said (NAT): follow them.
        s.on_datagram(
            &packet(0, 1, 160, 7, &[0xff; 160]),
            nat.local_addr().unwrap(),
            now,
        );
        s.tick_send(now);
        assert!(
            recv(&nat).is_some(),
            "RTP goes where the peer's packets come from"
        );
        // Another SSRC from elsewhere, a wrong payload type and garbage are dropped.
        s.on_datagram(
            &packet(0, 9, 999, 8, &[0xff; 160]),
            peer.local_addr().unwrap(),
            now,
        );
        s.on_datagram(
            &packet(18, 2, 320, 7, &[0; 20]),
            nat.local_addr().unwrap(),
            now,
        );
        s.on_datagram(b"\x80garbage", nat.local_addr().unwrap(), now);
        let st = s.stats();
        assert_eq!(st.packets_dropped, 3, "{st:?}");
        assert_eq!(st.packets_received, 1);
        assert_eq!(st.remote_address, nat.local_addr().unwrap().to_string());
    }

    #[test]
    fn an_update_names_the_srtp_suite_we_stopped_sending_under() {
        use crate::media::srtp::{SrtpKey, SrtpParams};
        let (s, peer, _rx) = session(MediaDirection::SendRecv);
        let remote = peer.local_addr().unwrap();
        let srtp = |suite| MediaParams {
            srtp: Some(SrtpParams {
                suite,
                local: SrtpKey::generate(),
                remote: SrtpKey::generate(),
            }),
            ..params(remote, MediaDirection::SendRecv)
        };
        assert_eq!(
            s.update(srtp(CryptoSuite::AesCm128HmacSha1_80)),
            None,
            "plain to SRTP"
        );
        assert_eq!(
            s.update(srtp(CryptoSuite::AesCm128HmacSha1_32)),
            Some(CryptoSuite::AesCm128HmacSha1_80)
        );
        assert_eq!(
            s.update(params(remote, MediaDirection::SendRecv)),
            Some(CryptoSuite::AesCm128HmacSha1_32),
            "SRTP off"
        );
    }

    #[test]
    fn hold_stops_sending_and_an_update_moves_the_stream() {
        let (s, peer, _rx) = session(MediaDirection::SendRecv);
        let now = Instant::now();
        s.update(params(peer.local_addr().unwrap(), MediaDirection::RecvOnly));
        s.tick_send(now);
        assert!(recv(&peer).is_none(), "on hold (recvonly) nothing is sent");
        let moved = UdpSocket::bind("127.0.0.1:0").unwrap();
        moved
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.update(params(
            moved.local_addr().unwrap(),
            MediaDirection::SendRecv,
        ));
        s.tick_send(now + Duration::from_millis(20));
        assert!(
            recv(&moved).is_some(),
            "a re-INVITE with a new address moves the stream"
        );
    }

    #[test]
    fn dtmf_goes_out_as_telephone_events_and_comes_back_as_one_event_per_digit() {
        let (s, peer, _rx) = session(MediaDirection::SendRecv);
        let mut done = s.send_dtmf("5", 100).unwrap();
        let now = Instant::now();
        let mut events = Vec::new();
        for i in 0..12 {
            s.tick_send(now + Duration::from_millis(20 * i));
            let (p, _) = recv(&peer).unwrap();
            let v = rtp::parse(&p).unwrap();
            if v.payload_type == 101 {
                events.push(p[v.payload_start..v.payload_end].to_vec());
            }
        }
        assert_eq!(
            events.len(),
            7,
            "4 packets growing to 80 ms + 3 end packets at 100 ms"
        );
        assert_eq!(events[0][0], 5);
        assert!(events[4..]
            .iter()
            .all(|e| e[1] & 0x80 != 0 && e[2..4] == [0x03, 0x20]));
        assert!(
            done.try_recv().is_ok(),
            "sendDtmf resolves once the end packets are out"
        );
        // Receiving: the same digit reported once although its packets repeat.
        let (r, _peer2, mut rx) = session(MediaDirection::SendRecv);
        let from = peer.local_addr().unwrap();
        for (i, e) in events.iter().enumerate() {
            r.on_datagram(&packet(101, i as u16, 800, 3, e), from, now);
        }
        let mut digits = Vec::new();
        while let Ok(MediaEvent::Dtmf {
            call_id,
            digit,
            duration_ms,
        }) = rx.try_recv()
        {
            digits.push((call_id, digit, duration_ms));
        }
        assert_eq!(digits, vec![("t".to_string(), '5', 20)]);
    }

    #[test]
    fn pcm_out_is_bounded_and_counts_drops() {
        let (s, _peer, _rx) = session(MediaDirection::SendRecv);
        s.open_pcm_out();
        let now = Instant::now();
        for i in 0..(PCM_OUT_FRAMES as u64 + 30) {
            s.tick_receive(now + Duration::from_millis(20 * i));
        }
        let bytes = s.take_pcm_out().unwrap();
        assert_eq!(bytes.len(), PCM_OUT_FRAMES * 320);
        assert_eq!(s.stats().frames_dropped, 30);
    }
}
