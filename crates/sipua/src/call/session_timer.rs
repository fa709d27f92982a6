//! Session timers (RFC 4028), pure: reading Session-Expires and Min-SE, the headers we send,
//! what we answer as the UAS of an INVITE or refresh (§9), what a 2xx to ours settles (§7.2),
//! and the running timer: when the next refresh or the expiry is due, from a `now` passed in.
//! [`super::session_refresh`] drives it on the call.
//!
//! `uac` and `uas` in a `refresher=` parameter name the roles of the transaction that carried
//! it, not of the call: in a refresh the peer sent, `uac` is the peer.

use crate::config::{SessionRefresh, SessionTimerConfig, SessionTimerMode};
use crate::sip::message::header_values;
use rsipstack::sip::{Header, Headers, StatusCode};
use std::time::Duration;
use tokio::time::Instant;

/// Who refreshes, as a role in the transaction that negotiated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    fn as_str(self) -> &'static str {
        match self {
            Self::Uac => "uac",
            Self::Uas => "uas",
        }
    }
}

/// A Session-Expires value: `1800;refresher=uac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionExpires {
    pub secs: u32,
    pub refresher: Option<Refresher>,
}

/// Parses a Session-Expires value (`delta-seconds *(;param)`); `None` when it is malformed.
pub(crate) fn parse_session_expires(value: &str) -> Option<SessionExpires> {
    let mut parts = value.split(';');
    let secs = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (name, v) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some(SessionExpires { secs, refresher })
}

/// The message's Session-Expires (`x` in compact form is read as the same header).
pub(crate) fn session_expires_of(headers: &Headers) -> Option<SessionExpires> {
    header_values(headers, "Session-Expires")
        .first()
        .and_then(|v| parse_session_expires(v))
}

/// The message's Min-SE in seconds (its parameters ignored).
pub(crate) fn min_se_of(headers: &Headers) -> Option<u32> {
    header_values(headers, "Min-SE")
        .first()?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Whether a comma-separated header (Supported, Require, Allow) lists `token`.
fn lists(headers: &Headers, name: &str, token: &str) -> bool {
    header_values(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the sender of the message supports session timers.
pub(crate) fn supports_timer(headers: &Headers) -> bool {
    lists(headers, "Supported", "timer") || lists(headers, "Require", "timer")
}

/// Whether the message's Allow lists UPDATE (RFC 3311).
pub(crate) fn allows_update(headers: &Headers) -> bool {
    lists(headers, "Allow", "UPDATE")
}

/// What a negotiation settled: the interval, and whether we are the refresher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub interval: u32,
    pub we_refresh: bool,
}

/// The timer headers of a request we send: our INVITE (`refresher` `None`, the UAS chooses)
/// or a refresh (`refresher=uac`: we go on refreshing). Nothing when the timer is off.
pub(crate) fn request_headers(
    cfg: &SessionTimerConfig,
    interval: u32,
    refresher: Option<Refresher>,
) -> Vec<Header> {
    if cfg.mode == SessionTimerMode::Off {
        return Vec::new();
    }
    let se = match refresher {
        Some(r) => format!("{interval};refresher={}", r.as_str()),
        None => interval.to_string(),
    };
    let mut headers = vec![
        Header::Supported("timer".into()),
        Header::SessionExpires(se.into()),
        Header::MinSE(cfg.min_expires_sec.to_string().into()),
    ];
    if cfg.mode == SessionTimerMode::Required {
        headers.push(Header::Require("timer".into()));
    }
    headers
}

/// `headers` with Session-Expires and Min-SE raised to `secs`: the new INVITE after a 422
/// (RFC 4028 §7.4). Other headers (credentials included) are kept as they are.
pub(crate) fn raised(headers: &[Header], secs: u32) -> Vec<Header> {
    headers
        .iter()
        .map(|h| match h {
            Header::SessionExpires(_) => Header::SessionExpires(secs.to_string().into()),
            Header::MinSE(_) => Header::MinSE(secs.to_string().into()),
            other => other.clone(),
        })
        .collect()
}

/// What a 2xx to our INVITE or refresh settles (§7.2). `requested` is the Session-Expires we
/// sent. A 2xx without Session-Expires means no timer, unless we insist on one ('always',
/// 'required'): then we refresh at the interval we asked for.
pub(crate) fn negotiate_as_uac(
    cfg: &SessionTimerConfig,
    requested: u32,
    response: &Headers,
) -> Option<Negotiated> {
    match (cfg.mode, session_expires_of(response)) {
        (SessionTimerMode::Off, _) => None,
        (_, Some(se)) => Some(Negotiated {
            interval: se.secs,
            // The UAS must name the refresher; a 2xx that does not leaves it to us.
            we_refresh: se.refresher != Some(Refresher::Uas),
        }),
        (SessionTimerMode::Always | SessionTimerMode::Required, None) => Some(Negotiated {
            interval: requested,
            we_refresh: true,
        }),
        (SessionTimerMode::Optional, None) => None,
    }
}

/// What we answer, as the UAS, to an INVITE or a refresh (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UasDecision {
    /// No timer: nothing about it in our 2xx.
    NoTimer,
    /// Its Session-Expires is below our Min-SE: 422 with our Min-SE.
    TooBrief { min_se: u32 },
    /// We require the timer and the caller does not support it: 421 with `Require: timer`.
    ExtensionRequired,
    /// The timer runs: our 2xx carries Session-Expires with the refresher, and
    /// `Require: timer` when the caller supports it.
    Timer {
        interval: u32,
        refresher: Refresher,
        require: bool,
    },
}

/// Decides our answer to a request with these headers (an INVITE, re-INVITE or UPDATE).
pub(crate) fn decide_as_uas(cfg: &SessionTimerConfig, request: &Headers) -> UasDecision {
    if cfg.mode == SessionTimerMode::Off {
        // We do not support the extension: the peer's Session-Expires means nothing to us.
        return UasDecision::NoTimer;
    }
    let supported = supports_timer(request);
    if cfg.mode == SessionTimerMode::Required && !supported {
        return UasDecision::ExtensionRequired;
    }
    let their_min = min_se_of(request).unwrap_or(0);
    let (interval, asked) = match session_expires_of(request) {
        // Only a caller that supports the timer understands a 422; for one that does not
        // (a proxy added Session-Expires) the interval is raised instead.
        Some(se) if se.secs < cfg.min_expires_sec && supported => {
            return UasDecision::TooBrief {
                min_se: cfg.min_expires_sec,
            }
        }
        // We may shorten the interval, not below either side's Min-SE.
        Some(se) => (
            se.secs
                .min(cfg.expires_sec)
                .max(their_min)
                .max(cfg.min_expires_sec),
            se.refresher,
        ),
        None if supported || cfg.mode == SessionTimerMode::Always => {
            (cfg.expires_sec.max(their_min), None)
        }
        None => return UasDecision::NoTimer,
    };
    // A caller that does not support the timer cannot refresh: we do. Else its choice, or
    // (none made) the caller, as pjsua does.
    let refresher = match (supported, asked) {
        (false, _) => Refresher::Uas,
        (true, Some(r)) => r,
        (true, None) => Refresher::Uac,
    };
    UasDecision::Timer {
        interval,
        refresher,
        require: supported,
    }
}

impl UasDecision {
    /// The headers of our final response: 2xx, 422 or 421.
    pub(crate) fn response_headers(&self) -> Vec<Header> {
        match *self {
            Self::NoTimer => Vec::new(),
            Self::TooBrief { min_se } => vec![Header::MinSE(min_se.to_string().into())],
            Self::ExtensionRequired => vec![Header::Require("timer".into())],
            Self::Timer {
                interval,
                refresher,
                require,
            } => {
                let mut headers = vec![
                    Header::Supported("timer".into()),
                    Header::SessionExpires(
                        format!("{interval};refresher={}", refresher.as_str()).into(),
                    ),
                ];
                if require {
                    headers.push(Header::Require("timer".into()));
                }
                headers
            }
        }
    }

    /// The final response to send instead of a 2xx (422 or 421), with its headers.
    pub(crate) fn rejection(&self) -> Option<(StatusCode, Vec<Header>)> {
        match self {
            Self::TooBrief { .. } | Self::ExtensionRequired => {
                let code = if matches!(self, Self::TooBrief { .. }) {
                    422
                } else {
                    421
                };
                Some((StatusCode::from(code), self.response_headers()))
            }
            _ => None,
        }
    }

    /// The timer our 2xx starts (we are the transaction's UAS), if any.
    pub(crate) fn negotiated(&self) -> Option<Negotiated> {
        match *self {
            Self::Timer {
                interval,
                refresher,
                ..
            } => Some(Negotiated {
                interval,
                we_refresh: refresher == Refresher::Uas,
            }),
            _ => None,
        }
    }
}

/// The refresh request: the configured one, else UPDATE when the peer allows it (it carries
/// no SDP), else re-INVITE.
pub(crate) fn refresh_method(cfg: &SessionTimerConfig, peer_allows_update: bool) -> SessionRefresh {
    match cfg.refresh {
        Some(r) => r,
        None if peer_allows_update => SessionRefresh::Update,
        None => SessionRefresh::Invite,
    }
}

/// What is due at the timer's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// We are the refresher: send the refresh (half the interval has passed, §10).
    Refresh,
    /// No refresh came in time: BYE (§10: before the interval ends, by min(32 s, interval/3)).
    Expire,
}

/// A running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timer {
    interval: Duration,
    we_refresh: bool,
    /// The last refresh (or the 2xx that started the session).
    since: Instant,
    /// Our refresh failed without ending the dialog: we only wait for the expiry now.
    refresh_failed: bool,
}

impl Timer {
    pub(crate) fn new(negotiated: Negotiated, now: Instant) -> Self {
        Self {
            interval: Duration::from_secs(negotiated.interval.into()),
            we_refresh: negotiated.we_refresh,
            since: now,
            refresh_failed: false,
        }
    }

    pub(crate) fn interval_secs(&self) -> u32 {
        self.interval.as_secs() as u32
    }

    /// The next deadline and what is due then.
    pub(crate) fn deadline(&self) -> (Instant, Due) {
        if self.we_refresh && !self.refresh_failed {
            return (self.since + self.interval / 2, Due::Refresh);
        }
        let margin = Duration::from_secs(32).min(self.interval / 3);
        (self.since + self.interval - margin, Due::Expire)
    }

    /// A refresh of ours failed with a code that keeps the dialog (500, 491...): the session
    /// still ends at its expiry unless the peer refreshes.
    pub(crate) fn refresh_failed(&mut self) {
        self.refresh_failed = true;
    }
}

/// Whether a failed refresh ends the call: the dialog or the peer is gone (RFC 4028 §10,
/// RFC 3261 §14.1).
pub(crate) fn refresh_failure_ends_call(code: u16) -> bool {
    matches!(code, 408 | 481)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::Headers;

    fn cfg(mode: SessionTimerMode) -> SessionTimerConfig {
        SessionTimerConfig {
            mode,
            expires_sec: 1800,
            min_expires_sec: 90,
            refresh: None,
        }
    }

    fn headers(list: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in list {
            h.push(Header::Other(n.to_string(), v.to_string()));
        }
        h
    }

    #[test]
    fn session_expires_parses_with_and_without_refresher() {
        let se = parse_session_expires("1800 ; Refresher = UAS").unwrap();
        assert_eq!((se.secs, se.refresher), (1800, Some(Refresher::Uas)));
        assert_eq!(parse_session_expires("90").unwrap().refresher, None);
        assert_eq!(parse_session_expires("soon;refresher=uac"), None);
        let h = headers(&[
            ("Min-SE", "120;x=1"),
            ("Session-Expires", "300;refresher=uac"),
        ]);
        assert_eq!(min_se_of(&h), Some(120));
        assert_eq!(session_expires_of(&h).unwrap().secs, 300);
    }

    #[test]
    fn our_invite_carries_what_the_mode_says() {
        let names = |m| {
            request_headers(&cfg(m), 1800, None)
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
        };
        assert!(names(SessionTimerMode::Off).is_empty());
        assert_eq!(
            names(SessionTimerMode::Optional),
            ["Supported: timer", "Session-Expires: 1800", "Min-SE: 90"]
        );
        assert!(names(SessionTimerMode::Required).contains(&"Require: timer".to_string()));
        let refresh = request_headers(&cfg(SessionTimerMode::Optional), 600, Some(Refresher::Uac));
        assert_eq!(refresh[1].to_string(), "Session-Expires: 600;refresher=uac");
        let again = raised(&refresh, 900);
        assert_eq!(again[1].to_string(), "Session-Expires: 900");
        assert_eq!(again[2].to_string(), "Min-SE: 900");
    }

    #[test]
    fn the_2xx_decides_who_refreshes() {
        let c = cfg(SessionTimerMode::Optional);
        let uas = headers(&[("Session-Expires", "600;refresher=uas")]);
        assert_eq!(
            negotiate_as_uac(&c, 1800, &uas),
            Some(Negotiated {
                interval: 600,
                we_refresh: false
            })
        );
        let uac = headers(&[("Session-Expires", "600;refresher=uac")]);
        assert!(negotiate_as_uac(&c, 1800, &uac).unwrap().we_refresh);
        let none = headers(&[]);
        assert_eq!(negotiate_as_uac(&c, 1800, &none), None);
        let always = negotiate_as_uac(&cfg(SessionTimerMode::Always), 1800, &none);
        assert_eq!(
            always,
            Some(Negotiated {
                interval: 1800,
                we_refresh: true
            })
        );
        assert_eq!(
            negotiate_as_uac(&cfg(SessionTimerMode::Off), 1800, &uas),
            None
        );
    }

    #[test]
    fn as_uas_a_brief_session_gets_422_and_others_a_refresher() {
        let c = cfg(SessionTimerMode::Optional);
        let brief = headers(&[("Supported", "timer"), ("Session-Expires", "30")]);
        assert_eq!(
            decide_as_uas(&c, &brief),
            UasDecision::TooBrief { min_se: 90 }
        );
        let (code, _) = decide_as_uas(&c, &brief).rejection().unwrap();
        assert_eq!(code.code(), 422);
        assert_eq!(
            decide_as_uas(&c, &brief).response_headers()[0].to_string(),
            "Min-SE: 90"
        );
        // Without Supported: timer the caller would not understand a 422: raised, we refresh.
        let proxy_added = headers(&[("Session-Expires", "30")]);
        let d = decide_as_uas(&c, &proxy_added);
        assert_eq!(
            d,
            UasDecision::Timer {
                interval: 90,
                refresher: Refresher::Uas,
                require: false
            }
        );
        assert!(d.negotiated().unwrap().we_refresh);
        let asks = headers(&[("Supported", "timer, 100rel"), ("Session-Expires", "3600")]);
        let d = decide_as_uas(&c, &asks);
        assert_eq!(
            d,
            UasDecision::Timer {
                interval: 1800,
                refresher: Refresher::Uac,
                require: true
            }
        );
        let shown: Vec<_> = d.response_headers().iter().map(|h| h.to_string()).collect();
        assert_eq!(
            shown,
            [
                "Supported: timer",
                "Session-Expires: 1800;refresher=uac",
                "Require: timer"
            ]
        );
        let we = headers(&[
            ("Supported", "timer"),
            ("Session-Expires", "120;refresher=uas"),
        ]);
        assert!(decide_as_uas(&c, &we).negotiated().unwrap().we_refresh);
    }

    #[test]
    fn as_uas_the_mode_decides_without_session_expires() {
        let plain = headers(&[]);
        let timer = headers(&[("Supported", "timer")]);
        assert_eq!(
            decide_as_uas(&cfg(SessionTimerMode::Optional), &plain),
            UasDecision::NoTimer
        );
        assert!(matches!(
            decide_as_uas(&cfg(SessionTimerMode::Optional), &timer),
            UasDecision::Timer {
                interval: 1800,
                refresher: Refresher::Uac,
                ..
            }
        ));
        assert!(matches!(
            decide_as_uas(&cfg(SessionTimerMode::Always), &plain),
            UasDecision::Timer {
                refresher: Refresher::Uas,
                require: false,
                ..
            }
        ));
        let required = decide_as_uas(&cfg(SessionTimerMode::Required), &plain);
        assert_eq!(required, UasDecision::ExtensionRequired);
        assert_eq!(required.rejection().unwrap().0.code(), 421);
        let brief = headers(&[("Supported", "timer"), ("Session-Expires", "5")]);
        assert_eq!(
            decide_as_uas(&cfg(SessionTimerMode::Off), &brief),
            UasDecision::NoTimer
        );
    }

    #[test]
    fn refresh_goes_by_update_when_allowed() {
        let mut c = cfg(SessionTimerMode::Optional);
        assert!(allows_update(&headers(&[("Allow", "INVITE, ACK, update")])));
        assert_eq!(refresh_method(&c, true), SessionRefresh::Update);
        assert_eq!(refresh_method(&c, false), SessionRefresh::Invite);
        c.refresh = Some(SessionRefresh::Invite);
        assert_eq!(refresh_method(&c, true), SessionRefresh::Invite);
    }

    #[test]
    fn deadlines_refresh_at_half_and_expire_before_the_end() {
        let now = Instant::now();
        let mut ours = Timer::new(
            Negotiated {
                interval: 90,
                we_refresh: true,
            },
            now,
        );
        assert_eq!(
            ours.deadline(),
            (now + Duration::from_secs(45), Due::Refresh)
        );
        ours.refresh_failed();
        assert_eq!(
            ours.deadline(),
            (now + Duration::from_secs(60), Due::Expire)
        );
        let theirs = Timer::new(
            Negotiated {
                interval: 1800,
                we_refresh: false,
            },
            now,
        );
        assert_eq!(
            theirs.deadline(),
            (now + Duration::from_secs(1768), Due::Expire)
        );
        let short = Timer::new(
            Negotiated {
                interval: 3,
                we_refresh: false,
            },
            now,
        );
        assert_eq!(
            short.deadline(),
            (now + Duration::from_secs(2), Due::Expire)
        );
        assert!(refresh_failure_ends_call(481) && !refresh_failure_ends_call(500));
    }
}
