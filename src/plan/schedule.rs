//! The rate schedule: when request *i* is due. Constant rates, steps and ramps
//! are all one piecewise-linear rate curve r(t); request i is due at the time
//! t where the expected count N(t) = ∫₀ᵗ r reaches i. The worker loop only asks
//! `due(i)`, so no schedule shape has a loop of its own.
use std::time::Duration;

/// One stretch of the curve: the rate moves linearly from `start_rate_per_s`
/// to `end_rate_per_s` over `duration_s` (infinite for an open-ended rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub start_rate_per_s: f64,
    pub end_rate_per_s: f64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Copy)]
struct Placed {
    segment: Segment,
    start_s: f64,
    /// Expected requests due before this segment begins.
    start_count: f64,
    /// Expected requests due within this segment.
    count: f64,
}

/// How requests are offered.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Closed model: as fast as the connections allow (like wrk and oha).
    Closed,
    /// Open model: request i is due at `due(i)` whatever the server does.
    Open(RateCurve),
}

/// A rate shape given by a flag of its own (`--steps`, `--ramp`): the one
/// list of them is [`SHAPES`]. The flag, its help and its parse come from
/// the entry, so a new shape is an entry there and its curve here.
/// `--rate` is not one: it also means the closed model (`max`) and is held
/// for the run's duration or request count, not for a time of its own.
pub struct Shape {
    pub flag: &'static str,
    pub value_name: &'static str,
    pub help: &'static str,
    /// The curve and the time it lasts, or what the text lacks (said after
    /// `--flag 'text': `).
    pub parse: fn(&str) -> Result<(RateCurve, Duration), String>,
}

pub const SHAPES: &[Shape] = &[
    Shape {
        flag: "--steps",
        value_name: "R1,R2,…@DURATION",
        help: "Rate steps, each held for the given time: 100,200,400@10s.",
        parse: parse_steps,
    },
    Shape {
        flag: "--ramp",
        value_name: "FROM..TO@DURATION",
        help: "Linear rate ramp: 0..1000@60s.",
        parse: parse_ramp,
    },
];

fn parse_steps(text: &str) -> Result<(RateCurve, Duration), String> {
    let (rates, hold) = text
        .rsplit_once('@')
        .ok_or("expected rates and a hold time, e.g. 100,200,400@10s")?;
    let hold = crate::units::parse_duration(hold)?;
    let rates = rates
        .split(',')
        .map(crate::units::parse_rate)
        .collect::<Result<Vec<_>, _>>()?;
    let total = hold * rates.len() as u32;
    Ok((RateCurve::steps(&rates, hold.as_secs_f64()), total))
}

fn parse_ramp(text: &str) -> Result<(RateCurve, Duration), String> {
    const BAD: &str = "expected FROM..TO@DURATION, e.g. 0..1000@60s";
    let (range, over) = text.rsplit_once('@').ok_or(BAD)?;
    let (from, to) = range.split_once("..").ok_or(BAD)?;
    let from = crate::units::parse_rate_or_zero(from)?;
    let to = crate::units::parse_rate_or_zero(to)?;
    if from == 0.0 && to == 0.0 {
        return Err(BAD.to_string());
    }
    let over = crate::units::parse_duration(over)?;
    Ok((RateCurve::ramp(from, to, over.as_secs_f64()), over))
}

impl Schedule {
    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::Open(_))
    }
}

/// A piecewise-linear rate curve.
#[derive(Debug, Clone)]
pub struct RateCurve {
    placed: Vec<Placed>,
}

impl RateCurve {
    /// A constant rate held for `duration_s` (use `f64::INFINITY` when only a
    /// request count bounds the run).
    pub fn constant(rate_per_s: f64, duration_s: f64) -> Self {
        Self::new(&[Segment {
            start_rate_per_s: rate_per_s,
            end_rate_per_s: rate_per_s,
            duration_s,
        }])
    }

    /// Each rate held for `hold_s`.
    pub fn steps(rates_per_s: &[f64], hold_s: f64) -> Self {
        let segments: Vec<Segment> = rates_per_s
            .iter()
            .map(|&rate| Segment {
                start_rate_per_s: rate,
                end_rate_per_s: rate,
                duration_s: hold_s,
            })
            .collect();
        Self::new(&segments)
    }

    /// A linear ramp from `from` to `to` requests per second over `duration_s`.
    pub fn ramp(from_per_s: f64, to_per_s: f64, duration_s: f64) -> Self {
        Self::new(&[Segment {
            start_rate_per_s: from_per_s,
            end_rate_per_s: to_per_s,
            duration_s,
        }])
    }

    pub fn new(segments: &[Segment]) -> Self {
        let mut placed = Vec::with_capacity(segments.len());
        let (mut start_s, mut start_count) = (0.0, 0.0);
        for segment in segments {
            let count = if segment.duration_s.is_finite() {
                (segment.start_rate_per_s + segment.end_rate_per_s) / 2.0 * segment.duration_s
            } else {
                f64::INFINITY
            };
            placed.push(Placed {
                segment: *segment,
                start_s,
                start_count,
                count,
            });
            start_s += segment.duration_s;
            start_count += count;
        }
        Self { placed }
    }

    /// Total length of the curve in seconds (infinite when open-ended).
    pub fn duration_s(&self) -> f64 {
        self.placed
            .iter()
            .map(|placed| placed.segment.duration_s)
            .sum()
    }

    /// Expected number of requests over the whole curve.
    pub fn expected_requests(&self) -> f64 {
        self.placed.iter().map(|placed| placed.count).sum()
    }

    /// The highest rate anywhere on the curve: the run never offers more.
    pub fn max_rate_per_s(&self) -> f64 {
        self.placed
            .iter()
            .map(|placed| {
                placed
                    .segment
                    .start_rate_per_s
                    .max(placed.segment.end_rate_per_s)
            })
            .fold(0.0, f64::max)
    }

    /// Expected count due by time `t_s` (N(t)).
    pub fn expected_by(&self, t_s: f64) -> f64 {
        let mut total = 0.0;
        for placed in &self.placed {
            let within = (t_s - placed.start_s).clamp(0.0, placed.segment.duration_s);
            if within <= 0.0 {
                break;
            }
            let Segment {
                start_rate_per_s: a,
                end_rate_per_s: b,
                duration_s,
            } = placed.segment;
            let slope = if duration_s.is_finite() {
                (b - a) / duration_s
            } else {
                0.0
            };
            total += a * within + slope * within * within / 2.0;
        }
        total
    }

    /// When request `index` (0-based) is due, or `None` past the curve's end.
    pub fn due(&self, index: u64) -> Option<Duration> {
        let target = index as f64;
        let placed = self
            .placed
            .iter()
            .find(|placed| target < placed.start_count + placed.count)?;
        let Segment {
            start_rate_per_s: a,
            end_rate_per_s: b,
            duration_s,
        } = placed.segment;
        let x = target - placed.start_count;
        let slope = if duration_s.is_finite() {
            (b - a) / duration_s
        } else {
            0.0
        };
        // Solve a·t + slope·t²/2 = x for the smallest t ≥ 0, in the form that
        // stays accurate when slope is 0 or tiny: t = 2x / (a + √(a² + 2·slope·x)).
        let root = (a * a + 2.0 * slope * x).max(0.0).sqrt();
        let t = if x == 0.0 { 0.0 } else { 2.0 * x / (a + root) };
        let t = t.min(duration_s);
        Some(Duration::from_secs_f64(placed.start_s + t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due_s(curve: &RateCurve, index: u64) -> f64 {
        curve.due(index).unwrap().as_secs_f64()
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let curve = RateCurve::constant(2000.0, 5.0);
        assert_eq!(curve.expected_requests(), 10_000.0);
        assert!((due_s(&curve, 0)).abs() < 1e-12);
        assert!((due_s(&curve, 1) - 0.0005).abs() < 1e-12);
        assert!((due_s(&curve, 9_999) - 4.9995).abs() < 1e-9);
        assert!(curve.due(10_000).is_none());
        let open = RateCurve::constant(10.0, f64::INFINITY);
        assert!((due_s(&open, 1_000_000) - 100_000.0).abs() < 1e-6);
    }

    #[test]
    fn steps_hold_each_rate() {
        let curve = RateCurve::steps(&[100.0, 200.0, 400.0], 10.0);
        assert_eq!(curve.expected_requests(), 7_000.0);
        assert!((due_s(&curve, 999) - 9.99).abs() < 1e-9);
        assert!((due_s(&curve, 1_000) - 10.0).abs() < 1e-9);
        assert!((due_s(&curve, 3_000) - 20.0).abs() < 1e-9);
        assert!((due_s(&curve, 3_004) - 20.01).abs() < 1e-9);
        assert_eq!(curve.max_rate_per_s(), 400.0);
    }

    #[test]
    fn ramp_matches_the_integral() {
        let curve = RateCurve::ramp(0.0, 1000.0, 60.0);
        assert!((curve.expected_requests() - 30_000.0).abs() < 1e-9);
        // N(t) = 1000/60 · t²/2, so request i is due at sqrt(120 i / 1000).
        for index in [1_u64, 100, 7_500, 29_999] {
            let expected = (120.0 * index as f64 / 1000.0).sqrt();
            assert!((due_s(&curve, index) - expected).abs() < 1e-9, "{index}");
            assert!((curve.expected_by(expected) - index as f64).abs() < 1e-6);
        }
        let down = RateCurve::ramp(1000.0, 0.0, 10.0);
        assert!((down.expected_requests() - 5_000.0).abs() < 1e-9);
        assert!(due_s(&down, 4_999) <= 10.0);
    }

    #[test]
    fn due_times_are_monotonic() {
        let curve = RateCurve::new(&[
            Segment {
                start_rate_per_s: 5.0,
                end_rate_per_s: 500.0,
                duration_s: 3.0,
            },
            Segment {
                start_rate_per_s: 500.0,
                end_rate_per_s: 500.0,
                duration_s: 2.0,
            },
            Segment {
                start_rate_per_s: 500.0,
                end_rate_per_s: 0.0,
                duration_s: 1.0,
            },
        ]);
        let mut last = Duration::ZERO;
        let mut index = 0;
        while let Some(due) = curve.due(index) {
            assert!(due >= last, "index {index}");
            last = due;
            index += 1;
        }
        assert_eq!(index as f64, curve.expected_requests().ceil());
    }
}
