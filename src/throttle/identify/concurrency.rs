//! The evidence of limiters that hold requests: a concurrency limit's
//! fixed in-progress count, and a queue's added delay.
use super::super::estimate::{Fit, Kind, Record};
use super::*;

/// What the in-progress counts say about a concurrency limit.
struct ConcurrencyEvidence {
    at_refusals: Vec<f64>,
    at_admissions: usize,
    /// The median count at refusals: the limit, if it is one.
    limit: f64,
    /// Refusals at the limit (or one below), admissions at it or above.
    refused_at_limit: f64,
    admitted_at_limit: f64,
    backend_s: f64,
    /// Admitted per second over the overload (Little's law: limit ≈ this ×
    /// the backend's time).
    admitted_rate: f64,
}

impl ConcurrencyEvidence {
    /// Refusals come at the limit, admissions (almost) never — client timing
    /// blurs a count by the answers that cross a send within a round trip's
    /// spread — and the limit is what Little's law makes of the admitted
    /// rate and the backend's time (or less, when arrivals leave slots idle
    /// for a moment). A rate limiter with a steady backend can
    /// show a steady count at refusals too, but then its admissions find it
    /// just as often; one with a fast backend finds few in progress at
    /// admissions, but its count at refusals is far above rate × latency.
    fn decided(&self) -> bool {
        let little = self.admitted_rate * self.backend_s;
        self.limit >= 1.0
            && self.backend_s > 0.0
            && self.refused_at_limit >= 0.9
            && self.admitted_at_limit <= 0.25
            // Arrivals that miss a freed slot only lower the admitted rate.
            && little >= 0.6 * self.limit
            && little <= self.limit + (0.15 * self.limit).max(1.5)
    }
}

fn concurrency_evidence(records: &[Record], from_s: f64) -> Option<ConcurrencyEvidence> {
    let fastest = records
        .iter()
        .filter(|r| r.kind == Kind::Throttled)
        .map(|r| r.done_s - r.sent_s)
        .fold(f64::INFINITY, f64::min);
    let (at_admissions, at_refusals) = in_progress(records, fastest.max(0.0));
    if at_refusals.len() < 10 || at_admissions.len() < 10 {
        return None;
    }
    let limit = percentile_sorted(&at_refusals, 0.5);
    let share = |counts: &[f64], least: f64| {
        counts.iter().filter(|&&count| count >= least).count() as f64 / counts.len() as f64
    };
    let latencies = admitted_latencies(records, f64::NEG_INFINITY, f64::INFINITY);
    let admitted: Vec<f64> = records
        .iter()
        .filter(|r| r.kind == Kind::Admitted && r.sent_s >= from_s)
        .map(|r| r.sent_s)
        .collect();
    let span = admitted
        .last()
        .zip(admitted.first())
        .map_or(0.0, |(last, first)| last - first);
    Some(ConcurrencyEvidence {
        refused_at_limit: share(&at_refusals, limit - 1.0),
        admitted_at_limit: share(&at_admissions, limit),
        at_admissions: at_admissions.len(),
        limit,
        at_refusals,
        backend_s: percentile_sorted(&latencies, 0.5),
        admitted_rate: if span > 0.0 {
            (admitted.len() - 1) as f64 / span
        } else {
            0.0
        },
    })
}

/// Whether the overload since `from_s` already shows a concurrency limit
/// beyond doubt (at least 50 refusals and 50 admissions): the probe's stop
/// rule, which a bucket's intervals never meet for it.
pub fn concurrency_decided(records: &[Record], from_s: f64) -> bool {
    concurrency_evidence(records, from_s).is_some_and(|evidence| {
        evidence.decided() && evidence.at_refusals.len() >= 50 && evidence.at_admissions >= 50
    })
}

/// A concurrency limit (see [`ConcurrencyEvidence::decided`]). Returns
/// whether that is what was seen.
pub(super) fn concurrency(records: &[Record], from_s: f64, found: &mut Identified) -> bool {
    let Some(evidence) = concurrency_evidence(records, from_s) else {
        return false;
    };
    let ConcurrencyEvidence {
        limit,
        refused_at_limit,
        admitted_at_limit,
        backend_s,
        admitted_rate,
        ..
    } = evidence;
    if !evidence.decided() {
        found.evidence.push(format!(
            "at refusals a median of {limit:.0} admitted requests were in progress; {:.0}% of \
             admissions found as many, and the admitted rate × latency is {:.1}: not a \
             concurrency limit",
            admitted_at_limit * 100.0,
            admitted_rate * backend_s
        ));
        return false;
    }
    let (low, high) = median_interval(&evidence.at_refusals);
    found.model = Limiter::Concurrency;
    found.concurrency = Some(estimated(limit, low, high));
    found.interval_kind.push(("concurrency", MEDIAN));
    let latencies = admitted_latencies(records, f64::NEG_INFINITY, f64::INFINITY);
    let (fast, slow) = median_interval(&latencies);
    found.rate = Some(estimated(
        limit / backend_s,
        low / slow.max(1e-9),
        high / fast.max(1e-9),
    ));
    found.interval_kind.push((
        "rate_per_s",
        "concurrency's interval over the median duration's (distribution-free)",
    ));
    found.evidence.push(format!(
        "{:.0}% of {} refusals came with {limit:.0} admitted requests in progress, and only \
         {:.1}% of {} admissions found that many; admitted {admitted_rate:.1} rps × {:.0} ms = \
         {:.1} in progress (Little's law): refusals track requests in progress, not requests \
         over time — a concurrency limit, admitting about {:.1} rps (concurrency ÷ duration; it \
         moves when the backend slows)",
        refused_at_limit * 100.0,
        evidence.at_refusals.len(),
        admitted_at_limit * 100.0,
        evidence.at_admissions,
        backend_s * 1000.0,
        admitted_rate * backend_s,
        limit / backend_s
    ));
    true
}

/// Admitted requests waiting under overload: a queue. Returns whether that
/// is what was seen.
pub(super) fn queue(
    records: &[Record],
    fit: &Fit,
    overload_from: f64,
    unloaded_s: f64,
    found: &mut Identified,
) -> bool {
    let loaded = admitted_latencies(records, overload_from, f64::INFINITY);
    if loaded.len() < 10 {
        return false;
    }
    let added: Vec<f64> = loaded
        .iter()
        .map(|latency| (latency - unloaded_s).max(0.0))
        .collect();
    let delay = percentile_sorted(&added, 0.5);
    let rate = fit.rate;
    if delay < (3.0 * unloaded_s).max(0.005).max(0.5 / rate.estimate) {
        return false;
    }
    let (low, high) = median_interval(&added);
    found.model = Limiter::Queue;
    found.rate = Some(rate);
    found.interval_kind.push(("rate_per_s", BOUNDS));
    found.queue_delay_ms = Some(estimated(delay * 1000.0, low * 1000.0, high * 1000.0));
    // Two measures of the depth, and the tighter one is reported. By
    // arrival, a queue of depth D is a bucket of burst D + 1 (the fit's
    // bounds). By delay, an admitted request waits behind the D ahead of it:
    // D/R less the part of one request's slot already leaked when it came,
    // so D lies in [delay × R, delay × R + 1] (the delay's median interval
    // times the rate's). On a quiet path the fit is within a request; on a
    // real proxy whose answers bunch, the delay is.
    let by_arrival = estimated(
        (fit.burst.estimate - 1.0).max(0.0),
        (fit.burst.low - 1.0).max(0.0),
        (fit.burst.high - 1.0).max(0.0),
    );
    let by_delay = estimated(
        delay * rate.estimate + 0.5,
        low * rate.low,
        high * rate.high + 1.0,
    );
    let delayed = by_delay.high - by_delay.low < by_arrival.high - by_arrival.low;
    found.queue_depth = Some(if delayed { by_delay } else { by_arrival });
    found
        .interval_kind
        .push(("queue_depth", if delayed { QUEUED } else { BOUNDS }));
    found.interval_kind.push(("queue_delay_ms", MEDIAN));
    found.evidence.push(format!(
        "admitted requests waited {:.0} ms more under overload than at the lowest rate ({:.1} \
         ms): a queue ahead of a rate of {:.1} rps holding about {:.0} requests (delay × rate \
         = {:.1}); every admitted request is delayed that long",
        delay * 1000.0,
        unloaded_s * 1000.0,
        rate.estimate,
        found.queue_depth.map_or(0.0, |depth| depth.estimate),
        delay * rate.estimate
    ));
    true
}
