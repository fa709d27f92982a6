//! RTP statistics (RFC 3550 §6.4, appendix A) and RTCP SR/RR/SDES/BYE packets.
//!
//! Pure: arrival and send times are `u64` microseconds on the caller's monotonic clock; wall
//! clock (NTP) times are passed in as 64-bit NTP timestamps ([`ntp_now`] converts a
//! `SystemTime`). RTCP bytes are built and parsed with `rtc-rtcp`; [`parse_rtcp`] never panics
//! and keeps whatever sub-packets of a compound packet are valid.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_rtcp::Packet;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
/// Most report blocks one SR or RR carries.
pub const MAX_REPORT_BLOCKS: usize = 31;

/// The 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32)
/// of a wall-clock time. Times before 1970 map to the Unix epoch.
pub fn ntp_now(now: SystemTime) -> u64 {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (16.16 fixed point seconds), as carried in LSR.
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block's LSR and DLSR and the NTP time the report arrived
/// (RFC 3550 §6.4.1: `A - LSR - DLSR`, in 1/65536 s). `None` when LSR is 0 (no SR received
/// by the peer yet) or LSR lies after the arrival time; a negative result from clock
/// granularity is clamped to zero.
pub fn rtt(lsr: u32, dlsr: u32, arrival_ntp: u64) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let since_sr = ntp_middle32(arrival_ntp).wrapping_sub(lsr);
    if since_sr > i32::MAX as u32 {
        return None;
    }
    let units = since_sr.saturating_sub(dlsr);
    Some(Duration::from_nanos(
        u64::from(units) * 1_000_000_000 / 65_536,
    ))
}

/// One reception report block, in plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, /256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (signed 24 bits: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub extended_highest_seq: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from the source (0: none).
    pub lsr: u32,
    /// Delay since that SR, 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn to_rtcp(self) -> ReceptionReport {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF);
        ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost: self.fraction_lost,
            total_lost: (lost as u32) & 0xFF_FFFF,
            last_sequence_number: self.extended_highest_seq,
            jitter: self.jitter,
            last_sender_report: self.lsr,
            delay: self.dlsr,
        }
    }

    fn from_rtcp(r: &ReceptionReport) -> Self {
        // Sign-extend the 24-bit field.
        let lost = (((r.total_lost & 0xFF_FFFF) << 8) as i32) >> 8;
        ReportBlock {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            cumulative_lost: lost,
            extended_highest_seq: r.last_sequence_number,
            jitter: r.jitter,
            lsr: r.last_sender_report,
            dlsr: r.delay,
        }
    }
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// Wall-clock time of the report, 64-bit NTP.
    pub ntp_time: u64,
    /// The RTP timestamp corresponding to `ntp_time`.
    pub rtp_time: u32,
    /// Packets sent (wrapping).
    pub packet_count: u32,
    /// Payload octets sent (wrapping).
    pub octet_count: u32,
}

/// Receive statistics for one source (RFC 3550 A.1 sequence tracking, A.3 loss, A.8 jitter).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    initialized: bool,
    max_seq: u16,
    /// Sequence cycles, shifted left 16 (as in A.1).
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u64,
    expected_prior: i64,
    received_prior: u64,
    jitter: f64,
    last: Option<(u64, u32)>,
    lsr: u32,
    last_sr_arrival_us: Option<u64>,
}

impl ReceiveStats {
    /// Statistics for a source whose RTP clock runs at `clock_rate` Hz (zero is raised to 1).
    pub fn new(clock_rate: u32) -> Self {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            initialized: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter: 0.0,
            last: None,
            lsr: 0,
            last_sr_arrival_us: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.initialized = true;
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.expected_prior = 0;
        self.received_prior = 0;
    }

    /// Records one received RTP packet. Returns `false` when the packet was not counted: a
    /// sequence jump of more than 3000 is only accepted (and the statistics restarted) when the
    /// next packet follows it, as in RFC 3550 A.1.
    pub fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival_us: u64) -> bool {
        self.count(seq, Some(rtp_timestamp), arrival_us)
    }

    /// Counts an RFC 4733 telephone-event packet of the same stream: it takes part in sequence
    /// and loss accounting but not in the jitter estimate, because all packets of an event carry
    /// the event's start timestamp.
    pub fn on_event_packet(&mut self, seq: u16, arrival_us: u64) -> bool {
        self.count(seq, None, arrival_us)
    }

    fn count(&mut self, seq: u16, rtp_timestamp: Option<u32>, arrival_us: u64) -> bool {
        if !self.initialized {
            self.init_seq(seq);
        } else {
            let udelta = seq.wrapping_sub(self.max_seq);
            if udelta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
                }
                self.max_seq = seq;
            } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
                if u32::from(seq) == self.bad_seq {
                    // Two sequential packets after a jump: the source restarted.
                    self.init_seq(seq);
                    self.last = None;
                } else {
                    self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                    return false;
                }
            }
            // else: duplicate or reordered packet, counted.
        }
        self.received += 1;
        let Some(rtp_timestamp) = rtp_timestamp else {
            return true;
        };
        if let Some((last_arrival, last_ts)) = self.last {
            let arrival_units = (arrival_us as f64 - last_arrival as f64)
                * f64::from(self.clock_rate)
                / 1_000_000.0;
            let ts_units = f64::from(rtp_timestamp.wrapping_sub(last_ts) as i32);
            let d = (arrival_units - ts_units).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some((arrival_us, rtp_timestamp));
        true
    }

    /// Records an SR from this source: its NTP time and when it arrived.
    pub fn on_sender_report(&mut self, ntp_time: u64, arrival_us: u64) {
        self.lsr = ntp_middle32(ntp_time);
        self.last_sr_arrival_us = Some(arrival_us);
    }

    /// Packets counted.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Extended highest sequence number received.
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected: extended highest minus the first, plus one (0 before any packet).
    pub fn expected(&self) -> i64 {
        if !self.initialized {
            return 0;
        }
        i64::from(self.cycles) + i64::from(self.max_seq) - i64::from(self.base_seq) + 1
    }

    /// Cumulative packets lost; negative when duplicates outnumber losses.
    pub fn lost(&self) -> i64 {
        self.expected() - self.received as i64
    }

    /// [`lost`](Self::lost), clamped at zero for display.
    pub fn lost_clamped(&self) -> u64 {
        self.lost().max(0) as u64
    }

    /// Interarrival jitter, timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter.round() as u32
    }

    /// Interarrival jitter, milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }

    /// The fraction lost since the previous call, /256 (RFC 3550 A.3), and starts a new
    /// interval. Zero when nothing was expected or duplicates outnumber losses.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        self.expected_prior = expected;
        let received_interval = self.received as i64 - self.received_prior as i64;
        self.received_prior = self.received;
        let lost_interval = expected_interval - received_interval;
        if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        }
    }

    /// The report block about this source (`ssrc`) at `now_us`; starts a new loss interval.
    pub fn report_block(&mut self, ssrc: u32, now_us: u64) -> ReportBlock {
        let fraction_lost = self.take_fraction_lost();
        let dlsr = match self.last_sr_arrival_us {
            Some(at) if self.lsr != 0 => {
                let us = now_us.saturating_sub(at);
                (u128::from(us) * 65_536 / 1_000_000).min(u128::from(u32::MAX)) as u32
            }
            _ => 0,
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            lsr: self.lsr,
            dlsr,
        }
    }
}

/// Send statistics for our stream, for the SR sender info.
#[derive(Debug, Clone)]
pub struct SendStats {
    clock_rate: u32,
    packets: u32,
    octets: u32,
    last_rtp_timestamp: u32,
    last_send_us: Option<u64>,
}

impl SendStats {
    /// Statistics for a stream whose RTP clock runs at `clock_rate` Hz (zero is raised to 1).
    pub fn new(clock_rate: u32) -> Self {
        SendStats {
            clock_rate: clock_rate.max(1),
            packets: 0,
            octets: 0,
            last_rtp_timestamp: 0,
            last_send_us: None,
        }
    }

    /// Records one RTP packet sent: its timestamp, payload length (header excluded) and time.
    pub fn on_packet(&mut self, rtp_timestamp: u32, payload_len: usize, now_us: u64) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        self.last_rtp_timestamp = rtp_timestamp;
        self.last_send_us = Some(now_us);
    }

    /// Packets sent (wrapping).
    pub fn packets(&self) -> u32 {
        self.packets
    }

    /// Payload octets sent (wrapping).
    pub fn octets(&self) -> u32 {
        self.octets
    }

    /// The timestamp of the last packet sent.
    pub fn last_rtp_timestamp(&self) -> u32 {
        self.last_rtp_timestamp
    }

    /// Any packet sent yet (an SR is due only from a sender).
    pub fn has_sent(&self) -> bool {
        self.last_send_us.is_some()
    }

    /// SR sender info at wall-clock `ntp_time`, which is `now_us` on the monotonic clock: the
    /// RTP time is the last packet's timestamp advanced by the time elapsed since it was sent.
    pub fn sender_info(&self, ntp_time: u64, now_us: u64) -> SenderInfo {
        let elapsed_us = self.last_send_us.map_or(0, |at| now_us.saturating_sub(at));
        let advance = u128::from(elapsed_us) * u128::from(self.clock_rate) / 1_000_000;
        SenderInfo {
            ntp_time,
            rtp_time: self.last_rtp_timestamp.wrapping_add(advance as u32),
            packet_count: self.packets,
            octet_count: self.octets,
        }
    }
}

/// The minimum RTCP report interval (RFC 3550 §6.2): a voice call's bandwidth share never
/// asks for less, so the deterministic interval is this (half of it before the first report).
const RTCP_MIN_INTERVAL_S: f64 = 5.0;

/// The wait before our next RTCP report (RFC 3550 §6.3.1): the minimum interval, halved for
/// the `initial` report so the peer learns of us (and we get a round-trip time) early, times a
/// random factor in [0.5, 1.5) from `unit` (in [0, 1)) against synchronised senders, divided by
/// e − 3/2 to compensate for the timer reconsideration the RFC assumes.
pub fn rtcp_interval(initial: bool, unit: f64) -> Duration {
    let deterministic = if initial {
        RTCP_MIN_INTERVAL_S / 2.0
    } else {
        RTCP_MIN_INTERVAL_S
    };
    let factor = 0.5 + unit.clamp(0.0, 1.0);
    Duration::from_secs_f64(deterministic * factor / (std::f64::consts::E - 1.5))
}

/// An RTCP packet could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// More than [`MAX_REPORT_BLOCKS`] report blocks.
    #[error("too many RTCP report blocks: {0} (at most 31)")]
    TooManyReports(usize),
    /// CNAME or BYE reason longer than 255 bytes.
    #[error("RTCP text item longer than 255 bytes")]
    TextTooLong,
    /// The encoder refused the packet.
    #[error("RTCP encoding failed: {0}")]
    Encode(String),
}

/// One RTCP packet of a compound packet, in plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpInfo {
    /// Sender report.
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// Its sender information.
        info: SenderInfo,
        /// Its report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// Its report blocks.
        reports: Vec<ReportBlock>,
    },
    /// One SDES chunk.
    SourceDescription {
        /// The source described.
        ssrc: u32,
        /// Its CNAME, if the chunk has one.
        cname: Option<String>,
    },
    /// Goodbye.
    Bye {
        /// The sources leaving.
        ssrcs: Vec<u32>,
        /// The reason given, if any.
        reason: Option<String>,
    },
    /// Any other packet type (feedback, XR, APP...), or one that failed to parse.
    Other {
        /// The RTCP packet type (PT field).
        packet_type: u8,
    },
}

impl RtcpInfo {
    /// The report block of an SR or RR about `ssrc` (our stream), if any.
    pub fn report_for(&self, ssrc: u32) -> Option<&ReportBlock> {
        match self {
            RtcpInfo::SenderReport { reports, .. } | RtcpInfo::ReceiverReport { reports, .. } => {
                reports.iter().find(|r| r.ssrc == ssrc)
            }
            _ => None,
        }
    }
}

fn blocks(reports: &[ReportBlock]) -> Result<Vec<ReceptionReport>, RtcpError> {
    if reports.len() > MAX_REPORT_BLOCKS {
        return Err(RtcpError::TooManyReports(reports.len()));
    }
    Ok(reports.iter().map(|r| r.to_rtcp()).collect())
}

fn sdes(ssrc: u32, cname: &str) -> Result<Box<dyn Packet>, RtcpError> {
    if cname.len() > 255 {
        return Err(RtcpError::TextTooLong);
    }
    Ok(Box::new(SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: cname.to_owned().into(),
            }],
        }],
    }))
}

fn marshal(packets: &[Box<dyn Packet>]) -> Result<Vec<u8>, RtcpError> {
    rtc_rtcp::packet::marshal(packets)
        .map(|b| b.to_vec())
        .map_err(|e| RtcpError::Encode(e.to_string()))
}

/// A compound SR + SDES(CNAME) packet.
pub fn build_sr(
    ssrc: u32,
    info: &SenderInfo,
    reports: &[ReportBlock],
    cname: &str,
) -> Result<Vec<u8>, RtcpError> {
    let sr = SenderReport {
        ssrc,
        ntp_time: info.ntp_time,
        rtp_time: info.rtp_time,
        packet_count: info.packet_count,
        octet_count: info.octet_count,
        reports: blocks(reports)?,
        profile_extensions: Default::default(),
    };
    marshal(&[Box::new(sr), sdes(ssrc, cname)?])
}

/// A compound RR + SDES(CNAME) packet.
pub fn build_rr(ssrc: u32, reports: &[ReportBlock], cname: &str) -> Result<Vec<u8>, RtcpError> {
    let rr = ReceiverReport {
        ssrc,
        reports: blocks(reports)?,
        profile_extensions: Default::default(),
    };
    marshal(&[Box::new(rr), sdes(ssrc, cname)?])
}

/// A compound RR (no blocks) + SDES(CNAME) + BYE packet, with an optional reason.
pub fn build_bye(ssrc: u32, cname: &str, reason: &str) -> Result<Vec<u8>, RtcpError> {
    if reason.len() > 255 {
        return Err(RtcpError::TextTooLong);
    }
    let rr = ReceiverReport {
        ssrc,
        reports: Vec::new(),
        profile_extensions: Default::default(),
    };
    let bye = Goodbye {
        sources: vec![ssrc],
        reason: reason.to_owned().into(),
    };
    marshal(&[Box::new(rr), sdes(ssrc, cname)?, Box::new(bye)])
}

/// Parses a (compound) RTCP datagram. Each sub-packet is parsed on its own, so a malformed one
/// becomes [`RtcpInfo::Other`] without losing the others; parsing stops at a length that runs
/// past the end or a version other than 2. Never panics.
pub fn parse_rtcp(data: &[u8]) -> Vec<RtcpInfo> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        if rest[0] >> 6 != 2 {
            break;
        }
        let packet_type = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            break;
        }
        let (mut packet, tail) = rest.split_at(len);
        rest = tail;
        let parsed = match rtc_rtcp::packet::unmarshal(&mut packet) {
            Ok(p) => p,
            Err(_) => {
                out.push(RtcpInfo::Other { packet_type });
                continue;
            }
        };
        for p in parsed {
            convert(p.as_ref(), packet_type, &mut out);
        }
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn convert(p: &dyn Packet, packet_type: u8, out: &mut Vec<RtcpInfo>) {
    let any = p.as_any();
    if let Some(sr) = any.downcast_ref::<SenderReport>() {
        out.push(RtcpInfo::SenderReport {
            ssrc: sr.ssrc,
            info: SenderInfo {
                ntp_time: sr.ntp_time,
                rtp_time: sr.rtp_time,
                packet_count: sr.packet_count,
                octet_count: sr.octet_count,
            },
            reports: sr.reports.iter().map(ReportBlock::from_rtcp).collect(),
        });
    } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
        out.push(RtcpInfo::ReceiverReport {
            ssrc: rr.ssrc,
            reports: rr.reports.iter().map(ReportBlock::from_rtcp).collect(),
        });
    } else if let Some(sd) = any.downcast_ref::<SourceDescription>() {
        for chunk in &sd.chunks {
            let cname = chunk
                .items
                .iter()
                .find(|i| i.sdes_type == SdesType::SdesCname)
                .map(|i| text(&i.text));
            out.push(RtcpInfo::SourceDescription {
                ssrc: chunk.source,
                cname,
            });
        }
    } else if let Some(bye) = any.downcast_ref::<Goodbye>() {
        out.push(RtcpInfo::Bye {
            ssrcs: bye.sources.clone(),
            reason: (!bye.reason.is_empty()).then(|| text(&bye.reason)),
        });
    } else {
        out.push(RtcpInfo::Other { packet_type });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rtcp_interval_is_randomised_and_shorter_at_first() {
        let ms = |initial, unit| rtcp_interval(initial, unit).as_millis();
        // 2.5 s × [0.5, 1.5] / 1.21828 and 5 s × [0.5, 1.5] / 1.21828
        assert_eq!((ms(true, 0.0), ms(true, 1.0)), (1026, 3078));
        assert_eq!((ms(false, 0.0), ms(false, 1.0)), (2052, 6156));
        assert!(ms(true, 0.5) < ms(false, 0.5));
        assert_eq!(
            ms(true, -3.0),
            ms(true, 0.0),
            "out-of-range input is clamped"
        );
    }

    use super::*;

    const F: u64 = 20_000;

    #[test]
    fn constant_delay_has_no_jitter() {
        let mut s = ReceiveStats::new(8000);
        for k in 0..500u64 {
            assert!(s.on_packet(k as u16, 1234 + 160 * k as u32, 50_000 + k * F));
        }
        assert_eq!(s.jitter(), 0);
        assert!(s.jitter_ms() < 1e-9);
        assert_eq!((s.received(), s.expected(), s.lost()), (500, 500, 0));
    }

    #[test]
    fn alternating_delay_reaches_the_rfc_steady_state() {
        // Delays alternate +10 ms / -10 ms around the mean: every transit difference is 20 ms,
        // and J = J + (|D| - J)/16 converges to |D| = 160 units.
        let mut s = ReceiveStats::new(8000);
        for k in 0..1000u64 {
            let delay = if k % 2 == 0 { 40_000 } else { 20_000 };
            s.on_packet(k as u16, 160 * k as u32, k * F + delay);
        }
        assert_eq!(s.jitter(), 160);
        assert!((s.jitter_ms() - 20.0).abs() < 0.01, "{}", s.jitter_ms());
        // After n packets, J = 160 (1 - (15/16)^(n-1)).
        let mut s = ReceiveStats::new(8000);
        for k in 0..17u64 {
            let delay = if k % 2 == 0 { 40_000 } else { 20_000 };
            s.on_packet(k as u16, 160 * k as u32, k * F + delay);
        }
        let expect = 160.0 * (1.0 - (15.0f64 / 16.0).powi(16));
        assert!((s.jitter_ms() * 8.0 - expect).abs() < 1e-6);
    }

    #[test]
    fn jitter_handles_timestamp_wrap_and_other_clock_rates() {
        let mut s = ReceiveStats::new(48_000);
        for k in 0..100u64 {
            s.on_packet(
                k as u16,
                (u32::MAX - 960 * 50).wrapping_add(960 * k as u32),
                k * F,
            );
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn loss_is_counted_across_sequence_wrap_around() {
        let mut s = ReceiveStats::new(8000);
        for k in 0..1000u32 {
            if k % 100 == 7 {
                continue; // 10 lost
            }
            let seq = (65_000 + k) as u16;
            s.on_packet(seq, k * 160, u64::from(k) * F);
        }
        assert_eq!(s.extended_highest_seq(), 65_999);
        assert_eq!(s.extended_highest_seq() >> 16, 1);
        assert_eq!((s.expected(), s.received(), s.lost()), (1000, 990, 10));
    }

    #[test]
    fn reordering_is_not_loss_and_duplicates_make_loss_negative() {
        let mut s = ReceiveStats::new(8000);
        let order = [65_534u16, 0, 65_535, 1, 3, 2, 4, 4, 4];
        for (i, seq) in order.into_iter().enumerate() {
            assert!(s.on_packet(seq, 0, i as u64 * F));
        }
        assert_eq!(s.extended_highest_seq(), 65_536 + 4);
        assert_eq!(s.expected(), 7);
        assert_eq!(s.received(), 9);
        assert_eq!(s.lost(), -2);
        assert_eq!(s.lost_clamped(), 0);
        assert_eq!(s.report_block(1, 0).cumulative_lost, -2);
    }

    #[test]
    fn fraction_lost_per_report_interval() {
        let mut s = ReceiveStats::new(8000);
        for k in 0..100u16 {
            if k % 20 != 3 {
                s.on_packet(k, 0, 0);
            }
        }
        // 5 of 100: 5 * 256 / 100 = 12.
        assert_eq!(s.take_fraction_lost(), 12);
        for k in 100..200u16 {
            s.on_packet(k, 0, 0);
        }
        assert_eq!(s.take_fraction_lost(), 0);
        // Nothing new expected.
        assert_eq!(s.take_fraction_lost(), 0);
        // Duplicates in an interval give 0, not a negative fraction.
        s.on_packet(199, 0, 0);
        s.on_packet(200, 0, 0);
        assert_eq!(s.take_fraction_lost(), 0);
        for k in 201..300u16 {
            if k % 2 == 0 {
                s.on_packet(k, 0, 0);
            }
        }
        assert_eq!(s.take_fraction_lost(), 128); // 49 of 98 lost (201..=298)
                                                 // 5 + 49 lost, minus the duplicate of 199.
        assert_eq!(s.lost(), 5 + 49 - 1);
    }

    #[test]
    fn a_sequence_jump_restarts_after_two_sequential_packets() {
        let mut s = ReceiveStats::new(8000);
        for k in 0..10u16 {
            s.on_packet(k, 0, 0);
        }
        assert!(!s.on_packet(40_000, 0, 0));
        assert_eq!(s.received(), 10);
        assert!(s.on_packet(40_001, 0, 0));
        assert!(s.on_packet(40_002, 0, 0));
        assert_eq!((s.received(), s.expected(), s.lost()), (2, 2, 0));
        // A lone stray packet does not restart.
        assert!(!s.on_packet(10, 0, 0));
        assert!(s.on_packet(40_003, 0, 0));
        assert_eq!(s.extended_highest_seq(), 40_003);
    }

    #[test]
    fn ntp_conversions() {
        assert_eq!(ntp_now(UNIX_EPOCH), NTP_UNIX_OFFSET_SECS << 32);
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_now(t), ((NTP_UNIX_OFFSET_SECS + 1) << 32) | 0x8000_0000);
        assert_eq!(ntp_middle32(0x1234_5678_9ABC_DEF0), 0x5678_9ABC);
        // 2026: in NTP era 0, seconds fit 32 bits.
        let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        assert_eq!(ntp_now(now) >> 32, 1_790_000_000 + NTP_UNIX_OFFSET_SECS);
    }

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        // RFC 3550 §6.4.1 example: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000,
        // delay = 0x0006:2000 = 6.125 s.
        let arrival = 0xb710_8000u64 << 16;
        assert_eq!(
            rtt(0xb705_2000, 0x0005_4000, arrival),
            Some(Duration::from_millis(6125))
        );
        // From wall-clock times: SR sent at T, held 1 s by the peer, report back at T + 1.25 s.
        let t = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let lsr = ntp_middle32(ntp_now(t));
        let back = ntp_now(t + Duration::from_millis(1250));
        let r = rtt(lsr, 65_536, back).unwrap();
        assert!((r.as_secs_f64() - 0.25).abs() < 0.000_1, "{r:?}");
        assert_eq!(rtt(0, 0, back), None);
        // DLSR larger than the elapsed time (clock granularity): zero, not a huge value.
        assert_eq!(rtt(lsr, 2 * 65_536, back), Some(Duration::ZERO));
        // LSR after the arrival time: nonsense.
        assert_eq!(rtt(ntp_middle32(back) + 65_536, 0, back), None);
    }

    #[test]
    fn report_block_carries_lsr_and_dlsr() {
        let mut s = ReceiveStats::new(8000);
        for k in 0..10u16 {
            s.on_packet(k, u32::from(k) * 160, u64::from(k) * F);
        }
        let b = s.report_block(42, 1_000_000);
        assert_eq!((b.lsr, b.dlsr), (0, 0));
        let ntp = 0x0000_1234_5678_0000u64;
        s.on_sender_report(ntp, 2_000_000);
        let b = s.report_block(42, 2_500_000);
        assert_eq!(b.ssrc, 42);
        assert_eq!(b.lsr, 0x1234_5678);
        assert_eq!(b.dlsr, 32_768); // 0.5 s
        assert_eq!(b.extended_highest_seq, 9);
        assert_eq!(b.cumulative_lost, 0);
    }

    #[test]
    fn send_stats_extrapolate_the_rtp_time() {
        let mut s = SendStats::new(8000);
        assert!(!s.has_sent());
        for k in 0..50u32 {
            s.on_packet(1000 + 160 * k, 160, u64::from(k) * F);
        }
        assert_eq!(
            (s.packets(), s.octets(), s.last_rtp_timestamp()),
            (50, 8000, 1000 + 160 * 49)
        );
        let info = s.sender_info(77, 49 * F + 10_000);
        assert_eq!(info.ntp_time, 77);
        assert_eq!(info.rtp_time, 1000 + 160 * 49 + 80);
        assert_eq!((info.packet_count, info.octet_count), (50, 8000));
    }

    fn sample_blocks() -> Vec<ReportBlock> {
        vec![
            ReportBlock {
                ssrc: 0x1111_1111,
                fraction_lost: 12,
                cumulative_lost: 345,
                extended_highest_seq: 0x0001_0203,
                jitter: 160,
                lsr: 0xb705_2000,
                dlsr: 0x0005_4000,
            },
            ReportBlock {
                ssrc: 0x2222_2222,
                fraction_lost: 0,
                cumulative_lost: -3,
                extended_highest_seq: 7,
                jitter: 0,
                lsr: 0,
                dlsr: 0,
            },
        ]
    }

    #[test]
    fn sr_round_trip() {
        let info = SenderInfo {
            ntp_time: 0xe000_0000_8000_0000,
            rtp_time: 123_456,
            packet_count: 50,
            octet_count: 8000,
        };
        let bytes = build_sr(0xabcd_ef01, &info, &sample_blocks(), "7779@it005.ru").unwrap();
        assert_eq!(bytes[0] >> 6, 2);
        assert_eq!(bytes[0] & 0x1F, 2); // two report blocks
        assert_eq!(bytes[1], 200);
        let parsed = parse_rtcp(&bytes);
        assert_eq!(
            parsed,
            vec![
                RtcpInfo::SenderReport {
                    ssrc: 0xabcd_ef01,
                    info,
                    reports: sample_blocks()
                },
                RtcpInfo::SourceDescription {
                    ssrc: 0xabcd_ef01,
                    cname: Some("7779@it005.ru".into())
                },
            ]
        );
        assert_eq!(
            parsed[0].report_for(0x2222_2222).unwrap().cumulative_lost,
            -3
        );
        assert_eq!(parsed[0].report_for(0x3333_3333), None);
        assert_eq!(parsed[1].report_for(0x2222_2222), None);
    }

    #[test]
    fn rr_and_bye_round_trip() {
        let bytes = build_rr(5, &sample_blocks()[..1], "a@b").unwrap();
        assert_eq!(bytes[1], 201);
        assert_eq!(
            parse_rtcp(&bytes),
            vec![
                RtcpInfo::ReceiverReport {
                    ssrc: 5,
                    reports: sample_blocks()[..1].to_vec()
                },
                RtcpInfo::SourceDescription {
                    ssrc: 5,
                    cname: Some("a@b".into())
                },
            ]
        );
        let bytes = build_bye(5, "a@b", "hangup").unwrap();
        let parsed = parse_rtcp(&bytes);
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            parsed[2],
            RtcpInfo::Bye {
                ssrcs: vec![5],
                reason: Some("hangup".into())
            }
        );
        let parsed = parse_rtcp(&build_bye(5, "a@b", "").unwrap());
        assert_eq!(
            parsed[2],
            RtcpInfo::Bye {
                ssrcs: vec![5],
                reason: None
            }
        );
    }

    #[test]
    fn a_report_from_receive_stats_round_trips() {
        let mut s = ReceiveStats::new(8000);
        for k in 0..100u16 {
            if k != 50 {
                s.on_packet(
                    k,
                    u32::from(k) * 160,
                    u64::from(k) * F + u64::from(k % 3) * 1000,
                );
            }
        }
        let block = s.report_block(9, 0);
        let bytes = build_rr(1, &[block], "x").unwrap();
        assert_eq!(parse_rtcp(&bytes)[0].report_for(9), Some(&block));
        assert_eq!((block.cumulative_lost, block.fraction_lost), (1, 2));
    }

    #[test]
    fn build_errors() {
        let many = vec![ReportBlock::default(); 32];
        assert_eq!(build_rr(1, &many, "x"), Err(RtcpError::TooManyReports(32)));
        assert!(build_sr(1, &SenderInfo::default(), &many, "x").is_err());
        assert!(build_rr(1, &many[..31], "x").is_ok());
        assert_eq!(
            build_rr(1, &[], &"x".repeat(256)),
            Err(RtcpError::TextTooLong)
        );
        assert_eq!(
            build_bye(1, "x", &"y".repeat(256)),
            Err(RtcpError::TextTooLong)
        );
        // Out-of-range cumulative loss is clamped to 24 bits.
        let b = ReportBlock {
            cumulative_lost: i32::MAX,
            ..ReportBlock::default()
        };
        let parsed = parse_rtcp(&build_rr(1, &[b], "x").unwrap());
        assert_eq!(parsed[0].report_for(0).unwrap().cumulative_lost, 0x7F_FFFF);
        let b = ReportBlock {
            cumulative_lost: i32::MIN,
            ..ReportBlock::default()
        };
        let parsed = parse_rtcp(&build_rr(1, &[b], "x").unwrap());
        assert_eq!(parsed[0].report_for(0).unwrap().cumulative_lost, -0x80_0000);
    }

    #[test]
    fn garbage_rtcp_never_panics_and_keeps_valid_parts() {
        assert!(parse_rtcp(&[]).is_empty());
        assert!(parse_rtcp(&[0x80]).is_empty());
        assert!(parse_rtcp(&[0x00, 200, 0, 0]).is_empty()); // version 0
        let good = build_rr(5, &sample_blocks(), "a@b").unwrap();
        // Truncated: the RR's length runs past the end.
        assert!(parse_rtcp(&good[..good.len() - 20]).len() <= 1);
        // Valid RR, then a sub-packet that claims a type it does not hold.
        let mut data = good.clone();
        data.extend_from_slice(&[0x81, 200, 0, 1, 0, 0, 0, 1]); // SR too short
        let parsed = parse_rtcp(&data);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2], RtcpInfo::Other { packet_type: 200 });
        // An unknown type is reported as Other.
        let parsed = parse_rtcp(&[0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']);
        assert!(matches!(parsed[..], [RtcpInfo::Other { .. }]));
        // Random bytes and random mutations of a valid packet.
        let mut x = 0xD1B5_4A32_D192_ED03u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 120) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = buf.first_mut() {
                *b = (*b & 0x3F) | 0x80;
            }
            let _ = parse_rtcp(&buf);
            let mut m = good.clone();
            for _ in 0..3 {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            let _ = parse_rtcp(&m);
        }
    }

    #[test]
    fn telephone_events_count_for_loss_but_not_for_jitter() {
        let mut r = ReceiveStats::new(8000);
        for i in 0..10u16 {
            r.on_packet(i, u32::from(i) * 160, u64::from(i) * 20_000);
        }
        // Ten DTMF packets with a frozen timestamp would look like 20 ms of transit drift each.
        for i in 10..20u16 {
            r.on_event_packet(i, u64::from(i) * 20_000);
        }
        r.on_packet(20, 20 * 160, 20 * 20_000);
        assert_eq!(r.received(), 21);
        assert_eq!(r.lost(), 0);
        assert!(r.jitter_ms() < 0.5, "jitter {}", r.jitter_ms());
    }
}
