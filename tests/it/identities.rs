//! Client identities as people make them, against nginx requiring a client
//! certificate, each checked with curl first: what curl accepts for mutual
//! TLS, gateprobe accepts; what cannot be an identity exits 2 with one line.
//! Certificates come from rcgen (v3) and from openssl (`x509 -req` with no
//! extension file: v1); openssl, curl and nginx are Debian's, installed by
//! the test when missing, or the test says why it skips.
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::common::{self, load_report, say};

/// Runs openssl with `args` in `dir`; panics with its stderr on failure (a
/// bug in the test's own commands).
fn openssl(openssl: &Path, dir: &Path, args: &[&str]) {
    let output = Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The test's PKI, as files in `dir`: two roots (ca1, ca2; `roots.pem`
/// holds both), an intermediate under ca1, a server certificate for
/// 127.0.0.1, and ca1's key for openssl to sign with.
struct Pki {
    dir: tempfile::TempDir,
    ca1: (CertificateParams, KeyPair),
    intermediate: (CertificateParams, KeyPair),
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Pki {
    fn new() -> Self {
        let dir = common::temp_dir();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let ca1 = (
            ca_params("gateprobe test root 1"),
            KeyPair::generate().unwrap(),
        );
        let ca1_cert = ca1.0.self_signed(&ca1.1).unwrap();
        let ca2_key = KeyPair::generate().unwrap();
        let ca2 = ca_params("gateprobe test root 2")
            .self_signed(&ca2_key)
            .unwrap();
        write("ca1.pem", ca1_cert.pem());
        write("ca1.key", ca1.1.serialize_pem());
        write("roots.pem", format!("{}{}", ca2.pem(), ca1_cert.pem()));
        let issuer = Issuer::from_params(&ca1.0, &ca1.1);
        let intermediate = (
            ca_params("gateprobe test intermediate"),
            KeyPair::generate().unwrap(),
        );
        let inter = intermediate.0.signed_by(&intermediate.1, &issuer).unwrap();
        write("intermediate.pem", inter.pem());
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        server.use_authority_key_identifier_extension = true;
        let server_key = KeyPair::generate().unwrap();
        write(
            "server.pem",
            server.signed_by(&server_key, &issuer).unwrap().pem(),
        );
        write("server.key", server_key.serialize_pem());
        Self {
            dir,
            ca1,
            intermediate,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A v3 leaf (rcgen, ECDSA P-256 in PKCS#8) signed by `by`, valid from
    /// `from` to `until` (years).
    fn rcgen_leaf(&self, name: &str, intermediate: bool, from: i32, until: i32) {
        let (params, key) = if intermediate {
            &self.intermediate
        } else {
            &self.ca1
        };
        let issuer = Issuer::from_params(params, key);
        let mut leaf = CertificateParams::new(Vec::new()).unwrap();
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, name);
        leaf.not_before = rcgen::date_time_ymd(from, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(until, 1, 1);
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), leaf_key.serialize_pem()).unwrap();
    }

    /// A v1 leaf made the common openssl way: a key (`genkey` args), a
    /// request, and `x509 -req -CA` with no extension file.
    fn openssl_leaf(&self, tool: &Path, name: &str, genkey: &[&str]) {
        let dir = self.dir.path();
        let key = format!("{name}.key");
        let mut args = genkey.to_vec();
        args.extend_from_slice(&["-out", &key]);
        openssl(tool, dir, &args);
        let csr = format!("{name}.csr");
        let subject = format!("/CN={name}");
        openssl(
            tool,
            dir,
            &["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr],
        );
        let cert = format!("{name}.pem");
        openssl(
            tool,
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca1.pem",
                "-CAkey",
                "ca1.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                &cert,
            ],
        );
    }
}

/// An identity to try: the files given, and what must happen.
struct Case {
    what: &'static str,
    cert: String,
    key: Option<String>,
    /// None: curl and gateprobe both succeed; Some(words): gateprobe exits 2
    /// with a line containing them.
    refused: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_identities_as_openssl_and_rcgen_make_them() {
    let tools = (
        common::debian_binary("openssl", &["/usr/bin/openssl"]),
        common::debian_binary("curl", &["/usr/bin/curl"]),
        common::nginx_binary(),
    );
    let (tool, curl) = match tools {
        (Ok(tool), Ok(curl), Ok(_)) => (tool, curl),
        (a, b, c) => {
            let why: Vec<String> = [a.err(), b.err(), c.err()].into_iter().flatten().collect();
            say(&format!("SKIPPED client identities: {}", why.join("; ")));
            return;
        }
    };
    let pki = Pki::new();
    let p = |name: &str| pki.path(name).display().to_string();
    // v3 from rcgen: direct, under the intermediate, expired, not yet valid.
    pki.rcgen_leaf("v3-ecdsa", false, 2020, 2090);
    pki.rcgen_leaf("v3-chained", true, 2020, 2090);
    pki.rcgen_leaf("v3-expired", false, 2019, 2021);
    pki.rcgen_leaf("v3-future", false, 2090, 2095);
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(pki.path("v3-chained.pem")).unwrap(),
        std::fs::read_to_string(pki.path("intermediate.pem")).unwrap()
    );
    std::fs::write(pki.path("v3-chain.pem"), chain).unwrap();
    // v1 from openssl, with each key kind and file form.
    pki.openssl_leaf(&tool, "v1-rsa-pkcs1", &["genrsa", "-traditional"]);
    pki.openssl_leaf(
        &tool,
        "v1-rsa-pkcs8",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    );
    pki.openssl_leaf(
        &tool,
        "v1-p256-sec1",
        &["ecparam", "-genkey", "-name", "prime256v1"],
    );
    pki.openssl_leaf(
        &tool,
        "v1-p384",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
    );
    pki.openssl_leaf(&tool, "v1-ed25519", &["genpkey", "-algorithm", "ed25519"]);
    let both = format!(
        "{}{}",
        std::fs::read_to_string(pki.path("v1-p256-sec1.pem")).unwrap(),
        std::fs::read_to_string(pki.path("v1-p256-sec1.key")).unwrap()
    );
    std::fs::write(pki.path("both.pem"), both).unwrap();
    let dir = pki.dir.path();
    openssl(
        &tool,
        dir,
        &[
            "pkey",
            "-in",
            "v1-rsa-pkcs8.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "encrypted.key",
        ],
    );
    openssl(
        &tool,
        dir,
        &[
            "rsa",
            "-in",
            "v1-rsa-pkcs1.key",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "encrypted-legacy.key",
        ],
    );
    openssl(
        &tool,
        dir,
        &[
            "x509",
            "-in",
            "v3-ecdsa.pem",
            "-outform",
            "der",
            "-out",
            "v3-ecdsa.der",
        ],
    );

    let good = |what, cert: &str, key: Option<&str>| Case {
        what,
        cert: p(cert),
        key: key.map(p),
        refused: None,
    };
    let bad = |what, cert: &str, key: Option<&str>, says| Case {
        what,
        cert: p(cert),
        key: key.map(p),
        refused: Some(says),
    };
    let cases = [
        good(
            "v3 ECDSA P-256, PKCS#8",
            "v3-ecdsa.pem",
            Some("v3-ecdsa.key"),
        ),
        good(
            "v3 leaf and intermediate in one chain file",
            "v3-chain.pem",
            Some("v3-chained.key"),
        ),
        good(
            "v1 RSA, PKCS#1 key",
            "v1-rsa-pkcs1.pem",
            Some("v1-rsa-pkcs1.key"),
        ),
        good(
            "v1 RSA, PKCS#8 key",
            "v1-rsa-pkcs8.pem",
            Some("v1-rsa-pkcs8.key"),
        ),
        good(
            "v1 ECDSA P-256, SEC1 key (ecparam -genkey)",
            "v1-p256-sec1.pem",
            Some("v1-p256-sec1.key"),
        ),
        good("v1 ECDSA P-384", "v1-p384.pem", Some("v1-p384.key")),
        good("v1 Ed25519", "v1-ed25519.pem", Some("v1-ed25519.key")),
        good(
            "certificate and key in one PEM file, --cert alone",
            "both.pem",
            None,
        ),
        bad(
            "an encrypted PKCS#8 key",
            "v1-rsa-pkcs8.pem",
            Some("encrypted.key"),
            "encrypted",
        ),
        bad(
            "an encrypted legacy PEM key",
            "v1-rsa-pkcs1.pem",
            Some("encrypted-legacy.key"),
            "encrypted",
        ),
        bad(
            "another certificate's key",
            "v1-p384.pem",
            Some("v3-ecdsa.key"),
            "not the key of",
        ),
        bad(
            "an expired certificate",
            "v3-expired.pem",
            Some("v3-expired.key"),
            "expired on",
        ),
        bad(
            "a certificate not valid yet",
            "v3-future.pem",
            Some("v3-future.key"),
            "not valid until",
        ),
        bad(
            "a DER certificate",
            "v3-ecdsa.der",
            Some("v3-ecdsa.key"),
            "DER",
        ),
        bad(
            "a certificate file with no key, --cert alone",
            "v3-ecdsa.pem",
            None,
            "holds no private key",
        ),
    ];

    let server = format!(
        "ssl_certificate {}; ssl_certificate_key {}; ssl_client_certificate {}; ssl_verify_client on; ssl_verify_depth 3; location / {{ return 200 'hello $ssl_client_s_dn'; }}",
        p("server.pem"),
        p("server.key"),
        p("roots.pem")
    );
    let nginx = match common::start_nginx_listening("ssl", "", &server) {
        Ok(nginx) => nginx,
        Err(reason) => {
            say(&format!("SKIPPED client identities: {reason}"));
            return;
        }
    };
    let url = format!("https://127.0.0.1:{}/", nginx.port);
    let gateprobe = assert_cmd::cargo::cargo_bin("gateprobe");
    for case in &cases {
        let mut tls = vec!["--cert".to_string(), case.cert.clone()];
        if let Some(key) = &case.key {
            tls.extend(["--key".to_string(), key.clone()]);
        }
        match case.refused {
            None => {
                let curl_ok = Command::new(&curl)
                    .args([
                        "-sS",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--cacert",
                        &p("roots.pem"),
                    ])
                    .args(&tls)
                    .arg(&url)
                    .output()
                    .unwrap();
                let code = String::from_utf8_lossy(&curl_ok.stdout);
                assert_eq!(
                    code,
                    "200",
                    "curl refuses {}: {}",
                    case.what,
                    String::from_utf8_lossy(&curl_ok.stderr)
                );
                let mut args: Vec<&str> = vec!["load", &url, "--rate", "50", "-n", "5", "--cacert"];
                let roots = p("roots.pem");
                args.push(&roots);
                args.extend(tls.iter().map(String::as_str));
                let (exit, report) = load_report(&args).await;
                let answered: u64 = report["classes"]
                    .as_object()
                    .map(|classes| {
                        classes
                            .values()
                            .filter_map(|class| class["statuses"]["200"].as_u64())
                            .sum()
                    })
                    .unwrap_or(0);
                say(&format!(
                    "{}: curl 200, gateprobe exit {exit}, {answered} × 200",
                    case.what
                ));
                assert_eq!((exit, answered), (0, 5), "{}: {report}", case.what);
            }
            Some(says) => {
                let output = Command::new(&gateprobe)
                    .args(["load", &url, "-n", "1", "--cacert", &p("roots.pem")])
                    .args(&tls)
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&output.stderr);
                say(&format!("{}: {}", case.what, stderr.trim()));
                assert_eq!(output.status.code(), Some(2), "{}: {stderr}", case.what);
                assert!(stderr.contains(says), "{}: {stderr}", case.what);
                assert_eq!(
                    stderr.trim().lines().count(),
                    1,
                    "{}: one line: {stderr}",
                    case.what
                );
                assert!(!stderr.contains("PRIVATE KEY"), "a key is echoed: {stderr}");
            }
        }
    }
}
