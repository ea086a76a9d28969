//! The simulator over HTTPS (`gateprobe sim --tls`): a certificate given as
//! PEM files, or one generated at start by rcgen — a private CA and a
//! server certificate it signs for localhost, 127.0.0.1 and ::1 — whose CA
//! is written to a file for clients' `--cacert`. ALPN offers h2 and
//! http/1.1, as API Gateway does.
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::exit::UsageError;

/// A generated CA and server certificate: the acceptor, and the CA's PEM.
pub fn generated() -> Result<(TlsAcceptor, String), UsageError> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let failed = |why: rcgen::Error| UsageError(format!("--tls: cannot make a certificate: {why}"));
    let mut ca_params = CertificateParams::new(Vec::new()).map_err(failed)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gateprobe sim CA");
    let ca_key = KeyPair::generate().map_err(failed)?;
    let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let mut params = CertificateParams::new(names).map_err(failed)?;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(failed)?;
    let cert = params.signed_by(&key, &issuer).map_err(failed)?;
    let chain = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((acceptor(chain, key, "--tls")?, ca.pem()))
}

/// A certificate chain and key from PEM files (`--tls-cert`, `--tls-key`).
pub fn given(cert: &Path, key: &Path) -> Result<TlsAcceptor, UsageError> {
    let chain = crate::input::pem_certificates("--tls-cert", cert)?;
    let key_der = crate::input::pem_private_key("--tls-key", key)?;
    acceptor(chain, key_der, "--tls-cert/--tls-key")
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    flag: &str,
) -> Result<TlsAcceptor, UsageError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|why| UsageError(format!("{flag}: not a usable server identity: {why}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
