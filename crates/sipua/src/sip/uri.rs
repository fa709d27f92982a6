//! SIP URIs as we write and read them: `host:port` with IPv6 literals bracketed (in one place),
//! the user part of an address, a dialled target turned into a Request-URI.

use rsipstack::sip;

/// `host:port`, with an IPv6 literal in brackets (`[::1]:5060`) as URIs and Via need it.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host`, or `host:port` when the port is not the default 5060, as written into URIs.
pub(crate) fn host_port_unless_default(host: &str, port: u16) -> String {
    if port == 5060 {
        bracketed(host)
    } else {
        host_port(host, port)
    }
}

/// `host` as a URI writes it: an IPv6 literal in brackets (`[::1]`), anything else as given.
pub(crate) fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The user part of `sip:user@host`, `sips:user@host;params` or a bare `user`.
pub(crate) fn user_part(key: &str) -> &str {
    let key = key.trim();
    match key
        .strip_prefix("sip:")
        .or_else(|| key.strip_prefix("sips:"))
    {
        Some(rest) => rest.split(['@', ';', '>']).next().unwrap_or(rest),
        None => key,
    }
}

/// `sip:user@host` without display name, brackets or parameters.
pub(crate) fn strip_uri(uri: &str) -> String {
    uri.trim()
        .trim_start_matches('<')
        .split(['>', ';'])
        .next()
        .unwrap_or("")
        .to_string()
}

/// What the user dialled, as a Request-URI: a SIP URI as given (checked), `user@host` as
/// `sip:user@host`, and a number or extension at `server` (`host` or `host:port`).
pub(crate) fn dialled_target(to: &str, server: Option<&str>) -> Result<String, String> {
    let to = to.trim();
    if to.is_empty() {
        return Err("to: empty".into());
    }
    if to.starts_with("sip:") || to.starts_with("sips:") {
        let _: sip::Uri = to
            .try_into()
            .map_err(|e| format!("to: not a SIP URI: {to:?} ({e})"))?;
        return Ok(to.to_string());
    }
    if to.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"') {
        return Err(format!("to: not a number, extension or SIP URI: {to:?}"));
    }
    if to.contains('@') {
        return Ok(format!("sip:{to}"));
    }
    match server {
        Some(hp) => Ok(format!("sip:{to}@{hp}")),
        None => Err(format!(
            "to: {to:?} is a number but no server is configured; use a SIP URI such as sip:{to}@host:port"
        )),
    }
}

/// Whether `target` (a Request-URI) names `server:port`: its host equals the server's (case
/// and IPv6 brackets aside) and its port, when it has one, is `port`.
pub(crate) fn names_server(target: &str, server: &str, port: u16) -> bool {
    let Ok(uri) = sip::Uri::try_from(target) else {
        return false;
    };
    let host = uri.host_with_port.host.to_string();
    let same_host = host
        .trim_matches(['[', ']'])
        .eq_ignore_ascii_case(server.trim_matches(['[', ']']));
    let same_port = uri.host_with_port.port.is_none_or(|p| u16::from(p) == port);
    same_host && same_port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_literals_are_bracketed() {
        assert_eq!(host_port("::1", 5060), "[::1]:5060");
        assert_eq!(host_port("[::1]", 5062), "[::1]:5062");
        assert_eq!(host_port("pbx.example", 5070), "pbx.example:5070");
        assert_eq!(
            host_port_unless_default("2001:db8::1", 5060),
            "[2001:db8::1]"
        );
        assert_eq!(host_port_unless_default("pbx", 5060), "pbx");
        assert_eq!(host_port_unless_default("pbx", 5080), "pbx:5080");
        assert_eq!(bracketed("::1"), "[::1]");
        assert_eq!(bracketed("[::1]"), "[::1]");
        assert_eq!(bracketed("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn user_parts() {
        assert_eq!(user_part("7779"), "7779");
        assert_eq!(user_part("sip:7779@it005.ru"), "7779");
        assert_eq!(user_part(" sips:7779@h;transport=tls"), "7779");
    }

    #[test]
    fn uri_stripping() {
        assert_eq!(strip_uri("<sip:1000@pbx;transport=udp>"), "sip:1000@pbx");
        assert_eq!(strip_uri("sip:1000@pbx"), "sip:1000@pbx");
    }

    #[test]
    fn dialled_targets() {
        assert_eq!(dialled_target("1000", Some("pbx")).unwrap(), "sip:1000@pbx");
        assert_eq!(dialled_target("1000@h", None).unwrap(), "sip:1000@h");
        assert_eq!(
            dialled_target("sip:1@h:5062", None).unwrap(),
            "sip:1@h:5062"
        );
        assert!(dialled_target("1000", None)
            .unwrap_err()
            .contains("no server"));
        assert!(dialled_target("", Some("pbx")).is_err());
        assert!(dialled_target("a b", Some("pbx")).is_err());
    }

    #[test]
    fn server_names() {
        assert!(names_server("sip:1000@PBX.example", "pbx.example", 5060));
        assert!(names_server("sip:1000@pbx:5070", "pbx", 5070));
        assert!(!names_server("sip:1000@pbx:5071", "pbx", 5070));
        assert!(!names_server("sip:1000@other", "pbx", 5060));
        assert!(names_server("sip:1000@[::1]:5062", "::1", 5062));
        assert!(!names_server("not a uri", "pbx", 5060));
    }
}
