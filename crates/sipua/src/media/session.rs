//! One call's RTP session: the sockets, what is negotiated, the jitter buffer, the source we
//! send (silence, a file, a tone, PCM from JS, a bridged call) and the sinks of what we receive
//! (recorder, PCM to JS, a bridged call). The pacing clock ([`super::engine`]) drives
//! [`MediaSession::tick_receive`] and [`MediaSession::tick_send`] every 20 ms for all calls; a
//! tokio task per session reads the socket ([`MediaSession::receive_loop`]).
//!
//! Nothing in the per-packet path allocates: frames live in fixed arrays inside the session.

use super::codec::{Decoder, Encoder};
use super::dtmf::{DtmfReceiver, DtmfSender};
use super::jitter::{JitterBuffer, Playout};
use super::recorder::Recorder;
use super::rtp;
use super::stats::{ReceiveStats, SendStats};
use super::tone::ToneGenerator;
use super::{MediaDirection, MediaParams};
use crate::event::Event;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// Samples in the largest frame: 20 ms at 16 kHz (G.722).
pub const MAX_FRAME: usize = 320;
/// Packet time of everything we send.
pub const PTIME_MS: u32 = 20;
/// Frames kept for a PCM reader that is not reading (1 s); older ones are dropped and counted.
const PCM_OUT_FRAMES: usize = 50;
/// Frames a PCM writer may queue ahead (200 ms) before its writes wait.
pub const PCM_IN_FRAMES: usize = 10;

/// A 20 ms frame of linear PCM at the session's sample rate.
#[derive(Clone, Copy)]
pub struct Frame {
    pub samples: [i16; MAX_FRAME],
    pub len: usize,
}

impl Frame {
    pub const fn silent(len: usize) -> Self {
        Self {
            samples: [0; MAX_FRAME],
            len,
        }
    }

    pub fn pcm(&self) -> &[i16] {
        &self.samples[..self.len]
    }
}

/// What we send when no DTMF is going on.
enum Source {
    Silence,
    Samples {
        data: Arc<[i16]>,
        pos: usize,
        looped: bool,
        done: Option<oneshot::Sender<()>>,
    },
    Tone {
        generator: ToneGenerator,
        /// Frames left; `None` = until stopped.
        remaining: Option<u32>,
        done: Option<oneshot::Sender<()>>,
    },
    /// PCM written by JS (`call.audio.writable`).
    Stream,
    /// The received audio of another call.
    Bridge(Weak<MediaSession>),
}

/// PCM frames going to JS, bounded.
pub struct PcmOut {
    pub frames: VecDeque<Frame>,
    pub dropped: u64,
    pub closed: bool,
}

/// Counters shown in `stats()`.
#[derive(Default)]
pub struct Counters {
    pub dropped: AtomicU64,
    pub frames_dropped: AtomicU64,
}

/// The mutable state of a session, behind one lock shared by the clock and the receive task.
struct State {
    params: MediaParams,
    /// Where RTP goes: the SDP address until the peer's packets show where it really is.
    send_to: SocketAddr,
    rtcp_to: SocketAddr,
    latched: bool,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    remote_ssrc: Option<u32>,
    encoder: Encoder,
    decoder: Decoder,
    jitter: JitterBuffer,
    /// What we received this tick, decoded (the bridge partner's source).
    rx: Frame,
    last_rx: Frame,
    /// What we sent this tick (the recorder's second channel).
    tx: Frame,
    source: Source,
    pcm_in: VecDeque<Frame>,
    pcm_in_partial: Frame,
    pcm_out: Option<PcmOut>,
    recorder: Option<Recorder>,
    /// `None` while the peer takes no telephone-event.
    dtmf_tx: Option<DtmfSender>,
    /// Resolved when the sender has sent everything queued.
    dtmf_done: Vec<oneshot::Sender<()>>,
    dtmf_rx: DtmfReceiver,
    rx_stats: ReceiveStats,
    rx_bytes: u64,
    tx_stats: SendStats,
    cname: String,
    next_rtcp: Instant,
    /// When the peer's RTP or RTCP last arrived (or the media last changed): `rtpTimeoutMs`.
    last_heard: Instant,
    rtt_ms: Option<f64>,
    remote_lost: Option<i64>,
    remote_jitter_ms: Option<f64>,
    /// The next audio packet starts a talkspurt (the stream's first, or after DTMF): marker bit.
    talkspurt: bool,
    /// Scratch for the outgoing packet.
    packet: [u8; 1500],
    /// Origin of the microsecond clock the jitter buffer runs on.
    epoch: Instant,
}

/// One call's media.
pub struct MediaSession {
    pub call_id: String,
    pub local_port: u16,
    socket: UdpSocket,
    rtcp_socket: UdpSocket,
    state: Mutex<State>,
    pub counters: Counters,
    /// Wakes PCM readers (frames arrived) and writers (room in the queue).
    pub pcm_out_ready: Notify,
    pub pcm_in_room: Notify,
    closed: AtomicBool,
    /// Ends the receive task at once when the session closes.
    close_token: tokio_util::sync::CancellationToken,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
}

impl MediaSession {
    /// A session on the call's reserved sockets (made non-blocking here).
    pub fn new(
        call_id: String,
        rtp_socket: UdpSocket,
        rtcp_socket: UdpSocket,
        params: MediaParams,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
    ) -> std::io::Result<Arc<Self>> {
        rtp_socket.set_nonblocking(true)?;
        rtcp_socket.set_nonblocking(true)?;
        let local_port = rtp_socket.local_addr()?.port();
        let frame = params.codec.samples_per_frame(PTIME_MS);
        let rtcp_to = rtcp_target(&params);
        let state = State {
            send_to: params.remote,
            rtcp_to,
            latched: false,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            remote_ssrc: None,
            encoder: Encoder::new(params.codec),
            decoder: Decoder::new(params.codec),
            jitter: JitterBuffer::new(
                params.codec.rtp_clock_rate(),
                params.codec.timestamp_increment(PTIME_MS),
                40,
                300,
            ),
            rx: Frame::silent(frame),
            last_rx: Frame::silent(frame),
            tx: Frame::silent(frame),
            source: Source::Silence,
            pcm_in: VecDeque::with_capacity(PCM_IN_FRAMES),
            pcm_in_partial: Frame::silent(0),
            pcm_out: None,
            recorder: None,
            dtmf_tx: dtmf_sender(&params),
            dtmf_done: Vec::new(),
            dtmf_rx: DtmfReceiver::new(),
            rx_stats: ReceiveStats::new(params.codec.rtp_clock_rate()),
            rx_bytes: 0,
            tx_stats: SendStats::new(params.codec.rtp_clock_rate()),
            cname: format!("sip-native-{}", crate::ids::random_token(8)),
            next_rtcp: Instant::now() + super::stats::rtcp_interval(true, rand::random()),
            last_heard: Instant::now(),
            rtt_ms: None,
            remote_lost: None,
            remote_jitter_ms: None,
            talkspurt: true,
            packet: [0; 1500],
            epoch: Instant::now(),
            params,
        };
        Ok(Arc::new(Self {
            call_id,
            local_port,
            socket: rtp_socket,
            rtcp_socket,
            state: Mutex::new(state),
            counters: Counters::default(),
            pcm_out_ready: Notify::new(),
            pcm_in_room: Notify::new(),
            closed: AtomicBool::new(false),
            close_token: tokio_util::sync::CancellationToken::new(),
            events,
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the media state half-written in a way
        // that matters more than losing the call's audio; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Ends the session: resolves pending playback/DTMF promises, finishes the recording.
    pub fn close(&self) -> Option<super::recorder::RecordingInfo> {
        self.closed.store(true, Ordering::Relaxed);
        self.close_token.cancel();
        let mut st = self.state();
        st.source = Source::Silence;
        st.dtmf_done.clear();
        if let Some(out) = st.pcm_out.as_mut() {
            out.closed = true;
        }
        let rec = st.recorder.take();
        drop(st);
        self.pcm_out_ready.notify_waiters();
        self.pcm_in_room.notify_waiters();
        rec.map(Recorder::finish)
    }

    /// A re-INVITE changed address, port, codec or direction.
    pub fn update(&self, params: MediaParams) {
        let mut st = self.state();
        if params.telephone_event_pt != st.params.telephone_event_pt {
            st.dtmf_tx = dtmf_sender(&params);
        }
        if params.codec != st.params.codec {
            st.encoder = Encoder::new(params.codec);
            st.decoder = Decoder::new(params.codec);
            let frame = params.codec.samples_per_frame(PTIME_MS);
            st.rx = Frame::silent(frame);
            st.last_rx = Frame::silent(frame);
            st.tx = Frame::silent(frame);
        }
        if params.remote != st.params.remote {
            st.send_to = params.remote;
            st.latched = false;
        }
        st.rtcp_to = rtcp_target(&params);
        st.params = params;
        st.last_heard = Instant::now();
    }

    /// How long the peer has been silent (no RTP, no RTCP) at `now`, while it should be
    /// sending: `None` when the media does not flow both ways (a hold) or the session closed.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        if self.is_closed() {
            return None;
        }
        let st = self.state();
        (st.params.direction == MediaDirection::SendRecv)
            .then(|| now.saturating_duration_since(st.last_heard))
    }

    pub fn params(&self) -> MediaParams {
        self.state().params.clone()
    }

    pub fn sample_rate(&self) -> u32 {
        self.state().params.codec.sample_rate()
    }

    // ---- the receive side ----------------------------------------------------------------

    /// Reads the RTP (and, without rtcp-mux, the RTCP) socket until the session closes.
    pub async fn receive_loop(self: Arc<Self>) {
        let rtp = match self
            .socket
            .try_clone()
            .and_then(tokio::net::UdpSocket::from_std)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call = %self.call_id, error = %e, "RTP socket unusable");
                return;
            }
        };
        let rtcp = self
            .rtcp_socket
            .try_clone()
            .and_then(tokio::net::UdpSocket::from_std)
            .ok();
        let mut buf = [0u8; 2048];
        let mut rtcp_buf = [0u8; 1500];
        while !self.is_closed() {
            tokio::select! {
                r = rtp.recv_from(&mut buf) => match r {
                    Ok((len, from)) => self.on_datagram(&buf[..len], from, Instant::now()),
                    Err(e) => {
                        tracing::debug!(call = %self.call_id, error = %e, "RTP receive error");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                },
                r = async {
                    match &rtcp {
                        Some(s) => s.recv_from(&mut rtcp_buf).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Ok((len, _)) = r {
                        self.on_rtcp(&rtcp_buf[..len], Instant::now());
                    }
                }
                _ = self.close_token.cancelled() => break,
            }
        }
    }

    /// Handles one datagram from the RTP port: RTCP (mux), DTMF, or audio into the jitter buffer.
    pub fn on_datagram(&self, data: &[u8], from: SocketAddr, now: Instant) {
        if rtp::is_rtcp(data) {
            return self.on_rtcp(data, now);
        }
        let Ok(view) = rtp::parse(data) else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut st = self.state();
        let payload = &data[view.payload_start..view.payload_end];
        let is_dtmf = Some(view.payload_type) == st.params.telephone_event_pt;
        if !is_dtmf && view.payload_type != st.params.payload_type {
            tracing::trace!(call = %self.call_id, pt = view.payload_type, "RTP dropped: payload type not negotiated");
            drop(st);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match st.remote_ssrc {
            Some(ssrc) if ssrc != view.ssrc => {
                // A new source mid-call is legitimate only when its sequence starts anew (a
                // re-INVITE or a PBX switching legs); stray packets of another stream are not.
                if !st.latched || from != st.send_to {
                    tracing::trace!(call = %self.call_id, ssrc = view.ssrc, %from, "RTP dropped: unknown SSRC");
                    drop(st);
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                st.remote_ssrc = Some(view.ssrc);
                st.jitter.reset();
                st.rx_stats = ReceiveStats::new(st.params.codec.rtp_clock_rate());
            }
            None => st.remote_ssrc = Some(view.ssrc),
            _ => {}
        }
        if !st.latched {
            // Symmetric RTP (RFC 4961): answer where the peer's packets come from (NAT).
            st.send_to = from;
            if !st.params.rtcp_mux {
                st.rtcp_to = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
            } else {
                st.rtcp_to = from;
            }
            st.latched = true;
        }
        st.last_heard = now;
        let arrival = micros_since(st.epoch, now);
        if is_dtmf {
            st.rx_stats.on_event_packet(view.sequence, arrival);
        } else {
            st.rx_stats
                .on_packet(view.sequence, view.timestamp, arrival);
        }
        st.rx_bytes += payload.len() as u64;
        if is_dtmf {
            tracing::trace!(call = %self.call_id, ts = view.timestamp, seq = view.sequence, ?payload, "telephone-event packet");
            if let Some(digit) = st.dtmf_rx.on_packet(view.timestamp, payload) {
                drop(st);
                let _ = self.events.send(Event::Dtmf {
                    call_id: self.call_id.clone(),
                    digit: digit.digit.to_string(),
                    method: "rfc4733".into(),
                    duration_ms: u32::from(digit.duration) * 1000 / super::dtmf::CLOCK_RATE,
                });
            }
            return;
        }
        if !st.params.receives() {
            return;
        }
        st.jitter
            .push(view.sequence, view.timestamp, payload, arrival);
    }

    fn on_rtcp(&self, data: &[u8], now: Instant) {
        let reports = super::stats::parse_rtcp(data);
        if reports.is_empty() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let arrival_ntp = super::stats::ntp_now(std::time::SystemTime::now());
        let mut st = self.state();
        st.last_heard = now;
        let ssrc = st.ssrc;
        let arrival_us = micros_since(st.epoch, now);
        for info in reports {
            if let Some(block) = info.report_for(ssrc) {
                st.remote_lost = Some(i64::from(block.cumulative_lost));
                st.remote_jitter_ms = Some(
                    f64::from(block.jitter) * 1000.0 / f64::from(st.params.codec.rtp_clock_rate()),
                );
                if let Some(rtt) = super::stats::rtt(block.lsr, block.dlsr, arrival_ntp) {
                    st.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                }
            }
            if let super::stats::RtcpInfo::SenderReport { info, .. } = &info {
                st.rx_stats.on_sender_report(info.ntp_time, arrival_us);
            }
        }
    }

    /// Pacing clock, phase 1: take this tick's received frame out of the jitter buffer.
    pub fn tick_receive(&self, now: Instant) {
        let mut st = self.state();
        let st = &mut *st;
        let len = st.params.codec.samples_per_frame(PTIME_MS);
        st.rx.len = len;
        if !st.params.receives() {
            st.rx.samples[..len].fill(0);
        } else {
            let at = micros_since(st.epoch, now);
            match st.jitter.pop(at) {
                Playout::Frame(payload) => {
                    st.decoder.decode_into(payload, &mut st.rx.samples[..len]);
                    st.last_rx = st.rx;
                }
                Playout::Conceal => {
                    // One lost frame: repeat the last one at half level (cheap PLC).
                    for (o, i) in st.rx.samples[..len]
                        .iter_mut()
                        .zip(st.last_rx.samples[..len].iter())
                    {
                        *o = *i / 2;
                    }
                }
                Playout::Silence => st.rx.samples[..len].fill(0),
            }
        }
        if let Some(out) = st.pcm_out.as_mut() {
            if out.frames.len() >= PCM_OUT_FRAMES {
                out.frames.pop_front();
                out.dropped += 1;
                self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
            out.frames.push_back(st.rx);
            self.pcm_out_ready.notify_one();
        }
    }

    /// The frame received this tick (for a bridge partner), resampled to `len` samples.
    fn received_frame(&self, out: &mut Frame) {
        let st = self.state();
        resample_into(st.rx.pcm(), out);
    }

    /// Pacing clock, phase 2: produce, encode and send this tick's frame; RTCP when due.
    pub fn tick_send(&self, now: Instant) {
        let mut guard = self.state();
        let st = &mut *guard;
        let len = st.params.codec.samples_per_frame(PTIME_MS);
        let rtp_step = st.params.codec.timestamp_increment(PTIME_MS);
        st.tx.len = len;
        // Source first, even while DTMF replaces the audio: files and tones keep their timing.
        let mut bridge_from = None;
        let mut finished = None;
        match &mut st.source {
            Source::Silence => st.tx.samples[..len].fill(0),
            Source::Samples {
                data,
                pos,
                looped,
                done,
            } => {
                let n = len.min(data.len().saturating_sub(*pos));
                st.tx.samples[..n].copy_from_slice(&data[*pos..*pos + n]);
                st.tx.samples[n..len].fill(0);
                *pos += n;
                if *pos >= data.len() {
                    if *looped && !data.is_empty() {
                        *pos = 0;
                    } else {
                        finished = done.take();
                    }
                }
            }
            Source::Tone {
                generator,
                remaining,
                done,
            } => {
                generator.fill(&mut st.tx.samples[..len]);
                if let Some(r) = remaining {
                    *r = r.saturating_sub(1);
                    if *r == 0 {
                        finished = done.take();
                    }
                }
            }
            Source::Stream => match st.pcm_in.pop_front() {
                Some(f) => {
                    resample_into(f.pcm(), &mut st.tx);
                    self.pcm_in_room.notify_one();
                }
                None => st.tx.samples[..len].fill(0),
            },
            Source::Bridge(peer) => bridge_from = peer.upgrade(),
        }
        if finished.is_some() {
            st.source = Source::Silence;
        }
        if let Some(tx) = finished {
            let _ = tx.send(());
        }
        if let Some(peer) = bridge_from {
            // Lock order: never hold our lock while taking the peer's.
            drop(guard);
            let mut frame = Frame::silent(len);
            peer.received_frame(&mut frame);
            guard = self.state();
            guard.tx = frame;
        }
        let st = &mut *guard;
        if let Some(rec) = st.recorder.as_mut() {
            rec.push(st.rx.pcm(), st.tx.pcm());
        }
        if !st.params.sends() {
            return;
        }
        let ssrc = st.ssrc;
        let sent = if let Some(pkt) = st.dtmf_tx.as_mut().and_then(DtmfSender::next_packet) {
            let ts = pkt.rtp_timestamp(st.timestamp);
            let n = rtp::write_header(
                &mut st.packet,
                pkt.marker,
                pkt.payload_type,
                st.seq,
                ts,
                ssrc,
            );
            st.packet[n..n + 4].copy_from_slice(&pkt.payload);
            st.talkspurt = true;
            n + 4
        } else {
            let marker = std::mem::take(&mut st.talkspurt);
            let n = rtp::write_header(
                &mut st.packet,
                marker,
                st.params.payload_type,
                st.seq,
                st.timestamp,
                ssrc,
            );
            n + st
                .encoder
                .encode_into(&st.tx.samples[..len], &mut st.packet[n..])
        };
        let now_us = micros_since(st.epoch, now);
        if !st.dtmf_done.is_empty() && st.dtmf_tx.as_ref().is_none_or(DtmfSender::is_idle) {
            for done in st.dtmf_done.drain(..) {
                let _ = done.send(());
            }
        }
        match self.socket.send_to(&st.packet[..sent], st.send_to) {
            Ok(_) => st
                .tx_stats
                .on_packet(st.timestamp, sent - rtp::HEADER_LEN, now_us),
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        st.seq = st.seq.wrapping_add(1);
        st.timestamp = st.timestamp.wrapping_add(rtp_step);
        if now >= st.next_rtcp {
            st.next_rtcp = now + super::stats::rtcp_interval(false, rand::random());
            let blocks: Vec<_> = match st.remote_ssrc {
                Some(remote) => vec![st.rx_stats.report_block(remote, now_us)],
                None => Vec::new(),
            };
            let info = st
                .tx_stats
                .sender_info(super::stats::ntp_now(std::time::SystemTime::now()), now_us);
            if let Ok(report) = super::stats::build_sr(ssrc, &info, &blocks, &st.cname) {
                let socket = if st.params.rtcp_mux {
                    &self.socket
                } else {
                    &self.rtcp_socket
                };
                let _ = socket.send_to(&report, st.rtcp_to);
            }
        }
    }

    // ---- sources ---------------------------------------------------------------------------

    /// Plays `samples` (already at the session's rate); resolves when done or replaced.
    pub fn play_samples(&self, data: Arc<[i16]>, looped: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.state().source = Source::Samples {
            data,
            pos: 0,
            looped,
            done: Some(tx),
        };
        rx
    }

    pub fn play_tone(&self, generator: ToneGenerator, duration_ms: u32) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let remaining = (duration_ms > 0).then(|| duration_ms.div_ceil(PTIME_MS));
        self.state().source = Source::Tone {
            generator,
            remaining,
            done: Some(tx),
        };
        rx
    }

    /// Stops file/tone/stream playback (their promises resolve: dropping the sender).
    pub fn stop_playback(&self) {
        let mut st = self.state();
        if !matches!(st.source, Source::Bridge(_)) {
            st.source = Source::Silence;
        }
    }

    pub fn bridge_to(&self, peer: &Arc<MediaSession>) {
        self.state().source = Source::Bridge(Arc::downgrade(peer));
    }

    pub fn unbridge(&self) {
        let mut st = self.state();
        if matches!(st.source, Source::Bridge(_)) {
            st.source = Source::Silence;
        }
    }

    pub fn bridged_to(&self) -> Option<Arc<MediaSession>> {
        match &self.state().source {
            Source::Bridge(p) => p.upgrade(),
            _ => None,
        }
    }

    /// Queues DTMF digits as RFC 4733 events; resolves once the last one's end packets went out.
    pub fn send_dtmf(
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

    // ---- sinks ------------------------------------------------------------------------------

    pub fn start_recording(&self, recorder: Recorder) {
        self.state().recorder = Some(recorder);
    }

    pub fn stop_recording(&self) -> Option<super::recorder::RecordingInfo> {
        let rec = self.state().recorder.take();
        rec.map(Recorder::finish)
    }

    /// Turns on the PCM output queue (first read).
    pub fn open_pcm_out(&self) {
        let mut st = self.state();
        if st.pcm_out.is_none() {
            st.pcm_out = Some(PcmOut {
                frames: VecDeque::with_capacity(PCM_OUT_FRAMES),
                dropped: 0,
                closed: false,
            });
        }
    }

    /// Takes the queued received frames as 16-bit little-endian bytes; `None` once closed.
    pub fn take_pcm_out(&self) -> Option<Vec<u8>> {
        let mut st = self.state();
        let out = st.pcm_out.as_mut()?;
        if out.frames.is_empty() && (out.closed || self.is_closed()) {
            return None;
        }
        let mut bytes = Vec::with_capacity(out.frames.iter().map(|f| f.len * 2).sum());
        for f in out.frames.drain(..) {
            for s in f.pcm() {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
        }
        Some(bytes)
    }

    /// Queues PCM from JS (16-bit LE at the session's rate). Returns how many bytes were taken;
    /// fewer than given when the queue is full (the caller waits on `pcm_in_room`).
    pub fn push_pcm_in(&self, bytes: &[u8]) -> usize {
        let mut st = self.state();
        if !matches!(st.source, Source::Stream) {
            st.source = Source::Stream;
        }
        let frame_len = st.params.codec.samples_per_frame(PTIME_MS);
        let mut taken = 0;
        for pair in bytes.chunks_exact(2) {
            if st.pcm_in.len() >= PCM_IN_FRAMES {
                break;
            }
            let i = st.pcm_in_partial.len;
            st.pcm_in_partial.samples[i] = i16::from_le_bytes([pair[0], pair[1]]);
            st.pcm_in_partial.len += 1;
            taken += 2;
            if st.pcm_in_partial.len == frame_len {
                let f = st.pcm_in_partial;
                st.pcm_in.push_back(f);
                st.pcm_in_partial.len = 0;
            }
        }
        taken
    }

    pub fn stats(&self) -> SessionStats {
        let st = self.state();
        SessionStats {
            codec: st.params.codec.name().to_string(),
            payload_type: st.params.payload_type,
            direction: st.params.direction.as_str().to_string(),
            local_port: self.local_port,
            remote_address: st.send_to.to_string(),
            packets_sent: u64::from(st.tx_stats.packets()),
            bytes_sent: u64::from(st.tx_stats.octets()),
            packets_received: st.rx_stats.received(),
            bytes_received: st.rx_bytes,
            packets_lost: st.rx_stats.lost_clamped(),
            jitter_ms: st.rx_stats.jitter_ms(),
            rtt_ms: st.rtt_ms,
            remote_packets_lost: st.remote_lost,
            remote_jitter_ms: st.remote_jitter_ms,
            packets_dropped: self.counters.dropped.load(Ordering::Relaxed) + {
                let j = st.jitter.stats();
                j.late + j.duplicate + j.too_large
            },
            frames_dropped: self.counters.frames_dropped.load(Ordering::Relaxed),
        }
    }
}

/// The RFC 4733 sender for the peer's telephone-event payload type, if it has one.
fn dtmf_sender(params: &MediaParams) -> Option<DtmfSender> {
    params
        .telephone_event_pt
        .map(|pt| DtmfSender::new(pt, super::dtmf::CLOCK_RATE, PTIME_MS))
}

/// Microseconds from `epoch` to `now` (the jitter buffer's clock).
fn micros_since(epoch: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(epoch).as_micros() as u64
}

/// Where RTCP goes before the peer's packets tell us: the next port, or the RTP port with mux.
fn rtcp_target(params: &MediaParams) -> SocketAddr {
    if params.rtcp_mux {
        params.remote
    } else {
        SocketAddr::new(params.remote.ip(), params.remote.port().wrapping_add(1))
    }
}

/// Copies `input` into `out` (whose `len` is the wanted size), converting 8 <-> 16 kHz frames
/// by sample doubling (with interpolation) or pair averaging.
fn resample_into(input: &[i16], out: &mut Frame) {
    let n = out.len;
    if input.len() == n {
        out.samples[..n].copy_from_slice(input);
    } else if input.len() * 2 == n {
        for (i, s) in input.iter().enumerate() {
            let next = input.get(i + 1).copied().unwrap_or(*s);
            out.samples[2 * i] = *s;
            out.samples[2 * i + 1] = ((i32::from(*s) + i32::from(next)) / 2) as i16;
        }
    } else if input.len() == n * 2 {
        for i in 0..n {
            out.samples[i] = ((i32::from(input[2 * i]) + i32::from(input[2 * i + 1])) / 2) as i16;
        }
    } else {
        let m = input.len().min(n);
        out.samples[..m].copy_from_slice(&input[..m]);
        out.samples[m..n].fill(0);
    }
}

/// Figures of [`MediaSession::stats`].
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStats {
    pub codec: String,
    pub payload_type: u8,
    pub direction: String,
    pub local_port: u16,
    pub remote_address: String,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_lost: u64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    pub remote_packets_lost: Option<i64>,
    pub remote_jitter_ms: Option<f64>,
    pub packets_dropped: u64,
    pub frames_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::AudioCodec;

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
        }
    }

    /// A session whose peer is a plain socket: ticks are driven by hand, no clock thread.
    fn session(
        direction: MediaDirection,
    ) -> (
        Arc<MediaSession>,
        UdpSocket,
        tokio::sync::mpsc::UnboundedReceiver<Event>,
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
            tx,
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
        while let Ok(Event::Dtmf { digit, .. }) = rx.try_recv() {
            digits.push(digit);
        }
        assert_eq!(digits, vec!["5".to_string()]);
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

    #[test]
    fn resampling_frames() {
        let mut out = Frame::silent(320);
        let input: Vec<i16> = (0..160).map(|i| i as i16 * 10).collect();
        resample_into(&input, &mut out);
        assert_eq!(out.samples[0], 0);
        assert_eq!(out.samples[1], 5);
        assert_eq!(out.samples[2], 10);
        let mut down = Frame::silent(160);
        resample_into(out.pcm(), &mut down);
        assert_eq!(down.samples[1], (10 + 15) / 2);
        let mut same = Frame::silent(160);
        resample_into(&input, &mut same);
        assert_eq!(same.pcm(), &input[..]);
    }
}
