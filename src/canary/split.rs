//! The share check's decision procedure, response by response: what
//! `gateprobe canary` runs while traffic flows and what the seeded
//! simulations in `tests/it/canary_stats.rs` measure (one code path for both).
//!
//! For each tested variant with expected share p0 and tolerance δ, a
//! confidence sequence for its share ([`BernoulliCs`], level 1 − α, valid at
//! every response at once) is updated with every classified response:
//! - **pass** as soon as the sequence lies inside the band p0 ± δ;
//! - **fail** as soon as it lies outside the band entirely;
//! - **inconclusive** when the planned horizon is reached undecided, or the
//!   run ends before a decision.
//!
//! Errors: a share inside the band fails only if the sequence excluded the
//! truth on one side, and a share outside it (or on its edge) passes only if
//! the sequence excluded the truth on the other: each at most α, since the
//! sequence misses the truth — ever — with probability at most α. Passing
//! where a TOST would (a (1 − 2α) interval inside the band) carries the same
//! per-side α; here both sides share it, which costs a few percent more
//! responses and keeps the statement exact at any stopping time.
//!
//! The mixture has point masses at 0 and 1, so a dead canary (no response
//! from it) and a canary that takes everything fail in tens of requests:
//! zero responses from a variant expected at p0 exclude the band's lower
//! edge p0 − δ once (1 − p0 + δ)^n ≤ w0·α (67 requests at 10% ± 2pp,
//! α = 0.01; a rule that fails sooner would fail a true 8.5% more often than
//! α: 0.915^50 = 1.2%).
//!
//! Edges at 0% or 100% are the ends of the unit interval: an expected 100%
//! passes when the sequence excludes 100% − δ from above, and fails when it
//! lies below it — one-sided by the same rule.
//!
//! With several tested variants each runs at α/k (Bonferroni): a correct
//! split fails with probability at most α in all.
use serde_json::json;

use crate::check::{Check, Verdict};
use crate::stats::binomial::normal_quantile;
use crate::stats::confseq::{Band, BernoulliCs, Mixture, Placement, Point};
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

    /// The mixture the share's sequence uses: centred on the expectation
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
    /// The confidence sequence left the band or settled inside it.
    Sequence,
    /// The planned horizon was reached undecided.
    Horizon,
    /// The run ended (cap, interrupt, another check failed) undecided.
    EndOfRun,
}

/// A decision with the evidence it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Outcome,
    pub rule: Rule,
    pub hits: u64,
    pub trials: u64,
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
    /// The sequence with every unattributable response counted as another
    /// variant's (a miss) …
    cs: BernoulliCs,
    /// … and, once there is one, as this variant's (a hit). The truth lies
    /// between: a decision needs both to agree.
    cs_high: Option<BernoulliCs>,
    band: Band,
    /// p0 with its logarithms (for the always-valid p-value).
    expected: Point,
    horizon: u64,
    /// The largest ln M seen at p0: the always-valid p-value of "the share
    /// is p0" is min(1, 1/max M).
    max_log_ratio_at_share: f64,
    decision: Option<Decision>,
}

impl ShareTest {
    /// `alpha` is this variant's level (already divided among variants);
    /// `power` the chance wanted of passing a share exactly as expected
    /// within the horizon.
    pub fn new(expectation: Expectation, alpha: f64, power: f64) -> Self {
        let horizon = pass_horizon(&expectation, alpha, power);
        let (low, high) = expectation.band();
        Self {
            cs: BernoulliCs::new(expectation.mixture(), alpha),
            cs_high: None,
            band: Band::new(low, high),
            expected: Point::new(expectation.share),
            expectation,
            alpha,
            horizon,
            max_log_ratio_at_share: 0.0,
            decision: None,
        }
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The test decided once, at a fixed size: `hits` of `classified`
    /// responses from this variant and `unattributable` that may have been
    /// (merged shards). The sequence holds at every size at once, so at
    /// this one too: the same rule, the same α.
    pub fn at_counts(
        expectation: Expectation,
        alpha: f64,
        power: f64,
        hits: u64,
        classified: u64,
        unattributable: u64,
    ) -> Self {
        let mut test = Self::new(expectation, alpha, power);
        let mixture = test.expectation.mixture();
        let trials = classified + unattributable;
        test.cs = BernoulliCs::from_counts(mixture, alpha, hits, trials);
        if unattributable > 0 {
            test.cs_high = Some(BernoulliCs::from_counts(
                mixture,
                alpha,
                hits + unattributable,
                trials,
            ));
        }
        test.decide_now();
        test
    }

    /// Classified responses after which an undecided test is inconclusive.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// (responses from this variant, responses in all), unattributable
    /// ones counted in the total only.
    pub fn counts(&self) -> (u64, u64) {
        (self.cs.hits(), self.cs.trials())
    }

    pub fn decision(&self) -> Option<Decision> {
        self.decision
    }

    /// The confidence sequence's interval now (level 1 − α): with
    /// unattributable responses, from the lower end of "none were this
    /// variant's" to the upper end of "all were".
    pub fn interval(&self) -> Option<(f64, f64)> {
        let low = self.cs.interval()?;
        match &self.cs_high {
            None => Some(low),
            Some(high) => Some((low.0, high.interval()?.1)),
        }
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
        let mut cs = BernoulliCs::new(self.expectation.mixture(), self.alpha);
        (1..=100_000).find(|_| {
            cs.push(false);
            cs.excludes(low)
        })
    }

    fn decide(&mut self, verdict: Outcome, rule: Rule) {
        let (hits, trials) = self.counts();
        self.decision = Some(Decision {
            verdict,
            rule,
            hits,
            trials,
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

    /// Adds a response no variant claims: it may have been this variant's.
    pub fn observe_unattributable(&mut self) -> Option<Decision> {
        if self.decision.is_some() {
            return self.decision;
        }
        let high = self.cs_high.get_or_insert_with(|| self.cs.clone());
        high.push(true);
        self.cs.push(false);
        self.decide_now()
    }

    fn decide_now(&mut self) -> Option<Decision> {
        let share = self.expectation.share;
        if share > 0.0 && share < 1.0 {
            // The weaker evidence of the two attributions.
            let mut ratio = self.cs.log_ratio_at(&self.expected);
            if let Some(high) = &self.cs_high {
                ratio = ratio.min(high.log_ratio_at(&self.expected));
            }
            self.max_log_ratio_at_share = self.max_log_ratio_at_share.max(ratio);
        }
        let placement = match &self.cs_high {
            None => self.cs.against(&self.band),
            Some(high) => {
                let (low_side, high_side) = (self.cs.against(&self.band), high.against(&self.band));
                let same_side =
                    (self.cs.estimate() > self.band.high.p) == (high.estimate() > self.band.high.p);
                match (low_side, high_side) {
                    (Placement::Inside, Placement::Inside) => Placement::Inside,
                    (Placement::Outside, Placement::Outside) if same_side => Placement::Outside,
                    _ => Placement::Undecided,
                }
            }
        };
        match placement {
            Placement::Inside => self.decide(Outcome::Pass, Rule::Sequence),
            Placement::Outside => self.decide(Outcome::Fail, Rule::Sequence),
            Placement::Undecided if self.cs.trials() >= self.horizon => {
                self.decide(Outcome::Inconclusive, Rule::Horizon)
            }
            Placement::Undecided => {}
        }
        self.decision
    }

    /// The decision, or inconclusive on what was seen when the run ended
    /// before one.
    pub fn finish(&mut self) -> Decision {
        if self.decision.is_none() {
            self.decide(Outcome::Inconclusive, Rule::EndOfRun);
        }
        self.decision.expect("decided above")
    }
}

/// The classified responses a share test plans for: the first n at which a
/// share observed z standard errors from p0 (z for a two-sided `power`)
/// would already pass — so a share exactly as expected passes by then with
/// about that probability — and at which a share 2δ outside the band,
/// observed z standard errors towards it, would already fail (this is what
/// sizes a one-sided test at 0% or 100%).
pub fn pass_horizon(expectation: &Expectation, alpha: f64, power: f64) -> u64 {
    let z = normal_quantile(0.5 + power / 2.0);
    let (low, high) = expectation.band();
    let band = Band::new(low, high);
    let mixture = expectation.mixture();
    let delta = expectation.tolerance;
    let standard_error = |share: f64, n: u64| {
        let share = share.clamp(delta / 2.0, 1.0 - delta / 2.0);
        z * (share * (1.0 - share) / n as f64).sqrt()
    };
    let placed = |observed: f64, n: u64| {
        let hits = (observed.clamp(0.0, 1.0) * n as f64).round() as u64;
        BernoulliCs::from_counts(mixture, alpha, hits.min(n), n).against(&band)
    };
    let share = expectation.share;
    let passes = |n: u64| {
        let error = standard_error(share, n);
        [share - error, share + error]
            .into_iter()
            .all(|observed| placed(observed, n) == Placement::Inside)
    };
    let fails = |n: u64| {
        let mut outside = Vec::new();
        if share - 2.0 * delta > 0.0 {
            outside.push(share - 2.0 * delta + standard_error(share - 2.0 * delta, n));
        }
        if share + 2.0 * delta < 1.0 {
            outside.push(share + 2.0 * delta - standard_error(share + 2.0 * delta, n));
        }
        outside
            .into_iter()
            .all(|observed| placed(observed, n) == Placement::Outside)
    };
    crate::canary::health::doubling_search(passes)
        .max(crate::canary::health::doubling_search(fails))
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
    pub fn new(expectations: &[Expectation], alpha: f64, power: f64) -> Self {
        let each = alpha_each(alpha, expectations.len());
        Self {
            tests: expectations
                .iter()
                .map(|expectation| ShareTest::new(expectation.clone(), each, power))
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
    pub fn simulate(&self, shares: &[f64], rng: &mut impl rand::Rng) -> (Outcome, u64) {
        let mut split = self.clone();
        let cap = self.horizon().max(1);
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
    /// exactly its expected share: a seeded simulation of this procedure,
    /// printed before a run, on a fixed budget of draws (so planning takes
    /// milliseconds whatever the tolerance).
    pub fn expected_requests(&self) -> f64 {
        use rand::SeedableRng;
        let horizon = self.horizon().max(1);
        let runs = (2_000_000 / horizon).clamp(1, 400);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let shares: Vec<f64> = self.tests.iter().map(|t| t.expectation.share).collect();
        let total: u64 = (0..runs).map(|_| self.simulate(&shares, &mut rng).1).sum();
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

    /// The merged shards' rule (one look at a fixed size): at the band's
    /// edge a share passes at most α of the time, and inside it a share
    /// fails at most α of the time; exactly as expected it passes at the
    /// planned horizon about `power` of the time. 10,000 seeded binomial
    /// draws per case, at the edges of what the rule claims.
    #[test]
    fn one_look_at_a_fixed_size_keeps_alpha() {
        use rand::{Rng, SeedableRng};
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
            let n = pass_horizon(&e, alpha, power);
            let (low, high) = e.band();
            let rate = |truth: f64, want: Outcome, rng: &mut rand::rngs::StdRng| {
                (0..runs)
                    .filter(|_| {
                        let hits = (0..n).filter(|_| rng.random::<f64>() < truth).count() as u64;
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
    fn a_dead_variant_fails_in_tens_of_requests() {
        let mut test = ShareTest::new(ten_percent(), 0.01, 0.95);
        let after = test.dead_after().unwrap();
        assert!((60..=67).contains(&after), "{after}");
        for _ in 1..after {
            assert_eq!(test.observe(false), None);
        }
        let decision = test.observe(false).unwrap();
        assert_eq!(decision.verdict, Outcome::Fail);
        assert_eq!(decision.trials, after);
    }

    #[test]
    fn everything_on_the_canary_fails_at_once() {
        let mut test = ShareTest::new(ten_percent(), 0.01, 0.95);
        let decided = (1..=50).find_map(|n| test.observe(true).map(|d| (n, d)));
        let (n, decision) = decided.unwrap();
        assert_eq!(decision.verdict, Outcome::Fail);
        assert!(n <= 10, "{n}");
    }

    #[test]
    fn the_horizon_covers_passing_and_failing() {
        // TOST at α = 0.01, power 0.95, 10% ± 2pp: 4,134 responses; the
        // horizon also lets a share 2δ out fail (about three times that).
        let horizon = ShareTest::new(ten_percent(), 0.01, 0.95).horizon();
        assert!((4_134..20_000).contains(&horizon), "{horizon}");
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
