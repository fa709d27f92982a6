//! Message boundaries on a SIP byte stream (TCP, TLS), sans-IO: bytes go in as they arrive,
//! whole messages, keep-alives and rejected messages come out.
//!
//! We frame ourselves instead of leaving it to rsipstack's codec, which matches the
//! `Content-Length` name untrimmed (so `Content-Length : 5`, legal under HCOLON, reads as 0 and
//! the stream desynchronises) and closes the whole connection on one unparseable message
//! without answering it. Here a message whose boundary is known but which does not parse is
//! answered with 400 where it can be routed ([`crate::sip::guard`]) and skipped; only when no
//! boundary can be found (not a SIP start line, a bad `Content-Length`) must the connection
//! close, since nothing after that point can be trusted. A message over `maxMessageSize`
//! (its header block, or the `Content-Length` it declares) is answered `513 Message Too Large`
//! when enough of its header block was read to route a reply, and closes the connection too:
//! skipping a body we refuse to buffer would mean trusting its length.

use crate::sip::conformance::{self, Refusal};
use crate::sip::guard::{bad_request_for, parse_checked, reply_for};
use crate::sip::normalize::normalize;
use rsipstack::sip::SipMessage;

/// Largest message we buffer (header block and body) when `maxMessageSize` is not set, as
/// rsipstack's stream codec.
pub(crate) const MAX_MESSAGE: usize = 65535;

/// What the next bytes of the stream were.
#[derive(Debug)]
pub(crate) enum Frame {
    /// One whole, parsed message, and the bytes it was parsed from (what admission reads and
    /// its `403` is built from).
    Message { msg: Box<SipMessage>, raw: Vec<u8> },
    /// A message with a known boundary that the guard refused; `reply` is the 400 to send
    /// back when it was a request carrying what a response needs.
    Rejected {
        /// Why it was refused.
        why: &'static str,
        /// The 400, if routable.
        reply: Option<String>,
    },
    /// A request the RFC 3261 §8.2 checks refused (well-formed, so not counted malformed);
    /// `reply` is its answer, if routable.
    Refused { reply: Option<String> },
    /// A message over the limit: `reply` is its `513`, if routable. Nothing more comes out of
    /// this framer; the connection must be closed.
    TooLarge { reply: Option<String> },
    /// `CRLF CRLF`: the peer's keep-alive ping (RFC 5626 §4.4.1); answer with a pong.
    Ping,
    /// A lone `CRLF`: the pong to our ping.
    Pong,
}

/// Why a stream cannot be framed any further; the connection must be closed.
pub(crate) type Desync = &'static str;

/// Accumulates a stream's bytes and cuts them into frames.
#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// `maxMessageSize`: the largest message (header block and body) accepted.
    max: usize,
    /// A message went over `max`: the stream has no trustworthy boundary any more.
    overflowed: bool,
}

impl Framer {
    /// A framer accepting messages of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            overflowed: false,
        }
    }

    /// Appends bytes just read.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next frame; `Ok(None)` when more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, Desync> {
        if self.overflowed {
            return Err("message too large");
        }
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        // A lone CRLF is a pong. Half of a ping split across two reads is read as two pongs:
        // we are the client of our flows, so pings reaching us are rare and unanswered ones
        // harmless (the peer just sees no pong).
        if self.buf.starts_with(b"\r\n") {
            self.buf.drain(..2);
            return Ok(Some(Frame::Pong));
        }
        if self.buf == b"\r" {
            return Ok(None);
        }
        check_start(&self.buf)?;
        let Some(head_end) = find(&self.buf, b"\r\n\r\n").map(|i| i + 4) else {
            if self.buf.len() > self.max {
                return Ok(Some(self.overflow()));
            }
            return Ok(None);
        };
        let Some(body_len) = content_length(&self.buf[..head_end])? else {
            // RFC 3261 §20.14: Content-Length is mandatory on streams. The header block's
            // end is a boundary, so answer and skip it; if a body followed, it will not
            // start like a message and the stream is closed then.
            let head: Vec<u8> = self.buf.drain(..head_end).collect();
            let why = "missing Content-Length";
            return Ok(Some(Frame::Rejected {
                why,
                reply: bad_request_for(&head, why),
            }));
        };
        let Some(total) = head_end.checked_add(body_len).filter(|t| *t <= self.max) else {
            self.buf.truncate(head_end);
            return Ok(Some(self.overflow()));
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        let message: Vec<u8> = self.buf.drain(..total).collect();
        if let Some(refusal) = conformance::check(&message) {
            return Ok(Some(Frame::Refused {
                reply: reply_for(&message, &refusal),
            }));
        }
        // what rsipstack cannot read, rewritten as on UDP (the body, so its length, untouched)
        let message = normalize(&message).unwrap_or(message);
        Ok(Some(match parse_checked(&message) {
            Ok(msg) => Frame::Message {
                msg: Box::new(msg),
                raw: message,
            },
            Err(why) => Frame::Rejected {
                why,
                reply: bad_request_for(&message, why),
            },
        }))
    }
}

impl Framer {
    /// The `513` for what the buffer holds of the oversized message; the framer is done.
    fn overflow(&mut self) -> Frame {
        self.overflowed = true;
        let reply = too_large_for(&self.buf);
        self.buf = Vec::new();
        Frame::TooLarge { reply }
    }
}

/// The `513 Message Too Large` (RFC 3261 §21.5.14) for a request of which `head` is the start
/// (the header block, whole or cut anywhere): built from its complete lines only, so a header
/// cut mid-value is never echoed; `None` when what was read cannot route a reply.
pub(crate) fn too_large_for(head: &[u8]) -> Option<String> {
    let end = find(head, b"\r\n\r\n").map_or_else(|| head.len(), |i| i + 2);
    let complete = head[..end].iter().rposition(|b| *b == b'\n')? + 1;
    let refusal = Refusal {
        code: 513,
        reason: "Message Too Large",
        headers: Vec::new(),
    };
    reply_for(&head[..complete], &refusal)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Fails as soon as the bytes seen cannot begin a start line (`METHOD SP` or `SIP/2.0 SP`),
/// so a garbage stream is closed at once rather than after 64 KiB.
fn check_start(buf: &[u8]) -> Result<(), Desync> {
    const NOT_SIP: Desync = "not a SIP start line";
    let token_len = buf.iter().take_while(|b| is_token_char(**b)).count();
    match buf.get(token_len) {
        // Still inside the first token: fine while it stays short.
        None if token_len <= 32 => Ok(()),
        Some(b' ') if (1..=32).contains(&token_len) => {
            let line_end = find(buf, b"\r\n");
            match line_end {
                None if buf.len() > 8192 => Err("start line too long"),
                None => Ok(()),
                Some(end) => {
                    let line = &buf[..end];
                    let is_response = line.starts_with(b"SIP/2.0 ");
                    // any SIP version and trailing spaces still frame: the guard answers them
                    // (505, 400) instead of the connection closing
                    let trimmed = line.trim_ascii_end();
                    let is_request = trimmed
                        .rsplit(|b| *b == b' ')
                        .next()
                        .is_some_and(|v| v.starts_with(b"SIP/"));
                    if is_response || is_request {
                        Ok(())
                    } else {
                        Err(NOT_SIP)
                    }
                }
            }
        }
        _ => Err(NOT_SIP),
    }
}

/// RFC 3261 token characters, plus `/` and `.` of `SIP/2.0`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~/".contains(&b)
}

/// The Content-Length of a header block: `Ok(None)` when absent, an error when malformed or
/// given twice with different values (either would desynchronise the stream).
fn content_length(head: &[u8]) -> Result<Option<usize>, Desync> {
    let mut found = None;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Continuation lines (leading whitespace) belong to the header before.
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !name.eq_ignore_ascii_case(b"content-length") && !name.eq_ignore_ascii_case(b"l") {
            continue;
        }
        let value = std::str::from_utf8(&line[colon + 1..])
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or("bad Content-Length")?;
        if found.is_some_and(|f| f != value) {
            return Err("conflicting Content-Length");
        }
        found = Some(value);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::prelude::HeadersExt;

    fn invite(body: &str, cl_header: &str) -> String {
        format!(
            "INVITE sip:7779@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:1@127.0.0.1>;tag=a\r\nTo: <sip:7779@127.0.0.1>\r\nCall-ID: c1\r\n\
             CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n{cl_header}{}\r\n\r\n{body}",
            body.len()
        )
    }

    const OPTIONS: &str = "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK2\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    /// Feeds `chunks` one by one and collects every frame; stops at a desync.
    fn frames(chunks: &[&[u8]]) -> (Vec<Frame>, Option<Desync>) {
        let mut f = Framer::new(MAX_MESSAGE);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            loop {
                match f.next_frame() {
                    Ok(Some(frame)) => out.push(frame),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    fn body_of(frame: &Frame) -> Vec<u8> {
        match frame {
            Frame::Message { msg, .. } => match msg.as_ref() {
                SipMessage::Request(r) => r.body.clone(),
                SipMessage::Response(r) => r.body.clone(),
            },
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn a_body_split_at_every_byte_comes_out_whole() {
        let msg = invite("v=0\r\ns=-\r\n", "Content-Length: ");
        let bytes = msg.as_bytes();
        for cut in 1..bytes.len() {
            let (out, err) = frames(&[&bytes[..cut], &bytes[cut..]]);
            assert!(err.is_none(), "cut {cut}: {err:?}");
            assert_eq!(out.len(), 1, "cut {cut}");
            assert_eq!(body_of(&out[0]), b"v=0\r\ns=-\r\n");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (out, err) = frames(&singles);
        assert!(err.is_none() && out.len() == 1);
    }

    #[test]
    fn two_messages_in_one_segment_and_keepalives_between() {
        let two = format!("{}\r\n\r\n{OPTIONS}\r\n", invite("abc", "Content-Length: "));
        let (out, err) = frames(&[two.as_bytes()]);
        assert!(err.is_none());
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(body_of(&out[0]), b"abc");
        assert!(matches!(out[1], Frame::Ping));
        assert!(
            matches!(&out[2], Frame::Message { msg, .. } if msg.call_id_header().unwrap().value() == "o1")
        );
        assert!(matches!(out[3], Frame::Pong));
    }

    #[test]
    fn content_length_forms_are_all_understood() {
        for header in [
            "Content-Length: ",
            "Content-Length : ",
            "content-length:",
            "CONTENT-LENGTH:\t",
            "l: ",
            "L : ",
        ] {
            let msg = format!("{}{OPTIONS}", invite("hello", header));
            let (out, err) = frames(&[msg.as_bytes()]);
            assert!(err.is_none(), "{header:?}: {err:?}");
            assert_eq!(out.len(), 2, "{header:?}: {out:?}");
            assert_eq!(body_of(&out[0]), b"hello", "{header:?}");
        }
    }

    #[test]
    fn a_bad_message_with_a_boundary_is_answered_and_the_next_one_passes() {
        // Without a Call-ID no 400 can be routed: only skipped. A malformed CSeq is answered.
        let no_call_id = invite("", "Content-Length: ").replace("Call-ID: c1\r\n", "");
        let broken = invite("", "Content-Length: ").replace("CSeq: 1 INVITE", "CSeq: x y z");
        let stream = format!("{no_call_id}{broken}{OPTIONS}");
        let (out, err) = frames(&[stream.as_bytes()]);
        assert!(err.is_none(), "{err:?}");
        assert!(
            matches!(&out[0], Frame::Rejected { reply: None, .. }),
            "{out:?}"
        );
        // a CSeq that is no CSeq is the §8.2 checks' 400: a refusal, not a malformed message
        match &out[1] {
            Frame::Refused { reply: Some(reply) } => {
                assert!(reply.starts_with("SIP/2.0 400 ") && reply.contains("Call-ID: c1"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&out[2], Frame::Message { .. }));
    }

    #[test]
    fn rfc4475_wsinv_reaches_the_stack_with_its_tags() {
        let wsinv = crate::test_support::fixture("rfc4475/wsinv");
        let (out, err) = frames(&[&wsinv, OPTIONS.as_bytes()]);
        assert!(err.is_none(), "{err:?}");
        let Frame::Message { msg, .. } = &out[0] else {
            panic!("{:?}", out[0])
        };
        let SipMessage::Request(req) = msg.as_ref() else {
            panic!("not a request")
        };
        let tag = req.from_header().unwrap().tag().ok().flatten();
        assert_eq!(tag.map(|t| t.to_string()).as_deref(), Some("98asjd8"));
        assert!(matches!(&out[1], Frame::Message { .. }));
    }

    #[test]
    fn a_missing_content_length_is_answered_400() {
        let msg = OPTIONS.replace("Content-Length: 0\r\n", "");
        let (out, err) = frames(&[msg.as_bytes(), OPTIONS.as_bytes()]);
        assert!(err.is_none());
        match &out[0] {
            Frame::Rejected { why, reply } => {
                assert_eq!(*why, "missing Content-Length");
                assert!(reply.as_deref().unwrap().contains("Call-ID: o1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&out[1], Frame::Message { .. }));
    }

    #[test]
    fn no_boundary_means_desync() {
        for (bytes, why) in [
            (&b"\x16\x03\x01\x02\x00\x01\x00"[..], "not a SIP start line"),
            (b"GET / HTTP/1.1\r\n", "not a SIP start line"),
            (b"hello world\r\n\r\n", "not a SIP start line"),
            (b"\x00\x01garbage", "not a SIP start line"),
        ] {
            assert_eq!(frames(&[bytes]).1, Some(why), "{bytes:?}");
        }
        let bad_cl =
            invite("", "Content-Length: ").replace("Content-Length: 0", "Content-Length: -1");
        assert_eq!(frames(&[bad_cl.as_bytes()]).1, Some("bad Content-Length"));
        let twice = invite("ab", "Content-Length: ").replace("\r\n\r\nab", "\r\nl: 3\r\n\r\nab");
        assert_eq!(
            frames(&[twice.as_bytes()]).1,
            Some("conflicting Content-Length")
        );
        let long_line = format!("OPTIONS sip:{} ", "a".repeat(9000));
        assert_eq!(
            frames(&[long_line.as_bytes()]).1,
            Some("start line too long")
        );
        // A message that is merely incomplete is not a desync.
        assert_eq!(frames(&[b"OPTI"]).1, None);
        assert_eq!(frames(&[b"SIP/2.0 200 OK\r\nVia: x"]).1, None);
    }

    /// Frames with a limit of `max`, as [`frames`] does, until the first [`Frame::TooLarge`]:
    /// the frames before it, its reply, and what the framer says after it.
    fn frames_until_too_large(
        max: usize,
        chunks: &[&[u8]],
    ) -> (Vec<Frame>, Option<String>, Option<Desync>) {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            while let Ok(Some(frame)) = f.next_frame() {
                if let Frame::TooLarge { reply } = frame {
                    f.push(OPTIONS.as_bytes());
                    return (out, reply, f.next_frame().err());
                }
                out.push(frame);
            }
        }
        panic!("never too large: {out:?}")
    }

    #[test]
    fn the_limit_is_the_configured_one_and_over_it_comes_a_513() {
        let body = "v=0\r\n".repeat(100);
        let msg = invite(&body, "Content-Length: ");
        let (out, err) = frames(&[msg.as_bytes()]);
        assert!(err.is_none() && out.len() == 1, "under the default limit");
        // exactly at the limit passes, one byte over is refused, in any split
        let mut at = Framer::new(msg.len());
        at.push(msg.as_bytes());
        assert!(matches!(at.next_frame(), Ok(Some(Frame::Message { .. }))));
        for cut in [1, 40, msg.len() / 2, msg.len() - 1] {
            let (before, reply, after) = frames_until_too_large(
                msg.len() - 1,
                &[&msg.as_bytes()[..cut], &msg.as_bytes()[cut..]],
            );
            assert!(before.is_empty(), "cut {cut}: {before:?}");
            let reply = reply.unwrap_or_else(|| panic!("cut {cut}: no 513"));
            assert!(
                reply.starts_with("SIP/2.0 513 Message Too Large\r\n"),
                "{reply}"
            );
            assert!(reply.contains("Call-ID: c1\r\n") && reply.contains("CSeq: 1 INVITE\r\n"));
            assert_eq!(after, Some("message too large"), "the framer is done");
        }
        // a declared Content-Length over the limit is refused before its body arrives
        let huge =
            invite("", "Content-Length: ").replace("Content-Length: 0", "Content-Length: 70000");
        let (_, reply, _) = frames_until_too_large(MAX_MESSAGE, &[huge.as_bytes()]);
        assert!(reply.unwrap().starts_with("SIP/2.0 513 "));
        // a message after a good one: the good one still comes out first
        let stream = format!("{OPTIONS}{msg}");
        let (before, reply, _) = frames_until_too_large(msg.len() - 1, &[stream.as_bytes()]);
        assert!(matches!(before.as_slice(), [Frame::Message { .. }]) && reply.is_some());
        // a header block without end: a 513 only if what was read can route it
        let endless = format!("OPTIONS sip:a SIP/2.0\r\n{}", "X-A: b\r\n".repeat(9000));
        let (_, reply, _) = frames_until_too_large(MAX_MESSAGE, &[endless.as_bytes()]);
        assert_eq!(reply, None);
        let routable = OPTIONS.replace("Content-Length: 0\r\n\r\n", &"X-A: b\r\n".repeat(300));
        let (_, reply, _) = frames_until_too_large(1000, &[routable.as_bytes()]);
        assert!(reply.unwrap().contains("Call-ID: o1\r\n"));
    }

    #[test]
    fn the_513_echoes_only_complete_lines() {
        let msg = OPTIONS.as_bytes();
        let full = too_large_for(msg).unwrap();
        assert!(
            full.starts_with("SIP/2.0 513 Message Too Large\r\n"),
            "{full}"
        );
        assert!(
            full.contains("To: <sip:a@127.0.0.1>;tag="),
            "a To tag added: {full}"
        );
        assert!(full.ends_with("Content-Length: 0\r\n\r\n"));
        // cut inside the CSeq line: that line is incomplete, so no reply can be routed
        let cseq = OPTIONS.find("CSeq: 1 OPT").unwrap() + 8;
        assert_eq!(too_large_for(&msg[..cseq]), None);
        // cut just after it: complete, answered with the same tag
        let after = OPTIONS.find("Content-Length").unwrap();
        assert_eq!(too_large_for(&msg[..after]).as_deref(), Some(full.as_str()));
        assert_eq!(
            too_large_for(b"SIP/2.0 200 OK\r\n"),
            None,
            "never answers a response"
        );
    }

    #[test]
    fn byte_soup_never_panics() {
        for soup in crate::test_support::byte_soup(7, 400, b"\r\n :lLSIP/2.0INVITE0123456789ab") {
            let _ = frames(&[&soup]);
        }
    }
}
