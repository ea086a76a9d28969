//! Requests that got no answer a variant claims (a closed connection, a
//! timeout, an unmarked 502), attributed by the deficit they leave.
//!
//! Such a response belongs to no variant, so the error check counts it
//! both ways and it can decide nothing. But when the gateway's split is
//! known — the expected share, from `--expect` or `--aws-stage` — a variant
//! that drops requests answers fewer than its share: among the responses
//! of the variant and the baseline, its share is π(1 − d_v) / (π(1 − d_v) +
//! (1 − π)(1 − d_b)), below π = p_v / (p_v + p_b) exactly when it drops more
//! than the baseline (d_v > d_b), and equal to π when both drop alike.
//!
//! The check is one-sided: *fail* when the variant's count among those
//! responses is below π with confidence — a group-sequential exact
//! binomial lower bound designed at π with α (the split's looks and
//! spending) — and the deficit it implies, π·(responses + unanswered) −
//! the variant's count, is no more than the unanswered requests could
//! hold (3 standard deviations of the count allowed). Equal drop rates
//! fail with probability ≤ α. A deficit larger than the unanswered is not
//! drops: the split itself is off (the share check's business), and the
//! check says so, inconclusive.
//!
//! **Assumption**: the expected share is the gateway's real split. When
//! the share check failed, the attribution is off and the check is
//! inconclusive.
use crate::stats::sequential::{
    binomial_boundary, binomial_walk, fractions, geometric_looks, Side, Spending, Stop,
};

/// A variant's drop test: its share among its and the baseline's
/// responses, looks and lower bounds.
#[derive(Debug, Clone)]
pub struct DropDesign {
    /// π: the variant's expected share of its and the baseline's requests.
    pub share: f64,
    pub looks: Vec<u64>,
    bounds: Vec<Option<u64>>,
    pub alpha: f64,
    pub power: f64,
    /// The drop rate (beyond the baseline's) the plan detects with its
    /// power; None if not even all of them would be.
    pub detectable: Option<f64>,
}

impl DropDesign {
    /// The plan over `budget` responses of the variant and the baseline.
    pub fn planned(share: f64, budget: u64, alpha: f64, power: f64) -> Self {
        let looks = geometric_looks(
            super::design::FIRST_LOOK,
            super::design::LOOK_RATIO,
            budget.max(1),
        );
        let fractions = fractions(&looks);
        let bounds =
            binomial_boundary(&looks, &fractions, share, alpha, Spending::HSD, Side::Lower);
        let mut design = Self {
            share,
            looks,
            bounds,
            alpha,
            power,
            detectable: None,
        };
        design.detectable = design.find_detectable();
        design
    }

    /// One look with all of α at `responses` (merged shards).
    pub fn one_look(share: f64, responses: u64, alpha: f64) -> Self {
        let looks = vec![responses.max(1)];
        let bounds = binomial_boundary(&looks, &[1.0], share, alpha, Spending::HSD, Side::Lower);
        Self {
            share,
            looks,
            bounds,
            alpha,
            power: 0.0,
            detectable: None,
        }
    }

    /// One last look at `responses` after the first planned looks at or
    /// below them, spending the rest of α there (a run that ends before
    /// its plan): a design of those looks, the last one the new.
    pub fn final_look(&self, responses: u64) -> Option<Self> {
        let taken = self.looks.partition_point(|n| *n < responses);
        if taken == self.looks.len() || self.looks.get(taken) == Some(&responses) {
            return None;
        }
        let budget = self.budget().max(1) as f64;
        let mut looks = self.looks[..taken].to_vec();
        let mut fractions: Vec<f64> = looks.iter().map(|n| *n as f64 / budget).collect();
        looks.push(responses.max(1));
        fractions.push(1.0);
        let bounds = binomial_boundary(
            &looks,
            &fractions,
            self.share,
            self.alpha,
            Spending::HSD,
            Side::Lower,
        );
        Some(Self {
            looks,
            bounds,
            detectable: None,
            ..self.clone()
        })
    }

    /// The variant's share among the two when it drops `rate` of its
    /// requests and the baseline none.
    pub fn share_when_dropping(&self, rate: f64) -> f64 {
        let kept = self.share * (1.0 - rate);
        kept / (kept + 1.0 - self.share)
    }

    /// The chance the plan fails a variant dropping `rate` more.
    pub fn power_at(&self, rate: f64) -> f64 {
        binomial_walk(&self.looks, self.share_when_dropping(rate), |look, hits| {
            if self.below(look, hits) {
                Stop::Fail
            } else {
                Stop::Continue
            }
        })
        .fail
    }

    fn find_detectable(&self) -> Option<f64> {
        if self.power_at(0.999) < self.power {
            return None;
        }
        let (mut low, mut high) = (0.0, 0.999);
        for _ in 0..30 {
            let middle = 0.5 * (low + high);
            if self.power_at(middle) >= self.power {
                high = middle;
            } else {
                low = middle;
            }
        }
        Some(high)
    }

    /// Whether `hits` of the look's responses is below the bound.
    pub fn below(&self, look: usize, hits: u64) -> bool {
        self.bounds[look].is_some_and(|bound| hits <= bound)
    }

    /// The look at `responses`, if it is one.
    pub fn look_at(&self, responses: u64) -> Option<usize> {
        self.looks.binary_search(&responses).ok()
    }

    pub fn budget(&self) -> u64 {
        self.looks.last().copied().unwrap_or(0)
    }
}

/// What the drop test found for one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drops {
    /// The variant's and the baseline's responses, and the unanswered.
    pub variant: u64,
    pub baseline: u64,
    pub unanswered: u64,
    /// π·(responses + unanswered) − variant: the variant's requests
    /// missing from its answers (negative: more than its share).
    pub deficit: f64,
    pub finding: Finding,
    /// The look it was decided at (1-based) and its responses.
    pub look: Option<(usize, u64)>,
}

/// What the deficit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Every request got a variant's answer: nothing to attribute.
    NoneUnanswered,
    /// No deficit beyond chance (so far).
    NoSign,
    /// The variant answers less than its share by what the unanswered
    /// requests hold: it drops more than the baseline.
    Drops,
    /// A deficit larger than the unanswered requests could hold: the
    /// split is off, not the drops.
    NotDrops,
}

impl Drops {
    /// The test at look `look` (or, with `None`, with whatever the counts
    /// are, no decision) of the variant's `variant` and the baseline's
    /// `baseline` responses, `unanswered` more no variant claimed.
    pub fn at(
        design: &DropDesign,
        look: Option<usize>,
        variant: u64,
        baseline: u64,
        unanswered: u64,
    ) -> Self {
        let pair = variant + baseline;
        let deficit = design.share * (pair + unanswered) as f64 - variant as f64;
        let spread = (pair as f64 * design.share * (1.0 - design.share)).sqrt();
        let crossed = look.is_some_and(|look| design.below(look, variant));
        let finding = if unanswered == 0 {
            Finding::NoneUnanswered
        } else if !crossed {
            Finding::NoSign
        } else if deficit <= unanswered as f64 + 3.0 * spread {
            Finding::Drops
        } else {
            Finding::NotDrops
        };
        Self {
            variant,
            baseline,
            unanswered,
            deficit,
            finding,
            look: look
                .filter(|_| crossed)
                .map(|look| (look + 1, design.looks[look])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_drops_fail_at_most_alpha_and_six_percent_is_seen() {
        let design = DropDesign::planned(0.1, 59_000, 0.01, 0.95);
        assert!(design.power_at(0.0) <= 0.01);
        let detectable = design.detectable.unwrap();
        // A 10% canary dropping 6% of its requests within 60,000: a share of
        // 9.46% among the answered, detected with power ≥ 0.95.
        assert!(detectable < 0.06, "{detectable}");
        assert!(design.power_at(0.06) >= 0.95);
    }

    #[test]
    fn a_deficit_larger_than_the_unanswered_is_not_drops() {
        let design = DropDesign::planned(0.1, 50_000, 0.01, 0.95);
        let look = design.looks.len() - 1;
        // 9% of 50,000 answered, 10 unanswered: 500 missing, not drops.
        let split_off = Drops::at(&design, Some(look), 4_500, 45_500, 10);
        assert_eq!(split_off.finding, Finding::NotDrops);
        // 9.46% answered, 300 unanswered: drops.
        let dropping = Drops::at(&design, Some(look), 4_700, 45_000, 300);
        assert_eq!(dropping.finding, Finding::Drops);
        let clean = Drops::at(&design, Some(look), 5_000, 45_000, 0);
        assert_eq!(clean.finding, Finding::NoneUnanswered);
    }
}
