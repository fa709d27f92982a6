//! Answers 401/407 challenges with our own digest code ([`super::digest`]), for REGISTER and
//! INVITE alike. Keeps the last challenge to authenticate the next request pre-emptively
//! (nonce count + 1, as pjsua does, saving a round trip per registration refresh), and refuses
//! to answer the same nonce twice within one request unless the server marked it stale, so a
//! wrong password ends in a failure instead of a loop.

use super::digest::{self, Challenge, Credentials};
use super::message::{header_values, reason_of};
use rsipstack::sip::headers::{Authorization, ProxyAuthorization};
use rsipstack::sip::{Header, Response, StatusCode};

pub(crate) struct Authenticator {
    username: String,
    password: String,
    /// The last challenge received and whether it came in a 407.
    challenge: Option<(Challenge, bool)>,
    nc: u32,
    /// The nonce answered after a challenge in the current request.
    answered: Option<String>,
}

impl Authenticator {
    pub(crate) fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_string(),
            password: password.to_string(),
            challenge: None,
            nc: 0,
            answered: None,
        }
    }

    /// Starts a new request (a new REGISTER exchange).
    pub(crate) fn new_request(&mut self) {
        self.answered = None;
    }

    /// Credentials for the next request from the last challenge, if any.
    pub(crate) fn preemptive(&mut self, method: &str, uri: &str) -> Option<Header> {
        let (challenge, proxy) = self.challenge.clone()?;
        self.nc += 1;
        self.header(&challenge, proxy, method, uri).ok()
    }

    /// The Authorization (401) or Proxy-Authorization (407) header answering `resp`, or `None`
    /// when the challenge should not be answered (same nonce again, not stale: bad credentials).
    pub(crate) fn answer(
        &mut self,
        resp: &Response,
        method: &str,
        uri: &str,
    ) -> crate::Result<Option<Header>> {
        let proxy = resp.status_code == StatusCode::ProxyAuthenticationRequired;
        let name = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let Some(challenge) = header_values(&resp.headers, name)
            .into_iter()
            .find_map(|v| Challenge::parse(&v).ok())
        else {
            return Ok(None);
        };
        if self.answered.as_deref() == Some(challenge.nonce.as_str()) && !challenge.stale {
            return Ok(None);
        }
        let same_nonce = self
            .challenge
            .as_ref()
            .is_some_and(|(c, _)| c.nonce == challenge.nonce);
        if !same_nonce {
            self.nc = 0;
        }
        self.nc += 1;
        self.answered = Some(challenge.nonce.clone());
        let header = self.header(&challenge, proxy, method, uri)?;
        self.challenge = Some((challenge, proxy));
        Ok(Some(header))
    }

    fn header(
        &self,
        challenge: &Challenge,
        proxy: bool,
        method: &str,
        uri: &str,
    ) -> crate::Result<Header> {
        let creds = Credentials {
            username: &self.username,
            password: &self.password,
        };
        let value = digest::authorization(
            challenge,
            &creds,
            method,
            uri,
            &digest::new_cnonce(),
            self.nc,
        )
        .map_err(|e| crate::Error::Sip(format!("cannot answer digest challenge: {e}")))?;
        Ok(if proxy {
            Header::ProxyAuthorization(ProxyAuthorization::new(value))
        } else {
            Header::Authorization(Authorization::new(value))
        })
    }
}

/// How many times one request goes out in all: the first try and up to two answered
/// challenges (a second one only when the first answer's nonce went stale).
const MAX_SENDS: usize = 3;

/// A challenge we could not answer: the status and reason to report.
#[derive(Debug, PartialEq)]
pub(crate) struct Refused {
    pub code: u16,
    pub reason: String,
}

/// The one 401/407 policy of REGISTER and INVITE: each challenge of a request is answered
/// (a repeated nonce is refused: wrong credentials), at most [`MAX_SENDS`] tries in all, and
/// without credentials a challenge is refused at once. The caller loops: send, and on a 401/407
/// send again with [`ChallengeLoop::answer`]'s header.
pub(crate) struct ChallengeLoop<'a> {
    auth: Option<&'a mut Authenticator>,
    method: &'a str,
    uri: &'a str,
    sent: usize,
}

impl<'a> ChallengeLoop<'a> {
    /// Starts a request (its first send is counted here).
    pub(crate) fn new(auth: Option<&'a mut Authenticator>, method: &'a str, uri: &'a str) -> Self {
        Self {
            auth,
            method,
            uri,
            sent: 1,
        }
    }

    /// The credentials to send the request again with after the challenge `resp`, or why not.
    pub(crate) fn answer(&mut self, resp: &Response) -> Result<Header, Refused> {
        if self.sent >= MAX_SENDS {
            return Err(Refused {
                code: 401,
                reason: "challenged again after authenticating".into(),
            });
        }
        let header = self
            .auth
            .as_deref_mut()
            .and_then(|a| a.answer(resp, self.method, self.uri).ok().flatten());
        match header {
            Some(h) => {
                self.sent += 1;
                Ok(h)
            }
            None => Err(Refused {
                code: resp.status_code.code(),
                reason: reason_of(resp),
            }),
        }
    }
}

/// Whether `resp` is a digest challenge (401 from a UAS or registrar, 407 from a proxy).
pub(crate) fn is_challenge(resp: &Response) -> bool {
    matches!(
        resp.status_code,
        StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    fn challenge(code: u16, nonce: &str, stale: bool) -> Response {
        let (name, reason) = match code {
            407 => ("Proxy-Authenticate", "Proxy Authentication Required"),
            _ => ("WWW-Authenticate", "Unauthorized"),
        };
        let text = format!(
            "SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n{name}: Digest realm=\"r\", nonce=\"{nonce}\", qop=\"auth\"{}\r\nContent-Length: 0\r\n\r\n",
            if stale { ", stale=true" } else { "" }
        );
        match SipMessage::try_from(text.as_str()).unwrap() {
            SipMessage::Response(r) => r,
            SipMessage::Request(_) => panic!("a response"),
        }
    }

    #[test]
    fn a_challenge_is_answered_once_per_nonce() {
        let mut auth = Authenticator::new("7779", "secret");
        let mut rounds = ChallengeLoop::new(Some(&mut auth), "REGISTER", "sip:h");
        let header = rounds.answer(&challenge(401, "n1", false)).unwrap();
        assert!(matches!(header, Header::Authorization(_)));
        // the same nonce again: the credentials were wrong, report the 401 itself
        let refused = rounds.answer(&challenge(401, "n1", false)).unwrap_err();
        assert_eq!(
            refused,
            Refused {
                code: 401,
                reason: "Unauthorized".into()
            }
        );
    }

    #[test]
    fn stale_nonces_are_answered_until_the_send_limit() {
        let mut auth = Authenticator::new("7779", "secret");
        let mut rounds = ChallengeLoop::new(Some(&mut auth), "INVITE", "sip:1000@h");
        let first = rounds.answer(&challenge(407, "n1", false)).unwrap();
        assert!(matches!(first, Header::ProxyAuthorization(_)));
        assert!(
            rounds.answer(&challenge(407, "n1", true)).is_ok(),
            "stale: answered again"
        );
        let refused = rounds.answer(&challenge(407, "n2", false)).unwrap_err();
        assert_eq!(refused.code, 401);
        assert!(refused.reason.contains("challenged again"), "{refused:?}");
    }

    #[test]
    fn without_credentials_a_challenge_is_final() {
        let mut rounds = ChallengeLoop::new(None, "INVITE", "sip:1000@h");
        let refused = rounds.answer(&challenge(407, "n1", false)).unwrap_err();
        assert_eq!(refused.code, 407);
        assert!(is_challenge(&challenge(401, "n", false)));
    }
}
