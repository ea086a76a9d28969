//! The throttle probe's report: the estimates, the checks and their
//! verdict, from what the probe's watch saw.
mod analysis;
mod consistency;
mod render;

use std::time::Duration;

pub use analysis::Throttle;
use serde_json::json;

use crate::plan::format_duration;
use crate::record::Recorder;
use crate::report::{
    self, Check, Estimate, LockoutFacts, Report, ThrottleSection, ThrottleSeries, ThrottleStep,
    Verdict,
};
use crate::throttle::estimate::{self, Bin, Fit, Kind, Record, Step, BIN_S};
use crate::throttle::gate::{self, gate, Parameter};
use crate::throttle::identify::{self, Identified, Limiter};
use crate::throttle::watch::{identified, Halt, Watch};
use crate::throttle::{ThrottlePlan, BURST_PRECISION, CONFIDENCE};
use crate::units::round2;

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

/// The probe's checks, section and verdict on its finished runs
/// (`recorder`: their records added up on the probe's clock).
fn decide_live(
    plan: &ThrottlePlan,
    watch: &Watch<'_>,
    recorder: &Recorder,
    overload_rate: Option<f64>,
    interrupted: bool,
    report: &mut Report,
) {
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
    let blocked = blocker(watch, recorder, &found, max_offered);
    let checks = checks(plan, watch, &found, blocked.as_ref(), max_offered);
    let notes = notes(plan, watch, &found, fit.as_ref(), overload_rate);
    let section = section(
        plan,
        watch,
        recorder,
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
