//! `progress()`: early media on an incoming call (183 with our SDP answer).

use super::Endpoint;
use crate::error::Result;
use tracing::Instrument;

impl Endpoint {
    /// Sends 183 Session Progress with our SDP answer on an incoming call not answered yet
    /// (reliably when 100rel is in force) and starts its media; the call stays `incoming`.
    pub async fn progress(&self, call_id: &str, headers: Vec<(String, String)>) -> Result<()> {
        let call = self.calls.get(call_id)?;
        call.progress(headers)
            .instrument(self.call_span(call_id))
            .await
    }
}
