//! From what the probe saw to a limiter: the rate and burst of a token bucket
//! with intervals, the knee, and whether a token bucket explains it at all.
//!
//! The model. A token bucket of `burst` B refilled at `rate` R holds `level`
//! tokens; a request that finds one takes it, any other is refused. Once the
//! probe overloads it, the bucket holds under one token after every refusal.
//! Call an admission *tight* when the request before it (in send order) was
//! refused: the level crossed one token at some moment `c` between those two
//! sends. Between the crossings `c₁` and `cₙ` of two tight admissions the
//! bucket refilled R·(cₙ − c₁) tokens and gave out exactly the n − 1
//! admissions between them (plus any overflow W, impossible unless a gap
//! between requests lets a drained bucket fill to B again), so
//!
//! ```text
//!     R = (n − 1 + W) / (cₙ − c₁),   c₁ ∈ (p₁, a₁],  cₙ ∈ (pₙ, aₙ]
//! ```
//!
//! with p the refused send and a the admitted one. That gives the rate's
//! bounds directly — no bins (so no aliasing with the bin width), no residual
//! model (so no autocorrelation to get wrong), whatever the arrival process.
//!
//! The burst. For any two admissions s ≤ t, A[s, t] − R·(t − s) ≤ level(s) ≤
//! B: no stretch can admit more than a full bucket plus its refill. The
//! bucket was full after the idle wait; from its last full moment to any
//! later tight admission t the bound is met to within the level left after t
//! (under R·(aₜ − pₜ)). So B̂(R) = max over s ≤ t of A[s, t] − R·(t − s),
//! decreasing in R, brackets B between B̂(R_high) and B̂(R_low) plus the
//! smallest such leftover (Kadane's maximum-subarray recurrence, O(n)).
//!
//! Timing: the client knows when it sent, not when the gateway received.
//! Every time is given a slack of the spread of refused requests' round
//! trips (their own network and gateway jitter, an upper bound on the
//! one-way part), on both ends of every difference.
//!
//! These are bounds that hold whenever a token bucket (or a queue, which
//! admits by arrival exactly as one; or a sliding window that does not count
//! refusals) explains the admissions, and that was full after the idle: the
//! coverage tables (docs/throttle.md, `tests/stats/throttle_stats.rs`) check them against
//! the simulator's own limiters in virtual time under even, jittered, Poisson
//! and aliasing arrivals. They are reported at the probe's 95% level.
//!
//! Not a token bucket: a fixed or sliding window admits in clumps (its whole
//! allowance at each window start, then nothing) rather than as an even
//! trickle. Over the throttled stretch, cut into spans long enough to expect
//! at least three admissions at the fitted rate, a bucket leaves no span
//! silent; a window offered 1.5–3× its rate leaves a third to two thirds of
//! them silent. Above [`WINDOW_SILENT_SHARE`] the limiter is reported as a
//! window.

/// Width of the bins the fit uses, seconds.
pub const BIN_S: f64 = 0.1;

/// Share of silent spans (no admission where the fitted rate expects three)
/// above which the admissions are too clumped for a token bucket.
pub const WINDOW_SILENT_SHARE: f64 = 0.2;

/// The sustained overload offers this many times the step rate at which
/// throttling began (itself above the refill rate): well above it, so that
/// jitter never lets the bucket fill again.
pub const OVERLOAD_FACTOR: f64 = 1.5;

/// Shortest throttled stretch a fit is attempted on, seconds.
pub const MIN_FIT_S: f64 = 0.8;

/// Fewest admissions between the first and last tight ones of a fit.
const MIN_FIT_ADMISSIONS: u64 = 3;

/// Timing slack never below this (a clock read, a scheduler's tick), s.
const MIN_TIMING_S: f64 = 50e-6;

/// Counts of one bin, by the time the request was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bin {
    pub offered: u64,
    pub admitted: u64,
    pub throttled: u64,
}

/// One constant rate the probe offered, from `start_s` to `end_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub rate_per_s: f64,
    pub start_s: f64,
    pub end_s: f64,
}

/// How a response counts for the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Admitted,
    Throttled,
    /// Neither: quota, auth, transport errors.
    Other,
}

/// One request as the client saw it (seconds on the probe's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub sent_s: f64,
    pub done_s: f64,
    pub kind: Kind,
    /// This client's requests in flight when it was sent, itself included.
    pub in_flight: u32,
}

/// Most records kept (the probe is bounded by --max-requests; this bounds
/// its memory whatever that is: 24 bytes a request, 48 MB at most).
pub const MAX_RECORDS: usize = 2_000_000;

/// Everything the probe saw, binned and request by request; times in
/// seconds from the probe's start.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub bins: Vec<Bin>,
    /// Every request (up to [`MAX_RECORDS`]), in send order.
    pub records: Vec<Record>,
    pub steps: Vec<Step>,
    pub first_throttle_s: Option<f64>,
    /// Where the throttled stretch the fit uses begins (the overload phase).
    pub fit_from_s: Option<f64>,
    /// The last send.
    pub last_sent_s: f64,
}

/// Longest timeline kept: a day of bins (the probe's bounds stop far earlier).
const MAX_BINS: usize = 864_000;

impl Timeline {
    /// Adds one answered request. Answers come nearly in send order, so the
    /// insertion that keeps `records` sorted moves a few entries at most.
    pub fn add(&mut self, record: Record) {
        let Record { sent_s, kind, .. } = record;
        if self.records.len() < MAX_RECORDS {
            let at = self.records.partition_point(|r| r.sent_s <= sent_s);
            self.records.insert(at, record);
        }
        let index = ((sent_s.max(0.0) / BIN_S) as usize).min(MAX_BINS);
        if self.bins.len() <= index {
            self.bins.resize(index + 1, Bin::default());
        }
        let bin = &mut self.bins[index];
        bin.offered += 1;
        match kind {
            Kind::Admitted => bin.admitted += 1,
            Kind::Throttled => {
                bin.throttled += 1;
                if self.first_throttle_s.is_none_or(|first| sent_s < first) {
                    self.first_throttle_s = Some(sent_s);
                }
            }
            Kind::Other => {}
        }
        self.last_sent_s = self.last_sent_s.max(sent_s);
    }

    /// Totals over `[start_s, end_s)`, to the nearest bin boundaries.
    pub fn totals(&self, start_s: f64, end_s: f64) -> Bin {
        let first = ((start_s / BIN_S).round().max(0.0) as usize).min(self.bins.len());
        let last = ((end_s / BIN_S).round().max(0.0) as usize).min(self.bins.len());
        let mut total = Bin::default();
        for bin in &self.bins[first..last.max(first)] {
            total.offered += bin.offered;
            total.admitted += bin.admitted;
            total.throttled += bin.throttled;
        }
        total
    }

    /// Per-second offered / admitted / throttled.
    pub fn per_second(&self) -> Vec<Bin> {
        let per = (1.0 / BIN_S).round() as usize;
        self.bins
            .chunks(per)
            .map(|chunk| {
                chunk.iter().fold(Bin::default(), |total, bin| Bin {
                    offered: total.offered + bin.offered,
                    admitted: total.admitted + bin.admitted,
                    throttled: total.throttled + bin.throttled,
                })
            })
            .collect()
    }

    /// The highest step rate that saw under 1% of its requests throttled.
    pub fn knee(&self) -> Option<f64> {
        self.knee_below(f64::INFINITY)
    }

    /// The lowest step rate that saw 1% or more of its requests throttled.
    pub fn refused_from(&self) -> Option<f64> {
        self.steps
            .iter()
            .filter(|step| {
                let totals = self.totals(step.start_s, step.end_s);
                totals.offered > 0 && (totals.throttled as f64) >= 0.01 * totals.offered as f64
            })
            .map(|step| step.rate_per_s)
            .reduce(f64::min)
    }

    /// [`Timeline::knee`] among the steps below `rate`.
    pub fn knee_below(&self, rate: f64) -> Option<f64> {
        self.steps
            .iter()
            .filter(|step| step.rate_per_s < rate)
            .filter_map(|step| {
                let totals = self.totals(step.start_s, step.end_s);
                (totals.offered > 0 && (totals.throttled as f64) < 0.01 * totals.offered as f64)
                    .then_some(step.rate_per_s)
            })
            .reduce(f64::max)
    }
}

/// A value with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimated {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimated {
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    TokenBucket,
    Window,
}

impl Model {
    pub fn as_str(self) -> &'static str {
        match self {
            Model::TokenBucket => "token_bucket",
            Model::Window => "window",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub rate: Estimated,
    pub burst: Estimated,
    /// When the bucket began to drain (s), and what had been admitted by then.
    pub drain_start_s: f64,
    pub admitted_before_drain: u64,
    pub bins: usize,
    /// Admissions between the first and last tight ones, both included.
    pub admissions: u64,
    /// The timing slack given to every send time (s).
    pub timing_s: f64,
    /// Share of spans (expecting three admissions each) with none.
    pub silent_share: f64,
    pub model: Model,
    /// The shortest refused-to-admitted gap among the tight admissions (s).
    pub smallest_gap_s: f64,
}

impl Fit {
    /// The half-width of the burst's interval that timing alone forces,
    /// however long the overload: its bounds widen by 2·R·timing below and
    /// by R·(gap + 4·timing) above, and more data shrinks neither (only the
    /// rate's share of the width).
    pub fn burst_timing_floor(&self) -> f64 {
        self.rate.high * (3.0 * self.timing_s + 0.5 * self.smallest_gap_s)
    }
}

/// A tight admission: the refused send before it (p) and its own (a), and
/// how many admissions of the stretch came before it.
#[derive(Debug, Clone, Copy)]
struct Tight {
    refused_s: f64,
    admitted_s: f64,
    before: u64,
}

impl Tight {
    fn gap_s(&self) -> f64 {
        self.admitted_s - self.refused_s
    }
}

/// How far a send time may be from the gateway's arrival time: the spread
/// of refused requests' round trips (their 99th percentile over their
/// fastest), never under [`MIN_TIMING_S`].
pub fn timing_slack(records: &[Record]) -> f64 {
    let mut trips: Vec<f64> = records
        .iter()
        .filter(|r| r.kind == Kind::Throttled)
        .map(|r| (r.done_s - r.sent_s).max(0.0))
        .collect();
    if trips.len() < 2 {
        return MIN_TIMING_S;
    }
    trips.sort_by(f64::total_cmp);
    let high = trips[((trips.len() - 1) as f64 * 0.99).round() as usize];
    (high - trips[0]).max(MIN_TIMING_S)
}

/// max over admissions s ≤ t of A[s, t] − rate·(t − s): the most a bucket
/// refilled at `rate` must have held at some moment. Returns it with the
/// time of s and the admissions before s.
fn excess(admitted_s: &[f64], rate: f64) -> (f64, f64, u64) {
    let (mut best, mut best_s, mut best_before) = (f64::NEG_INFINITY, 0.0, 0);
    let (mut lowest, mut lowest_s, mut lowest_before) = (f64::INFINITY, 0.0, 0);
    for (before, &at) in admitted_s.iter().enumerate() {
        let start = before as f64 - rate * at;
        if start < lowest {
            (lowest, lowest_s, lowest_before) = (start, at, before as u64);
        }
        let value = (before + 1) as f64 - rate * at - lowest;
        if value > best {
            (best, best_s, best_before) = (value, lowest_s, lowest_before);
        }
    }
    (best.max(0.0), best_s, best_before)
}

/// For each admission t: max over admissions s ≤ t of A[s, t] − rate·(t − s).
fn excess_ending(admitted_s: &[f64], rate: f64) -> Vec<f64> {
    let mut lowest = f64::INFINITY;
    admitted_s
        .iter()
        .enumerate()
        .map(|(before, &at)| {
            lowest = lowest.min(before as f64 - rate * at);
            (before + 1) as f64 - rate * at - lowest
        })
        .collect()
}

/// Fits the throttled stretch of the timeline (see the module's text),
/// using requests sent by `final_before_s` (later ones may still be in
/// flight). `None` until the stretch holds two tight admissions far enough
/// apart; the confidence is the level the bounds are reported at.
/// Long because it is one estimator read top to bottom: select the stretch,
/// the tight admissions, the slope and intercept bounds and the silent
/// share, each step using the previous one's locals; split, it would pass
/// a dozen values between pieces that mean nothing alone.
pub fn fit(timeline: &Timeline, final_before_s: f64, _confidence: f64) -> Option<Fit> {
    let from_s = timeline.fit_from_s.or(timeline.first_throttle_s)?;
    let until_s = final_before_s.min(timeline.last_sent_s);
    if until_s - from_s < MIN_FIT_S {
        return None;
    }
    let records = &timeline.records;
    let end = records.partition_point(|r| r.sent_s <= until_s);
    let stretch_from = records.partition_point(|r| r.sent_s < from_s);
    let stretch = &records[stretch_from..end];
    let timing_s = timing_slack(stretch);

    // The tight admissions of the stretch, and the gaps that could let the
    // bucket overflow. The refused send that brackets a crossing is the
    // latest one sent more than the timing slack before the admission: it
    // surely reached the gateway first, whatever the reordering on the way.
    let mut tights: Vec<Tight> = Vec::new();
    let mut refused_s: Vec<f64> = Vec::new();
    let mut gaps: Vec<f64> = Vec::new();
    // The last request before the stretch is the first one's predecessor.
    let mut previous: Option<&Record> = records[..stretch_from]
        .iter()
        .rev()
        .find(|r| r.kind != Kind::Other);
    if let Some(before) = previous.filter(|r| r.kind == Kind::Throttled) {
        refused_s.push(before.sent_s);
    }
    let mut admitted: u64 = 0;
    for record in stretch.iter().filter(|r| r.kind != Kind::Other) {
        if let Some(before) = previous {
            gaps.push(record.sent_s - before.sent_s);
            if record.kind == Kind::Admitted && before.kind == Kind::Throttled {
                let surely_before = refused_s.partition_point(|&at| at < record.sent_s - timing_s);
                if let Some(&bracket) = surely_before.checked_sub(1).and_then(|i| refused_s.get(i))
                {
                    tights.push(Tight {
                        refused_s: bracket,
                        admitted_s: record.sent_s,
                        before: admitted,
                    });
                }
            }
        }
        match record.kind {
            Kind::Admitted => admitted += 1,
            Kind::Throttled => refused_s.push(record.sent_s),
            Kind::Other => {}
        }
        previous = Some(record);
    }
    // The narrowest bracket among the first and among the last tenth of the
    // tight admissions: a pause (between phases, say) makes a valid but
    // loose bracket that would only widen the bounds.
    let tenth = (tights.len() / 10).max(1);
    let narrowest_of = |candidates: &[Tight]| {
        candidates
            .iter()
            .copied()
            .min_by(|a, b| a.gap_s().total_cmp(&b.gap_s()))
    };
    let first = narrowest_of(&tights[..tenth])?;
    let last = narrowest_of(&tights[tights.len() - tenth..])?;
    let consumed = last.before - first.before;
    if consumed < MIN_FIT_ADMISSIONS {
        return None;
    }
    // Sends closer together than the timing slack may have reached the
    // gateway in either order: the count between two crossings is then
    // known to ±1.
    let reordered = gaps.iter().any(|&gap| gap <= timing_s);
    let count_slack = if reordered { 1.0 } else { 0.0 };
    let consumed = consumed as f64;
    let widest = last.admitted_s - first.refused_s + 2.0 * timing_s;
    let narrowest = last.refused_s - first.admitted_s - 2.0 * timing_s;
    if narrowest <= 0.0 {
        return None;
    }
    let middle =
        0.5 * (last.refused_s + last.admitted_s) - 0.5 * (first.refused_s + first.admitted_s);
    let rate_low = (consumed - count_slack) / widest;
    let rate_high_no_waste = (consumed + count_slack) / narrowest;

    // Every admission sent from the probe's start to the stretch's end.
    let admitted_s: Vec<f64> = records[..end]
        .iter()
        .filter(|r| r.kind == Kind::Admitted)
        .map(|r| r.sent_s)
        .collect();
    let smallest_gap = tights
        .iter()
        .map(Tight::gap_s)
        .fold(f64::INFINITY, f64::min);
    let burst_low_no_waste =
        excess(&admitted_s, rate_high_no_waste).0 - 2.0 * rate_high_no_waste * timing_s;
    // Overflow: after a request that left under one token, a gap g can
    // spill 1 + R·g − B tokens once the bucket is full again.
    let waste: f64 = gaps
        .iter()
        .map(|gap| {
            (1.0 + rate_high_no_waste * (gap + 2.0 * timing_s) - burst_low_no_waste.max(1.0))
                .max(0.0)
        })
        .sum();
    let rate_high = (consumed + count_slack + waste) / narrowest;
    let rate = Estimated {
        estimate: (consumed / middle).clamp(rate_low, rate_high),
        low: rate_low,
        high: rate_high,
    };

    let (at_estimate, drain_start_s, admitted_before_drain) = excess(&admitted_s, rate.estimate);
    // The upper bound holds at every tight admission t after the bucket's
    // last full moment: B ≤ (best excess ending at t, at the lowest rate) +
    // the level left after t. The earliest ones feel the rate's
    // uncertainty least (it scales with t − s).
    let ending = excess_ending(&admitted_s, rate.low);
    let burst_high = tights
        .iter()
        .filter_map(|tight| {
            let index = admitted_s.partition_point(|&at| at < tight.admitted_s);
            ending.get(index).map(|value| {
                value + rate.high * (tight.gap_s() + 2.0 * timing_s) + 2.0 * rate.high * timing_s
            })
        })
        .fold(f64::INFINITY, f64::min);
    let burst_low = (excess(&admitted_s, rate.high).0 - 2.0 * rate.high * timing_s).max(0.0);
    let burst = Estimated {
        estimate: (at_estimate + 0.5 * rate.estimate * smallest_gap)
            .clamp(burst_low, burst_high.max(burst_low)),
        low: burst_low,
        high: burst_high.max(burst_low),
    };

    // The clumping test, on the stretch's bins.
    let first_bin = (from_s / BIN_S).ceil() as usize;
    let last_bin = ((until_s / BIN_S).floor() as usize).min(timeline.bins.len());
    let per_bin: Vec<u64> = timeline
        .bins
        .get(first_bin..last_bin.max(first_bin))
        .unwrap_or(&[])
        .iter()
        .map(|bin| bin.admitted)
        .collect();
    let silent_share = silent_share(&per_bin, rate.estimate);
    Some(Fit {
        rate,
        burst,
        drain_start_s,
        admitted_before_drain,
        bins: per_bin.len(),
        admissions: consumed as u64 + 1,
        timing_s,
        silent_share,
        smallest_gap_s: smallest_gap,
        model: if silent_share > WINDOW_SILENT_SHARE {
            Model::Window
        } else {
            Model::TokenBucket
        },
    })
}

/// Share of spans with no admission, the spans being whole bins long enough
/// to expect at least three admissions at `rate`.
fn silent_share(per_bin: &[u64], rate: f64) -> f64 {
    let per_span = (3.0 / (rate * BIN_S).max(1e-9)).ceil().max(1.0) as usize;
    let spans: Vec<u64> = per_bin
        .chunks_exact(per_span)
        .map(|chunk| chunk.iter().sum())
        .collect();
    if spans.is_empty() {
        return 0.0;
    }
    spans.iter().filter(|&&admitted| admitted == 0).count() as f64 / spans.len() as f64
}

#[cfg(test)]
mod tests {
    //! The estimator on limiters simulated in virtual time: no network, exact
    //! clocks, the probe's own doubling schedule.
    use super::*;
    use crate::sim::bucket::{admit, Limiter};
    use crate::sim::config::Throttle;
    use std::collections::HashMap;

    /// Offers the probe's schedule (doubling from 10 rps every 0.5 s up to the
    /// first throttle, then that rate for 2 s) to `limiter`, with send-time
    /// jitter of up to `jitter_s`.
    fn probe(mut limiter: impl FnMut(f64) -> bool, max_rate: f64, jitter_s: f64) -> Timeline {
        let mut timeline = Timeline::default();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut jitter = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 10_000) as f64 / 10_000.0 * jitter_s
        };
        // One held step: its jittered sends reach the limiter in time order,
        // as they would; true when any was throttled.
        let mut hold = |timeline: &mut Timeline, rate: f64, start: f64, seconds: f64| {
            let mut sends: Vec<f64> = (0..(rate * seconds).round() as u64)
                .map(|k| start + k as f64 / rate + jitter())
                .collect();
            sends.sort_by(f64::total_cmp);
            let mut throttled = false;
            for sent in sends {
                let admitted = limiter(sent);
                throttled |= !admitted;
                let kind = if admitted {
                    Kind::Admitted
                } else {
                    Kind::Throttled
                };
                timeline.add(record(sent, kind));
            }
            timeline.steps.push(Step {
                rate_per_s: rate,
                start_s: start,
                end_s: start + seconds,
            });
            throttled
        };
        let (mut rate, mut start): (f64, f64) = (10.0, 0.0);
        loop {
            let throttled = hold(&mut timeline, rate, start, 0.5);
            start += 0.5;
            if throttled {
                break;
            }
            rate = (rate * 2.0).min(max_rate);
        }
        timeline.fit_from_s = Some(start);
        hold(
            &mut timeline,
            (rate * OVERLOAD_FACTOR).min(max_rate),
            start,
            2.0,
        );
        timeline
    }

    fn record(sent_s: f64, kind: Kind) -> Record {
        Record {
            sent_s,
            done_s: sent_s + 0.001,
            kind,
            in_flight: 1,
        }
    }

    fn bucket(rate: f64, burst: u64) -> impl FnMut(f64) -> bool {
        let mut buckets =
            HashMap::from([((), Limiter::new(Throttle::token_bucket(rate, burst), 0.0))]);
        move |now| admit(&mut buckets, &[()], now).is_some()
    }

    #[test]
    fn token_buckets_are_recovered_with_intervals_that_cover_them() {
        for (rate, burst) in [
            (50.0, 10),
            (200.0, 100),
            (1000.0, 500),
            (20.0, 5),
            (300.0, 2),
        ] {
            for jitter_s in [0.0, 0.002] {
                let timeline = probe(bucket(rate, burst), 8000.0, jitter_s);
                let fit = fit(&timeline, f64::INFINITY, 0.95).unwrap();
                let what = format!("R={rate} B={burst} jitter={jitter_s}: {fit:?}");
                assert_eq!(fit.model, Model::TokenBucket, "{what}");
                assert!((fit.rate.estimate / rate - 1.0).abs() < 0.02, "{what}");
                if burst < 5 && jitter_s > 0.0 {
                    // A bucket of 2 under send jitter close to the spacing of
                    // requests overflows now and then: a little low, beyond
                    // what the intervals (which assume none) cover.
                    assert!((fit.burst.estimate - burst as f64).abs() <= 1.5, "{what}");
                    continue;
                }
                assert!((fit.burst.estimate - burst as f64).abs() <= 1.0, "{what}");
                assert!(fit.rate.low <= rate && rate <= fit.rate.high, "{what}");
                assert!(
                    fit.burst.low <= burst as f64 && burst as f64 <= fit.burst.high,
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn a_fixed_window_is_not_a_token_bucket() {
        // 50 per aligned second.
        let mut used = (0_i64, 0_u32);
        let window = move |now: f64| {
            let second = now.floor() as i64;
            if second != used.0 {
                used = (second, 0);
            }
            used.1 += 1;
            used.1 <= 50
        };
        let timeline = probe(window, 8000.0, 0.0);
        let fit = fit(&timeline, f64::INFINITY, 0.95).unwrap();
        assert_eq!(fit.model, Model::Window, "{fit:?}");
    }

    #[test]
    fn knee_and_series() {
        let timeline = probe(bucket(50.0, 10), 8000.0, 0.0);
        // 10, 20, 40 pass; 80 throttles.
        assert_eq!(timeline.knee(), Some(40.0));
        let seconds = timeline.per_second();
        let offered: u64 = seconds.iter().map(|s| s.offered).sum();
        assert_eq!(
            offered,
            timeline.bins.iter().map(|b| b.offered).sum::<u64>()
        );
    }
}
