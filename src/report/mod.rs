//! The report: what one run measured and decided, in the one model every
//! output format renders and every saved file holds. The JSON form is the
//! stable contract (`gateprobe.report/v1`, `schema/report.schema.json`):
//! add fields, never rename. Beside the model: the analyses, behind one
//! trait in one list ([`analysis`]: [`canary`], [`throttle`], thresholds),
//! their sections' types ([`sections`]), how parts render ([`markup`]),
//! saved reports read back and recomputed ([`saved`]), their consistency
//! checks, and the merge of shards ([`merge`]).
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::engine::{EndReason, RunInfo};
use crate::plan::LoadPlan;
use crate::record::{histogram_to_base64, Recorder};
use crate::sample::{ErrorDetail, ErrorKind};

pub mod analysis;
pub mod canary;
mod consistency;
pub mod figures;
pub mod markup;
pub mod merge;
mod remedy;
mod saved;
mod sections;
mod thresholds;
pub mod throttle;

pub const SCHEMA: &str = "gateprobe.report/v1";

pub use crate::check::{combine, Check, Interval, Verdict};
pub use remedy::{remedy, run_remedy};
pub use saved::*;
pub use sections::*;

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
    /// The run over time in bins that fit its length (the charts' data;
    /// absent in reports of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<crate::record::SavedTimeline>,
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
            timeline: (recorder.timeline.bins() > 0)
                .then(|| recorder.timeline.save(&recorder.class_names)),
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
    for analysis in analysis::ALL {
        facts.extend(analysis.plan_facts(report));
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
    /// A run whose checks own no verdict rule of their own (a load run's
    /// thresholds, merged throttle gates): when it measured (pass), the
    /// checks' combined verdict is the run's.
    pub fn decide_by_checks(&mut self) {
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
                timeline: None,
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
