//! Events the engine reports to its user (the Node binding forwards them as JS objects).
//!
//! Serialized with serde as `{ "type": "<snake_case>", ...camelCase fields }`, which is the shape
//! the service's `handleEvent` expects (`{ type: 'incoming_call', from, to }`).

use serde::Serialize;

/// Registration state of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    Registering,
    Registered,
    Unregistering,
    Unregistered,
    Failed,
}

/// State of a call, as pjsua2 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Outgoing INVITE sent, nothing heard yet (or 100 Trying).
    Calling,
    /// Incoming call offered to the user, 180 sent.
    Incoming,
    /// Outgoing call got 180 Ringing.
    Ringing,
    /// Outgoing call got 183 Session Progress (early media).
    Early,
    /// Answered on our side, waiting for the ACK.
    Connecting,
    /// 2xx and ACK exchanged.
    Confirmed,
    /// The call is over; `code` and `reason` say why.
    Disconnected,
}

impl CallState {
    /// The state's name as events and errors spell it (`confirmed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calling => "calling",
            Self::Incoming => "incoming",
            Self::Ringing => "ringing",
            Self::Early => "early",
            Self::Connecting => "connecting",
            Self::Confirmed => "confirmed",
            Self::Disconnected => "disconnected",
        }
    }
}

/// Direction of a call, seen from this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// Something that happened in the endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    Registration {
        account: String,
        state: RegistrationState,
        code: u16,
        reason: String,
        /// Seconds the registrar granted (0 when not registered).
        expires: u32,
    },
    IncomingCall {
        call_id: String,
        /// The SIP Call-ID of the INVITE.
        sip_call_id: String,
        account: String,
        /// Caller's URI, e.g. `sip:1000@pbx`.
        from: String,
        /// Called URI.
        to: String,
        /// Caller's display name (UTF-8) if any.
        display_name: Option<String>,
        /// Caller's user part (the number), for convenience.
        from_user: String,
        /// The request headers, masked, in order.
        headers: Vec<(String, String)>,
    },
    CallState {
        call_id: String,
        state: CallState,
        direction: Direction,
        /// Last SIP status code seen for the call (0 if none).
        code: u16,
        reason: String,
    },
    /// A DTMF digit received (RFC 4733 in RTP, or SIP INFO).
    Dtmf {
        call_id: String,
        digit: String,
        /// `rfc4733` or `info`.
        method: String,
        duration_ms: u32,
    },
    /// The hold state of a call changed (`by` is `local`: our re-INVITE was answered).
    Hold {
        call_id: String,
        by: String,
        held: bool,
    },
    /// A request inside a call got no answer or an error answer; the call goes on.
    RequestFailed {
        call_id: String,
        /// The SIP method, e.g. `INVITE` for a re-INVITE.
        method: String,
        /// What the request was for, e.g. `hold` or `unhold`.
        purpose: String,
        /// The final status, 408 when the peer stayed silent for 64·T1.
        code: u16,
        reason: String,
    },
    /// A problem that did not fail an API call (a supervised task failing, a dropped message).
    Error { message: String },
}
