//! Which kind of limiter is it? From what a client sees of every request —
//! when it was sent and answered, admitted or refused — the evidence for
//! each kind, looked at in this order:
//!
//! - **lockout** (a sliding window that counts refused requests, HAProxy's
//!   `sc_http_req_rate`): admissions stop altogether under sustained
//!   overload and come back only after the client backs off. The probe
//!   notices it as it happens ([`super`]), stops offering, and measures the
//!   recovery.
//! - **concurrency** (a Lambda function's reserved concurrency, nginx
//!   `limit_conn`): a request is refused exactly when a fixed number C of
//!   admitted ones are still in progress. Count this client's admitted
//!   requests in progress when each request was sent: refusals find C,
//!   admissions find fewer — never C. A rate limiter admits and refuses at
//!   the same counts (its in-progress count is just rate × latency).
//! - **fixed window** (Kong, most Redis limiters): admissions come in clumps
//!   at window boundaries — the limit's worth at each, then nothing — so
//!   many spans of the throttled stretch are silent where a bucket would
//!   trickle; the clumps' spacing is the window, their size the limit.
//! - **queue** (nginx `limit_req` without `nodelay`): by arrival a queue of
//!   depth D admits exactly as a token bucket of burst D + 1 (nginx's
//!   `excess` is the bucket's missing tokens), but the admitted requests
//!   *wait*: under overload their latency exceeds the unloaded one by about
//!   D ÷ rate.
//! - **token bucket**: a straight line of admitted over time with no clumps,
//!   no added latency and no fixed in-progress count (`estimate`). A sliding
//!   window that does *not* count refusals admits, once full, as evenly as a
//!   bucket of rate limit ÷ window and burst limit: from outside the two are
//!   the same limiter, and it is reported as a bucket (the evidence says so).
//! - **unknown** otherwise, with what was seen.
mod concurrency;
mod window;

pub use self::concurrency::concurrency_decided;
use self::concurrency::{concurrency, queue};
use window::{fixed_window, locked_out};

use super::estimate::{Estimated, Fit, Kind, Model, Record};
use super::gate::Parameter;

/// The limiter kinds the probe can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limiter {
    TokenBucket,
    Queue,
    FixedWindow,
    SlidingWindow,
    Concurrency,
    /// Nothing was refused.
    None,
    #[default]
    Unknown,
}

impl Limiter {
    pub const ALL: [Limiter; 7] = [
        Limiter::TokenBucket,
        Limiter::Queue,
        Limiter::FixedWindow,
        Limiter::SlidingWindow,
        Limiter::Concurrency,
        Limiter::None,
        Limiter::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Limiter::TokenBucket => "token_bucket",
            Limiter::Queue => "queue",
            Limiter::FixedWindow => "fixed_window",
            Limiter::SlidingWindow => "sliding_window",
            Limiter::Concurrency => "concurrency",
            Limiter::None => "none",
            Limiter::Unknown => "unknown",
        }
    }

    /// How the terminal names it.
    pub fn label(self) -> &'static str {
        match self {
            Limiter::TokenBucket => "token bucket",
            Limiter::Queue => "queue",
            Limiter::FixedWindow => "fixed window",
            Limiter::SlidingWindow => "sliding window",
            Limiter::Concurrency => "concurrency limit",
            Limiter::None => "no limiter",
            Limiter::Unknown => "unknown limiter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().replace('-', "_");
        Self::ALL.into_iter().find(|model| model.as_str() == text)
    }
}

/// The q-quantile of sorted values (nearest rank; 0 for none).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
}

/// A distribution-free 95% interval for the median of what `sorted` was
/// drawn from: the order statistics k and n + 1 − k with k the largest for
/// which P(Binomial(n, ½) < k) ≤ 2.5% (normal approximation with continuity
/// correction, n/2 − 0.98·√n; Conover, *Practical Nonparametric
/// Statistics*, §3.2). For fewer than 6 values, the range.
pub fn median_interval(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    if n < 6 {
        return (sorted[0], sorted[n - 1]);
    }
    let k = ((n as f64 / 2.0 - 0.98 * (n as f64).sqrt()).floor().max(1.0)) as usize;
    (sorted[k - 1], sorted[n - k])
}

/// This client's admitted requests in progress when each request reached
/// the gateway, for admissions and for refusals, each sorted: admitted
/// requests sent before it and answered more than `round_trip_s` after it
/// was sent (an answer that comes back sooner left the gateway before this
/// request got there).
pub fn in_progress(records: &[Record], round_trip_s: f64) -> (Vec<f64>, Vec<f64>) {
    let mut at_admissions = Vec::new();
    let mut at_refusals = Vec::new();
    // Records are in send order: a heap of the admitted requests' answers.
    let mut ends = std::collections::BinaryHeap::new();
    for record in records {
        while ends
            .peek()
            .is_some_and(|end: &std::cmp::Reverse<OrderedF64>| {
                end.0 .0 <= record.sent_s + round_trip_s
            })
        {
            ends.pop();
        }
        let count = ends.len() as f64;
        match record.kind {
            Kind::Admitted => {
                at_admissions.push(count);
                ends.push(std::cmp::Reverse(OrderedF64(record.done_s)));
            }
            Kind::Throttled => at_refusals.push(count),
            Kind::Other => {}
        }
    }
    at_admissions.sort_by(f64::total_cmp);
    at_refusals.sort_by(f64::total_cmp);
    (at_admissions, at_refusals)
}

/// f64 with a total order, for the heap.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedF64(f64);

impl Eq for OrderedF64 {}

impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Latency (s) of admitted requests sent in [from_s, to_s), sorted.
pub fn admitted_latencies(records: &[Record], from_s: f64, to_s: f64) -> Vec<f64> {
    let mut latencies: Vec<f64> = records
        .iter()
        .filter(|r| r.kind == Kind::Admitted && r.sent_s >= from_s && r.sent_s < to_s)
        .map(|r| r.done_s - r.sent_s)
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// A run of admissions after a span of at least a gap without one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clump {
    /// The last refused send before its first admission (the window
    /// boundary lies between the two), if any.
    pub refused_before_s: Option<f64>,
    pub start_s: f64,
    pub size: u64,
}

/// The clumps of admissions sent from `from_s` on, split by spans of at
/// least `gap_s` without an admission.
pub fn clumps(records: &[Record], from_s: f64, gap_s: f64) -> Vec<Clump> {
    let mut out: Vec<Clump> = Vec::new();
    let (mut last_admitted, mut last_refused) = (f64::NEG_INFINITY, None);
    for record in records.iter().filter(|r| r.sent_s >= from_s) {
        match record.kind {
            Kind::Admitted => {
                if out.is_empty() || record.sent_s - last_admitted >= gap_s {
                    out.push(Clump {
                        refused_before_s: last_refused,
                        start_s: record.sent_s,
                        size: 1,
                    });
                } else if let Some(clump) = out.last_mut() {
                    clump.size += 1;
                }
                last_admitted = record.sent_s;
            }
            Kind::Throttled => last_refused = Some(record.sent_s),
            Kind::Other => {}
        }
    }
    out
}

/// The clumps of admissions since `from_s` under an overload offered at
/// `offered_per_s` (the split [`fixed_window`] uses).
pub fn clumps_since(records: &[Record], from_s: f64, offered_per_s: f64) -> usize {
    clumps(records, from_s, clump_gap_s(offered_per_s)).len()
}

/// A span without admission that splits clumps: ten requests' worth (a
/// Poisson stream leaves such a gap once in 22,000), at least 50 ms.
fn clump_gap_s(offered_per_s: f64) -> f64 {
    (10.0 / offered_per_s.max(1e-9)).max(0.05)
}

/// What a lockout looked like, and what backing off showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lockout {
    /// The last admission before the silence, and when the probe gave up.
    pub silent_from_s: f64,
    pub recognised_at_s: f64,
    /// The last request of the overload.
    pub last_flood_s: f64,
    /// The overload's rate.
    pub flood_rate_per_s: f64,
    /// The last refused recovery probe and the first admitted one.
    pub last_refused_probe_s: Option<f64>,
    pub recovered_at_s: Option<f64>,
    /// Refused requests sent after the lockout was recognised.
    pub refused_after: u64,
    /// Admitted by a fast burst into the empty window (after recovery and
    /// two windows' wait): the window's limit.
    pub burst_admitted: Option<u64>,
}

/// A limiter's kind and parameters, each with an interval, and the evidence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identified {
    pub model: Limiter,
    /// The admitted rate: a bucket's or queue's refill rate, a window's
    /// limit ÷ length, a concurrency limit's C ÷ duration.
    pub rate: Option<Estimated>,
    pub burst: Option<Estimated>,
    pub queue_depth: Option<Estimated>,
    pub queue_delay_ms: Option<Estimated>,
    pub window_limit: Option<Estimated>,
    pub window_s: Option<Estimated>,
    pub counts_refused: Option<bool>,
    pub concurrency: Option<Estimated>,
    /// Median latency of admitted requests (a concurrency limit's duration).
    pub backend_ms: Option<f64>,
    /// How each interval was made, for the report.
    pub interval_kind: Vec<(&'static str, &'static str)>,
    pub evidence: Vec<String>,
}

impl Identified {
    /// The estimate of a parameter the gates compare.
    pub fn estimate(&self, parameter: Parameter) -> Option<Estimated> {
        match parameter {
            Parameter::Rate => self.rate,
            Parameter::Burst => self.burst,
            Parameter::Concurrency => self.concurrency,
            Parameter::WindowLimit => self.window_limit,
            Parameter::Window => self.window_s,
            Parameter::QueueDepth => self.queue_depth,
        }
    }
}

/// What the probe saw, for [`identify`].
pub struct Seen<'a> {
    /// Every request, in send order.
    pub records: &'a [Record],
    pub fit: Option<&'a Fit>,
    /// When the sustained overload began (s), and its rate.
    pub overload: Option<(f64, f64)>,
    /// When the first step of the search ended (its latency is the unloaded one).
    pub first_step_end_s: f64,
    pub lockout: Option<Lockout>,
}

const fn estimated(estimate: f64, low: f64, high: f64) -> Estimated {
    Estimated {
        estimate,
        low,
        high,
    }
}

/// How the intervals are made (the report's `interval_kind`).
const BOUNDS: &str =
    "token-counting bounds between tight admissions (hold whenever the model does)";
const QUEUED: &str = "the delay's 95% median interval times the rate's interval, plus the one request's slot a newcomer may find part-leaked";
const MEDIAN: &str = "distribution-free 95% interval for a median (binomial order statistics)";
const RECOVERY: &str = "bracketed by the recovery: a sliding log frees up W − L/λ after the overload, a two-window counter up to 2W";
const REPLAY: &str = "the limits and window lengths whose replay through the counter reproduces every admission and refusal seen (to within one request)";

/// Decides the kind of limiter and its parameters (see the module's text).
pub fn identify(seen: &Seen<'_>) -> Identified {
    let records = seen.records;
    let refused = records.iter().filter(|r| r.kind == Kind::Throttled).count();
    let admitted = records.iter().filter(|r| r.kind == Kind::Admitted).count();
    let mut found = Identified::default();
    let all_latencies = admitted_latencies(records, f64::NEG_INFINITY, f64::INFINITY);
    found.backend_ms =
        (!all_latencies.is_empty()).then(|| percentile_sorted(&all_latencies, 0.5) * 1000.0);
    if refused == 0 {
        found.model = Limiter::None;
        found
            .evidence
            .push(format!("no request of {} was refused", records.len()));
        return found;
    }
    if let Some(lockout) = seen.lockout {
        locked_out(records, &lockout, &mut found);
        return found;
    }
    let unloaded = admitted_latencies(records, f64::NEG_INFINITY, seen.first_step_end_s);
    let unloaded_s = percentile_sorted(
        if unloaded.is_empty() {
            &all_latencies
        } else {
            &unloaded
        },
        0.5,
    );
    let overload_from = seen
        .overload
        .map(|(from, _)| from)
        .or(seen.fit.map(|fit| fit.drain_start_s));
    // A queue holds a fixed number in progress too (Little's law): what
    // tells it from a concurrency limit is that its admitted requests wait
    // longer under overload than unloaded, where a concurrency limit's take
    // the backend's time at any load.
    if let (Some(fit), Some(from)) = (seen.fit, overload_from) {
        if fit.model != Model::Window && queue(records, fit, from, unloaded_s, &mut found) {
            return found;
        }
    }
    if concurrency(records, overload_from.unwrap_or(0.0), &mut found) {
        return found;
    }
    let Some(fit) = seen.fit else {
        found.evidence.push(format!(
            "{refused} requests were refused and {admitted} admitted, but the overload was too \
             short (or admitted too few) to measure a rate"
        ));
        return found;
    };
    let overload_from = overload_from.unwrap_or(fit.drain_start_s);
    if fit.model == Model::Window {
        let rate = seen.overload.map_or(100.0, |(_, rate)| rate);
        fixed_window(records, fit, overload_from, rate, &mut found);
        return found;
    }
    if !(fit.rate.estimate > 0.0 && fit.rate.estimate.is_finite()) {
        found.evidence.push(format!(
            "the admissions under overload fit no bucket (rate {:.2} rps)",
            fit.rate.estimate
        ));
        return found;
    }
    found.rate = Some(fit.rate);
    found.interval_kind.push(("rate_per_s", BOUNDS));
    found.model = Limiter::TokenBucket;
    found.burst = Some(fit.burst);
    found.interval_kind.push(("burst", BOUNDS));
    found.evidence.push(format!(
        "under overload {} admissions came as an even trickle ({:.0}% of spans silent), with no \
         added latency and no fixed count in progress: a token bucket (or a sliding window that \
         does not count refusals, which admits alike)",
        fit.admissions,
        fit.silent_share * 100.0
    ));
    found
}

#[cfg(test)]
mod tests {
    use super::window::replay_window;
    use super::*;

    fn record(sent_s: f64, done_s: f64, kind: Kind) -> Record {
        Record {
            sent_s,
            done_s,
            kind,
            in_flight: 0,
        }
    }

    #[test]
    fn refusals_at_a_fixed_count_in_progress() {
        // Four slots of 100 ms; a request every 10 ms.
        let mut records = Vec::new();
        let mut busy_until = [0.0_f64; 4];
        for i in 0..400 {
            let at = i as f64 * 0.01;
            if let Some(slot) = busy_until.iter_mut().find(|end| **end <= at) {
                *slot = at + 0.1;
                records.push(record(at, at + 0.1, Kind::Admitted));
            } else {
                records.push(record(at, at + 0.001, Kind::Throttled));
            }
        }
        let (admissions, refusals) = in_progress(&records, 0.0);
        assert_eq!(percentile_sorted(&refusals, 0.5), 4.0);
        assert!(admissions.iter().all(|&count| count < 4.0));
    }

    #[test]
    fn clumps_follow_refusals() {
        let mut records = Vec::new();
        for window in 0..5 {
            for i in 0..100 {
                let at = window as f64 + i as f64 * 0.005;
                let kind = if i < 20 {
                    Kind::Admitted
                } else {
                    Kind::Throttled
                };
                records.push(record(at, at + 0.001, kind));
            }
        }
        let found = clumps(&records, 0.0, 0.2);
        assert_eq!(found.len(), 5);
        assert!(found.iter().all(|clump| clump.size == 20));
        assert_eq!(found[0].refused_before_s, None);
        assert!((found[1].refused_before_s.unwrap() - 0.495).abs() < 1e-9);
    }

    #[test]
    fn the_median_interval_matches_order_statistics() {
        // n = 100: k = floor(50 − 9.8) = 40, so the 40th and 61st values
        // (SciPy: binom.ppf(0.025, 100, 0.5) = 40).
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median_interval(&values), (40.0, 61.0));
        assert_eq!(median_interval(&[3.0, 5.0]), (3.0, 5.0));
    }

    #[test]
    fn replaying_the_sends_finds_a_two_window_counters_length() {
        use crate::sim::bucket::{admit, Limiter};
        use crate::sim::config::{LimiterKind, Throttle};
        for (limit, window_s, phase_s) in [(80_u64, 1.0, 0.0), (50, 2.0, 0.7), (200, 0.5, 0.3)] {
            let throttle = Throttle {
                kind: LimiterKind::SlidingWindow,
                limit,
                window_s,
                counts_refused: true,
                ..Throttle::token_bucket(0.0, 0)
            };
            let mut limiters = std::collections::HashMap::from([((), Limiter::new(throttle, 0.0))]);
            let mut records = Vec::new();
            // Doubling steps, an overload, a pause, sparse probes, a burst.
            let rate_of = limit as f64 / window_s;
            let mut at = phase_s + 0.01;
            let mut send = |at: f64, records: &mut Vec<Record>| {
                let kind = if admit(&mut limiters, &[()], at).is_some() {
                    Kind::Admitted
                } else {
                    Kind::Throttled
                };
                records.push(record(at, at + 0.001, kind));
            };
            for factor in [0.25, 0.5, 1.0, 2.0, 3.0] {
                let end = at + window_s;
                while at < end {
                    send(at, &mut records);
                    at += 1.0 / (rate_of * factor);
                }
            }
            at += 2.5 * window_s;
            for _ in 0..limit + 5 {
                send(at, &mut records);
                at += 0.25 / rate_of;
            }
            let replayed = replay_window(
                &records,
                limit - 7..=limit + 2,
                0.3 * window_s,
                3.0 * window_s,
            )
            .expect("a window explains the sends");
            let found = replayed.window;
            let counted = replayed.limit;
            assert!(
                counted.low <= limit as f64 && limit as f64 <= counted.high,
                "{counted:?} vs {limit}"
            );
            assert!(
                found.low <= window_s && window_s <= found.high,
                "{found:?} vs {window_s}"
            );
            // Within the acceptance's ±10% (these few sends leave a span of
            // lengths that fit exactly; the estimate is its middle).
            assert!(
                (found.estimate / window_s - 1.0).abs() < 0.10,
                "{found:?} vs {window_s}"
            );
        }
    }

    #[test]
    fn models_parse_from_their_names() {
        for model in Limiter::ALL {
            assert_eq!(Limiter::parse(model.as_str()), Some(model));
        }
        assert_eq!(Limiter::parse("fixed-window"), Some(Limiter::FixedWindow));
        assert_eq!(Limiter::parse("bucket"), None);
    }
    /// A queue whose fit leaves the depth wide (answers that bunch) takes
    /// its depth from delay × rate, and that interval holds the truth: a
    /// queue of 30 at 60 r/s delays each admission by 0.48–0.5 s.
    #[test]
    fn a_queue_depth_from_its_delay_when_the_fit_is_loose() {
        let mut records = Vec::new();
        for i in 0..600 {
            let sent = 1.0 + i as f64 / 120.0;
            let wait = 0.5 - (i % 7) as f64 / 7.0 / 60.0;
            let kind = if i % 2 == 0 {
                Kind::Admitted
            } else {
                Kind::Throttled
            };
            records.push(record(sent, sent + 0.002 + wait, kind));
        }
        let fit = Fit {
            rate: Estimated {
                estimate: 60.0,
                low: 59.9,
                high: 60.1,
            },
            burst: Estimated {
                estimate: 40.0,
                low: 23.9,
                high: 62.2,
            },
            drain_start_s: 1.0,
            admitted_before_drain: 0,
            bins: 10,
            admissions: 300,
            timing_s: 0.001,
            silent_share: 0.0,
            model: crate::throttle::estimate::Model::TokenBucket,
            smallest_gap_s: 0.001,
        };
        let mut found = Identified::default();
        assert!(queue(&records, &fit, 1.0, 0.002, &mut found));
        let depth = found.queue_depth.unwrap();
        assert!(depth.low <= 30.0 && 30.0 <= depth.high, "{depth:?}");
        assert!((depth.estimate - 30.0).abs() <= 2.0, "{depth:?}");
        assert!(depth.high - depth.low < 3.0, "{depth:?}");
        assert!(found.interval_kind.contains(&("queue_depth", QUEUED)));
        // With a tight fit, the fit's bounds stay.
        let tight = Fit {
            burst: Estimated {
                estimate: 31.1,
                low: 30.8,
                high: 31.4,
            },
            ..fit
        };
        let mut found = Identified::default();
        assert!(queue(&records, &tight, 1.0, 0.002, &mut found));
        assert!(found.interval_kind.contains(&("queue_depth", BOUNDS)));
        assert!((found.queue_depth.unwrap().estimate - 30.1).abs() < 1e-9);
    }
}
