//! Following 3xx redirects (RFC 3261 §8.1.3.4), pure: the Contacts of a 3xx in q order, and
//! which target to try next within the hop limit and without loops. The INVITE task
//! (outgoing.rs) sends the INVITEs; this only decides where.

use crate::sip::uri::strip_uri;

/// One Contact of a 3xx: its URI (with its URI parameters, as the new Request-URI) and q.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Contact {
    pub uri: String,
    pub q: f32,
}

/// The Contacts of a 3xx from its Contact header values (each may list several,
/// comma-separated), highest q first, ties in the order given (RFC 3261 §8.1.3.4). A Contact
/// without q counts as q=1.0 (RFC 3261 §20.10); a `*` or unreadable entry is left out.
pub(crate) fn contacts_by_q(values: &[String]) -> Vec<Contact> {
    let mut contacts: Vec<Contact> = values
        .iter()
        .flat_map(|v| split_list(v))
        .filter_map(|entry| parse_contact(&entry))
        .collect();
    // A stable sort keeps the given order among equal q values.
    contacts.sort_by(|a, b| b.q.total_cmp(&a.q));
    contacts
}

/// Splits a header value at the commas that separate entries (not those inside `<...>` or a
/// quoted display name).
fn split_list(value: &str) -> Vec<String> {
    let (mut parts, mut cur) = (Vec::new(), String::new());
    let (mut in_angle, mut in_quote) = (false, false);
    for c in value.chars() {
        match c {
            '"' if !in_angle => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_angle && !in_quote => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

/// One Contact entry: `"Name" <sip:a@b;transport=udp>;q=0.5` or `sip:a@b;q=0.5` (without
/// brackets, every parameter belongs to the header, RFC 3261 §20.10).
fn parse_contact(entry: &str) -> Option<Contact> {
    let entry = entry.trim();
    let (uri, params) = match (entry.find('<'), entry.find('>')) {
        (Some(open), Some(close)) if open < close => (&entry[open + 1..close], &entry[close + 1..]),
        _ => match entry.split_once(';') {
            Some((uri, params)) => (uri, params),
            None => (entry, ""),
        },
    };
    let uri = uri.trim();
    let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
    if scheme != "sip" && scheme != "sips" {
        return None;
    }
    let q = params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("q"))
        .map(|(_, v)| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
        })
        .unwrap_or(Some(1.0))?;
    Some(Contact {
        uri: uri.to_string(),
        q,
    })
}

/// Why no redirect is followed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// Every Contact was tried already (the first one skipped is named).
    Loop(String),
    /// The hop limit is reached.
    TooMany(u32),
    /// The 3xx named no SIP Contact.
    NoContact,
}

impl Stop {
    /// The disconnect reason the application sees.
    pub(crate) fn reason(&self) -> String {
        match self {
            Stop::Loop(uri) => format!("redirect loop: {uri} already tried"),
            Stop::TooMany(max) => format!("too many redirects ({max})"),
            Stop::NoContact => "redirect without a SIP Contact".into(),
        }
    }
}

/// The targets of one call across its redirects: what was tried, what is left, how many hops.
#[derive(Debug)]
pub(crate) struct Redirects {
    max: u32,
    hops: u32,
    /// Tried targets, compared without parameters (`sip:user@host:port`), lower case.
    tried: Vec<String>,
    /// Contacts of earlier 3xx responses not tried yet, in the order to try them.
    left: Vec<String>,
}

fn key(uri: &str) -> String {
    strip_uri(uri).to_ascii_lowercase()
}

impl Redirects {
    /// `first` is the dialled target (a Contact pointing back to it is a loop).
    pub(crate) fn new(first: &str, max: u32) -> Self {
        Self {
            max,
            hops: 0,
            tried: vec![key(first)],
            left: Vec::new(),
        }
    }

    /// After a 3xx with `contacts` (in q order): the next target and its hop number. Its
    /// Contacts come before those left from earlier 3xx responses.
    pub(crate) fn on_redirect(&mut self, contacts: &[Contact]) -> Result<(String, u32), Stop> {
        let mut fresh: Vec<String> = contacts.iter().map(|c| c.uri.clone()).collect();
        fresh.append(&mut self.left);
        self.left = fresh;
        self.next()
    }

    /// After a redirected target failed (4xx-6xx): the next Contact left, if any.
    pub(crate) fn on_failure(&mut self) -> Option<(String, u32)> {
        self.next().ok()
    }

    /// The first target left that was not tried, within the hop limit. Without one: a loop
    /// when a Contact was skipped as tried, else no Contact at all.
    fn next(&mut self) -> Result<(String, u32), Stop> {
        let mut skipped = None;
        while !self.left.is_empty() {
            let uri = self.left.remove(0);
            let k = key(&uri);
            if self.tried.contains(&k) {
                skipped.get_or_insert(uri);
                continue;
            }
            if self.hops >= self.max {
                self.left.clear();
                return Err(Stop::TooMany(self.max));
            }
            self.tried.push(k);
            self.hops += 1;
            return Ok((uri, self.hops));
        }
        Err(skipped.map_or(Stop::NoContact, Stop::Loop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn uris(c: &[Contact]) -> Vec<&str> {
        c.iter().map(|c| c.uri.as_str()).collect()
    }

    #[test]
    fn contacts_in_q_order_ties_in_order() {
        let c = contacts_by_q(&values(&[
            "<sip:a@h1>;q=0.5, \"B, Inc\" <sip:b@h2;transport=tcp>;q=0.9",
            "sip:c@h3;q=0.5",
            "<sip:d@h4>",
        ]));
        assert_eq!(
            uris(&c),
            ["sip:d@h4", "sip:b@h2;transport=tcp", "sip:a@h1", "sip:c@h3"]
        );
        assert_eq!(c[0].q, 1.0);
    }

    #[test]
    fn unusable_contacts_are_left_out() {
        let c = contacts_by_q(&values(&[
            "*",
            "<tel:+123>",
            "<sip:x@h>;q=7",
            "<sip:y@h>;q=0",
        ]));
        assert_eq!(uris(&c), ["sip:y@h"]);
        assert!(contacts_by_q(&[]).is_empty());
    }

    fn contact(uri: &str) -> Contact {
        Contact {
            uri: uri.into(),
            q: 1.0,
        }
    }

    #[test]
    fn hops_are_counted_and_bounded() {
        let mut r = Redirects::new("sip:0@h", 2);
        assert_eq!(
            r.on_redirect(&[contact("sip:1@h")]),
            Ok(("sip:1@h".into(), 1))
        );
        assert_eq!(
            r.on_redirect(&[contact("sip:2@h")]),
            Ok(("sip:2@h".into(), 2))
        );
        assert_eq!(r.on_redirect(&[contact("sip:3@h")]), Err(Stop::TooMany(2)));
        assert_eq!(Stop::TooMany(2).reason(), "too many redirects (2)");
    }

    #[test]
    fn a_contact_back_to_a_tried_target_is_a_loop() {
        let mut r = Redirects::new("sip:0@h:5060", 5);
        assert_eq!(
            r.on_redirect(&[contact("<sip:0@H:5060;transport=udp>"), contact("sip:1@h")]),
            Ok(("sip:1@h".into(), 1))
        );
        let stop = r.on_redirect(&[contact("sip:1@h;lr")]).unwrap_err();
        assert_eq!(stop, Stop::Loop("sip:1@h;lr".into()));
        assert_eq!(stop.reason(), "redirect loop: sip:1@h;lr already tried");
    }

    #[test]
    fn failed_target_falls_back_to_the_next_contact() {
        let mut r = Redirects::new("sip:0@h", 5);
        let first = r.on_redirect(&[contact("sip:1@h"), contact("sip:2@h")]);
        assert_eq!(first, Ok(("sip:1@h".into(), 1)));
        assert_eq!(r.on_failure(), Some(("sip:2@h".into(), 2)));
        assert_eq!(r.on_failure(), None);
    }

    #[test]
    fn a_3xx_without_contact_ends_the_call() {
        let mut r = Redirects::new("sip:0@h", 5);
        assert_eq!(r.on_redirect(&[]), Err(Stop::NoContact));
    }
}
