//! Token buckets, the throttling model of API Gateway: `rate` tokens per
//! second refill a bucket that holds at most `burst`; a request takes one
//! token or is throttled.
//!
//! Written by hand rather than with governor: the simulator admits a request
//! only if *every* layer (usage-plan key, method, stage, account) has a token,
//! and then takes one from each — an all-or-nothing check across several
//! buckets that a per-limiter `check()` cannot express without consuming
//! tokens from layers that then reject. Time is passed in, so tests are exact.
use std::collections::HashMap;
use std::hash::Hash;

use crate::sim::config::Throttle;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last_s: f64,
}

impl TokenBucket {
    /// A full bucket (as after a long idle) at time `now_s`.
    pub fn new(throttle: Throttle, now_s: f64) -> Self {
        let burst = throttle.burst as f64;
        Self {
            rate_per_s: throttle.rate,
            burst,
            tokens: burst,
            last_s: now_s,
        }
    }

    fn refill(&mut self, now_s: f64) {
        if now_s > self.last_s {
            self.tokens = (self.tokens + (now_s - self.last_s) * self.rate_per_s).min(self.burst);
            self.last_s = now_s;
        }
    }

    /// Whether a request at `now_s` would be admitted (refills first).
    pub fn has_token(&mut self, now_s: f64) -> bool {
        self.refill(now_s);
        self.tokens >= 1.0
    }

    /// Takes the token [`has_token`](Self::has_token) found.
    pub fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

/// Admits a request through the buckets named by `layers` at once, or
/// through none: every layer must have a token, and then each gives one.
/// Layers missing from `buckets` refuse.
pub fn admit<K: Eq + Hash>(
    buckets: &mut HashMap<K, TokenBucket>,
    layers: &[K],
    now_s: f64,
) -> bool {
    let all = layers.iter().all(|key| {
        buckets
            .get_mut(key)
            .is_some_and(|bucket| bucket.has_token(now_s))
    });
    if all {
        for key in layers {
            if let Some(bucket) = buckets.get_mut(key) {
                bucket.take();
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers a volley of `burst_volley` at once, then `rate_per_s` evenly for
    /// `seconds`, each to an idle bucket; returns what each admitted.
    fn offer(throttle: Throttle, burst_volley: u64, rate_per_s: f64, seconds: f64) -> (u64, u64) {
        let fresh = || HashMap::from([("layer", TokenBucket::new(throttle, 0.0))]);
        let mut buckets = fresh();
        let volley = (0..burst_volley)
            .filter(|_| admit(&mut buckets, &["layer"], 0.0))
            .count() as u64;
        let mut buckets = fresh();
        let requests = (rate_per_s * seconds) as u64;
        let sustained = (0..requests)
            .filter(|&i| admit(&mut buckets, &["layer"], i as f64 / rate_per_s))
            .count() as u64;
        (volley, sustained)
    }

    #[test]
    fn burst_then_rate_for_two_buckets() {
        for (rate, burst) in [(50.0, 10_u64), (1000.0, 500)] {
            let throttle = Throttle { rate, burst };
            let (volley, sustained) = offer(throttle, 2 * burst, 2.0 * rate, 5.0);
            assert_eq!(volley, burst, "2B at once admits B");
            let expected = burst as f64 + 5.0 * rate;
            assert!(
                (sustained as f64 / expected - 1.0).abs() <= 0.03,
                "{sustained} vs {expected}"
            );
        }
    }

    #[test]
    fn layers_are_all_or_nothing() {
        let mut buckets = HashMap::from([
            (
                "key",
                TokenBucket::new(
                    Throttle {
                        rate: 0.0,
                        burst: 2,
                    },
                    0.0,
                ),
            ),
            (
                "stage",
                TokenBucket::new(
                    Throttle {
                        rate: 0.0,
                        burst: 5,
                    },
                    0.0,
                ),
            ),
        ]);
        let admitted = (0..10)
            .filter(|_| admit(&mut buckets, &["key", "stage"], 0.0))
            .count();
        assert_eq!(admitted, 2, "the tightest layer decides");
        // The stage kept the tokens the key's refusals did not take.
        assert_eq!(
            (0..10)
                .filter(|_| admit(&mut buckets, &["stage"], 0.0))
                .count(),
            3
        );
        assert!(
            !admit(&mut buckets, &["missing"], 0.0),
            "an unknown layer refuses"
        );
    }
}
