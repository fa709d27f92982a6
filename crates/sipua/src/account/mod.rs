//! The accounts (operators' extensions) and their registrations. The table is built once from
//! the config, keyed by extension; the registration loop of each account is in
//! [`registration`].

mod binding;
mod registration;

pub(crate) use registration::Registration;

use crate::config::{AccountConfig, EndpointConfig};
use crate::event::RegistrationState;
use crate::sip::uri::{bracketed, host_port_unless_default, user_part};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// One account and the URIs derived from it.
pub(crate) struct Account {
    pub config: AccountConfig,
    /// The address of record, `sip:<extension>@<domain>`.
    pub aor: String,
    /// The Request-URI of its REGISTER.
    pub registrar_uri: String,
    /// Where its registration is, as last reported (for the metrics).
    registration: Mutex<RegistrationState>,
}

impl Account {
    /// Where its registration is now.
    pub(crate) fn registration_state(&self) -> RegistrationState {
        self.registration
            .lock()
            .map(|s| *s)
            .unwrap_or(RegistrationState::Unregistered)
    }

    pub(crate) fn set_registration_state(&self, state: RegistrationState) {
        if let Ok(mut s) = self.registration.lock() {
            *s = state;
        }
    }
}

/// The accounts by extension (and digest user name, for lookups), in config order.
pub(crate) struct AccountTable {
    accounts: Vec<Arc<Account>>,
    by_key: HashMap<String, usize>,
}

impl AccountTable {
    /// `advertised` is the domain of accounts when neither they nor the config name one.
    pub(crate) fn new(config: &EndpointConfig, advertised: IpAddr) -> Self {
        let server = config
            .server
            .as_deref()
            .map(|host| host_port_unless_default(host, config.server_port.unwrap_or(5060)));
        let mut by_key = HashMap::new();
        let accounts: Vec<Arc<Account>> = config
            .accounts
            .iter()
            .enumerate()
            .map(|(i, acc)| {
                // An IPv6 server or address is a URI host only in brackets (`sip:7779@[::1]`).
                let domain = bracketed(
                    &acc.domain
                        .clone()
                        .or_else(|| config.server.clone())
                        .unwrap_or_else(|| advertised.to_string()),
                );
                let registrar_uri = match (&acc.domain, &server) {
                    (None, Some(hp)) => format!("sip:{hp}"),
                    _ => format!("sip:{domain}"),
                };
                // An extension wins over another account's user name of the same text.
                if let Some(user) = acc.username.as_deref().filter(|u| !u.is_empty()) {
                    by_key.entry(user.to_string()).or_insert(i);
                }
                by_key.insert(acc.extension.clone(), i);
                Arc::new(Account {
                    aor: format!("sip:{}@{domain}", acc.extension),
                    registrar_uri,
                    registration: Mutex::new(RegistrationState::Unregistered),
                    config: acc.clone(),
                })
            })
            .collect();
        Self { accounts, by_key }
    }

    /// The account whose extension, user name or AOR (`sip:user@domain`) is `key`.
    pub(crate) fn find(&self, key: &str) -> Option<&Arc<Account>> {
        self.by_key
            .get(user_part(key))
            .and_then(|&i| self.accounts.get(i))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_extension_user_name_or_aor() {
        let config = EndpointConfig {
            server: Some("it005.ru".into()),
            accounts: vec![
                AccountConfig {
                    extension: "7779".into(),
                    username: Some("op7779".into()),
                    ..AccountConfig::default()
                },
                AccountConfig {
                    extension: "7780".into(),
                    domain: Some("corp.example".into()),
                    ..AccountConfig::default()
                },
            ],
            ..EndpointConfig::default()
        };
        let table = AccountTable::new(&config, "127.0.0.1".parse().unwrap());
        let a = table.find("7779").unwrap();
        assert_eq!(
            (a.aor.as_str(), a.registrar_uri.as_str()),
            ("sip:7779@it005.ru", "sip:it005.ru")
        );
        assert!(Arc::ptr_eq(a, table.find("op7779").unwrap()));
        assert!(Arc::ptr_eq(a, table.find("sip:7779@it005.ru").unwrap()));
        let b = table.find("7780").unwrap();
        assert_eq!(
            (b.aor.as_str(), b.registrar_uri.as_str()),
            ("sip:7780@corp.example", "sip:corp.example")
        );
        assert!(table.find("1000").is_none());
    }

    #[test]
    fn ipv6_servers_and_addresses_are_bracketed_in_the_aor() {
        for server in ["::1", "[::1]"] {
            let config = EndpointConfig {
                server: Some(server.into()),
                server_port: Some(5070),
                accounts: vec![AccountConfig {
                    extension: "7779".into(),
                    ..AccountConfig::default()
                }],
                ..EndpointConfig::default()
            };
            let table = AccountTable::new(&config, "::1".parse().unwrap());
            let a = table.find("7779").unwrap();
            assert_eq!(
                (a.aor.as_str(), a.registrar_uri.as_str()),
                ("sip:7779@[::1]", "sip:[::1]:5070"),
                "server {server:?}"
            );
        }
        let serverless = EndpointConfig {
            accounts: vec![AccountConfig {
                extension: "7779".into(),
                ..AccountConfig::default()
            }],
            ..EndpointConfig::default()
        };
        let table = AccountTable::new(&serverless, "2001:db8::5".parse().unwrap());
        assert_eq!(table.find("7779").unwrap().aor, "sip:7779@[2001:db8::5]");
    }
}
