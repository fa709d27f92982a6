//! Outgoing calls: checking what the user dialled, the INVITE with our offer, the digest
//! challenge loop, provisional responses, CANCEL (by `hangup()` or `inviteTimeoutMs`) and
//! giving up on a peer that answers nothing (RFC 3261 §9.1), then the confirmed call.

use super::in_dialog::watch_confirmed;
use super::redirect::{contacts_by_q, Redirects};
use super::reliable::ReliableOrder;
use super::session_timer::{min_se_of, raised};
use super::state::Input;
use super::{send_bye, Call};
use crate::account::{Account, AccountTable};
use crate::config::{PrackMode, SessionTimerMode};
use crate::context::{OutOfDialogRoute, UaContext};
use crate::error::{Error, Result};
use crate::event::{CallState, Direction, Event};
use crate::media::MediaDirection;
use crate::sdp;
use crate::sip::auth::{is_challenge, Authenticator, ChallengeLoop};
use crate::sip::message::header_values;
use crate::sip::message::{extra_headers, reason_of, retry_after_of};
use crate::sip::uri::{dialled_target, host_port_unless_default, names_server, user_part};
use crate::transport::{failover_timeout, unreachable_reported, NextHop, Target};
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::Header;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// Who places the call: the account's identity, or a bare user name without accounts.
struct Caller {
    /// The account placing the call (none: peer-to-peer use without accounts).
    account: Option<Arc<Account>>,
    user: String,
    display_name: Option<String>,
    aor: String,
    auth: Option<Authenticator>,
}

fn caller(ctx: &UaContext, accounts: &AccountTable, from: &str) -> Result<Caller> {
    if let Some(acc) = accounts.find(from) {
        return Ok(Caller {
            user: acc.config.extension.clone(),
            display_name: acc.config.display_name.clone(),
            aor: acc.aor.clone(),
            auth: Some(Authenticator::new(
                acc.config.auth_username(),
                &acc.config.password,
            )),
            account: Some(acc),
        });
    }
    if ctx.config.server.is_none() && !from.trim().is_empty() && !from.contains(char::is_whitespace)
    {
        // Peer-to-peer use without accounts: `from` is just our user name.
        let user = user_part(from).to_string();
        let public = ctx.addressing.public();
        let host = host_port_unless_default(&public.ip().to_string(), 5060);
        return Ok(Caller {
            account: None,
            aor: format!("sip:{user}@{host}"),
            user,
            display_name: None,
            auth: None,
        });
    }
    Err(Error::InvalidArgument(format!(
        "from: no account with extension, username or URI {from:?}"
    )))
}

/// Where an INVITE to `target` goes, and whether that is the PBX. Numbers and URIs of the
/// PBX's own domain go to the PBX; a SIP URI naming another host goes where it says (as pjsua
/// does without a proxy), both through the outbound proxy when there is one.
async fn route_to(
    ctx: &UaContext,
    target: &str,
    callee: &rsipstack::sip::Uri,
) -> Result<(OutOfDialogRoute, bool)> {
    let via_server =
        ctx.config.server.as_deref().is_some_and(|server| {
            names_server(target, server, ctx.config.server_port.unwrap_or(5060))
        });
    let hop = if via_server {
        ctx.server_hop()?
    } else {
        NextHop::of_uri(callee)
    };
    // On a stream transport the PBX is reached over our connection to it (the flow
    // reconnects; the stack must not dial on its own), so that is the one target.
    let route = match ctx.pbx_flow_target().filter(|_| via_server) {
        Some(target) => OutOfDialogRoute {
            targets: vec![target?],
            preloaded: ctx.preloaded_route()?,
        },
        None => ctx.route(&hop).await?,
    };
    Ok((route, via_server))
}

/// Prepares an outgoing call from the account `from` to `to`: the call, and the task that
/// sends the INVITE and follows the call to its end (the caller spawns it). The next hop is
/// located first (RFC 3263), so a name that does not resolve fails the call here.
pub(crate) async fn place(
    ctx: &Arc<UaContext>,
    accounts: &AccountTable,
    from: &str,
    to: &str,
    headers: Vec<(String, String)>,
    follow_redirects: Option<bool>,
) -> Result<(Arc<Call>, impl Future<Output = ()> + Send + 'static)> {
    let target =
        dialled_target(to, ctx.server_hostport().as_deref()).map_err(Error::InvalidArgument)?;
    ctx.check_secure_target("to", &target)?;
    let caller = caller(ctx, accounts, from)?;
    let mut headers = extra_headers("headers", headers)?;
    if ctx.config.prack == PrackMode::Required {
        headers.push(Header::Require("100rel".into()));
    }
    let callee: rsipstack::sip::Uri = target
        .as_str()
        .try_into()
        .map_err(|e| Error::InvalidArgument(format!("to: {e}")))?;
    let (route, via_server) = route_to(ctx, &target, &callee).await?;
    let slot = accounts
        .call_limits
        .claim(caller.account.as_ref())
        .map_err(|hit| Error::CallLimit(format!("makeCall: {}", hit.describe())))?;
    let ports = super::media::reserve_ports(ctx).await?;
    let sip_call_id = format!("{}@sip-native", crate::ids::random_token(20));
    let call = Call::new(
        ctx,
        Direction::Outgoing,
        sip_call_id.clone(),
        caller.aor.clone(),
        target.clone(),
        ports,
        slot,
    );
    ctx.signalling.call_attempted(Direction::Outgoing);
    headers.extend(call.session_timer_invite_headers());
    let offer = call.media.offer(ctx, MediaDirection::SendRecv);
    let option = InviteOption {
        caller_display_name: caller.display_name,
        caller: caller
            .aor
            .as_str()
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("from: {e}")))?,
        callee,
        // Set per target by `run`.
        destination: None,
        route_set: route.preloaded.into_iter().collect(),
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        contact: ctx
            .contact_uri(&caller.user)
            .as_str()
            .try_into()
            .map_err(|e| Error::Sip(format!("contact: {e}")))?,
        credential: None,
        headers: Some(headers),
        call_id: Some(sip_call_id),
        // `Supported: 100rel`; the stack PRACKs every reliable 1xx (RFC 3262 §4).
        support_prack: ctx.config.prack != PrackMode::Off,
        ..Default::default()
    };
    ctx.emit(Event::CallState {
        call_id: call.id.clone(),
        state: CallState::Calling,
        direction: Direction::Outgoing,
        code: 0,
        reason: String::new(),
        reason_header: None,
    });
    // A stream target other than the PBX: we dial it (the stack's own dial has no timeout
    // and, for TLS, no trusted roots).
    let peer = match (&ctx.peers, via_server) {
        (Some(dialer), false) => dialer.target_of(&option.callee),
        _ => None,
    };
    let task = {
        let call = call.clone();
        async move {
            let mut targets = route.targets;
            if let (Some((host, port)), Some(dialer)) = (peer, call.ctx.peers.as_ref()) {
                let dialled = match dialer.connect(&host, port, &call.ctx.sip).await {
                    Ok(addr) => Target::of_connection(&addr).map_err(|e| e.to_string()),
                    Err(why) => Err(why),
                };
                match dialled {
                    Ok(target) => targets = vec![target],
                    Err(why) => {
                        call.end(503, &why);
                        call.ctx.remote_targets.forget(&call.sip_call_id);
                        return;
                    }
                }
            }
            let follow = follow_redirects.unwrap_or(call.ctx.config.follow_redirects);
            let redirects = follow.then(|| Redirects::new(&target, call.ctx.config.max_redirects));
            run(call.clone(), option, caller.auth, targets, redirects).await;
            // Only now: a BYE sent after the call ended still needs the peer's Contact, and
            // the CANCEL that ended it its headers.
            call.ctx.remote_targets.forget(&call.sip_call_id);
            call.ctx.hangup_headers.forget(&call.sip_call_id);
        }
    };
    Ok((call, task))
}

/// How one INVITE try ended.
enum Tried {
    /// The call was answered; follow it (the dialog's state channel comes along).
    Answered(rsipstack::dialog::dialog::DialogStateReceiver),
    /// A 401/407 to answer with credentials.
    Challenged(rsipstack::sip::Response),
    /// A 422 (RFC 4028): the peer's Min-SE is above our Session-Expires.
    TooBrief(rsipstack::sip::Response),
    /// This target failed (no answer in time, unreachable, 503 with its Retry-After) and
    /// another is left: the call goes on there.
    Failed(Option<Duration>),
    /// A final response that ends this target: a 3xx to follow, or a failure that ends the
    /// call unless a redirect Contact is left.
    Final(rsipstack::sip::Response),
    /// The call is over (ended here).
    Over,
}

/// The call's INVITEs: to the dialled target, then, when it redirects (3xx) and `redirects`
/// allows, to its Contacts in q order, each a new INVITE with the same Call-ID (RFC 3261
/// §8.1.3.4) and a `redirect` event. A redirected target that fails hands over to the next
/// Contact left. The invite timeout runs over all of them.
async fn run(
    call: Arc<Call>,
    mut option: InviteOption,
    mut auth: Option<Authenticator>,
    mut targets: Vec<Target>,
    mut redirects: Option<Redirects>,
) {
    let deadline = Instant::now() + Duration::from_millis(call.ctx.config.invite_timeout_ms);
    let mut timed_out = false;
    loop {
        let resp = match try_targets(
            &call,
            &option,
            &mut auth,
            &targets,
            deadline,
            &mut timed_out,
        )
        .await
        {
            Some(resp) => resp,
            None => return,
        };
        let code = resp.status_code.code();
        let stopped = call.hangup_requested.load(Ordering::SeqCst) || timed_out;
        let next = match (&mut redirects, (300..400).contains(&code)) {
            (_, _) if stopped => return call.end(code, &reason_of(&resp)),
            (Some(r), true) => {
                let contacts = contacts_by_q(&header_values(&resp.headers, "Contact"));
                r.on_redirect(&contacts).map_err(|stop| stop.reason())
            }
            (Some(r), false) => r.on_failure().ok_or_else(|| reason_of(&resp)),
            (None, true) => Err(format!(
                "{} (redirected to {}; followRedirects is off)",
                reason_of(&resp),
                header_values(&resp.headers, "Contact").join(", ")
            )),
            (None, false) => Err(reason_of(&resp)),
        };
        let (uri, hop) = match next {
            Ok(next) => next,
            Err(reason) => return call.end(code, &reason),
        };
        tracing::info!(call_id = %call.id, code, target = %uri, hop, "following the redirect");
        call.ctx.emit(Event::Redirect {
            call_id: call.id.clone(),
            code,
            target: uri.clone(),
            hop,
        });
        match redirected(&call.ctx, &uri).await {
            Ok((callee, route)) => {
                option.callee = callee;
                option.route_set = route.preloaded.into_iter().collect();
                targets = route.targets;
            }
            Err(e) => return call.end(code, &format!("redirect to {uri}: {e}")),
        }
    }
}

/// The Request-URI and route of a redirect target (checked as a dialled SIP URI).
async fn redirected(ctx: &UaContext, uri: &str) -> Result<(rsipstack::sip::Uri, OutOfDialogRoute)> {
    ctx.check_secure_target("Contact", uri)?;
    let callee: rsipstack::sip::Uri = uri
        .try_into()
        .map_err(|e| Error::InvalidArgument(format!("Contact: {e}")))?;
    let (route, _) = route_to(ctx, uri, &callee).await?;
    Ok((callee, route))
}

/// The INVITE to one Request-URI over its targets in order (RFC 3263 §4.3): a target that
/// times out, cannot be reached or answers 503 gets a new INVITE transaction on the next one
/// (same Call-ID, a new From tag and CSeq: rsipstack's dialog layer makes each INVITE its own
/// early dialog), unless the call was cancelled meanwhile. Challenges are answered on the
/// target that sent them. `Some(final response)` when it ends in a 3xx-6xx for `run` to judge;
/// `None` when the call was answered and is over, or ended here.
async fn try_targets(
    call: &Arc<Call>,
    option: &InviteOption,
    auth: &mut Option<Authenticator>,
    targets: &[Target],
    deadline: Instant,
    timed_out: &mut bool,
) -> Option<rsipstack::sip::Response> {
    let t1 = Duration::from_millis(call.ctx.config.timer_t1_ms);
    let mut base_headers = option.headers.clone().unwrap_or_default();
    let mut session_expires = call.ctx.config.session_expires_sec;
    let uri = option.callee.to_string();
    let count = targets.len();
    for (i, target) in targets.iter().enumerate() {
        let mut option = InviteOption {
            destination: Some(target.sip_addr()),
            ..option.clone()
        };
        let attempt = Attempt {
            deadline,
            failover: failover_timeout(t1, i + 1 < count),
            target,
        };
        let mut challenges = ChallengeLoop::new(auth.as_mut(), "INVITE", &uri);
        loop {
            let resp = match try_invite(call, option.clone(), &attempt, timed_out).await {
                Tried::Answered(state_rx) => {
                    call.ctx.locator.answered(target);
                    watch_confirmed(call, state_rx).await;
                    return None;
                }
                Tried::Over => return None,
                Tried::Final(resp) => return Some(resp),
                Tried::Failed(retry_after) => {
                    call.ctx.locator.failed(target, retry_after);
                    break;
                }
                Tried::Challenged(resp) => resp,
                Tried::TooBrief(resp) => {
                    // A new INVITE at the peer's Min-SE (RFC 4028 §7.4), once per raise: a
                    // peer asking again for no more than we sent ends the call.
                    match min_se_of(&resp.headers).filter(|&m| m > session_expires) {
                        Some(min_se) => {
                            session_expires = min_se;
                            base_headers = raised(&base_headers, min_se);
                            let sent = option.headers.take().unwrap_or_default();
                            option.headers = Some(raised(&sent, min_se));
                            continue;
                        }
                        None => {
                            call.end(422, &reason_of(&resp));
                            return None;
                        }
                    }
                }
            };
            match challenges.answer(&resp) {
                Ok(header) => {
                    let mut headers = base_headers.clone();
                    headers.push(header);
                    option.headers = Some(headers);
                }
                Err(refused) => {
                    call.end(refused.code, &refused.reason);
                    return None;
                }
            }
        }
    }
    None
}

/// What one INVITE try may do.
struct Attempt<'a> {
    /// When the call is cancelled for want of an answer (`inviteTimeoutMs`).
    deadline: Instant,
    /// Set when another target is left: how long this one may stay silent.
    failover: Option<Duration>,
    target: &'a Target,
}

/// One INVITE (a new dialog: a retry after a challenge gets its own). Sends the CANCEL when
/// asked to or at the deadline, and gives the INVITE up 64·T1 after it. With a failover
/// timeout (another target is left), a target silent for that long, or failing, is given up
/// for the next one; an ICMP error for the target ends the try at once.
async fn try_invite(
    call: &Arc<Call>,
    option: InviteOption,
    attempt: &Attempt<'_>,
    timed_out: &mut bool,
) -> Tried {
    let (deadline, failover) = (attempt.deadline, attempt.failover);
    let mut unreachable = call.ctx.locator.watch_unreachable();
    let (state_tx, mut state_rx) = call.ctx.dialogs.new_dialog_state_channel();
    let (dialog, mut handle) = match call.ctx.dialogs.do_invite_async(option, state_tx) {
        Ok(v) => v,
        Err(e) => {
            call.end(500, &format!("cannot send INVITE: {e}"));
            return Tried::Over;
        }
    };
    call.set_dialog(&dialog);
    // Set once we sent a CANCEL: the INVITE is given up 64·T1 later if no final response came.
    let mut give_up: Option<Instant> = None;
    // Cleared by the first response: a target that answers is alive and gets the full timers.
    let mut silent_until = failover.map(|f| Instant::now() + f);
    let mut reliable = ReliableOrder::default();
    let result = loop {
        tokio::select! {
            r = &mut handle => break Some(r),
            Some(st) = state_rx.recv() => {
                match st {
                    DialogState::Trying(_) => silent_until = None,
                    DialogState::Early(_, resp) => {
                        silent_until = None;
                        if !reliable.in_order(&resp) {
                            tracing::info!(call_id = %call.id, "reliable 1xx out of RSeq order; ignored (RFC 3262 §4)");
                            continue;
                        }
                        early_media(call, &resp);
                        let code = resp.status_code.code();
                        call.apply(Input::Provisional(code), code, &reason_of(&resp));
                    }
                    _ => {}
                }
            }
            _ = sleep_until_some(silent_until), if give_up.is_none() => {
                // Dropping the INVITE task ends its transaction (a late answer is CANCELed
                // or, for a 2xx, ACKed and BYE'd by the stack).
                handle.abort();
                tracing::info!(call_id = %call.id, "no response from this target; trying the next");
                return Tried::Failed(None);
            }
            _ = unreachable_reported(&mut unreachable, attempt.target.addr), if give_up.is_none() => {
                handle.abort();
                if failover.is_some() && !call.hangup_requested.load(Ordering::SeqCst) {
                    return Tried::Failed(None);
                }
                call.end(
                    503,
                    &format!("Service Unavailable ({} is unreachable)", attempt.target.addr),
                );
                return Tried::Over;
            }
            _ = call.cancel_requested.notified(), if give_up.is_none() => {
                give_up = Some(send_cancel(&dialog, call));
            }
            _ = tokio::time::sleep_until(deadline), if give_up.is_none() && !*timed_out => {
                *timed_out = true;
                give_up = Some(send_cancel(&dialog, call));
            }
            _ = sleep_until_some(give_up) => break None,
            _ = call.teardown.cancelled() => break None,
        }
    };
    let Some(result) = result else {
        // Dropping the INVITE task ends its transaction and the early dialog.
        handle.abort();
        call.end(
            if *timed_out { 408 } else { 487 },
            if *timed_out {
                "Request Timeout (no answer, and no final response after CANCEL)"
            } else {
                "Request Terminated (no final response after CANCEL)"
            },
        );
        return Tried::Over;
    };
    let cancelled = give_up.is_some();
    let may_fail_over =
        failover.is_some() && !cancelled && !call.hangup_requested.load(Ordering::SeqCst);
    let resp = match result {
        Ok(Ok((_, Some(resp)))) if may_fail_over && resp.status_code.code() == 503 => {
            return Tried::Failed(retry_after_of(&resp));
        }
        Ok(Ok((_, None))) | Ok(Err(_)) if may_fail_over => return Tried::Failed(None),
        Ok(Ok((_, Some(resp)))) => resp,
        Ok(Ok((_, None))) if cancelled && !*timed_out => {
            call.end(487, "Request Terminated (no response to the INVITE)");
            return Tried::Over;
        }
        Ok(Ok((_, None))) => {
            call.end(408, "Request Timeout");
            return Tried::Over;
        }
        Ok(Err(e)) => {
            let text = e.to_string();
            let code = if text.to_ascii_lowercase().contains("timeout") {
                408
            } else {
                500
            };
            call.end(code, &text);
            return Tried::Over;
        }
        Err(e) => {
            call.end(500, &format!("INVITE task failed: {e}"));
            return Tried::Over;
        }
    };
    let code = resp.status_code.code();
    if (200..300).contains(&code) {
        return answered(call, &dialog, &resp, cancelled, *timed_out, state_rx).await;
    }
    let may_retry = !cancelled && !call.hangup_requested.load(Ordering::SeqCst);
    if is_challenge(&resp) && may_retry {
        return Tried::Challenged(resp);
    }
    if code == 422 && may_retry && call.ctx.config.session_timers != SessionTimerMode::Off {
        return Tried::TooBrief(resp);
    }
    if *timed_out && code == 487 {
        call.end(408, "Request Timeout (no answer)");
        return Tried::Over;
    }
    Tried::Final(resp)
}

/// A 2xx to our INVITE: the call is confirmed with its media, unless we had cancelled (the
/// stack ACKs a 2xx that crossed our CANCEL and sends BYE, RFC 3261 §9.1) or the answer has
/// no usable SDP (488, and BYE).
async fn answered(
    call: &Arc<Call>,
    dialog: &InviteDialog,
    resp: &rsipstack::sip::Response,
    cancelled: bool,
    timed_out: bool,
    state_rx: rsipstack::dialog::dialog::DialogStateReceiver,
) -> Tried {
    if cancelled {
        if timed_out {
            call.end(408, "Request Timeout (no answer; the late 2xx got a BYE)");
        } else {
            call.end(
                487,
                "Request Terminated (the 2xx that crossed our CANCEL got a BYE)",
            );
        }
        return Tried::Over;
    }
    // With early media running, the 2xx confirms that session: without SDP as it is, with
    // SDP (the same or a new answer) the session follows it.
    let outcome = match call.media.session() {
        Some(_) if resp.body.is_empty() => Ok(()),
        Some(_) => call.media.follow_answer(&resp.body),
        None => sdp::parse(&String::from_utf8_lossy(&resp.body))
            .and_then(|a| sdp::negotiate(&a, call.ctx.config.srtp))
            .map(|negotiated| call.media.start(&call.ctx, &call.id, &negotiated)),
    };
    match outcome {
        Ok(()) => {}
        Err(e) => {
            call.end(
                488,
                &format!("Not Acceptable Here: unusable SDP answer ({e})"),
            );
            send_bye(dialog.clone(), Vec::new(), call.id.clone()).await;
            return Tried::Over;
        }
    }
    call.session_timer_answered(&dialog.initial_request(), resp);
    let code = resp.status_code.code();
    call.apply(Input::Answered, code, &reason_of(resp));
    Tried::Answered(state_rx)
}

/// A 180/183 with an SDP answer starts the media before the call is answered (early media:
/// ringback, announcements), both ways. A later 1xx or the 2xx with another SDP is followed.
/// An SDP we cannot use leaves the call without early media; the 2xx decides.
fn early_media(call: &Call, resp: &rsipstack::sip::Response) {
    if resp.body.is_empty() {
        return;
    }
    if call.media.session().is_some() {
        let _ = call.media.follow_answer(&resp.body);
        return;
    }
    match sdp::parse(&String::from_utf8_lossy(&resp.body))
        .and_then(|a| sdp::negotiate(&a, call.ctx.config.srtp))
    {
        Ok(negotiated) => {
            tracing::info!(call_id = %call.id, code = resp.status_code.code(), "early media");
            call.media.start(&call.ctx, &call.id, &negotiated);
        }
        Err(e) => {
            tracing::info!(call_id = %call.id, error = %e, "unusable SDP in a 1xx; no early media")
        }
    }
}

/// Sends our CANCEL in the background (its own transaction may time out: RFC 3261 §9.1 ends
/// the call by the INVITE's side) and returns when to give up on the INVITE: 64·T1 from now.
fn send_cancel(dialog: &InviteDialog, call: &Call) -> Instant {
    let d = dialog.clone();
    let call_id = call.id.clone();
    tokio::spawn(
        async move {
            if let Err(e) = d.cancel().await {
                tracing::info!(call_id = %call_id, error = %e, "CANCEL failed or not answered");
            }
        }
        .in_current_span(),
    );
    Instant::now() + call.ctx.config.t1x64()
}

/// Sleeps until `at`, or forever when it is `None` (a disabled `select!` timer).
pub(super) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
