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
    /// `--shard`/`--start-at`: this process runs one shard of a larger run,
    /// or starts on a shared clock; `None` for a whole run started now.
    pub sharding: Option<Sharding>,
}

/// Shard `index` of `count`: the requests of the whole run whose global
/// index is `index` mod `count` (k6's striping with equal shares). Request
/// `k` of the shard is global request `index + k·count`, due when the whole
/// run's schedule says and carrying that index (`{{seq}}`, API-key choice),
/// so the shards' union is the planned run, each request once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole run: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Most shards of one run: beyond this a shard's share of any sane
    /// rate is below one request.
    pub const MAX_COUNT: u64 = 10_000;

    /// `I/N` with 0 ≤ I < N ≤ [`Shard::MAX_COUNT`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .trim()
            .split_once('/')
            .ok_or("expected I/N, e.g. 0/4 (shard I of N, counted from 0)")?;
        let count = Self::parse_count(count)?;
        let index: u64 = index
            .trim()
            .parse()
            .map_err(|_| format!("shard '{index}' is not a number from 0 to {}", count - 1))?;
        if index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: shards count from 0 to {}",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// N, the number of shards: 1 to [`Shard::MAX_COUNT`].
    pub fn parse_count(text: &str) -> Result<u64, String> {
        match text.trim().parse::<u64>() {
            Ok(count) if (1..=Self::MAX_COUNT).contains(&count) => Ok(count),
            _ => Err(format!(
                "'{text}' is not a shard count: expected 1 to {}",
                Self::MAX_COUNT
            )),
        }
    }

    /// The global index of this shard's `local`-th request.
    pub fn global(&self, local: u64) -> Option<u64> {
        local.checked_mul(self.count)?.checked_add(self.index)
    }

    /// The position in this shard of global request `global`.
    pub fn local(&self, global: u64) -> u64 {
        global.saturating_sub(self.index) / self.count
    }

    /// How many of the global indices below `n` this shard owns.
    pub fn owned_below(&self, n: u64) -> u64 {
        n.saturating_sub(self.index).div_ceil(self.count)
    }

    /// This shard's part of a whole-run count (connections, the in-flight
    /// cap): the first `total mod count` shards take one more.
    pub fn part_of(&self, total: usize) -> usize {
        let count = self.count as usize;
        total / count + usize::from((self.index as usize) < total % count)
    }
}

/// How a sharded or clock-aligned run differs from a whole run started now.
#[derive(Debug, Clone)]
pub struct Sharding {
    pub shard: Shard,
    /// `--start-at`: when the schedule's time 0 is, on the wall clock.
    pub start_at: Option<std::time::SystemTime>,
    /// The whole run's load, described as for a whole run (what every
    /// shard of one run shares, and what a merge reports).
    pub whole_load: String,
    /// The whole run's in-flight cap or connections.
    pub whole_concurrency: usize,
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
    /// The shard this plan runs ([`Shard::WHOLE`] unless `--shard`).
    pub fn shard(&self) -> Shard {
        self.sharding.as_ref().map_or(Shard::WHOLE, |s| s.shard)
    }

    /// A one-line description of the offered load, for the terminal: the
    /// whole run's, and which shard of it this is.
    pub fn describe_load(&self) -> String {
        let whole = self.describe_whole_load();
        match &self.sharding {
            Some(sharding) if sharding.shard.count > 1 => format!(
                "{}; this is shard {}/{} (global requests {} mod {}, at most {} in flight here)",
                sharding.whole_load,
                sharding.shard.index,
                sharding.shard.count,
                sharding.shard.index,
                sharding.shard.count,
                self.concurrency
            ),
            _ => whole,
        }
    }

    /// The load as if this plan were the whole run.
    pub fn describe_whole_load(&self) -> String {
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
