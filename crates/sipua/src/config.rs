//! Endpoint and account configuration, in two shapes: the typed camelCase config and the
//! `pbx_*` settings rows the call-center service stores (one PBX row, one row per operator).
//!
//! Both end in [`EndpointConfig::validate`], so a wrong value is reported the same way whichever
//! shape it came in, with the field's name in the message.

mod session_timers;
mod settings_rows;
mod websocket_url;

pub use session_timers::{SessionRefresh, SessionTimerConfig, SessionTimerMode};
pub use websocket_url::WebSocketUrl;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// SIP transport of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// SIP over UDP (RFC 3261 §18).
    #[default]
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS.
    Tls,
    /// SIP over WebSocket (RFC 7118).
    Ws,
    /// SIP over secure WebSocket.
    Wss,
}

/// 100rel (RFC 3262) on our calls: `Supported: 100rel` (reliable 1xx when the caller
/// requires them), `Require: 100rel` (both ways), or never (a caller requiring it gets 420).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrackMode {
    /// `Supported: 100rel`; our 1xx are reliable when the caller requires it.
    #[default]
    Supported,
    /// `Require: 100rel` on our INVITEs, and reliable 1xx to callers that support it.
    Required,
    /// No 100rel: not offered, and an INVITE requiring it gets 420 Bad Extension.
    Off,
}

/// SRTP with SDES keys (RFC 4568) on our calls' audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    /// Plain RTP: offers carry no keys, and an `RTP/SAVP` offer gets 488.
    #[default]
    Off,
    /// Offers are `RTP/AVP` with `a=crypto` lines (best-effort SRTP): SRTP when the peer
    /// answers with a key, plain RTP otherwise; both kinds of offer are accepted.
    Optional,
    /// Offers are `RTP/SAVP`; an offer or answer without a usable key gets 488 (or ends the call).
    Mandatory,
}

impl TransportKind {
    /// Parses `UDP`/`udp`/`Tcp`/... as stored in the settings rows.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Some(Self::Udp),
            "tcp" => Some(Self::Tcp),
            "tls" => Some(Self::Tls),
            "ws" => Some(Self::Ws),
            "wss" => Some(Self::Wss),
            _ => None,
        }
    }

    /// The lowercase name, as in `;transport=` and the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Whether it runs over a connection (everything but UDP).
    pub fn is_stream(self) -> bool {
        self != Self::Udp
    }

    /// The transport token of Via and `;transport=`.
    pub(crate) fn sip_transport(self) -> rsipstack::sip::Transport {
        use rsipstack::sip::Transport;
        match self {
            Self::Udp => Transport::Udp,
            Self::Tcp => Transport::Tcp,
            Self::Tls => Transport::Tls,
            Self::Ws => Transport::Ws,
            Self::Wss => Transport::Wss,
        }
    }
}

/// One SIP account (an operator's extension on the PBX).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AccountConfig {
    /// The extension: the user part of the address of record (`sip:7779@pbx`).
    pub extension: String,
    /// Digest user name; defaults to the extension.
    pub username: Option<String>,
    /// Digest password. Never logged.
    #[serde(skip_serializing)]
    pub password: String,
    /// Display name for From (UTF-8, e.g. Cyrillic).
    pub display_name: Option<String>,
    /// SIP domain of the address of record; defaults to the endpoint's `server`.
    pub domain: Option<String>,
    /// Whether to REGISTER this account at start (default true when a server is set).
    pub register: Option<bool>,
    /// Concurrent calls of this account at most (incoming get 486 Busy Here beyond, and
    /// `makeCall` fails); `None` or 0: no limit of its own.
    pub max_calls: Option<u32>,
}

impl AccountConfig {
    /// The typed camelCase account (a JSON object), `field` naming it in errors.
    pub fn from_json(value: Value, field: &str) -> Result<Self> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            Error::Config(if path == "." {
                format!("{field}: {inner}")
            } else {
                format!("{field}.{path}: {inner}")
            })
        })
    }

    /// Checks the extension; `field` names the account (`accounts[0]`).
    pub fn validate(&self, field: &str) -> Result<()> {
        if self.extension.trim().is_empty() {
            return Err(Error::Config(format!("{field}.extension: empty")));
        }
        if self
            .extension
            .contains(|c: char| c.is_whitespace() || c == '@' || c == ':')
        {
            return Err(Error::Config(format!(
                "{field}.extension: not a SIP user part: {:?}",
                self.extension
            )));
        }
        Ok(())
    }

    /// The digest user name: `username`, or the extension when none is set.
    pub fn auth_username(&self) -> &str {
        match self.username.as_deref() {
            Some(u) if !u.is_empty() => u,
            _ => &self.extension,
        }
    }
}

/// TLS settings (`tls: { caFile, certFile, keyFile, serverName, verify }`), used by the TLS and
/// WSS transports. Every field is optional: by default the server certificate is checked against
/// the system's CA bundle for the host name we dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of extra CA certificates trusted besides the system's (a private PBX CA).
    pub ca_file: Option<String>,
    /// PEM file of our client certificate chain, for PBXs that ask for one; needs `keyFile`.
    pub cert_file: Option<String>,
    /// PEM file of the private key of `certFile` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<String>,
    /// Name sent in SNI and checked against the certificate, when it differs from the host we
    /// dial (a PBX reached by IP whose certificate names its DNS name).
    pub server_name: Option<String>,
    /// Whether the server certificate is verified (default true). `false` accepts any
    /// certificate, which lets anyone on the path impersonate the PBX: logged as a warning.
    pub verify: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            verify: true,
        }
    }
}

impl TlsConfig {
    /// The files must be readable at start, so a wrong path fails `start()` naming the field
    /// rather than the first registration; their PEM contents are checked by the transport.
    fn validate(&self) -> Result<()> {
        for (name, path) in [
            ("tls.caFile", &self.ca_file),
            ("tls.certFile", &self.cert_file),
            ("tls.keyFile", &self.key_file),
        ] {
            if let Some(path) = path {
                std::fs::File::open(path)
                    .map_err(|e| Error::Config(format!("{name}: cannot read {path:?}: {e}")))?;
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err(Error::Config(
                "tls.keyFile: needed with tls.certFile (the client certificate's key)".into(),
            )),
            (None, Some(_)) => Err(Error::Config(
                "tls.certFile: needed with tls.keyFile (the client certificate)".into(),
            )),
            _ => Ok(()),
        }?;
        if let Some(name) = &self.server_name {
            if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
                return Err(Error::Config(format!(
                    "tls.serverName: not a DNS name or IP address: {name:?}"
                )));
            }
        }
        Ok(())
    }
}

/// Configuration of one user agent endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// The PBX / registrar / outbound proxy host. `None`: peer-to-peer only (no registration).
    pub server: Option<String>,
    /// The PBX's SIP port. `None`: located by DNS (RFC 3263: NAPTR, SRV), else the
    /// transport's default port; a port given here means A/AAAA lookups only (§4.2).
    pub server_port: Option<u16>,
    /// SIP transport towards the PBX and for the local listener.
    pub transport: TransportKind,
    /// Local address to bind; `0.0.0.0` for all interfaces.
    pub bind_address: String,
    /// Local SIP port; 0 picks any free port.
    pub local_port: u16,
    /// Address written into Contact/Via/SDP when it differs from the bound one (NAT, 0.0.0.0).
    pub public_address: Option<String>,
    /// Lowest port of the RTP range (inclusive); RTP takes even ports, RTCP the next odd one.
    pub rtp_port_min: u16,
    /// Highest port of the RTP range (inclusive).
    pub rtp_port_max: u16,
    /// Registration lifetime asked of the registrar, in seconds.
    pub register_expires: u32,
    /// How long an incoming call may ring unanswered before it is rejected with 480, in ms.
    pub incoming_call_timeout_ms: u64,
    /// How long an outgoing INVITE may wait for a final answer before it is cancelled, in ms.
    pub invite_timeout_ms: u64,
    /// SIP timer T1 (RFC 3261 §17: the round-trip estimate), in ms. Every transaction timer
    /// scales with it: retransmissions start at T1 and a silent peer is given up after 64·T1.
    pub timer_t1_ms: u64,
    /// Ends a confirmed call (BYE, reason "RTP timeout") when no RTP or RTCP has arrived for
    /// this long while the media flows both ways, in ms; 0 turns the check off.
    pub rtp_timeout_ms: u64,
    /// How long `stop()` waits for the answers to its CANCELs, BYEs and un-REGISTERs before
    /// it tears everything down, in ms.
    pub stop_grace_ms: u64,
    /// Value of the User-Agent header.
    pub user_agent: String,
    /// The service's `pbx_use_websocket`: `true` selects the `ws` or `wss` transport by the
    /// scheme of `websocket_url`.
    pub use_websocket: bool,
    /// `ws://host[:port][/path]` or `wss://...` (the service's `pbx_websocket_url`): where the
    /// WebSocket transport dials; default `ws(s)://server:serverPort/`.
    pub websocket_url: Option<String>,
    /// Outbound proxy (RFC 3261 §8.1.2), a SIP URI such as `sip:proxy.example:5070;transport=udp`:
    /// every out-of-dialog request is sent there with a preloaded `Route: <proxy;lr>`, the
    /// Request-URI staying the registrar or the callee.
    pub outbound_proxy: Option<String>,
    /// DNS servers for SIP server location: `"ip"`, `"ip:port"`, `"[v6]:port"` (port 53 when
    /// none). Empty: the system's resolver configuration.
    pub dns_servers: Vec<String>,
    /// STUN server (`host[:port]`, port 3478 by default) asked for our public address: of the
    /// SIP socket at start, of each call's RTP port at call setup (RFC 5389 binding request).
    pub stun_server: Option<String>,
    /// Re-REGISTER with the address the registrar saw (Via `received`/`rport`, RFC 3581) when
    /// it differs from our Contact, removing the old binding; as PJSIP's `contactRewriteUse`.
    pub contact_rewrite: bool,
    /// Seconds between keep-alives: on UDP a CRLF datagram to the registrar while registered,
    /// so the NAT binding stays open; on TCP/TLS/WS a CRLF ping on the PBX connection whose
    /// pong must come back (RFC 5626 §4.4.1). `None`: the transport's default (UDP 15 s,
    /// streams 90 s); 0: off.
    pub keep_alive_interval_s: Option<u32>,
    /// TLS settings for the TLS and WSS transports.
    pub tls: TlsConfig,
    /// Session timers (RFC 4028): off, optional (default), required or always.
    pub session_timers: SessionTimerMode,
    /// The Session-Expires we ask for, in seconds (default 1800).
    pub session_expires_sec: u32,
    /// Our Min-SE in seconds (default 90, RFC 4028's floor; lower values are for tests).
    pub min_session_expires_sec: u32,
    /// How we refresh; `None`: UPDATE when the peer allows it, else re-INVITE.
    pub session_refresh: Option<SessionRefresh>,
    /// Follow a 3xx to our INVITE to its Contacts (RFC 3261 §8.1.3.4); `false` ends the call
    /// with the 3xx. `makeCall`'s `followRedirects` overrides it per call.
    pub follow_redirects: bool,
    /// At most this many redirected INVITEs per call.
    pub max_redirects: u32,
    /// Reliable provisional responses (RFC 3262) both ways.
    pub prack: PrackMode,
    /// SRTP on the audio (SDES keys, RFC 4568): off, optional or mandatory.
    pub srtp: SrtpMode,
    /// The accounts (operators) of this user agent.
    pub accounts: Vec<AccountConfig>,
    /// Concurrent calls of the whole endpoint at most (incoming get 486 Busy Here beyond,
    /// and `makeCall` fails); 0: no limit.
    pub max_calls: u32,
    /// The sources (CIDRs) whose dialog-creating requests are accepted; `None`: with `server`
    /// set, the PBX's and outbound proxy's resolved addresses; without, everyone.
    pub accept_from: Option<Vec<String>>,
    /// Requests per source outside `acceptFrom`: beyond the bucket, dropped.
    pub rate_limit: RateLimitConfig,
    /// Largest SIP message in bytes, every transport: UDP at most 8192 (the default), streams
    /// (TCP, TLS, WS, WSS) any size, 65535 by default; over it, 513 and the connection closes.
    pub max_message_size: Option<u32>,
}

/// `rateLimit`: a token bucket per source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second refilled.
    pub per_second: f64,
    /// Requests at once.
    pub burst: f64,
}

impl Default for RateLimitConfig {
    /// A phone that retransmits or redials stays far below; a scanner does not.
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 20.0,
        }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            server: None,
            server_port: None,
            transport: TransportKind::Udp,
            bind_address: "0.0.0.0".into(),
            local_port: 5060,
            public_address: None,
            rtp_port_min: 10000,
            rtp_port_max: 20000,
            register_expires: 300,
            incoming_call_timeout_ms: 60_000,
            invite_timeout_ms: 60_000,
            timer_t1_ms: 500,
            rtp_timeout_ms: 0,
            stop_grace_ms: 3_000,
            user_agent: concat!("sip-native/", env!("CARGO_PKG_VERSION")).into(),
            use_websocket: false,
            websocket_url: None,
            outbound_proxy: None,
            dns_servers: Vec::new(),
            stun_server: None,
            contact_rewrite: true,
            keep_alive_interval_s: None,
            tls: TlsConfig::default(),
            session_timers: SessionTimerMode::Optional,
            session_expires_sec: 1800,
            min_session_expires_sec: 90,
            session_refresh: None,
            follow_redirects: true,
            max_redirects: 5,
            prack: PrackMode::Supported,
            srtp: SrtpMode::Off,
            accounts: Vec::new(),
            max_calls: 0,
            accept_from: None,
            rate_limit: RateLimitConfig::default(),
            max_message_size: None,
        }
    }
}

impl EndpointConfig {
    /// The binding's options object: `{ config }` (typed camelCase) or
    /// `{ pbx, operators, overrides }` (the service's settings rows).
    pub fn from_options(options: &Value) -> Result<Self> {
        match options.get("pbx") {
            Some(pbx) => {
                let operators = match options.get("operators") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(rows)) => rows.clone(),
                    Some(_) => {
                        return Err(Error::Config(
                            "operators: expected an array of settings rows".into(),
                        ))
                    }
                };
                Self::from_settings(pbx, &operators, options.get("overrides"))
            }
            None => Self::from_json(
                options
                    .get("config")
                    .cloned()
                    .unwrap_or(Value::Object(Default::default())),
            ),
        }
    }

    /// Parses the typed camelCase config (a JSON object) and validates it.
    pub fn from_json(value: Value) -> Result<Self> {
        // The path names the field ("transport: unknown variant `x`, ..."), which serde alone
        // leaves out.
        let mut config: EndpointConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            Error::Config(if field == "." {
                inner.to_string()
            } else {
                format!("{field}: {inner}")
            })
        })?;
        config.resolve_websocket("websocketUrl")?;
        config.validate()?;
        Ok(config)
    }

    /// An IP-literal server our socket cannot reach: an IPv4 socket sends no IPv6 and an
    /// IPv6 one no IPv4, except `::`, which is dual stack. (Names resolve later.)
    fn check_server_family(&self, bind: std::net::IpAddr) -> Result<()> {
        let Some(server) = self.server.as_deref() else {
            return Ok(());
        };
        let Ok(ip) = server.trim_matches(['[', ']']).parse::<std::net::IpAddr>() else {
            return Ok(());
        };
        let reachable = match bind.is_unspecified() {
            true => bind.is_ipv6() || ip.is_ipv4(),
            false => bind.is_ipv6() == ip.is_ipv6(),
        };
        if reachable {
            return Ok(());
        }
        let family = |ip: std::net::IpAddr| if ip.is_ipv6() { "IPv6" } else { "IPv4" };
        Err(Error::Config(format!(
            "server: {server} is an {} address but bindAddress {bind} is {}; bind {} (or '::' for both)",
            family(ip),
            family(bind),
            if ip.is_ipv6() { "'::' or '::1'" } else { "'0.0.0.0'" },
        )))
    }

    /// Checks ranges and required fields; the error names the field.
    pub fn validate(&self) -> Result<()> {
        const MIN_MESSAGE_SIZE: u32 = 1300;
        if let Some(s) = &self.server {
            if s.trim().is_empty() || s.contains(char::is_whitespace) {
                return Err(Error::Config(format!("server: not a host name: {s:?}")));
            }
        }
        if self.server_port == Some(0) {
            return Err(Error::Config("serverPort: must be 1-65535".into()));
        }
        // below RFC 3261 §18.1.1's 1300 bytes, ordinary INVITEs with SDP would be refused
        if let Some(m) = self.max_message_size.filter(|m| *m < MIN_MESSAGE_SIZE) {
            return Err(Error::Config(format!(
                "maxMessageSize: must be at least {MIN_MESSAGE_SIZE} bytes, got {m}"
            )));
        }
        if let Some(proxy) = &self.outbound_proxy {
            check_proxy_uri(proxy)?;
        }
        for (i, server) in self.dns_servers.iter().enumerate() {
            if parse_dns_server(server).is_none() {
                return Err(Error::Config(format!(
                    "dnsServers[{i}]: expected \"ip\", \"ip:port\" or \"[v6]:port\", got {server:?}"
                )));
            }
        }
        let Ok(bind) = self.bind_address.parse::<std::net::IpAddr>() else {
            return Err(Error::Config(format!(
                "bindAddress: not an IP address: {:?}",
                self.bind_address
            )));
        };
        self.check_server_family(bind)?;
        if let Some(p) = &self.public_address {
            if p.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_err()
            {
                return Err(Error::Config(format!(
                    "publicAddress: not an IP address: {p:?}"
                )));
            }
        }
        if self.rtp_port_min == 0 || self.rtp_port_min >= self.rtp_port_max {
            return Err(Error::Config(format!(
                "rtpPortMin/rtpPortMax: need 0 < min < max, got {}-{}",
                self.rtp_port_min, self.rtp_port_max
            )));
        }
        if self.rtp_port_max - self.rtp_port_min < 2 {
            return Err(Error::Config(
                "rtpPortMax: the range needs at least one even/odd pair".into(),
            ));
        }
        if !(10..=10_000).contains(&self.timer_t1_ms) {
            return Err(Error::Config(format!(
                "timerT1Ms: must be 10-10000 ms, got {}",
                self.timer_t1_ms
            )));
        }
        if self.stop_grace_ms > 60_000 {
            return Err(Error::Config(format!(
                "stopGraceMs: must be at most 60000 ms, got {}",
                self.stop_grace_ms
            )));
        }
        self.tls.validate()?;
        session_timers::validate(self.session_expires_sec, self.min_session_expires_sec)?;
        self.check_websocket("websocketUrl")?;
        if let Some(stun) = &self.stun_server {
            stun_host_port(stun)?;
        }
        if let Some(s) = self.keep_alive_interval_s {
            if s > 86_400 {
                return Err(Error::Config(format!(
                    "keepAliveIntervalS: must be at most 86400 s (0 = off), got {s}"
                )));
            }
        }
        for (i, a) in self.accounts.iter().enumerate() {
            a.validate(&format!("accounts[{i}]"))?;
            if self.accounts[..i]
                .iter()
                .any(|b| b.extension == a.extension)
            {
                return Err(Error::Config(format!(
                    "accounts[{i}].extension: {} is the extension of another account",
                    a.extension
                )));
            }
        }
        Ok(())
    }

    /// The session timer settings, together.
    pub fn session_timer(&self) -> SessionTimerConfig {
        SessionTimerConfig {
            mode: self.session_timers,
            expires_sec: self.session_expires_sec,
            min_expires_sec: self.min_session_expires_sec,
            refresh: self.session_refresh,
        }
    }

    /// The `dnsServers` as socket addresses (validated entries; port 53 when none is given).
    pub(crate) fn dns_server_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.dns_servers
            .iter()
            .filter_map(|s| parse_dns_server(s))
            .collect()
    }

    /// The UDP keep-alive period: `keepAliveIntervalS`, 15 s when unset (PJSIP's
    /// `udpKaIntervalSec`), `None` when 0 (off) or the transport is not UDP (streams have
    /// their own pings).
    pub fn udp_keep_alive(&self) -> Option<std::time::Duration> {
        if self.transport != TransportKind::Udp {
            return None;
        }
        match self.keep_alive_interval_s.unwrap_or(15) {
            0 => None,
            s => Some(std::time::Duration::from_secs(u64::from(s))),
        }
    }

    /// The STUN server as host and port, when one is configured (checked by `validate`).
    pub fn stun_host_port(&self) -> Option<(String, u16)> {
        stun_host_port(self.stun_server.as_deref()?).ok()
    }

    /// `useWebsocket`: takes the transport, `ws` or `wss`, from the URL's scheme. `field` is
    /// the name the user wrote the URL under, for the error.
    pub fn resolve_websocket(&mut self, field: &str) -> Result<()> {
        if self.use_websocket {
            let url = self.websocket_url.as_deref().ok_or_else(|| {
                Error::Config(format!(
                    "{field}: needed when the WebSocket transport is on"
                ))
            })?;
            let parsed =
                WebSocketUrl::parse(url).map_err(|e| Error::Config(format!("{field}: {e}")))?;
            self.transport = if parsed.secure {
                TransportKind::Wss
            } else {
                TransportKind::Ws
            };
        }
        self.check_websocket(field)
    }

    fn check_websocket(&self, field: &str) -> Result<()> {
        if !matches!(self.transport, TransportKind::Ws | TransportKind::Wss) {
            return Ok(());
        }
        if let Some(url) = self.websocket_target() {
            let url = url.map_err(|e| Error::Config(format!("{field}: {e}")))?;
            if url.secure != (self.transport == TransportKind::Wss) {
                return Err(Error::Config(format!(
                    "{field}: a {} URL does not go with transport {}",
                    if url.secure { "wss://" } else { "ws://" },
                    self.transport.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Where the WebSocket transport dials: `websocket_url`, else `ws(s)://server:serverPort/`;
    /// `None` without a URL or a server.
    pub fn websocket_target(&self) -> Option<std::result::Result<WebSocketUrl, String>> {
        match (&self.websocket_url, &self.server) {
            (Some(url), _) => Some(WebSocketUrl::parse(url)),
            (None, Some(server)) => Some(Ok(WebSocketUrl {
                secure: self.transport == TransportKind::Wss,
                host: server
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: self.server_port.unwrap_or(5060),
                path: "/".into(),
            })),
            (None, None) => None,
        }
    }

    /// The CRLF ping interval of stream flows; `None` when off.
    pub(crate) fn stream_keepalive(&self) -> Option<std::time::Duration> {
        match self.keep_alive_interval_s {
            None => Some(std::time::Duration::from_secs(90)),
            Some(0) => None,
            Some(s) => Some(std::time::Duration::from_secs(u64::from(s))),
        }
    }

    /// 64·T1: how long a transaction waits for a silent peer (Timers B, F, H; RFC 3261 §9.1
    /// for an unanswered CANCEL).
    pub fn t1x64(&self) -> std::time::Duration {
        std::time::Duration::from_millis(64 * self.timer_t1_ms)
    }
}

/// A `dnsServers` entry as a socket address: `ip`, `ip:port`, `[v6]` or `[v6]:port` (port 53
/// by default).
pub(crate) fn parse_dns_server(s: &str) -> Option<std::net::SocketAddr> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        return (addr.port() != 0).then_some(addr);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    ip.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
}

/// `outboundProxy` must be a `sip:`/`sips:` URI with a host, a valid port and a transport we
/// know, so a typo fails `start()` rather than every request.
fn check_proxy_uri(proxy: &str) -> Result<()> {
    let bad = |why: String| Error::Config(format!("outboundProxy: {why}: {proxy:?}"));
    let trimmed = proxy.trim();
    if !(trimmed.starts_with("sip:") || trimmed.starts_with("sips:")) {
        return Err(bad("expected a sip: or sips: URI".into()));
    }
    let uri =
        rsipstack::sip::Uri::try_from(trimmed).map_err(|e| bad(format!("not a SIP URI ({e})")))?;
    if uri.host_with_port.host.to_string().is_empty() {
        return Err(bad("no host".into()));
    }
    if uri.host_with_port.port.is_some_and(|p| u16::from(p) == 0) {
        return Err(bad("port must be 1-65535".into()));
    }
    for p in &uri.params {
        if let rsipstack::sip::Param::Transport(t) = p {
            if TransportKind::parse(&t.to_string()).is_none() {
                return Err(bad(format!("transport {t} is not one of udp, tcp, tls")));
            }
        }
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 3478 (RFC 5389).
fn stun_host_port(value: &str) -> Result<(String, u16)> {
    let bad = |why: &str| Error::Config(format!("stunServer: {why}: {value:?}"));
    let v = value.trim();
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        (h, after.strip_prefix(':'))
    } else if v.matches(':').count() > 1 {
        (v, None) // a bare IPv6 address
    } else {
        match v.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (v, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return Err(bad("not a host[:port]"));
    }
    let port = match port {
        None => 3478,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("not a port 1-65535"))?,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pbx_row() -> Value {
        json!({
            "pbx_server": "it005.ru", "pbx_port": "5060", "pbx_transport": "UDP",
            "pbx_rtp_port_min": 10000, "pbx_rtp_port_max": "12000",
            "pbx_use_websocket": 0, "pbx_websocket_url": null
        })
    }

    #[test]
    fn settings_rows_map_to_config() {
        let op = json!({"pbx_extension": "7779", "pbx_username": "7779", "pbx_password": "s3cret",
                        "pbx_display_name": "Оператор call-центра"});
        let c = EndpointConfig::from_settings(&pbx_row(), &[op], None).unwrap();
        assert_eq!(c.server.as_deref(), Some("it005.ru"));
        assert_eq!(c.server_port, Some(5060));
        assert_eq!(c.transport, TransportKind::Udp);
        assert_eq!((c.rtp_port_min, c.rtp_port_max), (10000, 12000));
        assert_eq!(c.accounts.len(), 1);
        assert_eq!(c.accounts[0].password, "s3cret");
        assert_eq!(
            c.accounts[0].display_name.as_deref(),
            Some("Оператор call-центра")
        );
    }

    #[test]
    fn an_ipv6_pbx_row_and_the_bind_family() {
        let op = json!({"pbx_extension": "7779"});
        for server in ["::1", "[::1]", "2001:db8::1"] {
            let row = json!({"pbx_server": server, "pbx_port": "5070"});
            let over = json!({"bindAddress": "::"});
            let c = EndpointConfig::from_settings(&row, std::slice::from_ref(&op), Some(&over))
                .unwrap();
            assert_eq!(c.server.as_deref(), Some(server));
            // the default IPv4 wildcard cannot reach it: the error says what to bind
            let e = EndpointConfig::from_settings(&row, std::slice::from_ref(&op), None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("server:") && e.contains("IPv6") && e.contains("'::'"),
                "{e}"
            );
        }
        let v4 = |bind: &str| EndpointConfig {
            server: Some("192.0.2.1".into()),
            bind_address: bind.into(),
            ..EndpointConfig::default()
        };
        assert!(v4("::").validate().is_ok(), "'::' is dual stack");
        assert!(v4("0.0.0.0").validate().is_ok());
        let e = v4("::1").validate().unwrap_err().to_string();
        assert!(e.contains("IPv4") && e.contains("'0.0.0.0'"), "{e}");
        let named = EndpointConfig {
            server: Some("pbx.example".into()),
            bind_address: "::1".into(),
            ..EndpointConfig::default()
        };
        assert!(named.validate().is_ok(), "names resolve later");
        for (public, ok) in [
            ("[2001:db8::7]", true),
            ("2001:db8::7", true),
            ("pbx.example", false),
        ] {
            let c = EndpointConfig {
                public_address: Some(public.into()),
                ..EndpointConfig::default()
            };
            assert_eq!(c.validate().is_ok(), ok, "{public}");
        }
    }

    #[test]
    fn timers_are_checked_and_scale_with_t1() {
        let c = EndpointConfig::default();
        assert_eq!(c.t1x64(), std::time::Duration::from_secs(32));
        assert_eq!((c.rtp_timeout_ms, c.stop_grace_ms), (0, 3000));
        for (field, value) in [
            ("timerT1Ms", 5),
            ("timerT1Ms", 20_000),
            ("stopGraceMs", 120_000),
        ] {
            let err = EndpointConfig::from_json(json!({ field: value })).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
        let fast = EndpointConfig::from_json(json!({"timerT1Ms": 100})).unwrap();
        assert_eq!(fast.t1x64(), std::time::Duration::from_millis(6400));
    }

    #[test]
    fn session_timer_fields_default_and_are_checked() {
        let c = EndpointConfig::default().session_timer();
        assert_eq!(
            (c.mode, c.expires_sec, c.min_expires_sec, c.refresh),
            (SessionTimerMode::Optional, 1800, 90, None)
        );
        let lab = EndpointConfig::from_json(json!({
            "sessionTimers": "always", "sessionExpiresSec": 4, "minSessionExpiresSec": 2,
            "sessionRefresh": "invite"
        }))
        .unwrap()
        .session_timer();
        assert_eq!(lab.mode, SessionTimerMode::Always);
        assert_eq!(lab.refresh, Some(SessionRefresh::Invite));
        for (bad, field) in [
            (json!({"sessionTimers": "sometimes"}), "sessionTimers"),
            (json!({"sessionRefresh": "bye"}), "sessionRefresh"),
            (json!({"minSessionExpiresSec": 1}), "minSessionExpiresSec"),
            (json!({"sessionExpiresSec": 60}), "sessionExpiresSec"),
        ] {
            let err = EndpointConfig::from_json(bad).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn overrides_apply_and_keep_passwords() {
        let op = json!({"pbx_extension": "7779", "pbx_password": "pw"});
        let c = EndpointConfig::from_settings(&pbx_row(), &[op], Some(&json!({"localPort": 0})))
            .unwrap();
        assert_eq!(c.local_port, 0);
        assert_eq!(c.accounts[0].password, "pw");
        assert_eq!(c.accounts[0].auth_username(), "7779");
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut row = pbx_row();
        row["pbx_port"] = json!("abc");
        let e = EndpointConfig::from_settings(&row, &[], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pbx_port"), "{e}");
        let mut row = pbx_row();
        row["pbx_transport"] = json!("SCTP");
        let e = EndpointConfig::from_settings(&row, &[], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pbx_transport"), "{e}");
        let mut row = pbx_row();
        row["pbx_rtp_port_min"] = json!(13000);
        let e = EndpointConfig::from_settings(&row, &[], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rtpPortMin"), "{e}");
        let e = EndpointConfig::from_settings(&pbx_row(), &[json!({"pbx_password": "x"})], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("operators[0].pbx_extension"), "{e}");
        let e = EndpointConfig::from_json(json!({"localPort": "x"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("localPort") || e.contains("u16"), "{e}");
        let e = EndpointConfig::from_json(json!({"bogus": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn options_pick_the_shape() {
        let typed = EndpointConfig::from_options(&json!({"config": {"localPort": 0}})).unwrap();
        assert_eq!(typed.local_port, 0);
        let rows = EndpointConfig::from_options(&json!({
            "pbx": pbx_row(), "operators": [{"pbx_extension": "7779"}], "overrides": {"localPort": 0}
        }))
        .unwrap();
        assert_eq!(
            (rows.server.as_deref(), rows.local_port),
            (Some("it005.ru"), 0)
        );
        assert_eq!(
            EndpointConfig::from_options(&json!({})).unwrap(),
            EndpointConfig::default()
        );
        let e = EndpointConfig::from_options(&json!({"pbx": pbx_row(), "operators": 5}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("operators"), "{e}");
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = EndpointConfig::from_json(json!({"transport": "x"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid config: transport: unknown variant `x`"),
            "{e}"
        );
        let e = EndpointConfig::from_json(json!({"accounts": [{"extension": 7}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("accounts[0].extension: invalid type"), "{e}");
    }

    #[test]
    fn dns_servers_and_outbound_proxy_are_checked() {
        let ok = EndpointConfig::from_json(json!({
            "dnsServers": ["192.0.2.53", "127.0.0.1:5353", "[2001:db8::53]:5300", "::1"],
            "outboundProxy": "sip:proxy.example.com:5070;transport=udp"
        }))
        .unwrap();
        let addrs: Vec<String> = ok
            .dns_server_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            addrs,
            [
                "192.0.2.53:53",
                "127.0.0.1:5353",
                "[2001:db8::53]:5300",
                "[::1]:53"
            ]
        );
        for bad in ["dns.example", "127.0.0.1:0", "[::1", "1.2.3.4:99999"] {
            let e = EndpointConfig::from_json(json!({ "dnsServers": ["127.0.0.1", bad] }))
                .unwrap_err()
                .to_string();
            assert!(e.contains("dnsServers[1]"), "{bad}: {e}");
        }
        for bad in [
            "proxy.example.com",
            "http://proxy",
            "sip:proxy:0",
            "sip:p;transport=sctp",
        ] {
            let e = EndpointConfig::from_json(json!({ "outboundProxy": bad }))
                .unwrap_err()
                .to_string();
            assert!(e.contains("outboundProxy"), "{bad}: {e}");
        }
        // No port in the settings row: DNS locates the PBX.
        let mut row = pbx_row();
        row["pbx_port"] = json!("");
        let c = EndpointConfig::from_settings(&row, &[], None).unwrap();
        assert_eq!(c.server_port, None);
    }

    #[test]
    fn tls_fields_parse_and_files_are_checked() {
        let c = EndpointConfig::from_json(json!({})).unwrap();
        assert!(c.tls.verify, "verify defaults to true");
        let c = EndpointConfig::from_json(
            json!({"tls": {"verify": false, "serverName": "pbx.example.com"}}),
        )
        .unwrap();
        assert_eq!(
            (c.tls.verify, c.tls.server_name.as_deref()),
            (false, Some("pbx.example.com"))
        );
        let this_file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs");
        let c = EndpointConfig::from_json(json!({"tls": {"caFile": this_file}})).unwrap();
        assert_eq!(c.tls.ca_file.as_deref(), Some(this_file));
        for (tls, field) in [
            (json!({"caFile": "/nonexistent/ca.pem"}), "tls.caFile"),
            (
                json!({"certFile": "/nonexistent/c.pem", "keyFile": this_file}),
                "tls.certFile",
            ),
            (
                json!({"certFile": this_file, "keyFile": "/nonexistent/k.pem"}),
                "tls.keyFile",
            ),
            (json!({"certFile": this_file}), "tls.keyFile"),
            (json!({"keyFile": this_file}), "tls.certFile"),
            (json!({"serverName": "bad name"}), "tls.serverName"),
            (json!({"verify": "yes"}), "expected a boolean"),
            (json!({"cafile": this_file}), "cafile"),
        ] {
            let e = EndpointConfig::from_json(json!({ "tls": tls }))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn websocket_rows_pick_ws_or_wss_and_bad_urls_name_the_field() {
        let mut row = pbx_row();
        row["pbx_use_websocket"] = json!("true");
        let e = EndpointConfig::from_settings(&row, &[], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pbx_websocket_url: needed"), "{e}");
        row["pbx_websocket_url"] = json!("wss://pbx.example.com:8089/ws");
        let c = EndpointConfig::from_settings(&row, &[], None).unwrap();
        assert_eq!(c.transport, TransportKind::Wss);
        row["pbx_websocket_url"] = json!("ws://pbx.example.com");
        let c = EndpointConfig::from_settings(&row, &[], None).unwrap();
        assert_eq!(c.transport, TransportKind::Ws);
        row["pbx_websocket_url"] = json!("http://pbx.example.com/ws");
        let e = EndpointConfig::from_settings(&row, &[], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pbx_websocket_url: not a WebSocket URL"), "{e}");
        // Off: the URL is not looked at, as before.
        row["pbx_use_websocket"] = json!(0);
        assert_eq!(
            EndpointConfig::from_settings(&row, &[], None)
                .unwrap()
                .transport,
            TransportKind::Udp
        );
        let e = EndpointConfig::from_json(json!({"transport": "ws", "websocketUrl": "ws://h:0/"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("websocketUrl: bad port"), "{e}");
        let e = EndpointConfig::from_json(json!({"transport": "ws", "websocketUrl": "wss://h/"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not go with transport ws"), "{e}");
        let c = EndpointConfig::from_json(
            json!({"transport": "wss", "server": "pbx", "serverPort": 8089}),
        )
        .unwrap();
        assert_eq!(
            c.websocket_target().unwrap().unwrap().as_url(),
            "wss://pbx:8089/"
        );
    }

    #[test]
    fn nat_fields_default_and_are_checked() {
        let c = EndpointConfig::default();
        assert!(c.contact_rewrite);
        assert_eq!(c.udp_keep_alive(), Some(std::time::Duration::from_secs(15)));
        let off = EndpointConfig::from_json(json!({"keepAliveIntervalS": 0})).unwrap();
        assert_eq!(off.udp_keep_alive(), None);
        for (stun, want) in [
            ("stun.example.org", ("stun.example.org", 3478)),
            ("10.0.0.1:3479", ("10.0.0.1", 3479)),
            ("[2001:db8::1]:5000", ("2001:db8::1", 5000)),
            ("2001:db8::1", ("2001:db8::1", 3478)),
        ] {
            let c = EndpointConfig::from_json(json!({ "stunServer": stun })).unwrap();
            assert_eq!(
                c.stun_host_port(),
                Some((want.0.to_string(), want.1)),
                "{stun}"
            );
        }
        for bad in [
            "",
            "stun.example.org:0",
            "stun.example.org:x",
            "[::1",
            "a b",
        ] {
            let e = EndpointConfig::from_json(json!({ "stunServer": bad }))
                .unwrap_err()
                .to_string();
            assert!(e.contains("stunServer"), "{bad}: {e}");
        }
        let e = EndpointConfig::from_json(json!({"keepAliveIntervalS": 100_000}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("keepAliveIntervalS"), "{e}");
    }
}
