//! SIP digest authentication, client side (RFC 2617, RFC 7616, RFC 8760).
//!
//! Why our own code: rsipstack (like rsip before it) computes SHA-256 and the `-sess`
//! variants wrongly, and registrars such as Kamailio or Asterisk offer them. This module is
//! pure (no sockets, no clock): it parses a `WWW-Authenticate` / `Proxy-Authenticate`
//! header value into a [`Challenge`], and builds the matching `Authorization` /
//! `Proxy-Authorization` header value with [`authorization`]. The caller supplies the
//! client nonce ([`new_cnonce`]) and the nonce count, so every output is reproducible and
//! tested against the RFC vectors.
//!
//! Only `qop=auth` is supported: `auth-int` needs the message body hashed, which no SIP
//! server we target requires; a challenge that offers nothing but `auth-int` is refused with
//! [`DigestError::UnsupportedQop`] rather than answered wrongly.

use std::fmt;

use md5::{Digest, Md5};
use sha2::Sha256;

/// Why a challenge could not be parsed or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DigestError {
    /// The header uses another scheme (`Basic`, `Bearer`, ...) or none at all.
    #[error("not a Digest challenge (scheme `{0}`)")]
    NotDigest(String),
    /// The parameter list does not follow `name=value, name="quoted value", ...`.
    #[error("malformed Digest challenge: {0}")]
    Malformed(String),
    /// A parameter every challenge must carry is absent.
    #[error("Digest challenge without `{0}`")]
    MissingParam(&'static str),
    /// The server asks for a hash we do not implement (for example `SHA-512-256`).
    #[error("unsupported digest algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The server offers only quality-of-protection options we do not implement
    /// (`auth-int`); the string lists what was offered.
    #[error("unsupported digest qop `{0}` (only `auth` is supported)")]
    UnsupportedQop(String),
}

/// The hash algorithm of a challenge (RFC 7616 section 3.3 and RFC 8760).
///
/// The `-sess` variants hash the client nonce into A1, so the same password hash is
/// bound to one client nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Algorithm {
    /// `MD5`, the default when a challenge names no algorithm.
    #[default]
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760 for SIP).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` token, case-insensitively as RFC 7616 requires.
    pub(crate) fn parse(token: &str) -> Result<Algorithm, DigestError> {
        let t = token.trim();
        if t.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if t.eq_ignore_ascii_case("MD5-sess") {
            Ok(Algorithm::Md5Sess)
        } else if t.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else if t.eq_ignore_ascii_case("SHA-256-sess") {
            Ok(Algorithm::Sha256Sess)
        } else {
            Err(DigestError::UnsupportedAlgorithm(t.to_string()))
        }
    }

    /// The token as written in an `Authorization` header.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether A1 includes the server and client nonces (the `-sess` variants).
    pub(crate) fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The lowercase hex hash of `data` with this algorithm's hash function.
    fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `WWW-Authenticate` or `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The protection space; shown to users and hashed into A1.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Opaque data the client must echo unchanged.
    pub opaque: Option<String>,
    /// The hash algorithm; [`Algorithm::Md5`] when the challenge names none.
    pub algorithm: Algorithm,
    /// The offered `qop` options, in the server's order (empty: RFC 2069 legacy mode).
    pub qop: Vec<String>,
    /// `stale=true`: the nonce expired but the credentials were right, so retry silently.
    pub stale: bool,
}

impl Challenge {
    /// Parses a header VALUE such as
    /// `Digest realm="x", nonce="y", qop="auth,auth-int", algorithm=SHA-256, opaque="z"`.
    ///
    /// Accepts quoted and unquoted values, commas inside quotes, backslash escapes in
    /// quoted strings, any case for the scheme and parameter names, and free whitespace
    /// around `=` and `,`. Unknown parameters (`domain`, `charset`, `userhash`, ...) are
    /// ignored. Never panics, whatever the input.
    pub(crate) fn parse(header_value: &str) -> Result<Challenge, DigestError> {
        let s = header_value.trim_start();
        let scheme_end = s
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(s.len());
        let scheme = &s[..scheme_end];
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::NotDigest(scheme.to_string()));
        }

        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop = Vec::new();
        let mut stale = false;

        for (name, value) in parse_params(&s[scheme_end..])? {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => opaque = Some(value),
                "algorithm" => algorithm = Algorithm::parse(&value)?,
                "qop" => {
                    qop = value
                        .split(',')
                        .map(str::trim)
                        .filter(|q| !q.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "stale" => stale = value.trim().eq_ignore_ascii_case("true"),
                _ => {}
            }
        }

        Ok(Challenge {
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            opaque,
            algorithm,
            qop,
            stale,
        })
    }

    /// The qop we answer with: `Some("auth")` when offered, `None` for a legacy challenge
    /// without qop, and an error when only options we cannot honour are offered.
    pub(crate) fn chosen_qop(&self) -> Result<Option<&'static str>, DigestError> {
        if self.qop.is_empty() {
            Ok(None)
        } else if self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
            Ok(Some("auth"))
        } else {
            Err(DigestError::UnsupportedQop(self.qop.join(",")))
        }
    }
}

/// Splits `name=value, name="quoted, value"` into pairs, unescaping quoted strings.
fn parse_params(input: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    loop {
        // Skip separators between parameters.
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() || c == ',' {
                chars.next();
            } else {
                break;
            }
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        // Parameter name up to '='.
        let mut end = input.len();
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() || c == ',' {
                end = i;
                break;
            }
            chars.next();
        }
        let name = &input[start..end.max(start)];
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some((_, '=')) => {}
            _ => {
                return Err(DigestError::Malformed(format!(
                    "parameter `{name}` has no value"
                )))
            }
        }
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else {
                break;
            }
        }
        let mut value = String::new();
        if let Some(&(_, '"')) = chars.peek() {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(DigestError::Malformed(format!(
                    "unterminated quoted value of `{name}`"
                )));
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        // After a value only whitespace may come before the next comma.
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c == ',' {
                break;
            } else {
                return Err(DigestError::Malformed(format!(
                    "unexpected `{c}` after the value of `{name}`"
                )));
            }
        }
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// The user's credentials for one realm. Borrowed so the password is not copied around.
#[derive(Clone, Copy)]
pub(crate) struct Credentials<'a> {
    /// The authentication user name (often the extension, e.g. `7779`).
    pub username: &'a str,
    /// The password; never logged (this type does not implement `Debug` on purpose).
    pub password: &'a str,
}

/// The raw lowercase-hex `response` value (RFC 7616 section 3.4.1).
///
/// `qop` is the chosen quality of protection (`Some("auth")`) or `None` for the RFC 2069
/// legacy form `H(HA1:nonce:HA2)`. `cnonce` is used for `qop` and for `-sess` algorithms;
/// `nc` is the nonce count, written as 8 hex digits.
pub(crate) fn compute_response(
    challenge: &Challenge,
    creds: &Credentials<'_>,
    method: &str,
    uri: &str,
    qop: Option<&str>,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = challenge.algorithm;
    let mut ha1 = alg.hash_hex(&format!(
        "{}:{}:{}",
        creds.username, challenge.realm, creds.password
    ));
    if alg.is_sess() {
        ha1 = alg.hash_hex(&format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = alg.hash_hex(&format!("{method}:{uri}"));
    match qop {
        Some(qop) => alg.hash_hex(&format!(
            "{ha1}:{}:{nc:08x}:{cnonce}:{qop}:{ha2}",
            challenge.nonce
        )),
        None => alg.hash_hex(&format!("{ha1}:{}:{ha2}", challenge.nonce)),
    }
}

/// Builds the `Authorization` / `Proxy-Authorization` header VALUE answering `challenge`
/// for a request `method` to `uri` (the Request-URI, exactly as sent).
///
/// With `qop` offered this is the RFC 7616 form with `cnonce`, `qop=auth` and `nc`; without
/// it the RFC 2069 legacy form (no `cnonce`, `qop` or `nc`) — except that the `-sess`
/// algorithms keep `cnonce`, since the server needs it to compute A1. `opaque` is echoed
/// when the challenge had one.
pub(crate) fn authorization(
    challenge: &Challenge,
    creds: &Credentials<'_>,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let qop = challenge.chosen_qop()?;
    let response = compute_response(challenge, creds, method, uri, qop, cnonce, nc);
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(creds.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        challenge.algorithm,
    );
    if qop.is_some() || challenge.algorithm.is_sess() {
        out.push_str(&format!(", cnonce={}", quote(cnonce)));
    }
    if let Some(qop) = qop {
        out.push_str(&format!(", qop={qop}, nc={nc:08x}"));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    Ok(out)
}

/// A fresh client nonce: 16 random bytes as 32 lowercase hex digits.
pub(crate) fn new_cnonce() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A quoted-string with `"` and `\` escaped (RFC 7230 section 3.2.6).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Lowercase hex, as digest hashes are written on the wire.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(s: &str) -> String {
        hex(&Md5::digest(s.as_bytes()))
    }

    fn sha256(s: &str) -> String {
        hex(&Sha256::digest(s.as_bytes()))
    }

    /// Parameters of an `Authorization` value, reusing the challenge parser.
    fn params(auth: &str) -> Vec<(String, String)> {
        let rest = auth.strip_prefix("Digest ").expect("Digest scheme");
        parse_params(rest).unwrap()
    }

    fn param(auth: &str, name: &str) -> Option<String> {
        params(auth)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const MUFASA_7616: Credentials<'static> = Credentials {
        username: "Mufasa",
        password: "Circle of Life",
    };

    fn rfc7616_challenge(algorithm: &str) -> Challenge {
        Challenge::parse(&format!(
            "Digest\n       realm=\"http-auth@example.org\",\n       qop=\"auth, auth-int\",\n       \
             algorithm={algorithm},\n       nonce=\"{RFC7616_NONCE}\",\n       opaque=\"{RFC7616_OPAQUE}\""
        ))
        .unwrap()
    }

    #[test]
    fn rfc7616_md5_vector() {
        let ch = rfc7616_challenge("MD5");
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert_eq!(ch.qop, vec!["auth", "auth-int"]);
        let r = compute_response(
            &ch,
            &MUFASA_7616,
            "GET",
            "/dir/index.html",
            Some("auth"),
            RFC7616_CNONCE,
            1,
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
        let auth = authorization(
            &ch,
            &MUFASA_7616,
            "GET",
            "/dir/index.html",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(
            auth,
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", uri=\"/dir/index.html\", \
             response=\"8ca523f5e9506fed4657c9700eebdbec\", algorithm=MD5, \
             cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, nc=00000001, \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let ch = rfc7616_challenge("SHA-256");
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        let auth = authorization(
            &ch,
            &MUFASA_7616,
            "GET",
            "/dir/index.html",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(
            param(&auth, "response").unwrap(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(param(&auth, "algorithm").unwrap(), "SHA-256");
        assert_eq!(param(&auth, "qop").unwrap(), "auth");
        assert_eq!(param(&auth, "nc").unwrap(), "00000001");
        assert_eq!(param(&auth, "opaque").unwrap(), RFC7616_OPAQUE);
    }

    #[test]
    fn rfc2617_md5_vector() {
        let ch = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let creds = Credentials {
            username: "Mufasa",
            password: "Circle Of Life",
        };
        let auth = authorization(&ch, &creds, "GET", "/dir/index.html", "0a4f113b", 1).unwrap();
        assert_eq!(
            param(&auth, "response").unwrap(),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(param(&auth, "cnonce").unwrap(), "0a4f113b");
        assert_eq!(
            param(&auth, "opaque").unwrap(),
            "5ccc069c403ebaf9f0171e9517f40e41"
        );
    }

    #[test]
    fn legacy_no_qop_md5() {
        let ch = Challenge::parse("Digest realm=\"asterisk\", nonce=\"4a3b2c1d\"").unwrap();
        assert!(ch.qop.is_empty());
        assert_eq!(ch.algorithm, Algorithm::Md5);
        let creds = Credentials {
            username: "7779",
            password: "secret",
        };
        let uri = "sip:it005.ru";
        let ha1 = md5("7779:asterisk:secret");
        let ha2 = md5(&format!("REGISTER:{uri}"));
        let expected = md5(&format!("{ha1}:4a3b2c1d:{ha2}"));
        let auth = authorization(&ch, &creds, "REGISTER", uri, "ignored", 7).unwrap();
        assert_eq!(param(&auth, "response").unwrap(), expected);
        assert_eq!(param(&auth, "cnonce"), None);
        assert_eq!(param(&auth, "qop"), None);
        assert_eq!(param(&auth, "nc"), None);
        assert_eq!(param(&auth, "opaque"), None);
        assert_eq!(param(&auth, "uri").unwrap(), uri);
        assert_eq!(param(&auth, "username").unwrap(), "7779");
        assert_eq!(param(&auth, "realm").unwrap(), "asterisk");
        assert_eq!(param(&auth, "nonce").unwrap(), "4a3b2c1d");
    }

    #[test]
    fn md5_sess_matches_formula() {
        let ch = Challenge::parse(
            "Digest realm=\"sip.example\", nonce=\"abc\", qop=\"auth\", algorithm=MD5-sess",
        )
        .unwrap();
        assert_eq!(ch.algorithm, Algorithm::Md5Sess);
        let creds = Credentials {
            username: "bob",
            password: "pw",
        };
        let ha1 = md5(&format!("{}:abc:cn1", md5("bob:sip.example:pw")));
        let ha2 = md5("INVITE:sip:alice@sip.example");
        let expected = md5(&format!("{ha1}:abc:0000000a:cn1:auth:{ha2}"));
        let auth =
            authorization(&ch, &creds, "INVITE", "sip:alice@sip.example", "cn1", 10).unwrap();
        assert_eq!(param(&auth, "response").unwrap(), expected);
        assert_eq!(param(&auth, "algorithm").unwrap(), "MD5-sess");
        assert_eq!(param(&auth, "nc").unwrap(), "0000000a");
    }

    #[test]
    fn sha256_sess_matches_formula() {
        let ch = Challenge::parse(
            "Digest realm=\"sip.example\", nonce=\"n0\", qop=\"auth\", algorithm=sha-256-SESS",
        )
        .unwrap();
        assert_eq!(ch.algorithm, Algorithm::Sha256Sess);
        let creds = Credentials {
            username: "bob",
            password: "pw",
        };
        let ha1 = sha256(&format!("{}:n0:cn2", sha256("bob:sip.example:pw")));
        let ha2 = sha256("REGISTER:sip:sip.example");
        let expected = sha256(&format!("{ha1}:n0:00000002:cn2:auth:{ha2}"));
        let r = compute_response(
            &ch,
            &creds,
            "REGISTER",
            "sip:sip.example",
            Some("auth"),
            "cn2",
            2,
        );
        assert_eq!(r, expected);
        assert_eq!(r.len(), 64);
    }

    #[test]
    fn sess_without_qop_keeps_cnonce() {
        let ch = Challenge::parse("Digest realm=r, nonce=n, algorithm=MD5-sess").unwrap();
        let creds = Credentials {
            username: "u",
            password: "p",
        };
        let auth = authorization(&ch, &creds, "REGISTER", "sip:r", "cc", 1).unwrap();
        let ha1 = md5(&format!("{}:n:cc", md5("u:r:p")));
        let expected = md5(&format!("{ha1}:n:{}", md5("REGISTER:sip:r")));
        assert_eq!(param(&auth, "response").unwrap(), expected);
        assert_eq!(param(&auth, "cnonce").unwrap(), "cc");
        assert_eq!(param(&auth, "qop"), None);
        assert_eq!(param(&auth, "nc"), None);
    }

    #[test]
    fn only_auth_int_is_refused() {
        let ch = Challenge::parse("Digest realm=r, nonce=n, qop=\"auth-int\"").unwrap();
        let creds = Credentials {
            username: "u",
            password: "p",
        };
        let err = authorization(&ch, &creds, "REGISTER", "sip:r", "c", 1).unwrap_err();
        assert_eq!(err, DigestError::UnsupportedQop("auth-int".into()));
        assert!(err.to_string().contains("auth-int"));
    }

    #[test]
    fn qop_auth_chosen_case_insensitively() {
        let ch = Challenge::parse("Digest realm=r, nonce=n, qop=\"auth-int, AUTH\"").unwrap();
        assert_eq!(ch.chosen_qop().unwrap(), Some("auth"));
    }

    #[test]
    fn parse_full_challenge() {
        let ch = Challenge::parse(
            "Digest realm=\"x\", nonce=\"y\", qop=\"auth,auth-int\", algorithm=SHA-256, \
             opaque=\"z\", stale=FALSE",
        )
        .unwrap();
        assert_eq!(
            ch,
            Challenge {
                realm: "x".into(),
                nonce: "y".into(),
                opaque: Some("z".into()),
                algorithm: Algorithm::Sha256,
                qop: vec!["auth".into(), "auth-int".into()],
                stale: false,
            }
        );
    }

    #[test]
    fn parse_case_whitespace_and_unquoted() {
        let ch = Challenge::parse(
            "  dIgEsT   REALM = \"a, b\" ,NONCE=abc123 ,  Stale=TRUE,algorithm = md5 ,qop=auth",
        )
        .unwrap();
        assert_eq!(ch.realm, "a, b");
        assert_eq!(ch.nonce, "abc123");
        assert!(ch.stale);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert_eq!(ch.qop, vec!["auth"]);
        assert_eq!(ch.opaque, None);
    }

    #[test]
    fn parse_stale_variants() {
        for (v, want) in [
            ("true", true),
            ("\"TRUE\"", true),
            ("false", false),
            ("x", false),
        ] {
            let ch = Challenge::parse(&format!("Digest realm=r, nonce=n, stale={v}")).unwrap();
            assert_eq!(ch.stale, want, "stale={v}");
        }
    }

    #[test]
    fn parse_escaped_quotes_and_ignored_params() {
        let ch = Challenge::parse(
            r#"Digest realm="say \"hi\"", domain="sip:a sip:b", nonce="n", charset=UTF-8, userhash=false"#,
        )
        .unwrap();
        assert_eq!(ch.realm, "say \"hi\"");
        assert_eq!(ch.nonce, "n");
    }

    #[test]
    fn parse_empty_realm_allowed() {
        let ch = Challenge::parse("Digest realm=\"\", nonce=\"n\"").unwrap();
        assert_eq!(ch.realm, "");
    }

    #[test]
    fn parse_algorithms() {
        for (token, alg) in [
            ("MD5", Algorithm::Md5),
            ("md5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("md5-SESS", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("sha-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
            ("\"SHA-256\"", Algorithm::Sha256),
        ] {
            let ch =
                Challenge::parse(&format!("Digest realm=r, nonce=n, algorithm={token}")).unwrap();
            assert_eq!(ch.algorithm, alg, "{token}");
            assert_eq!(Algorithm::parse(alg.as_str()).unwrap(), alg);
        }
        let ch = Challenge::parse("Digest realm=r, nonce=n").unwrap();
        assert_eq!(ch.algorithm, Algorithm::Md5);
    }

    #[test]
    fn parse_unknown_algorithm() {
        let err = Challenge::parse("Digest realm=r, nonce=n, algorithm=SHA-512-256").unwrap_err();
        assert_eq!(err, DigestError::UnsupportedAlgorithm("SHA-512-256".into()));
        assert_eq!(
            err.to_string(),
            "unsupported digest algorithm `SHA-512-256`"
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\"").unwrap_err(),
            DigestError::NotDigest("Basic".into())
        );
        assert_eq!(
            Challenge::parse("").unwrap_err(),
            DigestError::NotDigest(String::new())
        );
        assert_eq!(
            Challenge::parse("DigestX realm=r, nonce=n").unwrap_err(),
            DigestError::NotDigest("DigestX".into())
        );
        assert_eq!(
            Challenge::parse("Digest nonce=n").unwrap_err(),
            DigestError::MissingParam("realm")
        );
        assert_eq!(
            Challenge::parse("Digest realm=r").unwrap_err(),
            DigestError::MissingParam("nonce")
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"r, nonce=n").unwrap_err(),
            DigestError::Malformed(_)
        ));
        assert!(matches!(
            Challenge::parse("Digest realm, nonce=n").unwrap_err(),
            DigestError::Malformed(_)
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\"x, nonce=n").unwrap_err(),
            DigestError::Malformed(_)
        ));
    }

    #[test]
    fn quoting_in_authorization() {
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
        let creds = Credentials {
            username: "we\"ird\\",
            password: "p",
        };
        let auth = authorization(&ch, &creds, "REGISTER", "sip:r", "c", 1).unwrap();
        assert!(auth.contains(r#"username="we\"ird\\""#), "{auth}");
        // The hash covers the unescaped user name.
        assert_eq!(param(&auth, "username").unwrap(), "we\"ird\\");
        let expected = compute_response(&ch, &creds, "REGISTER", "sip:r", Some("auth"), "c", 1);
        assert_eq!(param(&auth, "response").unwrap(), expected);
    }

    #[test]
    fn nc_is_eight_hex_digits() {
        let ch = Challenge::parse("Digest realm=r, nonce=n, qop=auth").unwrap();
        let creds = Credentials {
            username: "u",
            password: "p",
        };
        let auth = authorization(&ch, &creds, "REGISTER", "sip:r", "c", 0xdead_beef).unwrap();
        assert_eq!(param(&auth, "nc").unwrap(), "deadbeef");
    }

    #[test]
    fn cnonce_is_random_hex() {
        let a = new_cnonce();
        let b = new_cnonce();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(md5(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn parse_never_panics() {
        let sample = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                      algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                      opaque=\"FQhe\\\"/qaU\", stale=TRUE, Дайджест=\"ж\"";
        for (i, _) in sample.char_indices() {
            let _ = Challenge::parse(&sample[..i]);
            let _ = Challenge::parse(&sample[i..]);
        }
        // Biased toward the characters the parser cares about.
        let soup = b"Digest =,\"\\ \trealmnoncqp\xff\xc3";
        for bytes in crate::test_support::byte_soup(0x2545_f491_4f6c_dd1d, 300, soup) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = Challenge::parse(&text);
            let _ = Challenge::parse(&format!("Digest {text}"));
        }
    }
}
