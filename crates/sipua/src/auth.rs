//! Answers 401/407 challenges with our own digest code ([`crate::digest`]), for REGISTER and
//! INVITE alike. Keeps the last challenge to authenticate the next request pre-emptively
//! (nonce count + 1, as pjsua does, saving a round trip per registration refresh), and refuses
//! to answer the same nonce twice within one request unless the server marked it stale, so a
//! wrong password ends in a failure instead of a loop.

use crate::digest::{self, Challenge, Credentials};
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
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_string(),
            password: password.to_string(),
            challenge: None,
            nc: 0,
            answered: None,
        }
    }

    /// Starts a new request (a new REGISTER exchange).
    pub fn new_request(&mut self) {
        self.answered = None;
    }

    /// Credentials for the next request from the last challenge, if any.
    pub fn preemptive(&mut self, method: &str, uri: &str) -> Option<Header> {
        let (challenge, proxy) = self.challenge.clone()?;
        self.nc += 1;
        self.header(&challenge, proxy, method, uri).ok()
    }

    /// The Authorization (401) or Proxy-Authorization (407) header answering `resp`, or `None`
    /// when the challenge should not be answered (same nonce again, not stale: bad credentials).
    pub fn answer(
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
        let Some(challenge) = header_values(resp, name)
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

/// Values of every header named `name` (case-insensitive), in order.
pub(crate) fn header_values(resp: &Response, name: &str) -> Vec<String> {
    resp.headers
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}
