//! The call-center service's own settings rows: one PBX row and one row per operator, with
//! numbers and booleans as a database returns them (strings too), mapped onto the typed config.

use super::{AccountConfig, EndpointConfig, TransportKind};
use crate::error::{Error, Result};
use serde_json::Value;

impl AccountConfig {
    /// One operator settings row (`pbx_extension`, `pbx_username`, `pbx_password`,
    /// `pbx_display_name`); `field` names the row in errors (`operators[2]`).
    pub fn from_operator_row(row: &Value, field: &str) -> Result<Self> {
        let extension = opt_string(row, "pbx_extension")?
            .or(opt_string(row, "pbx_username")?)
            .ok_or_else(|| Error::Config(format!("{field}.pbx_extension: missing")))?;
        Ok(AccountConfig {
            extension,
            username: opt_string(row, "pbx_username")?,
            password: opt_string(row, "pbx_password")?.unwrap_or_default(),
            display_name: opt_string(row, "pbx_display_name")?,
            ..AccountConfig::default()
        })
    }
}

impl EndpointConfig {
    /// Builds a config from the service's settings rows: one PBX row (`pbx_server`, `pbx_port`,
    /// `pbx_transport`, `pbx_rtp_port_min`, `pbx_rtp_port_max`, `pbx_use_websocket`,
    /// `pbx_websocket_url`) and one row per operator (`pbx_extension`, `pbx_username`,
    /// `pbx_password`, `pbx_display_name`). Numbers may come as strings, as databases store them.
    /// `overrides` (camelCase) is applied on top, e.g. `{ "localPort": 0 }`.
    pub fn from_settings(
        pbx: &Value,
        operators: &[Value],
        overrides: Option<&Value>,
    ) -> Result<Self> {
        let mut config = EndpointConfig {
            server: opt_string(pbx, "pbx_server")?,
            ..EndpointConfig::default()
        };
        if let Some(port) = opt_u16(pbx, "pbx_port")? {
            config.server_port = Some(port);
        }
        if let Some(t) = opt_string(pbx, "pbx_transport")? {
            config.transport = TransportKind::parse(&t).ok_or_else(|| {
                Error::Config(format!(
                    "pbx_transport: expected UDP, TCP, TLS, WS or WSS, got {t:?}"
                ))
            })?;
        }
        if let Some(min) = opt_u16(pbx, "pbx_rtp_port_min")? {
            config.rtp_port_min = min;
        }
        if let Some(max) = opt_u16(pbx, "pbx_rtp_port_max")? {
            config.rtp_port_max = max;
        }
        config.use_websocket = opt_bool(pbx, "pbx_use_websocket")?.unwrap_or(false);
        config.websocket_url = opt_string(pbx, "pbx_websocket_url")?;
        for (i, row) in operators.iter().enumerate() {
            config.accounts.push(AccountConfig::from_operator_row(
                row,
                &format!("operators[{i}]"),
            )?);
        }
        if let Some(Value::Object(map)) = overrides {
            let mut merged =
                serde_json::to_value(&config).map_err(|e| Error::Config(e.to_string()))?;
            // Passwords are not serialized; carry them over by position.
            let passwords: Vec<String> =
                config.accounts.iter().map(|a| a.password.clone()).collect();
            if let Value::Object(target) = &mut merged {
                for (k, v) in map {
                    target.insert(k.clone(), v.clone());
                }
            }
            let mut over: EndpointConfig =
                serde_json::from_value(merged).map_err(|e| Error::Config(e.to_string()))?;
            if !map.contains_key("accounts") {
                for (a, p) in over.accounts.iter_mut().zip(passwords) {
                    a.password = p;
                }
            }
            config = over;
        }
        config.resolve_websocket("pbx_websocket_url")?;
        config.validate()?;
        Ok(config)
    }
}

fn field<'a>(row: &'a Value, name: &str) -> Option<&'a Value> {
    match row.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

fn opt_string(row: &Value, name: &str) -> Result<Option<String>> {
    match field(row, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(Error::Config(format!(
            "{name}: expected a string, got {other}"
        ))),
    }
}

fn opt_u16(row: &Value, name: &str) -> Result<Option<u16>> {
    let bad = |v: &dyn std::fmt::Display| {
        Error::Config(format!("{name}: expected a port number 1-65535, got {v}"))
    };
    match field(row, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .map(|p| Some(p as u16))
            .ok_or_else(|| bad(n)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| bad(&format!("{s:?}"))),
        Some(other) => Err(bad(other)),
    }
}

fn opt_bool(row: &Value, name: &str) -> Result<Option<bool>> {
    match field(row, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_f64() != Some(0.0))),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(Error::Config(format!(
                "{name}: expected a boolean, got {s:?}"
            ))),
        },
        Some(other) => Err(Error::Config(format!(
            "{name}: expected a boolean, got {other}"
        ))),
    }
}
