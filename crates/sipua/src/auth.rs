//! Answers 401/407 challenges with our own digest code ([`crate::digest`]), for REGISTER and
//! INVITE alike. Holds the nonce count, and refuses to answer the same nonce twice unless the
//! server marked it stale, so a wrong password ends in a failure instead of a loop.

use crate::digest::{self, Challenge, Credentials};
use rsipstack::sip::headers::{Authorization, ProxyAuthorization};
use rsipstack::sip::{Header, Response, StatusCode};

pub(crate) struct Authenticator {
    username: String,
    password: String,
    last_nonce: Option<String>,
    nc: u32,
}

impl Authenticator {
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_string(),
            password: password.to_string(),
            last_nonce: None,
            nc: 0,
        }
    }

    /// Starts a new request: a challenge with the nonce answered before is answered again
    /// (registrars may reuse nonces across requests); within one request it is not.
    pub fn new_request(&mut self) {
        self.last_nonce = None;
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
        let Some(value) = header_values(resp, name)
            .into_iter()
            .find_map(|v| Challenge::parse(&v).ok())
        else {
            return Ok(None);
        };
        if self.last_nonce.as_deref() == Some(value.nonce.as_str()) && !value.stale {
            return Ok(None);
        }
        if self.last_nonce.as_deref() != Some(value.nonce.as_str()) {
            self.nc = 0;
        }
        self.nc += 1;
        self.last_nonce = Some(value.nonce.clone());
        let creds = Credentials {
            username: &self.username,
            password: &self.password,
        };
        let header =
            digest::authorization(&value, &creds, method, uri, &digest::new_cnonce(), self.nc)
                .map_err(|e| crate::Error::Sip(format!("cannot answer digest challenge: {e}")))?;
        Ok(Some(if proxy {
            Header::ProxyAuthorization(ProxyAuthorization::new(header))
        } else {
            Header::Authorization(Authorization::new(header))
        }))
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
