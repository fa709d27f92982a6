//! The `ws://` / `wss://` URL of the WebSocket transport (`websocketUrl`, the service's
//! `pbx_websocket_url`), parsed once so that a malformed one fails the config naming its field.

/// A parsed WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketUrl {
    /// `wss://`: WebSocket over TLS.
    pub secure: bool,
    /// The host, as written (an IPv6 literal without brackets).
    pub host: String,
    /// The port, 80/443 when the URL has none.
    pub port: u16,
    /// The path and query, `/` when the URL has none.
    pub path: String,
}

impl WebSocketUrl {
    /// Parses `ws://host[:port][/path]` or `wss://...`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("{why}: expected ws://host[:port][/path] or wss://..., got {url:?}")
        };
        let url_trimmed = url.trim();
        let lower = url_trimmed.to_ascii_lowercase();
        let (secure, rest) = if lower.starts_with("wss://") {
            (true, &url_trimmed[6..])
        } else if lower.starts_with("ws://") {
            (false, &url_trimmed[5..])
        } else {
            return Err(bad("not a WebSocket URL"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(bad("user info is not allowed"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '[' || c == ']') {
            return Err(bad("no host"));
        }
        if path.contains(char::is_whitespace) {
            return Err(bad("whitespace in the path"));
        }
        let port = match port {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        Ok(Self {
            secure,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The URL again, with its port spelled out.
    pub fn as_url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_their_defaults() {
        let u = WebSocketUrl::parse("wss://pbx.example.com/ws").unwrap();
        assert_eq!(
            (u.secure, u.host.as_str(), u.port, u.path.as_str()),
            (true, "pbx.example.com", 443, "/ws")
        );
        let u = WebSocketUrl::parse("WS://127.0.0.1:8088").unwrap();
        assert_eq!((u.secure, u.port, u.path.as_str()), (false, 8088, "/"));
        assert_eq!(u.as_url(), "ws://127.0.0.1:8088/");
        let u = WebSocketUrl::parse("ws://[::1]:5066/sip?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 5066, "/sip?x=1")
        );
        assert_eq!(u.as_url(), "ws://[::1]:5066/sip?x=1");
        let u = WebSocketUrl::parse("ws://h?x").unwrap();
        assert_eq!(u.path, "/?x");
    }

    #[test]
    fn malformed_urls_say_why() {
        for (url, why) in [
            ("http://pbx/ws", "not a WebSocket URL"),
            ("pbx:8088", "not a WebSocket URL"),
            ("ws://", "no host"),
            ("ws://:80/", "no host"),
            ("ws://pbx:0/", "bad port"),
            ("ws://pbx:99999/", "bad port"),
            ("ws://pbx:abc/", "bad port"),
            ("ws://[::1/", "unclosed ["),
            ("ws://u:p@pbx/", "user info is not allowed"),
            ("ws://pbx/a b", "whitespace in the path"),
        ] {
            let e = WebSocketUrl::parse(url).unwrap_err();
            assert!(e.starts_with(why), "{url}: {e}");
        }
    }
}
