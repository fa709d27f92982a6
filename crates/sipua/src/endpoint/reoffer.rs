//! Hold, resume, re-INVITE and UPDATE of a confirmed call (the call's `hold` and `reoffer`
//! modules do the work).

use super::Endpoint;
use crate::error::Result;
use rsipstack::sip::Method;
use tracing::Instrument;

impl Endpoint {
    /// Puts a confirmed call on hold (`true`: re-INVITE with `sendonly`, `inactive` when the
    /// peer holds us too), with `music` (a WAV path) looped to the peer while held, or resumes
    /// it.
    pub async fn set_hold(&self, call_id: &str, hold: bool, music: Option<&str>) -> Result<()> {
        let call = self.calls.get(call_id)?;
        call.set_hold(hold, music)
            .instrument(self.call_span(call_id))
            .await
    }

    /// Sends a re-INVITE with our offer (`offer`), or without one (the peer offers in its 2xx
    /// and our ACK answers).
    pub async fn reinvite(&self, call_id: &str, offer: bool) -> Result<()> {
        let call = self.calls.get(call_id)?;
        call.reoffer(Method::Invite, offer)
            .instrument(self.call_span(call_id))
            .await
    }

    /// Sends an UPDATE (RFC 3311) with our offer, or without a body.
    pub async fn update(&self, call_id: &str, offer: bool) -> Result<()> {
        let call = self.calls.get(call_id)?;
        call.reoffer(Method::Update, offer)
            .instrument(self.call_span(call_id))
            .await
    }
}
