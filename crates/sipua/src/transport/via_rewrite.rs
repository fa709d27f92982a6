//! Via sent-by follows the public address (PJSIP's `viaRewriteUse`): rsipstack writes the
//! address its UDP transport was given at start into every Via and offers no way to change
//! it, so the requests we send get their top Via rewritten here once NAT learning found
//! another public address. A server without RFC 3581 then still answers to the right place.

use super::Addressing;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{self, Header, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::sync::Arc;

/// The inspector that puts the public address into our requests' Via.
pub(crate) struct ViaRewrite(pub Arc<Addressing>);

/// `req` with its top Via's sent-by `from` replaced by `to`; other Vias (not ours) untouched.
fn rewrite(mut req: sip::Request, from: SocketAddr, to: SocketAddr) -> sip::Request {
    let Some(mut via) = req.top_via_header().ok().and_then(|v| v.typed().ok()) else {
        return req;
    };
    if SocketAddr::try_from(via.uri.host_with_port.clone()).ok() != Some(from) {
        return req;
    }
    via.uri.host_with_port = to.into();
    if let Some(h) = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) {
        *h = Header::Via(via.into());
    }
    req
}

impl MessageInspector for ViaRewrite {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        let (from, to) = (self.0.stack_sent_by(), self.0.public());
        match msg {
            SipMessage::Request(req) if from != to => SipMessage::Request(rewrite(req, from, to)),
            other => other,
        }
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(vias: &str) -> sip::Request {
        let text = format!(
            "OPTIONS sip:a@h SIP/2.0\r\n{vias}From: <sip:a@h>;tag=1\r\nTo: <sip:a@h>\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Request(r) => r,
            _ => unreachable!(),
        }
    }

    fn vias(req: &sip::Request) -> Vec<String> {
        req.headers
            .iter()
            .filter_map(|h| match h {
                Header::Via(v) => Some(v.value().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn our_top_via_gets_the_public_address_and_keeps_its_params() {
        let from: SocketAddr = "10.0.0.2:5060".parse().unwrap();
        let to: SocketAddr = "198.51.100.4:31000".parse().unwrap();
        let req = request(
            "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx;rport\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKy\r\n",
        );
        let out = vias(&rewrite(req, from, to));
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("198.51.100.4:31000"), "{out:?}");
        assert!(
            out[0].contains("branch=z9hG4bKx") && out[0].contains("rport"),
            "{out:?}"
        );
        assert!(
            out[1].contains("10.0.0.2:5060"),
            "only the top Via: {out:?}"
        );
        // a Via that is not the stack's own is left alone
        let other = request("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKz\r\n");
        assert!(vias(&rewrite(other, from, to))[0].contains("192.0.2.1:5060"));
    }
}
