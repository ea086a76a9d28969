//! The share check's decision procedure, sample by sample: what `gateprobe
//! canary` runs while traffic flows and what the seeded simulation in
//! `tests/it/stats.rs` measures (one code path for both).
//!
//! For each tested variant with expected share p0 and tolerance δ:
//! 1. *Dead variant*: zero responses from it after ⌈ln α_d / ln(1 − p0)⌉
//!    classified responses fails at once (P(that | p0) ≤ α_d).
//! 2. *Sequential*: paired Wald SPRTs (p0 against p0 ± δ, α_s/2 each) after
//!    every response; the first side to accept p0 ± δ fails, both accepting
//!    p0 passes. Valid however often it is looked at.
//!
//! The two fail paths are nearly disjoint, so their levels add up: α is
//! split α_d = 0.6·α, α_s = 0.4·α (dead after 49 requests at 10%, α = 0.01).
//! Spending all of α on each — dead after ⌈ln α / ln(1 − p0)⌉ = 44 — was
//! measured to fail a correct 10% split 1.85% of the time, not 1%.
//! 3. *Truncation*: at the fixed-horizon size (TOST n) an undecided test is
//!    decided by the fixed rule below: the sequential test never needs more
//!    requests than the fixed one would (Wald 1947 §3.9 on truncation).
//! 4. *Fixed rule* (also at the end of a run cut short): pass when the
//!    (1 − 2α) Clopper–Pearson interval lies inside p0 ± δ; fail when it lies
//!    outside, or when the exact binomial test rejects p0 at p < 0.001 with
//!    |p̂ − p0| > δ; inconclusive otherwise.
//!
//! With several tested variants each runs at α/k (Bonferroni), so a correct
//! split fails with probability at most about α in all.
use crate::stats::binomial::{
    binomial_test_two_sided, clopper_pearson, dead_after, tost_sample_size,
};
use crate::stats::sprt::{Equivalence, PairedSprt};

/// The share of α spent on the dead-variant rule; the rest goes to the SPRTs.
pub const DEAD_SHARE_OF_ALPHA: f64 = 0.6;

/// p-value below which the exact test alone can fail a share (with |p̂ − p0| > δ).
pub const DECISIVE_P: f64 = 0.001;

/// What a tested variant is expected to receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub share: f64,
    pub tolerance: f64,
}

impl Expectation {
    pub fn band(&self) -> (f64, f64) {
        (
            (self.share - self.tolerance).max(0.0),
            (self.share + self.tolerance).min(1.0),
        )
    }
}

/// How a share was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    DeadVariant,
    Sequential,
    FixedHorizon,
    EndOfRun,
}

/// A decision with the evidence it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// `Equivalence::Continue` stands for inconclusive here.
    pub verdict: Equivalence,
    pub rule: Rule,
    pub hits: u64,
    pub trials: u64,
}

/// The fixed-horizon rule on `hits` of `trials`, at level α.
pub fn fixed_rule(expectation: &Expectation, hits: u64, trials: u64, alpha: f64) -> Equivalence {
    if trials == 0 {
        return Equivalence::Continue;
    }
    let (low, high) = clopper_pearson(hits, trials, 1.0 - 2.0 * alpha);
    let (band_low, band_high) = expectation.band();
    let off = (hits as f64 / trials as f64 - expectation.share).abs() > expectation.tolerance;
    let outside = high < expectation.share - expectation.tolerance
        || low > expectation.share + expectation.tolerance;
    if outside || (off && exact_p(expectation.share, hits, trials) < DECISIVE_P) {
        Equivalence::Fail
    } else if low >= band_low && high <= band_high {
        Equivalence::Pass
    } else {
        Equivalence::Continue
    }
}

/// The exact two-sided binomial p-value, including the one-sided edges
/// (at 0% or 100% any contrary response is impossible under p0).
pub fn exact_p(share: f64, hits: u64, trials: u64) -> f64 {
    if share <= 0.0 {
        if hits > 0 {
            0.0
        } else {
            1.0
        }
    } else if share >= 1.0 {
        if hits < trials {
            0.0
        } else {
            1.0
        }
    } else {
        binomial_test_two_sided(hits, trials, share)
    }
}

/// One variant's sequential share test.
#[derive(Debug, Clone)]
pub struct ShareTest {
    pub expectation: Expectation,
    alpha: f64,
    sprt: PairedSprt,
    dead_after: Option<u64>,
    horizon: u64,
    hits: u64,
    trials: u64,
    decision: Option<Decision>,
}

impl ShareTest {
    /// `alpha` is this variant's level (already divided among variants);
    /// `beta` the chance of passing a share that is off by δ.
    pub fn new(expectation: Expectation, alpha: f64, beta: f64) -> Self {
        let Expectation { share, tolerance } = expectation;
        let horizon = if share <= 0.0 || share >= 1.0 {
            // One-sided: the SPRT alone decides; cap at the size that
            // shows a share of at most δ with zero hits at level α.
            (alpha.ln() / (1.0 - tolerance).ln()).ceil() as u64
        } else {
            tost_sample_size(share, tolerance, alpha, 1.0 - beta)
        };
        let dead =
            (share > 0.0 && share < 1.0).then(|| dead_after(share, DEAD_SHARE_OF_ALPHA * alpha));
        let sprt_alpha = if dead.is_some() {
            (1.0 - DEAD_SHARE_OF_ALPHA) * alpha
        } else {
            alpha
        };
        Self {
            sprt: PairedSprt::new(share, tolerance, sprt_alpha, beta),
            dead_after: dead,
            horizon: horizon.max(1),
            alpha,
            expectation,
            hits: 0,
            trials: 0,
            decision: None,
        }
    }

    /// This variant's level (α divided among the tested variants).
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Classified responses without one from this variant that fail it.
    pub fn dead_after(&self) -> Option<u64> {
        self.dead_after
    }

    /// The fixed-horizon size, where an undecided test is truncated.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.trials)
    }

    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    fn decide(&mut self, verdict: Equivalence, rule: Rule) {
        self.decision = Some(Decision {
            verdict,
            rule,
            hits: self.hits,
            trials: self.trials,
        });
    }

    /// Adds one classified response (is it this variant?).
    pub fn observe(&mut self, hit: bool) -> Option<Decision> {
        if self.decision.is_some() {
            return self.decision;
        }
        self.trials += 1;
        self.hits += u64::from(hit);
        let sequential = self.sprt.observe(hit);
        if self.hits == 0 && self.dead_after.is_some_and(|after| self.trials >= after) {
            self.decide(Equivalence::Fail, Rule::DeadVariant);
        } else if sequential != Equivalence::Continue {
            self.decide(sequential, Rule::Sequential);
        } else if self.trials >= self.horizon {
            let verdict = fixed_rule(&self.expectation, self.hits, self.trials, self.alpha);
            self.decide(verdict, Rule::FixedHorizon);
        }
        self.decision
    }

    /// The decision, or the fixed rule on what was seen when the run ended
    /// before one.
    pub fn finish(&mut self) -> Decision {
        if self.decision.is_none() {
            let verdict = fixed_rule(&self.expectation, self.hits, self.trials, self.alpha);
            self.decide(verdict, Rule::EndOfRun);
        }
        self.decision.expect("decided above")
    }
}

/// The split: one [`ShareTest`] per tested variant, at α/k each.
#[derive(Debug, Clone)]
pub struct Split {
    pub tests: Vec<ShareTest>,
}

/// Where the split stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    /// Every test decided (pass or inconclusive at its horizon), none failed.
    Decided,
    /// A test failed: no more traffic is needed.
    Failed,
}

impl Split {
    pub fn new(expectations: &[Expectation], alpha: f64, beta: f64) -> Self {
        let each = alpha / expectations.len().max(1) as f64;
        Self {
            tests: expectations
                .iter()
                .map(|expectation| ShareTest::new(expectation.clone(), each, beta))
                .collect(),
        }
    }

    /// Classified responses the split needs at most (the longest horizon).
    pub fn horizon(&self) -> u64 {
        self.tests.iter().map(ShareTest::horizon).max().unwrap_or(0)
    }

    /// Adds one classified response: `variant` is the index of the tested
    /// variant it came from, or `None` for an untested variant (the baseline).
    pub fn observe(&mut self, variant: Option<usize>) -> State {
        for (index, test) in self.tests.iter_mut().enumerate() {
            test.observe(variant == Some(index));
        }
        self.state()
    }

    pub fn state(&self) -> State {
        let decisions: Vec<Option<Decision>> = self.tests.iter().map(ShareTest::decision).collect();
        if decisions
            .iter()
            .any(|decision| decision.is_some_and(|d| d.verdict == Equivalence::Fail))
        {
            State::Failed
        } else if decisions.iter().all(Option::is_some) {
            State::Decided
        } else {
            State::Running
        }
    }

    /// The overall verdict once every test is decided or finished.
    pub fn finish(&mut self) -> Equivalence {
        let verdicts: Vec<Equivalence> =
            self.tests.iter_mut().map(|t| t.finish().verdict).collect();
        if verdicts.contains(&Equivalence::Fail) {
            Equivalence::Fail
        } else if verdicts.iter().all(|v| *v == Equivalence::Pass) {
            Equivalence::Pass
        } else {
            Equivalence::Continue
        }
    }

    /// Runs the procedure on requests drawn with the given true `shares`
    /// (one per tested variant; the rest go to untested variants) until it
    /// stops; returns the verdict and the classified responses it used.
    pub fn simulate(
        &self,
        shares: &[f64],
        rng: &mut impl rand::Rng,
        cap: u64,
    ) -> (Equivalence, u64) {
        let mut split = self.clone();
        for used in 1..=cap {
            let draw: f64 = rng.random();
            let mut cumulative = 0.0;
            let variant = shares.iter().position(|share| {
                cumulative += share;
                draw < cumulative
            });
            if split.observe(variant) != State::Running {
                return (split.finish(), used);
            }
        }
        (split.finish(), cap)
    }

    /// Mean classified responses to a decision when every variant gets
    /// exactly its expected share: a seeded simulation, printed before a
    /// run (Wald's approximation ignores the pairing and the truncation).
    pub fn expected_requests(&self) -> f64 {
        use rand::SeedableRng;
        let horizon = self.horizon().max(1);
        // Planning must stay a fraction of a second whatever the tolerance:
        // the simulation gets a fixed budget of draws, not a fixed run count.
        let runs = (5_000_000 / horizon).clamp(1, 1_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let shares: Vec<f64> = self.tests.iter().map(|t| t.expectation.share).collect();
        let total: u64 = (0..runs)
            .map(|_| self.simulate(&shares, &mut rng, horizon).1)
            .sum();
        total as f64 / runs as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_percent() -> Expectation {
        Expectation {
            share: 0.10,
            tolerance: 0.02,
        }
    }

    #[test]
    fn fixed_rule_passes_inside_fails_outside() {
        let e = ten_percent();
        assert_eq!(fixed_rule(&e, 1_000, 10_000, 0.01), Equivalence::Pass);
        assert_eq!(fixed_rule(&e, 2_000, 10_000, 0.01), Equivalence::Fail);
        assert_eq!(fixed_rule(&e, 10, 100, 0.01), Equivalence::Continue);
    }

    #[test]
    fn dead_canary_fails_at_49() {
        let mut test = ShareTest::new(ten_percent(), 0.01, 0.05);
        assert_eq!(test.dead_after(), Some(49));
        for _ in 0..48 {
            assert_eq!(test.observe(false), None);
        }
        let decision = test.observe(false).unwrap();
        assert_eq!(decision.verdict, Equivalence::Fail);
        assert_eq!(decision.rule, Rule::DeadVariant);
        assert_eq!(decision.trials, 49);
    }

    #[test]
    fn one_sided_expectations() {
        let none = Expectation {
            share: 0.0,
            tolerance: 0.01,
        };
        let mut test = ShareTest::new(none.clone(), 0.01, 0.05);
        let mut used = 0;
        while test.observe(false).is_none() {
            used += 1;
        }
        assert_eq!(test.decision().unwrap().verdict, Equivalence::Pass);
        assert!(used < 460, "{used}");
        let mut test = ShareTest::new(none, 0.01, 0.05);
        test.observe(false);
        assert_eq!(test.observe(true).unwrap().verdict, Equivalence::Fail);
    }
}
