//! The napi binding: the only Rust that knows Node. It converts values, runs engine futures on
//! napi's tokio runtime and forwards engine events through one ThreadsafeFunction; every
//! decision lives in the `sipua` engine crate.
#![deny(clippy::all)]

mod logger;
mod metrics;
mod types;

use metrics::SipMetrics;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use sipua::{Endpoint, EndpointConfig};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use types::{
    AccountInput, AccountSummary, CallSnapshot, CallStats, Counters, EngineEvent, LocalAddress,
    MediaClock, OperatorRow, OptionsResult, RecordingInfo, StartOptions,
};

/// Event callback: receives each engine event as a plain object (`{ type, ... }`). Written out
/// where it is a parameter, because the generated `.d.ts` knows no Rust type aliases.
type EventCallback = ThreadsafeFunction<EngineEvent, (), EngineEvent, Status, false>;

fn to_napi(e: sipua::Error) -> Error {
    let status = match e {
        sipua::Error::Config(_) | sipua::Error::InvalidArgument(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    Error::new(status, e.to_string())
}

/// Checks a configuration without starting anything; throws with the offending field's name.
#[napi(catch_unwind)]
pub fn validate_config(options: StartOptions) -> Result<()> {
    EndpointConfig::from_options(&options.into_value())
        .map(|_| ())
        .map_err(to_napi)
}

/// Sends engine logs (masked) to stderr at `level`: error, warn, info, debug or trace; with
/// `sipTrace`, every SIP message too. The first call in a process holds.
#[napi(catch_unwind)]
pub fn init_logging(level: String, sip_trace: Option<bool>) -> Result<()> {
    sipua::logging::init(&level, sip_trace.unwrap_or(false)).map_err(to_napi)
}

/// The metrics of a service that runs no endpoint (before `start()`): every figure zero.
#[napi(catch_unwind)]
pub fn idle_metrics() -> SipMetrics {
    sipua::Metrics::default().into()
}

/// `metrics` in the Prometheus text exposition format 0.0.4; throws when a record key is not a
/// status code.
#[napi(catch_unwind)]
pub fn format_metrics(metrics: SipMetrics) -> Result<String> {
    Ok(sipua::Metrics::try_from(metrics)?.to_prometheus())
}

/// A running SIP endpoint.
#[napi]
pub struct NativeEndpoint {
    engine: Arc<Endpoint>,
    /// Tells the event forwarder to drain and let go of the JS callback.
    forwarder_stop: Mutex<Option<oneshot::Sender<()>>>,
    forwarder_done: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The application's logger, attached while the endpoint runs.
    logger: Mutex<Option<logger::JsLogger>>,
    /// Log records dropped because JS fell behind (kept after `stop()`).
    log_dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// Starts an endpoint: binds the transport and begins registering. `onEvent` gets every event;
/// `onLog`, with `log`, the endpoint's log records (and those of no endpoint in particular).
#[napi]
pub async fn start_endpoint(
    options: StartOptions,
    on_event: ThreadsafeFunction<EngineEvent, (), EngineEvent, Status, false>,
    log: Option<logger::LogOptions>,
    on_log: Option<
        ThreadsafeFunction<
            logger::LogRecord,
            (),
            logger::LogRecord,
            Status,
            false,
            true,
            { logger::QUEUE },
        >,
    >,
) -> Result<NativeEndpoint> {
    let config = EndpointConfig::from_options(&options.into_value()).map_err(to_napi)?;
    let js_logger = match (log, on_log) {
        (Some(log), Some(on_log)) => Some(logger::attach(&log, on_log)?),
        _ => None,
    };
    // The endpoint runs in its logger's span: its records go to that logger only.
    let span = js_logger
        .as_ref()
        .map_or_else(tracing::Span::none, |l| l.attached.span());
    let log_dropped = js_logger
        .as_ref()
        .map_or_else(Default::default, |l| l.dropped.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let engine = match Endpoint::start(config, tx).instrument(span).await {
        Ok(engine) => engine,
        Err(e) => {
            // What happened before the failure (a registration refused over TLS) still counts.
            while let Ok(ev) = rx.try_recv() {
                forward(&on_event, ev);
            }
            return Err(to_napi(e));
        }
    };
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    // The callback keeps Node's event loop alive while this task holds it; it is dropped once
    // stop() has drained the last events, so a script ends by itself after stop().
    let forwarder = tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => forward(&on_event, ev),
                    None => break,
                },
                _ = &mut stop_rx => {
                    while let Ok(ev) = rx.try_recv() {
                        forward(&on_event, ev);
                    }
                    break;
                }
            }
        }
    });
    Ok(NativeEndpoint {
        engine: Arc::new(engine),
        forwarder_stop: Mutex::new(Some(stop_tx)),
        forwarder_done: Mutex::new(Some(forwarder)),
        logger: Mutex::new(js_logger),
        log_dropped,
    })
}

/// A SIP status code from JS (the engine checks the range it needs).
fn sip_status(code: u32) -> Result<u16> {
    u16::try_from(code).map_err(|_| {
        Error::new(
            Status::InvalidArg,
            format!("code: not a SIP status: {code}"),
        )
    })
}

/// Extra headers from JS (`[name, value]` pairs; the engine checks names and values).
fn header_pairs(headers: Option<Vec<Vec<String>>>) -> Result<Vec<(String, String)>> {
    headers
        .unwrap_or_default()
        .into_iter()
        .map(|h| match <[String; 2]>::try_from(h) {
            Ok([n, v]) => Ok((n, v)),
            Err(_) => Err(Error::new(
                Status::InvalidArg,
                "headers: each entry must be [name, value]",
            )),
        })
        .collect()
}

fn forward(cb: &EventCallback, ev: sipua::Event) {
    cb.call(ev.into(), ThreadsafeFunctionCallMode::NonBlocking);
}

#[napi]
impl NativeEndpoint {
    /// `{ address, port, transport }` of the bound SIP socket.
    #[napi(catch_unwind)]
    pub fn local_address(&self) -> LocalAddress {
        self.engine.local_address().into()
    }

    /// `{ address, port, transport }` of every listener (UDP, and TCP on the TCP transport).
    #[napi(catch_unwind)]
    pub fn local_addresses(&self) -> Vec<LocalAddress> {
        self.engine
            .local_addresses()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Live calls, live transactions and dropped malformed messages.
    #[napi(catch_unwind)]
    pub fn counters(&self) -> Counters {
        self.engine.counters().into()
    }

    /// Counters and gauges of registrations, calls, RTP and transports; after `stop()` the
    /// counters keep their values and the gauges read zero.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> SipMetrics {
        self.engine.metrics().into()
    }

    /// Log records dropped because the logger's queue was full (JS fell behind).
    #[napi(catch_unwind)]
    pub fn log_records_dropped(&self) -> f64 {
        self.log_dropped.load(Ordering::Relaxed) as f64
    }

    /// Snapshots of the calls not yet disconnected.
    #[napi(catch_unwind)]
    pub fn calls(&self) -> Vec<CallSnapshot> {
        self.engine.calls().into_iter().map(Into::into).collect()
    }

    /// A snapshot of one call, `null` when it is unknown (or long over).
    #[napi(catch_unwind)]
    pub fn call(&self, call_id: String) -> Option<CallSnapshot> {
        self.engine.call(&call_id).ok().map(Into::into)
    }

    /// Whether the application listens for `incoming_call`; without a listener an incoming call
    /// is refused at once with 480.
    #[napi(catch_unwind)]
    pub fn set_incoming_handler(&self, listening: bool) {
        self.engine.set_incoming_handler(listening);
    }

    /// Places a call; resolves with its snapshot once the INVITE is sent.
    #[napi(
        ts_args_type = "from: string, to: string, headers?: Array<[string, string]>, followRedirects?: boolean"
    )]
    pub async fn make_call(
        &self,
        from: String,
        to: String,
        headers: Option<Vec<Vec<String>>>,
        follow_redirects: Option<bool>,
    ) -> Result<CallSnapshot> {
        let pairs = header_pairs(headers)?;
        let info = self
            .engine
            .make_call(&from, &to, pairs, follow_redirects)
            .await
            .map_err(to_napi)?;
        Ok(info.into())
    }

    /// Sends an out-of-dialog OPTIONS to `uri`; resolves with the final response, rejects when
    /// none came within `timeoutMs` (default 64·T1) or the target cannot be reached.
    #[napi]
    pub async fn options(&self, uri: String, timeout_ms: Option<u32>) -> Result<OptionsResult> {
        let timeout = timeout_ms.map(|ms| std::time::Duration::from_millis(u64::from(ms)));
        let reply = self.engine.options(&uri, timeout).await.map_err(to_napi)?;
        Ok(reply.into())
    }

    /// Answers an incoming call; `headers` go on the 200.
    #[napi(ts_args_type = "callId: string, headers?: Array<[string, string]>")]
    pub async fn answer(&self, call_id: String, headers: Option<Vec<Vec<String>>>) -> Result<()> {
        let headers = header_pairs(headers)?;
        self.engine.answer(&call_id, headers).await.map_err(to_napi)
    }

    /// 183 with our SDP answer on an incoming call; its media starts (early media).
    #[napi(ts_args_type = "callId: string, headers?: Array<[string, string]>")]
    pub async fn progress(&self, call_id: String, headers: Option<Vec<Vec<String>>>) -> Result<()> {
        let pairs = header_pairs(headers)?;
        self.engine.progress(&call_id, pairs).await.map_err(to_napi)
    }

    /// Rejects an incoming call; `headers` go on the final response.
    #[napi(
        ts_args_type = "callId: string, code: number, reason?: string, headers?: Array<[string, string]>"
    )]
    pub async fn reject(
        &self,
        call_id: String,
        code: u32,
        reason: Option<String>,
        headers: Option<Vec<Vec<String>>>,
    ) -> Result<()> {
        let code = sip_status(code)?;
        let headers = header_pairs(headers)?;
        self.engine
            .reject(&call_id, code, reason, headers)
            .await
            .map_err(to_napi)
    }

    /// Ends a call; `code`/`reason` become an RFC 3326 Reason on the BYE, CANCEL or 603.
    #[napi(
        ts_args_type = "callId: string, code?: number, reason?: string, headers?: Array<[string, string]>"
    )]
    pub async fn hangup(
        &self,
        call_id: String,
        code: Option<u32>,
        reason: Option<String>,
        headers: Option<Vec<Vec<String>>>,
    ) -> Result<()> {
        let code = code.map(sip_status).transpose()?;
        let headers = header_pairs(headers)?;
        self.engine
            .hangup(&call_id, code, reason, headers)
            .await
            .map_err(to_napi)
    }

    /// Transfers a confirmed call by REFER: to a number or URI, or (attended, with Replaces) to
    /// the peer of our call whose id `target` is. Resolves when the REFER is accepted.
    #[napi(ts_args_type = "callId: string, target: string, headers?: Array<[string, string]>")]
    pub async fn transfer(
        &self,
        call_id: String,
        target: String,
        headers: Option<Vec<Vec<String>>>,
    ) -> Result<()> {
        let pairs = header_pairs(headers)?;
        self.engine
            .transfer(&call_id, &target, pairs)
            .await
            .map_err(to_napi)
    }

    /// Answers the REFER pending on a call: accepted, or refused with `code` (4xx-6xx).
    #[napi(catch_unwind)]
    pub fn answer_refer(&self, call_id: String, accept: bool, code: Option<u32>) -> Result<()> {
        let code = code.map(sip_status).transpose()?;
        self.engine
            .answer_refer(&call_id, accept, code)
            .map_err(to_napi)
    }

    /// Puts a confirmed call on hold (re-INVITE with `sendonly`, `inactive` when the peer
    /// holds us too), `music` (a WAV path) looped to the peer while held.
    #[napi]
    pub async fn hold(&self, call_id: String, music: Option<String>) -> Result<()> {
        self.engine
            .set_hold(&call_id, true, music.as_deref())
            .await
            .map_err(to_napi)
    }

    /// Resumes a held call (re-INVITE with `sendrecv`); music on hold stops.
    #[napi]
    pub async fn unhold(&self, call_id: String) -> Result<()> {
        self.engine
            .set_hold(&call_id, false, None)
            .await
            .map_err(to_napi)
    }

    /// Sends a re-INVITE with our offer, or without one (`offer` false: the peer offers in
    /// its 2xx, our ACK answers).
    #[napi]
    pub async fn reinvite(&self, call_id: String, offer: bool) -> Result<()> {
        self.engine.reinvite(&call_id, offer).await.map_err(to_napi)
    }

    /// Sends an UPDATE with our offer, or without a body.
    #[napi]
    pub async fn update(&self, call_id: String, offer: bool) -> Result<()> {
        self.engine.update(&call_id, offer).await.map_err(to_napi)
    }

    /// Plays a WAV file to the call; resolves when it has played or was stopped.
    #[napi]
    pub async fn play_file(
        &self,
        call_id: String,
        path: String,
        looped: Option<bool>,
    ) -> Result<()> {
        self.engine
            .play_file(&call_id, &path, looped.unwrap_or(false))
            .await
            .map_err(to_napi)
    }

    /// Plays one or two summed frequencies; `durationMs` 0 plays until stopped.
    #[napi]
    pub async fn play_tone(
        &self,
        call_id: String,
        frequencies: Vec<f64>,
        duration_ms: u32,
        level: f64,
    ) -> Result<()> {
        self.engine
            .play_tone(&call_id, &frequencies, duration_ms, level)
            .await
            .map_err(to_napi)
    }

    #[napi(catch_unwind)]
    pub fn stop_playback(&self, call_id: String) -> Result<()> {
        self.engine.stop_playback(&call_id).map_err(to_napi)
    }

    #[napi]
    pub async fn record(&self, call_id: String, path: String, channels: u32) -> Result<()> {
        let channels = u16::try_from(channels).unwrap_or(0);
        self.engine
            .record(&call_id, &path, channels)
            .await
            .map_err(to_napi)
    }

    #[napi]
    pub async fn stop_recording(&self, call_id: String) -> Result<RecordingInfo> {
        let info = self
            .engine
            .stop_recording(&call_id)
            .await
            .map_err(to_napi)?;
        Ok(info.into())
    }

    #[napi(
        ts_args_type = "callId: string, digits: string, method: 'rfc4733' | 'info', durationMs: number"
    )]
    pub async fn send_dtmf(
        &self,
        call_id: String,
        digits: String,
        method: String,
        duration_ms: u32,
    ) -> Result<()> {
        let method = match method.as_str() {
            "rfc4733" => sipua::DtmfMethod::Rfc4733,
            "info" => sipua::DtmfMethod::Info,
            other => {
                return Err(Error::new(
                    Status::InvalidArg,
                    format!("method: 'rfc4733' or 'info', got {other:?}"),
                ))
            }
        };
        self.engine
            .send_dtmf(&call_id, &digits, method, duration_ms)
            .await
            .map_err(to_napi)
    }

    #[napi(catch_unwind)]
    pub fn bridge(&self, call_a: String, call_b: String) -> Result<()> {
        self.engine.bridge(&call_a, &call_b).map_err(to_napi)
    }

    #[napi(catch_unwind)]
    pub fn unbridge(&self, call_id: String) -> Result<()> {
        self.engine.unbridge(&call_id).map_err(to_napi)
    }

    #[napi(catch_unwind)]
    pub fn call_stats(&self, call_id: String) -> Result<CallStats> {
        Ok(self.engine.call_stats(&call_id).map_err(to_napi)?.into())
    }

    /// Starts capturing received PCM for `call.audio.readable`; returns the sample rate.
    #[napi(catch_unwind)]
    pub fn pcm_open(&self, call_id: String) -> Result<u32> {
        self.engine.pcm_open(&call_id).map_err(to_napi)
    }

    /// Received PCM since the last read (waits for a frame); `null` when the media ended.
    #[napi]
    pub async fn pcm_read(&self, call_id: String) -> Result<Option<Buffer>> {
        let bytes = self.engine.pcm_read(&call_id).await.map_err(to_napi)?;
        Ok(bytes.map(Buffer::from))
    }

    /// Queues PCM to send; resolves when it fits in the 200 ms queue (back-pressure).
    #[napi]
    pub async fn pcm_write(&self, call_id: String, data: Buffer) -> Result<()> {
        let bytes = data.to_vec();
        self.engine
            .pcm_write(&call_id, &bytes)
            .await
            .map_err(to_napi)
    }

    /// `{ p50, p99 }` of the interval between media clock ticks, ms.
    #[napi(catch_unwind)]
    pub fn media_clock(&self) -> MediaClock {
        let (p50, p99) = self.engine.media_clock();
        MediaClock { p50, p99 }
    }

    /// Ends calls, unregisters, closes the socket, delivers the last events, then releases the
    /// event callback so Node can exit.
    /// Adds an account of the typed config at run time; resolves once it is in the table.
    #[napi]
    pub async fn add_account(&self, account: AccountInput) -> Result<()> {
        let value = serde_json::to_value(&account)
            .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
        let config = sipua::AccountConfig::from_json(value, "account").map_err(to_napi)?;
        self.engine.add_account(config).await.map_err(to_napi)
    }

    /// Adds an account from an operator settings row (`pbx_extension`, ...) at run time.
    #[napi]
    pub async fn add_operator(&self, row: OperatorRow) -> Result<()> {
        let config =
            sipua::AccountConfig::from_operator_row(&row.into_value(), "row").map_err(to_napi)?;
        self.engine.add_account(config).await.map_err(to_napi)
    }

    /// Removes an account: its calls end and it un-REGISTERs, bounded by `stopGraceMs`.
    #[napi]
    pub async fn remove_account(&self, extension: String) -> Result<()> {
        self.engine
            .remove_account(&extension)
            .await
            .map_err(to_napi)
    }

    /// The accounts with their registration state.
    #[napi(catch_unwind)]
    pub fn accounts(&self) -> Vec<AccountSummary> {
        self.engine.accounts().into_iter().map(Into::into).collect()
    }

    /// A snapshot of a live call or of one of the last ended ones; throws "no such call" else.
    #[napi(catch_unwind)]
    pub fn call_info(&self, call_id: String) -> Result<CallSnapshot> {
        Ok(self.engine.call_info(&call_id).map_err(to_napi)?.into())
    }

    #[napi]
    pub async fn stop(&self) -> Result<()> {
        self.engine.stop().await;
        let stop = self.forwarder_stop.lock().ok().and_then(|mut s| s.take());
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let done = self.forwarder_done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.await;
        }
        // The engine's last records are queued by now; later ones go to no logger.
        let logger = self.logger.lock().ok().and_then(|mut l| l.take());
        drop(logger);
        Ok(())
    }
}
