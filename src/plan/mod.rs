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
/// index is `index` mod `count` (k6's striping with equal shares), or with
/// `--shard-weights` the positions its [`Stripe`] gives it. Request `k` of
/// the shard is its k-th global index, due when the whole run's schedule
/// says and carrying that index (`{{seq}}`, API-key choice), so the shards'
/// union is the planned run, each request once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
    /// Uneven shares; `None`: every shard has one.
    pub stripe: Option<std::sync::Arc<Stripe>>,
}

/// Uneven shares: shard k owns `weights[k]` of every `period` = Σ weights
/// consecutive global indices, at the positions smooth weighted round-robin
/// gives it (nginx's upstream rule: each position goes to the shard furthest
/// behind its share, ties to the lowest index). Every prefix of the run is
/// then split within one request of the weights, so each shard follows the
/// whole run's rate curve at its share, as k6's execution-segment striping
/// does; equal weights reduce to `index mod count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripe {
    pub weights: Vec<u64>,
    period: u64,
    /// This shard's positions in one period, ascending.
    positions: Vec<u64>,
}

impl Stripe {
    /// Shard `index`'s stripe for these weights (each ≥ 1, their sum at
    /// most [`Shard::MAX_COUNT`], so a period is small).
    pub fn new(weights: Vec<u64>, index: u64) -> Self {
        let period: u64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut positions = Vec::new();
        for position in 0..period {
            for (now, weight) in current.iter_mut().zip(&weights) {
                *now += *weight as i64;
            }
            let (chosen, _) = current
                .iter()
                .enumerate()
                .rev()
                .max_by_key(|(_, now)| **now)
                .expect("at least one shard");
            current[chosen] -= period as i64;
            if chosen as u64 == index {
                positions.push(position);
            }
        }
        Self {
            weights,
            period,
            positions,
        }
    }

    fn owned_below(&self, n: u64) -> u64 {
        let mine = self.positions.len() as u64;
        let partial = self.positions.partition_point(|&p| p < n % self.period) as u64;
        (n / self.period) * mine + partial
    }
}

impl Shard {
    /// The whole run: shard 0 of 1.
    pub const WHOLE: Shard = Shard {
        index: 0,
        count: 1,
        stripe: None,
    };

    /// Most shards of one run (and largest sum of weights): beyond this a
    /// shard's share of any sane rate is below one request.
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
        Ok(Self {
            index,
            count,
            stripe: None,
        })
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

    /// `--shard-weights W0,W1,…`: one positive whole number per shard.
    /// Weights with a common factor are reduced (2,2 is 1,1); all equal is
    /// plain striping, with no stripe.
    pub fn weighted(self, text: &str) -> Result<Self, String> {
        let weights = text
            .split(',')
            .map(|w| match w.trim().parse::<u64>() {
                Ok(weight) if weight >= 1 => Ok(weight),
                _ => Err(format!(
                    "'{}' is not a weight: expected whole numbers of 1 or more, one per shard (e.g. 2,1,1)",
                    w.trim()
                )),
            })
            .collect::<Result<Vec<u64>, String>>()?;
        if weights.len() as u64 != self.count {
            return Err(format!(
                "{} weights for {} shards: give one per shard",
                weights.len(),
                self.count
            ));
        }
        let common = weights.iter().copied().fold(0, gcd);
        let weights: Vec<u64> = weights.iter().map(|w| w / common).collect();
        if weights.iter().sum::<u64>() > Self::MAX_COUNT {
            return Err(format!(
                "the weights add up to more than {}: use smaller numbers in the same ratio",
                Self::MAX_COUNT
            ));
        }
        Ok(Self {
            stripe: weights
                .iter()
                .any(|&w| w != 1)
                .then(|| std::sync::Arc::new(Stripe::new(weights, self.index))),
            ..self
        })
    }

    /// Every shard's weight, or `None` when they are equal.
    pub fn weights(&self) -> Option<&[u64]> {
        self.stripe.as_deref().map(|stripe| &stripe.weights[..])
    }

    /// How many consecutive global indices hold every shard's share once:
    /// a whole-run count this large gives each shard at least one.
    pub fn period(&self) -> u64 {
        self.stripe
            .as_ref()
            .map_or(self.count, |stripe| stripe.period)
    }

    /// Which global indices this shard sends, for the terminal.
    pub fn describe(&self) -> String {
        match &self.stripe {
            Some(stripe) => format!(
                "shard {}/{} with weights {}: {} of every {} global requests",
                self.index,
                self.count,
                stripe
                    .weights
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                stripe.positions.len(),
                stripe.period
            ),
            None => format!(
                "shard {}/{} (global requests {} mod {})",
                self.index, self.count, self.index, self.count
            ),
        }
    }

    /// This shard's share of the whole run's requests.
    pub fn share(&self) -> f64 {
        match &self.stripe {
            Some(stripe) => stripe.positions.len() as f64 / stripe.period as f64,
            None => 1.0 / self.count as f64,
        }
    }

    /// The global index of this shard's `local`-th request.
    pub fn global(&self, local: u64) -> Option<u64> {
        match &self.stripe {
            Some(stripe) => {
                let mine = stripe.positions.len() as u64;
                (local / mine)
                    .checked_mul(stripe.period)?
                    .checked_add(stripe.positions[(local % mine) as usize])
            }
            None => local.checked_mul(self.count)?.checked_add(self.index),
        }
    }

    /// The position in this shard of global request `global`.
    pub fn local(&self, global: u64) -> u64 {
        match &self.stripe {
            Some(stripe) => stripe.owned_below(global),
            None => global.saturating_sub(self.index) / self.count,
        }
    }

    /// How many of the global indices below `n` this shard owns.
    pub fn owned_below(&self, n: u64) -> u64 {
        match &self.stripe {
            Some(stripe) => stripe.owned_below(n),
            None => n.saturating_sub(self.index).div_ceil(self.count),
        }
    }

    /// This shard's part of a whole-run count (connections, the in-flight
    /// cap): what it owns of the first `total` indices, so the parts add up
    /// to `total` (equal shares: the first `total mod count` take one more).
    pub fn part_of(&self, total: usize) -> usize {
        self.owned_below(total as u64) as usize
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// How a sharded or clock-aligned run differs from a whole run started now.
#[derive(Debug, Clone)]
pub struct Sharding {
    pub shard: Shard,
    /// `--start-at`: when the schedule's time 0 is, on the wall clock.
    pub start_at: Option<std::time::SystemTime>,
    /// The `+DURATION` it was given as, if relative: what shards started
    /// apart share (their resolved times may differ by when each started).
    pub start_at_relative: Option<String>,
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
    pub client: Option<crate::identity::ClientIdentity>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("roots", &self.roots.len())
            .field(
                "client_chain",
                &self.client.as_ref().map(|identity| identity.chain_len()),
            )
            .finish()
    }
}

impl LoadPlan {
    /// The shard this plan runs ([`Shard::WHOLE`] unless `--shard`).
    pub fn shard(&self) -> Shard {
        self.sharding
            .as_ref()
            .map_or(Shard::WHOLE, |s| s.shard.clone())
    }

    /// A one-line description of the offered load, for the terminal: the
    /// whole run's, and which shard of it this is.
    pub fn describe_load(&self) -> String {
        let whole = self.describe_whole_load();
        match &self.sharding {
            Some(sharding) if sharding.shard.count > 1 => format!(
                "{}; this is {}, at most {} in flight here",
                sharding.whole_load,
                sharding.shard.describe(),
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
        if flag == "--samples" {
            // A row per request would bury the terminal report.
            return usage("--samples -: the samples go to a file, not standard output".to_string());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn shards(weights: &str, count: u64) -> Vec<Shard> {
        (0..count)
            .map(|index| {
                Shard::parse(&format!("{index}/{count}"))
                    .unwrap()
                    .weighted(weights)
                    .unwrap()
            })
            .collect()
    }

    /// Equal weights are plain striping, and 2,2 is 1,1: no stripe at all.
    #[test]
    fn equal_weights_are_index_mod_count() {
        for shard in shards("3,3,3", 3) {
            assert!(shard.stripe.is_none());
            assert_eq!(shard.global(5), Some(5 * 3 + shard.index));
        }
        // A stripe built for equal weights agrees with index mod count.
        for index in 0..4 {
            let stripe = Shard {
                index,
                count: 4,
                stripe: Some(std::sync::Arc::new(Stripe::new(vec![1; 4], index))),
            };
            let plain = Shard::parse(&format!("{index}/4")).unwrap();
            for n in 0..50 {
                assert_eq!(stripe.global(n), plain.global(n));
                assert_eq!(stripe.owned_below(n), plain.owned_below(n));
                assert_eq!(stripe.part_of(n as usize), plain.part_of(n as usize));
            }
        }
    }

    /// Over random weights: the shards partition the run (every global
    /// index once), `local` inverts `global`, `owned_below` counts, the
    /// parts of a whole-run count add up to it, and every prefix of the run
    /// is split within one request of the weights.
    #[test]
    fn weighted_shards_partition_every_prefix_by_their_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        for _ in 0..200 {
            let count = rng.random_range(1..=6u64);
            let weights: Vec<u64> = (0..count).map(|_| rng.random_range(1..=7)).collect();
            let text = weights
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let shards = shards(&text, count);
            let total: u64 = weights.iter().sum();
            let run = 3 * total + 5;
            let mut owner = vec![None; run as usize];
            for (k, shard) in shards.iter().enumerate() {
                for local in 0.. {
                    let global = shard.global(local).unwrap();
                    if global >= run {
                        break;
                    }
                    assert_eq!(owner[global as usize], None, "{text}: {global} twice");
                    owner[global as usize] = Some(k);
                    assert_eq!(shard.local(global), local);
                }
            }
            assert!(
                owner.iter().all(Option::is_some),
                "{text}: every index owned"
            );
            for n in 0..=run {
                let parts: Vec<u64> = shards.iter().map(|s| s.owned_below(n)).collect();
                assert_eq!(parts.iter().sum::<u64>(), n);
                for (k, part) in parts.iter().enumerate() {
                    let owned = owner[..n as usize]
                        .iter()
                        .filter(|o| **o == Some(k))
                        .count();
                    assert_eq!(*part, owned as u64);
                    let fair = n as f64 * shards[k].share();
                    assert!((*part as f64 - fair).abs() < 1.0, "{text}: prefix {n}");
                }
            }
        }
    }

    #[test]
    fn bad_weights_say_what_is_expected() {
        let shard = Shard::parse("0/3").unwrap();
        for (weights, says) in [
            ("2,1", "2 weights for 3 shards"),
            ("2,0,1", "'0' is not a weight"),
            ("2,x,1", "'x' is not a weight"),
            ("9000,9000,1", "add up to more than"),
        ] {
            let why = shard.clone().weighted(weights).unwrap_err();
            assert!(why.contains(says), "{weights}: {why}");
        }
        let half = shard.weighted("2,1,1").unwrap();
        assert_eq!(half.weights(), Some(&[2, 1, 1][..]));
        assert_eq!(half.share(), 0.5);
        assert_eq!(half.period(), 4);
    }
}
