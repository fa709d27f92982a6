//! The SDP direction each side says, from who holds whom (RFC 3264 §8.4, RFC 6337 §5.3):
//! pure, shared by hold/resume and by the answers to the peer's offers.

use crate::media::MediaDirection;

/// The direction of our offer: we stop receiving while we hold, and stop sending while the
/// peer holds us (RFC 6337 §5.3: a held side offers `inactive` when it holds in turn).
pub(crate) fn offer_direction(local: bool, remote: bool) -> MediaDirection {
    match (local, remote) {
        (false, false) => MediaDirection::SendRecv,
        (true, false) => MediaDirection::SendOnly,
        (false, true) => MediaDirection::RecvOnly,
        (true, true) => MediaDirection::Inactive,
    }
}

/// Our direction in an answer: the mirror of the offer (`mirrored`), without receiving while
/// we hold.
pub(crate) fn answer_direction(mirrored: MediaDirection, local: bool) -> MediaDirection {
    match (mirrored, local) {
        (MediaDirection::SendRecv, true) => MediaDirection::SendOnly,
        (MediaDirection::RecvOnly, true) => MediaDirection::Inactive,
        (d, _) => d,
    }
}

/// Whether an offer of the peer holds us: it will not receive (`sendonly`, `inactive`, or the
/// old RFC 2543 `c=0.0.0.0`). `mirrored` is our direction, the mirror of the offer's.
pub(crate) fn offer_holds_us(mirrored: MediaDirection, connection_unspecified: bool) -> bool {
    !mirrored.sends() || connection_unspecified
}

#[cfg(test)]
mod tests {
    use super::*;
    use MediaDirection::*;

    #[test]
    fn offers_say_what_both_sides_want() {
        assert_eq!(offer_direction(false, false), SendRecv);
        assert_eq!(offer_direction(true, false), SendOnly);
        assert_eq!(offer_direction(false, true), RecvOnly);
        assert_eq!(offer_direction(true, true), Inactive);
    }

    #[test]
    fn answers_do_not_receive_while_we_hold() {
        assert_eq!(answer_direction(SendRecv, false), SendRecv);
        assert_eq!(answer_direction(SendRecv, true), SendOnly);
        assert_eq!(answer_direction(RecvOnly, true), Inactive);
        assert_eq!(answer_direction(SendOnly, true), SendOnly);
    }

    #[test]
    fn the_peer_holds_us_when_it_will_not_receive() {
        // Our mirror of its sendonly is recvonly; of its inactive, inactive.
        assert!(offer_holds_us(RecvOnly, false));
        assert!(offer_holds_us(Inactive, false));
        assert!(!offer_holds_us(SendRecv, false));
        assert!(!offer_holds_us(SendOnly, false));
        assert!(offer_holds_us(SendRecv, true));
    }
}
