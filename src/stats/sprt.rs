//! Wald's sequential probability ratio test for a Bernoulli share, and the
//! paired form that checks a share is *within* p0 ± δ while samples arrive.
//! Wald (1945), "Sequential Tests of Statistical Hypotheses", Ann. Math.
//! Statist. 16(2); Wald (1947), *Sequential Analysis*, ch. 3 (boundaries
//! and the average sample number). Evaluated after every sample, it is valid
//! however often it is looked at — unlike repeated fixed-horizon tests.

/// What one SPRT has decided so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// The data favour H0 (the share is p0).
    AcceptNull,
    /// The data favour H1 (the share is p1).
    AcceptAlternative,
}

/// One SPRT of H0: p = p0 against H1: p = p1, with
/// α = P(accept H1 | H0) and β = P(accept H0 | H1).
#[derive(Debug, Clone)]
pub struct Sprt {
    step_success: f64,
    step_failure: f64,
    upper: f64,
    lower: f64,
    llr: f64,
    decision: Decision,
}

impl Sprt {
    pub fn new(p0: f64, p1: f64, alpha: f64, beta: f64) -> Self {
        Self {
            step_success: (p1 / p0).ln(),
            step_failure: ((1.0 - p1) / (1.0 - p0)).ln(),
            upper: ((1.0 - beta) / alpha).ln(),
            lower: (beta / (1.0 - alpha)).ln(),
            llr: 0.0,
            decision: Decision::Continue,
        }
    }

    /// Adds one observation; a decided test stays decided.
    pub fn observe(&mut self, success: bool) -> Decision {
        if self.decision == Decision::Continue {
            self.llr += if success {
                self.step_success
            } else {
                self.step_failure
            };
            if self.llr >= self.upper {
                self.decision = Decision::AcceptAlternative;
            } else if self.llr <= self.lower {
                self.decision = Decision::AcceptNull;
            }
        }
        self.decision
    }

    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Wald's approximation of the expected number of observations when the
    /// true share is `p`, for p = p0 or p = p1 (Wald 1947, eq. 3:57).
    pub fn expected_samples(p0: f64, p1: f64, alpha: f64, beta: f64, under_null: bool) -> f64 {
        let upper = ((1.0 - beta) / alpha).ln();
        let lower = (beta / (1.0 - alpha)).ln();
        let p = if under_null { p0 } else { p1 };
        let drift = p * (p1 / p0).ln() + (1.0 - p) * ((1.0 - p1) / (1.0 - p0)).ln();
        let (accept_alternative, accept_null) = if under_null {
            (alpha, 1.0 - alpha)
        } else {
            (1.0 - beta, beta)
        };
        (accept_alternative * upper + accept_null * lower) / drift
    }
}

/// The verdict of a paired (equivalence) SPRT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Equivalence {
    Continue,
    /// Both sides accept p0: the share is within p0 ± δ.
    Pass,
    /// One side accepts p0 ± δ: the share is off by δ or more.
    Fail,
}

/// Two SPRTs, p0 against p0 + δ and p0 against p0 − δ (the lower one left
/// out when p0 − δ ≤ 0, the upper when p0 + δ ≥ 1). Each runs at α/2, so a
/// correct split is failed with probability at most about α; a split off by
/// δ is passed with probability at most about β (less the further it is off).
#[derive(Debug, Clone)]
pub struct PairedSprt {
    sides: Vec<Sprt>,
}

impl PairedSprt {
    pub fn new(p0: f64, margin: f64, alpha: f64, beta: f64) -> Self {
        let mut sides = Vec::with_capacity(2);
        for p1 in [p0 + margin, p0 - margin] {
            if p1 > 0.0 && p1 < 1.0 {
                sides.push(Sprt::new(p0, p1, alpha / 2.0, beta));
            }
        }
        Self { sides }
    }

    /// Adds one observation (is it the variant under test?).
    pub fn observe(&mut self, success: bool) -> Equivalence {
        for side in &mut self.sides {
            side.observe(success);
        }
        self.verdict()
    }

    pub fn verdict(&self) -> Equivalence {
        if self
            .sides
            .iter()
            .any(|side| side.decision() == Decision::AcceptAlternative)
        {
            Equivalence::Fail
        } else if self
            .sides
            .iter()
            .all(|side| side.decision() == Decision::AcceptNull)
        {
            Equivalence::Pass
        } else {
            Equivalence::Continue
        }
    }

    /// Wald's expected sample size under p0 for the slower side: a lower
    /// bound on the expected size of the pair, printed before a run.
    pub fn expected_samples(p0: f64, margin: f64, alpha: f64, beta: f64) -> f64 {
        [p0 + margin, p0 - margin]
            .into_iter()
            .filter(|p1| *p1 > 0.0 && *p1 < 1.0)
            .map(|p1| Sprt::expected_samples(p0, p1, alpha / 2.0, beta, true))
            .fold(0.0, f64::max)
    }
}
