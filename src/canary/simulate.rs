//! The canary check in virtual time: synthetic responses with a known truth
//! (shares, error rates, latencies, dependence) fed to the very observer a
//! real run uses ([`Watch`]), so that the error rates the checks claim can be
//! measured by seeded simulation — thousands of runs in seconds, no HTTP.
use rand::Rng;

use super::health::Standing;
use super::plan::CanaryPlan;
use super::split::{Outcome, State};
use super::watch::Watch;
use crate::engine::{Observer, Verdict as Next};
use crate::record::Recorder;
use crate::sample::Sample;

/// What the simulated gateway does.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Share of requests each variant serves (in the plan's variant order).
    /// Whatever is left gets no variant's answer (a timeout, an unmarked 5xx).
    pub shares: Vec<f64>,
    /// Error rate within each variant.
    pub error_rates: Vec<f64>,
    /// Geometric-mean latency per variant, ms.
    pub latency_ms: Vec<f64>,
    /// Standard deviation of the log latency.
    pub latency_sigma: f64,
    /// Lag-1 autocorrelation of the log-latency noise, request to request.
    pub autocorrelation: f64,
    /// A split per connection instead of per request: this many connections,
    /// each assigned to a variant once.
    pub sticky_connections: Option<usize>,
    /// The client's pool opens its connections one by one (one more every
    /// [`POOL_GROWS_EVERY`] requests), as a real one warming up does, so the
    /// first responses come on a few connections; else round robin over
    /// all of them from the first request.
    pub growing_pool: bool,
    /// Requests per second (virtual).
    pub rate_per_s: f64,
    /// A recorded latency trace (ms, in send order) to replay instead of
    /// the log-normal noise: request i of a run gets entry (start + i) of
    /// it, from a random start, scaled by its variant's `latency_ms` / 10
    /// (10 ms replays the trace as recorded). Its dependence is the real
    /// server's.
    pub latency_trace: Option<std::sync::Arc<Vec<f64>>>,
}

impl Truth {
    /// A gateway exactly as the plan expects: healthy, 10 ms, independent.
    pub fn as_planned(plan: &CanaryPlan) -> Self {
        let count = plan.variants.len();
        Self {
            shares: plan.variants.iter().map(|v| v.share).collect(),
            error_rates: vec![0.0; count],
            latency_ms: vec![10.0; count],
            latency_sigma: 0.3,
            autocorrelation: 0.0,
            sticky_connections: None,
            growing_pool: false,
            rate_per_s: plan.rate_per_s.unwrap_or(1000.0),
            latency_trace: None,
        }
    }
}

/// With [`Truth::growing_pool`]: requests per newly opened connection.
pub const POOL_GROWS_EVERY: u64 = 8;

/// What one virtual run concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Concluded {
    pub split: Outcome,
    /// The first compared variant's error and latency checks.
    pub errors: Standing,
    pub latency: Standing,
    /// The first compared variant's drop test.
    pub drops: Option<super::drops::Finding>,
    /// Whether dependence was found.
    pub dependent: bool,
    pub requests: u64,
}

/// Runs the plan's checks on responses drawn from `truth` until the
/// observer stops them (or the plan's cap).
pub fn run(plan: &CanaryPlan, truth: &Truth, rng: &mut impl Rng) -> Concluded {
    let mut watch = Watch::new(plan);
    let recorder = Recorder::new(plan.load.classifier.names());
    let unmatched = (plan.load.classifier.names().len() - 1) as u16;
    let sticky: Vec<Option<usize>> = match truth.sticky_connections {
        Some(count) => (0..count).map(|_| pick(&truth.shares, rng)).collect(),
        None => Vec::new(),
    };
    let connections = truth.sticky_connections.unwrap_or(64) as u64;
    let mut noise = 0.0_f64;
    let innovation = (1.0 - truth.autocorrelation.powi(2)).sqrt();
    let mut sent = 0;
    let trace_start = truth
        .latency_trace
        .as_ref()
        .map_or(0, |trace| rng.random_range(0..trace.len().max(1)));
    for index in 0..plan.max_requests {
        let open = if truth.growing_pool {
            (1 + index / POOL_GROWS_EVERY).min(connections)
        } else {
            connections
        };
        let connection = index % open;
        let variant = if sticky.is_empty() {
            pick(&truth.shares, rng)
        } else {
            sticky[connection as usize]
        };
        noise = truth.autocorrelation * noise + innovation * standard_normal(rng);
        let (class, failed, latency_ms) = match variant {
            Some(variant) => (
                plan.variants[variant].class,
                rng.random::<f64>() < truth.error_rates[variant],
                match &truth.latency_trace {
                    Some(trace) => {
                        let recorded = trace[(trace_start + index as usize) % trace.len()];
                        recorded * truth.latency_ms[variant] / 10.0
                    }
                    None => truth.latency_ms[variant] * (truth.latency_sigma * noise).exp(),
                },
            ),
            None => (unmatched, false, truth.latency_ms[0]),
        };
        let due_us = (index as f64 * 1e6 / truth.rate_per_s) as u64;
        let sample = Sample {
            done_us: due_us + (latency_ms * 1000.0) as u64,
            status: if failed { 500 } else { 200 },
            class,
            failed,
            connection: connection as u32 + 1,
            in_flight: 1,
            ..Sample::sent(index, due_us, due_us)
        };
        sent = index + 1;
        if let Next::Stop(_) = watch.observe(&sample, &recorder) {
            break;
        }
    }
    watch.finish();
    let split = match watch.split.state() {
        State::Failed => Outcome::Fail,
        _ => watch.split.finish(),
    };
    let first = watch.health.first();
    Concluded {
        split,
        errors: first
            .and_then(|h| h.errors)
            .map_or(Standing::Undecided, |e| e.standing),
        latency: first
            .and_then(|h| h.latency)
            .map_or(Standing::Undecided, |l| l.standing),
        drops: first.and_then(|h| h.drops).map(|d| d.finding),
        dependent: watch.dependence.finding(plan.split.horizon()).is_some(),
        requests: sent,
    }
}

/// A variant drawn with the given shares (`None`: no variant's answer).
fn pick(shares: &[f64], rng: &mut impl Rng) -> Option<usize> {
    let draw: f64 = rng.random();
    let mut cumulative = 0.0;
    shares.iter().position(|share| {
        cumulative += share;
        draw < cumulative
    })
}

/// A standard normal draw (Box–Muller; rand_distr is not a dependency).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
