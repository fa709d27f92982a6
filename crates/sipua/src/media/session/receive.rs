//! The receive side's IO: a tokio task per session reads the RTP socket (and, without
//! rtcp-mux, the RTCP one) and hands each datagram to the stream, then what it accepted to
//! the jitter buffer or the DTMF receiver.

use super::stream::{Carries, Rejected};
use super::{MediaEvent, MediaSession};
use crate::media::srtp::{SrtpSession, Unprotect};
use crate::media::{rtp, stats};
use crate::transport::family::unmapped;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

impl MediaSession {
    /// Reads the RTP (and, without rtcp-mux, the RTCP) socket until the session closes.
    pub(crate) async fn receive_loop(self: Arc<Self>) {
        let rtp = match self
            .socket
            .try_clone()
            .and_then(tokio::net::UdpSocket::from_std)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "RTP socket unusable");
                return;
            }
        };
        let rtcp = self
            .rtcp_socket
            .try_clone()
            .and_then(tokio::net::UdpSocket::from_std)
            .ok();
        let mut buf = [0u8; 2048];
        let mut rtcp_buf = [0u8; 1500];
        while !self.is_closed() {
            tokio::select! {
                r = rtp.recv_from(&mut buf) => match r {
                    // symmetric RTP latches plain IPv4 for an IPv4 peer of a dual-stack socket
                    Ok((len, from)) => self.on_datagram(&buf[..len], unmapped(from), Instant::now()),
                    Err(e) => {
                        tracing::debug!(call_id = %self.call_id, error = %e, "RTP receive error");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                },
                r = async {
                    match &rtcp {
                        Some(s) => s.recv_from(&mut rtcp_buf).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Ok((len, _)) = r {
                        self.on_rtcp(&rtcp_buf[..len], Instant::now());
                    }
                }
                _ = self.close_token.cancelled() => break,
            }
        }
    }

    /// Handles one datagram from the RTP port: RTCP (mux), DTMF, or audio into the jitter buffer.
    /// With SRTP, a packet is authenticated and decrypted first (before symmetric RTP may
    /// latch to its source): one that fails is dropped and counted.
    pub(super) fn on_datagram(&self, data: &[u8], from: SocketAddr, now: Instant) {
        if rtp::is_rtcp(data) {
            return self.on_rtcp(data, now);
        }
        let mut guard = self.state();
        let st = &mut *guard;
        let mut plain = BytesMut::new();
        let data = match unprotected(
            st.srtp.as_mut(),
            data,
            &mut plain,
            SrtpSession::unprotect_rtp,
        ) {
            Ok(data) => data,
            Err(why) => {
                drop(guard);
                tracing::trace!(call_id = %self.call_id, %from, error = %why.0, "SRTP packet dropped");
                return self.count_auth_failed();
            }
        };
        let Ok(view) = rtp::parse(data) else {
            drop(guard);
            self.count_dropped();
            return;
        };
        let accepted = match st.stream.on_rtp(&st.params, &view, from, now) {
            Ok(accepted) => accepted,
            Err(why) => {
                drop(guard);
                match why {
                    Rejected::PayloadType => {
                        tracing::trace!(call_id = %self.call_id, pt = view.payload_type, "RTP dropped: payload type not negotiated");
                    }
                    Rejected::UnknownSsrc => {
                        tracing::trace!(call_id = %self.call_id, ssrc = view.ssrc, %from, "RTP dropped: unknown SSRC");
                    }
                }
                self.count_dropped();
                return;
            }
        };
        if accepted.restarted {
            st.jitter.reset();
        }
        let payload = &data[view.payload_start..view.payload_end];
        match accepted.carries {
            Carries::Event => {
                tracing::trace!(call_id = %self.call_id, ts = view.timestamp, seq = view.sequence, ?payload, "telephone-event packet");
                if let Some(digit) = st.dtmf_rx.on_packet(view.timestamp, payload) {
                    drop(guard);
                    (self.events)(MediaEvent::Dtmf {
                        call_id: self.call_id.clone(),
                        digit: digit.digit,
                        duration_ms: u32::from(digit.duration) * 1000
                            / crate::media::dtmf::CLOCK_RATE,
                    });
                }
            }
            Carries::Audio if st.params.receives() => {
                st.jitter
                    .push(view.sequence, view.timestamp, payload, accepted.arrival_us);
            }
            Carries::Audio => {}
        }
    }

    /// Handles one RTCP datagram (from either port), SRTCP-checked first with SRTP.
    fn on_rtcp(&self, data: &[u8], now: Instant) {
        let mut guard = self.state();
        let st = &mut *guard;
        let mut plain = BytesMut::new();
        let data = match unprotected(
            st.srtp.as_mut(),
            data,
            &mut plain,
            SrtpSession::unprotect_rtcp,
        ) {
            Ok(data) => data,
            Err(why) => {
                drop(guard);
                tracing::trace!(call_id = %self.call_id, error = %why.0, "SRTCP packet dropped");
                return self.count_auth_failed();
            }
        };
        let reports = stats::parse_rtcp(data);
        if reports.is_empty() {
            drop(guard);
            self.count_dropped();
            return;
        }
        let arrival_ntp = stats::ntp_now(SystemTime::now());
        st.stream.on_rtcp(&st.params, &reports, arrival_ntp, now);
    }

    fn count_dropped(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn count_auth_failed(&self) {
        self.counters
            .srtp_auth_failed
            .fetch_add(1, Ordering::Relaxed);
        self.count_dropped();
    }
}

/// The plain packet of `data`: itself without SRTP, else what `unprotect` (the RTP or the RTCP
/// check) made of it, kept in `plain`.
fn unprotected<'a>(
    srtp: Option<&mut SrtpSession>,
    data: &'a [u8],
    plain: &'a mut BytesMut,
    unprotect: fn(&mut SrtpSession, &[u8]) -> Result<BytesMut, Unprotect>,
) -> Result<&'a [u8], Unprotect> {
    match srtp {
        None => Ok(data),
        Some(srtp) => {
            *plain = unprotect(srtp, data)?;
            Ok(&plain[..])
        }
    }
}
