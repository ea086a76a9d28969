//! The run over time, for charts: per bin of time, requests sent, and per
//! class the responses answered, throttled (429) and failed, with a coarse
//! latency histogram. The bins fit the run: they start at 10 ms and
//! coarsen along [`WIDTHS_US`] (each a whole multiple of the one before,
//! so bins merge exactly) whenever the run outgrows [`MAX_BINS`], which
//! keeps every chart between 35 and 240 points for any run longer than
//! 0.35 s (whole-second bins only past two minutes; a 3 s run gets 60
//! bins of 50 ms, a minute 120 of 500 ms), and memory flat in the
//! number of requests. The per-second series beside it stay what the
//! checks and the consistency rules read.
use hdrhistogram::Histogram;

use super::{histogram_from_base64, histogram_to_base64};

/// Bin widths, µs: each divides the next.
pub const WIDTHS_US: [u64; 14] = [
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    60_000_000,
    300_000_000,
    600_000_000,
    3_600_000_000,
    21_600_000_000,
    86_400_000_000,
    604_800_000_000,
];

/// Most bins kept; past it the bins coarsen by the next step's factor (at
/// most 7), so a run has more than 240 / 7 ≈ 34 bins once it outgrows the
/// first width.
pub const MAX_BINS: usize = 240;

/// The latency histograms' precision: one significant digit (a bin's
/// p50/p90/p99 within about 6%), a few hundred bytes each.
const LATENCY_DIGITS: u8 = 1;

/// One class over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassTimeline {
    /// Responses by the time they completed (any status).
    pub answered: Vec<u64>,
    /// Of them, 429s.
    pub throttled: Vec<u64>,
    /// Of them, errors (5xx, `--error-if`, transport failures).
    pub errors: Vec<u64>,
    /// Latency (µs, from the due time) of the responses completed in each
    /// bin; `None` for a bin with none.
    pub latency_us: Vec<Option<Histogram<u64>>>,
}

/// A run over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The bins' width, one of [`WIDTHS_US`].
    pub width_us: u64,
    /// Requests by the time they were sent.
    pub sent: Vec<u64>,
    pub classes: Vec<ClassTimeline>,
    /// The latest time anything was recorded at, µs: the last bin covers
    /// only up to here (a partial bin, which a chart draws to its width).
    pub end_us: u64,
}

fn bump(series: &mut Vec<u64>, bin: usize, by: u64) {
    if series.len() <= bin {
        series.resize(bin + 1, 0);
    }
    series[bin] += by;
}

/// Sums each `factor` consecutive bins into one.
fn coarsen_counts(series: &mut Vec<u64>, factor: usize) {
    let merged: Vec<u64> = series.chunks(factor).map(|c| c.iter().sum()).collect();
    *series = merged;
}

fn coarsen_histograms(series: &mut Vec<Option<Histogram<u64>>>, factor: usize) {
    let mut merged = Vec::with_capacity(series.len() / factor + 1);
    for chunk in series.chunks_mut(factor) {
        let mut into: Option<Histogram<u64>> = None;
        for histogram in chunk.iter_mut().filter_map(Option::take) {
            match &mut into {
                None => into = Some(histogram),
                Some(sum) => {
                    let _ = sum.add(&histogram);
                }
            }
        }
        merged.push(into);
    }
    *series = merged;
}

impl Timeline {
    pub fn new(classes: usize) -> Self {
        Self {
            width_us: WIDTHS_US[0],
            sent: Vec::new(),
            classes: vec![ClassTimeline::default(); classes],
            end_us: 0,
        }
    }

    /// The number of bins the timeline spans.
    pub fn bins(&self) -> usize {
        self.classes
            .iter()
            .flat_map(|c| [c.answered.len(), c.latency_us.len()])
            .chain([self.sent.len()])
            .max()
            .unwrap_or(0)
    }

    /// Coarsens until `width_us` is at least `wanted` (one of [`WIDTHS_US`]).
    fn coarsen_to(&mut self, wanted: u64) {
        while self.width_us < wanted {
            let Some(next) = WIDTHS_US.iter().find(|w| **w > self.width_us) else {
                return;
            };
            let factor = (next / self.width_us) as usize;
            coarsen_counts(&mut self.sent, factor);
            for class in &mut self.classes {
                coarsen_counts(&mut class.answered, factor);
                coarsen_counts(&mut class.throttled, factor);
                coarsen_counts(&mut class.errors, factor);
                coarsen_histograms(&mut class.latency_us, factor);
            }
            self.width_us = *next;
        }
    }

    /// The bin of time `at_us`, coarsening first when it lies past
    /// [`MAX_BINS`] (a few times per run).
    fn bin(&mut self, at_us: u64) -> usize {
        self.end_us = self.end_us.max(at_us);
        while at_us / self.width_us >= MAX_BINS as u64 && self.width_us < *WIDTHS_US.last().unwrap()
        {
            let next = *WIDTHS_US.iter().find(|w| **w > self.width_us).unwrap();
            self.coarsen_to(next);
        }
        ((at_us / self.width_us) as usize).min(MAX_BINS * 6)
    }

    pub fn record_sent(&mut self, at_us: u64) {
        let bin = self.bin(at_us);
        bump(&mut self.sent, bin, 1);
    }

    /// A completed request: its class, status (0: no response), whether it
    /// failed, when it completed and its latency.
    pub fn record_done(
        &mut self,
        class: usize,
        status: u16,
        failed: bool,
        done_us: u64,
        latency_us: u64,
    ) {
        let bin = self.bin(done_us);
        let Some(timeline) = self.classes.get_mut(class) else {
            return;
        };
        bump(&mut timeline.answered, bin, 1);
        bump(&mut timeline.throttled, bin, u64::from(status == 429));
        bump(
            &mut timeline.errors,
            bin,
            u64::from(failed || status == 0 || status >= 500),
        );
        if timeline.latency_us.len() <= bin {
            timeline.latency_us.resize(bin + 1, None);
        }
        let histogram = timeline.latency_us[bin].get_or_insert_with(|| {
            Histogram::new(LATENCY_DIGITS).expect("static histogram precision is valid")
        });
        let _ = histogram.record(latency_us.clamp(1, super::HISTOGRAM_MAX_US));
    }

    /// Adds `other`, whose clock started `offset_us` later, into this one:
    /// both coarsen to the wider width (and to one the offset fits in a
    /// whole number of bins of, rounded to the nearest bin).
    pub fn merge_shifted(&mut self, other: &Timeline, offset_us: u64) {
        let mut other = other.clone();
        let width = self.width_us.max(other.width_us);
        self.coarsen_to(width);
        other.coarsen_to(width);
        let mut shift = ((offset_us + width / 2) / width) as usize;
        // The merged run must fit in MAX_BINS too.
        while shift + other.bins() > MAX_BINS && self.width_us < *WIDTHS_US.last().unwrap() {
            let next = *WIDTHS_US.iter().find(|w| **w > self.width_us).unwrap();
            self.coarsen_to(next);
            other.coarsen_to(next);
            shift = ((offset_us + next / 2) / next) as usize;
        }
        let add = |into: &mut Vec<u64>, from: &[u64]| {
            for (index, value) in from.iter().enumerate() {
                bump(into, index + shift, *value);
            }
        };
        add(&mut self.sent, &other.sent);
        if self.classes.len() < other.classes.len() {
            self.classes
                .resize(other.classes.len(), ClassTimeline::default());
        }
        for (mine, theirs) in self.classes.iter_mut().zip(other.classes) {
            add(&mut mine.answered, &theirs.answered);
            add(&mut mine.throttled, &theirs.throttled);
            add(&mut mine.errors, &theirs.errors);
            for (index, histogram) in theirs.latency_us.into_iter().enumerate() {
                let Some(histogram) = histogram else { continue };
                let at = index + shift;
                if mine.latency_us.len() <= at {
                    mine.latency_us.resize(at + 1, None);
                }
                match &mut mine.latency_us[at] {
                    Some(sum) => {
                        let _ = sum.add(&histogram);
                    }
                    slot => *slot = Some(histogram),
                }
            }
        }
        self.end_us = self.end_us.max(other.end_us + offset_us);
    }
}

/// Counts in bins of `from_us` as bins of `to_us` (a multiple of it; one of
/// [`WIDTHS_US`]), starting `offset_us` later (rounded to a bin).
pub fn rebin(counts: &[u64], from_us: u64, to_us: u64, offset_us: u64) -> Vec<u64> {
    let to_us = to_us.max(from_us);
    let factor = (to_us / from_us.max(1)).max(1) as usize;
    let shift = ((offset_us + to_us / 2) / to_us) as usize;
    let mut out = vec![0; shift];
    out.extend(counts.chunks(factor).map(|chunk| chunk.iter().sum::<u64>()));
    out
}

/// The timeline as a report saves it (`series.timeline`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedTimeline {
    pub width_s: f64,
    /// Where the last bin ends (s from the start): it may be partial.
    pub end_s: f64,
    pub sent: Vec<u64>,
    pub classes: indexmap::IndexMap<String, SavedClassTimeline>,
    /// A merged run: each shard's requests sent per bin ("I/N" → counts),
    /// on the merged clock and bins.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub shards: indexmap::IndexMap<String, Vec<u64>>,
}

impl SavedTimeline {
    /// The bins its classes' answers span.
    pub fn bins(&self) -> usize {
        self.classes
            .values()
            .map(|c| c.answered.len())
            .max()
            .unwrap_or(0)
    }

    /// One of its classes' series, summed over the classes, per bin.
    pub fn summed(&self, pick: fn(&SavedClassTimeline) -> &Vec<u64>) -> Vec<u64> {
        (0..self.bins())
            .map(|bin| {
                self.classes
                    .values()
                    .map(|class| pick(class).get(bin).copied().unwrap_or(0))
                    .sum()
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedClassTimeline {
    pub answered: Vec<u64>,
    pub throttled: Vec<u64>,
    pub errors: Vec<u64>,
    /// Per bin: HdrHistogram V2 + DEFLATE, base64, µs ("" for a bin with none).
    pub latency_us: Vec<String>,
}

impl Timeline {
    pub fn save(&self, names: &[String]) -> SavedTimeline {
        SavedTimeline {
            width_s: self.width_us as f64 / 1e6,
            end_s: self.end_us as f64 / 1e6,
            sent: self.sent.clone(),
            classes: names
                .iter()
                .zip(&self.classes)
                .filter(|(_, class)| !class.answered.is_empty())
                .map(|(name, class)| {
                    let latency = class
                        .latency_us
                        .iter()
                        .map(|h| h.as_ref().map(histogram_to_base64).unwrap_or_default())
                        .collect();
                    let saved = SavedClassTimeline {
                        answered: class.answered.clone(),
                        throttled: class.throttled.clone(),
                        errors: class.errors.clone(),
                        latency_us: latency,
                    };
                    (name.clone(), saved)
                })
                .collect(),
            shards: indexmap::IndexMap::new(),
        }
    }

    /// Reads a saved timeline back (for a merge); `Err` names what is wrong.
    pub fn load(saved: &SavedTimeline, names: &[String]) -> Result<Self, String> {
        let width_us = (saved.width_s * 1e6).round() as u64;
        if !WIDTHS_US.contains(&width_us) {
            return Err(format!(
                "series.timeline.width_s: {}, but bins are one of 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60 … s",
                saved.width_s
            ));
        }
        let longest = saved
            .classes
            .values()
            .flat_map(|c| {
                [
                    c.answered.len(),
                    c.throttled.len(),
                    c.errors.len(),
                    c.latency_us.len(),
                ]
            })
            .chain([saved.sent.len()])
            .max()
            .unwrap_or(0);
        if longest > MAX_BINS * 6 {
            return Err(format!(
                "series.timeline: {longest} bins, but a timeline has at most {}",
                MAX_BINS * 6
            ));
        }
        let mut timeline = Timeline::new(names.len());
        timeline.width_us = width_us;
        timeline.sent = saved.sent.clone();
        timeline.end_us = (saved.end_s.max(0.0) * 1e6) as u64;
        for (name, class) in &saved.classes {
            let Some(index) = names.iter().position(|known| known == name) else {
                return Err(format!(
                    "series.timeline.classes.{name}: not a class of the report"
                ));
            };
            let mut latency = Vec::with_capacity(class.latency_us.len());
            for (bin, text) in class.latency_us.iter().enumerate() {
                latency.push(if text.is_empty() {
                    None
                } else {
                    Some(histogram_from_base64(text).map_err(|why| {
                        format!("series.timeline.classes.{name}.latency_us[{bin}]: {why}")
                    })?)
                });
            }
            timeline.classes[index] = ClassTimeline {
                answered: class.answered.clone(),
                throttled: class.throttled.clone(),
                errors: class.errors.clone(),
                latency_us: latency,
            };
        }
        Ok(timeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of any length keeps at most 240 bins and at least 30 once it
    /// is longer than the first width's 2.4 s, and coarsening keeps every
    /// count.
    #[test]
    fn bins_fit_the_run_and_keep_counts() {
        for seconds in [0.2, 3.0, 10.0, 60.0, 300.0, 3_600.0, 86_400.0] {
            let mut timeline = Timeline::new(1);
            let end_us = (seconds * 1e6) as u64;
            let step = (end_us / 5_000).max(1);
            let mut sent = 0;
            let mut at = 0;
            while at < end_us {
                timeline.record_sent(at);
                timeline.record_done(0, 200, false, at, 1_000);
                sent += 1;
                at += step;
            }
            let bins = timeline.bins();
            assert!(bins <= MAX_BINS, "{seconds} s: {bins} bins");
            if seconds >= 3.0 {
                assert!(
                    bins >= 30,
                    "{seconds} s: {bins} bins of {} µs",
                    timeline.width_us
                );
            }
            assert_eq!(timeline.sent.iter().sum::<u64>(), sent);
            let latency: u64 = timeline.classes[0]
                .latency_us
                .iter()
                .flatten()
                .map(|h| h.len())
                .sum();
            assert_eq!(latency, sent);
        }
    }

    /// Merging equals recording both streams into one timeline.
    #[test]
    fn merged_timelines_equal_the_union() {
        let mut a = Timeline::new(2);
        let mut b = Timeline::new(2);
        let mut union = Timeline::new(2);
        for i in 0..4_000u64 {
            let at = i * 7_919 % 30_000_000;
            let (one, status) = (i % 3 == 0, [200, 429, 503][(i % 5) as usize % 3]);
            let target = if one { &mut a } else { &mut b };
            target.record_sent(at);
            target.record_done((i % 2) as usize, status, false, at, 500 + i);
            union.record_sent(at);
            union.record_done((i % 2) as usize, status, false, at, 500 + i);
        }
        a.merge_shifted(&b, 0);
        assert_eq!(a.width_us, union.width_us);
        assert_eq!(a.sent, union.sent);
        assert_eq!(a.classes[0].answered, union.classes[0].answered);
        assert_eq!(a.classes[1].throttled, union.classes[1].throttled);
        let names = vec!["x".to_string(), "y".to_string()];
        let back = Timeline::load(&a.save(&names), &names).unwrap();
        assert_eq!(back.sent, a.sent);
        assert_eq!(back.classes[1].errors, a.classes[1].errors);
    }
}
