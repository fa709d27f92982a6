//! The binding's JS-facing types, declared once so that `binding.d.ts` is generated with real
//! types: the start options (typed config or the service's settings rows), call snapshots,
//! counters, statistics and the event union. Each converts from or into the engine's types;
//! none decides anything.

use napi::bindgen_prelude::{Either, Either3};
use napi_derive::napi;
use serde::Serialize;
use serde_json::Value;

/// An account of the typed config.
#[napi(object)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInput {
    pub extension: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register: Option<bool>,
    /// Concurrent calls of this account at most (0 or none: no limit of its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls: Option<u32>,
}

/// The config's `tls` object (files are checked by the engine, which names the field).
#[napi(object)]
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TlsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
}

/// The typed camelCase config (ranges are checked by the engine, which names the field).
#[napi(object)]
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_port: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_port_min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_port_max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register_expires: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming_call_timeout_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_timeout_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_t1_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtp_timeout_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_websocket: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket_url: Option<String>,
    /// Outbound proxy SIP URI (`sip:host[:port][;transport=udp]`): every out-of-dialog request
    /// goes there with a preloaded `Route: <proxy;lr>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_proxy: Option<String>,
    /// DNS servers for SIP server location (`"ip"`, `"ip:port"`, `"[v6]:port"`); default the
    /// system's resolver configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_servers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stun_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_rewrite: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_interval_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[napi(ts_type = "'supported' | 'required' | 'off'")]
    pub prack: Option<String>,
    /// SRTP with SDES keys (RFC 4568): `off` (default), `optional` or `mandatory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[napi(ts_type = "'off' | 'optional' | 'mandatory'")]
    pub srtp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountInput>>,
    /// Session timers (RFC 4028): `off`, `optional` (default), `required` or `always`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_timers: Option<String>,
    /// The Session-Expires we ask for, in seconds (default 1800).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expires_sec: Option<u32>,
    /// Our Min-SE in seconds (default 90; lower values are for lab use and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_session_expires_sec: Option<u32>,
    /// `update` or `invite`; default UPDATE when the peer allows it, else re-INVITE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_refresh: Option<String>,
    /// Concurrent calls of the whole service at most (0: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls: Option<u32>,
    /// CIDRs whose dialog-creating requests are accepted (default with `server`: the PBX's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_from: Option<Vec<String>>,
    /// Per-source token bucket for requests from sources not accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitInput>,
    /// Largest SIP message in bytes (at least 1300), on every transport: UDP (default and at most 8192; larger
    /// datagrams dropped), TCP, TLS, WS, WSS (default 65535; larger ones answered 513 Message Too
    /// Large when routable, then the connection closes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<u32>,
}

/// The config's `rateLimit` object.
#[napi(object)]
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<f64>,
}

/// The service's PBX settings row (`pbx_*` names kept). Every value may come as a number or a
/// string, as databases hand them back; the engine reads and checks them.
#[napi(object)]
pub struct PbxRow {
    #[napi(js_name = "pbx_server")]
    pub pbx_server: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_port")]
    pub pbx_port: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_transport")]
    pub pbx_transport: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_rtp_port_min")]
    pub pbx_rtp_port_min: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_rtp_port_max")]
    pub pbx_rtp_port_max: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_use_websocket")]
    pub pbx_use_websocket: Option<Either3<bool, f64, String>>,
    #[napi(js_name = "pbx_websocket_url")]
    pub pbx_websocket_url: Option<Either<f64, String>>,
}

/// The service's per-operator settings row.
#[napi(object)]
pub struct OperatorRow {
    #[napi(js_name = "pbx_extension")]
    pub pbx_extension: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_username")]
    pub pbx_username: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_password")]
    pub pbx_password: Option<Either<f64, String>>,
    #[napi(js_name = "pbx_display_name")]
    pub pbx_display_name: Option<Either<f64, String>>,
}

/// How the endpoint is configured: the typed config, or the settings rows plus overrides.
#[napi(object)]
pub struct StartOptions {
    pub config: Option<ConfigInput>,
    pub pbx: Option<PbxRow>,
    pub operators: Option<Vec<OperatorRow>>,
    pub overrides: Option<ConfigInput>,
}

/// A number or a string, as databases hand settings back, as the engine reads it.
fn number_or_string(v: Either<f64, String>) -> Value {
    match v {
        // JS numbers are doubles: a whole one goes on as an integer (a port, an extension).
        Either::A(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(n as i64),
        Either::A(n) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
        Either::B(s) => Value::String(s),
    }
}

fn fields(pairs: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

impl PbxRow {
    fn into_value(self) -> Value {
        let flag = |v: Either3<bool, f64, String>| match v {
            Either3::A(b) => Value::Bool(b),
            Either3::B(n) => number_or_string(Either::A(n)),
            Either3::C(s) => Value::String(s),
        };
        fields(vec![
            ("pbx_server", self.pbx_server.map(number_or_string)),
            ("pbx_port", self.pbx_port.map(number_or_string)),
            ("pbx_transport", self.pbx_transport.map(number_or_string)),
            (
                "pbx_rtp_port_min",
                self.pbx_rtp_port_min.map(number_or_string),
            ),
            (
                "pbx_rtp_port_max",
                self.pbx_rtp_port_max.map(number_or_string),
            ),
            ("pbx_use_websocket", self.pbx_use_websocket.map(flag)),
            (
                "pbx_websocket_url",
                self.pbx_websocket_url.map(number_or_string),
            ),
        ])
    }
}

impl OperatorRow {
    pub fn into_value(self) -> Value {
        fields(vec![
            ("pbx_extension", self.pbx_extension.map(number_or_string)),
            ("pbx_username", self.pbx_username.map(number_or_string)),
            ("pbx_password", self.pbx_password.map(number_or_string)),
            (
                "pbx_display_name",
                self.pbx_display_name.map(number_or_string),
            ),
        ])
    }
}

impl StartOptions {
    /// The engine's options object (`EndpointConfig::from_options` reads and validates it).
    pub fn into_value(self) -> Value {
        let config = |c: Option<ConfigInput>| {
            serde_json::to_value(c.unwrap_or_default()).unwrap_or(Value::Null)
        };
        match self.pbx {
            Some(pbx) => serde_json::json!({
                "pbx": pbx.into_value(),
                "operators": self
                    .operators
                    .unwrap_or_default()
                    .into_iter()
                    .map(OperatorRow::into_value)
                    .collect::<Vec<_>>(),
                "overrides": config(self.overrides),
            }),
            None => serde_json::json!({ "config": config(self.config) }),
        }
    }
}

/// A call's state, as pjsua2 names them.
#[napi(string_enum = "snake_case")]
pub enum CallState {
    Calling,
    Incoming,
    Ringing,
    Early,
    Connecting,
    Confirmed,
    Disconnected,
}

impl From<sipua::event::CallState> for CallState {
    fn from(s: sipua::event::CallState) -> Self {
        use sipua::event::CallState as S;
        match s {
            S::Calling => Self::Calling,
            S::Incoming => Self::Incoming,
            S::Ringing => Self::Ringing,
            S::Early => Self::Early,
            S::Connecting => Self::Connecting,
            S::Confirmed => Self::Confirmed,
            S::Disconnected => Self::Disconnected,
        }
    }
}

/// Who placed a call.
#[napi(string_enum = "snake_case")]
pub enum CallDirection {
    Outgoing,
    Incoming,
}

impl From<sipua::event::Direction> for CallDirection {
    fn from(d: sipua::event::Direction) -> Self {
        match d {
            sipua::event::Direction::Outgoing => Self::Outgoing,
            sipua::event::Direction::Incoming => Self::Incoming,
        }
    }
}

/// An account's registration state.
#[napi(string_enum = "snake_case")]
pub enum RegistrationState {
    Registering,
    Registered,
    Unregistering,
    Unregistered,
    Failed,
}

impl From<sipua::event::RegistrationState> for RegistrationState {
    fn from(s: sipua::event::RegistrationState) -> Self {
        use sipua::event::RegistrationState as S;
        match s {
            S::Registering => Self::Registering,
            S::Registered => Self::Registered,
            S::Unregistering => Self::Unregistering,
            S::Unregistered => Self::Unregistered,
            S::Failed => Self::Failed,
        }
    }
}

/// The state of the stream connection to the PBX.
#[napi(string_enum = "snake_case")]
pub enum TransportState {
    Connecting,
    Connected,
    Disconnected,
    Reconnecting,
}

impl From<sipua::event::TransportState> for TransportState {
    fn from(s: sipua::event::TransportState) -> Self {
        use sipua::event::TransportState as S;
        match s {
            S::Connecting => Self::Connecting,
            S::Connected => Self::Connected,
            S::Disconnected => Self::Disconnected,
            S::Reconnecting => Self::Reconnecting,
        }
    }
}

/// A snapshot of one call (`callInfo()`); times are ms since the Unix epoch.
#[napi(object, use_nullable = true)]
pub struct CallSnapshot {
    pub id: String,
    pub sip_call_id: String,
    pub direction: CallDirection,
    pub from: String,
    pub to: String,
    pub state: CallState,
    /// The extension of the call's account.
    pub account: Option<String>,
    pub local_uri: String,
    pub remote_uri: String,
    /// The peer's Contact URI as sent, once known.
    pub remote_contact: Option<String>,
    /// 'PCMU' | 'PCMA' | 'G722', once the media runs.
    pub codec: Option<String>,
    #[napi(ts_type = "'none' | 'local' | 'remote' | 'both'")]
    pub hold: String,
    pub start_time: f64,
    pub answer_time: Option<f64>,
    pub end_time: Option<f64>,
    /// For a call placed on a REFER: our id of the transferred call.
    pub referred_from: Option<String>,
}

impl From<sipua::CallInfo> for CallSnapshot {
    fn from(c: sipua::CallInfo) -> Self {
        Self {
            id: c.id,
            sip_call_id: c.sip_call_id,
            direction: c.direction.into(),
            from: c.from,
            to: c.to,
            state: c.state.into(),
            account: c.account,
            local_uri: c.local_uri,
            remote_uri: c.remote_uri,
            remote_contact: c.remote_contact,
            codec: c.codec,
            hold: c.hold.to_string(),
            start_time: c.start_time as f64,
            answer_time: c.answer_time.map(|t| t as f64),
            end_time: c.end_time.map(|t| t as f64),
            referred_from: c.referred_from,
        }
    }
}

/// One account as `accounts()` lists it.
#[napi(object)]
pub struct AccountSummary {
    pub extension: String,
    pub username: String,
    #[napi(ts_type = "'registering' | 'registered' | 'unregistering' | 'unregistered' | 'failed'")]
    pub state: String,
}

impl From<sipua::AccountInfo> for AccountSummary {
    fn from(a: sipua::AccountInfo) -> Self {
        Self {
            extension: a.extension,
            username: a.username,
            state: a.state.to_string(),
        }
    }
}

/// Where the endpoint listens.
#[napi(object)]
pub struct LocalAddress {
    pub address: String,
    pub port: u32,
    #[napi(ts_type = "'udp' | 'tcp' | 'tls' | 'ws' | 'wss'")]
    pub transport: String,
}

impl From<sipua::LocalAddress> for LocalAddress {
    fn from(a: sipua::LocalAddress) -> Self {
        Self {
            address: a.address,
            port: u32::from(a.port),
            transport: a.transport.to_string(),
        }
    }
}

/// Live counts, for leak checks and monitoring.
#[napi(object)]
pub struct Counters {
    /// Calls not yet disconnected.
    pub live_calls: u32,
    /// SIP transactions still held by the stack.
    pub live_transactions: u32,
    /// Malformed messages dropped (or answered 400): UDP datagrams, stream messages, unframeable streams.
    pub malformed_messages: f64,
    /// Requests answered by the RFC 3261 §8.2 checks (505, 416, 420, 415, 406, 405, 501...).
    pub refused_requests: f64,
}

impl From<sipua::Counters> for Counters {
    fn from(c: sipua::Counters) -> Self {
        Self {
            live_calls: u32::try_from(c.live_calls).unwrap_or(u32::MAX),
            live_transactions: u32::try_from(c.live_transactions).unwrap_or(u32::MAX),
            malformed_messages: c.malformed_messages as f64,
            refused_requests: c.refused_requests as f64,
        }
    }
}

/// What a finished recording holds.
#[napi(object)]
pub struct RecordingInfo {
    pub path: String,
    pub duration_ms: f64,
    /// Frames lost because the disk did not keep up.
    pub dropped_frames: f64,
}

/// The answer to an OPTIONS request.
#[napi(object)]
pub struct OptionsResult {
    /// Status code of the final response (any: a 404 also proves the server is up).
    pub code: u32,
    pub reason: String,
    /// From the first send to the final response, ms (UDP retransmissions included).
    pub rtt_ms: f64,
}

impl From<sipua::OptionsReply> for OptionsResult {
    fn from(r: sipua::OptionsReply) -> Self {
        Self {
            code: u32::from(r.code),
            reason: r.reason,
            rtt_ms: r.rtt.as_secs_f64() * 1000.0,
        }
    }
}

/// Send-interval quantiles of the pacing clock, ms (20 = perfect pacing).
#[napi(object)]
pub struct MediaClock {
    pub p50: f64,
    pub p99: f64,
}

/// RTP statistics of a call (RFC 3550 figures; `null` until RTCP told us).
#[napi(object, use_nullable = true)]
pub struct CallStats {
    /// 'PCMU' | 'PCMA' | 'G722', or '' before media is negotiated.
    pub codec: String,
    pub payload_type: u32,
    /// Our media direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive'.
    pub direction: String,
    pub local_port: u32,
    /// Where we send RTP (learned from the peer's packets: symmetric RTP).
    pub remote_address: String,
    pub packets_sent: f64,
    pub bytes_sent: f64,
    pub packets_received: f64,
    pub bytes_received: f64,
    /// Packets lost as seen by us (expected - received).
    pub packets_lost: f64,
    /// Interarrival jitter of what we receive, ms.
    pub jitter_ms: f64,
    /// Round-trip time from RTCP SR/RR, ms; null until measured.
    pub rtt_ms: Option<f64>,
    /// Loss the peer reported about our stream (RTCP RR); null until received.
    pub remote_packets_lost: Option<f64>,
    /// Jitter the peer reported about our stream, ms; null until received.
    pub remote_jitter_ms: Option<f64>,
    /// Packets dropped: garbage, wrong SSRC or payload type, too late for playout.
    pub packets_dropped: f64,
    /// Frames dropped because a PCM stream consumer did not keep up.
    pub frames_dropped: f64,
    /// The SRTP suite in use (`AES_CM_128_HMAC_SHA1_80` or `_32`); null: plain RTP.
    pub srtp: Option<String>,
    /// SRTP/SRTCP packets dropped for a failed authentication tag or a replay.
    pub srtp_auth_failures: f64,
}

/// An engine event, `{ type, ... }` as the service's `handleEvent` expects.
#[napi(discriminant_case = "snake_case", object_to_js, use_nullable = true)]
pub enum EngineEvent {
    Registration {
        account: String,
        state: RegistrationState,
        code: u32,
        reason: String,
        expires: u32,
    },
    IncomingCall {
        call_id: String,
        sip_call_id: String,
        account: String,
        from: String,
        to: String,
        display_name: Option<String>,
        from_user: String,
        #[napi(ts_type = "Array<[string, string]>")]
        headers: Vec<Vec<String>>,
    },
    CallState {
        call_id: String,
        state: CallState,
        direction: CallDirection,
        code: u32,
        reason: String,
        /// The peer's RFC 3326 Reason header on its BYE or CANCEL, as sent.
        reason_header: Option<String>,
    },
    Dtmf {
        call_id: String,
        digit: String,
        #[napi(ts_type = "'rfc4733' | 'info'")]
        method: String,
        duration_ms: u32,
    },
    Hold {
        call_id: String,
        #[napi(ts_type = "'local' | 'remote'")]
        by: String,
        held: bool,
    },
    Redirect {
        call_id: String,
        code: u32,
        target: String,
        hop: u32,
    },
    RequestFailed {
        call_id: String,
        method: String,
        purpose: String,
        code: u32,
        reason: String,
    },
    Transfer {
        call_id: String,
        code: u32,
        reason: String,
        /// The last report of the transfer (`final` in the facade's event).
        last: bool,
    },
    Refer {
        call_id: String,
        refer_to: String,
        referred_by: Option<String>,
        replaces: Option<String>,
        #[napi(ts_type = "Array<[string, string]>")]
        headers: Vec<Vec<String>>,
    },
    CallReplaced {
        call_id: String,
        new_call_id: String,
    },
    PublicAddress {
        address: String,
        port: u32,
        #[napi(ts_type = "'rport' | 'stun'")]
        source: String,
    },
    Transport {
        #[napi(ts_type = "'tcp' | 'tls' | 'ws' | 'wss'")]
        transport: String,
        remote: String,
        state: TransportState,
        reason: String,
    },
    Error {
        message: String,
    },
}

impl From<sipua::Event> for EngineEvent {
    fn from(e: sipua::Event) -> Self {
        use sipua::Event as E;
        match e {
            E::Registration {
                account,
                state,
                code,
                reason,
                expires,
            } => Self::Registration {
                account,
                state: state.into(),
                code: u32::from(code),
                reason,
                expires,
            },
            E::IncomingCall {
                call_id,
                sip_call_id,
                account,
                from,
                to,
                display_name,
                from_user,
                headers,
            } => Self::IncomingCall {
                call_id,
                sip_call_id,
                account,
                from,
                to,
                display_name,
                from_user,
                headers: headers.into_iter().map(|(n, v)| vec![n, v]).collect(),
            },
            E::CallState {
                call_id,
                state,
                direction,
                code,
                reason,
                reason_header,
            } => Self::CallState {
                call_id,
                state: state.into(),
                direction: direction.into(),
                code: u32::from(code),
                reason,
                reason_header,
            },
            E::Dtmf {
                call_id,
                digit,
                method,
                duration_ms,
            } => Self::Dtmf {
                call_id,
                digit,
                method,
                duration_ms,
            },
            E::Hold { call_id, by, held } => Self::Hold { call_id, by, held },
            E::Redirect {
                call_id,
                code,
                target,
                hop,
            } => Self::Redirect {
                call_id,
                code: u32::from(code),
                target,
                hop,
            },
            E::RequestFailed {
                call_id,
                method,
                purpose,
                code,
                reason,
            } => Self::RequestFailed {
                call_id,
                method,
                purpose,
                code: u32::from(code),
                reason,
            },
            E::Transfer {
                call_id,
                code,
                reason,
                last,
            } => Self::Transfer {
                call_id,
                code: u32::from(code),
                reason,
                last,
            },
            E::Refer {
                call_id,
                refer_to,
                referred_by,
                replaces,
                headers,
            } => Self::Refer {
                call_id,
                refer_to,
                referred_by,
                replaces,
                headers: headers.into_iter().map(|(n, v)| vec![n, v]).collect(),
            },
            E::CallReplaced {
                call_id,
                new_call_id,
            } => Self::CallReplaced {
                call_id,
                new_call_id,
            },
            E::PublicAddress {
                address,
                port,
                source,
            } => Self::PublicAddress {
                address,
                port: u32::from(port),
                source: match source {
                    sipua::event::AddressSource::Rport => "rport",
                    sipua::event::AddressSource::Stun => "stun",
                }
                .into(),
            },
            E::Transport {
                transport,
                remote,
                state,
                reason,
            } => Self::Transport {
                transport,
                remote,
                state: state.into(),
                reason,
            },
            E::Error { message } => Self::Error { message },
        }
    }
}

impl From<sipua::media::recorder::RecordingInfo> for RecordingInfo {
    fn from(r: sipua::media::recorder::RecordingInfo) -> Self {
        Self {
            path: r.path,
            duration_ms: r.duration_ms as f64,
            dropped_frames: r.dropped_frames as f64,
        }
    }
}

impl From<sipua::media::session::SessionStats> for CallStats {
    fn from(s: sipua::media::session::SessionStats) -> Self {
        Self {
            codec: s.codec,
            payload_type: u32::from(s.payload_type),
            direction: s.direction,
            local_port: u32::from(s.local_port),
            remote_address: s.remote_address,
            packets_sent: s.packets_sent as f64,
            bytes_sent: s.bytes_sent as f64,
            packets_received: s.packets_received as f64,
            bytes_received: s.bytes_received as f64,
            packets_lost: s.packets_lost as f64,
            jitter_ms: s.jitter_ms,
            rtt_ms: s.rtt_ms,
            remote_packets_lost: s.remote_packets_lost.map(|n| n as f64),
            remote_jitter_ms: s.remote_jitter_ms,
            packets_dropped: s.packets_dropped as f64,
            frames_dropped: s.frames_dropped as f64,
            srtp: s.srtp,
            srtp_auth_failures: s.srtp_auth_failures as f64,
        }
    }
}
