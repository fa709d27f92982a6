//! One SIP stream connection (TCP or TLS) read and written by our own task and handed to
//! rsipstack as a [`ChannelConnection`].
//!
//! rsipstack's own stream connections frame with its codec (see [`super::framing`] for why we
//! do not want that) and take only a raw `TcpStream`; its channel connection instead carries
//! whole parsed messages both ways, so the bytes stay ours: we frame, answer keep-alives and
//! bad messages, ping, and write what the stack sends. The stack caches the connection under
//! the peer's `SipAddr { transport, ip, port }`, so its `lookup` for that peer reuses it, and
//! requests the peer sends on it get their responses on it too.

use super::admission::{Admission, Screened};
use super::counters::{OpenStream, TransportCounters};
use super::framing::{Frame, Framer};
use super::keepalive::{KeepAlive, KeepAliveAction};
use crate::sip::trace::{self, Direction};
use rsipstack::sip::{SipMessage, Transport};
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::connection::TransportEvent;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A byte stream a SIP connection runs on (a TCP socket, a TLS session over one).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A running stream connection.
pub(crate) struct StreamFlow {
    /// What the SIP stack sends on and receives from.
    pub conn: ChannelConnection,
    /// The peer as the stack knows it (transport, IP, port).
    pub remote: SipAddr,
    /// Our end of the connection.
    pub local: SocketAddr,
    /// Cancelled when the connection has ended, whoever ended it.
    pub closed: CancellationToken,
    reason: Mutex<String>,
}

impl StreamFlow {
    /// Why the connection ended (empty while it is up).
    pub(crate) fn reason(&self) -> String {
        self.reason.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Ends the connection; the task closes the socket.
    pub(crate) fn close(&self, why: &str) {
        self.set_reason(why);
        self.closed.cancel();
    }

    fn set_reason(&self, why: &str) {
        if let Ok(mut r) = self.reason.lock() {
            if r.is_empty() {
                *r = why.to_string();
            }
        }
    }
}

/// What the endpoint checks every peer's messages against, whatever the transport: the
/// same admission as the UDP socket's (so the PBX's addresses and the buckets are shared).
#[derive(Clone)]
pub(crate) struct Inbound {
    /// Who may open dialogs, and how fast unknown sources may send.
    pub admission: Arc<Admission>,
    /// `maxMessageSize`: the largest message (header block and body) accepted.
    pub max_message: usize,
}

/// What a connection needs besides its socket.
pub(crate) struct StreamSetup {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// CRLF ping interval; `None`: no pings (the peer's flows, which the peer keeps alive).
    pub keepalive: Option<Duration>,
    pub counters: Arc<TransportCounters>,
    pub inbound: Inbound,
    /// The endpoint's token: stopping the endpoint ends every connection.
    pub cancel: CancellationToken,
}

/// The channels between a connection task and the stack, and the connection's place in the
/// counters: the task holds it until it ends.
pub(crate) struct StackLink {
    pub to_stack: mpsc::UnboundedSender<TransportEvent>,
    pub from_stack: mpsc::UnboundedReceiver<TransportEvent>,
    pub open: OpenStream,
}

/// Registers a connection with the stack: its lookup for the peer finds it from now on.
pub(crate) async fn register(
    setup: &StreamSetup,
    layer: &TransportLayer,
) -> rsipstack::Result<(Arc<StreamFlow>, StackLink)> {
    let remote = SipAddr {
        r#type: Some(setup.transport),
        addr: setup.remote.into(),
    };
    let (to_stack, from_us) = mpsc::unbounded_channel();
    let (to_us, from_stack) = mpsc::unbounded_channel();
    // The stack cancels this token when it retires the connection (its serve loop ended).
    let closed = setup.cancel.child_token();
    let conn =
        ChannelConnection::create_connection(from_us, to_us, remote.clone(), Some(closed.clone()))
            .await?;
    let flow = Arc::new(StreamFlow {
        conn: conn.clone(),
        remote,
        local: setup.local,
        closed,
        reason: Mutex::new(String::new()),
    });
    layer.add_connection(SipConnection::Channel(conn));
    Ok((
        flow,
        StackLink {
            to_stack,
            from_stack,
            open: OpenStream::new(&setup.counters),
        },
    ))
}

/// Registers a byte-stream connection with the stack and spawns the task that runs it.
pub(crate) async fn spawn_stream(
    io: Box<dyn Io>,
    setup: StreamSetup,
    layer: &TransportLayer,
) -> rsipstack::Result<Arc<StreamFlow>> {
    let (flow, link) = register(&setup, layer).await?;
    tokio::spawn(run(io, setup, flow.clone(), link).in_current_span());
    Ok(flow)
}

/// Hands a parsed message from the peer to the stack; `Err` when the stack is gone.
pub(crate) fn hand_to_stack(
    msg: SipMessage,
    flow: &StreamFlow,
    setup: &StreamSetup,
    to_stack: &mpsc::UnboundedSender<TransportEvent>,
) -> Result<(), String> {
    if trace::on() {
        let text = msg.to_string();
        trace::message(
            Direction::Received,
            setup.transport,
            setup.remote,
            text.as_bytes(),
        );
    }
    // Stamps received/rport on the top Via of requests, as the stack's own connections do,
    // so responses can be routed back.
    let msg = match SipConnection::update_msg_received(msg, setup.remote, setup.transport) {
        Ok(m) => m,
        Err(e) => {
            setup.counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %flow.remote, error = %e, "dropped SIP message");
            return Ok(());
        }
    };
    let event = TransportEvent::Incoming(
        msg,
        SipConnection::Channel(flow.conn.clone()),
        flow.remote.clone(),
    );
    to_stack
        .send(event)
        .map_err(|_| "SIP stack stopped".to_string())
}

async fn run(io: Box<dyn Io>, setup: StreamSetup, flow: Arc<StreamFlow>, link: StackLink) {
    let StackLink {
        to_stack,
        mut from_stack,
        open,
    } = link;
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut framer = Framer::new(setup.inbound.max_message);
    let mut keepalive = setup.keepalive.map(|i| KeepAlive::new(i, Instant::now()));
    let mut buf = vec![0u8; 16 * 1024];
    let peer = flow.remote.clone();
    let why = loop {
        let ka_wait = match keepalive.as_mut().map(|k| k.poll(Instant::now())) {
            Some(KeepAliveAction::SendPing) => {
                if let Err(e) = writer.write_all(b"\r\n\r\n").await {
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
                let bytes = msg.to_bytes();
                trace::message(Direction::Sent, setup.transport, setup.remote, &bytes);
                if let Err(e) = writer.write_all(&bytes).await {
                    break format!("write failed: {e}");
                }
            }
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break "closed by the peer".to_string(),
                    Ok(n) => n,
                    Err(e) => break format!("read failed: {e}"),
                };
                framer.push(&buf[..n]);
                match deliver(&mut framer, &flow, &setup, &to_stack, &mut writer, keepalive.as_mut()).await {
                    Ok(()) => {}
                    Err(why) => break why,
                }
            }
        }
    };
    tracing::info!(peer = %peer, reason = %why, "SIP stream connection closed");
    flow.close(&why);
    let _ = writer.shutdown().await;
    // Dropping our sender ends the stack's serve loop for this connection: it retires it, so
    // its lookup will not hand it out again.
    drop(to_stack);
    drop(open);
}

/// Sends our answer to a message the guard refused, traced like every message we send.
async fn answer(
    writer: &mut (impl AsyncWrite + Unpin),
    setup: &StreamSetup,
    reply: &str,
) -> Result<(), String> {
    trace::message(
        Direction::Sent,
        setup.transport,
        setup.remote,
        reply.as_bytes(),
    );
    writer
        .write_all(reply.as_bytes())
        .await
        .map_err(|e| format!("write failed: {e}"))
}

/// Hands every whole frame in the framer to the stack or answers it; `Err` closes.
async fn deliver(
    framer: &mut Framer,
    flow: &StreamFlow,
    setup: &StreamSetup,
    to_stack: &mpsc::UnboundedSender<TransportEvent>,
    writer: &mut (impl AsyncWrite + Unpin),
    mut keepalive: Option<&mut KeepAlive>,
) -> Result<(), String> {
    let write_err = |e: std::io::Error| format!("write failed: {e}");
    loop {
        match framer.next_frame() {
            Ok(None) => return Ok(()),
            Ok(Some(Frame::Ping)) => writer.write_all(b"\r\n").await.map_err(write_err)?,
            Ok(Some(Frame::Pong)) => {
                if let Some(k) = keepalive.as_deref_mut() {
                    k.on_pong();
                }
            }
            Ok(Some(Frame::Message { msg, raw })) => {
                let admission = &setup.inbound.admission;
                match admission.screen(&raw, setup.remote, &setup.counters) {
                    Screened::Pass => hand_to_stack(*msg, flow, setup, to_stack)?,
                    // statelessly, untraced, as on UDP: a flood must not fill the trace
                    Screened::Forbidden(forbidden) => {
                        writer
                            .write_all(forbidden.as_bytes())
                            .await
                            .map_err(write_err)?;
                        Admission::forbidden_sent(&setup.counters, setup.remote);
                    }
                    Screened::Dropped => {}
                }
            }
            Ok(Some(Frame::TooLarge { reply })) => {
                setup.counters.oversized.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = reply {
                    answer(writer, setup, &reply).await?;
                }
                return Err(format!(
                    "message over maxMessageSize ({} bytes)",
                    setup.inbound.max_message
                ));
            }
            Ok(Some(Frame::Rejected { why, reply })) => {
                setup.counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %flow.remote, reason = why, "dropped malformed SIP message");
                if let Some(reply) = reply {
                    answer(writer, setup, &reply).await?;
                    setup
                        .counters
                        .bad_request_sent
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Some(Frame::Refused { reply })) => {
                setup.counters.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = reply {
                    answer(writer, setup, &reply).await?;
                }
            }
            Err(desync) => {
                setup.counters.malformed.fetch_add(1, Ordering::Relaxed);
                return Err(format!("unframeable bytes from the peer: {desync}"));
            }
        }
    }
}
