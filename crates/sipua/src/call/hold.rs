//! Hold and resume (RFC 3264 §8.4, RFC 6337 §5.3; the SDP directions are in `direction`).
//! Each side's hold is tracked apart: ours changes with our own re-INVITE being answered, the
//! peer's with the direction of the offers it sends. Our offers say what both want (`inactive`
//! when both hold), our answers never receive while we hold. Music on hold is a WAV looped to
//! the peer while we hold it.

use super::direction::offer_direction;
use super::reoffer::Offer;
use super::Call;
use crate::error::{Error, Result};
use crate::event::{CallState, Event};
use crate::media::MediaDirection;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Who holds the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HoldState {
    /// Media flows both ways.
    #[default]
    None,
    /// We hold the peer.
    Local,
    /// The peer holds us.
    Remote,
    /// Both hold.
    Both,
}

impl HoldState {
    /// `none`, `local`, `remote` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::None => "none",
            HoldState::Local => "local",
            HoldState::Remote => "remote",
            HoldState::Both => "both",
        }
    }

    fn of(local: bool, remote: bool) -> HoldState {
        match (local, remote) {
            (false, false) => HoldState::None,
            (true, false) => HoldState::Local,
            (false, true) => HoldState::Remote,
            (true, true) => HoldState::Both,
        }
    }
}

impl Call {
    /// Who holds the call now.
    pub(crate) fn hold_state(&self) -> HoldState {
        HoldState::of(
            self.local_hold.load(Ordering::SeqCst),
            self.remote_hold.load(Ordering::SeqCst),
        )
    }

    /// The direction our next offer carries.
    pub(super) fn our_offer_direction(&self, local: bool) -> MediaDirection {
        offer_direction(local, self.remote_hold.load(Ordering::SeqCst))
    }

    /// Holds (`sendonly`, or `inactive` when the peer holds us) or resumes a confirmed call by
    /// re-INVITE, with `music` (a WAV path) looped to the peer while held. A peer that refuses
    /// or never answers leaves the call and its media as they were; that is a `request_failed`
    /// event and the error of this call.
    pub(crate) async fn set_hold(self: &Arc<Self>, hold: bool, music: Option<&str>) -> Result<()> {
        let purpose = if hold { "hold" } else { "unhold" };
        self.expect(CallState::Confirmed, purpose)?;
        // The file is read before the re-INVITE: a bad path fails the call to hold() alone.
        let samples = match (music, self.media.session()) {
            (Some(path), Some(session)) if hold => {
                Some(read_music(path, session.sample_rate()).await?)
            }
            _ => None,
        };
        let offer = Offer::Sdp { local_hold: hold };
        self.send_reoffer(rsipstack::sip::Method::Invite, offer, purpose)
            .await?;
        self.local_hold.store(hold, Ordering::SeqCst);
        if let Some(session) = self.media.session() {
            match samples {
                Some(samples) => {
                    // The promise of a looped playback only resolves when it is stopped.
                    drop(session.play_samples(samples.into(), true));
                    self.music_on_hold.store(true, Ordering::SeqCst);
                }
                None if !hold && self.music_on_hold.swap(false, Ordering::SeqCst) => {
                    session.stop_playback()
                }
                None => {}
            }
        }
        self.ctx.emit(Event::Hold {
            call_id: self.id.clone(),
            by: "local".into(),
            held: hold,
        });
        Ok(())
    }

    /// The peer's offer holds us (`held`) or not: a `hold` event by `remote` when that changed.
    pub(super) fn peer_hold(&self, held: bool) {
        if self.remote_hold.swap(held, Ordering::SeqCst) != held {
            tracing::info!(call_id = %self.id, held, "hold by the peer");
            self.ctx.emit(Event::Hold {
                call_id: self.id.clone(),
                by: "remote".into(),
                held,
            });
        }
    }
}

async fn read_music(path: &str, rate: u32) -> Result<Vec<i16>> {
    let owned = std::path::PathBuf::from(path);
    tokio::task::spawn_blocking(move || crate::media::wav::read_wav_mono(&owned, rate))
        .await
        .map_err(|e| Error::Media(format!("music {path}: reader failed: {e}")))?
        .map_err(|e| Error::InvalidArgument(format!("music: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_state_names() {
        assert_eq!(HoldState::of(false, false).as_str(), "none");
        assert_eq!(HoldState::of(true, false).as_str(), "local");
        assert_eq!(HoldState::of(false, true).as_str(), "remote");
        assert_eq!(HoldState::of(true, true).as_str(), "both");
    }
}
