//! From what the probe saw to a limiter: the rate and burst of a token bucket
//! with intervals, the knee, and whether a token bucket explains it at all.
//!
//! The model. A token bucket of `burst` B refilled at `rate` R, full at time
//! s and offered more than R from then on, admits
//!
//! ```text
//!     admitted(s, t] = B + R·(t − s) − level(t)
//! ```
//!
//! where `level(t)` — the tokens left — stays in [0, 1) once requests are
//! throttled (every refilled token is taken by the next arrival; none
//! overflows, because the bucket never fills again). So, once throttled, the
//! cumulative admitted count is a straight line: its slope is R, and its
//! height at s, minus what had been admitted by s, is B less the mean
//! leftover fraction of a token (½). The probe fits that line by ordinary
//! least squares on the cumulative count at the end of each 100 ms bin, and
//! takes s as the start of the first probe step offered faster than the
//! fitted R (before it the bucket stayed full: each token taken was refilled
//! before the next request came).
//!
//! The intervals are the OLS ones (Student t), with the residual spread
//! floored at a count's rounding (1/√12): a token bucket's residuals are that
//! rounding plus the network's jitter, not a random walk.
//!
//! Not a token bucket: a fixed or sliding window admits in clumps (its whole
//! allowance at each window start, then nothing) rather than as an even
//! trickle. Over the throttled stretch, cut into spans long enough to expect
//! at least three admissions at the fitted rate, a bucket leaves no span
//! silent; a window offered 1.5–3× its rate leaves a third to two thirds of
//! them silent. Above [`WINDOW_SILENT_SHARE`] the limiter is reported as a
//! window.
use crate::stats::line::LineFit;

/// Width of the bins the fit uses, seconds.
pub const BIN_S: f64 = 0.1;

/// Share of silent spans (no admission where the fitted rate expects three)
/// above which the admissions are too clumped for a token bucket.
pub const WINDOW_SILENT_SHARE: f64 = 0.2;

/// The sustained overload offers this many times the step rate at which
/// throttling began (itself above the refill rate): well above it, so that
/// jitter never lets the bucket fill again.
pub const OVERLOAD_FACTOR: f64 = 1.5;

/// Fewest bins of throttled traffic before a fit is attempted.
pub const MIN_FIT_BINS: usize = 8;

/// Tokens left over while throttled, on average: the level climbs from
/// [0, R/λ) after each admission to [1, 1 + R/λ) at the next, so its mean is
/// ½ + R/(2λ) for an overload of λ.
fn leftover(rate: f64, offered: f64) -> f64 {
    0.5 + 0.5 * (rate / offered).clamp(0.0, 1.0)
}

/// Where the leftover really is within its range is unknown: the burst's
/// interval is widened by this much on each side.
const LEFTOVER_SPREAD: f64 = 0.5;

/// A count's rounding, as a standard deviation.
const ROUNDING_SD: f64 = 0.288_675_134_594_812_9;

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

/// Everything the probe saw, binned; times in seconds from the probe's start.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub bins: Vec<Bin>,
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
    pub fn add(&mut self, sent_s: f64, kind: Kind) {
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

    /// Admitted requests sent before `t_s` (to the bin boundary at or after it).
    fn admitted_before(&self, t_s: f64) -> u64 {
        let bins = ((t_s / BIN_S).round().max(0.0) as usize).min(self.bins.len());
        self.bins[..bins].iter().map(|bin| bin.admitted).sum()
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
        self.steps
            .iter()
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
    /// Share of spans (expecting three admissions each) with none.
    pub silent_share: f64,
    pub model: Model,
}

/// Fits the throttled stretch of the timeline, using bins that end by
/// `final_before_s` (later ones may still have requests in flight).
pub fn fit(timeline: &Timeline, final_before_s: f64, confidence: f64) -> Option<Fit> {
    let from_s = timeline.fit_from_s.or(timeline.first_throttle_s)?;
    let until_s = final_before_s.min(timeline.last_sent_s);
    let first = (from_s / BIN_S).ceil() as usize;
    let mut cumulative: u64 = timeline.bins[..first.min(timeline.bins.len())]
        .iter()
        .map(|bin| bin.admitted)
        .sum();
    let mut points = Vec::new();
    let mut per_bin = Vec::new();
    for (index, bin) in timeline.bins.iter().enumerate().skip(first) {
        let end_s = (index + 1) as f64 * BIN_S;
        if end_s > until_s + 1e-9 {
            break;
        }
        cumulative += bin.admitted;
        points.push((end_s, cumulative as f64));
        per_bin.push(bin.admitted);
    }
    if points.len() < MIN_FIT_BINS {
        return None;
    }
    let line = LineFit::fit(&points)?.with_residual_floor(ROUNDING_SD);
    let (low, high) = line.slope_interval(confidence);
    let rate = Estimated {
        estimate: line.slope,
        low,
        high,
    };
    // The bucket was full until the offered rate first exceeded the refill rate.
    let first_throttle_s = timeline.first_throttle_s.unwrap_or(from_s);
    let drain_start_s = timeline
        .steps
        .iter()
        .find(|step| step.rate_per_s > rate.estimate && step.end_s > 0.0)
        .or_else(|| {
            timeline
                .steps
                .iter()
                .find(|step| step.start_s <= first_throttle_s && first_throttle_s < step.end_s)
        })
        .map(|step| step.start_s)
        .unwrap_or(0.0)
        .min(first_throttle_s);
    let admitted_before_drain = timeline.admitted_before(drain_start_s);
    let (low, high) = line.mean_interval_at(drain_start_s, confidence);
    let offered = timeline
        .steps
        .iter()
        .find(|step| step.start_s <= from_s + 1e-9 && from_s < step.end_s)
        .map_or(f64::INFINITY, |step| step.rate_per_s);
    let shift = leftover(rate.estimate, offered) - admitted_before_drain as f64;
    let burst = Estimated {
        estimate: line.at(drain_start_s) + shift,
        low: low + shift - LEFTOVER_SPREAD,
        high: high + shift + LEFTOVER_SPREAD,
    };
    let silent_share = silent_share(&per_bin, rate.estimate);
    Some(Fit {
        rate,
        burst,
        drain_start_s,
        admitted_before_drain,
        bins: points.len(),
        silent_share,
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
        let (mut rate, mut start): (f64, f64) = (10.0, 0.0);
        loop {
            let end = start + 0.5;
            let mut throttled = false;
            for k in 0..(rate * 0.5).round() as u64 {
                let sent = start + k as f64 / rate + jitter();
                let kind = if limiter(sent) {
                    Kind::Admitted
                } else {
                    throttled = true;
                    Kind::Throttled
                };
                timeline.add(sent, kind);
            }
            timeline.steps.push(Step {
                rate_per_s: rate,
                start_s: start,
                end_s: end,
            });
            start = end;
            if throttled {
                break;
            }
            rate = (rate * 2.0).min(max_rate);
        }
        timeline.fit_from_s = Some(start);
        let rate = (rate * OVERLOAD_FACTOR).min(max_rate);
        let overload_end = start + 2.0;
        for k in 0..(rate * 2.0).round() as u64 {
            let sent = start + k as f64 / rate + jitter();
            let kind = if limiter(sent) {
                Kind::Admitted
            } else {
                Kind::Throttled
            };
            timeline.add(sent, kind);
        }
        timeline.steps.push(Step {
            rate_per_s: rate,
            start_s: start,
            end_s: overload_end,
        });
        timeline
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
