//! The HTTP client: a set of hyper connections to the one target, shared by
//! every worker through a lock-free idle queue, and the one function that
//! performs an exchange and names its failure.
//!
//! Why not reqwest, and why not hyper-util's pooled client: measured against
//! nginx on this 2-core machine with 50 connections, a bare loop over a shared
//! `reqwest::Client` reached 0.65–0.75× oha (issue #2), and gateprobe over
//! hyper-util's legacy pool reached 0.90–1.0×: every request paid a mutex, a
//! SipHash of the pool key, URI clones and boxed futures. Here a request pops
//! an idle connection from an `ArrayQueue` (one atomic operation), sends on
//! hyper's connection-level API and pushes the connection back: the same path
//! for the open and the closed model. Redirects are never followed (a 3xx is a
//! response to classify). The figures are in docs/benchmark.md.
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::sample::{ErrorDetail, ErrorKind, Failure};

/// Client settings taken from the plan.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub http2: bool,
    pub insecure: bool,
    pub tls: Arc<crate::plan::TlsFiles>,
    /// Addresses to connect to instead of looking the host up (`--resolve`).
    pub resolve: Vec<SocketAddr>,
    pub connect_timeout: Duration,
    /// False (`--no-keepalive`): every request on a connection of its own.
    pub keepalive: bool,
}

/// Where connections go: fixed for a run (templates may vary the path and
/// query, never the host).
#[derive(Debug, Clone)]
struct Endpoint {
    host: String,
    port: u16,
    /// `Host` header for HTTP/1.1 requests.
    authority: HeaderValue,
    server_name: Option<ServerName<'static>>,
    /// `--resolve`: connect here, never asking DNS.
    addresses: Vec<SocketAddr>,
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.is_closed(),
            Sender::Http2(sender) => sender.is_closed(),
        }
    }
}

/// A connection and its number (unique in the process, never 0), so that a
/// check can ask whether responses depend on the connection they came on.
struct Connection {
    sender: Sender,
    id: u32,
}

/// Connection numbers, process-wide (0 means "no connection").
static NEXT_CONNECTION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// All connections to the target. HTTP/1.1: one request per connection at a
/// time, so there are at most as many connections as requests in flight.
/// HTTP/2: requests share connections. Idle connections are taken in FIFO
/// order, so requests rotate over every open connection.
pub struct Connections {
    endpoint: Endpoint,
    idle: ArrayQueue<Connection>,
    tls: Option<TlsConnector>,
    http2: bool,
    connect_timeout: Duration,
    keepalive: bool,
}

/// What came back from one exchange (the body itself is in the caller's buffer).
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub bytes: u64,
    /// The number of the connection that carried the exchange.
    pub connection: u32,
}

impl Connections {
    /// Prepares (does not open) up to `capacity` connections to `uri`'s host.
    pub fn new(uri: &Uri, options: ClientOptions, capacity: usize) -> Result<Self, String> {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().ok_or("the URL has no host")?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|authority| authority.as_str())
            .unwrap_or(host);
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let server_name = if https {
            Some(
                ServerName::try_from(bare_host.clone())
                    .map_err(|_| format!("'{host}' is not a valid TLS server name"))?,
            )
        } else {
            None
        };
        Ok(Self {
            endpoint: Endpoint {
                host: bare_host,
                port,
                authority: HeaderValue::from_str(authority)
                    .map_err(|_| "the URL's host is not valid")?,
                server_name,
                addresses: options.resolve.clone(),
            },
            idle: ArrayQueue::new(capacity.max(1)),
            tls: https.then(|| TlsConnector::from(Arc::new(tls_config(&options)))),
            http2: options.http2,
            connect_timeout: options.connect_timeout,
            keepalive: options.keepalive,
        })
    }

    /// Sends `request` and reads the whole body, keeping at most `keep` bytes
    /// of it in `body` (cleared first) for matching; the rest is drained and
    /// counted. A request that an idle connection could not even send (the
    /// server had closed it) is retried once on a new connection.
    pub async fn exchange(
        &self,
        mut request: Request<Full<Bytes>>,
        body: &mut Vec<u8>,
        keep: usize,
    ) -> Result<Answer, Failure> {
        body.clear();
        if !self.http2 {
            to_origin_form(&mut request, &self.endpoint.authority);
            if !self.keepalive {
                request
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
        }
        let mut may_retry = true;
        let (connection, response) = loop {
            let (mut connection, fresh) = match self.checkout() {
                Some(connection) => (connection, false),
                None => (self.connect().await?, true),
            };
            let sent = match &mut connection.sender {
                Sender::Http1(inner) => inner.try_send_request(request).await,
                Sender::Http2(inner) => inner.try_send_request(request).await,
            };
            match sent {
                Ok(response) => break (connection, response),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) if may_retry && !fresh => {
                        request = unsent;
                        may_retry = false;
                    }
                    _ => return Err(failure_of(failed.error())),
                },
            }
        };
        let mut answer = read_body(response, body, keep).await?;
        answer.connection = connection.id;
        if self.keepalive {
            self.checkin(connection);
        }
        Ok(answer)
    }

    /// Opens up to `count` connections before the run's clock starts, so
    /// that requests rotate over that many from the first one (the canary
    /// check needs several connections to see a split that sticks to one).
    /// A connection that cannot be opened now is simply not there: the
    /// requests that need it will open it, and count its failure.
    pub async fn warm(&self, count: usize) {
        if !self.keepalive {
            return;
        }
        for _ in 0..count {
            match self.connect().await {
                Ok(connection) => {
                    if self.idle.push(connection).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    fn checkout(&self) -> Option<Connection> {
        if !self.keepalive {
            return None;
        }
        while let Some(connection) = self.idle.pop() {
            if connection.sender.is_closed() {
                continue;
            }
            if let Sender::Http2(shared) = &connection.sender {
                // HTTP/2 multiplexes: hand out a clone, keep the connection idle.
                let clone = Connection {
                    sender: Sender::Http2(shared.clone()),
                    id: connection.id,
                };
                let _ = self.idle.push(connection);
                return Some(clone);
            }
            return Some(connection);
        }
        None
    }

    fn checkin(&self, connection: Connection) {
        if matches!(connection.sender, Sender::Http1(_)) && !connection.sender.is_closed() {
            let _ = self.idle.push(connection);
        }
    }

    async fn connect(&self) -> Result<Connection, Failure> {
        let sender = self.open().await?;
        Ok(Connection {
            sender,
            id: NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    async fn open(&self) -> Result<Sender, Failure> {
        let endpoint = &self.endpoint;
        let connect = async {
            let addresses: Vec<SocketAddr> = if endpoint.addresses.is_empty() {
                tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
                    .await
                    .map_err(|_| ErrorKind::Dns)?
                    .collect()
            } else {
                endpoint.addresses.clone()
            };
            let mut last = ErrorKind::Dns;
            for address in addresses {
                match TcpStream::connect(address).await {
                    Ok(stream) => return Ok(stream),
                    Err(err) => last = kind_of(&err).min_connect(),
                }
            }
            Err(last)
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| ErrorKind::Timeout)??;
        let _ = stream.set_nodelay(true);
        match (&self.tls, &endpoint.server_name) {
            (Some(tls), Some(name)) => {
                let stream = tls
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|err| Failure {
                        kind: ErrorKind::Tls,
                        detail: Some(tls_detail(&err).unwrap_or(ErrorDetail::Other)),
                    })?;
                handshake(TokioIo::new(stream), self.http2).await
            }
            _ => handshake(TokioIo::new(stream), self.http2).await,
        }
    }
}

impl ErrorKind {
    /// A failure of the TCP connect itself is a connect error unless it is
    /// more specific: a timeout, this machine's own exhaustion, or a reset —
    /// the server accepted and reset at once, which the connect call reports
    /// when the RST overtakes it. That is the same fault as a reset seen on
    /// the first write, so it gets the same name whatever the timing.
    fn min_connect(self) -> Self {
        match self {
            ErrorKind::Timeout
            | ErrorKind::Dns
            | ErrorKind::Tls
            | ErrorKind::Local
            | ErrorKind::Reset => self,
            _ => ErrorKind::Connect,
        }
    }
}

async fn handshake<I>(io: I, http2: bool) -> Result<Sender, Failure>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if http2 {
        // The TCP connection is up: a failure now (a reset right after
        // accept, garbage instead of a SETTINGS frame) is named by what it
        // is, the same whatever the timing, never `connect`.
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|err| failure_of(&err))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Sender::Http2(sender))
    } else {
        let (sender, connection) = http1::handshake(io).await.map_err(|err| failure_of(&err))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Sender::Http1(sender))
    }
}

/// HTTP/1.1 on a connection sends `/path?query` with a `Host` header.
fn to_origin_form(request: &mut Request<Full<Bytes>>, authority: &HeaderValue) {
    if !request.headers().contains_key(http::header::HOST) {
        request
            .headers_mut()
            .insert(http::header::HOST, authority.clone());
    }
    let origin = request
        .uri()
        .path_and_query()
        .cloned()
        .map(Uri::from)
        .unwrap_or_else(|| Uri::from_static("/"));
    *request.uri_mut() = origin;
}

async fn read_body(
    response: Response<Incoming>,
    body: &mut Vec<u8>,
    keep: usize,
) -> Result<Answer, Failure> {
    let (parts, mut incoming) = response.into_parts();
    let mut bytes = 0u64;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|err| failure_of(&err))?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            let room = keep.saturating_sub(body.len());
            if room > 0 {
                body.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        bytes,
        connection: 0,
    })
}

fn tls_config(options: &ClientOptions) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let verified = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // A machine without a CA bundle still runs: https targets then fail
        // with a counted `tls` error instead of a crash. The platform's roots
        // honour SSL_CERT_FILE and SSL_CERT_DIR (rustls-native-certs).
        for certificate in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(certificate);
        }
        for certificate in &options.tls.roots {
            let _ = roots.add(certificate.clone());
        }
        builder.with_root_certificates(roots)
    };
    // The plan built and checked the identity (crate::identity).
    let mut config = match &options.tls.client {
        Some(identity) => verified.with_client_cert_resolver(std::sync::Arc::new(
            crate::identity::Present(identity.certified.clone()),
        )),
        None => verified.with_no_client_auth(),
    };
    config.alpn_protocols = if options.http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config
}

mod insecure {
    //! `--insecure`: accept any certificate, still checking handshake signatures.
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// This machine's own exhaustion: too many open files (per process or
/// system-wide), no free ephemeral port, no buffer space, no memory. These
/// say nothing about the target, so they are never counted as `connect`.
pub fn is_local_exhaustion(io: &std::io::Error) -> bool {
    matches!(
        io.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::ENOMEM)
    ) || io.kind() == std::io::ErrorKind::AddrNotAvailable
        || io.kind() == std::io::ErrorKind::OutOfMemory
}

/// A failure's kind and, for TLS, its reason.
pub fn failure_of(err: &(dyn StdError + 'static)) -> Failure {
    let kind = kind_of(err);
    Failure {
        kind,
        detail: (kind == ErrorKind::Tls).then(|| tls_detail(err).unwrap_or(ErrorDetail::Other)),
    }
}

/// Why TLS failed, from the rustls error in the cause chain.
fn tls_detail(err: &(dyn StdError + 'static)) -> Option<ErrorDetail> {
    use rustls::CertificateError as Cert;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(tls) = rustls_error(current) {
            return Some(match tls {
                rustls::Error::InvalidCertificate(cert) => match cert {
                    Cert::UnknownIssuer => ErrorDetail::UnknownIssuer,
                    Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                        ErrorDetail::NameMismatch
                    }
                    Cert::Expired | Cert::ExpiredContext { .. } => ErrorDetail::Expired,
                    Cert::NotValidYet | Cert::NotValidYetContext { .. } => ErrorDetail::NotYetValid,
                    _ => ErrorDetail::Other,
                },
                rustls::Error::AlertReceived(_)
                | rustls::Error::PeerIncompatible(_)
                | rustls::Error::NoCertificatesPresented => ErrorDetail::HandshakeRefused,
                _ => ErrorDetail::Other,
            });
        }
        cause = current.source();
    }
    None
}

/// The rustls error this link of a cause chain is or wraps: tokio-rustls
/// wraps it in an io::Error, whose `source()` skips it.
fn rustls_error<'a>(current: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    current.downcast_ref::<rustls::Error>().or_else(|| {
        current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// Names a failure by walking its cause chain.
pub fn kind_of(err: &(dyn StdError + 'static)) -> ErrorKind {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = cause {
        if rustls_error(current).is_some() {
            return ErrorKind::Tls;
        }
        if let Some(hyper_err) = current.downcast_ref::<hyper::Error>() {
            if hyper_err.is_timeout() {
                return ErrorKind::Timeout;
            }
            if hyper_err.is_parse() || hyper_err.is_parse_status() || hyper_err.is_user() {
                return ErrorKind::Protocol;
            }
            if hyper_err.is_incomplete_message() || hyper_err.is_canceled() || hyper_err.is_closed()
            {
                return ErrorKind::Reset;
            }
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            if is_local_exhaustion(io) {
                return ErrorKind::Local;
            }
            match io.kind() {
                Io::TimedOut => return ErrorKind::Timeout,
                Io::ConnectionRefused | Io::HostUnreachable | Io::NetworkUnreachable => {
                    return ErrorKind::Connect
                }
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof => return ErrorKind::Reset,
                _ => {}
            }
        }
        cause = current.source();
    }
    ErrorKind::Protocol
}
