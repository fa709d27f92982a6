//! The fixed RTP header (RFC 3550 §5.1), written into and read from caller buffers: the hot
//! path builds one packet per call every 20 ms and must not allocate. Header extensions and
//! CSRCs of received packets are skipped, padding removed.

/// Fields of a received packet and where its payload lies in the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView {
    /// The marker bit: a talkspurt or a telephone-event starts.
    pub marker: bool,
    /// The payload type (7 bits).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The RTP timestamp, in the payload's clock.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// Where the payload starts in the datagram (after CSRCs and extension).
    pub payload_start: usize,
    /// Where it ends (before any padding).
    pub payload_end: usize,
}

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the fixed header.
    TooShort,
    /// Not RTP version 2.
    BadVersion,
    /// CSRCs, extension or padding run past the end.
    BadLength,
}

/// Length of the fixed header, all that we write.
pub const HEADER_LEN: usize = 12;

/// Writes a 12-byte header (no CSRC, no extension) at the start of `out`; returns its length.
pub fn write_header(out: &mut [u8], marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) -> usize {
    out[0] = 0x80;
    out[1] = (u8::from(marker) << 7) | (pt & 0x7f);
    out[2..4].copy_from_slice(&seq.to_be_bytes());
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
    HEADER_LEN
}

/// Parses an RTP datagram without copying.
pub fn parse(packet: &[u8]) -> Result<RtpView, RtpError> {
    if packet.len() < HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(RtpError::BadVersion);
    }
    let padding = packet[0] & 0x20 != 0;
    let extension = packet[0] & 0x10 != 0;
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut start = HEADER_LEN + 4 * csrc_count;
    if extension {
        if packet.len() < start + 4 {
            return Err(RtpError::BadLength);
        }
        let words = usize::from(u16::from_be_bytes([packet[start + 2], packet[start + 3]]));
        start += 4 + 4 * words;
    }
    let mut end = packet.len();
    if padding {
        let pad = usize::from(packet[end - 1]);
        if pad == 0 || pad > end {
            return Err(RtpError::BadLength);
        }
        end -= pad;
    }
    if start > end {
        return Err(RtpError::BadLength);
    }
    Ok(RtpView {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload_start: start,
        payload_end: end,
    })
}

/// Whether a datagram on an rtcp-mux port is RTCP (RFC 5761 §4: payload types 64-95 with M).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (192..=223).contains(&packet[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut buf = [0u8; 172];
        let n = write_header(&mut buf, true, 8, 65535, 0xdead_beef, 0x1234_5678);
        buf[n..n + 160].fill(0xd5);
        let v = parse(&buf[..n + 160]).unwrap();
        assert!(v.marker);
        assert_eq!(
            (v.payload_type, v.sequence, v.timestamp, v.ssrc),
            (8, 65535, 0xdead_beef, 0x1234_5678)
        );
        assert_eq!((v.payload_start, v.payload_end), (12, 172));
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut p = vec![0xb1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, one word
        p.extend_from_slice(&[7, 7, 7]); // payload
        p.extend_from_slice(&[0, 2]); // padding of 2
        let v = parse(&p).unwrap();
        assert_eq!(&p[v.payload_start..v.payload_end], &[7u8, 7, 7][..]);
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        assert_eq!(parse(b"abc"), Err(RtpError::TooShort));
        assert_eq!(parse(&[0u8; 20]), Err(RtpError::BadVersion));
        assert_eq!(
            parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]),
            Err(RtpError::BadLength)
        );
        assert_eq!(
            parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtpError::BadLength)
        );
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 0x80) as u8).collect();
            let _ = parse(&data);
        }
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(!is_rtcp(&[0x80, 0, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0x88, 0, 1]));
    }
}
