//! The throttle probe's procedure (see [`crate::throttle`]): idle, search,
//! overload, and after it the recovery, burst and knee phases, each one
//! engine run fed to the probe's [`Watch`].
pub mod simulate;

use std::time::Duration;

use anyhow::Result;

use crate::engine::command;
use crate::engine::{EndReason, Observer, RunInfo};
use crate::plan::schedule::{RateCurve, Segment};
use crate::plan::LoadPlan;
use crate::record::Recorder;
use crate::report::analysis::{analyse, Live, Observed, Planned, ALL};
use crate::report::Report;
use crate::throttle::estimate::{self, Bin, Kind, Step, OVERLOAD_FACTOR};
use crate::throttle::identify::Limiter;
use crate::throttle::watch::{identified, merged, Phase, Ran, Watch};
use crate::throttle::{ThrottlePlan, CONFIDENCE};

/// The knee's search: at most this many held steps, each held this long
/// (or for this many requests, whichever is longer).
const KNEE_STEPS: usize = 4;
const KNEE_HOLD_S: f64 = 1.0;
const KNEE_HOLD_REQUESTS: f64 = 25.0;
/// The search ends when its bracket is this narrow (relative).
const KNEE_PRECISION: f64 = 0.05;
/// The longest wait before a knee step.
const KNEE_SETTLE_MAX_S: f64 = 30.0;

/// Recovery probes: the first this long after the overload, each gap this
/// many times the last, at most this many, for at most this long.
const RECOVERY_FIRST_GAP_S: f64 = 0.05;
const RECOVERY_GROWTH: f64 = 1.15;
const RECOVERY_PROBES: usize = 40;
const RECOVERY_MAX_S: f64 = 120.0;

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
    let mut watch = Watch::new(plan);
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
        if let (Some(rate), None, false) = (began_at, &watch.halt, interrupted) {
            let (remaining, remaining_s) = left(plan, &watch, &runs);
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
    let (recorder, info) = merged(plan, &runs, interrupted);
    let live = Live {
        planned: Planned::Throttle(plan),
        observed: Observed::Throttle {
            watch: &watch,
            overload_rate,
            interrupted,
        },
        recorder: &recorder,
        info: &info,
    };
    Ok(analyse(ALL, live))
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
        let (remaining, remaining_s) = left(plan, watch, runs);
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
    let (remaining, remaining_s) = left(plan, watch, runs);
    let remaining_s = remaining_s.min(RECOVERY_MAX_S);
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
    let (remaining, remaining_s) = left(plan, watch, runs);
    let remaining_s = remaining_s - wait_s;
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

/// What the probe's bounds leave after the runs so far: (requests, seconds).
fn left(plan: &ThrottlePlan, watch: &Watch<'_>, runs: &[Ran]) -> (u64, f64) {
    let sent: u64 = runs.iter().map(|ran| ran.recorder.sent).sum();
    let elapsed = watch.last_done_s.max(watch.timeline.last_sent_s);
    (
        plan.max_requests.saturating_sub(sent),
        plan.max_duration.as_secs_f64() - elapsed,
    )
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
