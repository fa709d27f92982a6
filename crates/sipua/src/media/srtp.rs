//! SRTP and SRTCP (RFC 3711) on a session's packets, with keys settled by SDES (RFC 4568,
//! `crate::sdes`): the suites, the master keys, and one pair of `rtc-srtp` contexts per
//! session (one to protect what we send, one to check and decrypt what we receive: a context
//! keeps per-SSRC rollover counters and replay windows, and is one-way by design).
//!
//! Why keys are compared before contexts are rebuilt: a re-INVITE that keeps a key must keep
//! its context, since a new one restarts the rollover counter at 0 and, with the same key and
//! sequence numbers, would reuse keystream.

use bytes::BytesMut;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use std::fmt;

/// Master key (16 bytes) then master salt (14 bytes): the `inline:` value of both suites.
pub const KEY_SALT_LEN: usize = 30;
const KEY_LEN: usize = 16;
/// Packets a receive context accepts out of order before it calls them replays (RFC 3711
/// §3.3.2 asks for at least 64).
const REPLAY_WINDOW: usize = 128;

/// The SDES crypto suites we implement (RFC 4568 §6.2), in our order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag on RTP and RTCP.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag on RTP (RTCP keeps 80 bits, RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Every suite, in our order of preference.
    pub const ALL: [CryptoSuite; 2] = [Self::AesCm128HmacSha1_80, Self::AesCm128HmacSha1_32];

    /// The name of the `a=crypto` line.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of that name (suite names are case-sensitive, RFC 4568 §9.2).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Self::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Self::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 => 0,
            Self::AesCm128HmacSha1_32 => 1,
        }
    }
}

/// A master key and salt. Its `Debug` prints no byte of it: keys must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey(pub [u8; KEY_SALT_LEN]);

impl SrtpKey {
    /// A fresh random key and salt.
    pub fn generate() -> Self {
        Self(rand::random())
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKey(..)")
    }
}

/// Our own keys of one call, one per suite (a key is never shared between two suites, whose
/// keystreams would be the same), offered or answered with. A key we stopped sending under is
/// [`retire`](Self::retire)d: a new context under it would restart the rollover counter and,
/// past 65,536 packets, repeat packet indexes, so repeat keystream (RFC 3711 §9.1).
#[derive(Debug, Clone)]
pub struct LocalKeys([SrtpKey; 2]);

impl LocalKeys {
    /// Fresh keys for every suite.
    pub fn generate() -> Self {
        Self([SrtpKey::generate(), SrtpKey::generate()])
    }

    /// Our key for `suite`.
    pub fn for_suite(&self, suite: CryptoSuite) -> &SrtpKey {
        &self.0[suite.index()]
    }

    /// Replaces the key of `suite`, whose sending context ended: a later offer or answer with
    /// that suite carries a fresh key.
    pub fn retire(&mut self, suite: CryptoSuite) {
        self.0[suite.index()] = SrtpKey::generate();
    }
}

/// What SDES settled: the suite, our key (what we send under) and the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// The suite both sides use.
    pub suite: CryptoSuite,
    /// Our key: it protects what we send.
    pub local: SrtpKey,
    /// The peer's key: it checks and decrypts what we receive.
    pub remote: SrtpKey,
}

/// Why a received packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprotect(pub String);

/// The contexts of one session.
pub struct SrtpSession {
    params: SrtpParams,
    tx: Context,
    rx: Context,
}

impl SrtpSession {
    /// Contexts for `params`; an error only if the crypto provider lacks AES-CM or HMAC-SHA1.
    pub fn new(params: SrtpParams) -> Result<Self, String> {
        let tx = context(params.suite, &params.local, false)?;
        let rx = context(params.suite, &params.remote, true)?;
        Ok(Self { params, tx, rx })
    }

    /// The suite in use.
    pub fn suite(&self) -> CryptoSuite {
        self.params.suite
    }

    /// Follows a re-INVITE: a context whose suite and key are unchanged is kept (RFC 4568
    /// §7.1.4: same key, same crypto context), a changed one starts afresh. Returns the suite
    /// of the sending context that ended when the suite changed (its key is to be retired).
    pub fn update(&mut self, params: SrtpParams) -> Result<Option<CryptoSuite>, String> {
        let mut ended = None;
        if params.suite != self.params.suite || params.local != self.params.local {
            self.tx = context(params.suite, &params.local, false)?;
            ended = (params.suite != self.params.suite).then_some(self.params.suite);
        }
        if params.suite != self.params.suite || params.remote != self.params.remote {
            self.rx = context(params.suite, &params.remote, true)?;
        }
        self.params = params;
        Ok(ended)
    }

    /// The SRTP packet of a plain RTP one; `None` only after 2^48 packets (RFC 3711 §9.2).
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Option<BytesMut> {
        self.tx.encrypt_rtp(packet).ok()
    }

    /// The SRTCP packet of a plain compound RTCP one.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Option<BytesMut> {
        self.tx.encrypt_rtcp(packet).ok()
    }

    /// The plain RTP packet of an SRTP one: an error for a bad tag, a replay or a packet too
    /// short or malformed to carry one.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, Unprotect> {
        self.rx
            .decrypt_rtp(packet)
            .map_err(|e| Unprotect(e.to_string()))
    }

    /// The plain RTCP of an SRTCP packet, as [`unprotect_rtp`](Self::unprotect_rtp).
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, Unprotect> {
        self.rx
            .decrypt_rtcp(packet)
            .map_err(|e| Unprotect(e.to_string()))
    }
}

fn context(suite: CryptoSuite, key: &SrtpKey, receive: bool) -> Result<Context, String> {
    let (master_key, master_salt) = key.0.split_at(KEY_LEN);
    let provider = RingProvider::new();
    let (srtp, srtcp) = if receive {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(
        master_key,
        master_salt,
        suite.profile(),
        srtp,
        srtcp,
        provider.crypto(),
    )
    .map_err(|e| format!("SRTP context: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp;

    fn pair(suite: CryptoSuite) -> (SrtpSession, SrtpSession) {
        let (a, b) = (SrtpKey::generate(), SrtpKey::generate());
        let ours = SrtpParams {
            suite,
            local: a.clone(),
            remote: b.clone(),
        };
        let theirs = SrtpParams {
            suite,
            local: b,
            remote: a,
        };
        (
            SrtpSession::new(ours).unwrap(),
            SrtpSession::new(theirs).unwrap(),
        )
    }

    fn rtp_packet(seq: u16) -> Vec<u8> {
        let mut p = vec![0u8; rtp::HEADER_LEN + 160];
        rtp::write_header(&mut p, false, 0, seq, u32::from(seq) * 160, 0x1234);
        p[rtp::HEADER_LEN..].fill(0x55);
        p
    }

    #[test]
    fn round_trip_hides_the_payload_and_tags_by_suite() {
        for (suite, tag) in [
            (CryptoSuite::AesCm128HmacSha1_80, 10),
            (CryptoSuite::AesCm128HmacSha1_32, 4),
        ] {
            let (mut us, mut peer) = pair(suite);
            let plain = rtp_packet(7);
            let sealed = us.protect_rtp(&plain).unwrap();
            assert_eq!(sealed.len(), plain.len() + tag);
            assert_eq!(sealed[..rtp::HEADER_LEN], plain[..rtp::HEADER_LEN]);
            assert_ne!(
                sealed[rtp::HEADER_LEN..plain.len()],
                plain[rtp::HEADER_LEN..]
            );
            assert_eq!(&peer.unprotect_rtp(&sealed).unwrap()[..], &plain[..]);
            // a replay of the same packet is refused
            assert!(peer.unprotect_rtp(&sealed).is_err());
        }
    }

    #[test]
    fn tampered_truncated_or_foreign_packets_are_refused() {
        let (mut us, mut peer) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let sealed = us.protect_rtp(&rtp_packet(1)).unwrap();
        let mut flipped = sealed.to_vec();
        flipped[20] ^= 1;
        assert!(peer.unprotect_rtp(&flipped).is_err());
        assert!(peer.unprotect_rtp(&sealed[..sealed.len() - 1]).is_err());
        assert!(peer.unprotect_rtp(&[0x80, 0, 0]).is_err());
        assert!(peer.unprotect_rtp(&rtp_packet(2)).is_err(), "plain RTP");
        let (mut stranger, _) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let foreign = stranger.protect_rtp(&rtp_packet(3)).unwrap();
        assert!(peer.unprotect_rtp(&foreign).is_err());
        // the good one still passes after all that
        assert!(peer.unprotect_rtp(&sealed).is_ok());
    }

    #[test]
    fn rtcp_round_trip() {
        let (mut us, mut peer) = pair(CryptoSuite::AesCm128HmacSha1_32);
        // an empty receiver report: V=2, RC=0, PT=201, length 1, SSRC
        let rr = [0x80, 201, 0, 1, 0, 0, 0x12, 0x34];
        let sealed = us.protect_rtcp(&rr).unwrap();
        assert_ne!(&sealed[..], &rr[..]);
        assert_eq!(&peer.unprotect_rtcp(&sealed).unwrap()[..], &rr[..]);
        assert!(peer.unprotect_rtcp(&rr).is_err());
    }

    #[test]
    fn rollover_counter_carries_past_sequence_wrap() {
        let (mut us, mut peer) = pair(CryptoSuite::AesCm128HmacSha1_80);
        for seq in (65530..=u16::MAX).chain(0..10) {
            let sealed = us.protect_rtp(&rtp_packet(seq)).unwrap();
            assert!(peer.unprotect_rtp(&sealed).is_ok(), "seq {seq}");
        }
    }

    #[test]
    fn a_suite_change_names_the_sending_context_that_ended() {
        let (mut us, _) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let mut rekeyed = us.params.clone();
        rekeyed.remote = SrtpKey::generate();
        assert_eq!(
            us.update(rekeyed).unwrap(),
            None,
            "same suite, same key of ours"
        );
        let mut switched = us.params.clone();
        switched.suite = CryptoSuite::AesCm128HmacSha1_32;
        switched.local = SrtpKey::generate();
        assert_eq!(
            us.update(switched).unwrap(),
            Some(CryptoSuite::AesCm128HmacSha1_80)
        );
    }

    #[test]
    fn a_retired_key_is_replaced_and_the_other_suite_keeps_its_own() {
        let mut keys = LocalKeys::generate();
        let before = keys.clone();
        keys.retire(CryptoSuite::AesCm128HmacSha1_80);
        assert_ne!(
            keys.for_suite(CryptoSuite::AesCm128HmacSha1_80),
            before.for_suite(CryptoSuite::AesCm128HmacSha1_80)
        );
        assert_eq!(
            keys.for_suite(CryptoSuite::AesCm128HmacSha1_32),
            before.for_suite(CryptoSuite::AesCm128HmacSha1_32)
        );
    }

    #[test]
    fn an_unchanged_key_keeps_its_context_on_update() {
        let (mut us, mut peer) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let first = us.protect_rtp(&rtp_packet(5)).unwrap();
        assert!(peer.unprotect_rtp(&first).is_ok());
        let same = peer.params.clone();
        peer.update(same).unwrap();
        // the replay window survived: the context was kept
        assert!(peer.unprotect_rtp(&first).is_err());
        let mut rekeyed = peer.params.clone();
        rekeyed.remote = SrtpKey::generate();
        peer.update(rekeyed).unwrap();
        assert!(peer
            .unprotect_rtp(&us.protect_rtp(&rtp_packet(6)).unwrap())
            .is_err());
        assert!(!format!("{:?}", peer.params).contains(&format!("{:?}", peer.params.local.0)));
    }
}
