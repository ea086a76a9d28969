//! The recorder: everything a run learned, in memory that does not grow with
//! the number of requests — per-class counters, status counts and
//! HdrHistograms (µs), transport errors by kind, and a per-second series.
//! Recorders merge (worker shards, process shards) and their histograms
//! serialize as HdrHistogram V2 + DEFLATE in base64 for the JSON report.
use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer};
use hdrhistogram::Histogram;

use crate::sample::{ErrorDetail, ErrorKind, Outcome, Sample};

pub mod timeline;
pub use timeline::{SavedTimeline, Timeline};

/// Highest latency a histogram tracks exactly (1 hour in µs); longer values
/// are clamped to it rather than lost.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
const SIGNIFICANT_FIGURES: u8 = 3;

/// A latency histogram in microseconds. It starts empty and grows (a
/// handful of times per run, as a new slowest value arrives) up to
/// [`HISTOGRAM_MAX_US`], where [`record`] keeps values: the full range
/// zeroed up front cost ≈ 180 KB per histogram, two per class, for
/// classes most runs never see, and was most of a virtual probe's time.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_FIGURES).expect("static histogram precision is valid")
}

/// Records a value in µs, clamped to 1..=[`HISTOGRAM_MAX_US`]. Not
/// `saturating_record`: that clamps to the histogram's current range
/// instead of growing it.
fn record(histogram: &mut Histogram<u64>, us: u64) {
    // Growing to at most HISTOGRAM_MAX_US cannot fail.
    let _ = histogram.record(us.clamp(1, HISTOGRAM_MAX_US));
}

/// Per-class statistics.
#[derive(Debug, Clone)]
pub struct ClassStats {
    pub count: u64,
    /// Responses that are errors within the class (5xx or `--error-if`).
    pub failed: u64,
    pub bytes: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Latency from the due time (coordinated-omission corrected), µs.
    pub latency_us: Histogram<u64>,
    /// Latency from the actual send (service time), µs.
    pub service_us: Histogram<u64>,
}

impl ClassStats {
    fn new() -> Self {
        Self {
            count: 0,
            failed: 0,
            bytes: 0,
            statuses: BTreeMap::new(),
            latency_us: new_histogram(),
            service_us: new_histogram(),
        }
    }

    fn merge(&mut self, other: &ClassStats) {
        self.count += other.count;
        self.failed += other.failed;
        self.bytes += other.bytes;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.service_us.add(&other.service_us);
    }
}

/// Counts per one-second interval from the run's start, by the time a
/// request was sent (or dropped) and by the time it completed.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub sent: Vec<u64>,
    pub dropped: Vec<u64>,
    /// `completed[class][second]`.
    pub completed: Vec<Vec<u64>>,
}

/// Longest series kept (7 days); the run bounds stop far earlier.
const MAX_SERIES_S: usize = 7 * 86400;

fn bump(series: &mut Vec<u64>, at_us: u64) {
    let second = ((at_us / 1_000_000) as usize).min(MAX_SERIES_S);
    if series.len() <= second {
        series.resize(second + 1, 0);
    }
    series[second] += 1;
}

/// Adds `from` into `into`, `from`'s first second at `into`'s `offset`.
fn add_series(into: &mut Vec<u64>, from: &[u64], offset: usize) {
    if into.len() < offset + from.len() {
        into.resize(offset + from.len(), 0);
    }
    for (total, value) in into[offset..].iter_mut().zip(from) {
        *total += value;
    }
}

/// A request sent this long after its due time is counted as late: ten
/// timer ticks, well past ordinary timer jitter.
pub const LATE_AFTER_US: u64 = 10_000;

/// All of a run's counts.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub class_names: Vec<String>,
    pub classes: Vec<ClassStats>,
    pub errors: [u64; ErrorKind::ALL.len()],
    /// The reasons of `tls` errors, by [`ErrorDetail`].
    pub error_details: [u64; ErrorDetail::ALL.len()],
    pub sent: u64,
    pub dropped: u64,
    pub aborted: u64,
    /// Sent more than [`LATE_AFTER_US`] behind their due time (open model).
    pub late: u64,
    /// How late requests were sent against their due time (open model), µs.
    pub send_lag_us: Histogram<u64>,
    pub series: Series,
    /// The run over time in bins that fit its length, for charts.
    pub timeline: Timeline,
    pub last_sent_us: u64,
    pub last_done_us: u64,
    /// Per `--api-keys` key, by its slot (empty without keys).
    pub keys: Vec<KeyStats>,
}

/// What one API key's requests met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyStats {
    pub sent: u64,
    pub dropped: u64,
    /// HTTP responses, any status.
    pub responses: u64,
    /// 429 responses: the key's (or a shared) throttle refused it.
    pub throttled: u64,
    /// 403 responses: the key is not accepted (unknown, disabled, not in a plan for this stage).
    pub forbidden: u64,
    /// Transport failures (no response).
    pub errors: u64,
}

impl KeyStats {
    pub fn merge(&mut self, other: &KeyStats) {
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.responses += other.responses;
        self.throttled += other.throttled;
        self.forbidden += other.forbidden;
        self.errors += other.errors;
    }

    fn record(&mut self, sample: &Sample) {
        match sample.outcome {
            Outcome::Dropped => self.dropped += 1,
            Outcome::Aborted => self.sent += 1,
            Outcome::Completed => {
                self.sent += 1;
                match sample.status {
                    0 => self.errors += 1,
                    status => {
                        self.responses += 1;
                        self.throttled += u64::from(status == 429);
                        self.forbidden += u64::from(status == 403);
                    }
                }
            }
        }
    }
}

impl Recorder {
    pub fn new(class_names: &[String]) -> Self {
        Self {
            class_names: class_names.to_vec(),
            classes: class_names.iter().map(|_| ClassStats::new()).collect(),
            errors: [0; ErrorKind::ALL.len()],
            error_details: [0; ErrorDetail::ALL.len()],
            sent: 0,
            dropped: 0,
            aborted: 0,
            late: 0,
            send_lag_us: new_histogram(),
            series: Series {
                completed: vec![Vec::new(); class_names.len()],
                ..Series::default()
            },
            timeline: Timeline::new(class_names.len()),
            last_sent_us: 0,
            last_done_us: 0,
            keys: Vec::new(),
        }
    }

    /// Records one sample. No allocation except when the series grows a second.
    pub fn record(&mut self, sample: &Sample) {
        if let Some(slot) = sample.key {
            let slot = usize::from(slot);
            if self.keys.len() <= slot {
                // Grows once per key, at its first request.
                self.keys.resize(slot + 1, KeyStats::default());
            }
            self.keys[slot].record(sample);
        }
        if sample.outcome == Outcome::Dropped {
            self.dropped += 1;
            bump(&mut self.series.dropped, sample.due_us);
            return;
        }
        self.sent += 1;
        self.late += u64::from(sample.late);
        self.last_sent_us = self.last_sent_us.max(sample.sent_us);
        bump(&mut self.series.sent, sample.sent_us);
        self.timeline.record_sent(sample.sent_us);
        record(
            &mut self.send_lag_us,
            sample.sent_us.saturating_sub(sample.due_us),
        );
        if sample.outcome == Outcome::Aborted {
            self.aborted += 1;
            return;
        }
        self.last_done_us = self.last_done_us.max(sample.done_us);
        if let Some(kind) = sample.error {
            self.errors[kind.index()] += 1;
        }
        if let Some(detail) = sample.error_detail {
            self.error_details[detail.index()] += 1;
        }
        let class = sample.class as usize;
        let Some(stats) = self.classes.get_mut(class) else {
            return;
        };
        stats.count += 1;
        stats.failed += u64::from(sample.failed);
        stats.bytes += sample.bytes;
        if sample.status != 0 {
            *stats.statuses.entry(sample.status).or_default() += 1;
        }
        record(&mut stats.latency_us, sample.latency_us());
        record(&mut stats.service_us, sample.service_us());
        bump(&mut self.series.completed[class], sample.done_us);
        self.timeline.record_done(
            class,
            sample.status,
            sample.failed,
            sample.done_us,
            sample.latency_us(),
        );
    }

    /// Adds another recorder of the same classes into this one.
    pub fn merge(&mut self, other: &Recorder) {
        self.merge_shifted(other, 0);
    }

    /// Adds another recorder whose clock started `seconds` later than this
    /// one's: its per-second series are shifted by that much (in place: a
    /// copy of its histograms was most of a simulated probe's report).
    pub fn merge_shifted(&mut self, other: &Recorder, seconds: usize) {
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.merge(theirs);
        }
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        for (mine, theirs) in self.error_details.iter_mut().zip(other.error_details) {
            *mine += theirs;
        }
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.aborted += other.aborted;
        self.late += other.late;
        let _ = self.send_lag_us.add(&other.send_lag_us);
        add_series(&mut self.series.sent, &other.series.sent, seconds);
        add_series(&mut self.series.dropped, &other.series.dropped, seconds);
        self.timeline
            .merge_shifted(&other.timeline, seconds as u64 * 1_000_000);
        for (mine, theirs) in self
            .series
            .completed
            .iter_mut()
            .zip(&other.series.completed)
        {
            add_series(mine, theirs, seconds);
        }
        self.last_sent_us = self.last_sent_us.max(other.last_sent_us);
        self.last_done_us = self.last_done_us.max(other.last_done_us);
        if self.keys.len() < other.keys.len() {
            self.keys.resize(other.keys.len(), KeyStats::default());
        }
        for (mine, theirs) in self.keys.iter_mut().zip(&other.keys) {
            mine.merge(theirs);
        }
    }

    /// Requests that completed (answered or failed), in some class.
    pub fn completed(&self) -> u64 {
        self.classes.iter().map(|class| class.count).sum()
    }

    /// Requests that got an HTTP response of any status.
    pub fn responses(&self) -> u64 {
        self.completed() - self.errors.iter().sum::<u64>()
    }

    /// Every request that came due: completed, aborted or dropped.
    pub fn due(&self) -> u64 {
        self.completed() + self.aborted + self.dropped
    }
}

/// Serializes a histogram as HdrHistogram V2 + DEFLATE, base64 (the format
/// HdrHistogram's own tools read): byte for byte what hdrhistogram's
/// `V2DeflateSerializer` writes (cookie, compressed length, a zlib stream of
/// the V2 encoding at the default level), but with one compressor per
/// thread, reset between histograms. hdrhistogram makes a new one per call
/// (its own TODO says to reuse it): ~300 KB zeroed and freed each time,
/// two thirds of a simulated throttle probe's time.
pub fn histogram_to_base64(histogram: &Histogram<u64>) -> String {
    use hdrhistogram::serialization::V2Serializer;
    /// HdrHistogram's V2 compressed cookie (0x1c849304 | 0x10).
    const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
    struct Scratch {
        v2: V2Serializer,
        plain: Vec<u8>,
        packed: Vec<u8>,
        compressor: flate2::Compress,
    }
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch {
            v2: V2Serializer::new(),
            plain: Vec::new(),
            packed: Vec::new(),
            compressor: flate2::Compress::new(flate2::Compression::default(), true),
        });
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.plain.clear();
        if scratch.v2.serialize(histogram, &mut scratch.plain).is_err() {
            return String::new();
        }
        scratch.packed.clear();
        scratch
            .packed
            .extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        scratch.packed.extend_from_slice(&[0; 4]);
        scratch.compressor.reset();
        loop {
            scratch.packed.reserve(scratch.plain.len() / 2 + 64);
            let consumed = scratch.compressor.total_in() as usize;
            match scratch.compressor.compress_vec(
                &scratch.plain[consumed..],
                &mut scratch.packed,
                flate2::FlushCompress::Finish,
            ) {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => continue,
                Err(_) => return String::new(),
            }
        }
        let length = (scratch.packed.len() - 8) as u32;
        scratch.packed[4..8].copy_from_slice(&length.to_be_bytes());
        base64::engine::general_purpose::STANDARD.encode(&scratch.packed)
    })
}

/// Reads a histogram written by [`histogram_to_base64`].
pub fn histogram_from_base64(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|err| format!("histogram is not base64: {err}"))?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|err| format!("histogram does not decode: {err:?}"))?;
    // A decoded histogram keeps the range it was saved with; it must grow
    // when another is added to it (merged shards), or larger values would
    // be lost.
    histogram.auto(true);
    Ok(histogram)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reused compressor writes exactly hdrhistogram's own bytes, and
    /// they read back.
    #[test]
    fn histograms_encode_as_hdrhistogram_does() {
        use hdrhistogram::serialization::V2DeflateSerializer;
        let mut histograms = vec![new_histogram()];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for size in [1, 100, 100_000] {
            let mut histogram = new_histogram();
            for _ in 0..size {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                record(&mut histogram, rng % 5_000_000);
            }
            histograms.push(histogram);
        }
        for histogram in &histograms {
            let mut theirs = Vec::new();
            V2DeflateSerializer::new()
                .serialize(histogram, &mut theirs)
                .unwrap();
            let ours = histogram_to_base64(histogram);
            assert_eq!(
                ours,
                base64::engine::general_purpose::STANDARD.encode(&theirs)
            );
            assert_eq!(&histogram_from_base64(&ours).unwrap(), histogram);
        }
    }

    fn sample(class: u16, latency_us: u64, outcome: Outcome) -> Sample {
        Sample {
            done_us: 1_000 + latency_us,
            status: 200,
            bytes: 10,
            class,
            outcome,
            ..Sample::sent(0, 1_000, 1_500)
        }
    }

    /// A saved histogram merges exactly with one of a wider range: a
    /// merged shard's maximum is the largest shard's maximum.
    #[test]
    fn decoded_histograms_grow_when_merged() {
        let mut small = new_histogram();
        record(&mut small, 4_000);
        let mut large = new_histogram();
        record(&mut large, 20_000_000);
        let mut merged = histogram_from_base64(&histogram_to_base64(&small)).unwrap();
        merged
            .add(histogram_from_base64(&histogram_to_base64(&large)).unwrap())
            .unwrap();
        assert_eq!(merged.len(), 2);
        assert!(merged.max() >= 19_990_000, "max {}", merged.max());
    }

    /// A histogram's recorded values and counts (its encoding also depends
    /// on how far it grew, which merging order changes).
    fn values(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
        histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// Everything a recorder holds that a report is made from, comparable.
    fn state(r: &Recorder) -> String {
        let classes: Vec<String> = r
            .classes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {:?} {:?} {:?}",
                    c.count,
                    c.failed,
                    c.bytes,
                    c.statuses,
                    values(&c.latency_us),
                    values(&c.service_us)
                )
            })
            .collect();
        format!(
            "{classes:?} {:?} {:?} {} {} {} {} {:?} {:?} {:?}",
            r.errors,
            r.error_details,
            r.sent,
            r.dropped,
            r.aborted,
            r.late,
            values(&r.send_lag_us),
            r.series,
            r.keys
        ) + &format!(
            " {} {:?} {:?}",
            r.timeline.width_us,
            r.timeline.sent,
            r.timeline
                .classes
                .iter()
                .map(|c| (&c.answered, &c.throttled, &c.errors))
                .collect::<Vec<_>>()
        )
    }

    /// Merge algebra over random sample streams: recording the streams'
    /// union equals merging their recorders, in any grouping and order.
    #[test]
    fn merging_is_associative_commutative_and_equals_the_union() {
        use rand::{Rng, SeedableRng};
        let names = vec!["a".to_string(), "b".to_string(), "unmatched".to_string()];
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        for case in 0..200 {
            let mut parts = [
                Recorder::new(&names),
                Recorder::new(&names),
                Recorder::new(&names),
            ];
            let mut union = Recorder::new(&names);
            for _ in 0..rng.random_range(0..400) {
                let due = rng.random_range(0..5_000_000u64);
                let outcome = match rng.random_range(0..20) {
                    0 => Outcome::Dropped,
                    1 => Outcome::Aborted,
                    _ => Outcome::Completed,
                };
                let sample = Sample {
                    done_us: due + rng.random_range(1..3_000_000u64),
                    status: [200, 429, 500][rng.random_range(0..3)],
                    bytes: rng.random_range(0..100),
                    class: rng.random_range(0..3),
                    failed: rng.random_bool(0.1),
                    late: rng.random_bool(0.05),
                    error: rng
                        .random_bool(0.05)
                        .then_some(crate::sample::ErrorKind::Timeout),
                    key: rng.random_bool(0.5).then(|| rng.random_range(0..3)),
                    outcome,
                    ..Sample::sent(0, due, due + rng.random_range(0..2_000))
                };
                union.record(&sample);
                parts[rng.random_range(0..3)].record(&sample);
            }
            let merged = |order: [usize; 3]| {
                let mut into = parts[order[0]].clone();
                let mut rest = parts[order[1]].clone();
                rest.merge(&parts[order[2]]);
                into.merge(&rest);
                into
            };
            let left = {
                let mut into = parts[0].clone();
                into.merge(&parts[1]);
                into.merge(&parts[2]);
                into
            };
            let want = state(&union);
            assert_eq!(state(&left), want, "case {case}: (a+b)+c");
            for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
                assert_eq!(state(&merged(order)), want, "case {case}: {order:?}");
            }
        }
    }

    #[test]
    fn books_balance_and_merge() {
        let names = vec!["ok".to_string(), "unmatched".to_string()];
        let mut first = Recorder::new(&names);
        let mut second = Recorder::new(&names);
        for latency in 1_000..2_000 {
            first.record(&sample(0, latency, Outcome::Completed));
        }
        second.record(&sample(1, 5_000, Outcome::Completed));
        second.record(&sample(0, 5_000, Outcome::Dropped));
        second.record(&sample(0, 5_000, Outcome::Aborted));
        second.record(&Sample {
            late: true,
            key: None,
            ..sample(0, 5_000, Outcome::Completed)
        });
        first.merge(&second);
        assert_eq!(first.late, 1, "late sends are counted, and merge");
        assert_eq!(first.completed(), 1_002);
        assert_eq!(first.dropped, 1);
        assert_eq!(first.aborted, 1);
        assert_eq!(first.due(), 1_004);
        assert_eq!(first.sent, 1_003);
        assert_eq!(first.classes[0].statuses[&200], 1_001);
        let p50 = first.classes[0].latency_us.value_at_quantile(0.5);
        assert!((1_495..=1_505).contains(&p50), "{p50}");
        // Service time is measured from the send, 500 µs after the due time.
        assert_eq!(first.classes[0].service_us.min(), 500);
    }

    #[test]
    fn histograms_grow_to_slow_answers_and_clamp_at_an_hour() {
        let names = vec!["ok".to_string()];
        let mut recorder = Recorder::new(&names);
        for latency in [35_000, 5_000_000, 7_200_000_000] {
            recorder.record(&sample(0, latency, Outcome::Completed));
        }
        let latency = &recorder.classes[0].latency_us;
        let near = |value: u64, to: u64| value.abs_diff(to) <= to / 500;
        assert!(
            near(latency.value_at_quantile(0.0), 35_000),
            "{}",
            latency.min()
        );
        assert!(near(latency.value_at_quantile(0.5), 5_000_000));
        assert!(near(latency.max(), HISTOGRAM_MAX_US), "{}", latency.max());
    }

    #[test]
    fn histograms_round_trip() {
        let mut histogram = new_histogram();
        for value in [1, 10, 100, 1_000, 123_456] {
            histogram.record(value).unwrap();
        }
        let text = histogram_to_base64(&histogram);
        let back = histogram_from_base64(&text).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), histogram.max());
    }
}
