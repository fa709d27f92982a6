//! The protocol part of a session's RTP stream, sans IO (the model of quinn-proto): it takes
//! the time as an argument and hands back the datagrams to send, so it has no socket, no clock
//! and no lock, and the session tests can drive it tick by tick.
//!
//! It numbers what we send (sequence, timestamp, marker at talkspurts), decides which received
//! packets belong to the call (payload type, SSRC) and where the peer really is (symmetric RTP
//! latching, RFC 4961), keeps the RTP statistics, and times and writes our RTCP reports.

use crate::media::dtmf::DtmfPacket;
use crate::media::rtp::{self, RtpView};
use crate::media::stats::{self, ReceiveStats, RtcpInfo, SendStats};
use crate::media::MediaParams;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A datagram the stream wants sent; the session owns the sockets.
pub(super) struct Transmit<'a> {
    /// Where to.
    pub(super) to: SocketAddr,
    /// The datagram, borrowed from the stream's buffer.
    pub(super) data: &'a [u8],
}

/// What an accepted RTP packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carries {
    /// Audio in the negotiated codec.
    Audio,
    /// An RFC 4733 telephone-event.
    Event,
}

/// An RTP packet the stream accepted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Accepted {
    /// Audio or telephone-event.
    pub(super) carries: Carries,
    /// The peer started a new stream (new SSRC): what was buffered of the old one is stale.
    pub(super) restarted: bool,
    /// Arrival on the stream's microsecond clock (see [`RtpStream::clock_us`]).
    pub(super) arrival_us: u64,
}

/// Why an RTP packet was not for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejected {
    /// Neither the codec's nor the telephone-event payload type we negotiated.
    PayloadType,
    /// Another source than the one we follow, and not from where the peer sends.
    UnknownSsrc,
}

/// What the peer's RTCP reports about the stream we send.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PeerReport {
    /// Round-trip time from its last report block.
    pub(super) rtt_ms: Option<f64>,
    /// Packets of ours it lost, cumulative.
    pub(super) lost: Option<i64>,
    /// The interarrival jitter it sees.
    pub(super) jitter_ms: Option<f64>,
}

/// One call's RTP stream, both ways, without its sockets.
pub(super) struct RtpStream {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// The next audio packet starts a talkspurt (the stream's first, or after DTMF): marker bit.
    talkspurt: bool,
    /// Where RTP goes: the SDP address until the peer's packets show where it really is.
    send_to: SocketAddr,
    rtcp_to: SocketAddr,
    latched: bool,
    remote_ssrc: Option<u32>,
    rx_stats: ReceiveStats,
    rx_bytes: u64,
    tx_stats: SendStats,
    peer: PeerReport,
    cname: String,
    next_rtcp: Instant,
    /// When the peer's RTP or RTCP last arrived (or the media last changed): `rtpTimeoutMs`.
    last_heard: Instant,
    /// The RTP packet being sent: written in place, so sending allocates nothing.
    packet: [u8; 1500],
    /// Its length.
    packet_len: usize,
    /// The last RTCP report written.
    report: Vec<u8>,
    /// Origin of the microsecond clock of the statistics and the jitter buffer.
    epoch: Instant,
}

impl RtpStream {
    /// A stream with random SSRC, sequence and timestamp origins (RFC 3550 section 5.1), its
    /// first RTCP report due after the initial, shortened interval.
    pub(super) fn new(params: &MediaParams, now: Instant) -> Self {
        let clock = params.codec.rtp_clock_rate();
        Self {
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            talkspurt: true,
            send_to: params.remote,
            rtcp_to: rtcp_address(params.remote, params.rtcp_mux),
            latched: false,
            remote_ssrc: None,
            rx_stats: ReceiveStats::new(clock),
            rx_bytes: 0,
            tx_stats: SendStats::new(clock),
            peer: PeerReport::default(),
            cname: format!("sip-native-{}", crate::ids::random_token(8)),
            next_rtcp: now + stats::rtcp_interval(true, rand::random()),
            last_heard: now,
            packet: [0; 1500],
            packet_len: 0,
            report: Vec::new(),
            epoch: now,
        }
    }

    /// A re-INVITE changed the parameters from `old` to `new`: a new address is to be learned
    /// again, and the silence timer starts over.
    pub(super) fn update(&mut self, old: &MediaParams, new: &MediaParams, now: Instant) {
        if new.remote != old.remote {
            self.send_to = new.remote;
            self.latched = false;
        }
        self.rtcp_to = rtcp_address(new.remote, new.rtcp_mux);
        self.last_heard = now;
    }

    /// Microseconds since the stream began: the clock of its statistics and jitter buffer.
    pub(super) fn clock_us(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// How long the peer has been silent at `now`.
    pub(super) fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_heard)
    }

    // ---- receiving ------------------------------------------------------------------------

    /// Takes in one parsed RTP packet from `from` at `now`: checks it is ours, follows the
    /// source and the address it comes from, and counts it.
    pub(super) fn on_rtp(
        &mut self,
        params: &MediaParams,
        view: &RtpView,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Accepted, Rejected> {
        let carries = if Some(view.payload_type) == params.telephone_event_pt {
            Carries::Event
        } else if view.payload_type == params.payload_type {
            Carries::Audio
        } else {
            return Err(Rejected::PayloadType);
        };
        let restarted = self.follow_source(params, view.ssrc, from)?;
        if !self.latched {
            // Symmetric RTP (RFC 4961): answer where the peer's packets come from (NAT).
            self.send_to = from;
            self.rtcp_to = rtcp_address(from, params.rtcp_mux);
            self.latched = true;
        }
        self.last_heard = now;
        let arrival_us = self.clock_us(now);
        match carries {
            Carries::Event => self.rx_stats.on_event_packet(view.sequence, arrival_us),
            Carries::Audio => self
                .rx_stats
                .on_packet(view.sequence, view.timestamp, arrival_us),
        };
        self.rx_bytes += (view.payload_end - view.payload_start) as u64;
        Ok(Accepted {
            carries,
            restarted,
            arrival_us,
        })
    }

    /// Follows the peer's SSRC; `true` when it starts a new one.
    fn follow_source(
        &mut self,
        params: &MediaParams,
        ssrc: u32,
        from: SocketAddr,
    ) -> Result<bool, Rejected> {
        match self.remote_ssrc {
            Some(known) if known != ssrc => {
                // A new source mid-call is legitimate only when its sequence starts anew (a
                // re-INVITE or a PBX switching legs); stray packets of another stream are not.
                if !self.latched || from != self.send_to {
                    return Err(Rejected::UnknownSsrc);
                }
                self.remote_ssrc = Some(ssrc);
                self.rx_stats = ReceiveStats::new(params.codec.rtp_clock_rate());
                Ok(true)
            }
            None => {
                self.remote_ssrc = Some(ssrc);
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Takes in the peer's RTCP: its report on our stream (loss, jitter, round trip) and its
    /// sender report's clock, for the delay since in our next report. `arrival_ntp` is the
    /// wall clock at `now` in NTP format.
    pub(super) fn on_rtcp(
        &mut self,
        params: &MediaParams,
        reports: &[RtcpInfo],
        arrival_ntp: u64,
        now: Instant,
    ) {
        self.last_heard = now;
        let arrival_us = self.clock_us(now);
        for info in reports {
            if let Some(block) = info.report_for(self.ssrc) {
                self.peer.lost = Some(i64::from(block.cumulative_lost));
                self.peer.jitter_ms = Some(
                    f64::from(block.jitter) * 1000.0 / f64::from(params.codec.rtp_clock_rate()),
                );
                if let Some(rtt) = stats::rtt(block.lsr, block.dlsr, arrival_ntp) {
                    self.peer.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                }
            }
            if let RtcpInfo::SenderReport { info, .. } = info {
                self.rx_stats.on_sender_report(info.ntp_time, arrival_us);
            }
        }
    }

    // ---- sending --------------------------------------------------------------------------

    /// Writes this tick's RTP packet of audio: `encode` fills the payload and tells its length.
    pub(super) fn audio_packet(
        &mut self,
        payload_type: u8,
        encode: impl FnOnce(&mut [u8]) -> usize,
    ) -> Transmit<'_> {
        let marker = std::mem::take(&mut self.talkspurt);
        let n = rtp::write_header(
            &mut self.packet,
            marker,
            payload_type,
            self.seq,
            self.timestamp,
            self.ssrc,
        );
        self.packet_len = n + encode(&mut self.packet[n..]);
        self.transmit()
    }

    /// Writes this tick's RTP packet as a telephone-event instead of audio; the audio after
    /// it starts a new talkspurt.
    pub(super) fn event_packet(&mut self, event: &DtmfPacket) -> Transmit<'_> {
        let n = rtp::write_header(
            &mut self.packet,
            event.marker,
            event.payload_type,
            self.seq,
            event.rtp_timestamp(self.timestamp),
            self.ssrc,
        );
        self.packet[n..n + event.payload.len()].copy_from_slice(&event.payload);
        self.packet_len = n + event.payload.len();
        self.talkspurt = true;
        self.transmit()
    }

    fn transmit(&self) -> Transmit<'_> {
        Transmit {
            to: self.send_to,
            data: &self.packet[..self.packet_len],
        }
    }

    /// The packet written went out (`delivered`) or not; either way the next one follows it by
    /// `step` timestamp units, since the clock does not wait for the socket.
    pub(super) fn after_send(&mut self, delivered: bool, step: u32, now: Instant) {
        if delivered {
            let payload = self.packet_len - rtp::HEADER_LEN;
            self.tx_stats
                .on_packet(self.timestamp, payload, self.clock_us(now));
        }
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(step);
    }

    /// Our next RTCP report is due at `now`.
    pub(super) fn rtcp_due(&self, now: Instant) -> bool {
        now >= self.next_rtcp
    }

    /// Writes our sender report (with a report block on the peer's stream once we know it) and
    /// schedules the next one at a randomised interval (RFC 3550 section 6.3). `ntp` is the
    /// wall clock at `now` in NTP format. `None` if the report could not be written.
    pub(super) fn sender_report(&mut self, now: Instant, ntp: u64) -> Option<Transmit<'_>> {
        self.next_rtcp = now + stats::rtcp_interval(false, rand::random());
        let now_us = self.clock_us(now);
        let blocks: Vec<_> = match self.remote_ssrc {
            Some(remote) => vec![self.rx_stats.report_block(remote, now_us)],
            None => Vec::new(),
        };
        let info = self.tx_stats.sender_info(ntp, now_us);
        self.report = stats::build_sr(self.ssrc, &info, &blocks, &self.cname).ok()?;
        Some(Transmit {
            to: self.rtcp_to,
            data: &self.report,
        })
    }

    // ---- figures --------------------------------------------------------------------------

    /// Where RTP goes now.
    pub(super) fn remote(&self) -> SocketAddr {
        self.send_to
    }

    /// Statistics of what we receive.
    pub(super) fn receive_stats(&self) -> &ReceiveStats {
        &self.rx_stats
    }

    /// Payload bytes received.
    pub(super) fn received_bytes(&self) -> u64 {
        self.rx_bytes
    }

    /// Statistics of what we send.
    pub(super) fn send_stats(&self) -> &SendStats {
        &self.tx_stats
    }

    /// What the peer last reported on our stream.
    pub(super) fn peer_report(&self) -> PeerReport {
        self.peer
    }
}

/// Where RTCP goes for RTP sent to `rtp`: the same port with rtcp-mux, else the next one.
fn rtcp_address(rtp: SocketAddr, mux: bool) -> SocketAddr {
    if mux {
        rtp
    } else {
        SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
    }
}
