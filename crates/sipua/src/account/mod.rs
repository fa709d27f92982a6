//! The accounts (operators' extensions) and their registrations. The table is built from the
//! config at start and changes at run time (`addAccount`, `removeAccount`), keyed by
//! extension; the registration loop of each account is in [`registration`], the limits on
//! concurrent calls in [`limits`].

mod binding;
mod limits;
mod registration;

pub(crate) use limits::{CallSlot, EndpointCalls};
pub(crate) use registration::Registration;

use crate::config::{AccountConfig, EndpointConfig};
use crate::error::{Error, Result};
use crate::event::RegistrationState;
use crate::sip::uri::{bracketed, host_port_unless_default, user_part};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU32;
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
    /// Its calls not yet disconnected (against `config.max_calls`).
    calls: AtomicU32,
}

impl Account {
    fn new(config: AccountConfig, aor: String, registrar_uri: String) -> Self {
        Self {
            config,
            aor,
            registrar_uri,
            registration: Mutex::new(RegistrationState::Unregistered),
            calls: AtomicU32::new(0),
        }
    }

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

/// The accounts in order, and the index by extension and digest user name.
#[derive(Default)]
struct Accounts {
    list: Vec<Arc<Account>>,
    by_key: HashMap<String, Arc<Account>>,
}

impl Accounts {
    /// The index again after a change: an extension wins over another account's user name of
    /// the same text.
    fn reindex(&mut self) {
        self.by_key.clear();
        for acc in &self.list {
            if let Some(user) = acc.config.username.as_deref().filter(|u| !u.is_empty()) {
                self.by_key
                    .entry(user.to_string())
                    .or_insert_with(|| acc.clone());
            }
        }
        for acc in &self.list {
            self.by_key
                .insert(acc.config.extension.clone(), acc.clone());
        }
    }
}

/// The accounts by extension (and digest user name, for lookups), in the order they came,
/// and the endpoint's count of calls.
pub(crate) struct AccountTable {
    accounts: Mutex<Accounts>,
    /// `host[:port]` of the configured server: the registrar of accounts without a domain.
    server: Option<String>,
    /// The domain of accounts that name none: the server, else our address.
    default_domain: String,
    /// The endpoint's calls against `maxCalls`.
    pub call_limits: EndpointCalls,
}

impl AccountTable {
    /// `advertised` is the domain of accounts when neither they nor the config name one.
    pub(crate) fn new(config: &EndpointConfig, advertised: IpAddr) -> Self {
        let table = Self {
            accounts: Mutex::new(Accounts::default()),
            server: config
                .server
                .as_deref()
                .map(|host| host_port_unless_default(host, config.server_port.unwrap_or(5060))),
            default_domain: config
                .server
                .clone()
                .unwrap_or_else(|| advertised.to_string()),
            call_limits: EndpointCalls::new(config.max_calls),
        };
        for acc in &config.accounts {
            // validated (duplicates included) with the config
            let _ = table.add(acc.clone());
        }
        table
    }

    /// Adds an account (checked as at start: the error names the field); a duplicate
    /// extension is an error.
    pub(crate) fn add(&self, config: AccountConfig) -> Result<Arc<Account>> {
        config.validate("account")?;
        // An IPv6 server or address is a URI host only in brackets (`sip:7779@[::1]`).
        let domain = bracketed(config.domain.as_deref().unwrap_or(&self.default_domain));
        let registrar_uri = match (&config.domain, &self.server) {
            (None, Some(hp)) => format!("sip:{hp}"),
            _ => format!("sip:{domain}"),
        };
        let aor = format!("sip:{}@{domain}", config.extension);
        let mut accounts = self.lock()?;
        if accounts
            .list
            .iter()
            .any(|a| a.config.extension == config.extension)
        {
            return Err(Error::InvalidArgument(format!(
                "account.extension: {} is already an account",
                config.extension
            )));
        }
        let account = Arc::new(Account::new(config, aor, registrar_uri));
        accounts.list.push(account.clone());
        accounts.reindex();
        Ok(account)
    }

    /// Takes the account of `extension` out of the table (its calls and registration are
    /// the endpoint's to end).
    pub(crate) fn remove(&self, extension: &str) -> Result<Arc<Account>> {
        let mut accounts = self.lock()?;
        let i = accounts
            .list
            .iter()
            .position(|a| a.config.extension == extension)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("extension: no account {extension:?}"))
            })?;
        let account = accounts.list.remove(i);
        accounts.reindex();
        Ok(account)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Accounts>> {
        self.accounts
            .lock()
            .map_err(|_| Error::Sip("account table poisoned".into()))
    }

    /// The account whose extension, user name or AOR (`sip:user@domain`) is `key`.
    pub(crate) fn find(&self, key: &str) -> Option<Arc<Account>> {
        self.lock().ok()?.by_key.get(user_part(key)).cloned()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().map(|a| a.list.is_empty()).unwrap_or(true)
    }

    /// The accounts now, in order.
    pub(crate) fn list(&self) -> Vec<Arc<Account>> {
        self.lock().map(|a| a.list.clone()).unwrap_or_default()
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
        assert!(Arc::ptr_eq(&a, &table.find("op7779").unwrap()));
        assert!(Arc::ptr_eq(&a, &table.find("sip:7779@it005.ru").unwrap()));
        let b = table.find("7780").unwrap();
        assert_eq!(
            (b.aor.as_str(), b.registrar_uri.as_str()),
            ("sip:7780@corp.example", "sip:corp.example")
        );
        assert!(table.find("1000").is_none());
    }

    #[test]
    fn accounts_come_and_go_at_run_time() {
        let config = EndpointConfig {
            server: Some("pbx.test".into()),
            accounts: vec![AccountConfig {
                extension: "2001".into(),
                ..AccountConfig::default()
            }],
            ..EndpointConfig::default()
        };
        let table = AccountTable::new(&config, "127.0.0.1".parse().unwrap());
        let added = table
            .add(AccountConfig {
                extension: "2002".into(),
                username: Some("op2002".into()),
                ..AccountConfig::default()
            })
            .unwrap();
        assert_eq!(added.aor, "sip:2002@pbx.test");
        assert!(table.find("op2002").is_some());
        let dup = table
            .add(AccountConfig {
                extension: "2001".into(),
                ..AccountConfig::default()
            })
            .err()
            .unwrap()
            .to_string();
        assert!(
            dup.contains("account.extension: 2001 is already an account"),
            "{dup}"
        );
        let bad = table
            .add(AccountConfig {
                extension: "a b".into(),
                ..AccountConfig::default()
            })
            .err()
            .unwrap()
            .to_string();
        assert!(
            bad.contains("account.extension: not a SIP user part"),
            "{bad}"
        );
        table.remove("2002").unwrap();
        assert!(table.find("op2002").is_none() && table.find("2002").is_none());
        let unknown = table.remove("2002").err().unwrap().to_string();
        assert!(
            unknown.contains("extension: no account \"2002\""),
            "{unknown}"
        );
        let list: Vec<_> = table
            .list()
            .iter()
            .map(|a| a.config.extension.clone())
            .collect();
        assert_eq!(list, ["2001"]);
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
