//! `gateprobe throttle`: where do 429s start, and what bucket produced them?
//!
//! The procedure (docs/throttle.md):
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
pub mod gate;
pub mod identify;
pub mod plan;
pub mod simulate;

pub use crate::cli::throttle::throttle_plan;
pub use plan::{ThrottlePlan, FORBIDDEN, QUOTA, THROTTLED};

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::engine::command;
use crate::engine::{EndReason, Observer, RunInfo, Verdict as Next};
use crate::plan::schedule::{RateCurve, Segment};
use crate::plan::{format_duration, LoadPlan};
use crate::record::Recorder;
use crate::report::{
    self, Check, Estimate, LockoutFacts, Report, ThrottleSection, ThrottleSeries, ThrottleStep,
    Verdict,
};
use crate::sample::{Outcome, Sample};
use crate::units::round2;
use estimate::{Bin, Fit, Kind, Model, Record, Step, Timeline, BIN_S, OVERLOAD_FACTOR};
use gate::{gate, Parameter};
use identify::{Identified, Limiter};

/// Level of the rate and burst intervals.
pub const CONFIDENCE: f64 = 0.95;
/// The overload stops once the rate's interval is this tight (relative half-width)…
const RATE_PRECISION: f64 = 0.025;
/// …the burst's within this share of it or one request, whichever is larger…
const BURST_PRECISION: f64 = 0.05;
/// …and at least this much throttled traffic was seen (a window of a second
/// shows its clumps within two).
const MIN_OVERLOAD_S: f64 = 2.0;
/// The rate's precision never needs to be finer than this (rps): without a
/// floor, a limiter that admits almost nothing could never stop the probe.
const RATE_FLOOR: f64 = 0.05;
/// Clumps of admissions (windows) the overload must see before a window is
/// measured: the first may be a tail and the last cut short.
const WINDOWS_TO_SEE: usize = 5;

/// The overload's stop rule on intervals: rate within ±2.5% (or ±0.05 rps),
/// burst within ±5% (or ±1 request) beyond what the client's timing alone
/// forces ([`Fit::burst_timing_floor`]). Without that allowance a client
/// whose round trips vary by milliseconds (a busy runner) could never stop
/// the overload, and would spend the probe's whole budget on a burst
/// interval no longer overload can narrow; the interval is as wide as the
/// timing makes it either way, and the report says so.
pub fn is_tight(fit: &Fit) -> bool {
    fit.rate.half_width() <= (RATE_PRECISION * fit.rate.estimate).max(RATE_FLOOR)
        && fit.burst.half_width()
            <= (BURST_PRECISION * fit.burst.estimate).max(1.0) + fit.burst_timing_floor()
}

/// 429s that end the search.
const SEARCH_THROTTLES: u64 = 3;
/// 401/403 responses (and at least this share of all) that stop the probe.
const FORBIDDEN_STOP: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Search,
    Overload,
    /// After a lockout: single probes further and further apart until one
    /// is admitted again.
    Recovery,
    /// Once recovered and two windows later: a fast burst into the empty
    /// window, stopped at its first refusal — it admits exactly the limit.
    Burst,
    /// After the overload: held steps bracketing the knee, each after a
    /// pause that lets the limiter admit again, each stopped at its first
    /// refusal.
    Knee,
}

/// The knee's search: at most this many held steps, each held this long
/// (or for this many requests, whichever is longer).
const KNEE_STEPS: usize = 4;
const KNEE_HOLD_S: f64 = 1.0;
const KNEE_HOLD_REQUESTS: f64 = 25.0;
/// The search ends when its bracket is this narrow (relative).
const KNEE_PRECISION: f64 = 0.05;
/// The longest wait before a knee step.
const KNEE_SETTLE_MAX_S: f64 = 30.0;

/// Under sustained overload, this long without an admission (and at least
/// [`LOCKOUT_REFUSALS`] refusals) is a lockout: the probe backs off at once.
const LOCKOUT_S: f64 = 1.5;
const LOCKOUT_REFUSALS: u64 = 10;
/// Recovery probes: the first this long after the overload, each gap this
/// many times the last, at most this many, for at most this long.
const RECOVERY_FIRST_GAP_S: f64 = 0.05;
const RECOVERY_GROWTH: f64 = 1.15;
const RECOVERY_PROBES: usize = 40;
const RECOVERY_MAX_S: f64 = 120.0;

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
    /// Lockout watch: the latest admission sent under overload, and the
    /// refusals sent after it.
    last_admitted_sent_s: f64,
    refused_since_admitted: u64,
    lockout: Option<identify::Lockout>,
    /// When the recovery probes began.
    recovery_from_s: Option<f64>,
    /// The sustained overload's rate, once it began.
    overload_rate_per_s: f64,
    /// 5xx answers counted as admitted.
    server_errors: u64,
    /// The knee's held steps, and the last send before them (the analyses
    /// read up to there: these steps only test the rate they found).
    knee_steps: Vec<(Step, Bin)>,
    knee_from_s: Option<f64>,
}

impl Watch<'_> {
    /// The analyses read what was sent before the knee's search (whose
    /// steps only test the rate they found).
    fn analysed_until_s(&self) -> f64 {
        self.knee_from_s.unwrap_or(f64::INFINITY)
    }

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

    /// Recognises a lockout under overload, and its end while recovering.
    fn watch_lockout(&mut self, sent_s: f64, done_s: f64, kind: Kind) -> Option<String> {
        match (self.phase, kind) {
            (Phase::Overload, Kind::Admitted) => {
                if sent_s > self.last_admitted_sent_s {
                    self.last_admitted_sent_s = sent_s;
                    self.refused_since_admitted = 0;
                }
                None
            }
            (Phase::Overload, Kind::Throttled) => {
                let silent_from = self
                    .last_admitted_sent_s
                    .max(self.timeline.fit_from_s.unwrap_or(0.0));
                if sent_s > silent_from {
                    self.refused_since_admitted += 1;
                }
                if self.lockout.is_none()
                    && sent_s - silent_from >= LOCKOUT_S
                    && self.refused_since_admitted >= LOCKOUT_REFUSALS
                {
                    self.lockout = Some(identify::Lockout {
                        silent_from_s: silent_from,
                        recognised_at_s: done_s,
                        last_flood_s: sent_s,
                        flood_rate_per_s: self.overload_rate_per_s,
                        last_refused_probe_s: None,
                        recovered_at_s: None,
                        refused_after: 0,
                        burst_admitted: None,
                    });
                    return Some(format!(
                        "no admission for {:.1} s under overload: a lockout; backing off",
                        sent_s - silent_from
                    ));
                }
                None
            }
            (Phase::Recovery, Kind::Admitted) => {
                let lockout = self.lockout.as_mut()?;
                lockout.recovered_at_s.get_or_insert(sent_s);
                Some("a request was admitted again: the lockout is over".to_string())
            }
            (Phase::Burst, Kind::Admitted) => {
                if let Some(lockout) = self.lockout.as_mut() {
                    *lockout.burst_admitted.get_or_insert(0) += 1;
                }
                None
            }
            (Phase::Burst, Kind::Throttled) => {
                let lockout = self.lockout.as_mut()?;
                lockout.burst_admitted.get_or_insert(0);
                Some("the burst filled the window".to_string())
            }
            (Phase::Recovery, Kind::Throttled) => {
                if let Some(lockout) = self.lockout.as_mut() {
                    lockout.last_refused_probe_s = Some(
                        lockout
                            .last_refused_probe_s
                            .map_or(sent_s, |last| last.max(sent_s)),
                    );
                }
                None
            }
            _ => None,
        }
    }

    fn overload_is_tight(&mut self) -> bool {
        let final_before = self.last_done_s - 2.0 * self.slowest_s - 0.05;
        let from = self.timeline.fit_from_s.unwrap_or(f64::INFINITY);
        if final_before - from < MIN_OVERLOAD_S {
            return false;
        }
        let records = &self.timeline.records;
        let bucket_tight =
            estimate::fit(&self.timeline, final_before, CONFIDENCE).is_some_and(|fit| {
                let windows_seen = fit.model != Model::Window
                    || identify::clumps_since(records, from, self.overload_rate_per_s)
                        >= WINDOWS_TO_SEE;
                is_tight(&fit) && windows_seen
            });
        // A concurrency limit admits as completions free slots, not as a
        // bucket refills: its own evidence ends the overload.
        bucket_tight || identify::concurrency_decided(records, from)
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
        if self.phase == Phase::Recovery {
            self.recovery_from_s = Some(self.run_offset_s);
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
        self.timeline.add(Record {
            sent_s,
            done_s,
            kind,
            in_flight: sample.in_flight,
        });
        if let Some(reason) = self.watch_lockout(sent_s, done_s, kind) {
            return Next::Stop(reason);
        }
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
            Kind::Admitted => {
                self.admitted += 1;
                if sample.status >= 500 {
                    self.server_errors += 1;
                }
            }
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
                if self.phase == Phase::Knee {
                    return Next::Stop("refused at this rate".into());
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

/// One engine run of the probe, placed on the probe's clock.
struct Ran {
    recorder: Recorder,
    info: RunInfo,
    offset_s: f64,
}

/// What carries out the probe's phases: the engine against a real target
/// ([`Engine`]), or a gateway simulated in virtual time ([`simulate`]), so
/// that the procedure the tables measure is this very code.
pub(crate) trait Runner {
    /// Waits out the idle; returns whether it was interrupted.
    async fn idle(&mut self, idle: Duration) -> bool;
    /// Runs one phase, feeding every answer to the watch.
    async fn run(
        &mut self,
        phase: &LoadPlan,
        watch: &mut dyn Observer,
    ) -> Result<(Recorder, RunInfo)>;
}

/// The real thing: the engine, with Ctrl-C.
struct Engine;

impl Runner for Engine {
    async fn idle(&mut self, idle: Duration) -> bool {
        if idle.is_zero() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(idle) => false,
            _ = crate::signals::interrupt().cancelled_owned() => true,
        }
    }

    async fn run(
        &mut self,
        phase: &LoadPlan,
        watch: &mut dyn Observer,
    ) -> Result<(Recorder, RunInfo)> {
        command::execute(phase, watch).await
    }
}

/// Runs the whole probe and returns its report.
pub async fn probe(plan: &ThrottlePlan) -> Result<Report> {
    probe_with(plan, &mut Engine).await
}

/// The probe's procedure on any [`Runner`].
/// Long because it is the procedure of the module's text, phase after phase
/// (idle, search, overload, recovery, burst, knee), with the stop rules
/// between them; each phase's work is its own function.
pub(crate) async fn probe_with(plan: &ThrottlePlan, runner: &mut impl Runner) -> Result<Report> {
    let mut interrupted = runner.idle(plan.idle).await;
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
        last_admitted_sent_s: 0.0,
        refused_since_admitted: 0,
        lockout: None,
        recovery_from_s: None,
        overload_rate_per_s: 0.0,
        server_errors: 0,
        knee_steps: Vec::new(),
        knee_from_s: None,
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
        let (recorder, info) = runner.run(&phase, &mut watch).await?;
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
                watch.overload_rate_per_s = rate;
                watch.phase = Phase::Overload;
                let phase = plan.phase(
                    RateCurve::constant(rate, remaining_s),
                    Duration::from_secs_f64(remaining_s),
                    remaining,
                );
                let (recorder, info) = runner.run(&phase, &mut watch).await?;
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
                if watch.lockout.is_some() && !interrupted {
                    interrupted = recover(plan, &mut watch, &mut runs, runner).await?;
                }
                if watch.lockout.is_some_and(|l| l.recovered_at_s.is_some()) && !interrupted {
                    interrupted = burst(plan, &mut watch, &mut runs, runner).await?;
                }
                if watch.lockout.is_none() && watch.halt.is_none() && !interrupted {
                    interrupted = knee(plan, &mut watch, &mut runs, runner, rate).await?;
                }
            }
        }
    }
    if let Some(lockout) = watch.lockout.as_mut() {
        // The last request of the overload (every record of it is in by now).
        let until = watch.recovery_from_s.unwrap_or(f64::INFINITY);
        lockout.last_flood_s = watch
            .timeline
            .records
            .iter()
            .filter(|r| r.sent_s < until)
            .map(|r| r.sent_s)
            .fold(lockout.last_flood_s, f64::max);
        let recognised = lockout.recognised_at_s;
        lockout.refused_after = watch
            .timeline
            .records
            .iter()
            .filter(|r| r.kind == Kind::Throttled && r.sent_s > recognised)
            .count() as u64;
    }
    Ok(build_report(plan, &watch, runs, overload_rate, interrupted))
}

/// The knee — the highest rate held with no refusal — by a bracketing
/// search on held steps after the overload. The bracket starts at the
/// search's highest clean step and the overload (refused); the first step
/// holds the found rate's lower bound (the bracket is then that bound and
/// the model's rate above it), and when it is refused the search halves
/// the bracket below it. Before each step the probe waits until the
/// limiter can admit again and no burst is left to hide a deficit: two
/// request intervals at that rate (a bucket holds one or two tokens then, a
/// queue as much room), a window (a fixed window starts afresh), or the
/// backend's time (every slot is free). A step stops at its first refusal.
/// Returns whether it was interrupted.
/// Long because the bracketing search keeps its bracket, pauses and held
/// steps in one loop; each step's run and stop rule are the Runner's.
async fn knee(
    plan: &ThrottlePlan,
    watch: &mut Watch<'_>,
    runs: &mut Vec<Ran>,
    runner: &mut impl Runner,
    overload_rate: f64,
) -> Result<bool> {
    let fit = estimate::fit(&watch.timeline, f64::INFINITY, CONFIDENCE);
    let found = identified(watch, fit.as_ref(), Some(overload_rate));
    let Some(rate) = found
        .rate
        .filter(|_| !matches!(found.model, Limiter::Unknown | Limiter::None))
    else {
        return Ok(false);
    };
    // The analyses end with the overload's last send, not with the pause.
    watch.knee_from_s = Some(watch.timeline.last_sent_s + 1e-9);
    let settle_s = (2.0 / rate.low.max(1e-3))
        .max(found.window_s.map_or(0.0, |window| window.high))
        .max(found.backend_ms.unwrap_or(0.0) / 1000.0)
        .min(KNEE_SETTLE_MAX_S);
    // A search step above the found rate was clean only for the burst (or
    // queue) it drew on: the bracket's clean end is below that rate.
    let clean = watch.timeline.knee_below(rate.low);
    let (mut held, mut refused) = (clean.unwrap_or(0.0), overload_rate);
    for tried in 0..KNEE_STEPS {
        let candidate = if tried == 0 {
            rate.low
        } else {
            0.5 * (held + refused)
        };
        if !(held < candidate && candidate < refused) {
            break;
        }
        let hold_s = KNEE_HOLD_S.max(KNEE_HOLD_REQUESTS / candidate);
        let sent: u64 = runs.iter().map(|ran| ran.recorder.sent).sum();
        let remaining = plan.max_requests.saturating_sub(sent);
        let elapsed = watch.last_done_s.max(watch.timeline.last_sent_s);
        let remaining_s = plan.max_duration.as_secs_f64() - elapsed;
        let most = (candidate * hold_s).ceil() as u64;
        if remaining < most || remaining_s < settle_s + hold_s + 2.0 * watch.slowest_s {
            break;
        }
        if runner.idle(Duration::from_secs_f64(settle_s)).await {
            return Ok(true);
        }
        watch.phase = Phase::Knee;
        let phase = plan.phase(
            RateCurve::constant(candidate, hold_s),
            Duration::from_secs_f64(hold_s),
            most,
        );
        let records_before = watch.timeline.records.len();
        if run_after(&phase, watch, runs, runner).await? {
            return Ok(true);
        }
        let start_s = watch.run_offset_s;
        let mut seen = Bin::default();
        let mut end_s = start_s;
        for record in &watch.timeline.records[records_before.min(watch.timeline.records.len())..] {
            seen.offered += 1;
            seen.admitted += u64::from(record.kind == Kind::Admitted);
            seen.throttled += u64::from(record.kind == Kind::Throttled);
            end_s = end_s.max(record.sent_s);
        }
        watch.knee_steps.push((
            Step {
                rate_per_s: candidate,
                start_s,
                end_s,
            },
            seen,
        ));
        if seen.throttled > 0 {
            refused = candidate;
        } else {
            held = candidate;
        }
        // Nothing above the found rate's lower bound is held on purpose: a
        // step there could pass on what the steps below saved up.
        if tried == 0 && seen.throttled == 0 || refused - held <= KNEE_PRECISION * held {
            break;
        }
    }
    Ok(false)
}

/// After a lockout: single requests further and further apart (never more
/// than a handful in any second), until one is admitted again or the
/// probe's bounds end. Returns whether it was interrupted.
async fn recover(
    plan: &ThrottlePlan,
    watch: &mut Watch<'_>,
    runs: &mut Vec<Ran>,
    runner: &mut impl Runner,
) -> Result<bool> {
    let sent: u64 = runs.iter().map(|ran| ran.recorder.sent).sum();
    let remaining = plan.max_requests.saturating_sub(sent);
    let elapsed = watch.last_done_s.max(watch.timeline.last_sent_s);
    let remaining_s = (plan.max_duration.as_secs_f64() - elapsed).min(RECOVERY_MAX_S);
    if remaining == 0 || remaining_s <= RECOVERY_FIRST_GAP_S {
        return Ok(false);
    }
    let mut segments = Vec::new();
    let (mut gap, mut total) = (RECOVERY_FIRST_GAP_S, 0.0);
    while segments.len() < RECOVERY_PROBES && total + gap <= remaining_s {
        segments.push(Segment {
            start_rate_per_s: 1.0 / gap,
            end_rate_per_s: 1.0 / gap,
            duration_s: gap,
        });
        total += gap;
        gap *= RECOVERY_GROWTH;
    }
    watch.phase = Phase::Recovery;
    let probes = (segments.len() as u64).min(remaining);
    let phase = plan.phase(
        RateCurve::new(&segments),
        Duration::from_secs_f64(total + RECOVERY_FIRST_GAP_S),
        probes,
    );
    run_after(&phase, watch, runs, runner).await
}

/// After a lockout and its recovery: wait out two windows (at the window's
/// upper bound), then send fast into the empty window
/// until the first refusal. Returns whether it was interrupted.
async fn burst(
    plan: &ThrottlePlan,
    watch: &mut Watch<'_>,
    runs: &mut Vec<Ran>,
    runner: &mut impl Runner,
) -> Result<bool> {
    let Some(lockout) = watch.lockout else {
        return Ok(false);
    };
    // What a window held before the first refusal, with room to spare.
    let before_refusal = watch
        .timeline
        .records
        .iter()
        .take_while(|r| r.kind != Kind::Throttled)
        .count() as u64;
    // The window is at most the recovery delay plus the limit's worth of
    // the overload (see identify::locked_out): wait two of those, so that a
    // two-window counter's previous window is empty too.
    let recovered_s = lockout.recovered_at_s.unwrap_or(0.0) - lockout.last_flood_s;
    let window_high_s = recovered_s + before_refusal as f64 / lockout.flood_rate_per_s.max(1.0);
    let wait_s = (2.0 * window_high_s + 0.1).clamp(1.0, 120.0);
    let sent: u64 = runs.iter().map(|ran| ran.recorder.sent).sum();
    let remaining = plan.max_requests.saturating_sub(sent);
    let elapsed = watch.last_done_s.max(watch.timeline.last_sent_s) + wait_s;
    let remaining_s = plan.max_duration.as_secs_f64() - elapsed;
    let most = (2 * before_refusal + 20).min(remaining);
    let rate = plan.max_rate.min(4.0 * watch.overload_rate_per_s.max(1.0));
    let duration_s = most as f64 / rate + 0.5;
    if most == 0 || remaining_s < duration_s {
        return Ok(false);
    }
    if runner.idle(Duration::from_secs_f64(wait_s)).await {
        return Ok(true);
    }
    watch.phase = Phase::Burst;
    let phase = plan.phase(
        RateCurve::constant(rate, duration_s),
        Duration::from_secs_f64(duration_s),
        most,
    );
    run_after(&phase, watch, runs, runner).await
}

/// Runs one of the phases that follow the overload and keeps it on the
/// probe's clock; returns whether it was interrupted.
async fn run_after(
    phase: &LoadPlan,
    watch: &mut Watch<'_>,
    runs: &mut Vec<Ran>,
    runner: &mut impl Runner,
) -> Result<bool> {
    let (recorder, info) = runner.run(phase, watch).await?;
    let interrupted = info.end == EndReason::Interrupted;
    runs.push(Ran {
        recorder,
        info,
        offset_s: watch.run_offset_s,
    });
    Ok(interrupted)
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
        start_late_ms: None,
    };
    (recorder, info)
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
    found: &Identified,
    max_offered: f64,
) -> Option<(Verdict, String)> {
    let measured = found.rate.is_some();
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
        Some(Halt::RetryAfter(seconds)) if !measured => {
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
                crate::units::trim_float(max_offered)
            ),
        ));
    }
    if !measured {
        let seen = found.evidence.join("; ");
        return Some((
            Verdict::Inconclusive,
            format!(
                "429s began at {:.2} s, but the limiter could not be measured within the probe's \
                 bounds ({seen}): raise --max-requests or --max-duration",
                watch.timeline.first_throttle_s.unwrap_or(0.0)
            ),
        ));
    }
    None
}

/// The identification of what the probe saw (see [`identify`]).
fn identified(watch: &Watch<'_>, fit: Option<&Fit>, overload_rate: Option<f64>) -> Identified {
    let timeline = &watch.timeline;
    let analysed = timeline
        .records
        .partition_point(|r| r.sent_s < watch.analysed_until_s());
    let mut found = identify::identify(&identify::Seen {
        records: &timeline.records[..analysed],
        fit,
        overload: overload_rate.map(|rate| (timeline.fit_from_s.unwrap_or(0.0), rate)),
        first_step_end_s: timeline.steps.first().map_or(0.0, |step| step.end_s),
        lockout: watch.lockout,
    });
    if let (Some(halt), Limiter::None) = (&watch.halt, found.model) {
        // Stopped before anything could be refused: no evidence either way.
        found.model = Limiter::Unknown;
        found.evidence = vec![match halt {
            Halt::Quota => {
                "the probe stopped at a usage-plan quota before any throttle".to_string()
            }
            Halt::Forbidden => {
                "the probe stopped at 401/403 answers before any throttle".to_string()
            }
            Halt::RetryAfter(_) => "the probe stopped as Retry-After asked".to_string(),
        }];
    }
    let server_errors = watch.server_errors;
    if server_errors >= 10 && found.model != Limiter::Concurrency {
        found.evidence.push(format!(
            "{server_errors} responses were 5xx and counted as admitted: if the gateway answers a \
             throttled backend that way (API Gateway answers a throttled Lambda function with \
             500), mark them with --classify 'throttled=status:500'"
        ));
    }
    found
}

/// The report's notes on how far to trust the estimates.
fn notes(
    plan: &ThrottlePlan,
    watch: &Watch<'_>,
    found: &Identified,
    fit: Option<&Fit>,
    overload_rate: Option<f64>,
) -> Vec<String> {
    let mut notes = Vec::new();
    // The bucket's burst can be no tighter than the client's timing allows.
    if let (Some(fit), Limiter::TokenBucket) = (fit, found.model) {
        let floor = fit.burst_timing_floor();
        if floor > (BURST_PRECISION * fit.burst.estimate).max(1.0) {
            notes.push(format!(
                "round trips varied by up to {:.1} ms (refused requests' 99th percentile over \
                 their fastest), which blurs when each request reached the gateway: the \
                 burst is known to ±{:.0} at best however long the overload, so the probe \
                 stopped once the rest was tight; a less busy client machine narrows it",
                fit.timing_s * 1000.0,
                floor
            ));
        }
    }
    if let (Some(rate), Some(burst)) = (found.rate, found.burst) {
        let refill_s = burst.estimate.max(0.0) / rate.estimate.max(1e-9);
        if refill_s > plan.idle.as_secs_f64() * 1.05 && plan.idle > Duration::ZERO && refill_s < 1e6
        {
            notes.push(format!(
                "a {:.0}-request bucket at {:.1} rps takes {:.1} s to refill; the probe waited \
                 {} idle, so the bucket may not have been full: rerun with --idle {:.0}s",
                burst.estimate,
                rate.estimate,
                refill_s,
                format_duration(plan.idle),
                refill_s.ceil() + 1.0
            ));
        }
    }
    if let (Some(offered), Some(rate)) = (overload_rate, found.rate) {
        if offered < rate.estimate * 1.2 {
            notes.push(format!(
                "the overload ({} rps) was barely above the admitted rate: --max-rate caps it; \
                 estimates may be low",
                crate::units::trim_float(offered)
            ));
        }
    }
    // Refused at once, then admitted under sustained load: the limiter was
    // still counting an earlier run's requests.
    let timeline = &watch.timeline;
    let first_step_end = timeline.steps.first().map_or(0.0, |step| step.end_s);
    let overload = timeline.totals(timeline.fit_from_s.unwrap_or(f64::INFINITY), f64::INFINITY);
    if timeline
        .first_throttle_s
        .is_some_and(|first| first < first_step_end)
        && overload.offered > 0
        && overload.throttled == 0
    {
        notes.push(format!(
            "requests were refused from the first step but none under the sustained overload: \
             the limiter was not at rest when the probe began (an earlier run's requests still \
             counted); wait longer before probing (--idle, now {})",
            format_duration(plan.idle)
        ));
    }
    if watch.retry_after_count > 0 && !plan.honour_retry_after {
        notes.push(format!(
            "{} 429s carried Retry-After (ignored, as --ignore-retry-after asked)",
            watch.retry_after_count
        ));
    }
    notes
}

/// The gate checks: the model, then each expected parameter.
fn checks(
    plan: &ThrottlePlan,
    watch: &Watch<'_>,
    found: &Identified,
    blocked: Option<&(Verdict, String)>,
    max_offered: f64,
) -> Vec<Check> {
    let why_missing = blocked.map(|(_, why)| why.clone()).unwrap_or_default();
    let mut checks = Vec::new();
    if let Some(expected) = plan.expect_model {
        checks.push(model_check(expected, found, blocked));
    }
    for parameter in Parameter::ALL {
        let Some(expected) = plan.expected(parameter) else {
            continue;
        };
        let expected = (expected, parameter.slack(expected, plan.tolerance));
        let estimate = found.estimate(parameter).filter(|_| blocked.is_none());
        let mut check = gate(parameter, expected, estimate, CONFIDENCE, &why_missing);
        if let (Some(source), Parameter::Rate | Parameter::Burst) = (&plan.expect_source, parameter)
        {
            check
                .reason
                .push_str(&format!(" (expected value declared by {source})"));
        }
        if estimate.is_none()
            && blocked.is_none()
            && !matches!(found.model, Limiter::Unknown | Limiter::None)
        {
            let (what, unit) = parameter.what();
            check.verdict = Verdict::Fail;
            check.reason = format!(
                "expected {what} {}{unit}; the limiter is a {}, which has none ({})",
                crate::units::trim_float(expected.0),
                found.model.label(),
                found.evidence.first().map_or("", String::as_str)
            );
        }
        if parameter == Parameter::Rate && estimate.is_none() {
            nothing_throttled(plan, watch, &mut check, expected.0, max_offered);
        }
        checks.push(check);
    }
    if let Some(facts) = quota_facts(plan, watch) {
        checks.push(gate::quota_check(&facts));
    }
    checks
}

/// The declared quota and what the probe saw of it, if one was declared.
fn quota_facts(plan: &ThrottlePlan, watch: &Watch<'_>) -> Option<gate::QuotaFacts> {
    plan.expect_quota
        .as_ref()
        .map(|(limit, period, source)| gate::QuotaFacts {
            limit: *limit,
            period: period.clone(),
            source: source.clone(),
            admitted: watch.admitted,
            exhausted: watch.halt == Some(Halt::Quota),
        })
}

/// The model gate: pass when the probe named the expected kind, fail when
/// it named another, inconclusive when it could not name one.
fn model_check(
    expected: Limiter,
    found: &Identified,
    blocked: Option<&(Verdict, String)>,
) -> Check {
    // The last line of evidence is the one the model was chosen on.
    let evidence = found.evidence.last().map_or("", String::as_str);
    let (verdict, reason) = match blocked {
        Some((Verdict::Error, why)) => (Verdict::Inconclusive, why.clone()),
        _ if found.model == expected => (
            Verdict::Pass,
            format!("a {}, as expected: {evidence}", found.model.label()),
        ),
        _ if found.model == Limiter::Unknown => (
            Verdict::Inconclusive,
            format!(
                "expected a {}; the limiter could not be named: {evidence}",
                expected.label()
            ),
        ),
        _ => (
            Verdict::Fail,
            format!(
                "expected a {}; found a {}: {evidence}",
                expected.label(),
                found.model.label()
            ),
        ),
    };
    Check::new(
        "throttle model",
        "throttle",
        verdict,
        json!(found.model.as_str()),
        json!(expected.as_str()),
        reason,
    )
}

/// The probe's verdict and its reason.
fn verdict(
    checks: &[Check],
    blocked: Option<&(Verdict, String)>,
    section: &ThrottleSection,
    interrupted: bool,
) -> (Verdict, String) {
    if interrupted {
        return (
            Verdict::Inconclusive,
            "interrupted before the probe finished: partial results".to_string(),
        );
    }
    if let Some((Verdict::Error, why)) = blocked {
        return (Verdict::Error, why.clone());
    }
    if !checks.is_empty() {
        let (verdict, deciding) = report::combine(checks);
        let reason = deciding
            .map(|check| format!("{}: {}", check.name, check.reason))
            .unwrap_or_else(|| format!("all {} checks passed", checks.len()));
        return (verdict, reason);
    }
    if let Some((verdict, why)) = blocked {
        return (*verdict, why.clone());
    }
    let parameters: Vec<String> = section
        .parameters()
        .into_iter()
        .map(|(_, label, unit, value)| format!("{label} {:.1}{unit}", value.estimate))
        .collect();
    let model = section.model_label();
    (
        Verdict::Pass,
        format!(
            "{model}: {}, from {} requests",
            parameters.join(", "),
            section.requests_used
        ),
    )
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
        crate::units::trim_float(plan.start_rate),
        crate::units::trim_float(plan.max_rate),
        plan.max_requests,
        format_duration(plan.max_duration)
    );
    let timeline = &watch.timeline;
    let fit = estimate::fit(timeline, watch.analysed_until_s(), CONFIDENCE);
    let max_offered = timeline
        .steps
        .iter()
        .map(|step| step.rate_per_s)
        .fold(0.0, f64::max);
    let found = identified(watch, fit.as_ref(), overload_rate);
    let blocked = blocker(watch, &recorder, &found, max_offered);
    let checks = checks(plan, watch, &found, blocked.as_ref(), max_offered);
    let notes = notes(plan, watch, &found, fit.as_ref(), overload_rate);
    let section = section(
        plan,
        watch,
        &recorder,
        fit.as_ref(),
        found,
        overload_rate,
        notes,
    );
    let (verdict, reason) = verdict(&checks, blocked.as_ref(), &section, interrupted);
    report.verdict = verdict;
    report.exit_code = verdict.exit_code();
    report.reason = reason;
    report.checks = checks;
    report.throttle = Some(section);
    report.overrule_local_exhaustion();
    report
}

/// Two rates, each meaning one thing.
/// - The knee: the point estimate of the offered rate where refusals begin.
///   With a named model, its rate (at most the overload's, at least the
///   safe rate). For an unknown limiter, the middle of the search's
///   bracket (highest step with under 1% refused, lowest with more).
///   `None` when nothing was refused, or no clean step lies below a
///   refused one.
/// - The safe rate: the lower confidence bound of the knee. With a named
///   model, the rate's lower bound, lowered to the highest clean held step
///   when the step held at that bound was refused. Otherwise the highest
///   rate seen with under 1% refused: an observation, not a bound.
fn knee_and_safe(
    watch: &Watch<'_>,
    found: &Identified,
    overload_rate: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let timeline = &watch.timeline;
    let held = |clean: bool| {
        watch
            .knee_steps
            .iter()
            .filter(move |(_, seen)| (seen.throttled == 0) == clean)
            .map(|(step, _)| step.rate_per_s)
    };
    let named = found
        .rate
        .filter(|_| !matches!(found.model, Limiter::Unknown | Limiter::None));
    let Some(rate) = named else {
        let clean = timeline.knee();
        if found.model == Limiter::None {
            return (None, clean.map(round2));
        }
        // Refusals (429s, not 401/403s) bracketed by a clean step below
        // and a refused one above; anything less places no knee.
        let refused = timeline
            .first_throttle_s
            .and(timeline.refused_from().or(overload_rate));
        let knee = match (clean, refused) {
            (Some(clean), Some(refused)) if refused > clean => Some(0.5 * (clean + refused)),
            _ => None,
        };
        return (knee.map(round2), clean.map(round2));
    };
    let safe = if watch.knee_steps.is_empty() {
        Some(rate.low)
    } else {
        held(true)
            .reduce(f64::max)
            .map(|clean| clean.min(rate.low))
            .or_else(|| timeline.knee_below(rate.low))
    };
    // A held step refused below the model's rate says the sends were
    // bursty (Poisson, jitter against a concurrency limit) or a window was
    // still full, not that refusals begin lower: the knee stays the model's.
    let floor = safe.unwrap_or(0.0);
    let ceiling = overload_rate.unwrap_or(f64::INFINITY).max(floor);
    (
        Some(round2(rate.estimate.clamp(floor, ceiling))),
        safe.map(round2),
    )
}

/// The report's throttle section.
/// Long because it is one struct literal, a line per field of the section.
fn section(
    plan: &ThrottlePlan,
    watch: &Watch<'_>,
    recorder: &Recorder,
    fit: Option<&Fit>,
    found: Identified,
    overload_rate: Option<f64>,
    notes: Vec<String>,
) -> ThrottleSection {
    let timeline = &watch.timeline;
    let seconds = timeline.per_second();
    let first_throttle = timeline.first_throttle_s;
    let (knee, safe) = knee_and_safe(watch, &found, overload_rate);
    let lockout = watch.lockout.map(|lockout| LockoutFacts {
        silent_s: lockout.recognised_at_s - lockout.silent_from_s,
        recognised_at_s: lockout.recognised_at_s,
        refused_after: lockout.refused_after,
        recovered_after_s: lockout.recovered_at_s.map(|at| at - lockout.last_flood_s),
    });
    ThrottleSection {
        model: found.model.as_str().to_string(),
        rate_per_s: found.rate.map(estimate_of),
        burst: found.burst.map(estimate_of),
        queue_depth: found.queue_depth.map(estimate_of),
        queue_delay_ms: found.queue_delay_ms.map(estimate_of),
        window_limit: found.window_limit.map(estimate_of),
        window_s: found.window_s.map(estimate_of),
        counts_refused: found.counts_refused,
        concurrency: found.concurrency.map(estimate_of),
        backend_ms: found.backend_ms,
        interval_kind: found
            .interval_kind
            .iter()
            .map(|(field, kind)| (field.to_string(), kind.to_string()))
            .collect(),
        evidence: found.evidence,
        lockout,
        confidence: CONFIDENCE,
        knee_rate_per_s: knee,
        safe_rate_per_s: safe,
        first_throttle_s: first_throttle,
        admitted_before_first_throttle: first_throttle.map(|first| {
            let bin = (first / BIN_S) as usize;
            timeline.bins[..bin.min(timeline.bins.len())]
                .iter()
                .map(|bin| bin.admitted)
                .sum()
        }),
        drain_start_s: fit.map(|fit| fit.drain_start_s),
        overload_rate_per_s: overload_rate,
        silent_share: fit.map(|fit| fit.silent_share),
        requests_used: recorder.sent,
        max_rate_per_s: plan.max_rate,
        max_requests: plan.max_requests,
        max_duration_s: plan.max_duration.as_secs_f64(),
        idle_s: plan.idle.as_secs_f64(),
        expect_rate_per_s: plan.expect_rate,
        expect_burst: plan.expect_burst,
        expect_concurrency: plan.expect_concurrency,
        expect_window_limit: plan.expect_window_limit,
        expect_window_s: plan.expect_window_s,
        expect_queue_depth: plan.expect_queue_depth,
        tolerance: plan.tolerance,
        retry_after_count: watch.retry_after_count,
        retry_after_s: watch.retry_after_s,
        quota_exhausted: watch.halt == Some(Halt::Quota),
        quota: quota_facts(plan, watch),
        forbidden: watch.forbidden,
        steps: throttle_steps(watch, overload_rate),
        series: ThrottleSeries {
            interval_s: 1.0,
            offered: seconds.iter().map(|s| s.offered).collect(),
            admitted: seconds.iter().map(|s| s.admitted).collect(),
            throttled: seconds.iter().map(|s| s.throttled).collect(),
            admitted_latency_ms: admitted_latency_per_second(&timeline.records, seconds.len()),
        },
        notes,
    }
}

/// The probe's steps, each with what it offered and what came of it: the
/// search's, the overload (the last search step, once overloaded) and the
/// knee's held steps.
fn throttle_steps(watch: &Watch<'_>, overload_rate: Option<f64>) -> Vec<ThrottleStep> {
    let timeline = &watch.timeline;
    let phase_of = |step: &Step| {
        if overload_rate.is_some() && Some(step) == timeline.steps.last() {
            "overload"
        } else {
            "search"
        }
    };
    timeline
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
        .chain(watch.knee_steps.iter().map(|(step, seen)| ThrottleStep {
            phase: "knee".to_string(),
            rate_per_s: round2(step.rate_per_s),
            start_s: step.start_s,
            end_s: step.end_s,
            offered: seen.offered,
            admitted: seen.admitted,
            throttled: seen.throttled,
        }))
        .collect()
}

/// Median latency of admitted requests by the second they were sent, ms.
fn admitted_latency_per_second(records: &[Record], seconds: usize) -> Vec<f64> {
    let mut by_second: Vec<Vec<f64>> = vec![Vec::new(); seconds];
    for record in records.iter().filter(|r| r.kind == Kind::Admitted) {
        if let Some(second) = by_second.get_mut(record.sent_s.max(0.0) as usize) {
            second.push((record.done_s - record.sent_s) * 1000.0);
        }
    }
    by_second
        .into_iter()
        .map(|mut latencies| {
            latencies.sort_by(f64::total_cmp);
            round2(identify::percentile_sorted(&latencies, 0.5))
        })
        .collect()
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
            crate::units::trim_float(expected),
            crate::units::trim_float(max_offered),
            rate_high,
            burst_high,
            excess - burst_high
        );
    }
}
