//! Events the engine reports to its user (the Node binding forwards them as JS objects).
//!
//! Serialized with serde as `{ "type": "<snake_case>", ...camelCase fields }`, which is the shape
//! the service's `handleEvent` expects (`{ type: 'incoming_call', from, to }`).

use serde::Serialize;

/// Registration state of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    /// A REGISTER is on its way.
    Registering,
    /// The registrar accepted the binding.
    Registered,
    /// The un-REGISTER (`Expires: 0`) of `stop()` is on its way.
    Unregistering,
    /// No binding any more (or never was).
    Unregistered,
    /// The registrar refused, or never answered; a retry follows after the back-off.
    Failed,
}

impl RegistrationState {
    /// The state's name as events, logs and metrics spell it (`registered`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registering => "registering",
            Self::Registered => "registered",
            Self::Unregistering => "unregistering",
            Self::Unregistered => "unregistered",
            Self::Failed => "failed",
        }
    }
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

/// State of a stream connection (TCP, TLS, WS, WSS) to the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportState {
    /// The first connection is being dialled.
    Connecting,
    /// The connection is up (and the handshakes done).
    Connected,
    /// The connection failed or closed; `reason` says why.
    Disconnected,
    /// A new connection is being dialled after a failure.
    Reconnecting,
}

/// Direction of a call, seen from this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We placed it (`makeCall`).
    Outgoing,
    /// The peer placed it (`incoming_call`).
    Incoming,
}

/// How a public address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressSource {
    /// The registrar's Via `received`/`rport` (RFC 3581).
    Rport,
    /// A STUN binding response (RFC 5389).
    Stun,
}

/// Something that happened in the endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// An account's registration changed state.
    Registration {
        /// The account's extension.
        account: String,
        /// Where the registration is now.
        state: RegistrationState,
        /// The registrar's status code (0 when none).
        code: u16,
        /// Its reason phrase, or why there is none.
        reason: String,
        /// Seconds the registrar granted (0 when not registered).
        expires: u32,
    },
    /// A call arrived and rings; answer or reject it.
    IncomingCall {
        /// Our id of the call.
        call_id: String,
        /// The SIP Call-ID of the INVITE.
        sip_call_id: String,
        /// The extension of the account called.
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
    /// A call changed state.
    CallState {
        /// Our id of the call.
        call_id: String,
        /// The new state.
        state: CallState,
        /// Who placed the call.
        direction: Direction,
        /// Last SIP status code seen for the call (0 if none).
        code: u16,
        /// What happened, e.g. "local hangup", "RTP timeout"; the `text` of the peer's
        /// RFC 3326 Reason when its BYE or CANCEL carried one.
        reason: String,
        /// The peer's Reason header on its BYE or CANCEL, as sent (on `disconnected`).
        reason_header: Option<String>,
    },
    /// A DTMF digit received (RFC 4733 in RTP, or SIP INFO).
    Dtmf {
        /// Our id of the call.
        call_id: String,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: String,
        /// `rfc4733` or `info`.
        method: String,
        /// How long the digit lasted, as far as known when reported.
        duration_ms: u32,
    },
    /// The hold state of a call changed: `by` is `local` when our re-INVITE was answered,
    /// `remote` when the peer's offer held (`sendonly`/`inactive`) or resumed us.
    Hold {
        /// Our id of the call.
        call_id: String,
        /// `local` (our hold/unhold) or `remote` (the peer's re-INVITE or UPDATE).
        by: String,
        /// Whether the call is on hold now.
        held: bool,
    },
    /// An outgoing call followed a 3xx to a new target (a new INVITE, same call).
    Redirect {
        /// Our id of the call.
        call_id: String,
        /// The 3xx status that redirected.
        code: u16,
        /// The Contact URI the new INVITE goes to.
        target: String,
        /// 1 for the first redirect of the call, up to `maxRedirects`.
        hop: u32,
    },
    /// A request inside a call got no answer or an error answer; the call goes on.
    RequestFailed {
        /// Our id of the call.
        call_id: String,
        /// The SIP method, e.g. `INVITE` for a re-INVITE.
        method: String,
        /// What the request was for, e.g. `hold` or `unhold`.
        purpose: String,
        /// The final status, 408 when the peer stayed silent for 64·T1.
        code: u16,
        /// The reason phrase, or what went wrong.
        reason: String,
    },
    /// A NOTIFY reported how the transfer we asked for (REFER) goes: the sipfrag's status.
    Transfer {
        /// Our id of the call we transferred.
        call_id: String,
        /// The status the transfer target answered the new call with (0: unreadable).
        code: u16,
        /// Its reason phrase.
        reason: String,
        /// The last report: the subscription ended or the status is final.
        #[serde(rename = "final")]
        last: bool,
    },
    /// The peer asks us to transfer the call (REFER): accept or refuse it (default: accept).
    Refer {
        /// Our id of the call the REFER came in.
        call_id: String,
        /// The Refer-To value as received.
        refer_to: String,
        /// The Referred-By value, if any.
        referred_by: Option<String>,
        /// The Replaces of an attended transfer (unescaped), if any.
        replaces: Option<String>,
        /// The REFER's headers, in order.
        headers: Vec<(String, String)>,
    },
    /// An INVITE with Replaces took one of our calls over; the old call ends ("replaced").
    CallReplaced {
        /// The call that was replaced.
        call_id: String,
        /// The call that replaced it.
        new_call_id: String,
    },
    /// Our public address (the NAT's mapping of the SIP socket) was learned or changed; Contact
    /// and Via carry it from now on.
    PublicAddress {
        /// The public IP address.
        address: String,
        /// The public port.
        port: u16,
        /// Who told us.
        source: AddressSource,
    },
    /// The connection to the PBX over a stream transport changed state.
    Transport {
        /// `tcp`, `tls`, `ws` or `wss`.
        transport: String,
        /// The server as configured, `host:port` (for WS/WSS the URL's host and port).
        remote: String,
        /// Where the connection is now.
        state: TransportState,
        /// Why it failed or closed (empty otherwise).
        reason: String,
    },
    /// A problem that did not fail an API call (a supervised task failing, a dropped message).
    Error {
        /// What went wrong.
        message: String,
    },
}
