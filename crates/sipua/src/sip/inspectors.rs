//! Several message inspectors in one: rsipstack takes a single `MessageInspector`, and each of
//! our fix-ups (the remote target, the Via `received`) is its own concept in its own module.

use rsipstack::sip::SipMessage;
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// Runs its inspectors in order, each on the previous one's output.
pub(crate) struct Inspectors(pub Vec<Box<dyn MessageInspector>>);

impl MessageInspector for Inspectors {
    fn before_send(&self, msg: SipMessage, dest: Option<&SipAddr>) -> SipMessage {
        self.0.iter().fold(msg, |m, i| i.before_send(m, dest))
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        self.0.iter().fold(msg, |m, i| i.after_received(m, from))
    }
}
