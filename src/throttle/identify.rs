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

/// A lockout: the window from the recovery, the limit from what was sent
/// within one window before the first refusal.
/// Long because the window and the limit of a lockout are measured from the
/// same few instants (the flood, the silence, the recovery) in sequence.
fn locked_out(records: &[Record], lockout: &Lockout, found: &mut Identified) {
    found.model = Limiter::SlidingWindow;
    found.counts_refused = Some(true);
    found.evidence.push(format!(
        "under sustained overload no request was admitted for {:.2} s: a limiter that counts \
         refused requests locked this client out; the probe backed off at once ({} refused \
         requests after that)",
        lockout.recognised_at_s - lockout.silent_from_s,
        lockout.refused_after
    ));
    let Some(recovered) = lockout.recovered_at_s else {
        found.evidence.push(
            "the probe's bounds ended before the limiter let a request through again: the \
             window's length is unknown"
                .to_string(),
        );
        return;
    };
    // Once the overload stops, the count of its requests within the last W
    // seconds drops under the limit L after W − L/λ (a sliding log); a
    // two-window estimate (HAProxy's) can take up to twice the window. So
    // W lies in [D/2, D + L/λ] for the recovery delay D.
    let since = |t: f64| (t - lockout.last_flood_s).max(0.0);
    let (low_delay, high_delay) = (
        lockout.last_refused_probe_s.map_or(0.0, since),
        since(recovered),
    );
    let flood = lockout.flood_rate_per_s.max(1e-9);
    // The limit: what the burst into an empty window admitted, else what
    // was sent within a window before the first refusal.
    let first_refusal = records
        .iter()
        .find(|r| r.kind == Kind::Throttled)
        .map_or(0.0, |r| r.sent_s);
    let sent_within = |window: f64| {
        records
            .iter()
            .filter(|r| {
                r.kind != Kind::Other
                    && r.sent_s < first_refusal
                    && r.sent_s >= first_refusal - window
            })
            .count() as f64
    };
    let middle_delay = 0.5 * (low_delay + high_delay);
    let limit = match lockout.burst_admitted {
        Some(admitted) => estimated(admitted as f64, admitted as f64, admitted as f64),
        None => {
            let guess = middle_delay + sent_within(middle_delay) / flood;
            estimated(
                sent_within(guess),
                sent_within(0.5 * low_delay),
                sent_within(2.0 * high_delay),
            )
        }
    };
    let bracket = estimated(
        middle_delay + limit.estimate / flood,
        (0.5 * low_delay).max(0.001),
        high_delay + limit.high / flood,
    );
    // With the limit counted, replaying the client's own sends through each
    // window length in the bracket (and each limit the burst's count allows)
    // finds the ones that explain every admission and refusal it saw.
    let replayed = lockout.burst_admitted.and_then(|admitted| {
        let straddle = admitted / 16 + 2;
        replay_window(
            records,
            admitted.saturating_sub(straddle).max(1)..=admitted,
            bracket.low,
            bracket.high,
        )
    });
    let (limit, window) = replayed.map_or((limit, bracket), |found| (found.limit, found.window));
    found.window_s = Some(window);
    found.window_limit = Some(limit);
    found.rate = Some(estimated(
        limit.estimate / window.estimate,
        limit.low / window.high,
        limit.high / window.low,
    ));
    found.interval_kind.push((
        "window_s",
        if replayed.is_some() { REPLAY } else { RECOVERY },
    ));
    found.interval_kind.push((
        "window_limit",
        match (replayed, lockout.burst_admitted) {
            (Some(_), _) => REPLAY,
            (None, Some(_)) => "counted: admitted by a burst into the empty window",
            (None, None) => "requests sent within the window's bracket before the first refusal",
        },
    ));
    found.evidence.push(format!(
        "after backing off, the first admission came {high_delay:.2} s after the last request \
         of the overload (the last refused probe {low_delay:.2} s after it){}",
        lockout.burst_admitted.map_or(String::new(), |admitted| format!(
            "; two windows later a fast burst into the empty window admitted {admitted} before its first refusal"
        ))
    ));
    if let Some(Replayed { counter, .. }) = replayed {
        found.evidence.push(format!(
            "replaying this client's {} sends through a {counter} reproduces every admission \
             and refusal for limits of {:.0}–{:.0} per window and windows of {:.3}–{:.3} s",
            records.len(),
            limit.low,
            limit.high,
            window.low,
            window.high,
        ));
    }
}

/// How a sliding window counts what it has seen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Counter {
    /// Every request within the last W seconds (a sliding log).
    Log,
    /// HAProxy's `freq_ctr`: this window's count plus the previous one's
    /// weighted by the share of W not yet elapsed, windows on a fixed phase.
    TwoWindow { phase_s: f64 },
}

/// Requests (refusals too) whose replay through `counter` of length `window`
/// with `limit` disagrees with what was seen: refused when the count with
/// the request itself passes the limit. Counting stops past `cap` (the
/// caller has a better fit already): returns `cap + 1` then.
fn mismatches(
    sends: &[(f64, bool)],
    limit: f64,
    window: f64,
    counter: Counter,
    cap: usize,
) -> usize {
    let mut wrong = 0;
    match counter {
        Counter::Log => {
            let mut oldest = 0;
            for (index, &(at, admitted)) in sends.iter().enumerate() {
                while sends[oldest].0 <= at - window {
                    oldest += 1;
                }
                let count = (index - oldest + 1) as f64;
                wrong += usize::from((count <= limit) != admitted);
                if wrong > cap {
                    return wrong;
                }
            }
        }
        Counter::TwoWindow { phase_s } => {
            let (mut current_index, mut current, mut previous) = (i64::MIN, 0.0, 0.0);
            let per_window = 1.0 / window;
            for &(at, admitted) in sends {
                let position = (at - phase_s) * per_window;
                // floor and fract without libm calls (this loop is the
                // replay's whole cost); an exactly integral negative position
                // lands one window early, which no send time makes matter.
                let index = position as i64 - i64::from(position < 0.0);
                let fract = position - index as f64;
                if index != current_index {
                    previous = if index == current_index.wrapping_add(1) {
                        current
                    } else {
                        0.0
                    };
                    current = 0.0;
                    current_index = index;
                }
                let count = current + 1.0 + previous * (1.0 - fract);
                wrong += usize::from((count <= limit) != admitted);
                if wrong > cap {
                    return wrong;
                }
                current += 1.0;
            }
        }
    }
    wrong
}

/// The counters a replay tries: (name, whether it is a two-window estimate).
const COUNTERS: [(&str, bool); 2] = [("sliding log", false), ("two-window estimate", true)];

/// What replaying the sends found: the counter, and the limits and window
/// lengths that reproduce what was seen.
#[derive(Debug, Clone, Copy)]
struct Replayed {
    counter: &'static str,
    limit: Estimated,
    window: Estimated,
}

/// The (limit, window length) pairs, limits in `limits` and lengths in
/// `[low, high]`, whose replay reproduces what was seen best (to within one
/// request, for timing at the edges), for either counter; `None` when
/// neither fits (more than 1% of requests disagree everywhere). The limit
/// is fitted too: a burst into a two-window counter that straddles its
/// boundary admits a little more than the limit (the previous window's
/// weight decays while it runs).
/// Long because it is one search: for each counter kind, every candidate
/// window and limit is replayed against the same records and scored in
/// place; the scoring's state is the search's.
fn replay_window(
    records: &[Record],
    limits: std::ops::RangeInclusive<u64>,
    low: f64,
    high: f64,
) -> Option<Replayed> {
    let sends: Vec<(f64, bool)> = records
        .iter()
        .filter(|r| r.kind != Kind::Other)
        .map(|r| (r.sent_s, r.kind == Kind::Admitted))
        .collect();
    if sends.len() < 20 || !(high > low && low > 0.0) || limits.is_empty() {
        return None;
    }
    const STEP: f64 = 1.01;
    // Window phases tried for a two-window counter: a coarse grid for the
    // search, a fine one for the pairs that came close.
    const PHASES: usize = 24;
    const FINE_PHASES: usize = 96;
    const REFINED: usize = 4;
    // The fewest over the phases: once a phase scores w, the others only
    // matter below it, so each replay is cut short at the best so far (the
    // minimum is the same, found sooner). The search starts at the phase
    // that fitted the previous pair best (the next length's best is near).
    let hint = std::cell::Cell::new(0.0_f64);
    let two_window_wrong = |limit: u64, window: f64, phases: usize, cap: usize| {
        let mut best = usize::MAX;
        let first = (hint.get() * phases as f64) as usize % phases.max(1);
        for k in (first..phases).chain(0..first) {
            let phase_s = window * k as f64 / phases as f64;
            let cap = cap.min(best.saturating_sub(1));
            let wrong = mismatches(
                &sends,
                limit as f64,
                window,
                Counter::TwoWindow { phase_s },
                cap,
            );
            if wrong < best {
                best = wrong;
                hint.set(k as f64 / phases as f64);
            }
            if best == 0 {
                break;
            }
        }
        best
    };
    // (counter, limit, window, wrong): every pair within three of the
    // fewest mismatches seen so far is kept; the rest are cut short.
    let mut scored: Vec<(&'static str, u64, f64, usize)> = Vec::new();
    let mut fewest = usize::MAX;
    // The burst's own count first: it is the likeliest limit, and its fit
    // makes the cap tight for the others.
    for (name, two_window) in COUNTERS {
        let mut fitted = false;
        for limit in limits.clone().rev() {
            let mut window = low;
            let mut limit_best = usize::MAX;
            while window <= high {
                let cap = fewest.saturating_add(3);
                let wrong = if two_window {
                    two_window_wrong(limit, window, PHASES, cap)
                } else {
                    mismatches(&sends, limit as f64, window, Counter::Log, cap)
                };
                if wrong <= cap {
                    fewest = fewest.min(wrong);
                    limit_best = limit_best.min(wrong);
                    scored.push((name, limit, window, wrong));
                }
                window *= STEP;
            }
            // Fewer allowed fits worse and worse once past the limit: stop
            // at the first limit that fits no window after one that did.
            if limit_best <= fewest.saturating_add(3) {
                fitted = true;
            } else if fitted {
                break;
            }
        }
    }
    // A two-window counter's boundaries drift by the length's error every
    // window, so near its best pairs the grid is refined: lengths an
    // eighth of a step apart, phases eight times closer.
    let mut closest: Vec<(u64, f64, usize)> = scored
        .iter()
        .filter(|s| s.0 == COUNTERS[1].0)
        .map(|s| (s.1, s.2, s.3))
        .collect();
    closest.sort_by_key(|s| s.2);
    closest.truncate(REFINED);
    for (limit, window, _) in closest {
        for j in -8..=8 {
            let window = window * STEP.powf(j as f64 / 8.0);
            let cap = fewest.saturating_add(3);
            let wrong = two_window_wrong(limit, window, FINE_PHASES, cap);
            if wrong <= cap {
                fewest = fewest.min(wrong);
                scored.push((COUNTERS[1].0, limit, window, wrong));
            }
        }
    }
    if fewest * 100 > sends.len() {
        return None;
    }
    // The counter with the best fit gives the estimate; the interval holds
    // every counter's pairs within one of its own best, when that best is
    // within two of the overall one (the phase grid can cost a two-window
    // counter a request or two, and a sliding log of another length can
    // then fit as well).
    // On a tie the two-window estimate: it is what HAProxy, Redis and
    // Envoy-style sliding windows count with (a true sliding log keeps
    // every timestamp, and is rarer).
    let best = scored
        .iter()
        .filter(|s| s.3 == fewest)
        .max_by_key(|s| s.0 == COUNTERS[1].0)?;
    let own_bests: Vec<(&str, usize)> = COUNTERS
        .into_iter()
        .map(|(name, _)| {
            let own = scored.iter().filter(|s| s.0 == name).map(|s| s.3).min();
            (name, own.unwrap_or(usize::MAX))
        })
        .collect();
    let own_best = |name: &str| {
        own_bests
            .iter()
            .find(|b| b.0 == name)
            .map_or(usize::MAX, |b| b.1)
    };
    let fitting: Vec<(u64, f64)> = scored
        .iter()
        .filter(|s| {
            let own = own_best(s.0);
            own <= fewest + 2 && s.3 <= own + 1
        })
        .map(|s| (s.1, s.2))
        .collect();
    // The estimate: among the exact pairs, the median limit, then the
    // lengths that fit exactly with it.
    let mut exact: Vec<(u64, f64)> = scored
        .iter()
        .filter(|s| s.0 == best.0 && s.3 == fewest)
        .map(|s| (s.1, s.2))
        .collect();
    exact.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let (limit, _) = exact[exact.len() / 2];
    let windows: Vec<f64> = exact
        .iter()
        .filter(|pair| pair.0 == limit)
        .map(|pair| pair.1)
        .collect();
    // The middle of their span on the log grid (the refined grid is denser
    // near some pairs, so a median of grid points would lean to them).
    let window = (windows[0] * windows[windows.len() - 1]).sqrt();
    let span = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
    };
    let (limit_low, limit_high) = span(&mut fitting.iter().map(|pair| pair.0 as f64));
    let (window_low, window_high) = span(&mut fitting.iter().map(|pair| pair.1));
    Some(Replayed {
        counter: best.0,
        limit: estimated(limit as f64, limit_low, limit_high),
        window: estimated(window, window_low / STEP, window_high * STEP),
    })
}

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
fn concurrency(records: &[Record], from_s: f64, found: &mut Identified) -> bool {
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

/// Admissions in clumps: a fixed window, if the clumps are regular.
fn fixed_window(records: &[Record], fit: &Fit, from_s: f64, offered: f64, found: &mut Identified) {
    let found_clumps = clumps(records, from_s, clump_gap_s(offered));
    // The first clump may be a window's tail, the last one cut short.
    let inner: Vec<&Clump> = found_clumps
        .iter()
        .skip(1)
        .take(found_clumps.len().saturating_sub(2))
        .collect();
    let bounded: Vec<&Clump> = found_clumps
        .iter()
        .skip(1)
        .filter(|c| c.refused_before_s.is_some())
        .collect();
    if bounded.len() >= 3 && !inner.is_empty() {
        let starts: Vec<f64> = bounded.iter().map(|c| c.start_s).collect();
        let mut spacings: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        spacings.sort_by(f64::total_cmp);
        let typical = percentile_sorted(&spacings, 0.5);
        if spacings
            .iter()
            .all(|s| (s - typical).abs() <= 0.25 * typical)
        {
            // Boundaries b lie in (refused before, first admission]; the
            // first and last bounded clumps are (k − 1) windows apart.
            let (first, last) = (bounded[0], bounded[bounded.len() - 1]);
            let windows = (bounded.len() - 1) as f64;
            let first_refused = first.refused_before_s.unwrap_or(first.start_s);
            let last_refused = last.refused_before_s.unwrap_or(last.start_s);
            let slack = 2.0 * fit.timing_s;
            let window = estimated(
                (last.start_s - first.start_s) / windows,
                (last_refused - first.start_s - slack) / windows,
                (last.start_s - first_refused + slack) / windows,
            );
            let mut sizes: Vec<f64> = inner.iter().map(|c| c.size as f64).collect();
            sizes.sort_by(f64::total_cmp);
            let limit = percentile_sorted(&sizes, 0.5);
            let (low, high) = median_interval(&sizes);
            found.model = Limiter::FixedWindow;
            found.window_s = Some(window);
            found.window_limit = Some(estimated(limit, low, high));
            found.rate = Some(estimated(
                limit / window.estimate,
                low / window.high,
                high / window.low.max(1e-6),
            ));
            found.interval_kind.push(("window_s", BOUNDS));
            found.interval_kind.push(("window_limit", MEDIAN));
            found.evidence.push(format!(
                "admissions came in {} clumps {:.3} s apart, {limit:.0} in each, with nothing \
                 between ({:.0}% of spans silent): a fixed window of {limit:.0} per {:.3} s \
                 (whether it counts refusals makes no difference to what it admits)",
                found_clumps.len(),
                window.estimate,
                fit.silent_share * 100.0,
                window.estimate
            ));
            return;
        }
    }
    found.evidence.push(format!(
        "admissions came in clumps ({:.0}% of spans silent) but not at regular boundaries in the \
         time the probe had: a window of unknown length",
        fit.silent_share * 100.0
    ));
}

/// Admitted requests waiting under overload: a queue. Returns whether that
/// is what was seen.
fn queue(
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

#[cfg(test)]
mod tests {
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
