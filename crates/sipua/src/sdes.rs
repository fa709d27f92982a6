//! The `a=crypto` attribute of SDES (RFC 4568 §9.1), parsed and written:
//! `a=crypto:<tag> <crypto-suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [session params]`.
//!
//! Why lines are refused rather than half-used: a line we cannot follow to the letter (an MKI,
//! which every packet would have to carry, several keys, session parameters such as
//! `UNENCRYPTED_SRTP` or `KDR`) is skipped by offer/answer, which then picks another line or
//! none (RFC 4568 §7.1.2: unknown suites and parameters make the line unusable). Pure: no IO.

use crate::media::srtp::{CryptoSuite, SrtpKey, KEY_SALT_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CryptoAttribute {
    /// The tag (1-999999999) the answer repeats.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// The sender's master key and salt.
    pub key: SrtpKey,
}

/// Why an `a=crypto` value is not a line we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SdesError {
    /// Not `tag suite key-params` with a tag of at most 9 digits.
    #[error("malformed crypto attribute")]
    Syntax,
    /// A suite we do not implement (AES_256, F8, GCM...).
    #[error("unsupported crypto suite `{0}`")]
    UnsupportedSuite(String),
    /// The key is not `inline:` base64 of 30 bytes.
    #[error("bad inline key")]
    BadKey,
    /// An MKI, several keys, or session parameters.
    #[error("unsupported crypto parameter `{0}`")]
    UnsupportedParameter(String),
}

/// Parses the value of an `a=crypto` attribute (what follows `a=crypto:`). Never panics.
pub(crate) fn parse(value: &str) -> Result<CryptoAttribute, SdesError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(tag), Some(suite), Some(key_params)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(SdesError::Syntax);
    };
    if let Some(param) = fields.next() {
        return Err(SdesError::UnsupportedParameter(param.to_string()));
    }
    let tag = parse_tag(tag)?;
    let suite =
        CryptoSuite::from_name(suite).ok_or_else(|| SdesError::UnsupportedSuite(suite.into()))?;
    if key_params.contains(';') {
        return Err(SdesError::UnsupportedParameter("several keys".into()));
    }
    let inline = key_params
        .strip_prefix("inline:")
        .ok_or(SdesError::BadKey)?;
    let mut parts = inline.split('|');
    let key = decode_key(parts.next().unwrap_or(""))?;
    for part in parts {
        if part.contains(':') {
            return Err(SdesError::UnsupportedParameter(format!("MKI {part}")));
        }
        parse_lifetime(part)?;
    }
    Ok(CryptoAttribute { tag, suite, key })
}

/// The value of our `a=crypto` line (no lifetime: the default, 2^48 packets, is the suite's
/// maximum; no MKI).
pub(crate) fn format(tag: u32, suite: CryptoSuite, key: &SrtpKey) -> String {
    format!("{tag} {} inline:{}", suite.name(), STANDARD.encode(key.0))
}

/// `1*9DIGIT` (RFC 4568 §9.1).
fn parse_tag(tag: &str) -> Result<u32, SdesError> {
    if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SdesError::Syntax);
    }
    tag.parse().map_err(|_| SdesError::Syntax)
}

fn decode_key(text: &str) -> Result<SrtpKey, SdesError> {
    let bytes = STANDARD.decode(text).map_err(|_| SdesError::BadKey)?;
    let key: [u8; KEY_SALT_LEN] = bytes.try_into().map_err(|_| SdesError::BadKey)?;
    Ok(SrtpKey(key))
}

/// A lifetime, `2^n` or a decimal count of packets; we accept any (we never send that many
/// under one key in a call) but it must be one.
fn parse_lifetime(text: &str) -> Result<(), SdesError> {
    let digits = text.strip_prefix("2^").unwrap_or(text);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SdesError::Syntax);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4568 §4's example key.
    const RFC_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn parses_the_rfc_example_with_lifetime_and_our_own_lines() {
        let a = parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20")).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(STANDARD.encode(a.key.0), RFC_KEY);
        let a = parse(&format!(
            "  2   AES_CM_128_HMAC_SHA1_32   inline:{RFC_KEY}|1048576 "
        ))
        .unwrap();
        assert_eq!((a.tag, a.suite), (2, CryptoSuite::AesCm128HmacSha1_32));
        let key = SrtpKey::generate();
        let line = format(7, CryptoSuite::AesCm128HmacSha1_32, &key);
        assert!(
            line.starts_with("7 AES_CM_128_HMAC_SHA1_32 inline:"),
            "{line}"
        );
        assert_eq!(
            parse(&line).unwrap(),
            CryptoAttribute {
                tag: 7,
                suite: CryptoSuite::AesCm128HmacSha1_32,
                key
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_follow() {
        let cases = [
            ("", SdesError::Syntax),
            ("1 AES_CM_128_HMAC_SHA1_80", SdesError::Syntax),
            (
                &*format!("x AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}"),
                SdesError::Syntax,
            ),
            (
                &*format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}"),
                SdesError::Syntax,
            ),
            (
                &*format!("-1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}"),
                SdesError::Syntax,
            ),
            (
                &*format!("1 AES_256_CM_HMAC_SHA1_80 inline:{RFC_KEY}"),
                SdesError::UnsupportedSuite("AES_256_CM_HMAC_SHA1_80".into()),
            ),
            (
                &*format!("1 aes_cm_128_hmac_sha1_80 inline:{RFC_KEY}"),
                SdesError::UnsupportedSuite("aes_cm_128_hmac_sha1_80".into()),
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:", SdesError::BadKey),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", SdesError::BadKey),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:QUJD", SdesError::BadKey),
            (
                &*format!("1 AES_CM_128_HMAC_SHA1_80 key:{RFC_KEY}"),
                SdesError::BadKey,
            ),
            (
                &*format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^x"),
                SdesError::Syntax,
            ),
            (
                &*format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}||"),
                SdesError::Syntax,
            ),
            (
                &*format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:4"),
                SdesError::UnsupportedParameter("MKI 1:4".into()),
            ),
            (
                &*format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY};inline:{RFC_KEY}"),
                SdesError::UnsupportedParameter("several keys".into()),
            ),
            (
                &*format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY} UNENCRYPTED_SRTP"),
                SdesError::UnsupportedParameter("UNENCRYPTED_SRTP".into()),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(parse(value), Err(want), "{value:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"0123456789 |:^;inlAES_CM_128HMACSHA1_80/+=\t\xc3\xa9";
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 70) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 50)) as usize + i) % alphabet.len()])
                .collect();
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
