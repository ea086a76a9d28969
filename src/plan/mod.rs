//! Validation, step two: raw flags become a typed [`LoadPlan`] before any
//! request is sent. Every mistake is one [`UsageError`] naming the input and
//! what was expected (exit code 2). No I/O here except reading `@file` bodies.
pub mod pacer;
pub mod schedule;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Uri};

use crate::classify::Classifier;
use crate::plan::schedule::Schedule;
use crate::redact;
use crate::template::Template;
use crate::units::trim_float;

pub use crate::exit::UsageError;

pub(crate) fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// The open-model rate when none is given: gentle enough for a shared gateway.
pub const DEFAULT_RATE_PER_S: f64 = 50.0;
/// Open model: default cap on requests in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
/// Closed model: default connections.
pub const DEFAULT_CONNECTIONS: usize = 50;
/// The time bound when neither --duration nor --requests is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Where a request's URL, headers and body come from: built once when static,
/// rendered per request when templated.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub url: Template,
    /// The URI when the URL has no template variables.
    pub static_uri: Option<Uri>,
    /// The URL rendered for request 0: every request goes to its host.
    pub endpoint: Uri,
    /// Headers without template variables (secret ones included, unprinted).
    pub static_headers: HeaderMap,
    pub templated_headers: Vec<(HeaderName, Template)>,
    pub body: BodySpec,
    /// The URL as it may be printed (credentials and secret params redacted).
    pub display_url: String,
    /// Header names as they may be printed: secret values replaced.
    pub display_headers: Vec<(String, String)>,
    /// `--aws-sigv4`: sign each request as it leaves.
    pub signer: Option<std::sync::Arc<crate::sigv4::Signer>>,
    /// `--api-keys`: the `x-api-key` each request carries, rotated.
    pub api_keys: ApiKeys,
}

/// API keys rotated over requests (`--api-keys`): request `i` carries key
/// [`ApiKeys::pick`]`(i)`, a function of the index alone, so a run's keys are
/// reproducible and a shard's are the full run's. Values are secret
/// (`Debug` shows labels only); labels name keys in outputs.
#[derive(Clone, Default)]
pub struct ApiKeys {
    pub values: Vec<http::HeaderValue>,
    pub labels: Vec<String>,
    /// Random (a hash of the index) instead of round-robin.
    pub random: bool,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("labels", &self.labels)
            .field("random", &self.random)
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// The key of request `index`, or `None` without keys.
    pub fn pick(&self, index: u64) -> Option<usize> {
        let count = self.values.len() as u64;
        if count == 0 {
            return None;
        }
        let slot = if self.random {
            // SplitMix64's finaliser: an even, independent spread of indices.
            let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % count
        } else {
            index % count
        };
        Some(slot as usize)
    }

    /// Only key `slot`: what a per-key throttle probe sends.
    pub fn only(&self, slot: usize) -> Self {
        Self {
            values: vec![self.values[slot].clone()],
            labels: vec![self.labels[slot].clone()],
            random: false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum BodySpec {
    Empty,
    Static(Bytes),
    Templated(Template),
}

/// Everything a load run needs, validated.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub request: RequestSpec,
    pub schedule: Schedule,
    /// Time bound for sending (the run stops claiming new requests after it).
    pub duration: Duration,
    /// Count bound.
    pub max_requests: Option<u64>,
    /// Open model: the in-flight cap. Closed model: the connections.
    pub concurrency: usize,
    pub timeout: Duration,
    pub http2: bool,
    pub insecure: bool,
    /// Roots and a client identity beyond the platform's (`--cacert`, `--cert`/`--key`).
    pub tls: std::sync::Arc<TlsFiles>,
    /// `--resolve`: the addresses the target's host and port connect to,
    /// instead of a DNS lookup; empty to look the name up.
    pub resolve: Vec<std::net::SocketAddr>,
    /// `--no-keepalive`: a new connection for every request.
    pub no_keepalive: bool,
    pub classifier: Classifier,
    pub max_body: usize,
    pub outputs: Outputs,
    pub quiet: bool,
    /// A hard cap on sends per sliding second, shared across runs (the
    /// throttle probe's `--max-rate`); `None` for plain load.
    pub pacer: Option<std::sync::Arc<crate::plan::pacer::Pacer>>,
    /// Connections opened before the clock starts (requests rotate over
    /// them): the canary check's guard against a split per connection.
    pub warm_connections: usize,
}

/// What TLS trusts and presents beyond the platform's roots, read and parsed
/// before anything is sent. Its `Debug` shows counts, never key material.
#[derive(Default)]
pub struct TlsFiles {
    pub roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub client: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("roots", &self.roots.len())
            .field(
                "client_chain",
                &self.client.as_ref().map(|(chain, _)| chain.len()),
            )
            .finish()
    }
}

impl LoadPlan {
    /// A one-line description of the offered load, for the terminal.
    pub fn describe_load(&self) -> String {
        let bound = match self.max_requests {
            Some(count) if self.duration >= Duration::from_secs(7 * 86400) => {
                format!("{count} requests")
            }
            Some(count) => format!("{count} requests or {}", format_duration(self.duration)),
            None => format_duration(self.duration),
        };
        match &self.schedule {
            Schedule::Closed => format!("closed model, {} connections, {bound}", self.concurrency),
            Schedule::Open(curve) => {
                let rate = curve.max_rate_per_s();
                let mean =
                    curve.expected_by(self.duration.as_secs_f64()) / self.duration.as_secs_f64();
                if (rate - mean).abs() < 1e-9 || !curve.duration_s().is_finite() {
                    format!(
                        "open model, {} rps, {bound}, at most {} in flight",
                        trim_float(rate),
                        self.concurrency
                    )
                } else {
                    format!(
                        "open model, up to {} rps (mean {:.1}), {bound}, at most {} in flight",
                        trim_float(rate),
                        mean,
                        self.concurrency
                    )
                }
            }
        }
    }
}

pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0).round())
    } else if seconds < 120.0 {
        format!("{}s", trim_float((seconds * 10.0).round() / 10.0))
    } else {
        format!("{}m", trim_float((seconds / 6.0).round() / 10.0))
    }
}

/// Checks every report path before anything is sent.
pub fn check_outputs(outputs: &Outputs) -> Result<(), UsageError> {
    for (flag, path) in outputs.iter() {
        check_output_path(flag, path)?;
    }
    Ok(())
}

/// The authority of `scheme://authority/…`: up to the first `/`, `?` or `#`.
pub fn authority_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    Some(&rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())])
}

/// Checks the port of an absolute URL strictly: digits only, 1–65535. The
/// `http` crate turns `:99999`, `:-1` or `:80abc` into "no port", which would
/// send the run to port 80 or 443 — another service than the one meant.
pub fn check_port(url: &str) -> Result<(), String> {
    let Some(authority) = authority_of(url) else {
        return Ok(());
    };
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    let port = if let Some(rest) = host_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, "")) => None,
            Some((_, after)) => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("expected ':PORT' after the IPv6 address".to_string()),
            },
            None => return Err("an IPv6 address needs its closing ']'".to_string()),
        }
    } else {
        host_port.rsplit_once(':').map(|(_, port)| port)
    };
    match port {
        None => Ok(()),
        Some(port)
            if !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && (1..=65535).contains(&port.parse::<u32>().unwrap_or(0)) =>
        {
            Ok(())
        }
        Some(port) => Err(format!(
            "port '{}' is not a port: expected a number from 1 to 65535",
            crate::console::escape_controls(port)
        )),
    }
}

/// Splits `scheme://user:pass@host/…` into the URL without credentials and
/// the credentials, which become a (secret) Basic Authorization header.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => (
            format!("{scheme}://{host}{}", &rest[authority_end..]),
            Some(userinfo.to_string()),
        ),
        None => (url.to_string(), None),
    }
}

/// Parses 'Name: value'. The text is never echoed back: it may hold a secret.
pub(crate) fn parse_header(
    position: usize,
    text: &str,
    marked: &[String],
) -> Result<(HeaderName, String), UsageError> {
    let Some((name, value)) = text.split_once(':') else {
        return usage(format!(
            "-H/--header #{position}: expected 'Name: value' (no ':' found)"
        ));
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes()).or_else(|_| {
        usage(format!("-H/--header #{position}: expected 'Name: value'; the name before ':' is not a valid header name"))
    })?;
    let value = value.trim().to_string();
    if value.is_empty() && redact::is_secret_header(name.as_str(), marked) {
        return usage(format!(
            "-H/--header '{name}' (#{position}): the value is empty"
        ));
    }
    Ok((name, value))
}

/// A report path must be writable later; say so now rather than after the run.
pub fn check_output_path(flag: &str, path: &std::path::Path) -> Result<(), UsageError> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent {
        if !parent.is_dir() {
            return usage(format!(
                "{flag} {}: the folder {} does not exist",
                path.display(),
                parent.display()
            ));
        }
    }
    if path.is_dir() {
        return usage(format!(
            "{flag} {}: is a folder; expected a file path",
            path.display()
        ));
    }
    Ok(())
}

/// Where reports go: (format flag such as `--json`, file) pairs. The flags
/// are made from the output layer's list of formats (`output::FORMATS`).
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    files: Vec<(&'static str, std::path::PathBuf)>,
}

impl Outputs {
    pub fn new(files: impl IntoIterator<Item = (&'static str, std::path::PathBuf)>) -> Self {
        Self {
            files: files.into_iter().collect(),
        }
    }

    /// The file a format goes to, by its flag (`--json`).
    pub fn path(&self, flag: &str) -> Option<&std::path::PathBuf> {
        self.files
            .iter()
            .find(|(given, _)| *given == flag)
            .map(|(_, path)| path)
    }

    /// Sets (or replaces) the file of one format.
    pub fn set(&mut self, flag: &'static str, path: std::path::PathBuf) {
        self.files.retain(|(given, _)| *given != flag);
        self.files.push((flag, path));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &std::path::PathBuf)> {
        self.files.iter().map(|(flag, path)| (*flag, path))
    }
}
