//! Binomial arithmetic for shares (e.g. the canary's share of requests, each
//! assigned at random): the normal quantile, the fixed-horizon TOST sample
//! size the canary plan is compared with, and the χ² test of whether a share
//! is the same across groups (connections, seconds).
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// The standard normal quantile.
pub fn normal_quantile(probability: f64) -> f64 {
    Normal::new(0.0, 1.0).map_or(f64::NAN, |normal| normal.inverse_cdf(probability))
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

/// The exact (Clopper–Pearson) interval for a share from `hits` of
/// `trials`: each side misses with probability at most `alpha` (so the
/// interval is at level 1 − 2α), from the beta quantiles (Clopper &
/// Pearson 1934; SciPy's `binomtest(...).proportion_ci(method="exact")`).
pub fn clopper_pearson(hits: u64, trials: u64, alpha: f64) -> (f64, f64) {
    use statrs::distribution::Beta;
    if trials == 0 {
        return (0.0, 1.0);
    }
    let (x, n) = (hits.min(trials) as f64, trials as f64);
    let low = if hits == 0 {
        0.0
    } else {
        Beta::new(x, n - x + 1.0).map_or(0.0, |beta| beta.inverse_cdf(alpha))
    };
    let high = if hits >= trials {
        1.0
    } else {
        Beta::new(x + 1.0, n - x).map_or(1.0, |beta| beta.inverse_cdf(1.0 - alpha))
    };
    (low, high)
}

/// Fewest trials a group needs to enter [`dispersion_test`].
pub const MIN_GROUP_TRIALS: u64 = 5;

/// Over-dispersion of grouped binomial counts `(hits, trials)` against one
/// common share: Pearson's χ² for homogeneity, Σ (h − n·p̂)² / (n·p̂(1 − p̂)),
/// on (groups − 1) degrees of freedom (Cochran 1954). Groups with fewer than
/// [`MIN_GROUP_TRIALS`] trials are left out (the χ² approximation needs
/// counts). Returns
/// (statistic, degrees of freedom, p), or `None` with under two groups or
/// no variation at all.
pub fn dispersion_test(groups: impl Iterator<Item = (u64, u64)>) -> Option<(f64, usize, f64)> {
    let kept: Vec<(u64, u64)> = groups
        .filter(|(_, trials)| *trials >= MIN_GROUP_TRIALS)
        .collect();
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

/// The χ² statistic on `freedom` degrees of freedom above which
/// [`dispersion_test`]'s p falls below `p`.
pub fn dispersion_critical(freedom: usize, p: f64) -> f64 {
    ChiSquared::new(freedom.max(1) as f64).map_or(f64::INFINITY, |chi| chi.inverse_cdf(1.0 - p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_horizon_size_the_canary_issue_quotes() {
        assert_eq!(tost_sample_size(0.10, 0.02, 0.01, 0.95), 4134);
    }

    #[test]
    fn a_share_stuck_to_groups_is_over_dispersed() {
        let even = [(10, 100), (11, 100), (9, 100), (10, 100)];
        let (_, freedom, p) = dispersion_test(even.into_iter()).unwrap();
        assert_eq!(freedom, 3);
        assert!(p > 0.5, "{p}");
        let stuck = [(100, 100), (0, 100), (0, 100), (0, 100)];
        assert!(dispersion_test(stuck.into_iter()).unwrap().2 < 1e-20);
        assert!(dispersion_test([(0, 100), (0, 100)].into_iter()).is_none());
    }
}
