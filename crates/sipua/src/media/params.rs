//! What offer/answer settles for a media session, in media's own terms: SDP (a layer above)
//! translates into these, so the session never reads SDP.

use super::codec::AudioCodec;
use super::srtp::SrtpParams;
use std::net::SocketAddr;

/// Which ways the media flows (RFC 3264 section 5.1), `sendrecv` unless said otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MediaDirection {
    /// Both ways (`a=sendrecv`).
    #[default]
    SendRecv,
    /// We send, the other side only listens (`a=sendonly`; the peer puts us on hold, typically).
    SendOnly,
    /// We listen only (`a=recvonly`).
    RecvOnly,
    /// Neither way (`a=inactive`).
    Inactive,
}

impl MediaDirection {
    /// Every direction.
    pub const ALL: [MediaDirection; 4] = [
        MediaDirection::SendRecv,
        MediaDirection::SendOnly,
        MediaDirection::RecvOnly,
        MediaDirection::Inactive,
    ];

    /// The name SDP and `stats()` use: `sendrecv`, `sendonly`, `recvonly`, `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }

    /// The direction of that name; `None` for any other word.
    pub fn from_name(name: &str) -> Option<MediaDirection> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The same flow seen from the other end (RFC 3264 section 6.1): sendonly becomes recvonly
    /// and back; sendrecv and inactive stay.
    pub fn mirror(self) -> MediaDirection {
        match self {
            MediaDirection::SendOnly => MediaDirection::RecvOnly,
            MediaDirection::RecvOnly => MediaDirection::SendOnly,
            d => d,
        }
    }

    /// We send in this direction.
    pub fn sends(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::SendOnly)
    }

    /// We receive in this direction.
    pub fn receives(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::RecvOnly)
    }
}

/// Negotiated parameters of a session, replaced as a whole by re-INVITEs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    /// The audio codec both sides use.
    pub codec: AudioCodec,
    /// The codec's payload type as the peer numbers it (dynamic numbers are legal for G.711).
    pub payload_type: u8,
    /// The peer's telephone-event payload type; `None`: it takes no RFC 4733 DTMF.
    pub telephone_event_pt: Option<u8>,
    /// Where the peer said to send RTP (until its packets show where it really is).
    pub remote: SocketAddr,
    /// Our direction.
    pub direction: MediaDirection,
    /// RTCP shares the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// SRTP suite and keys; `None`: plain RTP.
    pub srtp: Option<SrtpParams>,
}

impl MediaParams {
    /// We send RTP: our direction says so and the peer gave an address (`0.0.0.0` is the old
    /// RFC 2543 way of holding).
    pub(crate) fn sends(&self) -> bool {
        self.direction.sends() && !self.remote.ip().is_unspecified()
    }

    /// We play out what we receive.
    pub(crate) fn receives(&self) -> bool {
        self.direction.receives()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_names_and_mirror() {
        for d in MediaDirection::ALL {
            assert_eq!(MediaDirection::from_name(d.as_str()), Some(d));
            assert_eq!(d.mirror().mirror(), d);
        }
        assert_eq!(MediaDirection::from_name("rtcp-mux"), None);
        assert_eq!(MediaDirection::SendOnly.mirror(), MediaDirection::RecvOnly);
        assert!(MediaDirection::SendOnly.sends() && !MediaDirection::SendOnly.receives());
        assert!(!MediaDirection::Inactive.sends() && !MediaDirection::Inactive.receives());
    }
}
