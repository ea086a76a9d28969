//! Which kind of limiter is it? From what a client sees of every request —
//! when it was sent and answered, admitted or refused, and how many of its own
//! requests were in flight — the evidence for each kind:
//!
//! - **concurrency** (a Lambda function's reserved concurrency, nginx
//!   `limit_conn`): a request is refused exactly when a fixed number of
//!   admitted ones are still in progress. At each refusal, count this client's
//!   admitted requests in progress; a concurrency limit makes that count the
//!   same every time (its spread is a request or two), whatever the rate. A
//!   rate limiter leaves it wandering with the latency.
//! - **queue** (nginx `limit_req` without `nodelay`): admitted requests wait.
//!   Their latency under overload grows by up to depth ÷ rate over the
//!   latency at the lowest step, then plateaus; the rate and the queue depth
//!   follow from the line fit and that added delay.
//! - **lockout** (a sliding window that counts refused requests, HAProxy's
//!   `sc_http_req_rate`): admissions stop altogether under sustained overload
//!   and come back only after the client backs off.
//! - **fixed window**: admissions come in clumps at window boundaries — the
//!   limit's worth at each boundary, then nothing until the next — so many
//!   spans of the throttled stretch are silent where a bucket would trickle;
//!   the clumps' spacing is the window, their size the limit.
//! - **token bucket**: a straight line of admitted over time with no clumps,
//!   no added latency and no fixed in-progress count (`estimate`).
//!
//! A sliding window that does *not* count refusals admits, once full, as
//! evenly as a token bucket of rate limit ÷ window and burst limit: from
//! outside the two are the same limiter, and it is reported as a bucket.
use super::estimate::Kind;

/// The q-quantile of sorted values (nearest rank; 0 for none).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
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

/// Admitted requests in progress at each refusal: (median, spread between the
/// 10th and 90th percentiles, refusals looked at).
pub fn in_progress_at_refusals(records: &[Record]) -> Option<(f64, f64, usize)> {
    let mut admitted: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| r.kind == Kind::Admitted)
        .map(|r| (r.sent_s, r.done_s))
        .collect();
    let mut refusals: Vec<f64> = records
        .iter()
        .filter(|r| r.kind == Kind::Throttled)
        .map(|r| r.sent_s)
        .collect();
    if refusals.len() < 10 || admitted.is_empty() {
        return None;
    }
    admitted.sort_by(|a, b| a.0.total_cmp(&b.0));
    refusals.sort_by(f64::total_cmp);
    // Sweep: admitted requests sent before the refusal and not yet answered.
    let mut ends = std::collections::BinaryHeap::new();
    let mut next = 0;
    let mut counts = Vec::with_capacity(refusals.len());
    for &at in &refusals {
        while next < admitted.len() && admitted[next].0 <= at {
            ends.push(std::cmp::Reverse(OrderedF64(admitted[next].1)));
            next += 1;
        }
        while ends.peek().is_some_and(|end| end.0 .0 <= at) {
            ends.pop();
        }
        counts.push(ends.len() as f64);
    }
    counts.sort_by(f64::total_cmp);
    let median = percentile_sorted(&counts, 0.5);
    let spread = percentile_sorted(&counts, 0.9) - percentile_sorted(&counts, 0.1);
    Some((median, spread, counts.len()))
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

/// The clumps of admissions in a stretch: the start time and size of each
/// run of admissions that follows a span of at least `gap_s` without one.
pub fn clumps(records: &[Record], from_s: f64, gap_s: f64) -> Vec<(f64, u64)> {
    let mut admitted: Vec<f64> = records
        .iter()
        .filter(|r| r.kind == Kind::Admitted && r.sent_s >= from_s)
        .map(|r| r.sent_s)
        .collect();
    admitted.sort_by(f64::total_cmp);
    let mut out: Vec<(f64, u64)> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for at in admitted {
        if at - last >= gap_s || out.is_empty() {
            out.push((at, 1));
        } else if let Some(clump) = out.last_mut() {
            clump.1 += 1;
        }
        last = at;
    }
    out
}

/// The longest span with no admission while requests were being refused,
/// from `from_s` on: (start, length).
pub fn longest_silence(records: &[Record], from_s: f64) -> Option<(f64, f64)> {
    let mut sorted: Vec<&Record> = records
        .iter()
        .filter(|r| r.sent_s >= from_s && r.kind != Kind::Other)
        .collect();
    sorted.sort_by(|a, b| a.sent_s.total_cmp(&b.sent_s));
    let mut best: Option<(f64, f64)> = None;
    let mut silent_from: Option<f64> = None;
    let mut last_refused = 0.0;
    for record in sorted {
        match record.kind {
            Kind::Admitted => {
                if let Some(start) = silent_from.take() {
                    let length = last_refused - start;
                    if best.is_none_or(|(_, longest)| length > longest) {
                        best = Some((start, length));
                    }
                }
            }
            Kind::Throttled => {
                silent_from.get_or_insert(record.sent_s);
                last_refused = record.sent_s;
            }
            Kind::Other => {}
        }
    }
    if let Some(start) = silent_from {
        let length = last_refused - start;
        if best.is_none_or(|(_, longest)| length > longest) {
            best = Some((start, length));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sent_s: f64, done_s: f64, kind: Kind) -> Record {
        Record {
            sent_s,
            done_s,
            kind,
            in_flight: 1,
        }
    }

    #[test]
    fn a_concurrency_limit_shows_as_a_fixed_count_at_refusals() {
        // 4 slots, 100 ms each, offered every 10 ms: 4 admitted in progress
        // whenever one is refused.
        let mut records = Vec::new();
        let mut slots: Vec<f64> = Vec::new();
        for i in 0..400 {
            let at = i as f64 * 0.01;
            slots.retain(|end| *end > at);
            if slots.len() < 4 {
                slots.push(at + 0.1);
                records.push(record(at, at + 0.1, Kind::Admitted));
            } else {
                records.push(record(at, at + 0.001, Kind::Throttled));
            }
        }
        let (median, spread, _) = in_progress_at_refusals(&records).unwrap();
        assert_eq!(median, 4.0);
        assert!(spread <= 1.0, "{spread}");
    }

    #[test]
    fn clumps_and_silences() {
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
        assert!(found.iter().all(|(_, size)| *size == 20));
        let (_, longest) = longest_silence(&records, 0.0).unwrap();
        assert!((longest - 0.395).abs() < 1e-9, "{longest}");
    }
}
