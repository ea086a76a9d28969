//! The simulator's limiters, each the way a real gateway implements it:
//! - `token_bucket` (API Gateway, Envoy's local rate limit): `rate` tokens per
//!   second refill a bucket of `burst`; a request takes one or is refused.
//! - `queue` (nginx `limit_req` without `nodelay`): a leaky bucket of `rate`
//!   whose excess up to `burst` requests is *delayed* by excess ÷ rate rather
//!   than refused (ngx_http_limit_req_module: `excess = excess − rate·elapsed
//!   + 1`, refused when it passes `burst`).
//! - `fixed_window` (Kong's rate-limiting plugin, most Redis limiters): at most
//!   `limit` requests per window of `window_s`, counted from zero at each
//!   window boundary.
//! - `sliding_window` (HAProxy's `sc_http_req_rate`): the two-window estimate
//!   previous·(1 − elapsed/W) + current must stay below `limit`; with
//!   `counts_refused` (HAProxy tracks every request it sees) a client that
//!   keeps sending above the limit is locked out until it backs off.
//!
//! Written by hand rather than with governor: the simulator admits a request
//! only if *every* layer (usage-plan key, method, stage, account) admits it,
//! and only then charges each — an all-or-nothing check across several
//! limiters that a per-limiter `check()` cannot express without charging
//! layers that then refuse. Time is passed in, so tests are exact.
use std::collections::HashMap;
use std::hash::Hash;

use crate::sim::config::{LimiterKind, Throttle};

/// One limiter's state.
#[derive(Debug, Clone)]
pub struct Limiter {
    throttle: Throttle,
    /// Token bucket: tokens; queue: the excess; windows: the current count.
    level: f64,
    /// Sliding window: the previous window's count.
    previous: f64,
    /// Token bucket, queue: last update; windows: the current window's index.
    last_s: f64,
}

/// What a limiter would do with a request now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Admitted after waiting this long (0 unless queued).
    Admit {
        delay_s: f64,
    },
    Refuse,
}

impl Limiter {
    /// A limiter at rest (as after a long idle) at time `now_s`.
    pub fn new(throttle: Throttle, now_s: f64) -> Self {
        let level = match throttle.kind {
            LimiterKind::TokenBucket => throttle.burst as f64,
            _ => 0.0,
        };
        let last_s = match throttle.kind {
            LimiterKind::FixedWindow | LimiterKind::SlidingWindow => {
                (now_s / throttle.window_s).floor()
            }
            _ => now_s,
        };
        Self {
            throttle,
            level,
            previous: 0.0,
            last_s,
        }
    }

    /// Moves time forward to `now_s` (refill, drain, roll windows).
    fn advance(&mut self, now_s: f64) {
        let t = &self.throttle;
        match t.kind {
            LimiterKind::TokenBucket => {
                if now_s > self.last_s {
                    self.level = (self.level + (now_s - self.last_s) * t.rate).min(t.burst as f64);
                    self.last_s = now_s;
                }
            }
            LimiterKind::Queue => {
                if now_s > self.last_s {
                    self.level = (self.level - (now_s - self.last_s) * t.rate).max(0.0);
                    self.last_s = now_s;
                }
            }
            LimiterKind::FixedWindow | LimiterKind::SlidingWindow => {
                let window = (now_s / t.window_s).floor();
                if window > self.last_s {
                    self.previous = if window == self.last_s + 1.0 {
                        self.level
                    } else {
                        0.0
                    };
                    self.level = 0.0;
                    self.last_s = window;
                }
            }
        }
    }

    /// What this limiter would do with a request at `now_s` (not yet charged).
    pub fn check(&mut self, now_s: f64) -> Admission {
        self.advance(now_s);
        let t = &self.throttle;
        match t.kind {
            LimiterKind::TokenBucket if self.level >= 1.0 => Admission::Admit { delay_s: 0.0 },
            LimiterKind::Queue => {
                let excess = self.level + 1.0;
                // The first request of an idle queue goes straight through.
                if self.level == 0.0 {
                    Admission::Admit { delay_s: 0.0 }
                } else if excess > t.burst as f64 + 1.0 {
                    Admission::Refuse
                } else {
                    Admission::Admit {
                        delay_s: (excess - 1.0) / t.rate.max(1e-9),
                    }
                }
            }
            LimiterKind::FixedWindow if self.level < t.limit as f64 => {
                Admission::Admit { delay_s: 0.0 }
            }
            LimiterKind::SlidingWindow => {
                let elapsed = (now_s / t.window_s).fract();
                let estimate = self.previous * (1.0 - elapsed) + self.level;
                if estimate + 1.0 <= t.limit as f64 {
                    Admission::Admit { delay_s: 0.0 }
                } else {
                    Admission::Refuse
                }
            }
            _ => Admission::Refuse,
        }
    }

    /// Charges an admitted request.
    pub fn charge(&mut self) {
        match self.throttle.kind {
            LimiterKind::TokenBucket => self.level -= 1.0,
            LimiterKind::Queue | LimiterKind::FixedWindow | LimiterKind::SlidingWindow => {
                self.level += 1.0
            }
        }
    }

    /// Notes a refused request (only a sliding window that counts refused
    /// requests remembers it).
    pub fn refused(&mut self) {
        if self.throttle.kind == LimiterKind::SlidingWindow && self.throttle.counts_refused {
            self.level += 1.0;
        }
    }
}

/// Admits a request through the limiters named by `layers` at once, or
/// through none: every layer must admit it, and then each is charged (a
/// refused request is noted by the layers that count refusals). Returns the
/// longest queueing delay, or `None` when refused. Missing layers refuse.
pub fn admit<K: Eq + Hash>(
    limiters: &mut HashMap<K, Limiter>,
    layers: &[K],
    now_s: f64,
) -> Option<f64> {
    let mut delay_s = 0.0_f64;
    let mut all = true;
    for key in layers {
        match limiters.get_mut(key).map(|limiter| limiter.check(now_s)) {
            Some(Admission::Admit { delay_s: wait }) => delay_s = delay_s.max(wait),
            _ => all = false,
        }
    }
    for key in layers {
        if let Some(limiter) = limiters.get_mut(key) {
            if all {
                limiter.charge();
            } else {
                limiter.refused();
            }
        }
    }
    all.then_some(delay_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(rate: f64, burst: u64) -> Throttle {
        Throttle::token_bucket(rate, burst)
    }

    /// Offers `rate_per_s` evenly for `seconds` to a fresh limiter; returns
    /// the admitted count and the longest delay.
    fn offer(throttle: Throttle, rate_per_s: f64, seconds: f64) -> (u64, f64) {
        let mut limiters = HashMap::from([("layer", Limiter::new(throttle, 0.0))]);
        let requests = (rate_per_s * seconds) as u64;
        let mut longest = 0.0_f64;
        let admitted = (0..requests)
            .filter_map(|i| admit(&mut limiters, &["layer"], i as f64 / rate_per_s))
            .inspect(|delay| longest = longest.max(*delay))
            .count() as u64;
        (admitted, longest)
    }

    #[test]
    fn a_token_bucket_admits_its_burst_then_its_rate() {
        for (rate, burst) in [(50.0, 10_u64), (1000.0, 500)] {
            let (admitted, _) = offer(bucket(rate, burst), 2.0 * rate, 5.0);
            let expected = burst as f64 + 5.0 * rate;
            assert!(
                (admitted as f64 / expected - 1.0).abs() <= 0.03,
                "{admitted} vs {expected}"
            );
        }
    }

    #[test]
    fn a_queue_delays_up_to_burst_over_rate_then_refuses() {
        let queue = Throttle {
            kind: LimiterKind::Queue,
            ..bucket(60.0, 30)
        };
        let (admitted, longest) = offer(queue, 120.0, 5.0);
        // Admits its rate plus the queue, each waiting at most burst/rate.
        assert!(
            (admitted as f64 - (300.0 + 30.0)).abs() <= 3.0,
            "{admitted}"
        );
        assert!((longest - 0.5).abs() < 0.02, "{longest}");
    }

    #[test]
    fn a_fixed_window_resets_at_each_boundary() {
        let window = Throttle {
            kind: LimiterKind::FixedWindow,
            limit: 60,
            window_s: 1.0,
            ..bucket(0.0, 0)
        };
        let (admitted, _) = offer(window, 200.0, 5.0);
        assert_eq!(admitted, 300);
    }

    #[test]
    fn a_sliding_window_that_counts_refusals_locks_out() {
        let counting = Throttle {
            kind: LimiterKind::SlidingWindow,
            limit: 80,
            window_s: 1.0,
            counts_refused: true,
            ..bucket(0.0, 0)
        };
        let mut limiters = HashMap::from([("layer", Limiter::new(counting, 0.0))]);
        let admitted_late = (0..1000)
            .filter(|i| admit(&mut limiters, &["layer"], *i as f64 / 200.0).is_some())
            .filter(|i| *i >= 400)
            .count();
        assert_eq!(admitted_late, 0, "locked out after the first seconds");
        let (plain, _) = offer(
            Throttle {
                counts_refused: false,
                ..counting
            },
            200.0,
            5.0,
        );
        assert!((plain as f64 - 400.0).abs() <= 20.0, "{plain}");
    }

    #[test]
    fn layers_are_all_or_nothing() {
        let mut limiters = HashMap::from([
            ("key", Limiter::new(bucket(0.0, 2), 0.0)),
            ("stage", Limiter::new(bucket(0.0, 5), 0.0)),
        ]);
        let admitted = (0..10)
            .filter(|_| admit(&mut limiters, &["key", "stage"], 0.0).is_some())
            .count();
        assert_eq!(admitted, 2, "the tightest layer decides");
        // The stage kept the tokens the key's refusals did not take.
        assert_eq!(
            (0..10)
                .filter(|_| admit(&mut limiters, &["stage"], 0.0).is_some())
                .count(),
            3
        );
        assert!(
            admit(&mut limiters, &["missing"], 0.0).is_none(),
            "an unknown layer refuses"
        );
    }
}
