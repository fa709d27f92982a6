//! DTMF: RFC 4733 telephone-events over RTP (sender and receiver state machines) and the SIP
//! INFO bodies `application/dtmf-relay` and `application/dtmf`.
//!
//! Pure state machines: the sender is ticked once per packetisation interval by the caller's
//! media clock ([`DtmfSender::next_packet`]); the receiver is fed payloads and RTP timestamps.
//!
//! # Sender
//!
//! Packet *k* of an event (sent *k* ptimes after its start) reports the duration so far,
//! `(k + 1) × ptime` in clock units; the first packet carries the marker bit; all packets of an
//! event carry the RTP timestamp of its start (see [`DtmfPacket::timestamp_offset`]). The packet
//! whose duration reaches the requested length has the E bit set and is sent three times in
//! total, with the same payload, in three consecutive ticks (RFC 4733 §2.5.1.4). Then the
//! sender stays silent for the inter-digit gap before the next queued digit.
//!
//! Events longer than 0xFFFF clock units (8.19 s at 8 kHz) are segmented per §2.5.1.3: a packet
//! reports 0xFFFF without the E bit, and the following packets form a new segment whose RTP
//! timestamp is the old one plus 0xFFFF, without a marker bit.
//!
//! # Receiver
//!
//! A digit is reported once, on the first packet seen of a new event (as PJSIP does), whether
//! that is the marker packet, a later one (marker lost) or an end packet (everything else
//! lost). An event is identified by its RTP timestamp (and event code): later packets of the
//! same event and retransmitted end packets are absorbed, packets with an older timestamp
//! than the current event are stale and ignored, and the continuation segment of a long event
//! is recognised (same event, not ended, starting within the previous segment's duration).
//! Payloads shorter than 4 bytes and events other than 0-15 are ignored.

use std::collections::VecDeque;

/// The 16 DTMF events of RFC 4733 §3.2, by event code.
pub const DTMF_EVENTS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The RTP clock of the telephone-events we send and accept (`telephone-event/8000`): the one
/// every SIP peer uses, whatever the audio codec's clock.
pub const CLOCK_RATE: u32 = 8000;

/// Default tone length for [`DtmfSender::send`] and for INFO bodies without a duration.
pub const DEFAULT_TONE_MS: u32 = 100;
/// Default silence between queued digits.
pub const DEFAULT_GAP_MS: u32 = 60;
/// Default volume: 10 dBm0 below the overload point (RFC 4733 reports it as a positive number).
pub const DEFAULT_VOLUME: u8 = 10;

/// How many times the final (E bit) packet of an event is sent.
const END_PACKETS: u8 = 3;
const MAX_SEGMENT: u32 = 0xFFFF;

/// Invalid input to the DTMF sender or formatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// Not one of `0-9 * # A-D` (lower-case `a-d` are accepted too).
    #[error("invalid DTMF digit {0:?}: expected 0-9, *, #, A-D")]
    InvalidDigit(char),
    /// Volume above 63 (the field is 6 bits, -dBm0).
    #[error("invalid DTMF volume {0}: expected 0-63")]
    InvalidVolume(u8),
}

/// The RFC 4733 event code of a DTMF digit (`a-d` accepted as `A-D`).
pub fn digit_to_event(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    DTMF_EVENTS.iter().position(|&c| c == d).map(|p| p as u8)
}

/// The digit of an RFC 4733 event code 0-15.
pub fn event_to_digit(event: u8) -> Option<char> {
    DTMF_EVENTS.get(usize::from(event)).copied()
}

/// One telephone-event RTP packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The 4-byte RFC 4733 payload: event, E|R|volume, duration (big-endian).
    pub payload: [u8; 4],
    /// The telephone-event payload type given to [`DtmfSender::new`].
    pub payload_type: u8,
    /// RTP marker bit: set on the first packet of an event only.
    pub marker: bool,
    /// E bit: this is one of the final packets of the event.
    pub end: bool,
    /// The event code (0-15).
    pub event: u8,
    /// The duration field, clock units since the start of the event (or segment).
    pub duration: u16,
    /// Clock units from the event's (segment's) start to the media time at which this packet is
    /// sent. The packet's RTP timestamp is `media_timestamp_now - timestamp_offset`, so it stays
    /// at the event start for every packet of the event.
    pub timestamp_offset: u32,
}

impl DtmfPacket {
    /// The RTP timestamp of this packet, given the media stream's timestamp for the current tick.
    pub fn rtp_timestamp(&self, media_timestamp: u32) -> u32 {
        media_timestamp.wrapping_sub(self.timestamp_offset)
    }
}

#[derive(Debug, Clone, Copy)]
struct Tone {
    event: u8,
    /// Total length, clock units (at least 1).
    units: u32,
    volume: u8,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    tone: Tone,
    /// Clock units from the event start to the current tick.
    elapsed: u32,
    /// Clock units from the event start to the current segment's start.
    segment_start: u32,
    first: bool,
    /// End packets sent so far, and the payload they repeat.
    end_sent: u8,
    end_packet: Option<DtmfPacket>,
}

/// RFC 4733 sender: queue digits, then call [`next_packet`](Self::next_packet) once per ptime.
#[derive(Debug)]
pub struct DtmfSender {
    payload_type: u8,
    clock_rate: u32,
    ptime_units: u32,
    ptime_ms: u32,
    tone_ms: u32,
    gap_ms: u32,
    volume: u8,
    queue: VecDeque<Tone>,
    current: Option<Active>,
    gap_left: u32,
}

impl DtmfSender {
    /// A sender for `payload_type` (the negotiated `telephone-event/<clock_rate>`) sending one
    /// packet every `ptime_ms` (usually the audio ptime, 20 ms). Zero values are raised to 1.
    pub fn new(payload_type: u8, clock_rate: u32, ptime_ms: u32) -> Self {
        let clock_rate = clock_rate.max(1);
        let ptime_ms = ptime_ms.max(1);
        let ptime_units = Self::ms_to_units(clock_rate, ptime_ms).max(1);
        DtmfSender {
            payload_type: payload_type & 0x7F,
            clock_rate,
            ptime_units,
            ptime_ms,
            tone_ms: DEFAULT_TONE_MS,
            gap_ms: DEFAULT_GAP_MS,
            volume: DEFAULT_VOLUME,
            queue: VecDeque::new(),
            current: None,
            gap_left: 0,
        }
    }

    fn ms_to_units(clock_rate: u32, ms: u32) -> u32 {
        (u64::from(clock_rate) * u64::from(ms) / 1000).min(u64::from(u32::MAX)) as u32
    }

    /// Tone length used by [`send`](Self::send) (default [`DEFAULT_TONE_MS`]).
    pub fn set_tone_duration(&mut self, ms: u32) {
        self.tone_ms = ms;
    }

    /// Silence after each digit's end packets before the next queued digit (default
    /// [`DEFAULT_GAP_MS`]; rounded up to whole ptimes).
    pub fn set_gap(&mut self, ms: u32) {
        self.gap_ms = ms;
    }

    /// Volume used by [`send`](Self::send), 0-63 (-dBm0; default [`DEFAULT_VOLUME`]).
    pub fn set_volume(&mut self, volume: u8) -> Result<(), DtmfError> {
        if volume > 63 {
            return Err(DtmfError::InvalidVolume(volume));
        }
        self.volume = volume;
        Ok(())
    }

    /// Queues one digit with an explicit duration and volume (0-63). It starts at the next tick
    /// if the sender is idle, else after the digits already queued.
    pub fn start(&mut self, digit: char, duration_ms: u32, volume: u8) -> Result<(), DtmfError> {
        let tone = self.tone(digit, duration_ms, volume)?;
        self.queue.push_back(tone);
        Ok(())
    }

    /// Queues a string of digits with the default duration, volume and gap. Nothing is queued if
    /// any character is invalid.
    pub fn send(&mut self, digits: &str) -> Result<(), DtmfError> {
        let before = self.queue.len();
        for c in digits.chars() {
            match self.tone(c, self.tone_ms, self.volume) {
                Ok(t) => self.queue.push_back(t),
                Err(e) => {
                    self.queue.truncate(before);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn tone(&self, digit: char, duration_ms: u32, volume: u8) -> Result<Tone, DtmfError> {
        let event = digit_to_event(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        if volume > 63 {
            return Err(DtmfError::InvalidVolume(volume));
        }
        Ok(Tone {
            event,
            units: Self::ms_to_units(self.clock_rate, duration_ms).max(1),
            volume,
        })
    }

    /// Drops the queued digits; the event in progress (if any) completes normally.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// No event in progress, in its gap or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty() && self.gap_left == 0
    }

    /// An event is being sent (the caller should pause audio packets meanwhile).
    pub fn is_sending(&self) -> bool {
        self.current.is_some()
    }

    /// Digits queued and not started yet.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The packet for this tick, or `None` when idle or in an inter-digit gap. Call exactly once
    /// per ptime.
    pub fn next_packet(&mut self) -> Option<DtmfPacket> {
        if self.current.is_none() {
            if self.gap_left > 0 {
                self.gap_left -= 1;
                return None;
            }
            let tone = self.queue.pop_front()?;
            self.current = Some(Active {
                tone,
                elapsed: 0,
                segment_start: 0,
                first: true,
                end_sent: 0,
                end_packet: None,
            });
        }
        let ptime = self.ptime_units;
        let pt = self.payload_type;
        let a = self.current.as_mut()?;
        let offset = a.elapsed - a.segment_start;

        if let Some(mut p) = a.end_packet {
            p.timestamp_offset = offset;
            a.end_sent += 1;
            a.elapsed = a.elapsed.saturating_add(ptime);
            if a.end_sent >= END_PACKETS {
                self.finish();
            }
            return Some(p);
        }

        let reported = a.elapsed.saturating_add(ptime).min(a.tone.units);
        let done = reported >= a.tone.units;
        let segment_duration = reported - a.segment_start;
        let marker = std::mem::take(&mut a.first);
        if segment_duration > MAX_SEGMENT {
            // §2.5.1.3: report the maximum without E, then start a new segment.
            let p = packet(pt, a.tone, MAX_SEGMENT as u16, false, marker, offset);
            a.segment_start += MAX_SEGMENT;
            a.elapsed = a.elapsed.saturating_add(ptime);
            return Some(p);
        }
        let p = packet(pt, a.tone, segment_duration as u16, done, marker, offset);
        a.elapsed = a.elapsed.saturating_add(ptime);
        if done {
            // Retransmissions never repeat the marker.
            a.end_packet = Some(DtmfPacket { marker: false, ..p });
            a.end_sent = 1;
            if END_PACKETS <= 1 {
                self.finish();
            }
        }
        Some(p)
    }

    fn finish(&mut self) {
        self.current = None;
        self.gap_left = self.gap_ms.div_ceil(self.ptime_ms);
    }
}

fn packet(pt: u8, tone: Tone, duration: u16, end: bool, marker: bool, offset: u32) -> DtmfPacket {
    let d = duration.to_be_bytes();
    DtmfPacket {
        payload: [tone.event, (u8::from(end) << 7) | tone.volume, d[0], d[1]],
        payload_type: pt,
        marker,
        end,
        event: tone.event,
        duration,
        timestamp_offset: offset,
    }
}

/// A digit reported by [`DtmfReceiver::on_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// `0-9 * # A-D`.
    pub digit: char,
    /// The event code (0-15).
    pub event: u8,
    /// Volume, -dBm0.
    pub volume: u8,
    /// Duration reported by the packet that revealed the event, clock units.
    pub duration: u16,
    /// That packet already had the E bit (the start of the event was lost).
    pub end: bool,
    /// The event's RTP timestamp.
    pub timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    timestamp: u32,
    event: u8,
    ended: bool,
    duration: u16,
}

/// RFC 4733 receiver: reports each digit once; see the [module documentation](self).
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    last: Option<Seen>,
}

impl DtmfReceiver {
    /// A receiver with no event seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the current event (call on an SSRC change).
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// Feeds the RTP timestamp and payload of one telephone-event packet; returns the digit if
    /// this packet is the first seen of a new event.
    pub fn on_packet(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<DtmfDigit> {
        let &[event, flags, d0, d1, ..] = payload else {
            return None;
        };
        let digit = event_to_digit(event)?;
        let end = flags & 0x80 != 0;
        let volume = flags & 0x3F;
        let duration = u16::from_be_bytes([d0, d1]);
        if let Some(last) = self.last.as_mut() {
            let diff = rtp_timestamp.wrapping_sub(last.timestamp);
            if diff == 0 && event == last.event {
                last.ended |= end;
                last.duration = last.duration.max(duration);
                return None;
            }
            if (diff as i32) < 0 {
                // A late packet of an earlier event.
                return None;
            }
            if event == last.event && !last.ended && diff <= u32::from(last.duration) {
                // The next segment of a long event (§2.5.1.3).
                *last = Seen {
                    timestamp: rtp_timestamp,
                    event,
                    ended: end,
                    duration,
                };
                return None;
            }
        }
        self.last = Some(Seen {
            timestamp: rtp_timestamp,
            event,
            ended: end,
            duration,
        });
        Some(DtmfDigit {
            digit,
            event,
            volume,
            duration,
            end,
            timestamp: rtp_timestamp,
        })
    }
}

/// The body of a SIP INFO `application/dtmf-relay` request: `Signal=5\r\nDuration=160\r\n`.
pub fn format_dtmf_relay(digit: char, duration_ms: u32) -> Result<String, DtmfError> {
    let event = digit_to_event(digit).ok_or(DtmfError::InvalidDigit(digit))?;
    let digit = DTMF_EVENTS[usize::from(event)];
    Ok(format!("Signal={digit}\r\nDuration={duration_ms}\r\n"))
}

/// Parses an `application/dtmf-relay` body (`Signal=` and `Duration=` lines, any case, any
/// spacing, other lines ignored) or an `application/dtmf` body (just the digit). The signal
/// may also be an event code (`Signal=11` is `#`). Without a duration, [`DEFAULT_TONE_MS`].
pub fn parse_dtmf_relay(body: &str) -> Option<(char, u32)> {
    let mut signal = None;
    let mut duration = None;
    let mut saw_pair = false;
    for line in body.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        saw_pair = true;
        let key = key.trim();
        if key.eq_ignore_ascii_case("signal") {
            signal = parse_signal(value);
        } else if key.eq_ignore_ascii_case("duration") {
            duration = value.trim().parse::<u32>().ok();
        }
    }
    if !saw_pair {
        signal = parse_signal(body);
    }
    Some((signal?, duration.unwrap_or(DEFAULT_TONE_MS)))
}

fn parse_signal(value: &str) -> Option<char> {
    let v = value.trim();
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => digit_to_event(c).and_then(event_to_digit),
        (Some(_), Some(_)) => v.parse::<u8>().ok().and_then(event_to_digit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(tx: &mut DtmfSender, ticks: usize) -> Vec<Option<DtmfPacket>> {
        (0..ticks).map(|_| tx.next_packet()).collect()
    }

    #[test]
    fn digit_5_at_8000_hz_20_ms_100_ms_exact_bytes() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.start('5', 100, 10).unwrap();
        let got: Vec<DtmfPacket> = drain(&mut tx, 7).into_iter().map(Option::unwrap).collect();
        let payloads: Vec<[u8; 4]> = got.iter().map(|p| p.payload).collect();
        assert_eq!(
            payloads,
            vec![
                [0x05, 0x0A, 0x00, 0xA0], // 160
                [0x05, 0x0A, 0x01, 0x40], // 320
                [0x05, 0x0A, 0x01, 0xE0], // 480
                [0x05, 0x0A, 0x02, 0x80], // 640
                [0x05, 0x8A, 0x03, 0x20], // 800, E
                [0x05, 0x8A, 0x03, 0x20], // retransmitted end
                [0x05, 0x8A, 0x03, 0x20], // retransmitted end
            ]
        );
        let markers: Vec<bool> = got.iter().map(|p| p.marker).collect();
        assert_eq!(markers, [true, false, false, false, false, false, false]);
        let ends: Vec<bool> = got.iter().map(|p| p.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        let offsets: Vec<u32> = got.iter().map(|p| p.timestamp_offset).collect();
        assert_eq!(offsets, [0, 160, 320, 480, 640, 800, 960]);
        // With the media clock advancing 160 per tick, the RTP timestamp never moves.
        for (k, p) in got.iter().enumerate() {
            assert_eq!(p.rtp_timestamp(1_000_000 + 160 * k as u32), 1_000_000);
            assert_eq!(p.payload_type, 101);
            assert_eq!(p.event, 5);
        }
        assert_eq!(got[4].duration, 800);
        assert!(tx.next_packet().is_none());
    }

    #[test]
    fn a_duration_not_a_multiple_of_ptime_ends_on_the_exact_length() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.start('1', 90, 10).unwrap();
        let d: Vec<(u16, bool)> = drain(&mut tx, 8)
            .into_iter()
            .flatten()
            .map(|p| (p.duration, p.end))
            .collect();
        assert_eq!(
            d,
            [
                (160, false),
                (320, false),
                (480, false),
                (640, false),
                (720, true),
                (720, true),
                (720, true)
            ]
        );
    }

    #[test]
    fn a_tone_shorter_than_ptime_is_one_end_packet_sent_three_times() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.start('0', 5, 10).unwrap();
        let got: Vec<DtmfPacket> = drain(&mut tx, 4).into_iter().flatten().collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].marker && got[0].end && got[0].duration == 40);
        assert!(got[1..]
            .iter()
            .all(|p| !p.marker && p.end && p.duration == 40));
    }

    #[test]
    fn a_digit_string_is_sent_with_gaps() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.send("123#").unwrap();
        assert_eq!(tx.pending(), 4);
        let ticks = drain(&mut tx, 60);
        // Each digit: 7 packets (4 + 3 end), then 3 empty ticks (60 ms gap).
        let pattern: String = ticks
            .iter()
            .map(|t| if t.is_some() { 'P' } else { '.' })
            .collect();
        assert_eq!(&pattern[..40], "PPPPPPP...PPPPPPP...PPPPPPP...PPPPPPP...");
        assert!(pattern[40..].chars().all(|c| c == '.'));
        let starts: Vec<u8> = ticks
            .iter()
            .flatten()
            .filter(|p| p.marker)
            .map(|p| p.event)
            .collect();
        assert_eq!(starts, [1, 2, 3, 11]);
        assert!(tx.is_idle());
    }

    #[test]
    fn tone_length_gap_and_volume_are_configurable() {
        let mut tx = DtmfSender::new(96, 16_000, 20);
        tx.set_tone_duration(60);
        tx.set_gap(50);
        tx.set_volume(20).unwrap();
        assert_eq!(tx.set_volume(64), Err(DtmfError::InvalidVolume(64)));
        tx.send("99").unwrap();
        let ticks = drain(&mut tx, 20);
        let pattern: String = ticks
            .iter()
            .map(|t| if t.is_some() { 'P' } else { '.' })
            .collect();
        // 60 ms = 3 packets, the third with E, two more end packets; 50 ms gap = 3 ticks.
        assert_eq!(&pattern[..16], "PPPPP...PPPPP...");
        let first = ticks[0].unwrap();
        assert_eq!(first.payload, [9, 20, 0x01, 0x40]); // 320 units at 16 kHz
        assert_eq!(ticks[2].unwrap().payload, [9, 0x80 | 20, 0x03, 0xC0]); // 960
    }

    #[test]
    fn invalid_digits_and_volumes_are_errors_and_queue_nothing() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        assert_eq!(tx.send("12x3"), Err(DtmfError::InvalidDigit('x')));
        assert_eq!(tx.pending(), 0);
        assert_eq!(tx.start('E', 100, 10), Err(DtmfError::InvalidDigit('E')));
        assert_eq!(tx.start('1', 100, 64), Err(DtmfError::InvalidVolume(64)));
        assert!(tx.is_idle());
        assert!(tx.next_packet().is_none());
        tx.send("abcd*#").unwrap();
        let starts: Vec<u8> = std::iter::from_fn(|| {
            if tx.is_idle() {
                None
            } else {
                Some(tx.next_packet())
            }
        })
        .flatten()
        .filter(|p| p.marker)
        .map(|p| p.event)
        .collect();
        assert_eq!(starts, [12, 13, 14, 15, 10, 11]);
        assert!(DtmfError::InvalidDigit('x').to_string().contains("'x'"));
    }

    #[test]
    fn clear_drops_queued_digits_but_finishes_the_current_one() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.send("12").unwrap();
        assert!(tx.next_packet().unwrap().marker);
        assert!(tx.is_sending());
        tx.clear();
        let rest: Vec<DtmfPacket> = drain(&mut tx, 20).into_iter().flatten().collect();
        assert_eq!(rest.len(), 6);
        assert!(rest.iter().all(|p| p.event == 1));
        assert!(tx.is_idle());
    }

    #[test]
    fn long_events_are_segmented() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.start('7', 10_000, 10).unwrap(); // 80 000 units
        let mut media_ts = 0u32;
        let mut got = Vec::new();
        while let Some(p) = tx.next_packet() {
            got.push((p, p.rtp_timestamp(media_ts)));
            media_ts += 160;
        }
        // 409 packets up to 65 440, one reporting 0xFFFF, then the new segment.
        let (max, ts) = got[409];
        assert_eq!((max.duration, max.end, ts), (0xFFFF, false, 0));
        assert_eq!(got[408].0.duration, 65_440);
        let (next, ts) = got[410];
        assert_eq!(
            (next.duration, next.marker, next.end, ts),
            (
                225, // 65 760 - 65 535
                false, false, 65_535
            )
        );
        let tail: Vec<_> = got[got.len() - 3..]
            .iter()
            .map(|(p, ts)| (p.duration, p.end, *ts))
            .collect();
        assert_eq!(tail, vec![(14_465, true, 65_535); 3]);
        assert_eq!(got.iter().filter(|(p, _)| p.marker).count(), 1);
        assert!(got.iter().all(|(p, _)| u32::from(p.duration) <= 0xFFFF));

        // The receiver reports it once.
        let mut rx = DtmfReceiver::new();
        let digits: Vec<DtmfDigit> = got
            .iter()
            .filter_map(|(p, ts)| rx.on_packet(*ts, &p.payload))
            .collect();
        assert_eq!(digits.len(), 1);
        assert_eq!(digits[0].digit, '7');
    }

    fn event(ev: u8, end: bool, dur: u16) -> [u8; 4] {
        let d = dur.to_be_bytes();
        [ev, (u8::from(end) << 7) | 10, d[0], d[1]]
    }

    #[test]
    fn receiver_reports_each_digit_once_at_its_start() {
        let mut rx = DtmfReceiver::new();
        let d = rx.on_packet(1000, &event(5, false, 160)).unwrap();
        assert_eq!(
            d,
            DtmfDigit {
                digit: '5',
                event: 5,
                volume: 10,
                duration: 160,
                end: false,
                timestamp: 1000
            }
        );
        for dur in [320, 480, 640] {
            assert_eq!(rx.on_packet(1000, &event(5, false, dur)), None);
        }
        for _ in 0..3 {
            assert_eq!(rx.on_packet(1000, &event(5, true, 800)), None);
        }
        // The same digit again is a new event: a new timestamp.
        assert_eq!(
            rx.on_packet(3000, &event(5, false, 160)).unwrap().digit,
            '5'
        );
        // A late end packet of the first event is stale.
        assert_eq!(rx.on_packet(1000, &event(5, true, 800)), None);
        assert_eq!(rx.on_packet(3000, &event(5, true, 800)), None);
    }

    #[test]
    fn receiver_survives_lost_first_and_lost_end_packets() {
        let mut rx = DtmfReceiver::new();
        // First packet lost: reported on the second.
        assert_eq!(rx.on_packet(0, &event(1, false, 320)).unwrap().digit, '1');
        // End packets of '1' all lost; the same digit pressed again is still reported.
        assert_eq!(
            rx.on_packet(1280, &event(1, false, 160)).unwrap().digit,
            '1'
        );
        // Only the end packets of '2' arrive: reported once, flagged as end.
        let d = rx.on_packet(3000, &event(2, true, 800)).unwrap();
        assert!(d.end && d.digit == '2' && d.duration == 800);
        assert_eq!(rx.on_packet(3000, &event(2, true, 800)), None);
        // Sequence numbers do not matter, nor does the marker; the timestamp does.
        assert_eq!(
            rx.on_packet(5000, &event(15, false, 160)).unwrap().digit,
            'D'
        );
    }

    #[test]
    fn receiver_handles_timestamp_wrap_and_reset() {
        let mut rx = DtmfReceiver::new();
        assert!(rx.on_packet(u32::MAX - 100, &event(3, true, 800)).is_some());
        assert!(rx.on_packet(1000, &event(4, false, 160)).is_some());
        assert!(rx.on_packet(u32::MAX - 100, &event(3, true, 800)).is_none());
        // A new SSRC may reuse any timestamp.
        rx.reset();
        assert!(rx.on_packet(u32::MAX - 100, &event(3, true, 800)).is_some());
    }

    #[test]
    fn receiver_ignores_garbage() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.on_packet(0, &[]), None);
        assert_eq!(rx.on_packet(0, &[5, 10, 0]), None);
        // Event 16 (flash) and higher are not digits.
        assert_eq!(rx.on_packet(0, &[16, 10, 0, 160]), None);
        assert_eq!(rx.on_packet(0, &[255, 255, 255, 255]), None);
        // Longer payloads (e.g. padding kept) use the first four bytes.
        assert_eq!(rx.on_packet(0, &[9, 10, 0, 160, 0, 0]).unwrap().digit, '9');
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            let _ = rx.on_packet((x >> 32) as u32, &bytes[..(x % 9) as usize]);
        }
    }

    #[test]
    fn sender_to_receiver_round_trip() {
        let mut tx = DtmfSender::new(101, 8000, 20);
        tx.send("0123456789*#ABCD").unwrap();
        let mut rx = DtmfReceiver::new();
        let mut media_ts = 12_345u32;
        let mut digits = String::new();
        while !tx.is_idle() {
            if let Some(p) = tx.next_packet() {
                if let Some(d) = rx.on_packet(p.rtp_timestamp(media_ts), &p.payload) {
                    digits.push(d.digit);
                }
            }
            media_ts = media_ts.wrapping_add(160);
        }
        assert_eq!(digits, "0123456789*#ABCD");
    }

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(
            format_dtmf_relay('5', 160).unwrap(),
            "Signal=5\r\nDuration=160\r\n"
        );
        assert_eq!(
            format_dtmf_relay('a', 100).unwrap(),
            "Signal=A\r\nDuration=100\r\n"
        );
        assert_eq!(
            format_dtmf_relay('\n', 100),
            Err(DtmfError::InvalidDigit('\n'))
        );

        assert_eq!(
            parse_dtmf_relay("Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            parse_dtmf_relay("signal = #\nduration= 250"),
            Some(('#', 250))
        );
        assert_eq!(
            parse_dtmf_relay("Signal=*\r\n"),
            Some(('*', DEFAULT_TONE_MS))
        );
        assert_eq!(
            parse_dtmf_relay("Signal=11\r\nDuration=100\r\n"),
            Some(('#', 100))
        );
        assert_eq!(parse_dtmf_relay("Signal=10"), Some(('*', DEFAULT_TONE_MS)));
        assert_eq!(
            parse_dtmf_relay("Signal=b\r\nDuration=x\r\n"),
            Some(('B', DEFAULT_TONE_MS))
        );
        assert_eq!(
            parse_dtmf_relay("Foo=bar\r\nSignal=7\r\nDuration=90"),
            Some(('7', 90))
        );
        // application/dtmf: just the digit.
        assert_eq!(parse_dtmf_relay("5"), Some(('5', DEFAULT_TONE_MS)));
        assert_eq!(parse_dtmf_relay(" #\r\n"), Some(('#', DEFAULT_TONE_MS)));
        for bad in [
            "",
            "\r\n",
            "Signal=",
            "Signal=X",
            "Signal=16",
            "Duration=100",
            "55",
            "x",
            "Signal=5=5",
        ] {
            assert_eq!(parse_dtmf_relay(bad), None, "{bad:?}");
        }
        // Round trip for every digit.
        for c in DTMF_EVENTS {
            assert_eq!(
                parse_dtmf_relay(&format_dtmf_relay(c, 123).unwrap()),
                Some((c, 123))
            );
        }
    }

    #[test]
    fn digit_event_mapping() {
        assert_eq!(digit_to_event('0'), Some(0));
        assert_eq!(digit_to_event('*'), Some(10));
        assert_eq!(digit_to_event('#'), Some(11));
        assert_eq!(digit_to_event('d'), Some(15));
        assert_eq!(digit_to_event('E'), None);
        assert_eq!(event_to_digit(11), Some('#'));
        assert_eq!(event_to_digit(16), None);
    }
}
