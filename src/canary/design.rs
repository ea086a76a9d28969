//! The share check's plan: a group-sequential repeated TOST with a fail
//! side, on exact binomial boundaries, sized from the run's budget.
//!
//! A tested variant expected at p0 ± δ has a band [L, H]. Four one-sided
//! tests watch its count of hits X among n responses, each designed at an
//! edge with exact binomial boundaries ([`binomial_boundary`]) and
//! Hwang–Shih–DeCani(−4) α-spending over geometric looks:
//! - **pass** when, at one look, X is high enough to reject "share ≤ L"
//!   and low enough to reject "share ≥ H" (TOST: each at α, an
//!   intersection–union test, so a share on an edge or outside the band
//!   passes with probability ≤ α);
//! - **fail** when X is low enough to reject "share ≥ L" or high enough to
//!   reject "share ≤ H" (each at α·(1 − [`GROSS_SHARE`]); the rest of α is
//!   the always-valid sequence's that fails gross errors in tens of
//!   responses, so a share inside the band fails with probability ≤ α);
//! - **inconclusive** only when the last look is reached undecided, which
//!   happens with probability ≥ 5% only for shares within the *zone* of an
//!   edge: the distance at which the plan passes (inside) or fails
//!   (outside) with the planned power. A larger budget narrows it.
//!
//! The zone, the fixed-sample test it is compared with and the expected
//! sample at p0 are all computed exactly by walking the design
//! ([`binomial_walk`]), not simulated.
use super::split::Expectation;
use crate::stats::binomial::normal_quantile;
use crate::stats::sequential::{
    binomial_boundary, binomial_increment, binomial_walk, fractions, geometric_looks, Operating,
    Side, Spending, Stop,
};

/// The share of α the always-valid sequence spends on failing gross
/// errors at any time (a dead canary, 25% where 5% was meant).
pub const GROSS_SHARE: f64 = 0.1;
/// The first look, and each next one this many times the last.
pub const FIRST_LOOK: u64 = 32;
pub const LOOK_RATIO: f64 = 1.25;

/// A tested share's design: looks and their bounds, and what it can decide.
#[derive(Debug, Clone)]
pub struct ShareDesign {
    pub expectation: Expectation,
    /// Responses at each look; the last is the plan's maximum.
    pub looks: Vec<u64>,
    /// Per look, the least count that rejects "share ≤ L" (Some(0) when L
    /// is 0), the greatest that rejects "share ≥ H" (Some(n) when H is 1),
    /// the greatest that fails low and the least that fails high.
    pass_from: Vec<Option<u64>>,
    pass_to: Vec<Option<u64>>,
    fail_to: Vec<Option<u64>>,
    fail_from: Vec<Option<u64>>,
    pub alpha: f64,
    pub power: f64,
    /// What the design can tell apart (exact): see [`Zone`].
    pub zone: Zone,
    /// The design at p0: pass and fail chances and mean responses.
    pub at_share: Operating,
    /// Responses a fixed-sample test needs for the same α, power and zone.
    pub fixed: u64,
}

/// The distances from the band's edges at which the plan decides with its
/// power: shares at least `pass` inside both edges pass, shares at least
/// `fail` outside an edge fail. `None`: not within the band (pass) or the
/// unit interval (fail) — the budget is too small for that power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    pub pass: Option<f64>,
    pub fail: Option<f64>,
}

impl Zone {
    /// The one distance the plan states: the wider of the two.
    pub fn width(&self) -> Option<f64> {
        Some(self.pass?.max(self.fail?))
    }
}

impl ShareDesign {
    /// The design whose last look is at `budget` responses.
    pub fn planned(expectation: &Expectation, alpha: f64, power: f64, budget: u64) -> Self {
        let looks = geometric_looks(FIRST_LOOK, LOOK_RATIO, budget.max(1));
        let fractions = fractions(&looks);
        Self::at_looks(expectation, alpha, power, looks, &fractions)
    }

    /// A design with one look at `responses`: the shards' merged run,
    /// decided once at its fixed size (its bounds only: what it decides
    /// is what the shards' plan said).
    pub fn one_look(expectation: &Expectation, alpha: f64, power: f64, responses: u64) -> Self {
        Self::bounds_at_looks(expectation, alpha, power, vec![responses.max(1)], &[1.0])
    }

    /// The design at the given looks and information fractions, with what
    /// it can decide (its zone, the fixed test's size, its behaviour at p0).
    pub fn at_looks(
        expectation: &Expectation,
        alpha: f64,
        power: f64,
        looks: Vec<u64>,
        fractions: &[f64],
    ) -> Self {
        let mut design = Self::bounds_at_looks(expectation, alpha, power, looks, fractions);
        design.at_share = design.operating(expectation.share);
        design.zone = design.find_zone();
        design.fixed = design
            .zone
            .width()
            .map_or(0, |zone| fixed_size(expectation, alpha, power, zone));
        design
    }

    /// The bounds alone (what a run's last, unplanned look needs).
    pub fn bounds_at_looks(
        expectation: &Expectation,
        alpha: f64,
        power: f64,
        looks: Vec<u64>,
        fractions: &[f64],
    ) -> Self {
        let (low, high) = expectation.band();
        let fail_alpha = alpha * (1.0 - GROSS_SHARE);
        let spending = Spending::HSD;
        let edge =
            |p: f64, a: f64, side: Side| binomial_boundary(&looks, fractions, p, a, spending, side);
        let pass_from = if low <= 0.0 {
            vec![Some(0); looks.len()]
        } else {
            edge(low, alpha, Side::Upper)
        };
        let fail_to = if low <= 0.0 {
            vec![None; looks.len()]
        } else {
            edge(low, fail_alpha, Side::Lower)
        };
        let pass_to = if high >= 1.0 {
            looks.iter().map(|n| Some(*n)).collect()
        } else {
            edge(high, alpha, Side::Lower)
        };
        let fail_from = if high >= 1.0 {
            vec![None; looks.len()]
        } else {
            edge(high, fail_alpha, Side::Upper)
        };
        Self {
            expectation: expectation.clone(),
            looks,
            pass_from,
            pass_to,
            fail_to,
            fail_from,
            alpha,
            power,
            zone: Zone {
                pass: None,
                fail: None,
            },
            at_share: Operating::default(),
            fixed: 0,
        }
    }

    /// The plan's maximum: responses at the last look.
    pub fn budget(&self) -> u64 {
        self.looks.last().copied().unwrap_or(0)
    }

    /// What look `look` decides for `hits` of its responses, with
    /// `unattributable` more that may or may not be this variant's: a
    /// decision needs every attribution to agree.
    pub fn decide(&self, look: usize, hits: u64, unattributable: u64) -> Stop {
        let most = hits + unattributable;
        let passes = self.pass_from[look].is_some_and(|a| hits >= a)
            && self.pass_to[look].is_some_and(|b| most <= b);
        if passes {
            return Stop::Pass;
        }
        let fails = self.fail_to[look].is_some_and(|c| most <= c)
            || self.fail_from[look].is_some_and(|d| hits >= d);
        if fails {
            Stop::Fail
        } else {
            Stop::Continue
        }
    }

    /// The design's exact pass and fail chances and mean responses at a
    /// true share.
    pub fn operating(&self, share: f64) -> Operating {
        binomial_walk(&self.looks, share, |look, hits| self.decide(look, hits, 0))
    }

    /// The distance from an edge at which the chance of the wanted
    /// outcome reaches the power, searched up to `reach` (None beyond).
    /// Power is monotone in the distance; it is searched by false position
    /// on its normal quantile (nearly linear in the distance).
    fn distance(&self, edge: f64, toward: f64, want: Stop, reach: f64) -> Option<f64> {
        let chance = |distance: f64| {
            let operating = self.operating(edge + toward * distance);
            match want {
                Stop::Pass => operating.pass,
                _ => operating.fail,
            }
        };
        let target = normal_quantile(self.power);
        let probit = |p: f64| normal_quantile(p.clamp(1e-12, 1.0 - 1e-12)) - target;
        let (mut low, mut high) = (0.0, reach);
        let (mut low_value, mut high_value) = (probit(chance(low)), probit(chance(high)));
        if high_value < 0.0 {
            return None;
        }
        for _ in 0..40 {
            if high - low < 1e-6 {
                break;
            }
            let guess = low + (high - low) * (-low_value) / (high_value - low_value);
            // Keep each step inside the bracket's middle 90%.
            let guess = guess.clamp(low + 0.05 * (high - low), high - 0.05 * (high - low));
            let value = probit(chance(guess));
            if value >= 0.0 {
                (high, high_value) = (guess, value);
            } else {
                (low, low_value) = (guess, value);
            }
        }
        Some(high)
    }

    fn find_zone(&self) -> Zone {
        let (low, high) = self.expectation.band();
        let share = self.expectation.share;
        let mut pass = Vec::new();
        let mut fail = Vec::new();
        if low > 0.0 {
            pass.push(self.distance(low, 1.0, Stop::Pass, share - low));
            fail.push(self.distance(low, -1.0, Stop::Fail, low * 0.999));
        }
        if high < 1.0 {
            pass.push(self.distance(high, -1.0, Stop::Pass, high - share));
            fail.push(self.distance(high, 1.0, Stop::Fail, (1.0 - high) * 0.999));
        }
        let widest = |sides: Vec<Option<f64>>| {
            sides
                .into_iter()
                .try_fold(0.0_f64, |widest, side| Some(widest.max(side?)))
        };
        Zone {
            pass: widest(pass),
            fail: widest(fail),
        }
    }
}

/// The responses the plan decides at (its budget) when the run gives no
/// bound: the size whose zone is half the tolerance (shares at least δ/2
/// inside or outside an edge are decided with the plan's power).
pub fn default_budget(expectation: &Expectation, alpha: f64, power: f64) -> u64 {
    budget_for_zone(expectation, alpha, power, expectation.tolerance / 2.0)
}

/// The responses a plan needs to decide shares `target` from an edge with
/// its power (two significant digits, a few percent either way).
pub fn budget_for_zone(expectation: &Expectation, alpha: f64, power: f64, target: f64) -> u64 {
    let guess = (normal_budget(expectation, alpha, power, target) * 1.05).ceil() as u64;
    if guess > 2_000_000 {
        // Beyond what a plan is walked for in milliseconds: the normal
        // approximation (within a few percent there).
        return round_up(guess);
    }
    let zone = ShareDesign::planned(expectation, alpha, power, guess.max(FIRST_LOOK))
        .zone
        .width()
        .unwrap_or(target);
    // The zone narrows as 1/√n: one correction lands within a few percent.
    let budget = guess as f64 * (zone / target).powi(2);
    round_up(budget.ceil() as u64)
}

/// Rounds a plan up to two significant digits (13,008 → 14,000).
fn round_up(value: u64) -> u64 {
    let mut unit = 1;
    while value / unit >= 100 {
        unit *= 10;
    }
    value.div_ceil(unit) * unit
}

/// The normal-approximation size of one-sided tests at each edge at
/// distance `zone` (Fleiss: n = (z₁₋α·√(p₀q₀) + z₁₋β·√(p₁q₁))² / d²).
fn normal_budget(expectation: &Expectation, alpha: f64, power: f64, zone: f64) -> f64 {
    let (low, high) = expectation.band();
    let (za, zb) = (normal_quantile(1.0 - alpha), normal_quantile(power));
    let size = |edge: f64, alternative: f64| {
        let alternative = alternative.clamp(1e-9, 1.0 - 1e-9);
        (za * (edge * (1.0 - edge)).sqrt() + zb * (alternative * (1.0 - alternative)).sqrt())
            .powi(2)
            / (zone * zone)
    };
    let mut largest: f64 = 1.0;
    for edge in [low, high] {
        if edge > 0.0 && edge < 1.0 {
            largest = largest
                .max(size(edge, edge - zone))
                .max(size(edge, edge + zone));
        }
    }
    largest
}

/// The fixed-sample test's size for the same decisions: the fewest
/// responses at which one look at level α on each side passes shares
/// `zone` inside both edges and fails shares `zone` outside either with
/// probability `power` (exact binomial; found by bisection, so on the
/// binomial's saw-tooth it is the first n of the crossing the bisection
/// meets).
pub fn fixed_size(expectation: &Expectation, alpha: f64, power: f64, zone: f64) -> u64 {
    let (low, high) = expectation.band();
    let decides = |n: u64| {
        let mut points = Vec::new();
        if low > 0.0 {
            points.push((low, low + zone, Side::Upper));
            points.push((low, low - zone, Side::Lower));
        }
        if high < 1.0 {
            points.push((high, high - zone, Side::Lower));
            points.push((high, high + zone, Side::Upper));
        }
        points.into_iter().all(|(edge, truth, side)| {
            if !(0.0..=1.0).contains(&truth) {
                return true;
            }
            let bound = binomial_boundary(&[n], &[1.0], edge, alpha, Spending::HSD, side)[0];
            let Some(bound) = bound else { return false };
            let at_truth = binomial_increment(n, truth);
            let chance = match side {
                Side::Upper => at_truth.at_least(bound as i64),
                Side::Lower => at_truth.at_most(bound as i64),
            };
            chance >= power
        })
    };
    let mut high_n = (normal_budget(expectation, alpha, power, zone).ceil() as u64).max(2);
    while !decides(high_n) {
        high_n *= 2;
        if high_n > 1 << 40 {
            return high_n;
        }
    }
    let mut low_n = high_n / 4;
    while high_n - low_n > 1 {
        let middle = (low_n + high_n) / 2;
        if decides(middle) {
            high_n = middle;
        } else {
            low_n = middle;
        }
    }
    high_n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(share: f64, tolerance: f64) -> Expectation {
        Expectation { share, tolerance }
    }

    #[test]
    fn a_budget_of_fifty_thousand_decides_within_a_point() {
        let design = ShareDesign::planned(&expect(0.2, 0.03), 0.01, 0.95, 50_000);
        let zone = design.zone.width().unwrap();
        assert!(zone < 0.008, "{zone}");
        let ratio = design.budget() as f64 / design.fixed as f64;
        assert!(ratio <= 1.2, "max/fixed {ratio}");
        assert!(design.at_share.expected_n <= 0.8 * design.fixed as f64);
        println!(
            "zone {zone} fixed {} ratio {ratio} E[n] {}",
            design.fixed, design.at_share.expected_n
        );
    }

    #[test]
    fn the_default_budget_decides_half_a_tolerance_out() {
        let e = expect(0.1, 0.02);
        let budget = default_budget(&e, 0.01, 0.95);
        let design = ShareDesign::planned(&e, 0.01, 0.95, budget);
        let zone = design.zone.width().unwrap();
        assert!((0.0095..=0.0101).contains(&zone), "{budget}: {zone}");
    }

    #[test]
    fn one_look_keeps_alpha_at_the_edges() {
        let e = expect(0.1, 0.02);
        let design = ShareDesign::one_look(&e, 0.01, 0.95, 10_000);
        assert!(design.operating(0.08).pass <= 0.01);
        assert!(design.operating(0.12).pass <= 0.01);
        assert!(design.operating(0.0800001).fail <= 0.009);
    }

    #[test]
    fn a_full_share_is_one_sided() {
        let design = ShareDesign::planned(&expect(1.0, 0.01), 0.01, 0.95, 5_000);
        assert!(design.operating(0.99).pass <= 0.01);
        assert!(design.operating(0.999).pass > 0.95);
        assert!(design.operating(0.98).fail > 0.95);
        assert!(design.zone.width().is_some());
    }

    #[test]
    fn rounding_keeps_two_digits() {
        assert_eq!(round_up(13_008), 14_000);
        assert_eq!(round_up(99), 99);
        assert_eq!(round_up(101), 110);
    }
}
