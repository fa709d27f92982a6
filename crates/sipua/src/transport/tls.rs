//! TLS for the TLS and WSS transports, on rustls with the ring provider.
//!
//! rsipstack's own TLS client loads no CA roots unless given and dials `sips:` over plain TCP,
//! so we build the rustls configs here and run the handshake on connections we dial ourselves:
//! - the server certificate is verified by default against the system's CA bundle (read by
//!   rustls-native-certs) plus `tls.caFile`;
//! - SNI and the name check use `tls.serverName`, else the host name of the server, never the
//!   address the name resolved to;
//! - `tls.verify: false` accepts any certificate (still checking the handshake signatures),
//!   with one warning when the config is built;
//! - a failed handshake is an error that names the server and says why in plain words.
//!
//! The provider is passed explicitly to every builder: rustls' process-wide default is looked
//! up from the features linked, and panics when it cannot tell which provider to take.

use crate::config::TlsConfig;
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client built once per endpoint from its [`TlsConfig`]; cheap to clone.
#[derive(Clone)]
pub(crate) struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl TlsClient {
    /// Loads the roots and the client certificate. Errors name the config field at fault.
    pub(crate) fn new(tls: &TlsConfig) -> Result<Self> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Transport(format!("TLS: no usable protocol version: {e}")))?;
        let builder = if tls.verify {
            let roots = root_store(tls.ca_file.as_deref())?;
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::Config(format!("tls.caFile: no usable CA certificate: {e}")))?;
            builder.with_webpki_verifier(verifier)
        } else {
            tracing::warn!(
                "tls.verify is false: the server certificate is NOT verified; anyone on the \
                 path can impersonate the server"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        };
        let config = match (&tls.cert_file, &tls.key_file) {
            (Some(cert_file), Some(key_file)) => {
                let (chain, key) = load_identity(cert_file, key_file)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::Config(format!(
                        "tls.keyFile: {key_file:?} does not go with tls.certFile: {e}"
                    ))
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Self {
            config: Arc::new(config),
            server_name: tls.server_name.clone(),
        })
    }

    /// The name sent in SNI and checked against the certificate: `tls.serverName`, else `host`
    /// (the host of the server URI as configured, not the address it resolved to).
    pub(crate) fn server_name(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(bare.to_string())
            .map_err(|_| Error::Config(format!("TLS server name {name:?}: not a DNS name or IP")))
    }

    /// Runs the client handshake on a connected stream. `host` names the server as configured;
    /// the error names it and the cause ("unknown issuer", "certificate expired", "name
    /// mismatch (certificate is for X)", "handshake timed out after N ms").
    pub(crate) async fn connect<S>(
        &self,
        stream: S,
        host: &str,
        handshake_timeout: Duration,
    ) -> Result<client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.server_name(host)?;
        let checked = name.to_str().into_owned();
        let who = if checked == host.trim_start_matches('[').trim_end_matches(']') {
            format!("with {host}")
        } else {
            format!("with {host} (checked as {checked})")
        };
        let handshake = TlsConnector::from(self.config.clone()).connect(name, stream);
        bounded(handshake, handshake_timeout, &who).await
    }
}

/// A TLS server config from `tls.certFile`/`tls.keyFile`, for a TLS or WSS listener.
pub(crate) fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>> {
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(Error::Config(
            "tls.certFile/tls.keyFile: a TLS listener needs a certificate and its key".into(),
        ));
    };
    let (chain, key) = load_identity(cert_file, key_file)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Transport(format!("TLS: no usable protocol version: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::Config(format!(
                "tls.keyFile: {key_file:?} does not go with tls.certFile: {e}"
            ))
        })?;
    Ok(Arc::new(config))
}

/// Runs the server handshake on an accepted stream, bounded by `handshake_timeout`.
pub(crate) async fn accept<S>(
    config: &Arc<ServerConfig>,
    stream: S,
    peer: &str,
    handshake_timeout: Duration,
) -> Result<server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = TlsAcceptor::from(config.clone()).accept(stream);
    bounded(handshake, handshake_timeout, &format!("from {peer}")).await
}

/// A handshake bounded in time; its error reads "TLS handshake {who} failed: {why}".
async fn bounded<T>(
    handshake: impl std::future::Future<Output = std::io::Result<T>>,
    timeout: Duration,
    who: &str,
) -> Result<T> {
    let why = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(tls)) => return Ok(tls),
        Ok(Err(e)) => describe(&e),
        Err(_) => format!("handshake timed out after {} ms", timeout.as_millis()),
    };
    Err(Error::Transport(format!(
        "TLS handshake {who} failed: {why}"
    )))
}

/// The system's CA bundle plus `ca_file`. A system without a bundle (a bare container) is not
/// an error by itself: `tls.caFile` may be all that is trusted.
fn root_store(ca_file: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system CA bundle: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("system CA bundle: {added} roots loaded, {ignored} ignored");
    if let Some(path) = ca_file {
        let certs = read_certs("tls.caFile", path)?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                Error::Config(format!("tls.caFile: {path:?} has an unusable CA: {e}"))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(Error::Config(
            "tls.caFile: no CA to verify the server with (the system has no CA bundle); set \
             tls.caFile, or tls.verify: false to skip verification"
                .into(),
        ));
    }
    Ok(roots)
}

fn read_certs(field: &str, path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("{field}: cannot read PEM from {path:?}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{field}: no PEM certificate in {path:?}"
        )));
    }
    Ok(certs)
}

fn load_identity(
    cert_file: &str,
    key_file: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = read_certs("tls.certFile", cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        Error::Config(format!(
            "tls.keyFile: no PEM private key in {key_file:?}: {e}"
        ))
    })?;
    Ok((chain, key))
}

/// Plain words for a failed handshake; the rustls error rides inside the `io::Error`.
fn describe(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the peer closed the connection during the handshake".into()
            }
            _ => e.to_string(),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                "unknown issuer (the certificate is not signed by a trusted CA; add the CA to \
                 tls.caFile)"
                    .into()
            }
            CertificateError::ExpiredContext { not_after, .. } => {
                format!("certificate expired (on {})", utc_date(not_after.as_secs()))
            }
            CertificateError::Expired => "certificate expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet".into()
            }
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "name mismatch (certificate is for {}, not {})",
                if presented.is_empty() {
                    "no name".into()
                } else {
                    presented
                        .iter()
                        .map(|n| bare_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                expected.to_str()
            ),
            CertificateError::NotValidForName => "name mismatch".into(),
            CertificateError::BadSignature => "bad certificate signature".into(),
            CertificateError::Revoked => "certificate revoked".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the certificate is not for a TLS server".into()
            }
            other => format!("invalid certificate ({other:?})"),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("the peer refused the handshake (TLS alert {alert:?})")
        }
        rustls::Error::NoCertificatesPresented => "the peer sent no certificate".into(),
        other => other.to_string(),
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC), for the expiry in an error; the civil-from-days
/// conversion of the proleptic Gregorian calendar (400-year eras of 146097 days).
fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// rustls presents the certificate's names as `DnsName("pbx.example.com")`; keep the name.
fn bare_name(presented: &str) -> &str {
    match (presented.find('('), presented.rfind(')')) {
        (Some(open), Some(close)) if open < close => presented[open + 1..close].trim_matches('"'),
        _ => presented,
    }
}

/// `tls.verify: false`: any certificate chain is accepted, but the handshake signatures are
/// still checked, so the session is at least bound to the key in the certificate shown.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
