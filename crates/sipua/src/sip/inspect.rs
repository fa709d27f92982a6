//! rsipstack takes one message inspector; ours are several (each one concern), run in order.

use rsipstack::sip::SipMessage;
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// Inspectors applied one after the other, outgoing and incoming alike.
pub(crate) struct Inspectors(pub Vec<Box<dyn MessageInspector>>);

impl MessageInspector for Inspectors {
    fn before_send(&self, msg: SipMessage, dest: Option<&SipAddr>) -> SipMessage {
        self.0.iter().fold(msg, |m, i| i.before_send(m, dest))
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        self.0.iter().fold(msg, |m, i| i.after_received(m, from))
    }
}
