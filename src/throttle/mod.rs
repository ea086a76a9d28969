//! `gateprobe throttle`: where do 429s start, and what bucket produced them?
//!
//! The procedure (README: "gateprobe throttle"):
//! 1. **Idle** (`--idle`): send nothing, so that the bucket is full.
//! 2. **Search**: offer `--start-rate`, doubling every `--step`, up to
//!    `--max-rate` (held there a few seconds); stop at the third 429. Below
//!    the refill rate the bucket stays full; above it, it drains and 429s begin.
//! 3. **Overload**: offer 1.5× the step rate at which 429s began (never above
//!    `--max-rate`) and fit admitted requests over time ([`estimate`]): the
//!    slope is the refill rate, the height at the moment the bucket began to
//!    drain the burst. Stop as soon as both intervals are tight (rate ±2.5%,
//!    burst ±5% or ±1 request) and at least two seconds were seen.
//!
//! Every phase shares one [`Pacer`]: no one-second window ever holds more
//! than `--max-rate` sends, and the phases share one `--max-requests` and one
//! `--max-duration`. A 429 `Limit Exceeded` (a usage-plan quota) stops the
//! probe at once; mostly 401/403 stops it as an auth problem; a 429 carrying
//! `Retry-After` stops it, as asked, unless `--ignore-retry-after`.
pub mod estimate;
pub mod identify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::cli::ThrottleArgs;
use crate::engine::command;
use crate::engine::pacer::Pacer;
use crate::engine::schedule::{RateCurve, Schedule, Segment};
use crate::engine::{EndReason, Observer, RunInfo, Verdict as Next};
use crate::plan::{self, LoadPlan, UsageError};
use crate::record::Recorder;
use crate::report::{
    self, Check, Estimate, Interval, Report, ThrottleSection, ThrottleSeries, ThrottleStep, Verdict,
};
use crate::sample::{Outcome, Sample};
use crate::units;
use estimate::{Bin, Fit, Kind, Model, Step, Timeline, BIN_S, OVERLOAD_FACTOR};

/// Level of the rate and burst intervals.
pub const CONFIDENCE: f64 = 0.95;
/// The overload stops once the rate's interval is this tight (relative half-width)…
const RATE_PRECISION: f64 = 0.025;
/// …the burst's within this share of it or one request, whichever is larger…
const BURST_PRECISION: f64 = 0.05;
/// …and at least this much throttled traffic was seen (a window of a second
/// shows its clumps within two).
const MIN_OVERLOAD_S: f64 = 2.0;
/// How long the search holds `--max-rate` before concluding nothing throttles.
const HOLD_AT_MAX_S: f64 = 3.0;
/// 429s that end the search.
const SEARCH_THROTTLES: u64 = 3;
/// 401/403 responses (and at least this share of all) that stop the probe.
const FORBIDDEN_STOP: u64 = 5;

/// A burst is a whole number of requests that a probe sees to about ±1: the
/// burst's band is never narrower than this many requests either side.
const MIN_BURST_SLACK: f64 = 2.0;

/// The pacer's window is a second plus this: two sends a second apart can
/// reach the server a little closer together (timer and network jitter).
const PACER_MARGIN: Duration = Duration::from_millis(20);

/// Class names the probe adds (a user's `--classify` of the same name wins).
pub const QUOTA: &str = "quota";
pub const THROTTLED: &str = "throttled";
pub const FORBIDDEN: &str = "forbidden";

/// A validated probe.
#[derive(Debug, Clone)]
pub struct ThrottlePlan {
    /// Request, classifier, timeouts and outputs; schedule and bounds are set per phase.
    pub load: LoadPlan,
    pub max_rate: f64,
    pub max_requests: u64,
    pub max_duration: Duration,
    pub idle: Duration,
    pub start_rate: f64,
    pub step: Duration,
    pub expect_rate: Option<f64>,
    pub expect_burst: Option<f64>,
    pub tolerance: f64,
    pub honour_retry_after: bool,
    quota: Option<u16>,
    throttled: Option<u16>,
    forbidden: Option<u16>,
}

fn usage<T>(message: String) -> Result<T, UsageError> {
    Err(UsageError(message))
}

/// The classification rules: the probe's own first (quota, throttled,
/// forbidden) unless the user defines a class of that name, then the user's,
/// then the load defaults when the user gave none.
fn rules(user: &[String]) -> Vec<String> {
    let defines = |name: &str| {
        user.iter()
            .any(|rule| rule.split_once('=').is_some_and(|(n, _)| n.trim() == name))
    };
    let mut rules: Vec<String> = Vec::new();
    for (name, rule) in [
        (QUOTA, "quota=status:429&body:contains:Limit Exceeded"),
        (THROTTLED, "throttled=status:429"),
        (FORBIDDEN, "forbidden=status:403"),
        (FORBIDDEN, "forbidden=status:401"),
    ] {
        if !defines(name) {
            rules.push(rule.to_string());
        }
    }
    rules.extend(user.iter().cloned());
    if user.is_empty() {
        rules.extend(
            crate::classify::DEFAULT_RULES
                .iter()
                .filter(|rule| !rule.starts_with("throttled="))
                .map(|rule| rule.to_string()),
        );
    }
    rules
}

pub fn throttle_plan(args: &ThrottleArgs) -> Result<ThrottlePlan, UsageError> {
    for (flag, given) in [
        ("--rate", args.load.rate.is_some()),
        ("--steps", args.load.steps.is_some()),
        ("--ramp", args.load.ramp.is_some()),
        ("--duration", args.load.duration.is_some()),
        ("--requests", args.load.requests.is_some()),
        ("--connections", args.load.connections.is_some()),
    ] {
        if given {
            return usage(format!(
                "{flag}: the throttle probe chooses its own rates; bound it with --max-rate, \
                 --max-requests and --max-duration"
            ));
        }
    }
    let max_rate =
        units::parse_rate(&args.max_rate).or_else(|why| usage(format!("--max-rate: {why}")))?;
    let max_requests = units::parse_count(&args.max_requests)
        .or_else(|why| usage(format!("--max-requests: {why}")))?;
    let max_duration = units::parse_duration(&args.max_duration)
        .or_else(|why| usage(format!("--max-duration: {why}")))?;
    if max_duration.is_zero() {
        return usage("--max-duration: expected a duration above 0, e.g. 60s".to_string());
    }
    let idle =
        units::parse_duration_or_zero(&args.idle).or_else(|why| usage(format!("--idle: {why}")))?;
    let start_rate =
        units::parse_rate(&args.start_rate).or_else(|why| usage(format!("--start-rate: {why}")))?;
    if start_rate > max_rate {
        return usage(format!(
            "--start-rate {}: above --max-rate {}",
            args.start_rate, args.max_rate
        ));
    }
    let step = units::parse_duration(&args.step).or_else(|why| usage(format!("--step: {why}")))?;
    if step < Duration::from_millis(100) {
        return usage(format!(
            "--step {}: expected at least 100ms (a step must hold several requests)",
            args.step
        ));
    }
    let expect_rate = match &args.expect_rate {
        Some(text) => {
            Some(units::parse_rate(text).or_else(|why| usage(format!("--expect-rate: {why}")))?)
        }
        None => None,
    };
    let expect_burst = match &args.expect_burst {
        Some(text) => Some(
            units::parse_count(text).or_else(|why| usage(format!("--expect-burst: {why}")))? as f64,
        ),
        None => None,
    };
    let tolerance = units::parse_percent(&args.tolerance)
        .or_else(|why| usage(format!("--tolerance: {why}")))?;
    if tolerance <= 0.0 || tolerance >= 1.0 {
        return usage(format!(
            "--tolerance {}: expected a share between 0% and 100%, e.g. 10%",
            args.tolerance
        ));
    }
    let mut load_args = args.load.clone();
    load_args.classify = rules(&args.load.classify);
    let mut load = plan::load_plan(&load_args)?;
    load.pacer = Some(Arc::new(Pacer::new(
        max_rate.floor().max(1.0) as u64,
        Duration::from_secs(1) + PACER_MARGIN,
    )));
    let classifier = &load.classifier;
    Ok(ThrottlePlan {
        quota: classifier.index_of(QUOTA),
        throttled: classifier.index_of(THROTTLED),
        forbidden: classifier.index_of(FORBIDDEN),
        load,
        max_rate,
        max_requests,
        max_duration,
        idle,
        start_rate,
        step,
        expect_rate,
        expect_burst,
        tolerance,
        honour_retry_after: !args.ignore_retry_after,
    })
}

impl ThrottlePlan {
    /// The search's rates: doubling from the start rate, the last one capped
    /// at --max-rate and held longer.
    fn search_steps(&self) -> Vec<(f64, f64)> {
        let step = self.step.as_secs_f64();
        let mut steps = Vec::new();
        let mut rate = self.start_rate;
        while rate < self.max_rate {
            steps.push((rate, step));
            rate *= 2.0;
        }
        steps.push((self.max_rate, HOLD_AT_MAX_S.max(step)));
        steps
    }

    /// Lines for the terminal before anything is sent.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "this probe will send at most {} requests, never more than {} in any second, \
             for at most {} (after a {} idle wait)",
            self.max_requests,
            plan::trim_float(self.max_rate),
            plan::format_duration(self.max_duration),
            plan::format_duration(self.idle),
        )];
        lines.push(format!(
            "search: {} rps doubling every {} up to {} rps; then 1.5× the rate where 429s began",
            plan::trim_float(self.start_rate),
            plan::format_duration(self.step),
            plan::trim_float(self.max_rate),
        ));
        if self.expect_rate.is_some() || self.expect_burst.is_some() {
            let mut expected = Vec::new();
            if let Some(rate) = self.expect_rate {
                expected.push(format!("rate {} rps", plan::trim_float(rate)));
            }
            if let Some(burst) = self.expect_burst {
                expected.push(format!("burst {}", plan::trim_float(burst)));
            }
            lines.push(format!(
                "expecting {} (± {})",
                expected.join(", "),
                crate::canary::percent(self.tolerance)
            ));
        }
        lines
    }

    fn phase(&self, schedule: RateCurve, duration: Duration, requests: u64) -> LoadPlan {
        let mut load = self.load.clone();
        load.duration = duration.min(Duration::from_secs_f64(schedule.duration_s().min(1e9)));
        load.schedule = Schedule::Open(schedule);
        load.max_requests = Some(requests);
        load
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Search,
    Overload,
}

/// Why the probe stopped sending before its bounds.
#[derive(Debug, Clone, PartialEq)]
enum Halt {
    Quota,
    Forbidden,
    RetryAfter(f64),
}

/// Watches every response of every phase on one clock (the search's start).
struct Watch<'a> {
    plan: &'a ThrottlePlan,
    phase: Phase,
    epoch: Option<Instant>,
    /// The current run's start on the probe's clock, seconds.
    run_offset_s: f64,
    timeline: Timeline,
    throttled_this_run: u64,
    responses: u64,
    forbidden: u64,
    admitted: u64,
    retry_after_count: u64,
    retry_after_s: Option<f64>,
    halt: Option<Halt>,
    /// Newest completion and slowest exchange seen, for deciding which bins are final.
    last_done_s: f64,
    slowest_s: f64,
    next_fit_s: f64,
    tight: bool,
}

impl Watch<'_> {
    fn kind(&self, sample: &Sample) -> Kind {
        let class = Some(sample.class);
        if sample.error.is_some() || class == self.plan.quota || class == self.plan.forbidden {
            Kind::Other
        } else if class == self.plan.throttled {
            Kind::Throttled
        } else {
            Kind::Admitted
        }
    }

    fn overload_is_tight(&mut self) -> bool {
        let final_before = self.last_done_s - 2.0 * self.slowest_s - 0.05;
        let from = self.timeline.fit_from_s.unwrap_or(f64::INFINITY);
        if final_before - from < MIN_OVERLOAD_S {
            return false;
        }
        estimate::fit(&self.timeline, final_before, CONFIDENCE).is_some_and(|fit| {
            fit.rate.half_width() <= RATE_PRECISION * fit.rate.estimate
                && fit.burst.half_width() <= (BURST_PRECISION * fit.burst.estimate).max(1.0)
        })
    }
}

impl Observer for Watch<'_> {
    fn started(&mut self, t0: Instant) {
        let epoch = *self.epoch.get_or_insert(t0);
        self.run_offset_s = t0.saturating_duration_since(epoch).as_secs_f64();
        self.throttled_this_run = 0;
        if self.phase == Phase::Overload {
            self.timeline.fit_from_s = Some(self.run_offset_s);
            self.next_fit_s = self.run_offset_s + MIN_OVERLOAD_S;
        }
    }

    fn observe(&mut self, sample: &Sample, _recorder: &Recorder) -> Next {
        if sample.outcome != Outcome::Completed {
            return Next::Continue;
        }
        let sent_s = self.run_offset_s + sample.sent_us as f64 / 1e6;
        let done_s = self.run_offset_s + sample.done_us as f64 / 1e6;
        self.last_done_s = self.last_done_s.max(done_s);
        self.slowest_s = self.slowest_s.max(done_s - sent_s);
        let kind = self.kind(sample);
        self.timeline.add(sent_s, kind);
        if sample.error.is_none() {
            self.responses += 1;
        }
        let class = Some(sample.class);
        if class == self.plan.quota {
            self.halt = Some(Halt::Quota);
            return Next::Stop("a usage-plan quota is exhausted (429 Limit Exceeded)".into());
        }
        if class == self.plan.forbidden {
            self.forbidden += 1;
            if self.forbidden >= FORBIDDEN_STOP && 2 * self.forbidden >= self.responses {
                self.halt = Some(Halt::Forbidden);
                return Next::Stop("the gateway answers 401/403: an auth problem".into());
            }
        }
        match kind {
            Kind::Admitted => self.admitted += 1,
            Kind::Throttled => {
                self.throttled_this_run += 1;
                if let Some(ms) = sample.retry_after_ms {
                    self.retry_after_count += 1;
                    let seconds = ms as f64 / 1000.0;
                    self.retry_after_s.get_or_insert(seconds);
                    if self.plan.honour_retry_after {
                        self.halt = Some(Halt::RetryAfter(seconds));
                        return Next::Stop(format!(
                            "a 429 asked to retry after {seconds} s; the probe stopped sending"
                        ));
                    }
                }
                if self.phase == Phase::Search && self.throttled_this_run >= SEARCH_THROTTLES {
                    return Next::Stop("throttling began".into());
                }
            }
            Kind::Other => {}
        }
        if self.phase == Phase::Overload && self.last_done_s >= self.next_fit_s {
            self.next_fit_s = self.last_done_s + BIN_S;
            if self.overload_is_tight() {
                self.tight = true;
                return Next::Stop("both intervals are tight".into());
            }
        }
        Next::Continue
    }
}

/// Runs `gateprobe throttle`.
pub async fn run(args: ThrottleArgs) -> Result<u8> {
    let plan = throttle_plan(&args)?;
    if !plan.load.quiet {
        for line in plan.describe() {
            crate::errln!("gateprobe: {line}");
        }
    }
    let report = probe(&plan).await?;
    command::emit(&plan.load, &report)?;
    Ok(report.exit_code)
}

/// One engine run of the probe, placed on the probe's clock.
struct Ran {
    recorder: Recorder,
    info: RunInfo,
    offset_s: f64,
}

/// Runs the whole probe and returns its report.
pub async fn probe(plan: &ThrottlePlan) -> Result<Report> {
    let mut interrupted = false;
    if !plan.idle.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(plan.idle) => {}
            _ = crate::signals::interrupt().cancelled_owned() => interrupted = true,
        }
    }
    let mut watch = Watch {
        plan,
        phase: Phase::Search,
        epoch: None,
        run_offset_s: 0.0,
        timeline: Timeline::default(),
        throttled_this_run: 0,
        responses: 0,
        forbidden: 0,
        admitted: 0,
        retry_after_count: 0,
        retry_after_s: None,
        halt: None,
        last_done_s: 0.0,
        slowest_s: 0.0,
        next_fit_s: f64::INFINITY,
        tight: false,
    };
    let mut runs: Vec<Ran> = Vec::new();
    let search = plan.search_steps();
    let mut at = 0.0;
    for &(rate, hold) in &search {
        watch.timeline.steps.push(Step {
            rate_per_s: rate,
            start_s: at,
            end_s: at + hold,
        });
        at += hold;
    }
    let segments: Vec<Segment> = search
        .iter()
        .map(|&(rate, hold)| Segment {
            start_rate_per_s: rate,
            end_rate_per_s: rate,
            duration_s: hold,
        })
        .collect();
    let mut overload_rate = None;
    if !interrupted {
        let phase = plan.phase(
            RateCurve::new(&segments),
            plan.max_duration,
            plan.max_requests,
        );
        let (recorder, info) = command::execute(&phase, &mut watch).await?;
        interrupted = info.end == EndReason::Interrupted;
        runs.push(Ran {
            recorder,
            info,
            offset_s: 0.0,
        });
        let search_steps = watch.timeline.steps.len();
        let last_sent = watch.timeline.last_sent_s;
        for step in &mut watch.timeline.steps[..search_steps] {
            step.end_s = step.end_s.min(last_sent.max(step.start_s));
        }
        watch
            .timeline
            .steps
            .retain(|step| step.end_s > step.start_s);
        let began_at = watch.timeline.first_throttle_s.and_then(|first| {
            watch
                .timeline
                .steps
                .iter()
                .find(|step| step.start_s <= first && first < step.end_s + 1e-9)
                .map(|step| step.rate_per_s)
        });
        let sent: u64 = runs.iter().map(|ran| ran.recorder.sent).sum();
        let elapsed = watch.last_done_s.max(last_sent);
        if let (Some(rate), None, false) = (began_at, &watch.halt, interrupted) {
            let remaining_s = plan.max_duration.as_secs_f64() - elapsed;
            let remaining = plan.max_requests.saturating_sub(sent);
            if remaining_s > 0.5 && remaining > 0 {
                let rate = (rate * OVERLOAD_FACTOR).min(plan.max_rate);
                overload_rate = Some(rate);
                watch.phase = Phase::Overload;
                let phase = plan.phase(
                    RateCurve::constant(rate, remaining_s),
                    Duration::from_secs_f64(remaining_s),
                    remaining,
                );
                let (recorder, info) = command::execute(&phase, &mut watch).await?;
                interrupted = info.end == EndReason::Interrupted;
                let offset_s = watch.run_offset_s;
                let end_s = watch.timeline.last_sent_s.max(offset_s);
                watch.timeline.steps.push(Step {
                    rate_per_s: rate,
                    start_s: offset_s,
                    end_s,
                });
                runs.push(Ran {
                    recorder,
                    info,
                    offset_s,
                });
            }
        }
    }
    Ok(build_report(plan, &watch, runs, overload_rate, interrupted))
}

/// The runs as one: recorders merged on the probe's clock.
fn merged(plan: &ThrottlePlan, runs: &[Ran], interrupted: bool) -> (Recorder, RunInfo) {
    let mut recorder = Recorder::new(plan.load.classifier.names());
    let mut window_s: f64 = 0.0;
    let mut wall_s = plan.idle.as_secs_f64();
    for ran in runs {
        recorder.merge_shifted(&ran.recorder, ran.offset_s.round() as usize);
        window_s = window_s.max(ran.offset_s + ran.info.window_s);
        wall_s += ran.info.wall_s;
    }
    let end = if interrupted {
        EndReason::Interrupted
    } else {
        runs.last()
            .map(|ran| ran.info.end.clone())
            .unwrap_or(EndReason::Finished)
    };
    let info = RunInfo {
        started_unix_ms: runs
            .first()
            .map(|ran| ran.info.started_unix_ms)
            .unwrap_or(0),
        window_s,
        target_rate_per_s: None,
        wall_s,
        end,
    };
    (recorder, info)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn estimate_of(estimated: estimate::Estimated) -> Estimate {
    Estimate {
        estimate: estimated.estimate,
        ci_low: estimated.low,
        ci_high: estimated.high,
    }
}

/// What ended the probe without an estimate, as (verdict, reason), or `None`.
fn blocker(
    watch: &Watch<'_>,
    recorder: &Recorder,
    fit: Option<&Fit>,
    max_offered: f64,
) -> Option<(Verdict, String)> {
    let used = recorder.sent;
    match &watch.halt {
        Some(Halt::Forbidden) => {
            return Some((
                Verdict::Error,
                format!(
                    "{} of {} responses were 401/403: the gateway refused the requests \
                     (missing or invalid API key, or no access) — an auth problem, not throttling",
                    watch.forbidden, watch.responses
                ),
            ))
        }
        Some(Halt::Quota) => {
            return Some((
                Verdict::Inconclusive,
                format!(
                    "the API key's quota is exhausted: a 429 \"Limit Exceeded\" came after {} \
                     admitted requests, and the probe stopped at once ({used} sent); a quota is \
                     not a throttle, and the throttle could not be measured",
                    watch.admitted
                ),
            ))
        }
        Some(Halt::RetryAfter(seconds)) if fit.is_none() => {
            return Some((
                Verdict::Inconclusive,
                format!(
                    "the first 429s carried Retry-After: {seconds} s and the probe stopped \
                     sending, as asked; the bucket was not measured (--ignore-retry-after \
                     measures it anyway)"
                ),
            ))
        }
        _ => {}
    }
    if watch.responses == 0 {
        return Some((
            Verdict::Error,
            format!("no HTTP response to {used} requests: nothing to measure"),
        ));
    }
    if watch.timeline.first_throttle_s.is_none() {
        return Some((
            Verdict::Inconclusive,
            format!(
                "nothing was throttled: no 429 in {used} requests at up to {} rps — the limit \
                 is above --max-rate, or its burst absorbed the probe",
                plan::trim_float(max_offered)
            ),
        ));
    }
    if fit.is_none() {
        return Some((
            Verdict::Inconclusive,
            format!(
                "429s began at {:.2} s, but the probe's bounds ended before two seconds of \
                 sustained overload: raise --max-requests or --max-duration",
                watch.timeline.first_throttle_s.unwrap_or(0.0)
            ),
        ));
    }
    None
}

/// A gate on an estimate: pass when its interval lies inside the band, fail
/// when entirely outside, inconclusive otherwise.
fn gate(
    name: &str,
    what: &str,
    unit: &str,
    (expected, slack): (f64, f64),
    found: Option<estimate::Estimated>,
    why_missing: &str,
) -> Check {
    let (low, high) = (expected - slack, expected + slack);
    let band = format!(
        "{}–{}{unit}",
        plan::trim_float(round2(low)),
        plan::trim_float(round2(high))
    );
    let expected_json = json!({ "value": expected, "low": low, "high": high });
    let Some(found) = found else {
        return Check::new(
            name,
            "throttle",
            Verdict::Inconclusive,
            serde_json::Value::Null,
            expected_json,
            format!(
                "expected {what} {}{unit} ({band}); {why_missing}",
                plan::trim_float(expected)
            ),
        );
    };
    let verdict = if found.low >= low && found.high <= high {
        Verdict::Pass
    } else if found.high < low || found.low > high {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    };
    let judgement = match verdict {
        Verdict::Pass => "inside",
        Verdict::Fail => "outside",
        _ => "not decided against",
    };
    let mut check = Check::new(
        name,
        "throttle",
        verdict,
        json!(found.estimate),
        expected_json,
        format!(
            "{what} {:.1}{unit} ({:.0}% interval {:.1}–{:.1}), {judgement} the expected {band}",
            found.estimate,
            CONFIDENCE * 100.0,
            found.low,
            found.high
        ),
    );
    check.interval = Some(Interval {
        low: found.low,
        high: found.high,
        confidence: CONFIDENCE,
        kind: Some("Student t interval of the line fit".to_string()),
    });
    check
}

fn build_report(
    plan: &ThrottlePlan,
    watch: &Watch<'_>,
    runs: Vec<Ran>,
    overload_rate: Option<f64>,
    interrupted: bool,
) -> Report {
    let (recorder, info) = merged(plan, &runs, interrupted);
    let mut report = Report::for_load(&plan.load, &recorder, &info);
    report.command = "throttle".to_string();
    report.run.load = format!(
        "throttle probe: doubling from {} rps, at most {} rps, {} requests, {}",
        plan::trim_float(plan.start_rate),
        plan::trim_float(plan.max_rate),
        plan.max_requests,
        plan::format_duration(plan.max_duration)
    );
    let timeline = &watch.timeline;
    let fit = estimate::fit(timeline, f64::INFINITY, CONFIDENCE);
    let max_offered = timeline
        .steps
        .iter()
        .map(|step| step.rate_per_s)
        .fold(0.0, f64::max);
    let mut notes = Vec::new();
    let blocked = blocker(watch, &recorder, fit.as_ref(), max_offered);
    if let Some(fit) = &fit {
        let refill_s = fit.burst.estimate.max(0.0) / fit.rate.estimate.max(1e-9);
        if refill_s > plan.idle.as_secs_f64() * 1.05 && plan.idle > Duration::ZERO {
            notes.push(format!(
                "a {:.0}-request bucket at {:.1} rps takes {:.1} s to refill; the probe waited \
                 {} idle, so the bucket may not have been full: rerun with --idle {:.0}s",
                fit.burst.estimate,
                fit.rate.estimate,
                refill_s,
                plan::format_duration(plan.idle),
                refill_s.ceil() + 1.0
            ));
        }
        if let Some(rate) = overload_rate {
            if rate < fit.rate.estimate * 1.2 {
                notes.push(format!(
                    "the overload ({} rps) was barely above the refill rate: --max-rate caps \
                     it; estimates may be low",
                    plan::trim_float(rate)
                ));
            }
        }
        if fit.model == Model::Window {
            notes.push(format!(
                "admissions came in clumps: {:.0}% of the spans that should each have held 3 \
                 admissions held none — a fixed or sliding window, not a token bucket; the rate \
                 is the long-run admitted rate",
                fit.silent_share * 100.0
            ));
        }
    }
    if watch.retry_after_count > 0 && !plan.honour_retry_after {
        notes.push(format!(
            "{} 429s carried Retry-After (ignored, as --ignore-retry-after asked)",
            watch.retry_after_count
        ));
    }
    // The gate checks.
    let why_missing = blocked
        .as_ref()
        .map(|(_, why)| why.clone())
        .unwrap_or_default();
    let mut checks = Vec::new();
    if let Some(expected) = plan.expect_rate {
        let found = fit
            .as_ref()
            .filter(|_| blocked.is_none())
            .map(|fit| fit.rate);
        let mut check = gate(
            "throttle rate",
            "refill rate",
            " rps",
            (expected, expected * plan.tolerance),
            found,
            &why_missing,
        );
        if found.is_none() {
            nothing_throttled(plan, watch, &mut check, expected, max_offered);
        }
        checks.push(check);
    }
    if let Some(expected) = plan.expect_burst {
        let found = fit
            .as_ref()
            .filter(|_| blocked.is_none())
            .map(|fit| fit.burst);
        let mut check = gate(
            "throttle burst",
            "burst",
            "",
            (expected, (expected * plan.tolerance).max(MIN_BURST_SLACK)),
            found,
            &why_missing,
        );
        if let Some(fit) = fit.as_ref().filter(|fit| fit.model == Model::Window) {
            check.verdict = Verdict::Fail;
            check.reason = format!(
                "expected a token bucket with burst {}; the limiter admits in clumps ({:.0}% of \
                 spans silent): a window, not a bucket",
                plan::trim_float(expected),
                fit.silent_share * 100.0
            );
        }
        checks.push(check);
    }
    let (verdict, reason) = match (&blocked, interrupted) {
        (_, true) => (
            Verdict::Inconclusive,
            "interrupted before the probe finished: partial results".to_string(),
        ),
        (Some((Verdict::Error, why)), _) => (Verdict::Error, why.clone()),
        _ if !checks.is_empty() => {
            let (verdict, deciding) = report::combine(&checks);
            let reason = deciding
                .map(|check| format!("{}: {}", check.name, check.reason))
                .unwrap_or_else(|| format!("all {} checks passed", checks.len()));
            (verdict, reason)
        }
        (Some((verdict, why)), _) => (*verdict, why.clone()),
        (None, _) => {
            let fit = fit.as_ref().expect("no blocker means a fit");
            (
                Verdict::Pass,
                format!(
                    "{}: rate {:.1} rps, burst {:.1}, from {} requests",
                    match fit.model {
                        Model::TokenBucket => "token bucket",
                        Model::Window => "window limiter",
                    },
                    fit.rate.estimate,
                    fit.burst.estimate,
                    recorder.sent
                ),
            )
        }
    };
    report.verdict = verdict;
    report.exit_code = verdict.exit_code();
    report.reason = reason;
    report.checks = checks;
    let seconds = timeline.per_second();
    let first_throttle = timeline.first_throttle_s;
    let phase_of = |step: &Step| {
        if overload_rate.is_some() && Some(step) == timeline.steps.last() {
            "overload"
        } else {
            "search"
        }
    };
    report.throttle = Some(ThrottleSection {
        model: match (&fit, first_throttle) {
            (Some(fit), _) => fit.model.as_str(),
            (None, None) if watch.responses > 0 && watch.halt.is_none() => "none",
            _ => "unknown",
        }
        .to_string(),
        rate_per_s: fit.as_ref().map(|fit| estimate_of(fit.rate)),
        burst: fit.as_ref().map(|fit| estimate_of(fit.burst)),
        confidence: CONFIDENCE,
        knee_rate_per_s: timeline.knee(),
        first_throttle_s: first_throttle,
        admitted_before_first_throttle: first_throttle.map(|first| {
            let bin = (first / BIN_S) as usize;
            timeline.bins[..bin.min(timeline.bins.len())]
                .iter()
                .map(|bin| bin.admitted)
                .sum()
        }),
        drain_start_s: fit.as_ref().map(|fit| fit.drain_start_s),
        overload_rate_per_s: overload_rate,
        silent_share: fit.as_ref().map(|fit| fit.silent_share),
        requests_used: recorder.sent,
        max_rate_per_s: plan.max_rate,
        max_requests: plan.max_requests,
        max_duration_s: plan.max_duration.as_secs_f64(),
        idle_s: plan.idle.as_secs_f64(),
        expect_rate_per_s: plan.expect_rate,
        expect_burst: plan.expect_burst,
        tolerance: plan.tolerance,
        retry_after_count: watch.retry_after_count,
        retry_after_s: watch.retry_after_s,
        quota_exhausted: watch.halt == Some(Halt::Quota),
        forbidden: watch.forbidden,
        steps: timeline
            .steps
            .iter()
            .map(|step| {
                let Bin {
                    offered,
                    admitted,
                    throttled,
                } = timeline.totals(step.start_s, step.end_s);
                ThrottleStep {
                    phase: phase_of(step).to_string(),
                    rate_per_s: step.rate_per_s,
                    start_s: step.start_s,
                    end_s: step.end_s,
                    offered,
                    admitted,
                    throttled,
                }
            })
            .collect(),
        series: ThrottleSeries {
            interval_s: 1.0,
            offered: seconds.iter().map(|s| s.offered).collect(),
            admitted: seconds.iter().map(|s| s.admitted).collect(),
            throttled: seconds.iter().map(|s| s.throttled).collect(),
        },
        notes,
    });
    report.overrule_local_exhaustion();
    report
}

/// With no estimate because nothing was throttled, the rate check fails when
/// the expected bucket (at the tolerance's upper end) would surely have
/// throttled what the probe sent.
fn nothing_throttled(
    plan: &ThrottlePlan,
    watch: &Watch<'_>,
    check: &mut Check,
    expected: f64,
    max_offered: f64,
) {
    if watch.timeline.first_throttle_s.is_some() || watch.halt.is_some() || watch.responses == 0 {
        return;
    }
    let rate_high = expected * (1.0 + plan.tolerance);
    let Some(burst_high) = plan
        .expect_burst
        .map(|burst| burst * (1.0 + plan.tolerance))
    else {
        check.reason.push_str(
            "; with --expect-burst the probe can tell whether the expected bucket would have \
             throttled this",
        );
        return;
    };
    // Requests offered above the expected rate, less what it refills: all
    // beyond the burst would have been throttled.
    let excess: f64 = watch
        .timeline
        .steps
        .iter()
        .filter(|step| step.rate_per_s > rate_high)
        .map(|step| (step.rate_per_s - rate_high) * (step.end_s - step.start_s))
        .sum();
    if excess > burst_high + 1.0 {
        check.verdict = Verdict::Fail;
        check.reason = format!(
            "expected a limit near {} rps; nothing was throttled at up to {} rps — a bucket of \
             {:.0} rps and burst {:.0} would have refused about {:.0} of these requests",
            plan::trim_float(expected),
            plan::trim_float(max_offered),
            rate_high,
            burst_high,
            excess - burst_high
        );
    }
}
