//! SIP over WebSocket (RFC 7118) on a connection we dialled (plain, or TLS for `wss://`): the
//! opening handshake with the `sip` subprotocol, then one SIP message per WebSocket message,
//! handed to the stack as a channel connection like the byte streams of [`super::stream`].
//!
//! rsipstack's own client has no TLS for `wss://`, resolves the host first (so Host and SNI
//! would carry the IP) and never pings; here Host and SNI carry the host of the URL, and the
//! keep-alive is a WebSocket ping answered by a pong. Messages go through the same admission
//! and `maxMessageSize` as on the other transports ([`super::admission`], 513 then close 1009).

use super::admission::{Admission, Screened};
use super::framing::too_large_for;
use super::keepalive::{KeepAlive, KeepAliveAction};
use super::stream::{hand_to_stack, register, Io, StackLink, StreamFlow, StreamSetup};
use crate::sip::conformance;
use crate::sip::guard::{bad_request_for, parse_checked, reply_for};
use crate::sip::normalize::normalize;
use crate::sip::trace::{self, Direction};
use futures_util::{SinkExt, StreamExt};
use rsipstack::transport::connection::TransportEvent;
use rsipstack::transport::TransportLayer;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

/// A WebSocket over one of our connections.
pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

/// The library's limits for messages of at most `max_message` bytes. Twice the limit, so that
/// a message just over it is still read and can be answered `513`; beyond, the library stops
/// reading it (memory stays bounded) and the connection closes with 1009.
fn limits(max_message: usize) -> WebSocketConfig {
    let read_at_most = Some(max_message.saturating_mul(2));
    WebSocketConfig::default()
        .max_message_size(read_at_most)
        .max_frame_size(read_at_most)
}

/// Runs the opening handshake for `url` (whose host goes into Host) on `io`, for SIP messages
/// of at most `max_message` bytes.
pub(crate) async fn handshake(
    io: Box<dyn Io>,
    url: &str,
    timeout: Duration,
    max_message: usize,
) -> Result<Ws, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("WebSocket URL {url:?}: {e}"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    match tokio::time::timeout(
        timeout,
        tokio_tungstenite::client_async_with_config(request, io, Some(limits(max_message))),
    )
    .await
    {
        Ok(Ok((ws, response))) => {
            let agreed = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("sip"));
            if !agreed {
                // RFC 7118 §4.1: a server that did not select `sip` does not speak SIP here.
                return Err(format!(
                    "WebSocket handshake with {url}: the server did not accept the sip subprotocol"
                ));
            }
            Ok(ws)
        }
        Ok(Err(e)) => Err(format!("WebSocket handshake with {url} failed: {e}")),
        Err(_) => Err(format!(
            "WebSocket handshake with {url} failed: timed out after {} ms",
            timeout.as_millis()
        )),
    }
}

/// Registers a WebSocket connection with the stack and spawns the task that runs it.
pub(crate) async fn spawn_ws(
    ws: Ws,
    setup: StreamSetup,
    layer: &TransportLayer,
) -> rsipstack::Result<Arc<StreamFlow>> {
    let (flow, link) = register(&setup, layer).await?;
    tokio::spawn(run(ws, setup, flow.clone(), link).in_current_span());
    Ok(flow)
}

async fn run(mut ws: Ws, setup: StreamSetup, flow: Arc<StreamFlow>, link: StackLink) {
    let StackLink {
        to_stack,
        mut from_stack,
        open,
    } = link;
    let mut keepalive = setup.keepalive.map(|i| KeepAlive::new(i, Instant::now()));
    let why = loop {
        let ka_wait = match keepalive.as_mut().map(|k| k.poll(Instant::now())) {
            Some(KeepAliveAction::SendPing) => {
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    break format!("write failed: {e}");
                }
                continue;
            }
            Some(KeepAliveAction::Dead) => break "no keep-alive pong".to_string(),
            Some(KeepAliveAction::WaitUntil(at)) => at,
            None => Instant::now() + Duration::from_secs(3600),
        };
        tokio::select! {
            _ = flow.closed.cancelled() => break flow.reason(),
            _ = tokio::time::sleep_until(ka_wait) => {}
            out = from_stack.recv() => {
                let Some(TransportEvent::Incoming(msg, ..)) = out else { continue };
                // RFC 7118 §5: text frames for SIP that is valid UTF-8, binary otherwise.
                let bytes = msg.to_bytes();
                trace::message(Direction::Sent, setup.transport, setup.remote, &bytes);
                let frame = match String::from_utf8(bytes) {
                    Ok(text) => Message::text(text),
                    Err(e) => Message::binary(e.into_bytes()),
                };
                if let Err(e) = ws.send(frame).await {
                    break format!("write failed: {e}");
                }
            }
            read = ws.next() => {
                let bytes = match read {
                    None | Some(Ok(Message::Close(_))) => break "closed by the peer".to_string(),
                    Some(Err(WsError::Capacity(e @ CapacityError::MessageTooLong { .. }))) => {
                        setup.counters.oversized.fetch_add(1, Ordering::Relaxed);
                        break close_too_big(&mut ws, &e.to_string()).await;
                    }
                    Some(Err(e)) => break format!("read failed: {e}"),
                    Some(Ok(Message::Pong(_))) => {
                        if let Some(k) = keepalive.as_mut() {
                            k.on_pong();
                        }
                        continue;
                    }
                    // Pings are answered by the library on the next write or read.
                    Some(Ok(Message::Ping(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                };
                if let Err(why) = deliver(&bytes, &mut ws, &flow, &setup, &to_stack).await {
                    break why;
                }
            }
        }
    };
    tracing::info!(peer = %flow.remote, reason = %why, "SIP WebSocket connection closed");
    flow.close(&why);
    let _ = ws.close(None).await;
    drop(to_stack);
    drop(open);
}

/// Sends our answer to a message the guard refused, traced like every message we send.
async fn answer(ws: &mut Ws, setup: &StreamSetup, reply: String) -> Result<(), String> {
    trace::message(
        Direction::Sent,
        setup.transport,
        setup.remote,
        reply.as_bytes(),
    );
    ws.send(Message::text(reply))
        .await
        .map_err(|e| format!("write failed: {e}"))
}

/// Closes with 1009 (RFC 6455 §7.4.1: a message too big to process); the reason to log.
async fn close_too_big(ws: &mut Ws, why: &str) -> String {
    let frame = CloseFrame {
        code: CloseCode::Size,
        reason: "message over maxMessageSize".into(),
    };
    let _ = ws.close(Some(frame)).await;
    format!("message over maxMessageSize: {why}")
}

/// One WebSocket message: a whole SIP message (its boundary is the frame's), or a CRLF
/// keep-alive some servers send inside a message.
async fn deliver(
    bytes: &[u8],
    ws: &mut Ws,
    flow: &StreamFlow,
    setup: &StreamSetup,
    to_stack: &tokio::sync::mpsc::UnboundedSender<TransportEvent>,
) -> Result<(), String> {
    if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
        if bytes == b"\r\n\r\n" {
            ws.send(Message::text("\r\n"))
                .await
                .map_err(|e| format!("write failed: {e}"))?;
        }
        return Ok(());
    }
    if bytes.len() > setup.inbound.max_message {
        setup.counters.oversized.fetch_add(1, Ordering::Relaxed);
        if let Some(reply) = too_large_for(bytes) {
            answer(ws, setup, reply).await?;
        }
        return Err(close_too_big(ws, &format!("{} bytes", bytes.len())).await);
    }
    // the RFC 3261 §8.2 refusals, as on UDP and TCP
    if let Some(refusal) = conformance::check(bytes) {
        setup.counters.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(reply) = reply_for(bytes, &refusal) {
            answer(ws, setup, reply).await?;
        }
        return Ok(());
    }
    // what rsipstack cannot read, rewritten as on UDP and TCP (the body untouched)
    let rewritten = normalize(bytes);
    let bytes = rewritten.as_deref().unwrap_or(bytes);
    match parse_checked(bytes) {
        Ok(msg) => match setup
            .inbound
            .admission
            .screen(bytes, setup.remote, &setup.counters)
        {
            Screened::Pass => hand_to_stack(msg, flow, setup, to_stack),
            // statelessly, untraced, as on UDP
            Screened::Forbidden(forbidden) => {
                ws.send(Message::text(forbidden))
                    .await
                    .map_err(|e| format!("write failed: {e}"))?;
                Admission::forbidden_sent(&setup.counters, setup.remote);
                Ok(())
            }
            Screened::Dropped => Ok(()),
        },
        Err(why) => {
            setup.counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %flow.remote, reason = why, "dropped malformed SIP message");
            if let Some(reply) = bad_request_for(bytes, why) {
                answer(ws, setup, reply).await?;
                setup
                    .counters
                    .bad_request_sent
                    .fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    }
}
