//! Canary-versus-baseline health statistics on request-level counts:
//! error rates (Fisher's exact test, Newcombe's interval for the increase)
//! and latency (Mann–Whitney U from histograms, with the Hodges–Lehmann
//! shift and its Moses interval), plus Holm's step-down correction.
//!
//! Latencies arrive as histograms, so equal values are ties: the rank test
//! uses mid-ranks and the tie-corrected variance, and the shift estimates
//! count pairs of buckets weighted by their counts instead of listing every
//! pair of requests (memory stays flat in the number of requests).
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::stats_tests::{fishers_exact, Alternative};

use super::binomial::{normal_quantile, wilson};

/// One-sided Fisher exact test that the canary's error rate is *higher* than
/// the baseline's: P(≥ the canary errors seen | all margins), from the
/// hypergeometric distribution (Fisher 1935; statrs' implementation, which
/// matches `scipy.stats.fisher_exact(alternative="greater")`).
pub fn fisher_greater(
    canary_errors: u64,
    canary_total: u64,
    baseline_errors: u64,
    baseline_total: u64,
) -> f64 {
    let table = [
        canary_errors,
        canary_total - canary_errors,
        baseline_errors,
        baseline_total - baseline_errors,
    ];
    fishers_exact(&table, Alternative::Greater).unwrap_or(1.0)
}

/// Newcombe's hybrid score interval for p1 − p2 (Newcombe 1998, Statistics in
/// Medicine 17, method 10), built from the two Wilson intervals at the same
/// `confidence`. Good coverage down to zero counts, where Wald intervals
/// collapse. Matches statsmodels' `confint_proportions_2indep(method="newcomb")`.
pub fn newcombe_difference(
    successes1: u64,
    trials1: u64,
    successes2: u64,
    trials2: u64,
    confidence: f64,
) -> (f64, f64) {
    let share = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let (p1, p2) = (share(successes1, trials1), share(successes2, trials2));
    let (low1, high1) = wilson(successes1, trials1, confidence);
    let (low2, high2) = wilson(successes2, trials2, confidence);
    let difference = p1 - p2;
    (
        difference - ((p1 - low1).powi(2) + (high2 - p2).powi(2)).sqrt(),
        difference + ((high1 - p1).powi(2) + (p2 - low2).powi(2)).sqrt(),
    )
}

/// A sample as tie groups: (value, count), values strictly increasing — a
/// histogram's recorded buckets.
pub type Groups = [(u64, u64)];

/// The tie groups of an HdrHistogram (each recorded bucket is one value).
pub fn groups_of(histogram: &hdrhistogram::Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|bucket| {
            (
                histogram.highest_equivalent(bucket.value_iterated_to()),
                bucket.count_at_value(),
            )
        })
        .collect()
}

/// Result of a one-sided Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: pairs where it is larger, ties counting ½.
    pub u: f64,
    pub z: f64,
    /// P-value for "the first sample tends to be larger".
    pub p_greater: f64,
}

/// Mann–Whitney U test (Mann & Whitney 1947) that `x` is stochastically
/// larger than `y`, by the normal approximation with mid-ranks, the tie
/// correction of the variance and a continuity correction of ½ — the same
/// as `scipy.stats.mannwhitneyu(x, y, alternative="greater",
/// method="asymptotic")`. Samples here are hundreds to millions of requests,
/// far past where the exact distribution matters.
pub fn mann_whitney_greater(x: &Groups, y: &Groups) -> MannWhitney {
    let nx: u64 = x.iter().map(|group| group.1).sum();
    let ny: u64 = y.iter().map(|group| group.1).sum();
    if nx == 0 || ny == 0 {
        return MannWhitney {
            u: 0.0,
            z: 0.0,
            p_greater: 1.0,
        };
    }
    // Walk both sorted lists together; each distinct value is one tie group.
    let (mut i, mut j) = (0, 0);
    let mut rank_below = 0.0f64;
    let mut rank_sum_x = 0.0f64;
    let mut ties = 0.0f64;
    while i < x.len() || j < y.len() {
        let value = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => unreachable!(),
        };
        let mut in_x = 0;
        if x.get(i).is_some_and(|group| group.0 == value) {
            in_x = x[i].1;
            i += 1;
        }
        let mut in_y = 0;
        if y.get(j).is_some_and(|group| group.0 == value) {
            in_y = y[j].1;
            j += 1;
        }
        let tied = (in_x + in_y) as f64;
        rank_sum_x += in_x as f64 * (rank_below + (tied + 1.0) / 2.0);
        rank_below += tied;
        ties += tied * tied * tied - tied;
    }
    let (nx_f, ny_f) = (nx as f64, ny as f64);
    let n = nx_f + ny_f;
    let u = rank_sum_x - nx_f * (nx_f + 1.0) / 2.0;
    let mean = nx_f * ny_f / 2.0;
    let variance = nx_f * ny_f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        // Every value tied: no evidence either way.
        return MannWhitney {
            u,
            z: 0.0,
            p_greater: 1.0,
        };
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    let p_greater = Normal::new(0.0, 1.0).map_or(1.0, |normal| normal.sf(z));
    MannWhitney { u, z, p_greater }
}

/// Number of pairs (a from `x`, b from `y`) with a − b ≤ `shift`.
fn pairs_at_most(x: &Groups, y: &Groups, shift: i64) -> u128 {
    // For increasing a, the b's with b ≥ a − shift form a shrinking suffix.
    let total_y: u128 = y.iter().map(|group| group.1 as u128).sum();
    let mut below = 0u128; // y count with b < a − shift
    let mut j = 0;
    let mut pairs = 0u128;
    for &(a, count) in x {
        let threshold = a as i64 - shift;
        while j < y.len() && (y[j].0 as i64) < threshold {
            below += y[j].1 as u128;
            j += 1;
        }
        pairs += count as u128 * (total_y - below);
    }
    pairs
}

/// The `rank`-th smallest (1-based) of all pairwise differences a − b.
fn pairwise_order_statistic(x: &Groups, y: &Groups, rank: u128) -> i64 {
    let (Some(first_x), Some(last_x), Some(first_y), Some(last_y)) =
        (x.first(), x.last(), y.first(), y.last())
    else {
        return 0;
    };
    let mut low = first_x.0 as i64 - last_y.0 as i64;
    let mut high = last_x.0 as i64 - first_y.0 as i64;
    while low < high {
        let middle = low + (high - low).div_euclid(2);
        if pairs_at_most(x, y, middle) >= rank {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

/// The Hodges–Lehmann shift of `x` over `y` (Hodges & Lehmann 1963): the
/// median of all pairwise differences a − b, with its Moses (1953)
/// distribution-free interval at `confidence` from the order statistics
/// of the differences, k = ⌊nx·ny/2 − z·√(nx·ny·(nx+ny+1)/12)⌋ (Hollander &
/// Wolfe, *Nonparametric Statistical Methods*, §4.3, large-sample form).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

pub fn hodges_lehmann(x: &Groups, y: &Groups, confidence: f64) -> Option<Shift> {
    let nx: u128 = x.iter().map(|group| group.1 as u128).sum();
    let ny: u128 = y.iter().map(|group| group.1 as u128).sum();
    if nx == 0 || ny == 0 {
        return None;
    }
    let pairs = nx * ny;
    let lower_middle = pairwise_order_statistic(x, y, pairs.div_ceil(2));
    let upper_middle = pairwise_order_statistic(x, y, pairs / 2 + 1);
    let estimate = (lower_middle + upper_middle) as f64 / 2.0;
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (nx_f, ny_f) = (nx as f64, ny as f64);
    let spread = z * (nx_f * ny_f * (nx_f + ny_f + 1.0) / 12.0).sqrt();
    let k = (pairs as f64 / 2.0 - spread).floor().max(1.0) as u128;
    let low = pairwise_order_statistic(x, y, k) as f64;
    let high = pairwise_order_statistic(x, y, pairs + 1 - k) as f64;
    Some(Shift {
        estimate,
        low,
        high,
    })
}

/// Holm's step-down adjusted p-values (Holm 1979, Scand. J. Statist. 6):
/// the i-th smallest p times (m − i + 1), made monotone, capped at 1.
/// Rejecting where the adjusted p < α controls the family-wise error at α.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (position, &index) in order.iter().enumerate() {
        running = running.max(((m - position) as f64 * p_values[index]).min(1.0));
        adjusted[index] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_differences_count_and_order() {
        let x = [(10, 1), (20, 1)];
        let y = [(1, 1), (2, 1)];
        // Differences: 9, 8, 19, 18 → sorted 8, 9, 18, 19.
        assert_eq!(pairs_at_most(&x, &y, 8), 1);
        assert_eq!(pairs_at_most(&x, &y, 18), 3);
        assert_eq!(pairwise_order_statistic(&x, &y, 1), 8);
        assert_eq!(pairwise_order_statistic(&x, &y, 3), 18);
        let shift = hodges_lehmann(&x, &y, 0.9).unwrap();
        assert_eq!(shift.estimate, 13.5);
    }

    #[test]
    fn holm_adjusts_in_step_down_order() {
        let adjusted = holm(&[0.01, 0.04, 0.03]);
        assert_eq!(adjusted, vec![0.03, 0.06, 0.06]);
    }
}
