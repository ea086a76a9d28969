//! The report model every output format renders, and the one place that
//! decides where each format goes. One format = one file implementing
//! [`Format`]. The JSON form is the stable contract (`gateprobe.report/v1`,
//! documented by `schema/report.schema.json`): add fields, never rename.

use anyhow::Result;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::engine::{EndReason, RunInfo};
use crate::plan::LoadPlan;
use crate::record::{histogram_to_base64, Recorder};
use crate::sample::{ErrorDetail, ErrorKind};
use crate::throttle::estimate::Estimated;
use crate::throttle::gate::Parameter;

pub mod canary;
mod consistency;
pub mod merge;
pub mod throttle;

pub const SCHEMA: &str = "gateprobe.report/v1";

pub use crate::check::{combine, Check, Interval, Verdict};

/// A whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    pub command: String,
    pub verdict: Verdict,
    pub exit_code: u8,
    /// One line saying why the verdict is what it is.
    pub reason: String,
    pub run: RunSection,
    pub classes: IndexMap<String, ClassSection>,
    pub errors: IndexMap<String, u64>,
    /// Why transport errors happened, where the kind alone does not say
    /// (`tls: unknown issuer`, …); only the reasons seen.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub error_details: IndexMap<String, u64>,
    /// `--api-keys`: what each key's requests met, by label (values never).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub api_keys: IndexMap<String, crate::record::KeyStats>,
    pub schedule_lag_ms: Option<Percentiles>,
    pub series: SeriesSection,
    pub checks: Vec<Check>,
    /// `gateprobe canary`: what was expected and what the checks planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySection>,
    /// `gateprobe throttle`: the limiter's estimates and what the probe offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleSection>,
    /// `gateprobe run`: each step's own report, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    /// `--shard`/`--start-at`: which part of which run this is (and, in a
    /// merged report, which parts it holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSection>,
}

/// One shard's identity and what a merge of shards needs beyond the rest of
/// the report (which already holds exact histograms, counts and series).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardSection {
    pub index: u64,
    pub count: u64,
    /// `--shard-weights`, reduced: every shard's share (absent: equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<u64>>,
    /// The whole run's load, as for a whole run.
    pub load: String,
    /// The whole run's in-flight cap (open model) or connections (closed).
    pub concurrency: usize,
    /// `--start-at` (RFC 3339), and how late this shard began against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// `--start-at +DURATION` as given, when relative: the plan fact shards
    /// started apart share (the merge then allows their resolved times to
    /// differ by up to that duration, and lines their series up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_relative: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_late_ms: Option<f64>,
    /// The class names the classifier knows (in its order).
    pub classes: Vec<String>,
    /// SHA-256 of the request body as planned (its template's text), 16 hex
    /// digits; absent without a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The send lag's exact histogram (HdrHistogram V2 + DEFLATE, base64,
    /// µs), so that merged shards give its percentiles exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag_us: Option<String>,
    /// SHA-256 (16 hex digits) of the plan facts every shard of one run
    /// shares ([`crate::report::plan_facts`]).
    #[serde(default)]
    pub fingerprint: String,
    /// A merged report: the shards it holds, and those it lacks
    /// (`merge --allow-partial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u64>,
    /// A merged report: how many ms after the earliest each later shard
    /// began ("I/N" → ms; shards given a relative `--start-at`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub began_after_ms: IndexMap<String, f64>,
}

/// One step of a scenario and its report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    pub report: Report,
}

/// The throttle probe's findings (DESIGN.md: `throttle.*`).
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSection {
    /// The URL with secrets redacted.
    pub target: String,
    pub method: String,
    /// Request headers sent, secret values redacted.
    pub headers: IndexMap<String, String>,
    /// "open" or "closed".
    pub model: String,
    pub load: String,
    pub started_unix_ms: u64,
    pub requests_due: u64,
    pub requests_sent: u64,
    pub requests_completed: u64,
    pub responses: u64,
    pub dropped: u64,
    pub aborted: u64,
    /// Sent over 10 ms behind schedule: the generator, not the cap, was late.
    pub late: u64,
    pub duration_s: f64,
    pub wall_s: f64,
    pub target_rate_per_s: Option<f64>,
    pub achieved_rate_per_s: f64,
    pub concurrency: usize,
    /// "finished", "stopped" or "interrupted".
    pub ended: String,
    pub end_reason: Option<String>,
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Milliseconds from a µs histogram; `None` when it is empty.
    pub fn from_histogram(histogram: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassSection {
    pub count: u64,
    /// Responses that are errors within the class (5xx or `--error-if`).
    #[serde(default)]
    pub failed: u64,
    /// Share of completed requests.
    pub share: f64,
    pub bytes: u64,
    pub statuses: IndexMap<String, u64>,
    /// Latency from the due time (coordinated-omission corrected).
    pub latency_ms: Option<Percentiles>,
    /// Latency from the actual send.
    pub service_time_ms: Option<Percentiles>,
    /// HdrHistogram V2 + DEFLATE, base64, µs: re-rendered by `gateprobe report`.
    pub histograms: Histograms,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histograms {
    pub latency_us: String,
    pub service_us: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesSection {
    pub interval_s: f64,
    pub sent: Vec<u64>,
    pub dropped: Vec<u64>,
    pub completed: IndexMap<String, Vec<u64>>,
}

impl Report {
    /// Builds a `load` report: with no checks, pass if any HTTP response came
    /// back, error (exit 4) if none did, inconclusive if interrupted.
    pub fn for_load(plan: &LoadPlan, recorder: &Recorder, info: &RunInfo) -> Self {
        let mut report = Report::empty("load", &plan.request.display_url);
        report.run.target = plan.request.display_url.clone();
        report.run.method = plan.request.method.to_string();
        report.run.headers = plan.request.display_headers.iter().cloned().collect();
        report.run.model = if plan.schedule.is_open() {
            "open"
        } else {
            "closed"
        }
        .to_string();
        report.run.load = plan.describe_load();
        report.run.concurrency = plan.concurrency;
        report.api_keys = plan
            .request
            .api_keys
            .labels
            .iter()
            .map(|label| (label.clone(), Default::default()))
            .collect();
        report.shard = shard_section(plan);
        report.measured(recorder, info);
        report
    }

    /// Sets everything measured from the recorded data and the run facts:
    /// counts, classes, errors, per-key counts (by the labels already
    /// here), send lag, series, and the no-check verdict. A live run and a
    /// merge of shards both end here, so both report alike.
    pub fn measured(&mut self, recorder: &Recorder, info: &RunInfo) {
        let (verdict, reason) = load_verdict(recorder, info);
        self.verdict = verdict;
        self.exit_code = verdict.exit_code();
        self.reason = reason;
        self.run.measured(recorder, info);
        self.classes = class_sections(recorder);
        self.errors = ErrorKind::ALL
            .iter()
            .map(|kind| (kind.as_str().to_string(), recorder.errors[kind.index()]))
            .collect();
        self.error_details = ErrorDetail::ALL
            .iter()
            .filter(|detail| recorder.error_details[detail.index()] > 0)
            .map(|detail| {
                let count = recorder.error_details[detail.index()];
                (detail.as_str().to_string(), count)
            })
            .collect();
        for (slot, stats) in self.api_keys.values_mut().enumerate() {
            *stats = recorder.keys.get(slot).copied().unwrap_or_default();
        }
        self.schedule_lag_ms = if self.run.model == "open" {
            Percentiles::from_histogram(&recorder.send_lag_us)
        } else {
            None
        };
        if let Some(shard) = &mut self.shard {
            shard.schedule_lag_us = Some(histogram_to_base64(&recorder.send_lag_us));
            shard.start_late_ms = info.start_late_ms.map(crate::units::round2);
        }
        let classes = &self.classes;
        self.series = SeriesSection {
            interval_s: 1.0,
            sent: recorder.series.sent.clone(),
            dropped: recorder.series.dropped.clone(),
            completed: recorder
                .class_names
                .iter()
                .zip(&recorder.series.completed)
                .filter(|(name, _)| classes.contains_key(name.as_str()))
                .map(|(name, series)| (name.clone(), series.clone()))
                .collect(),
        };
        self.overrule_local_exhaustion();
    }
}

/// A sharded or clock-aligned run's identity. What it measured (lateness,
/// send lag) is set by [`Report::measured`], its fingerprint when the report
/// is complete ([`Report::seal`]).
fn shard_section(plan: &LoadPlan) -> Option<ShardSection> {
    let sharding = plan.sharding.as_ref()?;
    let body = match &plan.request.body {
        crate::plan::BodySpec::Empty => None,
        crate::plan::BodySpec::Static(bytes) => Some(digest(bytes)),
        crate::plan::BodySpec::Templated(template) => {
            Some(digest(format!("{template:?}").as_bytes()))
        }
    };
    Some(ShardSection {
        index: sharding.shard.index,
        count: sharding.shard.count,
        weights: sharding.shard.weights().map(<[u64]>::to_vec),
        load: sharding.whole_load.clone(),
        concurrency: sharding.whole_concurrency,
        start_at: sharding
            .start_at
            .map(|at| humantime::format_rfc3339_millis(at).to_string()),
        start_at_relative: sharding.start_at_relative.clone(),
        start_late_ms: None,
        classes: plan.classifier.names().to_vec(),
        body,
        schedule_lag_us: None,
        fingerprint: String::new(),
        merged: Vec::new(),
        missing: Vec::new(),
        began_after_ms: IndexMap::new(),
    })
}

/// SHA-256 of `bytes`, its first 16 hex digits: enough to tell plans apart.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What every shard of one run shares, as (name, value): the command, the
/// request, the whole run's load, the classes, the body, the canary's
/// expectations and the checks asked for. Two reports are shards of one
/// run when these are equal; the fingerprint is their digest.
pub fn plan_facts(report: &Report) -> Vec<(&'static str, String)> {
    let shard = report.shard.as_ref();
    let json = |value: serde_json::Value| value.to_string();
    let mut facts = vec![
        ("command", report.command.clone()),
        ("target", report.run.target.clone()),
        ("method", report.run.method.clone()),
        ("headers", json(serde_json::json!(report.run.headers))),
        (
            "load",
            shard.map_or(report.run.load.clone(), |s| s.load.clone()),
        ),
        (
            "concurrency",
            shard
                .map_or(report.run.concurrency, |s| s.concurrency)
                .to_string(),
        ),
        ("count", shard.map_or(1, |s| s.count).to_string()),
        (
            "weights",
            shard
                .and_then(|s| s.weights.as_ref())
                .map(|w| json(serde_json::json!(w)))
                .unwrap_or_default(),
        ),
        (
            "start_at",
            // Relative: the duration every shard was given; absolute: the time.
            shard
                .and_then(|s| s.start_at_relative.clone().or_else(|| s.start_at.clone()))
                .unwrap_or_default(),
        ),
        (
            "classes",
            shard.map(|s| s.classes.join(",")).unwrap_or_default(),
        ),
        (
            "body",
            shard.and_then(|s| s.body.clone()).unwrap_or_default(),
        ),
        (
            "checks",
            report
                .checks
                .iter()
                .map(|check| check.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    if let Some(canary) = &report.canary {
        facts.push((
            "canary",
            json(serde_json::json!({
                "expect": canary.expect, "tolerance": canary.tolerance,
                "baseline": canary.baseline, "alpha": canary.alpha, "power": canary.power,
                "max_unclassified": canary.max_unclassified,
                "planned_requests": canary.initial_planned_requests,
            })),
        ));
    }
    facts
}

impl Report {
    /// Sets the fingerprint of this report's shard section (and its
    /// steps'), now that the report is complete.
    pub fn seal(&mut self) {
        for step in &mut self.steps {
            step.report.seal();
        }
        let fingerprint = fingerprint(self);
        if let Some(shard) = &mut self.shard {
            shard.fingerprint = fingerprint;
        }
    }
}

/// The digest of a report's plan facts (and its steps').
pub fn fingerprint(report: &Report) -> String {
    let mut text = String::new();
    for (name, value) in plan_facts(report) {
        text.push_str(name);
        text.push('=');
        text.push_str(&value);
        text.push('\n');
    }
    for step in &report.steps {
        text.push_str(&step.name);
        text.push('=');
        text.push_str(&fingerprint(&step.report));
        text.push('\n');
    }
    digest(text.as_bytes())
}

impl Report {
    /// A load run with thresholds: when it measured (pass), the thresholds'
    /// verdict is the run's.
    pub fn decide_by_thresholds(&mut self) {
        if self.checks.is_empty() || self.verdict != Verdict::Pass {
            return;
        }
        let (verdict, deciding) = combine(&self.checks);
        self.reason = deciding
            .map(|check| format!("{}: {}", check.name, check.reason))
            .unwrap_or_else(|| match self.checks.len() {
                1 => "the threshold holds".to_string(),
                count => format!("all {count} thresholds hold"),
            });
        self.verdict = verdict;
        self.exit_code = verdict.exit_code();
    }
}

/// A run with no checks: pass if any HTTP response came back, error (exit 4)
/// if none did, inconclusive if interrupted.
fn load_verdict(recorder: &Recorder, info: &RunInfo) -> (Verdict, String) {
    let completed = recorder.completed();
    let responses = recorder.responses();
    if info.end == EndReason::Interrupted {
        (
            Verdict::Inconclusive,
            "interrupted before the run's bounds: partial results".to_string(),
        )
    } else if responses == 0 {
        let why = if recorder.sent == 0 {
            "no request was sent".to_string()
        } else {
            let errors = recorder.errors.iter().sum::<u64>();
            format!(
                "no HTTP response: {errors} of {} requests failed in transport",
                recorder.sent
            )
        };
        (Verdict::Error, why)
    } else {
        (
            Verdict::Pass,
            format!("{responses} of {completed} completed requests got an HTTP response"),
        )
    }
}

/// One section per class that saw responses (and `unmatched` only then).
fn class_sections(recorder: &Recorder) -> IndexMap<String, ClassSection> {
    let completed = recorder.completed();
    let mut classes = IndexMap::new();
    for (name, stats) in recorder.class_names.iter().zip(&recorder.classes) {
        if name == crate::classify::UNMATCHED && stats.count == 0 {
            continue;
        }
        classes.insert(
            name.clone(),
            ClassSection {
                count: stats.count,
                failed: stats.failed,
                share: if completed == 0 {
                    0.0
                } else {
                    stats.count as f64 / completed as f64
                },
                bytes: stats.bytes,
                statuses: stats
                    .statuses
                    .iter()
                    .map(|(status, count)| (status.to_string(), *count))
                    .collect(),
                latency_ms: Percentiles::from_histogram(&stats.latency_us),
                service_time_ms: Percentiles::from_histogram(&stats.service_us),
                histograms: Histograms {
                    latency_us: histogram_to_base64(&stats.latency_us),
                    service_us: histogram_to_base64(&stats.service_us),
                },
            },
        );
    }
    classes
}

impl RunSection {
    /// The run's measured facts: how much was sent and answered, over what
    /// window, and how it ended.
    fn measured(&mut self, recorder: &Recorder, info: &RunInfo) {
        let (ended, end_reason) = match &info.end {
            EndReason::Finished => ("finished", None),
            EndReason::Stopped(why) => ("stopped", Some(why.clone())),
            EndReason::Interrupted => (
                "interrupted",
                Some(format!(
                    "interrupted by {}",
                    crate::signals::received_name()
                )),
            ),
        };
        self.started_unix_ms = info.started_unix_ms;
        self.requests_due = recorder.due();
        self.requests_sent = recorder.sent;
        self.requests_completed = recorder.completed();
        self.responses = recorder.responses();
        self.dropped = recorder.dropped;
        self.aborted = recorder.aborted;
        self.late = recorder.late;
        self.duration_s = info.window_s;
        self.wall_s = info.wall_s;
        self.target_rate_per_s = info.target_rate_per_s;
        self.achieved_rate_per_s = if info.window_s > 0.0 {
            recorder.sent as f64 / info.window_s
        } else {
            0.0
        };
        self.ended = ended.to_string();
        self.end_reason = end_reason;
        self.peak_rss_bytes = peak_rss_bytes();
    }
}

impl Report {
    /// A report with no traffic yet: the frame a scenario's steps are summed into.
    pub fn empty(command: &str, target: &str) -> Self {
        Report {
            schema: SCHEMA.to_string(),
            tool: Tool {
                name: "gateprobe".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            command: command.to_string(),
            verdict: Verdict::Pass,
            exit_code: 0,
            reason: String::new(),
            run: RunSection {
                target: crate::redact::url(target),
                method: String::new(),
                headers: IndexMap::new(),
                model: "open".to_string(),
                load: String::new(),
                started_unix_ms: 0,
                requests_due: 0,
                requests_sent: 0,
                requests_completed: 0,
                responses: 0,
                dropped: 0,
                aborted: 0,
                late: 0,
                duration_s: 0.0,
                wall_s: 0.0,
                target_rate_per_s: None,
                achieved_rate_per_s: 0.0,
                concurrency: 0,
                ended: "finished".to_string(),
                end_reason: None,
                peak_rss_bytes: peak_rss_bytes(),
            },
            classes: IndexMap::new(),
            errors: ErrorKind::ALL
                .iter()
                .map(|kind| (kind.as_str().to_string(), 0))
                .collect(),
            error_details: IndexMap::new(),
            api_keys: IndexMap::new(),
            schedule_lag_ms: None,
            series: SeriesSection {
                interval_s: 1.0,
                sent: Vec::new(),
                dropped: Vec::new(),
                completed: IndexMap::new(),
            },
            checks: Vec::new(),
            canary: None,
            throttle: None,
            steps: Vec::new(),
            shard: None,
        }
    }

    /// Adds another report's counts, errors and classes to this one (a
    /// scenario's steps, one after the other): every request that came due
    /// in a step is counted once here too. Class histograms merge exactly.
    pub fn absorb(&mut self, other: &Report) {
        let run = &mut self.run;
        let theirs = &other.run;
        if run.started_unix_ms == 0 {
            run.started_unix_ms = theirs.started_unix_ms;
            run.method = theirs.method.clone();
            run.headers = theirs.headers.clone();
            run.model = theirs.model.clone();
        }
        run.requests_due += theirs.requests_due;
        run.requests_sent += theirs.requests_sent;
        run.requests_completed += theirs.requests_completed;
        run.responses += theirs.responses;
        run.dropped += theirs.dropped;
        run.aborted += theirs.aborted;
        run.late += theirs.late;
        run.duration_s += theirs.duration_s;
        run.wall_s += theirs.wall_s;
        run.concurrency = run.concurrency.max(theirs.concurrency);
        run.achieved_rate_per_s = if run.duration_s > 0.0 {
            run.requests_sent as f64 / run.duration_s
        } else {
            0.0
        };
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        for (detail, count) in &other.error_details {
            *self.error_details.entry(detail.clone()).or_default() += count;
        }
        for (label, stats) in &other.api_keys {
            self.api_keys.entry(label.clone()).or_default().merge(stats);
        }
        for (name, class) in &other.classes {
            match self.classes.get_mut(name) {
                Some(mine) => mine.merge(class),
                None => {
                    self.classes.insert(name.clone(), class.clone());
                }
            }
        }
        let completed = self.run.requests_completed;
        for class in self.classes.values_mut() {
            class.share = if completed == 0 {
                0.0
            } else {
                class.count as f64 / completed as f64
            };
        }
    }
}

/// Share of requests failing on this machine's own limits above which a run
/// measured the client, not the target: its verdict becomes "could not
/// measure" (exit 4), whatever the checks said.
pub const LOCAL_FAILURE_LIMIT: f64 = 0.01;

impl Report {
    /// Overrules the verdict when this machine ran out of open files, ports
    /// or memory for a noticeable share of the requests: those failures say
    /// nothing about the target, and a pass or a fail built on them would
    /// blame (or clear) the wrong party. Below the limit, the reason says so.
    pub fn overrule_local_exhaustion(&mut self) {
        let local = self.errors.get("local").copied().unwrap_or(0);
        if local == 0 {
            return;
        }
        let sent = self.run.requests_sent.max(1);
        let why = format!(
            "{local} of {} requests failed on this machine's own limits (open files, ephemeral ports or memory; errors.local), not the target's: raise `ulimit -n` or lower --max-in-flight / --connections",
            self.run.requests_sent
        );
        if local as f64 / sent as f64 >= LOCAL_FAILURE_LIMIT {
            self.verdict = Verdict::Error;
            self.exit_code = Verdict::Error.exit_code();
            self.reason = format!("could not measure: {why}");
        } else if !self.reason.contains("errors.local") {
            self.reason = format!("{}; note: {why}", self.reason);
        }
    }
}

impl ClassSection {
    /// Adds another section of the same class: counts, statuses and
    /// histograms (decoded, added, encoded again; percentiles recomputed).
    pub fn merge(&mut self, other: &ClassSection) {
        self.count += other.count;
        self.failed += other.failed;
        self.bytes += other.bytes;
        for (status, count) in &other.statuses {
            *self.statuses.entry(status.clone()).or_default() += count;
        }
        let add = |mine: &mut String, theirs: &str| -> Option<hdrhistogram::Histogram<u64>> {
            let mut merged = crate::record::histogram_from_base64(mine).ok()?;
            merged
                .add(crate::record::histogram_from_base64(theirs).ok()?)
                .ok()?;
            *mine = histogram_to_base64(&merged);
            Some(merged)
        };
        if let Some(latency) = add(
            &mut self.histograms.latency_us,
            &other.histograms.latency_us,
        ) {
            self.latency_ms = Percentiles::from_histogram(&latency);
        }
        if let Some(service) = add(
            &mut self.histograms.service_us,
            &other.histograms.service_us,
        ) {
            self.service_time_ms = Percentiles::from_histogram(&service);
        }
    }
}

impl RunSection {
    /// One line after the request line: the load, what was sent, the rate.
    pub fn summary(&self) -> String {
        format!(
            "{} · {} sent, {} completed, {} dropped{} · {:.1}/s over {:.2} s",
            self.load,
            self.requests_sent,
            self.requests_completed,
            self.dropped,
            self.late_text()
                .map_or(String::new(), |late| format!(", {late}")),
            self.achieved_rate_per_s,
            self.duration_s
        )
    }

    /// The late count in words, when there were any: every format says it.
    pub fn late_text(&self) -> Option<String> {
        (self.late > 0).then(|| {
            format!(
                "{} late (left over {} ms behind schedule: the generator was short of CPU)",
                self.late,
                crate::record::LATE_AFTER_US / 1000
            )
        })
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), for the benchmark.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Parses a saved report (`shown` names it in messages) and checks it as
/// input: any error is a usage error (exit 2), never a panic.
pub fn read_saved(shown: &str, text: &str) -> Result<Report, crate::exit::UsageError> {
    let report: Report = crate::json::parse_json(shown, text)
        .map_err(|why| crate::exit::UsageError(format!("not a gateprobe report: {why}")))?;
    check_saved(shown, &report)?;
    Ok(report)
}

/// A saved report is input: its schema and exit codes, and its fields'
/// agreement with each other ([`consistency`]).
fn check_saved(shown: &str, report: &Report) -> Result<(), crate::exit::UsageError> {
    check_verdicts(shown, report)?;
    consistency::check(report).map_err(|why| crate::exit::UsageError(format!("{shown}: {why}")))
}

/// A saved report's schema, and its exit code against its verdict (a file
/// whose `exit_code` says 7, or 0 beside `fail`, was edited and must not
/// open a gate), and the same of each step's.
fn check_verdicts(shown: &str, report: &Report) -> Result<(), crate::exit::UsageError> {
    if report.schema != SCHEMA {
        return Err(crate::exit::UsageError(format!(
            "{shown}: field 'schema': '{}', expected '{SCHEMA}'",
            crate::console::escape_controls(&report.schema)
        )));
    }
    if report.exit_code != report.verdict.exit_code() {
        return Err(crate::exit::UsageError(format!(
            "{shown}: field 'exit_code': {} does not match verdict '{}' (exit {}): the report was edited",
            report.exit_code,
            report.verdict.as_str(),
            report.verdict.exit_code()
        )));
    }
    for (index, step) in report.steps.iter().enumerate() {
        check_verdicts(&format!("{shown}: steps[{index}]"), &step.report)?;
    }
    Ok(())
}

/// A saved report's recorded data, rebuilt: the recorder (counts, errors,
/// statuses, exact histograms, series) and run facts that made it. Every
/// fixed-horizon analysis reads these, so it gives the same result on a
/// saved report as it gave live (and, later, on merged shards).
pub fn recorded(report: &Report) -> Result<(Recorder, RunInfo), String> {
    let mut names: Vec<String> = report.classes.keys().cloned().collect();
    if !names.iter().any(|name| name == crate::classify::UNMATCHED) {
        names.push(crate::classify::UNMATCHED.to_string());
    }
    recorded_with(report, &names)
}

/// [`recorded`] into a recorder of the classes `names` (a superset of the
/// report's, in the classifier's order: what shards of one run share).
pub fn recorded_with(report: &Report, names: &[String]) -> Result<(Recorder, RunInfo), String> {
    let mut recorder = Recorder::new(names);
    for (name, class) in &report.classes {
        let stats = names
            .iter()
            .position(|known| known == name)
            .map(|at| &mut recorder.classes[at])
            .ok_or_else(|| format!("class '{name}' is not one of the run's classes"))?;
        stats.count = class.count;
        stats.failed = class.failed;
        stats.bytes = class.bytes;
        for (status, count) in &class.statuses {
            let status = status
                .parse()
                .map_err(|_| format!("status '{status}' is not a number"))?;
            stats.statuses.insert(status, *count);
        }
        stats.latency_us = crate::record::histogram_from_base64(&class.histograms.latency_us)?;
        stats.service_us = crate::record::histogram_from_base64(&class.histograms.service_us)?;
    }
    for (kind, count) in &report.errors {
        if let Some(kind) = ErrorKind::parse(kind) {
            recorder.errors[kind.index()] = *count;
        }
    }
    for (name, count) in &report.error_details {
        if let Some(detail) = ErrorDetail::ALL.into_iter().find(|d| d.as_str() == name) {
            recorder.error_details[detail.index()] = *count;
        }
    }
    recorder.keys = report.api_keys.values().copied().collect();
    let run = &report.run;
    recorder.sent = run.requests_sent;
    recorder.dropped = run.dropped;
    recorder.aborted = run.aborted;
    recorder.late = run.late;
    if let Some(lag) = report
        .shard
        .as_ref()
        .and_then(|s| s.schedule_lag_us.as_deref())
    {
        recorder.send_lag_us = crate::record::histogram_from_base64(lag)?;
    }
    recorder.series.sent = report.series.sent.clone();
    recorder.series.dropped = report.series.dropped.clone();
    for (name, series) in names.iter().zip(recorder.series.completed.iter_mut()) {
        if let Some(saved) = report.series.completed.get(name) {
            series.clone_from(saved);
        }
    }
    let info = RunInfo {
        started_unix_ms: run.started_unix_ms,
        window_s: run.duration_s,
        target_rate_per_s: run.target_rate_per_s,
        wall_s: run.wall_s,
        end: match run.ended.as_str() {
            "interrupted" => EndReason::Interrupted,
            "stopped" => EndReason::Stopped(run.end_reason.clone().unwrap_or_default()),
            _ => EndReason::Finished,
        },
        start_late_ms: report.shard.as_ref().and_then(|shard| shard.start_late_ms),
    };
    Ok((recorder, info))
}

/// What `--recompute` found: checks recomputed from the recorded data (all
/// equal to the saved ones, or the first that is not), and the checks kept
/// as saved, by why (they need what a report does not hold).
#[derive(Debug, Default)]
pub struct Recomputed {
    pub same: usize,
    /// Why → how many checks were kept for that reason.
    pub kept: std::collections::BTreeMap<&'static str, usize>,
    pub differs: Option<String>,
}

/// Why a check cannot be recomputed from a saved report.
const SEQUENTIAL: &str = "sequential canary checks (decided at a request in the run's order, \
                          which a report does not hold)";
const PER_CONNECTION: &str = "split independence (per-connection counts are not in a report)";
const PER_REQUEST: &str = "throttle model and undecided gates (chosen from the probe's \
                           per-request records)";

/// One saved check rebuilt by the same function that made it live, from the
/// saved recorded data; `Ok(Err(why))` when it needs data a report does
/// not hold.
pub fn check_again(
    saved: &Report,
    recorder: &Recorder,
    info: &RunInfo,
    check: &Check,
) -> Result<Result<Check, &'static str>, String> {
    Ok(Ok(match check.kind.as_str() {
        "threshold" => {
            let text = check.expected["threshold"].as_str().unwrap_or_default();
            crate::check::threshold::Threshold::parse(text, &recorder.class_names)?
                .check(recorder, info)
        }
        // A gate decided on an estimate: the estimate and the expectation are saved.
        "throttle" if check.interval.is_some() => {
            let section = saved
                .throttle
                .as_ref()
                .ok_or("a throttle check but no throttle section")?;
            let parameter = Parameter::ALL
                .into_iter()
                .find(|p| p.check_name() == check.name)
                .ok_or("a throttle check on no parameter the probe estimates")?;
            let expected = section
                .expected(parameter)
                .ok_or("a throttle check with no expectation in the throttle section")?;
            crate::throttle::gate::gate(
                parameter,
                (expected, parameter.slack(expected, section.tolerance)),
                section.estimate(parameter),
                section.confidence,
                "",
            )
        }
        "throttle" => return Ok(Err(PER_REQUEST)),
        "throttle.quota" => crate::throttle::gate::quota_check(
            saved
                .throttle
                .as_ref()
                .and_then(|section| section.quota.as_ref())
                .ok_or("a quota check but no quota in the throttle section")?,
        ),
        "split.unclassified" => {
            let Some(canary) = &saved.canary else {
                return Err("a canary check but no canary section".into());
            };
            let Some(max_share) = canary.max_unclassified else {
                // Saved before the section held the limit.
                return Ok(Err(PER_REQUEST));
            };
            crate::canary::split::unclassified_check(
                canary.unclassified,
                canary.classified + canary.unclassified,
                max_share,
            )
        }
        "split.independence" => return Ok(Err(PER_CONNECTION)),
        _ => return Ok(Err(SEQUENTIAL)),
    }))
}

/// A merged canary's checks decided again from what the merged report
/// holds (its counts, classes and latency blocks), by the rule `merge` used:
/// the report merged alone. `None` for any other report.
fn merged_canary_checks(saved: &Report, info: &RunInfo) -> Result<Option<Vec<Check>>, String> {
    let merged = saved
        .shard
        .as_ref()
        .is_some_and(|shard| !shard.merged.is_empty());
    let (true, Some(section)) = (merged, saved.canary.as_ref()) else {
        return Ok(None);
    };
    let mut again = saved.clone();
    crate::report::canary::merged(&mut again, &[(section, &saved.checks[..])], &info.end)?;
    Ok(Some(again.checks))
}

/// Recomputes every fixed-horizon check of `report` (and of each step) from
/// its recorded data, and compares each with the saved one.
pub fn recompute(report: &Report) -> Result<Recomputed, String> {
    let mut found = Recomputed::default();
    let reports: Vec<(String, &Report)> = if report.steps.is_empty() {
        vec![(String::new(), report)]
    } else {
        report
            .steps
            .iter()
            .map(|step| (format!("step {}: ", step.name), &step.report))
            .collect()
    };
    for (place, saved) in reports {
        let (recorder, info) = recorded(saved).map_err(|why| format!("{place}{why}"))?;
        let merged_canary =
            merged_canary_checks(saved, &info).map_err(|why| format!("{place}{why}"))?;
        for check in &saved.checks {
            let again = match merged_canary.as_ref() {
                // A merged canary's checks were decided once, at the run's
                // fixed size, on the counts and blocks the report holds.
                Some(checks)
                    if check.kind.starts_with("split.") || check.kind.starts_with("health.") =>
                {
                    checks
                        .iter()
                        .find(|again| again.name == check.name && again.kind == check.kind)
                        .cloned()
                        .ok_or_else(|| {
                            format!(
                                "{place}check '{}' is not one a merged canary makes",
                                check.name
                            )
                        })?
                }
                _ => match check_again(saved, &recorder, &info, check)
                    .map_err(|why| format!("{place}check '{}': {why}", check.name))?
                {
                    Ok(again) => again,
                    Err(why) => {
                        *found.kept.entry(why).or_default() += 1;
                        continue;
                    }
                },
            };
            let same = serde_json::to_value(&again).ok() == serde_json::to_value(check).ok();
            if same {
                found.same += 1;
            } else if found.differs.is_none() {
                found.differs = Some(format!(
                    "{place}check '{}' recomputes to {} ({}), saved {} ({})",
                    check.name,
                    again.verdict.as_str(),
                    again.reason,
                    check.verdict.as_str(),
                    check.reason
                ));
            }
        }
    }
    Ok(found)
}
