//! What the registrar holds for us: the Contacts a REGISTER carries (the one to bind, and the
//! old one to remove once our public address changed) and the lifetime it granted. Pure.

use rsipstack::sip;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};

/// The Contacts of a REGISTER for `expires`: the one to bind (`current`; for the
/// un-REGISTER, the one bound), and the old binding to remove (`expires=0`) when our public
/// address changed since the registrar stored it (PJSIP's contact rewrite without a separate
/// un-REGISTER: one request, RFC 3261 §10.2.1 allows several Contacts).
pub(super) fn contacts(
    current: String,
    bound: Option<&str>,
    expires: u32,
) -> (String, Option<String>) {
    match bound {
        Some(b) if expires == 0 => (b.to_string(), None),
        Some(b) if b != current => (current, Some(b.to_string())),
        _ => (current, None),
    }
}

/// The lifetime granted in a 2xx: our Contact's `expires` param (the registrar lists every
/// binding of the AOR: other devices' too), else the first Contact's, else the Expires
/// header, else what we asked for.
pub(super) fn granted_expires(resp: &sip::Response, asked: u32, ours: &str) -> u32 {
    let mut contacts: Vec<_> = resp
        .contact_headers()
        .into_iter()
        .filter_map(|c| c.typed().ok())
        .collect();
    // ours first; the sort is stable, so the others keep their order
    contacts.sort_by_key(|c| c.uri.to_string() != ours);
    let from_contact = contacts.iter().find_map(|c| {
        c.params.iter().find_map(|p| match p {
            sip::Param::Expires(e) => e.value().parse::<u32>().ok(),
            _ => None,
        })
    });
    if let Some(v) = from_contact {
        return v;
    }
    resp.header_value("Expires")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    #[test]
    fn a_changed_address_binds_the_new_contact_and_removes_the_old() {
        let private = "sip:7779@10.0.0.2:5060".to_string();
        let public = "sip:7779@198.51.100.4:31000".to_string();
        // first REGISTER: nothing bound yet
        assert_eq!(
            contacts(private.clone(), None, 300),
            (private.clone(), None)
        );
        // refresh, nothing changed
        assert_eq!(
            contacts(private.clone(), Some(&private), 300),
            (private.clone(), None)
        );
        // rport showed another address: bind it, remove the old one in the same REGISTER
        assert_eq!(
            contacts(public.clone(), Some(&private), 300),
            (public.clone(), Some(private.clone()))
        );
        // un-REGISTER removes what the registrar holds, whatever we learned since
        assert_eq!(
            contacts(public.clone(), Some(&private), 0),
            (private.clone(), None)
        );
        assert_eq!(contacts(public.clone(), None, 0), (public, None));
    }

    #[test]
    fn the_granted_lifetime_is_our_contacts() {
        let resp = |contacts: &str| {
            let text = format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
                 To: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n{contacts}Expires: 77\r\nContent-Length: 0\r\n\r\n"
            );
            match SipMessage::try_from(text.as_str()).unwrap() {
                SipMessage::Response(r) => r,
                _ => unreachable!(),
            }
        };
        let both = resp("Contact: <sip:7779@192.0.2.9:5060>;expires=3600\r\nContact: <sip:7779@198.51.100.4:31000>;expires=120\r\n");
        assert_eq!(
            granted_expires(&both, 300, "sip:7779@198.51.100.4:31000"),
            120
        );
        assert_eq!(
            granted_expires(&both, 300, "sip:7779@10.0.0.2:5060"),
            3600,
            "else the first"
        );
        assert_eq!(granted_expires(&resp(""), 300, "x"), 77);
    }
}
