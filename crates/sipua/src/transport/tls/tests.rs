//! The TLS client against a rustls server on loopback, with certificates made here: a test CA,
//! leaves signed by it (good, expired, for another name), and a leaf of an unknown CA.

use super::*;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HANDSHAKE: Duration = Duration::from_secs(5);

/// A directory of PEM files, removed at the end of the test.
struct Pems(PathBuf);

impl Pems {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sipua-tls-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, pem: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Pems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for `names` signed by `issuer`, as (certificate PEM, key PEM).
fn leaf(issuer: &CertifiedIssuer<'_, KeyPair>, names: &[&str], expired: bool) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// One TLS server connection: handshake, then echo what arrives. Returns the SNI it saw.
async fn serve_once(config: Arc<ServerConfig>) -> (u16, tokio::task::JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        let mut tls = accept(&config, tcp, &peer.to_string(), HANDSHAKE)
            .await
            .ok()?;
        let sni = tls.get_ref().1.server_name().map(str::to_string);
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await.ok()?;
        tls.write_all(&buf[..n]).await.ok()?;
        tls.flush().await.ok()?;
        sni
    });
    (port, task)
}

fn server(pems: &Pems, (cert, key): &(String, String)) -> Arc<ServerConfig> {
    server_config(&TlsConfig {
        cert_file: Some(pems.write("server.pem", cert)),
        key_file: Some(pems.write("server.key", key)),
        ..TlsConfig::default()
    })
    .unwrap()
}

/// Dials the server as `host` with `tls`; returns the echo or the error message.
async fn dial(
    server: Arc<ServerConfig>,
    host: &str,
    tls: &TlsConfig,
) -> std::result::Result<(String, Option<String>), String> {
    let client = TlsClient::new(tls).map_err(|e| e.to_string())?;
    let (port, task) = serve_once(server).await;
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let result = async {
        let mut tls = client.connect(tcp, host, HANDSHAKE).await?;
        tls.write_all(b"OPTIONS").await?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await?;
        Ok::<_, Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
    .await
    .map_err(|e| e.to_string());
    let sni = task.await.unwrap();
    result.map(|echo| (echo, sni))
}

fn trusting(pems: &Pems, ca: &CertifiedIssuer<'_, KeyPair>) -> TlsConfig {
    TlsConfig {
        ca_file: Some(pems.write("ca.pem", &ca.pem())),
        ..TlsConfig::default()
    }
}

#[tokio::test]
async fn good_certificate_passes_by_name_and_by_ip() {
    let pems = Pems::new("good");
    let ca = ca("sipua test CA");
    let server = server(&pems, &leaf(&ca, &["localhost", "127.0.0.1", "::1"], false));
    let tls = trusting(&pems, &ca);
    let (echo, sni) = dial(server.clone(), "localhost", &tls).await.unwrap();
    assert_eq!(
        (echo.as_str(), sni.as_deref()),
        ("OPTIONS", Some("localhost"))
    );
    // An IP host is checked against the certificate's IP names; no SNI is sent for it.
    let (echo, sni) = dial(server, "127.0.0.1", &tls).await.unwrap();
    assert_eq!((echo.as_str(), sni), ("OPTIONS", None));
}

#[tokio::test]
async fn server_name_is_used_when_dialling_an_address() {
    let pems = Pems::new("sni");
    let ca = ca("sipua test CA");
    let server = server(&pems, &leaf(&ca, &["pbx.example.test"], false));
    let tls = TlsConfig {
        server_name: Some("pbx.example.test".into()),
        ..trusting(&pems, &ca)
    };
    let (_, sni) = dial(server.clone(), "127.0.0.1", &tls).await.unwrap();
    assert_eq!(sni.as_deref(), Some("pbx.example.test"));
    // a refusal names both the host dialled and the name checked
    let e = dial(
        server.clone(),
        "127.0.0.1",
        &TlsConfig {
            server_name: Some("other.example.test".into()),
            ..tls.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(
        e.contains(
            "TLS handshake with 127.0.0.1 (checked as other.example.test) failed: name mismatch"
        ),
        "{e}"
    );
    // Without it the resolved address is checked, and the certificate does not name it.
    let e = dial(server, "127.0.0.1", &trusting(&pems, &ca))
        .await
        .unwrap_err();
    assert!(
        e.contains("TLS handshake with 127.0.0.1")
            && e.contains("name mismatch (certificate is for pbx.example.test"),
        "{e}"
    );
}

#[tokio::test]
async fn unknown_issuer_wrong_name_and_expired_are_refused_in_plain_words() {
    let pems = Pems::new("refused");
    let ca = ca("sipua test CA");
    let tls = trusting(&pems, &ca);
    let stranger = leaf(&self::ca("unknown CA"), &["localhost"], false);
    let cases = [
        (stranger, "unknown issuer"),
        (
            leaf(&ca, &["other.example.test"], false),
            "name mismatch (certificate is for other.example.test, not localhost)",
        ),
        (
            leaf(&ca, &["localhost"], true),
            "certificate expired (on 2021-01-01)",
        ),
    ];
    for (cert, why) in cases {
        let e = dial(server(&pems, &cert), "localhost", &tls)
            .await
            .unwrap_err();
        assert!(
            e.contains("TLS handshake with localhost failed") && e.contains(why),
            "{why}: {e}"
        );
    }
}

#[tokio::test]
async fn the_system_roots_alone_do_not_trust_a_private_ca() {
    let pems = Pems::new("system");
    let ca = ca("sipua test CA");
    let server = server(&pems, &leaf(&ca, &["localhost"], false));
    match dial(server, "localhost", &TlsConfig::default()).await {
        Err(e) => assert!(
            e.contains("unknown issuer") || e.contains("no CA to verify"),
            "{e}"
        ),
        Ok(_) => panic!("a private CA must not be trusted by default"),
    }
}

/// Captures what the `tracing` macros print while `f` runs on this thread.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

#[tokio::test]
async fn verify_false_accepts_any_certificate_with_one_warning() {
    let pems = Pems::new("noverify");
    let stranger = leaf(&ca("unknown CA"), &["other.example.test"], true);
    let tls = TlsConfig {
        verify: false,
        ..TlsConfig::default()
    };
    let (client, log) = logged(|| TlsClient::new(&tls).unwrap());
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
    assert!(log.contains("tls.verify is false"), "{log}");
    let (port, task) = serve_once(server(&pems, &stranger)).await;
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut conn = client.connect(tcp, "localhost", HANDSHAKE).await.unwrap();
    conn.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    conn.read_exact(&mut b).await.unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move { listener.accept().await });
    let client = TlsClient::new(&TlsConfig {
        verify: false,
        ..TlsConfig::default()
    })
    .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let e = client
        .connect(tcp, "pbx.example.test", Duration::from_millis(200))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("TLS handshake with pbx.example.test failed: handshake timed out after 200 ms"),
        "{e}"
    );
    hold.abort();
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_configured() {
    let pems = Pems::new("client");
    let ca = ca("sipua test CA");
    let (cert, key) = leaf(&ca, &["localhost"], false);
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let server = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<std::result::Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    );
    let with_cert = TlsConfig {
        cert_file: Some(pems.write("client.pem", &cert)),
        key_file: Some(pems.write("client.key", &key)),
        ..trusting(&pems, &ca)
    };
    let (echo, _) = dial(server.clone(), "localhost", &with_cert).await.unwrap();
    assert_eq!(echo, "OPTIONS");
    // TLS 1.3 reports a refused client certificate after the handshake, on the first read.
    let e = dial(server, "localhost", &trusting(&pems, &ca))
        .await
        .unwrap_err();
    assert!(
        e.contains("CertificateRequired") || e.contains("alert"),
        "{e}"
    );
}

#[test]
fn utc_dates_of_unix_times() {
    for (secs, date) in [
        (0, "1970-01-01"),
        (951_782_400, "2000-02-29"),
        (1_609_459_200, "2021-01-01"),
        (4_107_542_399, "2100-02-28"),
    ] {
        assert_eq!(utc_date(secs), date, "{secs}");
    }
}

#[test]
fn bad_pem_is_an_error_naming_the_field() {
    let pems = Pems::new("badpem");
    let garbage = pems.write("garbage.pem", "-----BEGIN CERTIFICATE-----\n%%%\n");
    let empty = pems.write("empty.pem", "no pem here\n");
    let ca = ca("sipua test CA");
    let (cert, key) = leaf(&ca, &["localhost"], false);
    let (_, other_key) = leaf(&ca, &["localhost"], false);
    let cert = pems.write("cert.pem", &cert);
    let key = pems.write("key.pem", &key);
    let other_key = pems.write("other.key", &other_key);
    let cases = [
        (
            TlsConfig {
                ca_file: Some(garbage.clone()),
                ..TlsConfig::default()
            },
            "tls.caFile",
        ),
        (
            TlsConfig {
                ca_file: Some(empty.clone()),
                ..TlsConfig::default()
            },
            "tls.caFile",
        ),
        (
            TlsConfig {
                cert_file: Some(empty),
                key_file: Some(key.clone()),
                ..TlsConfig::default()
            },
            "tls.certFile",
        ),
        (
            TlsConfig {
                cert_file: Some(cert.clone()),
                key_file: Some(cert.clone()),
                ..TlsConfig::default()
            },
            "tls.keyFile",
        ),
        (
            TlsConfig {
                cert_file: Some(cert.clone()),
                key_file: Some(other_key),
                ..TlsConfig::default()
            },
            "tls.keyFile",
        ),
    ];
    for (tls, field) in cases {
        let e = TlsClient::new(&tls).err().expect(field).to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    let e = server_config(&TlsConfig {
        cert_file: Some(garbage),
        key_file: Some(key),
        ..TlsConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("tls.certFile"), "{e}");
    let e = server_config(&TlsConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls.certFile/tls.keyFile"), "{e}");
}
