//! The analyses' sections of a saved report: the throttle probe's and the
//! canary's, with what a merge needs to recompute them.
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::throttle::estimate::Estimated;
use crate::throttle::gate::Parameter;

/// The throttle probe's findings (`throttle.*` in `schema/report.schema.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThrottleSection {
    /// `token_bucket`, `queue`, `fixed_window`, `sliding_window`,
    /// `concurrency`, `none` (nothing was throttled) or `unknown` (throttled,
    /// but no model explains it, or too little was seen: `evidence` says).
    pub model: String,
    /// The admitted rate: a bucket's or queue's refill rate, a window's
    /// limit ÷ length, a concurrency limit's concurrency ÷ duration.
    pub rate_per_s: Option<Estimate>,
    pub burst: Option<Estimate>,
    /// A queue (nginx `limit_req` without `nodelay`): requests it holds, and
    /// how long an admitted request waits in it under overload.
    #[serde(default)]
    pub queue_depth: Option<Estimate>,
    #[serde(default)]
    pub queue_delay_ms: Option<Estimate>,
    /// A window limiter: requests admitted per window, and its length.
    #[serde(default)]
    pub window_limit: Option<Estimate>,
    #[serde(default)]
    pub window_s: Option<Estimate>,
    /// Whether refused requests count against the window (a lockout);
    /// `null` when unknown or when it makes no difference.
    #[serde(default)]
    pub counts_refused: Option<bool>,
    /// Requests in progress the limiter allows.
    #[serde(default)]
    pub concurrency: Option<Estimate>,
    /// Median latency of admitted requests, ms.
    #[serde(default)]
    pub backend_ms: Option<f64>,
    /// How each parameter's interval was made, by field name.
    #[serde(default)]
    pub interval_kind: std::collections::BTreeMap<String, String>,
    /// What the model was chosen on, in words.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// A limiter that locked the client out under overload.
    #[serde(default)]
    pub lockout: Option<LockoutFacts>,
    /// Level of the intervals.
    pub confidence: f64,
    /// The knee: the point estimate of the offered rate where refusals
    /// begin (the named model's rate; for an unknown limiter the middle of
    /// the search's bracket). `null` when nothing was refused.
    pub knee_rate_per_s: Option<f64>,
    /// The safe rate: the knee's lower confidence bound (the model's rate's
    /// lower bound, lowered to a clean held step when the step held at it
    /// was refused); for an unknown or no limiter, the highest rate seen
    /// with under 1% refused.
    #[serde(default)]
    pub safe_rate_per_s: Option<f64>,
    /// First throttled request, seconds from the first request sent.
    pub first_throttle_s: Option<f64>,
    pub admitted_before_first_throttle: Option<u64>,
    /// When the bucket began to drain (the fit's origin), seconds.
    pub drain_start_s: Option<f64>,
    /// The rate of the sustained overload.
    pub overload_rate_per_s: Option<f64>,
    /// Share of spans with no admission in the throttled stretch (window test).
    pub silent_share: Option<f64>,
    pub requests_used: u64,
    pub max_rate_per_s: f64,
    pub max_requests: u64,
    pub max_duration_s: f64,
    pub idle_s: f64,
    pub expect_rate_per_s: Option<f64>,
    pub expect_burst: Option<f64>,
    /// The other expectations (`--expect-concurrency`, …), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_concurrency: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_window_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_window_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_queue_depth: Option<f64>,
    pub tolerance: f64,
    /// 429s that carried `Retry-After`, and the first one's value (s).
    pub retry_after_count: u64,
    pub retry_after_s: Option<f64>,
    /// A 429 `Limit Exceeded` (usage-plan quota) was seen and stopped the probe.
    pub quota_exhausted: bool,
    /// A declared usage-plan quota (`--aws-usage-plan`) and what the probe
    /// saw of it.
    #[serde(default)]
    pub quota: Option<crate::throttle::gate::QuotaFacts>,
    /// 401/403 responses (auth, not throttling).
    pub forbidden: u64,
    pub steps: Vec<ThrottleStep>,
    pub series: ThrottleSeries,
    pub notes: Vec<String>,
}

/// What the probe did about a lockout.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LockoutFacts {
    /// How long nothing was admitted before the probe recognised it (s).
    pub silent_s: f64,
    /// When it was recognised, on the probe's clock (s).
    pub recognised_at_s: f64,
    /// Refused requests sent after it was recognised (recovery probes and
    /// requests already due).
    pub refused_after: u64,
    /// From the last overload request to the first admission again (s);
    /// `null` when the bounds ended first.
    pub recovered_after_s: Option<f64>,
}

impl ThrottleSection {
    /// The estimate of a parameter the gates compare.
    pub fn estimate(&self, parameter: Parameter) -> Option<Estimated> {
        let estimate = match parameter {
            Parameter::Rate => &self.rate_per_s,
            Parameter::Burst => &self.burst,
            Parameter::Concurrency => &self.concurrency,
            Parameter::WindowLimit => &self.window_limit,
            Parameter::Window => &self.window_s,
            Parameter::QueueDepth => &self.queue_depth,
        };
        estimate.as_ref().map(|e| Estimated {
            estimate: e.estimate,
            low: e.ci_low,
            high: e.ci_high,
        })
    }

    /// What the probe was told to expect of a parameter.
    pub fn expected(&self, parameter: Parameter) -> Option<f64> {
        match parameter {
            Parameter::Rate => self.expect_rate_per_s,
            Parameter::Burst => self.expect_burst,
            Parameter::Concurrency => self.expect_concurrency,
            Parameter::WindowLimit => self.expect_window_limit,
            Parameter::Window => self.expect_window_s,
            Parameter::QueueDepth => self.expect_queue_depth,
        }
    }

    /// The limiter's model in words ("token bucket", "concurrency limit"…),
    /// as every format and the demo name it.
    pub fn model_label(&self) -> &'static str {
        crate::throttle::identify::Limiter::parse(&self.model)
            .unwrap_or_default()
            .label()
    }

    /// The knee and the safe rate in words, each with what it stands on:
    /// the model's rate and interval, the knee's held steps (the highest
    /// held with no refusal, the lowest refused), or for an unknown limiter
    /// the search's bracket.
    pub fn knee_text(&self) -> Option<String> {
        let rps = |rate: f64| format!("{} rps", crate::units::trim_float(rate));
        let Some(knee) = self.knee_rate_per_s else {
            let seen = self.safe_rate_per_s.map_or(String::new(), |safe| {
                format!(": {} was seen with no refusal", rps(safe))
            });
            return Some(if self.first_throttle_s.is_some() {
                format!("no knee: no step below the refusals was clean{seen}")
            } else {
                format!("no knee: no refusal at any rate sent{seen}")
            })
            .filter(|_| self.safe_rate_per_s.is_some() || self.first_throttle_s.is_some());
        };
        let named = self.rate_per_s.is_some() && !matches!(self.model.as_str(), "unknown" | "none");
        let held: Vec<&ThrottleStep> = self.steps.iter().filter(|s| s.phase == "knee").collect();
        let refused = held
            .iter()
            .filter(|s| s.throttled > 0)
            .map(|s| s.rate_per_s)
            .reduce(f64::min);
        let clean = held
            .iter()
            .filter(|s| s.throttled == 0)
            .map(|s| s.rate_per_s)
            .reduce(f64::max);
        let search = if held.is_empty() {
            String::new()
        } else {
            format!(
                "; {} held step{}: {}{}",
                held.len(),
                if held.len() == 1 { "" } else { "s" },
                clean.map_or("none clean".to_string(), |c| format!("{} clean", rps(c))),
                refused.map_or(String::new(), |r| format!(", {} refused", rps(r)))
            )
        };
        let (knee_from, safe_from) = if named {
            let level = format!("{:.0}%", 100.0 * self.confidence);
            let lowered = self
                .rate_per_s
                .zip(self.safe_rate_per_s)
                .is_some_and(|(rate, safe)| safe < rate.ci_low - 0.01);
            (
                format!(
                    "where refusals begin: the {}'s rate{search}",
                    self.model_label()
                ),
                if lowered {
                    format!("the highest clean held step, below the rate's {level} lower bound")
                } else {
                    format!("the rate's {level} lower bound")
                },
            )
        } else {
            (
                "where refusals begin: the middle of the search's bracket, no model".to_string(),
                "the highest rate seen under 1% refused, observed, not a bound".to_string(),
            )
        };
        let safe = self.safe_rate_per_s.map_or(String::new(), |safe| {
            format!(" · safe {} ({safe_from})", rps(safe))
        });
        Some(format!("knee {} ({knee_from}){safe}", rps(knee)))
    }

    /// The parameters the report has, in a fixed order: (field, label,
    /// unit, estimate). Every format lists them from here.
    pub fn parameters(&self) -> Vec<(&'static str, &'static str, &'static str, Estimate)> {
        [
            ("rate_per_s", "rate", " rps", self.rate_per_s),
            ("burst", "burst", "", self.burst),
            ("queue_depth", "queue depth", "", self.queue_depth),
            ("queue_delay_ms", "queue delay", " ms", self.queue_delay_ms),
            ("window_limit", "limit", " per window", self.window_limit),
            ("window_s", "window", " s", self.window_s),
            (
                "concurrency",
                "concurrency",
                " in progress",
                self.concurrency,
            ),
        ]
        .into_iter()
        .filter_map(|(field, label, unit, value)| value.map(|value| (field, label, unit, value)))
        .collect()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Estimate {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// One rate the probe offered, and what came of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThrottleStep {
    pub phase: String,
    pub rate_per_s: f64,
    pub start_s: f64,
    pub end_s: f64,
    pub offered: u64,
    pub admitted: u64,
    pub throttled: u64,
}

/// Per-second counts by send time, from the first request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThrottleSeries {
    pub interval_s: f64,
    pub offered: Vec<u64>,
    pub admitted: Vec<u64>,
    pub throttled: Vec<u64>,
    /// Median latency of the requests admitted in each second, ms (0 for a
    /// second with none): a queue's wait shows here.
    #[serde(default)]
    pub admitted_latency_ms: Vec<f64>,
}

/// What a canary shard saves for the merge (see [`CanarySection`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CanaryMergeInputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::canary::health::HealthSpec>,
    /// What an earlier version's latency boundary was tuned for (seconds);
    /// 0 now: the latency check plans in responses.
    pub latency_seconds: u64,
    /// The width of the latency blocks' bins of due time (µs); absent in
    /// reports of earlier versions, whose blocks were whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_bin_us: Option<u64>,
    /// Per bin of due time, per variant (expect's order).
    pub latency_blocks: Vec<Vec<crate::canary::health::Block>>,
}

impl CanaryMergeInputs {
    /// The bins' width (µs): whole seconds for earlier versions' reports.
    pub fn bin_us(&self) -> u64 {
        self.latency_bin_us.unwrap_or(1_000_000).max(1)
    }
}

/// The canary run's expectations and plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanarySection {
    /// Expected share per variant (fractions), the baseline's included.
    pub expect: IndexMap<String, f64>,
    pub baseline: Option<String>,
    pub alpha: f64,
    pub power: f64,
    /// Fixed-horizon (TOST) classified responses the split needs.
    pub split_fixed_horizon: u64,
    /// Mean classified responses to a split decision with sequential stopping
    /// when the split is exactly as expected (seeded simulation).
    pub split_expected_sequential: f64,
    /// Requests the checks planned for, and the cap the run had.
    pub planned_requests: u64,
    pub max_requests: u64,
    /// Responses in a variant, and responses outside every variant.
    pub classified: u64,
    pub unclassified: u64,
    /// The most unclassified responses (a share of all) the checks trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unclassified: Option<f64>,
    /// The share tolerance per tested variant (fractions): its band is
    /// `expect ± tolerance`, clipped to 0–1.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tolerance: IndexMap<String, f64>,
    /// How the share intervals are made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_kind: Option<String>,
    /// Classified responses after which an undecided split is inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_horizon: Option<u64>,
    /// The plan before the run (`planned_requests` is the final one, re-planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_planned_requests: Option<u64>,
    /// A shard's run: what `gateprobe merge` needs to decide the checks on
    /// every shard's responses (the health spec, and per second of due
    /// time the latency block of each variant, in `expect`'s order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_inputs: Option<CanaryMergeInputs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_baseline_error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_baseline_error_rate: Option<f64>,
    /// Why the run stopped (every check decided, a check failed, the plan was complete…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
    /// Connections the responses came on, and the dispersion tests' p-values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_dispersion_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_dispersion_p: Option<f64>,
}
