//! Session timer settings (RFC 4028): whether we use the timer, the interval we ask for, the
//! shortest one we accept, and how we refresh. Checked here; the timer itself is
//! `call::session_timer`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Whether the session timer is used: pjsua2's `timerUse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionTimerMode {
    /// No `Supported: timer`; the peer's Session-Expires is ignored.
    Off,
    /// `Supported: timer`: the timer runs when the peer uses it too.
    #[default]
    Optional,
    /// `Require: timer` on our INVITE; an INVITE from a peer without timer support gets 421.
    Required,
    /// The timer runs even when the peer does not support it (we refresh).
    Always,
}

/// The request a refresher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionRefresh {
    /// UPDATE without a body (RFC 3311).
    Update,
    /// re-INVITE with the session's current SDP.
    Invite,
}

/// The session timer part of the endpoint config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionTimerConfig {
    /// Whether the timer is used.
    pub mode: SessionTimerMode,
    /// The Session-Expires we ask for, in seconds.
    pub expires_sec: u32,
    /// Our Min-SE: a shorter Session-Expires from the peer gets 422.
    pub min_expires_sec: u32,
    /// `None`: UPDATE when the peer's Allow lists it, else re-INVITE.
    pub refresh: Option<SessionRefresh>,
}

/// Checks the values; the error names the field. A Min-SE below RFC 4028's 90 s floor is
/// allowed (lab use and tests), but not below 2 s: half of it is the refresh period.
pub(crate) fn validate(expires_sec: u32, min_expires_sec: u32) -> Result<()> {
    if min_expires_sec < 2 {
        return Err(Error::Config(format!(
            "minSessionExpiresSec: must be at least 2 s, got {min_expires_sec}"
        )));
    }
    if expires_sec < min_expires_sec {
        return Err(Error::Config(format!(
            "sessionExpiresSec: must be at least minSessionExpiresSec ({min_expires_sec}), got {expires_sec}"
        )));
    }
    if expires_sec > 86_400 {
        return Err(Error::Config(format!(
            "sessionExpiresSec: must be at most 86400 s, got {expires_sec}"
        )));
    }
    Ok(())
}
