//! Reliable provisional responses (100rel, RFC 3262). As caller, rsipstack sends the PRACK
//! itself (its dialog.rs ~612-660) but PRACKs a 1xx whatever its RSeq; we process only those
//! in order ([`ReliableOrder`]). As callee rsipstack has nothing: here our 180/183 carry
//! `Require: 100rel` and `RSeq` when 100rel is in force, are retransmitted (T1, doubling)
//! until their PRACK, the call fails with 500 after 64·T1 without one, and the 200 waits for
//! the PRACK of a pending reliable 1xx. The PRACK reaches [`on_prack`] from the dispatcher,
//! before the dialog's own handler (which answers 200 to anything).

use super::Call;
use crate::config::PrackMode;
use crate::error::{Error, Result};
use crate::event::CallState;
use crate::sip::message::{extra_headers, header_values, sdp_content_type};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, Response, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

/// Whether a header list (`Require`, `Supported`) names `100rel`.
fn names_100rel(values: &[String]) -> bool {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("100rel"))
}

/// What an incoming INVITE gets from us by its `Require`/`Supported` and our config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UasMode {
    /// Plain 180/183.
    Unreliable,
    /// Reliable 1xx (`Require: 100rel`, `RSeq`).
    Reliable,
    /// 420 Bad Extension, `Unsupported: 100rel`: the caller requires what we turned off.
    Refuse,
    /// 421 Extension Required: we require 100rel, the caller does not support it.
    Required,
}

/// RFC 3262 §3: reliable when the caller requires 100rel, or supports it and we require it.
pub(crate) fn uas_mode(mode: PrackMode, require: bool, supported: bool) -> UasMode {
    match (mode, require, supported) {
        (PrackMode::Off, true, _) => UasMode::Refuse,
        (PrackMode::Off, false, _) => UasMode::Unreliable,
        (_, true, _) | (PrackMode::Required, false, true) => UasMode::Reliable,
        (PrackMode::Required, false, false) => UasMode::Required,
        (PrackMode::Supported, false, _) => UasMode::Unreliable,
    }
}

/// The mode of an incoming INVITE.
pub(crate) fn uas_mode_of(mode: PrackMode, req: &Request) -> UasMode {
    let require = names_100rel(&header_values(&req.headers, "Require"));
    let supported = names_100rel(&header_values(&req.headers, "Supported"));
    uas_mode(mode, require, supported)
}

/// The `RAck` of a PRACK: `RSeq CSeq-number method` (RFC 3262 §7.2).
pub(crate) fn parse_rack(value: &str) -> Option<(u32, u32, String)> {
    let mut it = value.split_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    let method = it.next()?.to_ascii_uppercase();
    it.next().is_none().then_some((rseq, cseq, method))
}

/// Caller side: reliable 1xx are processed in RSeq order only (RFC 3262 §4: each one higher
/// than the last; a retransmission or one out of order is not processed again).
#[derive(Debug, Default)]
pub(super) struct ReliableOrder {
    last: Option<u32>,
}

impl ReliableOrder {
    /// Whether `resp` is to be processed: an unreliable 1xx, or the next reliable one.
    pub(super) fn in_order(&mut self, resp: &Response) -> bool {
        if !names_100rel(&header_values(&resp.headers, "Require")) {
            return true;
        }
        let rseq = header_values(&resp.headers, "RSeq")
            .first()
            .and_then(|v| v.trim().parse::<u32>().ok());
        self.accept(rseq)
    }

    fn accept(&mut self, rseq: Option<u32>) -> bool {
        let Some(rseq) = rseq else {
            return false;
        };
        let ok = self.last.is_none_or(|last| rseq == last.wrapping_add(1));
        if ok {
            self.last = Some(rseq);
        }
        ok
    }
}

/// Callee side: our reliable 1xx of one incoming call.
pub(crate) struct Provisional {
    mode: Mutex<UasMode>,
    /// The RSeq of the reliable 1xx waiting for its PRACK (0: none), and the last one sent.
    pending: watch::Sender<u32>,
    last_rseq: Mutex<u32>,
    /// The SDP answer sent in a 183 (`progress()`): the 200 repeats it.
    early_answer: Mutex<Option<String>>,
}

impl Default for Provisional {
    fn default() -> Self {
        Self {
            mode: Mutex::new(UasMode::Unreliable),
            pending: watch::Sender::new(0),
            // RFC 3262 §3: the first RSeq is random, below 2^31.
            last_rseq: Mutex::new(rand::random_range(1..0x7fff_0000)),
            early_answer: Mutex::new(None),
        }
    }
}

impl Provisional {
    pub(crate) fn set_mode(&self, mode: UasMode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    fn reliable(&self) -> bool {
        self.mode.lock().is_ok_and(|m| *m == UasMode::Reliable)
    }

    pub(super) fn early_answer(&self) -> Option<String> {
        self.early_answer.lock().ok().and_then(|a| a.clone())
    }

    fn next_rseq(&self) -> u32 {
        let mut last = self.last_rseq.lock().unwrap_or_else(|e| e.into_inner());
        *last += 1;
        *last
    }

    /// Resolves once no reliable 1xx waits for its PRACK, or after `limit`; whether none waits.
    pub(super) async fn acknowledged(&self, limit: Duration) -> bool {
        let mut rx = self.pending.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|p| *p == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Call {
    /// `progress()`: a 183 with our SDP answer on an incoming call not answered yet, reliable
    /// when 100rel is in force, and the media starts (early media both ways). The call stays
    /// `incoming` until answered; the 200 repeats this answer.
    pub(crate) async fn progress(self: &Arc<Self>, headers: Vec<(String, String)>) -> Result<()> {
        self.expect(CallState::Incoming, "progress")?;
        let headers = extra_headers("headers", headers)?;
        let dialog = self
            .dialog()
            .ok_or_else(|| Error::NoSuchCall(self.id.clone()))?;
        let offer = self.remote_offer.lock().ok().and_then(|o| o.clone());
        let Some(offer) = offer else {
            // Not the caller's argument: the peer sent no offer (a plain Error, not a TypeError).
            return Err(Error::Media(format!(
                "progress: call {} has no SDP offer to answer early (its INVITE had none)",
                self.id
            )));
        };
        let body = match self.provisional.early_answer() {
            Some(body) => body,
            None => {
                let body = self.media.answer(&self.ctx, &offer);
                if let Ok(mut a) = self.provisional.early_answer.lock() {
                    *a = Some(body.clone());
                }
                body
            }
        };
        self.media.start(&self.ctx, &self.id, &offer);
        let mut headers = headers;
        headers.push(sdp_content_type());
        self.send_provisional(&dialog, headers, Some(body.into_bytes()))
            .await
    }

    /// Sends a 180 (no body) or 183 (with our SDP), reliably when 100rel is in force: after
    /// the PRACK of the previous one (RFC 3262 §3 allows one unacknowledged at a time), then
    /// retransmitted at T1, 2·T1, ... until its PRACK; none within 64·T1 fails the call with
    /// 500 (RFC 3262 §3).
    pub(super) async fn send_provisional(
        self: &Arc<Self>,
        dialog: &InviteDialog,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
    ) -> Result<()> {
        if !self.provisional.reliable() {
            dialog.ringing(Some(headers), body)?;
            return Ok(());
        }
        let t1x64 = self.ctx.config.t1x64();
        if !self.provisional.acknowledged(t1x64).await {
            return Err(Error::Sip("the previous reliable 1xx got no PRACK".into()));
        }
        let rseq = self.provisional.next_rseq();
        let mut headers = headers;
        headers.push(Header::Require("100rel".into()));
        headers.push(Header::Other("RSeq".into(), rseq.to_string()));
        self.provisional.pending.send_replace(rseq);
        dialog.ringing(Some(headers.clone()), body.clone())?;
        let call = self.clone();
        let dialog = dialog.clone();
        tokio::spawn(
            async move { call.retransmit(&dialog, rseq, headers, body).await }
                .instrument(super::span(&self.id)),
        );
        Ok(())
    }

    async fn retransmit(
        &self,
        dialog: &InviteDialog,
        rseq: u32,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
    ) {
        let mut pending = self.provisional.pending.subscribe();
        let mut interval = Duration::from_millis(self.ctx.config.timer_t1_ms);
        let give_up = Instant::now() + self.ctx.config.t1x64();
        loop {
            let next = (Instant::now() + interval).min(give_up);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = pending.wait_for(|p| *p != rseq) => return,
                _ = self.teardown.cancelled() => return,
            }
            if self.state() != CallState::Incoming {
                return;
            }
            if Instant::now() >= give_up {
                tracing::info!(call_id = %self.id, rseq, "no PRACK for our reliable 1xx");
                self.final_code
                    .store(500, std::sync::atomic::Ordering::SeqCst);
                let _ = dialog.reject(
                    Some(StatusCode::ServerInternalError),
                    Some("SIP;cause=500;text=\"no PRACK\"".into()),
                );
                return;
            }
            let _ = dialog.ringing(Some(headers.clone()), body.clone());
            interval *= 2;
        }
    }
}

/// A PRACK (any dialog): 200 when its RAck names the reliable 1xx of `call` waiting for it
/// (or the last one acknowledged, a repeated PRACK), else 481 (RFC 3262 §3). `call` is the
/// call of the PRACK's Call-ID, `None` when there is none.
pub(crate) async fn on_prack(call: Option<Arc<Call>>, tx: &mut Transaction) -> Result<()> {
    let rack = header_values(&tx.original.headers, "RAck")
        .first()
        .and_then(|v| parse_rack(v));
    // Which reliable 1xx it acknowledges: the pending one (`Some(true)`), the last one again.
    let acked = match (&call, rack) {
        (Some(call), Some((rseq, cseq, method))) => {
            let invite_cseq = call
                .dialog()
                .map(|d| d.initial_request())
                .and_then(|r| r.cseq_header().ok().and_then(|c| c.seq().ok()));
            let pending = *call.provisional.pending.borrow();
            let last = *call
                .provisional
                .last_rseq
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let ours = method == "INVITE" && invite_cseq == Some(cseq);
            match (ours, pending) {
                (true, p) if p != 0 && rseq == p => Some(true),
                (true, 0) if rseq == last => Some(false),
                _ => None,
            }
        }
        _ => None,
    };
    let Some(newly) = acked else {
        tx.reply(StatusCode::CallTransactionDoesNotExist).await?;
        return Ok(());
    };
    // The 200 first: what the PRACK releases (our next 1xx, the 200 to the INVITE) must not
    // overtake it.
    let replied = tx.reply(StatusCode::OK).await;
    if let (true, Some(call)) = (newly, call) {
        call.provisional.pending.send_replace(0);
    }
    replied?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uas_mode_by_require_supported_and_config() {
        use PrackMode::*;
        assert_eq!(uas_mode(Supported, true, false), UasMode::Reliable);
        assert_eq!(uas_mode(Supported, false, true), UasMode::Unreliable);
        assert_eq!(uas_mode(Required, false, true), UasMode::Reliable);
        assert_eq!(uas_mode(Required, false, false), UasMode::Required);
        assert_eq!(uas_mode(Off, true, true), UasMode::Refuse);
        assert_eq!(uas_mode(Off, false, true), UasMode::Unreliable);
    }

    #[test]
    fn rack_parses() {
        assert_eq!(
            parse_rack("776656 1 INVITE"),
            Some((776656, 1, "INVITE".into()))
        );
        assert_eq!(parse_rack(" 5  2 invite "), Some((5, 2, "INVITE".into())));
        assert_eq!(parse_rack("5 INVITE"), None);
        assert_eq!(parse_rack("5 2 INVITE x"), None);
        assert_eq!(parse_rack("-1 2 INVITE"), None);
    }

    #[test]
    fn rseq_must_be_one_higher() {
        let mut o = ReliableOrder::default();
        assert!(o.accept(Some(7)));
        assert!(
            !o.accept(Some(7)),
            "a retransmission is not processed again"
        );
        assert!(!o.accept(Some(9)), "a gap");
        assert!(o.accept(Some(8)));
        assert!(!o.accept(None), "a reliable 1xx without RSeq");
    }

    #[test]
    fn names_100rel_in_lists() {
        assert!(names_100rel(&["timer, 100REL".into()]));
        assert!(!names_100rel(&["timer".into(), "100relx".into()]));
    }
}
