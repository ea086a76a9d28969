//! TLS against servers this test starts, with certificates made at test time
//! (rcgen): a private CA, a server certificate for localhost and 127.0.0.1,
//! a client certificate. HTTP/1.1 and HTTP/2 (ALPN) over TLS, verification
//! failure counted as `tls` with its reason (unknown issuer, name mismatch,
//! expired, handshake refused), `--cacert`, `--insecure`, mutual TLS, and
//! `--resolve` (a name kept for SNI, verification and Host, sent to an
//! address).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::common::{load_report, temp_dir};

/// A private CA, a server certificate and a client certificate it signed,
/// written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    /// For localhost and 127.0.0.1.
    server: Identity,
    /// For localhost, expired in 2021.
    expired: Identity,
    /// For gateway.test only (a name no DNS knows: `--resolve` reaches it).
    named: Identity,
}

type Identity = (CertificateDer<'static>, PrivateKeyDer<'static>);

impl Pki {
    fn new() -> Self {
        let dir = temp_dir();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose, expired: bool| {
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![purpose];
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert, key)
        };
        let identity = |(cert, key): (rcgen::Certificate, KeyPair)| -> Identity {
            (
                cert.der().clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
        };
        let server_auth = ExtendedKeyUsagePurpose::ServerAuth;
        let localhost = || vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let server = identity(leaf(localhost(), server_auth.clone(), false));
        let expired = identity(leaf(localhost(), server_auth.clone(), true));
        let named = identity(leaf(vec!["gateway.test".into()], server_auth, false));
        let (client_cert, client_key) = leaf(
            vec!["gateprobe-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("not-pem.txt"), "hello").unwrap();
        let other = KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("other.key"), other.serialize_pem()).unwrap();
        let (cert, key) = leaf(localhost(), ExtendedKeyUsagePurpose::ServerAuth, false);
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Pki {
            dir,
            ca: ca.der().clone(),
            server,
            expired,
            named,
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}

/// Requests served, by the protocol ALPN chose.
#[derive(Default)]
struct Served {
    http1: AtomicU64,
    http2: AtomicU64,
    /// The last request's Host header (HTTP/1.1).
    host: std::sync::Mutex<Option<String>>,
}

/// An HTTPS server on 127.0.0.1:0 answering 200 over HTTP/1.1 or HTTP/2 (ALPN);
/// with `require_client_cert`, only to clients presenting one the CA signed.
async fn serve_tls(pki: &Pki, require_client_cert: bool) -> (SocketAddr, Arc<Served>) {
    serve_identity(pki, &pki.server, require_client_cert).await
}

/// [`serve_tls`] with a chosen server certificate.
async fn serve_identity(
    pki: &Pki,
    identity: &Identity,
    require_client_cert: bool,
) -> (SocketAddr, Arc<Served>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(vec![identity.0.clone()], identity.1.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::new(Served::default());
    let counts = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, counts) = (acceptor.clone(), counts.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    if let Some(host) = request.headers().get(hyper::header::HOST) {
                        *counts.host.lock().unwrap() = host.to_str().ok().map(String::from);
                    }
                    let counter = if h2 { &counts.http2 } else { &counts.http1 };
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, served)
}

fn count(report: &serde_json::Value, field: &str) -> u64 {
    report["run"][field].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_private_ca_and_http2() {
    let pki = Pki::new();
    let (address, served) = serve_tls(&pki, false).await;
    let url = format!("https://localhost:{}/", address.port());
    let bounded = ["--rate", "50", "-n", "20"];
    let with = |extra: &[&str]| {
        let mut args = vec!["load", url.as_str()];
        args.extend_from_slice(&bounded);
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        load_report(&args).await
    };
    // Unknown issuer: every request is a counted `tls` error, nothing succeeds.
    let (code, report) = run(with(&[])).await;
    assert_eq!(code, 4, "{report}");
    assert_eq!(
        report["errors"]["tls"].as_u64(),
        Some(count(&report, "requests_sent"))
    );
    assert_eq!(
        report["error_details"]["tls: unknown issuer"].as_u64(),
        Some(count(&report, "requests_sent")),
        "{report}"
    );
    // Trusting the private CA: every request answered, over HTTP/1.1.
    let cacert = pki.path("ca.pem");
    let (code, report) = run(with(&["--cacert", &cacert])).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(count(&report, "responses"), 20);
    assert_eq!(served.http1.load(Ordering::SeqCst), 20);
    // HTTP/2 by ALPN.
    let (code, report) = run(with(&["--cacert", &cacert, "--http2"])).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(served.http2.load(Ordering::SeqCst), 20);
    // SSL_CERT_FILE names the trusted roots, as for curl and OpenSSL.
    let gateprobe = assert_cmd::cargo::cargo_bin("gateprobe");
    let output = std::process::Command::new(&gateprobe)
        .args(with(&[]))
        .env("SSL_CERT_FILE", &cacert)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // --insecure accepts the unknown issuer.
    let (code, _) = run(with(&["--insecure"])).await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = Pki::new();
    let (address, served) = serve_tls(&pki, true).await;
    let url = format!("https://127.0.0.1:{}/", address.port());
    let cacert = pki.path("ca.pem");
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    // Without a client certificate the server refuses: nothing succeeds.
    let (code, report) = load_report(&[
        "load", &url, "--rate", "50", "-n", "10", "--cacert", &cacert,
    ])
    .await;
    assert_eq!(code, 4, "{report}");
    assert_eq!(served.http1.load(Ordering::SeqCst), 0);
    assert_eq!(
        report["error_details"]["tls: handshake refused"].as_u64(),
        report["errors"]["tls"].as_u64().filter(|n| *n > 0),
        "{report}"
    );
    // Presenting it: every request answered.
    let (code, report) = load_report(&[
        "load", &url, "--rate", "50", "-n", "10", "--cacert", &cacert, "--cert", &cert, "--key",
        &key,
    ])
    .await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(served.http1.load(Ordering::SeqCst), 10);
}

/// Files that do not hold what their flag names are input errors (exit 2),
/// naming the flag and the file; a key's content is never echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_files_that_are_not_pem_exit_2() {
    let pki = Pki::new();
    let gateprobe = assert_cmd::cargo::cargo_bin("gateprobe");
    let url = "https://127.0.0.1:1/";
    let not_pem = pki.path("not-pem.txt");
    let cert = pki.path("client.pem");
    let other_key = pki.path("other.key");
    for (args, says) in [
        (vec!["--cacert", not_pem.as_str()], "--cacert"),
        (
            vec!["--cert", cert.as_str(), "--key", not_pem.as_str()],
            "--key",
        ),
        (vec!["--cert", cert.as_str()], "--key"),
        // A key that is not the certificate's.
        (
            vec!["--cert", cert.as_str(), "--key", other_key.as_str()],
            "not the key of",
        ),
        (vec!["--cacert", "/nonexistent/ca.pem"], "--cacert"),
    ] {
        let output = std::process::Command::new(&gateprobe)
            .args(["load", url, "-n", "1"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("hello"),
            "a file's content is echoed: {stderr}"
        );
    }
}

/// Each verification failure carries its reason; `--resolve` sends to an
/// address while the name stays the one verified and sent as Host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_reasons_and_resolve() {
    let pki = Pki::new();
    let cacert = pki.path("ca.pem");
    let reason = |report: &serde_json::Value, reason: &str| {
        let sent = count(report, "requests_sent");
        assert!(sent > 0, "{report}");
        assert_eq!(
            report["error_details"][format!("tls: {reason}")].as_u64(),
            Some(sent),
            "{report}"
        );
    };
    // A certificate for gateway.test, reached as 127.0.0.1: name mismatch.
    let (address, served) = serve_identity(&pki, &pki.named, false).await;
    let port = address.port();
    let by_address = format!("https://127.0.0.1:{port}/");
    let (code, report) = load_report(&[
        "load",
        &by_address,
        "--rate",
        "50",
        "-n",
        "5",
        "--cacert",
        &cacert,
    ])
    .await;
    assert_eq!(code, 4, "{report}");
    reason(&report, "name mismatch");
    // The name, sent to 127.0.0.1 over HTTP/1.1 and HTTP/2: verified, and
    // the Host header the server saw is the name.
    let by_name = format!("https://gateway.test:{port}/");
    let resolve = format!("gateway.test:{port}:127.0.0.1");
    for (extra, served_on) in [(None, &served.http1), (Some("--http2"), &served.http2)] {
        let mut args = vec!["load", &by_name, "--rate", "50", "-n", "5"];
        args.extend_from_slice(&["--cacert", &cacert, "--resolve", &resolve]);
        args.extend(extra);
        let (code, report) = load_report(&args).await;
        assert_eq!(code, 0, "{extra:?}: {report}");
        assert_eq!(served_on.load(Ordering::SeqCst), 5, "{extra:?}");
    }
    let host = served.host.lock().unwrap().clone();
    assert_eq!(host, Some(format!("gateway.test:{port}")));
    // An expired certificate.
    let (address, _) = serve_identity(&pki, &pki.expired, false).await;
    let url = format!("https://localhost:{}/", address.port());
    let (code, report) =
        load_report(&["load", &url, "--rate", "50", "-n", "5", "--cacert", &cacert]).await;
    assert_eq!(code, 4, "{report}");
    reason(&report, "expired");
    // The text summary names the reason beside the kind.
    let gateprobe = assert_cmd::cargo::cargo_bin("gateprobe");
    let output = std::process::Command::new(&gateprobe)
        .args(["load", &url, "--rate", "50", "-n", "3", "--cacert", &cacert])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("tls 3 (expired 3)"), "{stdout}");
    // --resolve entries that could never apply, or are not addresses: exit 2.
    for (entry, says) in [
        (
            format!("other.test:{port}:127.0.0.1"),
            "would never be used",
        ),
        (
            format!("gateway.test:{}:127.0.0.1", port.wrapping_add(1)),
            "would never be used",
        ),
        (
            format!("gateway.test:{port}:not-an-ip"),
            "is not an IP address",
        ),
        ("gateway.test".to_string(), "expected HOST:PORT:ADDR"),
    ] {
        let output = std::process::Command::new(&gateprobe)
            .args(["load", &by_name, "-n", "1", "--resolve", &entry])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{entry}: {stderr}");
        assert!(stderr.contains(says), "{entry}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

/// `gateprobe sim` over HTTPS, with a certificate it generates (its CA
/// written for --cacert) or one given as files: HTTP/1.1 and HTTP/2 by ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_serves_https() {
    use std::io::BufRead;
    let pki = Pki::new();
    let gateprobe = assert_cmd::cargo::cargo_bin("gateprobe");
    let generated_ca = pki.path("sim-ca.pem");
    let (server_cert, server_key) = (pki.path("server.pem"), pki.path("server.key"));
    for (flags, cacert) in [
        (
            vec!["--tls", "--tls-ca", generated_ca.as_str()],
            generated_ca.clone(),
        ),
        (
            vec![
                "--tls-cert",
                server_cert.as_str(),
                "--tls-key",
                server_key.as_str(),
            ],
            pki.path("ca.pem"),
        ),
    ] {
        let mut sim = Killed(
            std::process::Command::new(&gateprobe)
                .args(["sim", "--listen", "127.0.0.1:0", "--seed", "1"])
                .args(&flags)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = std::io::BufReader::new(sim.0.stdout.take().unwrap());
        let base = stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("gateprobe sim listening on ")
                    .map(str::to_string)
            })
            .expect("the simulator says where it listens");
        assert!(base.starts_with("https://127.0.0.1:"), "{base}");
        let url = format!("{base}/PROD/hello");
        for extra in [&[][..], &["--http2"][..]] {
            let mut args = vec!["load", url.as_str(), "--rate", "100", "-n", "20"];
            args.extend_from_slice(&["--cacert", cacert.as_str()]);
            args.extend_from_slice(extra);
            let (code, report) = load_report(&args).await;
            assert_eq!(code, 0, "{flags:?} {extra:?}: {report}");
            assert_eq!(count(&report, "responses"), 20, "{report}");
        }
        // Without trusting its CA: every request a tls error, with its reason.
        let (code, report) = load_report(&["load", &url, "--rate", "100", "-n", "5"]).await;
        assert_eq!(code, 4, "{report}");
        assert_eq!(
            report["error_details"]["tls: unknown issuer"], 5,
            "{report}"
        );
        drop(sim);
    }
}

/// A child process killed when dropped, even by a failing assertion.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
