//! Out-of-dialog OPTIONS (RFC 3261 §11): the SIP ping of operations tools (sipsak, pjsua's
//! `--options`), sent the way REGISTER and INVITE go (over the PBX connection on a stream
//! transport, through the outbound proxy when one is configured, RFC 3263 targets in order on
//! UDP) and timed from the first send to the final response.
//!
//! Like `fetch()`: any final response, 2xx or not, is the answer (a 404 or a 401 also proves
//! the server is up); no response in time, or a target that cannot be reached, is an error.
//! Challenges are not answered: the status is what was asked for.

use super::Endpoint;
use crate::context::{OutOfDialogRoute, UaContext};
use crate::error::{Error, Result};
use crate::sip::message::{reason_of, retry_after_of};
use crate::sip::uri::{host_port_unless_default, names_server};
use crate::transport::{failover_timeout, unreachable_reported, Attempt, NextHop, Target};
use rsipstack::sip::{self, Header};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use std::time::{Duration, Instant};

/// The answer to an OPTIONS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsReply {
    /// The final response's status code.
    pub code: u16,
    /// Its reason phrase.
    pub reason: String,
    /// From the first send of the request to its final response (UDP retransmissions included).
    pub rtt: Duration,
}

/// The Request-URI of an OPTIONS to `uri`: a SIP URI as given (checked), `user@host` as
/// `sip:user@host`, a number (digits, `*`, `#`, `+`) at the configured `server`, anything
/// else as a host (`pbx.example`, `10.0.0.1:5070`, `[::1]:5062`): `sip:host`.
pub(crate) fn options_target(
    uri: &str,
    server: Option<&str>,
) -> std::result::Result<String, String> {
    let uri = uri.trim();
    let target = if uri.is_empty() {
        return Err("uri: empty".into());
    } else if uri.starts_with("sip:") || uri.starts_with("sips:") {
        uri.to_string()
    } else if uri.contains('@') {
        format!("sip:{uri}")
    } else if uri
        .bytes()
        .all(|b| b.is_ascii_digit() || b"*#+".contains(&b))
    {
        match server {
            Some(server) => format!("sip:{uri}@{server}"),
            None => {
                return Err(format!(
                    "uri: {uri:?} is a number but no server is configured; use a SIP URI such as sip:host:port"
                ))
            }
        }
    } else {
        format!("sip:{uri}")
    };
    if target.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"') {
        return Err(format!("uri: not a SIP URI: {uri:?}"));
    }
    sip::Uri::try_from(target.as_str())
        .map_err(|e| format!("uri: not a SIP URI: {uri:?} ({e})"))?;
    Ok(target)
}

/// How one try on one target ended.
enum Tried {
    Answered(sip::Response, Duration),
    /// No final response within the limit (or Timer F).
    Silent,
    /// Not sent, or an ICMP error came back: why.
    Unreachable(String),
}

impl Endpoint {
    /// Sends an OPTIONS to `uri` and waits at most `timeout` (default and at most the
    /// transaction's Timer F, 64·T1: 32 s) for the final response, over every target in turn.
    pub async fn options(&self, uri: &str, timeout: Option<Duration>) -> Result<OptionsReply> {
        let ctx = &self.ctx;
        let timeout = timeout.map_or(ctx.config.t1x64(), |t| t.min(ctx.config.t1x64()));
        let target = options_target(uri, ctx.server_hostport().as_deref())
            .map_err(Error::InvalidArgument)?;
        ctx.check_secure_target("uri", &target)?;
        let ruri: sip::Uri = target
            .as_str()
            .try_into()
            .map_err(|e| Error::InvalidArgument(format!("uri: {e}")))?;
        let deadline = Instant::now() + timeout;
        let no_response = || {
            Error::Timeout(format!(
                "OPTIONS {target}: no response within {} ms",
                timeout.as_millis()
            ))
        };
        let route = tokio::time::timeout(timeout, self.options_targets(&ruri, &target))
            .await
            .map_err(|_| no_response())??;
        let t1 = Duration::from_millis(ctx.config.timer_t1_ms);
        let count = route.targets.len();
        // why the last target failed, when it was not silence
        let mut last = None;
        for (i, t) in route.targets.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let limit = failover_timeout(t1, i + 1 < count).map_or(left, |f| f.min(left));
            let from = self.options_from();
            match send(ctx, from, &ruri, t, route.preloaded.as_ref(), limit).await? {
                Tried::Answered(resp, rtt) => {
                    let code = resp.status_code.code();
                    if !Attempt::Response(code).fails_over() || i + 1 == count {
                        ctx.locator.answered(t);
                        return Ok(OptionsReply {
                            code,
                            reason: reason_of(&resp),
                            rtt,
                        });
                    }
                    ctx.locator.failed(t, retry_after_of(&resp));
                }
                Tried::Silent => {
                    ctx.locator.failed(t, None);
                    last = None;
                }
                Tried::Unreachable(why) => {
                    ctx.locator.failed(t, None);
                    last = Some(why);
                }
            }
        }
        Err(match last {
            Some(why) => Error::Transport(format!("OPTIONS {target}: {why}")),
            // silence to the end (Timer F, 64·T1, may end it before `timeout`)
            None => no_response(),
        })
    }

    /// Where the OPTIONS goes, as INVITEs go: the PBX over our connection to it on a stream
    /// transport, a peer on TCP/TLS dialled by us, else the located targets of the URI's
    /// host (or of the outbound proxy, with its Route preloaded).
    async fn options_targets(&self, ruri: &sip::Uri, target: &str) -> Result<OutOfDialogRoute> {
        let ctx = &self.ctx;
        let via_server = ctx.config.server.as_deref().is_some_and(|server| {
            names_server(target, server, ctx.config.server_port.unwrap_or(5060))
        });
        if via_server {
            if let Some(flow) = ctx.flow.as_ref() {
                // waits while the connection is being dialled (right after start())
                let conn = flow
                    .connection()
                    .await
                    .map_err(|why| Error::Transport(format!("OPTIONS {target}: {why}")))?;
                return Ok(OutOfDialogRoute {
                    targets: vec![Target::of_connection(&conn.remote)?],
                    preloaded: ctx.preloaded_route()?,
                });
            }
            return ctx.route(&ctx.server_hop()?).await;
        }
        if ctx.config.outbound_proxy.is_none() {
            if let Some(dialer) = ctx.peers.as_ref() {
                if let Some((host, port)) = dialer.target_of(ruri) {
                    let remote = dialer
                        .connect(&host, port, &ctx.sip)
                        .await
                        .map_err(|why| Error::Transport(format!("OPTIONS {target}: {why}")))?;
                    return Ok(OutOfDialogRoute {
                        targets: vec![Target::of_connection(&remote)?],
                        preloaded: None,
                    });
                }
            }
        }
        ctx.route(&NextHop::of_uri(ruri)).await
    }

    /// The identity of the request: the first account's address of record, else a user
    /// named `sip-native` at our address.
    fn options_from(&self) -> (String, Option<String>, String) {
        match self.accounts.list().first() {
            Some(acc) => (
                acc.config.extension.clone(),
                acc.config.display_name.clone(),
                acc.aor.clone(),
            ),
            None => {
                let public = self.ctx.addressing.public();
                let host = host_port_unless_default(&public.ip().to_string(), public.port());
                ("sip-native".into(), None, format!("sip:sip-native@{host}"))
            }
        }
    }
}

/// One OPTIONS transaction to `target`: the final response and its round trip, or why none
/// came within `limit` (silence, an ICMP error, a send that failed).
async fn send(
    ctx: &UaContext,
    (user, display_name, aor): (String, Option<String>, String),
    ruri: &sip::Uri,
    target: &Target,
    route: Option<&sip::typed::Route>,
    limit: Duration,
) -> Result<Tried> {
    let from = sip::typed::From {
        display_name,
        uri: aor.as_str().try_into()?,
        params: vec![sip::Param::Tag(crate::ids::random_token(10).into())],
    };
    let to = sip::typed::To {
        display_name: None,
        uri: ruri.clone(),
        params: vec![],
    };
    let via = ctx.sip.get_via(Some(ctx.via_addr()), None)?;
    let call_id = format!("{}@sip-native", crate::ids::random_token(20));
    let mut request = ctx.sip.make_request(
        sip::Method::Options,
        ruri.clone(),
        via,
        from,
        to,
        1,
        Some(call_id.into()),
    );
    request.headers.push(Header::Contact(
        format!("<{}>", ctx.contact_uri(&user)).into(),
    ));
    request
        .headers
        .push(Header::Accept("application/sdp".into()));
    if let Some(route) = route {
        request.headers.push(Header::Route(route.clone().into()));
    }
    let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
    let mut tx = Transaction::new_client(key, request, ctx.sip.clone(), None);
    tx.destination = Some(target.sip_addr());
    let mut unreachable = ctx.locator.watch_unreachable();
    let sent = Instant::now();
    if let Err(e) = tx.send().await {
        return Ok(Tried::Unreachable(format!(
            "cannot send to {}: {e}",
            target.addr
        )));
    }
    let final_response = crate::sip::message::final_response(&mut tx);
    Ok(tokio::select! {
        resp = tokio::time::timeout(limit, final_response) => match resp {
            Ok(Some(resp)) => Tried::Answered(resp, sent.elapsed()),
            // Timer F (64·T1) before `limit`, or our limit
            Ok(None) | Err(_) => Tried::Silent,
        },
        _ = unreachable_reported(&mut unreachable, target.addr) => Tried::Unreachable(
            format!("cannot reach {}: destination unreachable (ICMP)", target.addr),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_of_what_the_user_typed() {
        let pbx = Some("pbx.example:5070");
        assert_eq!(
            options_target("sip:pbx.example", pbx).unwrap(),
            "sip:pbx.example"
        );
        assert_eq!(
            options_target(" sips:1000@h;transport=tls ", None).unwrap(),
            "sips:1000@h;transport=tls"
        );
        assert_eq!(
            options_target("1000@h:5062", None).unwrap(),
            "sip:1000@h:5062"
        );
        assert_eq!(
            options_target("1000", pbx).unwrap(),
            "sip:1000@pbx.example:5070"
        );
        assert_eq!(
            options_target("*97", pbx).unwrap(),
            "sip:*97@pbx.example:5070"
        );
        assert_eq!(
            options_target("10.0.0.1:5070", None).unwrap(),
            "sip:10.0.0.1:5070"
        );
        assert_eq!(
            options_target("[::1]:5062", None).unwrap(),
            "sip:[::1]:5062"
        );
        assert_eq!(
            options_target("pbx.example", None).unwrap(),
            "sip:pbx.example"
        );
    }

    #[test]
    fn bad_uris_name_the_field() {
        for bad in ["", "   ", "a b", "sip:", "<sip:h>", "sip:h\"x"] {
            let e = options_target(bad, Some("pbx")).unwrap_err();
            assert!(e.starts_with("uri: "), "{bad:?}: {e}");
        }
        let e = options_target("1000", None).unwrap_err();
        assert!(e.contains("no server is configured"), "{e}");
    }
}
