//! The share check's decision procedure, response by response: what
//! `gateprobe canary` runs while traffic flows and what the seeded
//! simulations in `tests/stats/canary_stats.rs` measure (one code path for both).
//!
//! Each tested variant (expected share p0, tolerance δ) has a
//! group-sequential design ([`ShareDesign`], in `design.rs`): exact
//! binomial bounds at geometric looks up to the run's budget, passing when
//! the count is inside the band with confidence and failing when it is
//! outside. Beside it, an always-valid confidence sequence ([`BernoulliCs`])
//! at level 1 − α·[`GROSS_SHARE`] is updated with every response and fails
//! gross errors at once: a dead canary, or one that takes everything, fails
//! in about a hundred responses, a look or not.
//!
//! Errors: a share on an edge or outside the band passes with probability
//! ≤ α (each edge's one-sided bound spends α: TOST); a share inside it
//! fails with probability ≤ α (the bounds' α·(1 − GROSS_SHARE) plus the
//! sequence's α·GROSS_SHARE). Both hold at every look, and at the extra
//! look a run that ends before its plan takes (the rest of α spent there).
//!
//! With several tested variants each runs at α/k (Bonferroni): a correct
//! split fails with probability at most α in all.
use std::sync::Arc;

use serde_json::json;

use super::design::{ShareDesign, GROSS_SHARE};
use crate::check::{Check, Verdict};
use crate::stats::confseq::{Band, BernoulliCs, Mixture, Placement, Point};
use crate::stats::sequential::Stop;
use crate::units::percent;

/// Mixture weight on "no response from this variant at all" (share 0).
pub const W_ZERO: f64 = 0.4;
/// Mixture weight on "every response is this variant's" (share 1).
pub const W_ONE: f64 = 0.1;
/// Mixture weight on a flat prior: a share far from the expectation (25%
/// where 5% was meant) fails in tens of requests.
pub const W_FLAT: f64 = 0.1;

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

    /// The mixture the gross sequence uses: centred on the expectation
    /// (kept δ/2 inside the unit interval), spread to resolve δ.
    pub fn mixture(&self) -> Mixture {
        let center = self
            .share
            .clamp(self.tolerance / 2.0, 1.0 - self.tolerance / 2.0);
        Mixture::centred(center, self.tolerance, W_ZERO, W_ONE, W_FLAT)
    }
}

/// How a share was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The always-valid sequence left the band (a gross error).
    Sequence,
    /// A planned look's bounds decided.
    Look,
    /// The plan's last look was reached undecided: the share is within the
    /// zone of an edge.
    Horizon,
    /// The run ended (cap, interrupt, another check failed) before the
    /// plan; a last look at what was seen decided nothing.
    EndOfRun,
    /// The run ended before the plan, and a last look at what was seen
    /// (the rest of α spent there) decided.
    FinalLook,
}

/// A decision with the evidence it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Outcome,
    pub rule: Rule,
    pub hits: u64,
    pub trials: u64,
    /// The look it was decided at (1-based; 0 for the sequence).
    pub look: usize,
}

/// What a share test concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Inconclusive,
}

/// One variant's sequential share test.
#[derive(Debug, Clone)]
pub struct ShareTest {
    pub expectation: Expectation,
    alpha: f64,
    power: f64,
    /// The plan (shared: a simulation clones the test for every run).
    design: Arc<ShareDesign>,
    /// The gross sequence with every unattributable response counted as
    /// another variant's (a miss) …
    cs: BernoulliCs,
    /// … and, once there is one, as this variant's (a hit). The truth lies
    /// between: a decision needs both to agree.
    cs_high: Option<BernoulliCs>,
    unattributable: u64,
    band: Band,
    /// p0 with its logarithms (for the always-valid p-value).
    expected: Point,
    /// The largest ln M seen at p0: the always-valid p-value of "the share
    /// is p0" is min(1, 1/max M).
    max_log_ratio_at_share: f64,
    /// The next planned look (index into the design's looks).
    next_look: usize,
    decision: Option<Decision>,
}

impl ShareTest {
    /// `alpha` is this variant's level (already divided among variants);
    /// `power` the chance wanted of deciding a share the zone away from an
    /// edge; `budget` the responses the plan ends at.
    pub fn new(expectation: Expectation, alpha: f64, power: f64, budget: u64) -> Self {
        let design = ShareDesign::planned(&expectation, alpha, power, budget);
        Self::with_design(Arc::new(design), alpha, power)
    }

    fn with_design(design: Arc<ShareDesign>, alpha: f64, power: f64) -> Self {
        let expectation = design.expectation.clone();
        let (low, high) = expectation.band();
        Self {
            cs: BernoulliCs::new(expectation.mixture(), alpha * GROSS_SHARE),
            cs_high: None,
            unattributable: 0,
            band: Band::new(low, high),
            expected: Point::new(expectation.share),
            expectation,
            alpha,
            power,
            design,
            max_log_ratio_at_share: 0.0,
            next_look: 0,
            decision: None,
        }
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    pub fn power(&self) -> f64 {
        self.power
    }

    pub fn design(&self) -> &ShareDesign {
        &self.design
    }

    /// The test decided once, at a fixed size: `hits` of `classified`
    /// responses from this variant and `unattributable` that may have been
    /// (merged shards, which never stop early): one look with all of α.
    pub fn at_counts(
        expectation: Expectation,
        alpha: f64,
        power: f64,
        hits: u64,
        classified: u64,
        unattributable: u64,
    ) -> Self {
        let trials = classified + unattributable;
        let design = ShareDesign::one_look(&expectation, alpha, power, trials);
        let mut test = Self::with_design(Arc::new(design), alpha, power);
        let mixture = test.expectation.mixture();
        test.cs = BernoulliCs::from_counts(mixture, alpha * GROSS_SHARE, hits, trials);
        test.unattributable = unattributable;
        if unattributable > 0 {
            test.cs_high = Some(BernoulliCs::from_counts(
                mixture,
                alpha * GROSS_SHARE,
                hits + unattributable,
                trials,
            ));
        }
        test.decide_now();
        test
    }

    /// Responses the plan ends at (its last look).
    pub fn horizon(&self) -> u64 {
        self.design.budget()
    }

    /// (responses from this variant, responses in all), unattributable
    /// ones counted in the total only.
    pub fn counts(&self) -> (u64, u64) {
        (self.cs.hits(), self.cs.trials())
    }

    /// Responses no variant claimed, counted both ways.
    pub fn unattributable(&self) -> u64 {
        self.unattributable
    }

    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    /// An exact (Clopper–Pearson) interval for the share at level 1 − 2α,
    /// the fixed-sample TOST's, for reading: with unattributable responses,
    /// from the lower end of "none were this variant's" to the upper end of
    /// "all were". The verdict rests on the design's bounds, which are
    /// stricter at every look.
    pub fn interval(&self) -> Option<(f64, f64)> {
        let (hits, trials) = self.counts();
        if trials == 0 {
            return None;
        }
        let level = (2.0 * self.alpha).min(0.5);
        let low = crate::stats::binomial::clopper_pearson(hits, trials, level).0;
        let high =
            crate::stats::binomial::clopper_pearson(hits + self.unattributable, trials, level).1;
        Some((low, high))
    }

    /// The always-valid p-value of "the share is exactly as expected".
    pub fn always_valid_p(&self) -> f64 {
        (-self.max_log_ratio_at_share).exp().min(1.0)
    }

    /// Classified responses to zero-from-this-variant failing (the dead rule).
    pub fn dead_after(&self) -> Option<u64> {
        let (low, _) = self.expectation.band();
        if low <= 0.0 {
            return None;
        }
        let mut cs = BernoulliCs::new(self.expectation.mixture(), self.alpha * GROSS_SHARE);
        (1..=1_000_000).find(|_| {
            cs.push(false);
            cs.excludes(low)
        })
    }

    fn decide(&mut self, verdict: Outcome, rule: Rule, look: usize) {
        let (hits, trials) = self.counts();
        self.decision = Some(Decision {
            verdict,
            rule,
            hits,
            trials,
            look,
        });
    }

    /// Adds one classified response (is it this variant?).
    pub fn observe(&mut self, hit: bool) -> Option<Decision> {
        if self.decision.is_some() {
            return self.decision;
        }
        self.cs.push(hit);
        if let Some(high) = &mut self.cs_high {
            high.push(hit);
        }
        self.decide_now()
    }

    /// Adds `hits` and `misses` at once: the same as observing them one by
    /// one when no checkpoint ([`ShareTest::next_checkpoint`]) lies before
    /// the last of them (the simulations' fast path).
    pub fn observe_counts(&mut self, hits: u64, misses: u64) -> Option<Decision> {
        if self.decision.is_some() {
            return self.decision;
        }
        self.cs.push_counts(hits, misses);
        if let Some(high) = &mut self.cs_high {
            high.push_counts(hits, misses);
        }
        self.decide_now()
    }

    /// The next response count at which the test may decide: a look, or
    /// a look of the gross sequence (every response up to
    /// [`GROSS_EVERY`], then every n/[`GROSS_EVERY`]-th: it is valid at any
    /// times, and this keeps its cost flat).
    pub fn next_checkpoint(&self) -> u64 {
        let trials = self.cs.trials();
        let look = self
            .design
            .looks
            .get(self.next_look)
            .copied()
            .unwrap_or(u64::MAX);
        let mut next = trials + 1;
        while !gross_checkpoint(next) {
            let stride = (next / GROSS_EVERY).max(1);
            next = (next / stride + 1) * stride;
        }
        next.min(look)
    }

    /// Adds a response no variant claims: it may have been this variant's.
    pub fn observe_unattributable(&mut self) -> Option<Decision> {
        if self.decision.is_some() {
            return self.decision;
        }
        let high = self.cs_high.get_or_insert_with(|| self.cs.clone());
        high.push(true);
        self.cs.push(false);
        self.unattributable += 1;
        self.decide_now()
    }

    /// Where the gross sequence stands (both attributions agreeing).
    fn gross(&self) -> Placement {
        match &self.cs_high {
            None => self.cs.against(&self.band),
            Some(high) => {
                let (low_side, high_side) = (self.cs.against(&self.band), high.against(&self.band));
                let same_side =
                    (self.cs.estimate() > self.band.high.p) == (high.estimate() > self.band.high.p);
                match (low_side, high_side) {
                    (Placement::Outside, Placement::Outside) if same_side => Placement::Outside,
                    _ => Placement::Undecided,
                }
            }
        }
    }

    fn decide_now(&mut self) -> Option<Decision> {
        if gross_checkpoint(self.cs.trials()) {
            self.gross_look();
        }
        if self.decision.is_some() {
            return self.decision;
        }
        self.planned_look()
    }

    /// The gross sequence's look: the always-valid p-value, and a fail
    /// when it lies outside the band.
    fn gross_look(&mut self) {
        let share = self.expectation.share;
        if share > 0.0 && share < 1.0 {
            // The weaker evidence of the two attributions.
            let mut ratio = self.cs.log_ratio_at(&self.expected);
            if let Some(high) = &self.cs_high {
                ratio = ratio.min(high.log_ratio_at(&self.expected));
            }
            self.max_log_ratio_at_share = self.max_log_ratio_at_share.max(ratio);
        }
        if self.gross() == Placement::Outside {
            self.decide(Outcome::Fail, Rule::Sequence, 0);
        }
    }

    /// The design's look, when the responses reach one.
    fn planned_look(&mut self) -> Option<Decision> {
        let (hits, trials) = self.counts();
        let design = Arc::clone(&self.design);
        let looks = &design.looks;
        while self.next_look < looks.len() && looks[self.next_look] <= trials {
            let look = self.next_look;
            self.next_look += 1;
            if looks[look] < trials {
                // Only a look at exactly its size decides (at_counts has one
                // look, at its size).
                continue;
            }
            match design.decide(look, hits, self.unattributable) {
                Stop::Pass => self.decide(Outcome::Pass, Rule::Look, look + 1),
                Stop::Fail => self.decide(Outcome::Fail, Rule::Look, look + 1),
                Stop::Continue if look + 1 == looks.len() => {
                    self.decide(Outcome::Inconclusive, Rule::Horizon, look + 1)
                }
                Stop::Continue => {}
            }
        }
        self.decision
    }

    /// The decision, or — when the run ended before the plan — one last
    /// look at what was seen, spending the rest of α there (the end of a
    /// run does not depend on the split's counts); inconclusive when that
    /// decides nothing.
    pub fn finish(&mut self) -> Decision {
        if self.decision.is_none() {
            let (hits, trials) = self.counts();
            let done = &self.design.looks[..self.next_look];
            let outcome = if trials > done.last().copied().unwrap_or(0) {
                let budget = self.design.budget().max(1) as f64;
                let mut looks = done.to_vec();
                let mut fractions: Vec<f64> = looks.iter().map(|n| *n as f64 / budget).collect();
                looks.push(trials);
                fractions.push(1.0);
                let last = ShareDesign::bounds_at_looks(
                    &self.expectation,
                    self.alpha,
                    self.power,
                    looks,
                    &fractions,
                );
                last.decide(last.looks.len() - 1, hits, self.unattributable)
            } else {
                Stop::Continue
            };
            let look = self.next_look + 1;
            match outcome {
                Stop::Pass => self.decide(Outcome::Pass, Rule::FinalLook, look),
                Stop::Fail => self.decide(Outcome::Fail, Rule::FinalLook, look),
                Stop::Continue => self.decide(Outcome::Inconclusive, Rule::EndOfRun, look),
            }
        }
        self.decision.expect("decided above")
    }
}

/// The gross sequence looks at every response up to this many, then every
/// n/GROSS_EVERY-th (at most 0.4% late).
pub const GROSS_EVERY: u64 = 256;

/// Whether the gross sequence is looked at after `trials` responses.
fn gross_checkpoint(trials: u64) -> bool {
    trials % (trials / GROSS_EVERY).max(1) == 0
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
    /// Every test decided (pass, or inconclusive at its horizon), none failed.
    Decided,
    /// A test failed: no more traffic is needed.
    Failed,
}

impl Split {
    /// The tests of `expectations` at α/k each, planned to end at
    /// `budget` responses, or — with none given — at the size that decides
    /// shares half a tolerance from an edge ([`default_budget`]).
    pub fn new(expectations: &[Expectation], alpha: f64, power: f64, budget: Option<u64>) -> Self {
        let each = alpha_each(alpha, expectations.len());
        let budget = budget.unwrap_or_else(|| {
            expectations
                .iter()
                .map(|e| super::design::default_budget(e, each, power))
                .max()
                .unwrap_or(1)
        });
        Self {
            tests: expectations
                .iter()
                .map(|expectation| ShareTest::new(expectation.clone(), each, power, budget))
                .collect(),
        }
    }

    /// Classified responses the split plans for (the longest horizon).
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

    /// Adds a response no variant claims.
    pub fn observe_unattributable(&mut self) -> State {
        for test in &mut self.tests {
            test.observe_unattributable();
        }
        self.state()
    }

    pub fn state(&self) -> State {
        let decisions: Vec<Option<Decision>> = self.tests.iter().map(ShareTest::decision).collect();
        if decisions
            .iter()
            .any(|decision| decision.is_some_and(|d| d.verdict == Outcome::Fail))
        {
            State::Failed
        } else if decisions.iter().all(Option::is_some) {
            State::Decided
        } else {
            State::Running
        }
    }

    /// The overall verdict once every test is decided or finished.
    pub fn finish(&mut self) -> Outcome {
        let verdicts: Vec<Outcome> = self.tests.iter_mut().map(|t| t.finish().verdict).collect();
        if verdicts.contains(&Outcome::Fail) {
            Outcome::Fail
        } else if verdicts.iter().all(|v| *v == Outcome::Pass) {
            Outcome::Pass
        } else {
            Outcome::Inconclusive
        }
    }

    /// Runs the procedure on requests drawn with the given true `shares`
    /// (one per tested variant; the rest go to untested variants) until it
    /// stops; returns the verdict and the classified responses it used.
    /// Responses are drawn in bulk up to the next checkpoint (multinomial,
    /// as binomials in turn), which decides exactly as one by one.
    pub fn simulate(&self, shares: &[f64], rng: &mut impl rand::Rng) -> (Outcome, u64) {
        use rand_distr::{Binomial, Distribution};
        let mut split = self.clone();
        let cap = self.horizon().max(1);
        let mut used = 0;
        while used < cap {
            let next = split
                .tests
                .iter()
                .filter(|test| test.decision.is_none())
                .map(ShareTest::next_checkpoint)
                .min()
                .unwrap_or(cap)
                .min(cap);
            let batch = next - used;
            let (mut left, mut left_share) = (batch, 1.0);
            for (test, share) in split.tests.iter_mut().zip(shares) {
                let p = (share / left_share).clamp(0.0, 1.0);
                let hits = Binomial::new(left, p).map_or(0, |b| b.sample(rng));
                test.observe_counts(hits, batch - hits);
                left -= hits;
                left_share = (left_share - share).max(1e-300);
            }
            used = next;
            if split.state() != State::Running {
                break;
            }
        }
        (split.finish(), used)
    }

    /// Mean responses to a decision when every variant gets exactly its
    /// expected share: exact, from each test's design (the longest).
    pub fn expected_requests(&self) -> f64 {
        self.tests
            .iter()
            .map(|test| test.design().at_share.expected_n)
            .fold(0.0, f64::max)
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

    /// The merged shards' rule (one look at a fixed size): at the band's
    /// edge a share passes at most α of the time, and inside it a share
    /// fails at most α of the time; exactly as expected it passes at the
    /// planned horizon about `power` of the time. 10,000 seeded binomial
    /// draws per case, at the edges of what the rule claims.
    #[test]
    fn one_look_at_a_fixed_size_keeps_alpha() {
        use rand::SeedableRng;
        let (alpha, power) = (0.01, 0.95);
        let runs = 10_000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1515);
        for e in [
            ten_percent(),
            Expectation {
                share: 0.5,
                tolerance: 0.05,
            },
        ] {
            let n = ShareDesign::planned(&e, alpha, power, 10_000).fixed;
            let (low, high) = e.band();
            let rate = |truth: f64, want: Outcome, rng: &mut rand::rngs::StdRng| {
                use rand_distr::{Binomial, Distribution};
                let draws = Binomial::new(n, truth).unwrap();
                (0..runs)
                    .filter(|_| {
                        let hits = draws.sample(rng);
                        let mut test = ShareTest::at_counts(e.clone(), alpha, power, hits, n, 0);
                        test.finish().verdict == want
                    })
                    .count() as f64
                    / runs as f64
            };
            // Binomial noise on 10,000 runs at α: 3σ ≈ 0.003.
            let edge_pass =
                rate(high, Outcome::Pass, &mut rng).max(rate(low, Outcome::Pass, &mut rng));
            assert!(
                edge_pass <= alpha + 0.003,
                "{e:?}: a share on the edge passed {edge_pass}"
            );
            let inside_fail = rate(low + 1e-9, Outcome::Fail, &mut rng);
            assert!(
                inside_fail <= alpha + 0.003,
                "{e:?}: a share inside failed {inside_fail}"
            );
            let centre_pass = rate(e.share, Outcome::Pass, &mut rng);
            println!(
                "{e:?} n = {n}: edge passes {edge_pass}, inside fails {inside_fail}, centre passes {centre_pass}"
            );
            assert!(
                centre_pass >= power - 0.02,
                "{e:?}: passed {centre_pass} at n = {n}"
            );
        }
    }

    #[test]
    fn a_dead_variant_fails_in_about_a_hundred_requests() {
        let mut test = ShareTest::new(ten_percent(), 0.01, 0.95, 20_000);
        let after = test.dead_after().unwrap();
        // (1 − 0.08)^n ≤ 0.4·α/10 first at n = 94; the Beta part may add a little.
        assert!((85..=94).contains(&after), "{after}");
        for _ in 1..after {
            assert_eq!(test.observe(false), None);
        }
        let decision = test.observe(false).unwrap();
        assert_eq!(decision.verdict, Outcome::Fail);
        assert_eq!(decision.trials, after);
    }

    /// Responses fed in bulk between checkpoints decide exactly as one by
    /// one (the simulations' fast path is the live path).
    #[test]
    fn bulk_and_one_by_one_decide_alike() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(30);
        for truth in [0.0, 0.07, 0.085, 0.1, 0.115, 0.13, 0.3] {
            let responses: Vec<bool> = (0..20_000).map(|_| rng.random::<f64>() < truth).collect();
            let mut one = ShareTest::new(ten_percent(), 0.01, 0.95, 20_000);
            let mut bulk = one.clone();
            let by_one = responses.iter().find_map(|hit| one.observe(*hit));
            let mut fed = 0;
            let mut by_bulk = None;
            while fed < responses.len() && by_bulk.is_none() {
                let next = (bulk.next_checkpoint() as usize).min(responses.len());
                let hits = responses[fed..next].iter().filter(|hit| **hit).count() as u64;
                by_bulk = bulk.observe_counts(hits, (next - fed) as u64 - hits);
                fed = next;
            }
            assert_eq!(by_one, by_bulk, "true share {truth}");
        }
    }

    #[test]
    fn everything_on_the_canary_fails_at_once() {
        let mut test = ShareTest::new(ten_percent(), 0.01, 0.95, 20_000);
        let decided = (1..=50).find_map(|n| test.observe(true).map(|d| (n, d)));
        let (n, decision) = decided.unwrap();
        assert_eq!(decision.verdict, Outcome::Fail);
        assert!(n <= 10, "{n}");
    }

    #[test]
    fn without_a_budget_the_plan_decides_half_a_tolerance_out() {
        // 10% ± 2pp: shares 1pp from an edge decide with power 0.95; a
        // fixed one-sided test at each edge needs about 17,800 for that.
        let split = Split::new(&[ten_percent()], 0.01, 0.95, None);
        let horizon = split.horizon();
        assert!((17_000..21_000).contains(&horizon), "{horizon}");
    }
}

/// Each tested share's level: the run's `alpha` divided among `tests`
/// (Bonferroni), so that all of them together hold at `alpha`.
pub fn alpha_each(alpha: f64, tests: usize) -> f64 {
    alpha / tests.max(1) as f64
}

/// The fixed-horizon check on responses no variant claims: `unattributable`
/// of `seen` at the end of the run, at most `max_share` of them, or the
/// split and health checks cannot be trusted (inconclusive).
pub fn unclassified_check(unattributable: u64, seen: u64, max_share: f64) -> Check {
    let share = if seen == 0 {
        0.0
    } else {
        unattributable as f64 / seen as f64
    };
    let too_many = share > max_share;
    let mut check =
        Check::new(
            "unclassified",
            "split.unclassified",
            if too_many {
                Verdict::Inconclusive
            } else {
                Verdict::Pass
            },
            json!({ "unattributable": unattributable, "responses": seen, "share": share }),
            json!({ "max_share": max_share }),
            format!(
            "{unattributable} of {seen} responses were in no variant (transport errors, timeouts, \
             429, unmarked 5xx, unmatched): {} (at most {}); they count both ways in the split \
             and as the canary's errors in the health check{}",
            percent(share),
            percent(max_share),
            if too_many { " — too many to trust the checks" } else { "" }
        ),
        );
    check.used = Some(seen);
    check
}

/// One second of a share test's path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharePoint {
    /// Seconds since the start (the end of the second).
    pub second: f64,
    pub share: f64,
    /// The confidence sequence at that point.
    pub low: f64,
    pub high: f64,
}

/// A share test's path over the run, from per-second counts: the variant's
/// (`hits`) and every variant's (`totals`). The confidence sequence depends
/// on the counts only, so this is the test's own interval at each second's
/// end (not the request at which it stopped, which lies between two).
pub fn share_path(
    expectation: &Expectation,
    alpha: f64,
    hits: &[u64],
    totals: &[u64],
) -> Vec<SharePoint> {
    let mixture = expectation.mixture();
    let (mut x, mut n) = (0_u64, 0_u64);
    let mut path = Vec::new();
    for (second, total) in totals.iter().enumerate() {
        x += hits.get(second).copied().unwrap_or(0);
        n += total;
        if n == 0 {
            continue;
        }
        let (low, high) = BernoulliCs::from_counts(mixture, alpha, x.min(n), n)
            .interval()
            .unwrap_or((0.0, 1.0));
        path.push(SharePoint {
            second: (second + 1) as f64,
            share: x as f64 / n as f64,
            low,
            high,
        });
    }
    path
}
