//! The characters of a header value, each marked inside or outside a quoted string (RFC 3261
//! §25.1 `quoted-string`: `"` ... `"`, a backslash escaping the next character inside). The
//! conformance checks and the LWS rewrite both read separators only outside quotes; this is
//! the one scanner they share.

/// Iterator over `(char, quoted)`: `quoted` is true for the quotes themselves and for
/// everything between them.
pub(crate) struct Quoting<I> {
    chars: I,
    quoted: bool,
    escaped: bool,
}

impl<I: Iterator<Item = char>> Quoting<I> {
    /// A quoted string still open where the value ends (RFC 4475 §3.1.2.6 quotbal).
    pub(crate) fn unterminated(&self) -> bool {
        self.quoted
    }
}

/// Scans `value` (see [`Quoting`]).
pub(crate) fn quoting(value: &str) -> Quoting<std::str::Chars<'_>> {
    Quoting {
        chars: value.chars(),
        quoted: false,
        escaped: false,
    }
}

impl<I: Iterator<Item = char>> Iterator for Quoting<I> {
    type Item = (char, bool);

    fn next(&mut self) -> Option<(char, bool)> {
        let c = self.chars.next()?;
        if !self.quoted {
            self.quoted = c == '"';
            return Some((c, self.quoted));
        }
        match c {
            _ if self.escaped => self.escaped = false,
            '\\' => self.escaped = true,
            '"' => self.quoted = false,
            _ => {}
        }
        Some((c, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_quotes_stay_inside_and_an_open_quote_is_reported() {
        let marks: String = quoting(r#"a "b\" ;" ;c"#)
            .map(|(_, q)| if q { 'q' } else { '.' })
            .collect();
        assert_eq!(marks, "..qqqqqqq...");
        let mut open = quoting(r#""J \\\"" <sip:j@e>"#);
        open.by_ref().for_each(drop);
        assert!(!open.unterminated());
        let mut open = quoting(r#""J \" <sip:j@e>"#);
        open.by_ref().for_each(drop);
        assert!(open.unterminated());
    }
}
