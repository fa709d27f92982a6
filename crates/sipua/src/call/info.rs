//! What `callInfo()` tells of a call: its identity, parties, account, codec, hold and times. The
//! times are set by the state changes (`apply`): answered on the first `connecting` or
//! `confirmed`, ended on `disconnected`.

use super::Call;
use crate::event::{CallState, Direction};
use std::time::{SystemTime, UNIX_EPOCH};

/// A snapshot of one call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallInfo {
    /// Our id of the call (`out-…` or `in-…`), the `callId` of its events.
    pub id: String,
    /// The SIP Call-ID of its dialog.
    pub sip_call_id: String,
    /// Who placed the call.
    pub direction: Direction,
    /// The caller's URI.
    pub from: String,
    /// The called URI.
    pub to: String,
    /// Where the call is now.
    pub state: CallState,
    /// The extension of the account the call belongs to (none: a call without accounts).
    pub account: Option<String>,
    /// Our URI in the call (`from` of an outgoing call, `to` of an incoming one).
    pub local_uri: String,
    /// The peer's URI (`to` of an outgoing call, `from` of an incoming one).
    pub remote_uri: String,
    /// The peer's Contact URI as it sent it, once known.
    pub remote_contact: Option<String>,
    /// The negotiated codec (`PCMU`, `PCMA`, `G722`), once the media runs.
    pub codec: Option<String>,
    /// Who holds the call: `none`, `local`, `remote` or `both`.
    pub hold: &'static str,
    /// When the call was created, ms since the Unix epoch.
    pub start_time: u64,
    /// When it was answered (our 200 sent or the peer's received), ms since the epoch.
    pub answer_time: Option<u64>,
    /// When it was disconnected, ms since the epoch.
    pub end_time: Option<u64>,
    /// For a call placed on a REFER: our id of the call that was transferred.
    pub referred_from: Option<String>,
}

/// Milliseconds since the Unix epoch now.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The times of a call, ms since the epoch.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallTimes {
    pub start: u64,
    pub answer: Option<u64>,
    pub end: Option<u64>,
}

impl CallTimes {
    pub(super) fn new(start: u64) -> Self {
        Self {
            start,
            answer: None,
            end: None,
        }
    }

    /// Records the state the call entered at `now`.
    pub(super) fn entered(&mut self, state: CallState, now: u64) {
        match state {
            CallState::Connecting | CallState::Confirmed => {
                self.answer.get_or_insert(now);
            }
            CallState::Disconnected => {
                self.end.get_or_insert(now);
            }
            _ => {}
        }
    }
}

impl Call {
    pub(crate) fn info(&self) -> CallInfo {
        let times = self.times.lock().map(|t| *t).unwrap_or(CallTimes::new(0));
        let (local_uri, remote_uri) = match self.direction {
            Direction::Outgoing => (self.from.clone(), self.to.clone()),
            Direction::Incoming => (self.to.clone(), self.from.clone()),
        };
        CallInfo {
            id: self.id.clone(),
            sip_call_id: self.sip_call_id.clone(),
            direction: self.direction,
            from: self.from.clone(),
            to: self.to.clone(),
            state: self.state(),
            account: self.account.clone(),
            local_uri,
            remote_uri,
            remote_contact: self.remote_contact(),
            codec: self.media.codec(),
            hold: self.hold_state().as_str(),
            start_time: times.start,
            answer_time: times.answer,
            end_time: times.end,
            referred_from: self.referred_from(),
        }
    }

    /// The peer's Contact URI: from its INVITE (incoming) or its answer (outgoing), as the
    /// dialog holds it.
    fn remote_contact(&self) -> Option<String> {
        let dialog = self.dialog()?;
        let contact = rsipstack::dialog::dialog::Dialog::Invite(dialog).remote_contact()?;
        Some(contact.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_and_end_times_are_the_first_of_each() {
        let mut t = CallTimes::new(1000);
        t.entered(CallState::Ringing, 1100);
        assert_eq!((t.answer, t.end), (None, None));
        t.entered(CallState::Connecting, 1200);
        t.entered(CallState::Confirmed, 1300);
        assert_eq!(t.answer, Some(1200));
        t.entered(CallState::Disconnected, 1400);
        t.entered(CallState::Disconnected, 1500);
        assert_eq!((t.start, t.answer, t.end), (1000, Some(1200), Some(1400)));
        let mut missed = CallTimes::new(1000);
        missed.entered(CallState::Disconnected, 1100);
        assert_eq!((missed.answer, missed.end), (None, Some(1100)));
        assert!(now_ms() > 1_700_000_000_000);
    }
}
