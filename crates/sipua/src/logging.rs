//! Optional logging to stderr, with every line masked: rsipstack logs whole raw SIP messages
//! (with `Authorization` headers) at INFO, so masking happens on the written text, whatever
//! produced it, not per call site.

use crate::error::{Error, Result};
use std::io::Write;
use tracing::Level;

/// Installs the process-wide log subscriber at `level` (`error`, `warn`, `info`, `debug`,
/// `trace`). Logging is per process: the first call's level holds, later calls are no-ops.
pub fn init(level: &str) -> Result<()> {
    let level: Level = level.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "logLevel: expected error, warn, info, debug or trace, got {level:?}"
        ))
    })?;
    // A second service in the same process with its own logLevel is not an error.
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(|| MaskingWriter(std::io::stderr()))
        .try_init();
    Ok(())
}

/// Masks credentials in each formatted log line before it reaches `W`.
pub struct MaskingWriter<W: Write>(pub W);

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .write_all(mask_line(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Masks a log line in which a SIP message may appear raw or Debug-escaped (`\r\n` as text).
pub fn mask_line(line: &str) -> String {
    const ESCAPED: &str = "\\r\\n";
    if line.contains(ESCAPED) {
        let unescaped = line.replace(ESCAPED, "\r\n");
        crate::sip::mask::mask_sip_message(&unescaped).replace("\r\n", ESCAPED)
    } else {
        crate::sip::mask::mask_sip_message(line).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_raw_messages_are_masked() {
        let line = r#"INFO udp send raw_message="REGISTER sip:pbx SIP/2.0\r\nAuthorization: Digest username=\"7779\", response=\"0123456789abcdef\"\r\nCSeq: 2 REGISTER\r\n""#;
        let masked = mask_line(line);
        assert!(!masked.contains("0123456789abcdef"), "{masked}");
        assert!(masked.contains("CSeq: 2 REGISTER"));
    }

    #[test]
    fn plain_lines_pass() {
        assert_eq!(mask_line("hello world\n"), "hello world\n");
    }
}
