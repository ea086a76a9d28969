//! Binomial inference for a share (e.g. the canary's share of requests, each
//! assigned at random): exact tests, confidence intervals, sample sizes, and
//! the χ² goodness-of-fit test for more than two variants.
use statrs::distribution::{
    Beta, Binomial, ChiSquared, ContinuousCDF, Discrete, DiscreteCDF, Normal,
};

/// Two-sided Clopper–Pearson ("exact") interval for `successes` of `trials`
/// at `confidence` (e.g. 0.98). Clopper & Pearson (1934), Biometrika 26(4):
/// the bounds are Beta(k, n−k+1) and Beta(k+1, n−k) quantiles.
pub fn clopper_pearson(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (successes as f64, trials as f64);
    let tail = (1.0 - confidence) / 2.0;
    let low = if successes == 0 {
        0.0
    } else {
        Beta::new(k, n - k + 1.0).map_or(0.0, |beta| beta.inverse_cdf(tail))
    };
    let high = if successes >= trials {
        1.0
    } else {
        Beta::new(k + 1.0, n - k).map_or(1.0, |beta| beta.inverse_cdf(1.0 - tail))
    };
    (low, high)
}

/// Two-sided Wilson score interval. Wilson (1927), JASA 22(158).
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (n, p) = (trials as f64, successes as f64 / trials as f64);
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The standard normal quantile.
pub fn normal_quantile(probability: f64) -> f64 {
    Normal::new(0.0, 1.0).map_or(f64::NAN, |normal| normal.inverse_cdf(probability))
}

/// Exact two-sided binomial test of H0: share = `p0`. The p-value sums the
/// probabilities of all outcomes no more likely than the one observed (the
/// "minlike" method of SciPy's `binomtest` and R's `binom.test`, with the
/// same 1e-7 relative tolerance for ties).
pub fn binomial_test_two_sided(successes: u64, trials: u64, p0: f64) -> f64 {
    let Ok(binomial) = Binomial::new(p0, trials) else {
        return f64::NAN;
    };
    let mean = p0 * trials as f64;
    let k = successes as f64;
    if k == mean {
        return 1.0;
    }
    let threshold = binomial.pmf(successes) * (1.0 + 1e-7);
    let p = if k < mean {
        // The pmf decreases on [⌈mean⌉, n]: find the first outcome there that
        // is no more likely than the observed one; the tail from it counts.
        let (mut low, mut high) = (mean.ceil() as u64, trials + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            if binomial.pmf(middle) <= threshold {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        let upper_tail = match low {
            0 => 1.0,
            edge if edge > trials => 0.0,
            edge => binomial.sf(edge - 1),
        };
        binomial.cdf(successes) + upper_tail
    } else {
        // The pmf increases on [0, ⌊mean⌋]: count the outcomes there that are
        // no more likely than the observed one.
        let (mut low, mut high) = (0u64, mean.floor() as u64 + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            if binomial.pmf(middle) <= threshold {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let lower_tail = if low == 0 { 0.0 } else { binomial.cdf(low - 1) };
        let upper_tail = if successes == 0 {
            1.0
        } else {
            binomial.sf(successes - 1)
        };
        lower_tail + upper_tail
    };
    p.min(1.0)
}

/// Exact one-sided binomial p-value: P(X ≥ k) when `greater`, else P(X ≤ k).
pub fn binomial_test_one_sided(successes: u64, trials: u64, p0: f64, greater: bool) -> f64 {
    let Ok(binomial) = Binomial::new(p0, trials) else {
        return f64::NAN;
    };
    if greater {
        if successes == 0 {
            1.0
        } else {
            binomial.sf(successes - 1)
        }
    } else {
        binomial.cdf(successes)
    }
}

/// Fixed-horizon sample size for two one-sided tests (TOST) that a share is
/// within `p0 ± margin`, at level `alpha` per test, with power `power` when
/// the true share is `p0`. Normal approximation (Chow, Shao & Wang, *Sample
/// Size Calculations in Clinical Research*, 2nd ed., §4.2):
/// n = (z₁₋α + z₁₋β/₂)² · p0(1−p0) / margin².
pub fn tost_sample_size(p0: f64, margin: f64, alpha: f64, power: f64) -> u64 {
    let beta = 1.0 - power;
    let z = normal_quantile(1.0 - alpha) + normal_quantile(1.0 - beta / 2.0);
    (z * z * p0 * (1.0 - p0) / (margin * margin)).ceil() as u64
}

/// Requests with zero canary answers after which a canary expected at share
/// `p0` is declared dead at level `alpha`: the smallest n with (1−p0)ⁿ ≤ α,
/// i.e. ⌈ln α / ln(1 − p0)⌉ (44 at p0 = 10%, α = 0.01).
pub fn dead_after(p0: f64, alpha: f64) -> u64 {
    (alpha.ln() / (1.0 - p0).ln()).ceil() as u64
}

/// Pearson's χ² goodness-of-fit test of `observed` counts against expected
/// `shares` (summing to 1). Returns (statistic, degrees of freedom, p-value).
pub fn chi_square_goodness_of_fit(observed: &[u64], shares: &[f64]) -> (f64, usize, f64) {
    let total: u64 = observed.iter().sum();
    let statistic: f64 = observed
        .iter()
        .zip(shares)
        .map(|(&seen, &share)| {
            let expected = share * total as f64;
            if expected > 0.0 {
                (seen as f64 - expected).powi(2) / expected
            } else {
                0.0
            }
        })
        .sum();
    let freedom = observed.len().saturating_sub(1);
    let p = ChiSquared::new(freedom as f64).map_or(f64::NAN, |chi| chi.sf(statistic));
    (statistic, freedom, p)
}

/// Over-dispersion of grouped binomial counts `(hits, trials)` against one
/// common share: Pearson's χ² for homogeneity, Σ (h − n·p̂)² / (n·p̂(1 − p̂)),
/// on (groups − 1) degrees of freedom (Cochran 1954). Groups with fewer than
/// 5 trials are left out (the χ² approximation needs counts). Returns
/// (statistic, degrees of freedom, p), or `None` with under two groups or
/// no variation at all.
pub fn dispersion_test(groups: impl Iterator<Item = (u64, u64)>) -> Option<(f64, usize, f64)> {
    let kept: Vec<(u64, u64)> = groups.filter(|(_, trials)| *trials >= 5).collect();
    if kept.len() < 2 {
        return None;
    }
    let hits: u64 = kept.iter().map(|g| g.0).sum();
    let trials: u64 = kept.iter().map(|g| g.1).sum();
    let share = hits as f64 / trials as f64;
    if share <= 0.0 || share >= 1.0 {
        return None;
    }
    let statistic: f64 = kept
        .iter()
        .map(|&(h, n)| {
            let expected = n as f64 * share;
            (h as f64 - expected).powi(2) / (expected * (1.0 - share))
        })
        .sum();
    let freedom = kept.len() - 1;
    let p = ChiSquared::new(freedom as f64).map_or(f64::NAN, |chi| chi.sf(statistic));
    Some((statistic, freedom, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_the_canary_issue_quotes() {
        assert_eq!(dead_after(0.10, 0.01), 44);
        let n = tost_sample_size(0.10, 0.02, 0.01, 0.95);
        assert!((4_000..4_200).contains(&n), "TOST n {n} (≈4,100)");
    }

    #[test]
    fn intervals_contain_the_estimate_and_handle_edges() {
        let (low, high) = clopper_pearson(100, 1000, 0.98);
        assert!(low < 0.1 && 0.1 < high);
        assert_eq!(clopper_pearson(0, 50, 0.98).0, 0.0);
        assert_eq!(clopper_pearson(50, 50, 0.98).1, 1.0);
        let (low, high) = wilson(0, 50, 0.95);
        assert!(low == 0.0 && high > 0.0);
    }
}
