//! The `message/sipfrag` bodies of REFER's implicit subscription (RFC 3515 §2.4.5): the status
//! line a transferee reports, and the Subscription-State (RFC 6665 §8.2.3) that says whether
//! more NOTIFYs follow. Pure text in and out.

/// What a NOTIFY of the `refer` event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferProgress {
    /// The status code of the sipfrag's status line.
    pub code: u16,
    /// Its reason phrase (may be empty).
    pub reason: String,
    /// The last NOTIFY: the subscription is terminated, or the status is final.
    pub last: bool,
}

/// The status line of a sipfrag body: `SIP/2.0 486 Busy Here` gives `(486, "Busy Here")`.
/// `None` when the body does not start with a SIP status line of a 1xx-6xx code.
pub(crate) fn parse_status_line(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim_end_matches('\r');
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    (100..700)
        .contains(&code)
        .then(|| (code, reason.trim().to_string()))
}

/// A sipfrag body of one status line, CRLF-terminated as RFC 3420 wants a message fragment.
pub(crate) fn format_status_line(code: u16, reason: &str) -> String {
    format!("SIP/2.0 {code} {reason}\r\n")
}

/// Whether a Subscription-State value (`active;expires=60`, `terminated;reason=noresource`)
/// ends the subscription.
pub(crate) fn is_terminated(subscription_state: &str) -> bool {
    subscription_state
        .split(';')
        .next()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"))
}

/// The progress a NOTIFY reports: its sipfrag status, last when the subscription ends or the
/// status is final. `None` when the body is no sipfrag status line.
pub(crate) fn progress(body: &[u8], subscription_state: Option<&str>) -> Option<ReferProgress> {
    let (code, reason) = parse_status_line(body)?;
    let terminated = subscription_state.is_some_and(is_terminated);
    Some(ReferProgress {
        code,
        reason,
        last: terminated || code >= 200,
    })
}

/// The Subscription-State of a NOTIFY we send: `active;expires=…` while the new call is being
/// set up, `terminated;reason=noresource` with the final status (RFC 3515 §2.4.7).
pub(crate) fn subscription_state(final_status: bool, expires_s: u32) -> String {
    if final_status {
        "terminated;reason=noresource".to_string()
    } else {
        format!("active;expires={expires_s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(
            parse_status_line(b"SIP/2.0 100 Trying\r\n"),
            Some((100, "Trying".into()))
        );
        assert_eq!(
            parse_status_line(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"),
            Some((486, "Busy Here".into()))
        );
        assert_eq!(
            parse_status_line(b"SIP/2.0 200"),
            Some((200, String::new()))
        );
        assert_eq!(
            parse_status_line(b"SIP/2.0 200 OK"),
            Some((200, "OK".into()))
        );
    }

    #[test]
    fn malformed_sipfrags_are_refused() {
        for body in [
            &b""[..],
            b"hello",
            b"SIP/2.0 ServiceUnavailable",
            b"SIP/2.0 99 Low",
            b"SIP/2.0 700 High",
            b"SIP/2.0 2000 OK",
            b"INVITE sip:a@b SIP/2.0\r\n",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_status_line(body), None, "{body:?}");
        }
    }

    #[test]
    fn formatted_lines_read_back() {
        let line = format_status_line(503, "Service Unavailable");
        assert_eq!(line, "SIP/2.0 503 Service Unavailable\r\n");
        assert_eq!(
            parse_status_line(line.as_bytes()),
            Some((503, "Service Unavailable".into()))
        );
    }

    #[test]
    fn the_last_notify_is_terminated_or_final() {
        let p = progress(b"SIP/2.0 100 Trying\r\n", Some("active;expires=60")).unwrap();
        assert!(!p.last);
        let p = progress(
            b"SIP/2.0 180 Ringing\r\n",
            Some("Terminated;reason=timeout"),
        )
        .unwrap();
        assert!(p.last);
        let p = progress(b"SIP/2.0 200 OK\r\n", Some("active")).unwrap();
        assert!(p.last);
        let p = progress(b"SIP/2.0 200 OK\r\n", None).unwrap();
        assert_eq!((p.code, p.reason.as_str(), p.last), (200, "OK", true));
        assert_eq!(progress(b"garbage", Some("terminated")), None);
    }

    #[test]
    fn our_subscription_states() {
        assert_eq!(subscription_state(false, 60), "active;expires=60");
        assert_eq!(subscription_state(true, 60), "terminated;reason=noresource");
        assert!(is_terminated(&subscription_state(true, 0)));
        assert!(!is_terminated(&subscription_state(false, 0)));
    }
}
