//! Client identities for mutual TLS as people have them: X.509 v1 or v3
//! certificates (`openssl x509 -req` without an extension file makes v1),
//! RSA, ECDSA P-256/P-384 and Ed25519 keys in PKCS#8, PKCS#1 or SEC1 files,
//! a chain of leaf and intermediates, and certificate and key in one PEM
//! file — what curl's `--cert [--key]` and nginx accept. A file that cannot
//! be one (encrypted, DER, expired, a key of another certificate) is named
//! with what is wrong, before any request is sent.
//!
//! rustls checks a certificate against its key by parsing it with webpki,
//! which refuses v1 certificates; a client need not parse its own
//! certificate at all, so the identity is built here (x509-parser reads the
//! leaf's validity and public key, the key's is compared with it) and
//! handed to rustls through its client-certificate resolver.
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::exit::UsageError;

/// A client identity ready for rustls: the chain (leaf first) and its key.
#[derive(Clone)]
pub struct ClientIdentity {
    pub certified: Arc<CertifiedKey>,
}

/// Never the key: only how long the chain is.
impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain_len())
            .finish()
    }
}

impl ClientIdentity {
    /// Certificates in the chain (leaf and intermediates).
    pub fn chain_len(&self) -> usize {
        self.certified.cert.len()
    }
}

/// Presents the one identity whatever the server asks (as curl does).
pub struct Present(pub Arc<CertifiedKey>);

impl std::fmt::Debug for Present {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Present(client identity)")
    }
}

impl rustls::client::ResolvesClientCert for Present {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The identity in `--cert` (and `--key`, or the key in `--cert`'s own
/// file), checked: one line naming the file and what is wrong otherwise.
pub fn client_identity(cert: &Path, key: Option<&Path>) -> Result<ClientIdentity, UsageError> {
    let cert_text = pem_text("--cert", cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|why| fail("--cert", cert, &format!("not PEM certificates: {why}")))?;
    if chain.is_empty() {
        return Err(fail(
            "--cert",
            cert,
            "expected PEM certificates (-----BEGIN CERTIFICATE-----), found none",
        ));
    }
    let (key_flag, key_path, key_text) = match key {
        Some(path) => ("--key", path, pem_text("--key", path)?),
        None => ("--cert", cert, cert_text.clone()),
    };
    let key_der = private_key(key_flag, key_path, &key_text, key.is_none())?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|_| {
            fail(
                key_flag,
                key_path,
                "a private key this TLS library cannot sign with (expected RSA, ECDSA P-256/P-384 or Ed25519)",
            )
        })?;
    let chain = leaf_first(chain, signing.as_ref(), cert, key_flag, key_path)?;
    valid_now(&chain[0], cert)?;
    Ok(ClientIdentity {
        certified: Arc::new(CertifiedKey::new(chain, signing)),
    })
}

/// A file's text, refusing DER (binary) with the command that converts it.
fn pem_text(flag: &str, path: &Path) -> Result<String, UsageError> {
    let bytes = crate::input::read_bytes(path, flag, crate::input::CONFIG_LIMIT)?;
    if bytes.first() == Some(&0x30) {
        return Err(fail(
            flag,
            path,
            &format!(
                "a DER (binary) file; gateprobe reads PEM: convert it with `openssl {} -inform der -in {} -out {}.pem`",
                if flag == "--key" { "pkey" } else { "x509" },
                path.display(),
                path.display()
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| fail(flag, path, "not text: expected a PEM file"))
}

/// The one private key in `text`: PKCS#8, PKCS#1 or SEC1 (an `EC
/// PARAMETERS` block before it is skipped); encrypted keys are refused
/// with the command that decrypts them.
fn private_key(
    flag: &str,
    path: &Path,
    text: &str,
    beside_cert: bool,
) -> Result<PrivateKeyDer<'static>, UsageError> {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(fail(
            flag,
            path,
            &format!(
                "an encrypted private key; gateprobe asks for no passphrase: decrypt it with `openssl pkey -in {} -out key.pem` and give that file",
                path.display()
            ),
        ));
    }
    let mut keys = PrivateKeyDer::pem_slice_iter(text.as_bytes());
    match (keys.next(), keys.next()) {
        (Some(Ok(key)), None) => Ok(key),
        (Some(Ok(_)), Some(_)) => Err(fail(
            flag,
            path,
            "more than one private key: give the file with the certificate's own key",
        )),
        (None, _) if beside_cert => Err(UsageError(format!(
            "--cert {} holds no private key: give it with --key FILE, or put the key in the same PEM file",
            path.display()
        ))),
        _ => Err(fail(
            flag,
            path,
            "expected one PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )),
    }
}

/// The chain with the key's certificate first (a file may list the
/// intermediates before the leaf); an error when no certificate is the
/// key's.
fn leaf_first(
    mut chain: Vec<CertificateDer<'static>>,
    signing: &dyn rustls::sign::SigningKey,
    cert: &Path,
    key_flag: &str,
    key_path: &Path,
) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    let Some(key_spki) = signing.public_key() else {
        // A key whose public half the library cannot tell: sent as given.
        return Ok(chain);
    };
    let matches = |der: &CertificateDer<'_>| {
        x509_parser::parse_x509_certificate(der.as_ref())
            .is_ok_and(|(_, parsed)| parsed.tbs_certificate.subject_pki.raw == key_spki.as_ref())
    };
    match chain.iter().position(matches) {
        Some(0) => Ok(chain),
        Some(index) => {
            let leaf = chain.remove(index);
            chain.insert(0, leaf);
            Ok(chain)
        }
        None => Err(UsageError(format!(
            "{key_flag} {}: not the key of the certificate in --cert {} (their public keys differ)",
            key_path.display(),
            cert.display()
        ))),
    }
}

/// Refuses a leaf that has expired or is not valid yet, naming the date.
fn valid_now(leaf: &CertificateDer<'_>, cert: &Path) -> Result<(), UsageError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|why| fail("--cert", cert, &format!("not an X.509 certificate: {why}")))?;
    let validity = &parsed.tbs_certificate.validity;
    let now = x509_parser::time::ASN1Time::now();
    if validity.not_after < now {
        return Err(fail(
            "--cert",
            cert,
            &format!("the certificate expired on {}", validity.not_after),
        ));
    }
    if validity.not_before > now {
        return Err(fail(
            "--cert",
            cert,
            &format!("the certificate is not valid until {}", validity.not_before),
        ));
    }
    Ok(())
}

fn fail(flag: &str, path: &Path, what: &str) -> UsageError {
    UsageError(format!("{flag} {}: {what}", path.display()))
}
