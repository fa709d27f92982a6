//! The transports' counters, read by the endpoint's metrics: what the guards dropped, and the
//! stream connections (TCP, TLS, WS, WSS; dialled or accepted) open now, opened and closed.
//! Atomics bumped where it happens; nothing here is on a per-packet path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared by every transport of an endpoint.
#[derive(Debug, Default)]
pub(crate) struct TransportCounters {
    /// Bad UDP datagrams, bad stream or WebSocket messages, unframeable streams.
    pub malformed: AtomicU64,
    /// The 400 answers sent to malformed requests that could be routed back.
    pub bad_request_sent: AtomicU64,
    /// Requests answered by the guard's RFC 3261 §8.2 checks (505, 416, 420, 415, 501...).
    pub refused: AtomicU64,
    /// Stream connections open now.
    pub open_streams: AtomicU64,
    /// Stream connections ever opened.
    pub streams_opened: AtomicU64,
    /// Stream connections ever closed.
    pub streams_closed: AtomicU64,
}

/// One open stream connection, for the counters: counted open on creation, closed on drop, so
/// whichever way its task ends (peer close, error, endpoint stop) it is counted once.
pub(crate) struct OpenStream(Arc<TransportCounters>);

impl OpenStream {
    pub(crate) fn new(counters: &Arc<TransportCounters>) -> Self {
        counters.open_streams.fetch_add(1, Ordering::Relaxed);
        counters.streams_opened.fetch_add(1, Ordering::Relaxed);
        Self(counters.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
        self.0.streams_closed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_counted_open_until_dropped() {
        let counters = Arc::new(TransportCounters::default());
        let a = OpenStream::new(&counters);
        let b = OpenStream::new(&counters);
        drop(a);
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(
            (
                read(&counters.open_streams),
                read(&counters.streams_opened),
                read(&counters.streams_closed)
            ),
            (1, 2, 1)
        );
        drop(b);
        assert_eq!(read(&counters.open_streams), 0);
    }
}
