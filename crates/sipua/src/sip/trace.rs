//! The SIP message trace: every message a transport sends or receives, as a DEBUG event of
//! target [`TARGET`] (the logging layer masks its credentials like every record). Costs one
//! atomic load per message while nobody asked for it.

use std::fmt::Display;

/// The trace's log target.
pub(crate) const TARGET: &str = "sip_native::trace";

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Sent,
    Received,
}

/// Whether someone wants the trace (for callers that would have to serialise a message first).
pub(crate) fn on() -> bool {
    // The macro wants the literal target; it is TARGET.
    tracing::enabled!(target: "sip_native::trace", tracing::Level::DEBUG)
}

/// Traces one message; `transport` is `udp`, `tcp`, `tls`, `ws` or `wss` (any case), `remote`
/// the peer.
pub(crate) fn message(
    direction: Direction,
    transport: impl Display,
    remote: impl Display,
    bytes: &[u8],
) {
    if !on() {
        return;
    }
    let transport = transport.to_string().to_ascii_lowercase();
    let text = String::from_utf8_lossy(bytes);
    let start_line = text.lines().next().unwrap_or_default();
    let sip_call_id = call_id_of(&text);
    let (dir, word) = match direction {
        Direction::Sent => ("sent", "to"),
        Direction::Received => ("received", "from"),
    };
    tracing::debug!(
        target: "sip_native::trace",
        direction = dir,
        transport = %transport,
        remote = %remote,
        sip_call_id,
        sip_message = %text,
        "{dir} {start_line} ({transport} {word} {remote})"
    );
}

/// The Call-ID header's value (`Call-ID` or compact `i`), from the header lines only.
fn call_id_of(text: &str) -> Option<&str> {
    text.lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
                .then(|| value.trim())
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_call_id_is_read_from_either_header_form() {
        let full = "INVITE sip:a SIP/2.0\r\nVia: x\r\ncall-ID:  abc@h \r\n\r\nCall-ID: body";
        assert_eq!(super::call_id_of(full), Some("abc@h"));
        assert_eq!(
            super::call_id_of("SIP/2.0 200 OK\r\ni: z9\r\n\r\n"),
            Some("z9")
        );
        assert_eq!(super::call_id_of("SIP/2.0 200 OK\r\n\r\ni: body"), None);
    }

    #[test]
    fn the_literal_target_is_the_constant() {
        assert_eq!(super::TARGET, "sip_native::trace");
    }
}
