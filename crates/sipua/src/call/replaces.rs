//! Attended transfer (RFC 3891): the Replaces that names this call's dialog for a REFER, where
//! the call is for the matching of an incoming INVITE with Replaces, and the old call's end
//! once the new one took it over.

use super::{send_bye, span, Call};
use crate::event::{CallState, Direction, Event};
use crate::sip::replaces::{DialogPhase, Replaces};
use rsipstack::dialog::DialogId;
use tracing::Instrument;

impl Call {
    /// The dialog's Call-ID and tags, once the dialog exists.
    pub(crate) fn dialog_id(&self) -> Option<DialogId> {
        self.dialog().map(|d| d.id())
    }

    /// The Replaces a third party must send to take this call over: seen from our peer, its
    /// local tag (our remote tag) is the to-tag.
    pub(crate) fn replaces_for_peer(&self) -> Option<Replaces> {
        let id = self.dialog_id()?;
        Some(Replaces {
            call_id: id.call_id,
            to_tag: id.remote_tag,
            from_tag: id.local_tag,
            early_only: false,
        })
    }

    /// Where our peer in this call is reached: its Contact (the dialog's remote target).
    pub(crate) fn remote_target(&self) -> Option<String> {
        let snapshot = self.dialog()?.snapshot();
        Some(snapshot.remote_uri.to_string())
    }

    /// The call as RFC 3891's matching rules see it.
    pub(crate) fn phase(&self) -> DialogPhase {
        match (self.state(), self.direction) {
            (CallState::Disconnected, _) => DialogPhase::Terminated,
            (CallState::Connecting | CallState::Confirmed, _) => DialogPhase::Confirmed,
            (_, Direction::Outgoing) => DialogPhase::EarlyOutgoing,
            (_, Direction::Incoming) => DialogPhase::EarlyIncoming,
        }
    }

    /// Another call took this one over: `call_replaced`, then the call ends (BYE, or CANCEL
    /// while it is early) with the reason "replaced".
    pub(crate) fn replaced_by(&self, new_call_id: &str) {
        self.ctx.emit(Event::CallReplaced {
            call_id: self.id.clone(),
            new_call_id: new_call_id.to_string(),
        });
        if self.phase() != DialogPhase::Confirmed {
            self.request_hangup(super::Hangup::default());
            return;
        }
        let dialog = self.dialog();
        self.end(200, "replaced");
        if let Some(d) = dialog {
            tokio::spawn(send_bye(d, Vec::new(), self.id.clone()).instrument(span(&self.id)));
        }
    }
}
