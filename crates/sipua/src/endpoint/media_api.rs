//! The media operations of the API (play, tone, record, DTMF, bridge, PCM streams, stats),
//! between the call table and the calls' RTP sessions.

use super::Endpoint;
use crate::error::{Error, Result};
use crate::media::recorder::{Recorder, RecordingInfo};
use crate::media::session::{MediaSession, SessionStats};
use crate::media::tone::{Amplitude, ToneGenerator};
use std::path::PathBuf;
use std::sync::Arc;

/// How [`Endpoint::send_dtmf`] signals digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfMethod {
    /// RFC 4733 telephone-event packets in the RTP stream.
    Rfc4733,
    /// SIP INFO with an `application/dtmf-relay` body.
    Info,
}

impl Endpoint {
    fn session(&self, call_id: &str) -> Result<Arc<MediaSession>> {
        let call = self.calls.get(call_id)?;
        call.media_session().ok_or_else(|| Error::InvalidState {
            call_id: call_id.to_string(),
            state: call.state().as_str().to_string(),
            operation: "media".into(),
            expected: "answered".into(),
        })
    }

    /// Plays a WAV file; resolves when it has played (or playback was stopped or replaced).
    pub async fn play_file(&self, call_id: &str, path: &str, looped: bool) -> Result<()> {
        let session = self.session(call_id)?;
        let rate = session.sample_rate();
        let owned = PathBuf::from(path);
        let samples =
            tokio::task::spawn_blocking(move || crate::media::wav::read_wav_mono(&owned, rate))
                .await
                .map_err(|e| Error::Media(format!("{path}: reader failed: {e}")))?
                .map_err(|e| Error::Media(e.to_string()))?;
        let done = session.play_samples(samples.into(), looped);
        let _ = done.await;
        Ok(())
    }

    /// Plays a tone (two frequencies are summed); resolves when it ends or is stopped.
    pub async fn play_tone(
        &self,
        call_id: &str,
        frequencies: &[f64],
        duration_ms: u32,
        level_dbfs: f64,
    ) -> Result<()> {
        let session = self.session(call_id)?;
        let rate = session.sample_rate();
        let nyquist = f64::from(rate) / 2.0;
        if frequencies.is_empty()
            || frequencies.len() > 2
            || frequencies.iter().any(|f| !(*f > 0.0 && *f < nyquist))
        {
            return Err(Error::InvalidArgument(format!(
                "frequency: one or two frequencies between 0 and {nyquist} Hz, got {frequencies:?}"
            )));
        }
        if !(-100.0..=0.0).contains(&level_dbfs) {
            return Err(Error::InvalidArgument(format!(
                "level: dBFS between -100 and 0, got {level_dbfs}"
            )));
        }
        let amp = Amplitude::Dbfs(level_dbfs);
        let generator = match frequencies {
            [f] => ToneGenerator::new(rate, *f, amp),
            [f1, f2] => ToneGenerator::dual(rate, *f1, *f2, amp),
            _ => unreachable!("checked above"),
        };
        let done = session.play_tone(generator, duration_ms);
        let _ = done.await;
        Ok(())
    }

    /// Stops file or tone playback (their promises resolve).
    pub fn stop_playback(&self, call_id: &str) -> Result<()> {
        self.session(call_id)?.stop_playback();
        Ok(())
    }

    /// Starts recording to a WAV file (1 channel mixed, or 2: remote, local).
    pub async fn record(&self, call_id: &str, path: &str, channels: u16) -> Result<()> {
        if !(1..=2).contains(&channels) {
            return Err(Error::InvalidArgument(format!(
                "channels: 1 or 2, got {channels}"
            )));
        }
        let session = self.session(call_id)?;
        let rate = session.sample_rate();
        let owned = PathBuf::from(path);
        let recorder = tokio::task::spawn_blocking(move || Recorder::start(owned, channels, rate))
            .await
            .map_err(|e| Error::Media(format!("{path}: recorder failed: {e}")))?
            .map_err(Error::Media)?;
        session.start_recording(recorder);
        Ok(())
    }

    /// Stops the recording (also after the call ended) and tells what was written.
    pub async fn stop_recording(&self, call_id: &str) -> Result<RecordingInfo> {
        if let Some(info) = self.ctx.take_recording(call_id) {
            return Ok(info);
        }
        let session = self.session(call_id)?;
        tokio::task::spawn_blocking(move || session.stop_recording())
            .await
            .map_err(|e| Error::Media(format!("recorder failed: {e}")))?
            .ok_or_else(|| {
                Error::InvalidArgument(format!("callId: call {call_id} is not being recorded"))
            })
    }

    /// Sends DTMF digits in the RTP stream (RFC 4733) or as SIP INFO.
    pub async fn send_dtmf(
        &self,
        call_id: &str,
        digits: &str,
        method: DtmfMethod,
        duration_ms: u32,
    ) -> Result<()> {
        if digits.is_empty()
            || !digits
                .chars()
                .all(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d'))
        {
            return Err(Error::InvalidArgument(format!(
                "digits: only 0-9 * # A-D, got {digits:?}"
            )));
        }
        if !(40..=5000).contains(&duration_ms) {
            return Err(Error::InvalidArgument(format!(
                "durationMs: 40-5000, got {duration_ms}"
            )));
        }
        match method {
            DtmfMethod::Rfc4733 => {
                let session = self.session(call_id)?;
                let done = session
                    .send_dtmf(&digits.to_ascii_uppercase(), duration_ms)
                    .map_err(Error::Media)?;
                let _ = done.await;
                Ok(())
            }
            DtmfMethod::Info => {
                let call = self.calls.get(call_id)?;
                for digit in digits.chars() {
                    let body = crate::media::dtmf::format_dtmf_relay(
                        digit.to_ascii_uppercase(),
                        duration_ms,
                    )
                    .map_err(|e| Error::InvalidArgument(format!("digits: {e}")))?;
                    call.send_info("application/dtmf-relay", body.into_bytes())
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Connects the audio of two answered calls both ways.
    pub fn bridge(&self, a: &str, b: &str) -> Result<()> {
        if a == b {
            return Err(Error::InvalidArgument(
                "bridge: a call cannot be bridged to itself".into(),
            ));
        }
        let (sa, sb) = (self.session(a)?, self.session(b)?);
        sa.bridge_to(&sb);
        sb.bridge_to(&sa);
        Ok(())
    }

    /// Disconnects a call from its bridge partner (both sides fall back to silence).
    pub fn unbridge(&self, call_id: &str) -> Result<()> {
        let session = self.session(call_id)?;
        if let Some(peer) = session.bridged_to() {
            peer.unbridge();
        }
        session.unbridge();
        Ok(())
    }

    /// RTP statistics of a call (RFC 3550 figures and RTCP reports).
    pub fn call_stats(&self, call_id: &str) -> Result<SessionStats> {
        Ok(self.session(call_id)?.stats())
    }

    /// Starts capturing the call's received audio for a PCM reader (bounded: unread frames are
    /// dropped and counted); returns the streams' sample rate.
    pub fn pcm_open(&self, call_id: &str) -> Result<u32> {
        let session = self.session(call_id)?;
        session.open_pcm_out();
        Ok(session.sample_rate())
    }

    /// Received PCM (16-bit LE) queued since the last read; waits for at least one frame.
    /// `None` when the call's media has ended.
    pub async fn pcm_read(&self, call_id: &str) -> Result<Option<Vec<u8>>> {
        let session = match self.session(call_id) {
            Ok(s) => s,
            Err(Error::NoSuchCall(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        session.open_pcm_out();
        loop {
            let ready = session.pcm_out_ready.notified();
            match session.take_pcm_out() {
                Some(bytes) if bytes.is_empty() => {}
                other => return Ok(other),
            }
            if session.is_closed() {
                return Ok(None);
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), ready).await;
        }
    }

    /// Queues PCM (16-bit LE) to send; waits while 200 ms are already queued.
    pub async fn pcm_write(&self, call_id: &str, bytes: &[u8]) -> Result<()> {
        if !bytes.len().is_multiple_of(2) {
            return Err(Error::InvalidArgument(
                "chunk: 16-bit PCM needs an even number of bytes".into(),
            ));
        }
        let session = self.session(call_id)?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = session.pcm_in_room.notified();
            let taken = session.push_pcm_in(rest);
            rest = &rest[taken..];
            if rest.is_empty() {
                break;
            }
            if session.is_closed() {
                return Err(Error::NoSuchCall(call_id.to_string()));
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), room).await;
        }
        Ok(())
    }

    /// Send-interval quantiles of the pacing clock (p50, p99), ms.
    pub fn media_clock(&self) -> (f64, f64) {
        self.ctx.media.tick_intervals()
    }
}
