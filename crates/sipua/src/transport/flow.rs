//! The flow to the PBX over a stream transport (TCP, TLS, WS, WSS): we dial it ourselves (connect timeout, a
//! clear error when refused), hand it to the SIP stack, and after it closes or its keep-alive
//! fails dial again with back-off. Registration waits on it and re-registers when a new
//! connection comes up; every change is reported as a `transport` event.
//!
//! Dialling ourselves matters because rsipstack's own dial has no timeout and, on a refused
//! connect, retries until Timer B (32 s) instead of failing the request.

use super::counters::TransportCounters;
use super::dial::{dial, DialError, DialTarget, Wire};
use super::stream::{spawn_stream, Inbound, StreamFlow, StreamSetup};
use super::websocket::spawn_ws;
use crate::event::{Event, TransportState};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Wait before reconnect attempt number `failures` (0 after a connection that was up):
/// 0.5 s, then 1, 2, 4, ... s, at most 30 s.
pub(crate) fn reconnect_after(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::from_millis(500);
    }
    Duration::from_secs((1u64 << (failures - 1).min(5)).min(30))
}

#[derive(Clone)]
enum FlowState {
    Connecting,
    Up(Arc<StreamFlow>),
    /// The last attempt failed, or the connection closed; why.
    Down(String),
}

/// The PBX flow of one endpoint.
pub(crate) struct PbxFlow {
    /// The server as configured (`host:port`).
    remote: String,
    state: watch::Sender<FlowState>,
    /// Bumped each time a new connection is up: registrations re-register on a change.
    generation: watch::Sender<u64>,
    /// The outcome of the first attempt, once known.
    first: watch::Sender<Option<Result<(), DialError>>>,
}

/// What the flow task needs.
pub(crate) struct FlowSetup {
    pub target: DialTarget,
    pub keepalive: Option<Duration>,
    pub counters: Arc<TransportCounters>,
    pub inbound: Inbound,
    pub events: mpsc::UnboundedSender<Event>,
    pub cancel: CancellationToken,
}

impl PbxFlow {
    /// Starts dialling; the task runs until `setup.cancel`.
    pub(crate) fn start(setup: FlowSetup, sip: EndpointInnerRef) -> Arc<Self> {
        let flow = Arc::new(Self {
            remote: setup.target.describe(),
            state: watch::channel(FlowState::Connecting).0,
            generation: watch::channel(0).0,
            first: watch::channel(None).0,
        });
        tokio::spawn(flow.clone().run(setup, sip).in_current_span());
        flow
    }

    /// The live connection, waiting while one is being dialled; the error says why the
    /// last attempt failed (the task keeps retrying in the background).
    pub(crate) async fn connection(&self) -> Result<Arc<StreamFlow>, String> {
        let mut rx = self.state.subscribe();
        loop {
            match rx.borrow_and_update().clone() {
                FlowState::Up(flow) if !flow.closed.is_cancelled() => return Ok(flow),
                FlowState::Up(flow) => return Err(flow.reason()),
                FlowState::Down(why) => return Err(why),
                FlowState::Connecting => {}
            }
            if rx.changed().await.is_err() {
                return Err("stopped".into());
            }
        }
    }

    /// The live connection, if any, without waiting.
    pub(crate) fn current(&self) -> Option<Arc<StreamFlow>> {
        match &*self.state.borrow() {
            FlowState::Up(flow) if !flow.closed.is_cancelled() => Some(flow.clone()),
            _ => None,
        }
    }

    /// Waits for the outcome of the first connection attempt.
    pub(crate) async fn first_outcome(&self) -> Result<(), DialError> {
        let mut rx = self.first.subscribe();
        let outcome = match rx.wait_for(|o| o.is_some()).await {
            Ok(o) => o.clone().unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        outcome
    }

    /// Why there is no live connection now.
    pub(crate) fn down_reason(&self) -> String {
        match &*self.state.borrow() {
            FlowState::Connecting => format!("connecting to {}", self.remote),
            FlowState::Up(flow) => flow.reason(),
            FlowState::Down(why) => why.clone(),
        }
    }

    /// Changes each time a new connection comes up.
    pub(crate) fn generations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    async fn run(self: Arc<Self>, setup: FlowSetup, sip: EndpointInnerRef) {
        let target = &setup.target;
        let emit = |state: TransportState, reason: String| {
            let _ = setup.events.send(Event::Transport {
                transport: target.kind.as_str().to_string(),
                remote: target.describe(),
                state,
                reason,
            });
        };
        let mut failures = 0u32;
        let mut first = true;
        loop {
            emit(
                if first {
                    TransportState::Connecting
                } else {
                    TransportState::Reconnecting
                },
                String::new(),
            );
            first = false;
            // Waiting callers of `connection()` wait for this attempt rather than fail.
            self.state.send_replace(FlowState::Connecting);
            let dialled = tokio::select! {
                _ = setup.cancel.cancelled() => return,
                d = dial(target) => d,
            };
            let opened = match dialled {
                Ok(d) => {
                    let setup = StreamSetup {
                        transport: target.kind.sip_transport(),
                        local: d.local,
                        remote: d.remote,
                        keepalive: setup.keepalive,
                        counters: setup.counters.clone(),
                        inbound: setup.inbound.clone(),
                        cancel: setup.cancel.clone(),
                    };
                    let layer = &sip.transport_layer;
                    match d.wire {
                        Wire::Bytes(io) => spawn_stream(io, setup, layer).await,
                        Wire::WebSocket(ws) => spawn_ws(*ws, setup, layer).await,
                    }
                    .map_err(|e| DialError::from(e.to_string()))
                }
                Err(e) => Err(e),
            };
            self.first.send_if_modified(|f| {
                let unset = f.is_none();
                if unset {
                    *f = Some(opened.as_ref().map(|_| ()).map_err(Clone::clone));
                }
                unset
            });
            match opened {
                Ok(flow) => {
                    failures = 0;
                    self.state.send_replace(FlowState::Up(flow.clone()));
                    self.generation.send_modify(|g| *g += 1);
                    emit(TransportState::Connected, String::new());
                    tokio::select! {
                        _ = setup.cancel.cancelled() => return,
                        _ = flow.closed.cancelled() => {}
                    }
                    let why = flow.reason();
                    self.state.send_replace(FlowState::Down(why.clone()));
                    emit(TransportState::Disconnected, why);
                }
                Err(DialError { message: why, .. }) => {
                    failures += 1;
                    tracing::warn!(reason = %why, "SIP connection to the server failed");
                    self.state.send_replace(FlowState::Down(why.clone()));
                    emit(TransportState::Disconnected, why);
                }
            }
            tokio::select! {
                _ = setup.cancel.cancelled() => return,
                _ = tokio::time::sleep(reconnect_after(failures)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backs_off_and_caps() {
        assert_eq!(reconnect_after(0), Duration::from_millis(500));
        assert_eq!(reconnect_after(1), Duration::from_secs(1));
        assert_eq!(reconnect_after(3), Duration::from_secs(4));
        assert_eq!(reconnect_after(6), Duration::from_secs(30));
        assert_eq!(reconnect_after(u32::MAX), Duration::from_secs(30));
    }
}
