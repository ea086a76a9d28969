//! `gateprobe throttle`: where do 429s start, and what bucket produced them?
//!
//! The procedure (docs/throttle.md):
//! 1. **Idle** (`--idle`): send nothing, so that the bucket is full.
//! 2. **Search**: offer `--start-rate`, doubling every `--step`, up to
//!    `--max-rate` (held there a few seconds); stop at the third 429. Below
//!    the refill rate the bucket stays full; above it, it drains and 429s begin.
//! 3. **Overload**: offer 1.5× the step rate at which 429s began (never above
//!    `--max-rate`) and fit admitted requests over time ([`estimate`]): the
//!    slope is the refill rate, the height at the moment the bucket began to
//!    drain the burst. Stop as soon as both intervals are tight (rate ±2.5%,
//!    burst ±5% or ±1 request) and at least two seconds were seen.
//!
//! Every phase shares one [`Pacer`]: no one-second window ever holds more
//! than `--max-rate` sends, and the phases share one `--max-requests` and one
//! `--max-duration`. A 429 `Limit Exceeded` (a usage-plan quota) stops the
//! probe at once; mostly 401/403 stops it as an auth problem; a 429 carrying
//! `Retry-After` stops it, as asked, unless `--ignore-retry-after`.
pub mod estimate;
pub mod gate;
pub mod identify;
pub mod plan;
pub mod watch;

pub use plan::{ThrottlePlan, FORBIDDEN, QUOTA, THROTTLED};

use estimate::Fit;

/// Level of the rate and burst intervals.
pub const CONFIDENCE: f64 = 0.95;
/// The overload stops once the rate's interval is this tight (relative half-width)…
pub const RATE_PRECISION: f64 = 0.025;
/// …the burst's within this share of it or one request, whichever is larger…
pub const BURST_PRECISION: f64 = 0.05;
/// The rate's precision never needs to be finer than this (rps): without a
/// floor, a limiter that admits almost nothing could never stop the probe.
pub const RATE_FLOOR: f64 = 0.05;
/// The overload's stop rule on intervals: rate within ±2.5% (or ±0.05 rps),
/// burst within ±5% (or ±1 request) beyond what the client's timing alone
/// forces ([`Fit::burst_timing_floor`]). Without that allowance a client
/// whose round trips vary by milliseconds (a busy runner) could never stop
/// the overload, and would spend the probe's whole budget on a burst
/// interval no longer overload can narrow; the interval is as wide as the
/// timing makes it either way, and the report says so.
pub fn is_tight(fit: &Fit) -> bool {
    fit.rate.half_width() <= (RATE_PRECISION * fit.rate.estimate).max(RATE_FLOOR)
        && fit.burst.half_width()
            <= (BURST_PRECISION * fit.burst.estimate).max(1.0) + fit.burst_timing_floor()
}
