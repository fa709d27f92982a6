//! Secrets never reach a log.
//!
//! SIP messages are logged and traced for debugging, and an `Authorization` or
//! `Proxy-Authorization` header carries the digest `response` (an offline dictionary
//! attack on the password starts from it) or, for `Basic`, the password itself. Every place
//! that logs a message or its headers passes it through [`mask_sip_message`] or
//! [`masked_headers`] first.
//!
//! What stays visible: the scheme and the `username` parameter, which is what one needs to
//! debug a registration. Everything else of the header value becomes `***`.
//!
//! The scanner is deliberately over-eager rather than exact: any header whose name ends in
//! `authorization` (so `Proxy-Authorization` and `X-Authorization` too) is masked wherever
//! it appears — at the start of a line, inside a log line, or in a `Debug`-escaped message
//! whose line breaks are the two characters `\r\n`. Folded continuation lines belong to
//! the header and are masked with it. The functions work on any text (lossy-decoded
//! garbage included) and never panic.
//!
//! SDES keys (RFC 4568 `a=crypto:... inline:<key||salt>` in an SDP body) are secrets too:
//! whoever reads them decrypts the call's SRTP. Their base64 becomes `***`; the tag, the suite
//! and any `|lifetime|MKI` stay, which is what one needs to debug a negotiation.

use std::borrow::Cow;

/// What replaces the secret part of a header value.
const MASK: &str = "***";
/// The header name suffix that marks a credential header (compared case-insensitively).
const NEEDLE: &[u8] = b"authorization";

/// Returns `text` with the values of `Authorization` / `Proxy-Authorization` headers masked,
/// keeping only the scheme and the `username` parameter, e.g.
/// `Authorization: Digest username="7779", ***`. Borrows when there is nothing to mask.
pub(crate) fn mask_sip_message(text: &str) -> Cow<'_, str> {
    match mask_credentials(text) {
        Cow::Borrowed(t) => mask_sdes_keys(t),
        Cow::Owned(t) => Cow::Owned(mask_sdes_keys(&t).into_owned()),
    }
}

/// The SDES `inline:` key material of `text` masked (case-insensitive, anywhere in the text).
fn mask_sdes_keys(text: &str) -> Cow<'_, str> {
    const INLINE: &[u8] = b"inline:";
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + INLINE.len() <= bytes.len() {
        if !bytes[i..i + INLINE.len()].eq_ignore_ascii_case(INLINE) {
            i += 1;
            continue;
        }
        let key_start = i + INLINE.len();
        let key_end = key_start
            + bytes[key_start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .count();
        if key_end > key_start {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[copied..key_start]);
            buf.push_str(MASK);
            copied = key_end;
        }
        i = key_end.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
    }
}

/// `text` with the credential headers' values masked (see the module doc).
fn mask_credentials(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // Text with real line breaks is a raw message; text without them may be a
    // Debug-escaped one, where a line ends at the two characters `\n`.
    let escaped_lines = !bytes.contains(&b'\n');
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already handled
    let mut i = 0;
    while i + NEEDLE.len() <= bytes.len() {
        // A word boundary before the name; `\n` in escaped text counts as one.
        let boundary =
            i == 0 || !bytes[i - 1].is_ascii_alphanumeric() || (i >= 2 && bytes[i - 2] == b'\\');
        if !boundary || !bytes[i..i + NEEDLE.len()].eq_ignore_ascii_case(NEEDLE) {
            i += 1;
            continue;
        }
        // Optional blanks, then the colon.
        let mut j = i + NEEDLE.len();
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b':' {
            i += 1;
            continue;
        }
        let value_start = j + 1;
        let value_end = value_end(bytes, value_start, escaped_lines);
        let value = &text[value_start..value_end];
        if !value.trim().is_empty() {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[copied..value_start]);
            buf.push(' ');
            buf.push_str(&mask_value(value));
            copied = value_end;
        }
        i = value_end.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
    }
}

/// Where a header value that starts at `start` ends: at a line break that is not followed
/// by a folding blank (RFC 3261 section 7.3.1), or at an escaped `\r` / `\n` in
/// `Debug`-escaped text. Always returns an index at an ASCII byte or the end of `bytes`.
fn value_end(bytes: &[u8], start: usize, escaped_lines: bool) -> usize {
    let mut k = start;
    while k < bytes.len() {
        match bytes[k] {
            b'\r' | b'\n' => {
                let mut next = k + 1;
                if bytes[k] == b'\r' && bytes.get(next) == Some(&b'\n') {
                    next += 1;
                }
                if matches!(bytes.get(next), Some(b' ') | Some(b'\t')) {
                    k = next; // folded continuation: part of the value
                    continue;
                }
                return k;
            }
            b'\\' if escaped_lines && matches!(bytes.get(k + 1), Some(b'r') | Some(b'n')) => {
                return k;
            }
            _ => k += 1,
        }
    }
    bytes.len()
}

/// Masks one credential header value: keeps the scheme token and the `username`
/// parameter, replaces the rest with `***`.
fn mask_value(value: &str) -> String {
    let v = value.trim_start();
    let scheme_end = v
        .find(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or(v.len());
    let scheme = &v[..scheme_end];
    // `username = "u"` without a scheme: the first token is a parameter name.
    let is_param_name = v[scheme_end..].trim_start().starts_with('=');
    let (scheme, params) = if !scheme.is_empty()
        && !is_param_name
        && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    {
        (Some(scheme), &v[scheme_end..])
    } else {
        (None, v)
    };
    let username = split_params(params).into_iter().find(|p| {
        let p = p.as_bytes();
        p.len() >= 8
            && p[..8].eq_ignore_ascii_case(b"username")
            && p[8..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'=')
    });
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push(' ');
    }
    if let Some(username) = username {
        out.push_str(&username);
        out.push_str(", ");
    }
    out.push_str(MASK);
    out
}

/// Splits at commas outside double quotes; a backslash escapes the next character
/// everywhere, which also keeps `Debug`-escaped `\"` from toggling the quote state.
/// Pieces are trimmed; line breaks inside them are flattened to spaces.
fn split_params(s: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            ',' if !in_quotes => pieces.push(std::mem::take(&mut cur)),
            '\r' | '\n' => cur.push(' '),
            _ => cur.push(c),
        }
    }
    pieces.push(cur);
    pieces
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a header name is a credential header: it ends in `authorization`
/// (case-insensitive) at a word boundary, like `Authorization` or `Proxy-Authorization`.
fn is_credential_header(name: &str) -> bool {
    let n = name.trim().as_bytes();
    n.len() >= NEEDLE.len()
        && n[n.len() - NEEDLE.len()..].eq_ignore_ascii_case(NEEDLE)
        && (n.len() == NEEDLE.len() || !n[n.len() - NEEDLE.len() - 1].is_ascii_alphanumeric())
}

/// Returns the headers with the values of credential headers masked as in
/// [`mask_sip_message`]; other headers are passed through unchanged.
pub(crate) fn masked_headers(
    headers: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    headers
        .map(|(name, value)| {
            if is_credential_header(&name) && !value.trim().is_empty() {
                let masked = mask_value(&value);
                (name, masked)
            } else {
                (name, value)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &str = "8ca523f5e9506fed4657c9700eebdbec";

    fn register(auth_line: &str) -> String {
        format!(
            "REGISTER sip:it005.ru SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:7779@it005.ru>\r\n\
             From: \"Operator\" <sip:7779@it005.ru>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710@192.168.1.10\r\n\
             CSeq: 2 REGISTER\r\n\
             Contact: <sip:7779@192.168.1.10:5060>\r\n\
             {auth_line}\r\n\
             Expires: 3600\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    const DIGEST: &str = "Digest username=\"7779\", realm=\"asterisk\", nonce=\"4a3b2c1d\", \
                          uri=\"sip:it005.ru\", response=\"8ca523f5e9506fed4657c9700eebdbec\", \
                          algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, opaque=\"5ccc\"";

    #[test]
    fn masks_register_authorization() {
        let msg = register(&format!("Authorization: {DIGEST}"));
        let masked = mask_sip_message(&msg);
        assert!(matches!(masked, Cow::Owned(_)));
        assert!(!masked.contains(RESPONSE), "{masked}");
        assert!(!masked.contains("0a4f113b"));
        assert!(!masked.contains("4a3b2c1d"));
        assert!(masked
            .contains("\r\nAuthorization: Digest username=\"7779\", ***\r\nExpires: 3600\r\n"));
        // Everything else is intact.
        assert_eq!(
            masked.replace("Authorization: Digest username=\"7779\", ***\r\n", ""),
            msg.replace(&format!("Authorization: {DIGEST}\r\n"), "")
        );
    }

    #[test]
    fn masks_proxy_authorization_lowercase_and_compact_spacing() {
        for line in [
            format!("proxy-authorization:{DIGEST}"),
            format!("PROXY-AUTHORIZATION :  {DIGEST}"),
            format!("authorization:\t{DIGEST}"),
        ] {
            let msg = register(&line);
            let masked = mask_sip_message(&msg);
            assert!(!masked.contains(RESPONSE), "{masked}");
            assert!(masked.contains("username=\"7779\", ***\r\n"), "{masked}");
        }
    }

    #[test]
    fn masks_folded_header() {
        let msg = register(
            "Authorization: Digest username=\"7779\",\r\n realm=\"asterisk\",\r\n\tresponse=\"8ca523f5e9506fed4657c9700eebdbec\",\r\n nonce=\"n\"",
        );
        let masked = mask_sip_message(&msg);
        assert!(!masked.contains(RESPONSE), "{masked}");
        assert!(masked.contains("Authorization: Digest username=\"7779\", ***\r\nExpires"));
    }

    #[test]
    fn folded_username_on_continuation_line() {
        let msg =
            "Authorization: Digest\r\n  response=\"secret1\",\r\n  username=\"bob\"\r\nTo: x\r\n";
        let masked = mask_sip_message(msg);
        assert_eq!(
            masked,
            "Authorization: Digest username=\"bob\", ***\r\nTo: x\r\n"
        );
    }

    #[test]
    fn lf_only_and_last_line_without_newline() {
        let masked = mask_sip_message("To: a\nAuthorization: Digest response=\"abc\"");
        assert_eq!(masked, "To: a\nAuthorization: Digest ***");
    }

    #[test]
    fn basic_and_bearer_schemes() {
        let masked = mask_sip_message("Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n");
        assert_eq!(masked, "Authorization: Basic ***\r\n");
        let masked = mask_sip_message("Authorization: Bearer eyJhbGciOi.x.y\r\n");
        assert_eq!(masked, "Authorization: Bearer ***\r\n");
    }

    #[test]
    fn several_headers_and_in_log_lines() {
        let text = "sent: Authorization: Digest username=\"a\", response=\"r1\"\n\
                    Proxy-Authorization: Digest username=\"b\", response=\"r2\"\n";
        let masked = mask_sip_message(text);
        assert_eq!(
            masked,
            "sent: Authorization: Digest username=\"a\", ***\n\
             Proxy-Authorization: Digest username=\"b\", ***\n"
        );
    }

    #[test]
    fn debug_escaped_message() {
        // What `{:?}` of a raw message looks like in a log line.
        let raw = register(&format!("Authorization: {DIGEST}"));
        let escaped = format!("{raw:?}");
        assert!(escaped.contains(RESPONSE));
        let masked = mask_sip_message(&escaped);
        assert!(!masked.contains(RESPONSE), "{masked}");
        assert!(
            masked.contains("username=\\\"7779\\\", ***\\r\\nExpires"),
            "{masked}"
        );
    }

    #[test]
    fn commas_inside_quotes() {
        let masked = mask_sip_message(
            "Authorization: Digest realm=\"a, username=x\", username=\"u, v\", response=\"z\"\r\n",
        );
        assert_eq!(masked, "Authorization: Digest username=\"u, v\", ***\r\n");
    }

    #[test]
    fn nothing_to_mask_borrows() {
        let msg = "INVITE sip:1000@it005.ru SIP/2.0\r\n\
                   WWW-Authenticate: Digest realm=\"a\", nonce=\"b\"\r\n\
                   Subject: authorization pending\r\n\
                   XAuthorization: not a credential header\r\n\r\n";
        assert!(matches!(mask_sip_message(msg), Cow::Borrowed(_)));
        assert!(matches!(mask_sip_message(""), Cow::Borrowed(_)));
        // An empty value has nothing to hide.
        assert!(matches!(
            mask_sip_message("Authorization:\r\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn body_lines_are_masked_too() {
        let msg = "MESSAGE sip:a SIP/2.0\r\nContent-Length: 40\r\n\r\nAuthorization: Digest response=\"zz\"\r\n";
        let masked = mask_sip_message(msg);
        assert!(!masked.contains("zz"));
    }

    #[test]
    fn non_ascii_around_header() {
        let msg = "From: \"Оператор call-центра\" <sip:7779@it005.ru>\r\nAuthorization: Digest username=\"оператор\", response=\"ж\"\r\n";
        let masked = mask_sip_message(msg);
        assert_eq!(
            masked,
            "From: \"Оператор call-центра\" <sip:7779@it005.ru>\r\nAuthorization: Digest username=\"оператор\", ***\r\n"
        );
    }

    #[test]
    fn masked_headers_masks_credential_names() {
        let headers = vec![
            ("Via".to_string(), "SIP/2.0/UDP h".to_string()),
            ("authorization".to_string(), DIGEST.to_string()),
            ("Proxy-Authorization".to_string(), DIGEST.to_string()),
            (
                "WWW-Authenticate".to_string(),
                "Digest realm=\"a\", nonce=\"b\"".to_string(),
            ),
            ("Authorization".to_string(), String::new()),
            ("NotAuthorization".to_string(), "kept".to_string()),
        ];
        let masked = masked_headers(headers.into_iter());
        assert_eq!(masked[0], ("Via".into(), "SIP/2.0/UDP h".into()));
        assert_eq!(masked[1].1, "Digest username=\"7779\", ***");
        assert_eq!(masked[2].1, "Digest username=\"7779\", ***");
        assert_eq!(masked[3].1, "Digest realm=\"a\", nonce=\"b\"");
        assert_eq!(masked[4].1, "");
        assert_eq!(masked[5].1, "kept");
    }

    #[test]
    fn mask_value_without_scheme_or_username() {
        assert_eq!(mask_value("response=\"x\""), "***");
        assert_eq!(mask_value("Digest"), "Digest ***");
        assert_eq!(
            mask_value("  USERNAME = \"u\" , nonce=1"),
            "USERNAME = \"u\", ***"
        );
        assert_eq!(mask_value("Digest usernamex=\"u\""), "Digest ***");
    }

    #[test]
    fn sdes_keys_are_masked_and_the_rest_of_the_line_stays() {
        let sdp = "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n\
                   a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:bXkgZnJpZW5kIGlzIGEgdmVyeSBmaW5lIHNhbHQx\r\n";
        let masked = mask_sip_message(sdp);
        assert!(
            !masked.contains("WVNfX19z") && !masked.contains("bXkgZnJp"),
            "{masked}"
        );
        assert!(masked.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:***|2^20|1:4\r\n"));
        assert!(masked.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:***\r\n"));
        assert!(matches!(
            mask_sip_message("a=crypto:1 x inline:"),
            Cow::Borrowed(_)
        ));
        // with a credential header in the same message, both are masked
        let both = format!(
            "{}{sdp}",
            register("Authorization: Digest username=\"7779\", response=\"d41d8cd9\"")
        );
        let masked = mask_sip_message(&both);
        assert!(
            !masked.contains("d41d8cd9") && !masked.contains("WVNfX19z"),
            "{masked}"
        );
    }

    #[test]
    fn never_panics() {
        let sample = register(&format!(
            "Proxy-Authorization: {DIGEST}\r\n\tfolded=\"ж\\\""
        ));
        for (i, _) in sample.char_indices() {
            let _ = mask_sip_message(&sample[..i]);
            let tail = mask_sip_message(&sample[i..]);
            assert!(
                !tail.contains(RESPONSE) || !tail.to_ascii_lowercase().contains("authorization")
            );
        }
        for bytes in crate::test_support::byte_soup(
            0x9e37_79b9_7f4a_7c15,
            400,
            b"Authorization:\r\n \t,\"\\=username\xff\xd0",
        ) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = mask_sip_message(&text);
            let _ = masked_headers(std::iter::once(("Authorization".into(), text.to_string())));
        }
    }
}
