//! TLS against servers this test starts, with certificates made at test time
//! (rcgen): a private CA, a server certificate for localhost and 127.0.0.1,
//! a client certificate. HTTP/1.1 and HTTP/2 (ALPN) over TLS, verification
//! failure counted as `tls`, `--cacert`, `--insecure`, mutual TLS.
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
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

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
        let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![purpose];
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert, key)
        };
        let (server_cert, server_key) = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            vec!["gateprobe-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("not-pem.txt"), "hello").unwrap();
        let server = (
            server_cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        );
        Pki {
            dir,
            ca: ca.der().clone(),
            server,
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
}

/// An HTTPS server on 127.0.0.1:0 answering 200 over HTTP/1.1 or HTTP/2 (ALPN);
/// with `require_client_cert`, only to clients presenting one the CA signed.
async fn serve_tls(pki: &Pki, require_client_cert: bool) -> (SocketAddr, Arc<Served>) {
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
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
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
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
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
    for (args, says) in [
        (vec!["--cacert", not_pem.as_str()], "--cacert"),
        (
            vec!["--cert", cert.as_str(), "--key", not_pem.as_str()],
            "--key",
        ),
        (vec!["--cert", cert.as_str()], "--key"),
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
