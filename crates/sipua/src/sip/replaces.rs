//! RFC 3891 Replaces: the header value (`call-id;to-tag=…;from-tag=…[;early-only]`), its
//! escaped form inside a Refer-To URI (`<sip:c@h?Replaces=…%3Bto-tag%3D…>`), and the rule
//! that decides what an INVITE with Replaces does to the dialog it names. Pure text in and out;
//! the endpoint looks the dialog up in its call table.

/// The dialog a Replaces header names, from the point of view of the UA that receives it: the
/// `to-tag` is that UA's local tag, the `from-tag` its peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// Only an early dialog may be replaced (RFC 3891 §6.1).
    pub early_only: bool,
}

/// Where the dialog a Replaces names is, as far as the matching cares (RFC 3891 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialogPhase {
    /// An early dialog of a call we placed.
    EarlyOutgoing,
    /// An early dialog of a call that rings here (not initiated by us).
    EarlyIncoming,
    Confirmed,
    Terminated,
}

/// What to do with an INVITE carrying Replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Take the named call over: answer the new INVITE, end the old call.
    Replace,
    /// Refuse the INVITE with this status.
    Refuse(u16),
}

impl Replaces {
    /// Parses a header value; `None` without a Call-ID or one of the two tags.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let call_id = parts.next()?.trim();
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            let (name, v) = p.split_once('=').unwrap_or((p, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "to-tag" => to_tag = Some(v.trim().to_string()),
                "from-tag" => from_tag = Some(v.trim().to_string()),
                "early-only" => early_only = true,
                _ => {}
            }
        }
        if call_id.is_empty() {
            return None;
        }
        Some(Self {
            call_id: call_id.to_string(),
            to_tag: to_tag.filter(|t| !t.is_empty())?,
            from_tag: from_tag.filter(|t| !t.is_empty())?,
            early_only,
        })
    }

    /// The header value.
    pub(crate) fn header_value(&self) -> String {
        let early = if self.early_only { ";early-only" } else { "" };
        format!(
            "{};to-tag={};from-tag={}{early}",
            self.call_id, self.to_tag, self.from_tag
        )
    }

    /// Whether this names the dialog `call_id` whose local tag is `local_tag` and whose peer's
    /// tag is `remote_tag` (all compared exactly: tags and Call-IDs are case-sensitive).
    pub(crate) fn names(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> bool {
        self.call_id == call_id && self.to_tag == local_tag && self.from_tag == remote_tag
    }

    /// RFC 3891 §3: no such dialog, or an early one we did not initiate: 481; a confirmed
    /// dialog when only an early one may go: 486; a dialog already over: 603.
    pub(crate) fn verdict(&self, phase: Option<DialogPhase>) -> Verdict {
        match phase {
            None | Some(DialogPhase::EarlyIncoming) => Verdict::Refuse(481),
            Some(DialogPhase::Terminated) => Verdict::Refuse(603),
            Some(DialogPhase::Confirmed) if self.early_only => Verdict::Refuse(486),
            Some(DialogPhase::Confirmed | DialogPhase::EarlyOutgoing) => Verdict::Replace,
        }
    }
}

/// `<uri?Replaces=…>`: the Refer-To of an attended transfer, the Replaces value escaped as a
/// URI header (RFC 3261 §25.1 `hvalue`: `;`, `=`, `@`… percent-encoded).
pub(crate) fn refer_to_with_replaces(target_uri: &str, replaces: &Replaces) -> String {
    format!(
        "<{target_uri}?Replaces={}>",
        escape_uri_header(&replaces.header_value())
    )
}

/// Percent-encodes everything but RFC 3261's unreserved characters and `[ ] / ? : + $`.
fn escape_uri_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes percent-encoding; `None` on a broken escape or bytes that are not UTF-8.
pub(crate) fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A Refer-To value split into the URI to call and its (unescaped) URI headers:
/// `"Bob" <sip:b@h?Replaces=x%3Bto-tag%3D1>;p=1` gives `sip:b@h` and `[("Replaces", "x;to-tag=1")]`.
/// `None` when there is no SIP URI or an escape is broken.
pub(crate) fn split_refer_to(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let value = value.trim();
    let inner = match (value.find('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        (None, None) => value.split(';').next().unwrap_or(""),
        _ => return None,
    };
    let (uri, query) = inner.split_once('?').unwrap_or((inner, ""));
    let uri = uri.trim();
    if !(uri.starts_with("sip:") || uri.starts_with("sips:")) || uri.len() < 5 {
        return None;
    }
    let mut headers = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, v) = pair.split_once('=').unwrap_or((pair, ""));
        headers.push((unescape(name)?, unescape(v)?));
    }
    Some((uri.to_string(), headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Replaces {
        Replaces {
            call_id: "a84b4c76e66710@pc33.example.com".into(),
            to_tag: "8321234356".into(),
            from_tag: "1931121".into(),
            early_only: false,
        }
    }

    #[test]
    fn header_values_parse_and_format() {
        let r =
            Replaces::parse("a84b4c76e66710@pc33.example.com;to-tag=8321234356;from-tag=1931121")
                .unwrap();
        assert_eq!(r, sample());
        let e = Replaces::parse("x@y ; from-tag=2 ; TO-TAG=1 ; early-only").unwrap();
        assert_eq!(
            (e.to_tag.as_str(), e.from_tag.as_str(), e.early_only),
            ("1", "2", true)
        );
        assert_eq!(Replaces::parse(&e.header_value()), Some(e));
        for bad in [
            "",
            ";to-tag=1;from-tag=2",
            "x;to-tag=1",
            "x;from-tag=2",
            "x;to-tag=;from-tag=2",
        ] {
            assert_eq!(Replaces::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn refer_to_escapes_the_replaces_value() {
        let refer_to = refer_to_with_replaces("sip:carol@10.0.0.3:5062", &sample());
        assert_eq!(
            refer_to,
            "<sip:carol@10.0.0.3:5062?Replaces=a84b4c76e66710%40pc33.example.com%3Bto-tag%3D8321234356%3Bfrom-tag%3D1931121>"
        );
        let (uri, headers) = split_refer_to(&refer_to).unwrap();
        assert_eq!(uri, "sip:carol@10.0.0.3:5062");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0, "Replaces");
        assert_eq!(Replaces::parse(&headers[0].1), Some(sample()));
    }

    #[test]
    fn refer_to_values_split() {
        assert_eq!(
            split_refer_to("sip:b@h;transport=udp"),
            Some(("sip:b@h".into(), vec![]))
        );
        assert_eq!(
            split_refer_to("\"Bob\" <sip:b@h:5070>;x=1"),
            Some(("sip:b@h:5070".into(), vec![]))
        );
        for bad in [
            "",
            "<>",
            "bob",
            "<mailto:b@h>",
            "<sip:b@h",
            "<sip:b@h?Replaces=%zz>",
            "sip:",
        ] {
            assert_eq!(split_refer_to(bad), None, "{bad}");
        }
    }

    #[test]
    fn matching_compares_our_tag_with_to_tag() {
        let r = sample();
        assert!(r.names("a84b4c76e66710@pc33.example.com", "8321234356", "1931121"));
        assert!(!r.names("a84b4c76e66710@pc33.example.com", "1931121", "8321234356"));
        assert!(!r.names("other@pc33.example.com", "8321234356", "1931121"));
        assert!(!r.names("A84B4C76E66710@pc33.example.com", "8321234356", "1931121"));
    }

    #[test]
    fn verdicts_follow_rfc_3891() {
        let r = sample();
        assert_eq!(r.verdict(None), Verdict::Refuse(481));
        assert_eq!(
            r.verdict(Some(DialogPhase::EarlyIncoming)),
            Verdict::Refuse(481)
        );
        assert_eq!(
            r.verdict(Some(DialogPhase::Terminated)),
            Verdict::Refuse(603)
        );
        assert_eq!(r.verdict(Some(DialogPhase::Confirmed)), Verdict::Replace);
        assert_eq!(
            r.verdict(Some(DialogPhase::EarlyOutgoing)),
            Verdict::Replace
        );
        let early = Replaces {
            early_only: true,
            ..sample()
        };
        assert_eq!(
            early.verdict(Some(DialogPhase::Confirmed)),
            Verdict::Refuse(486)
        );
        assert_eq!(
            early.verdict(Some(DialogPhase::EarlyOutgoing)),
            Verdict::Replace
        );
    }
}
