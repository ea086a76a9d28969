//! The statistical simulations: seeded, in virtual time, CPU-bound (each
//! spreads its runs over both cores). A binary of their own, so that they
//! never share the cores with tests/it's real-time tests, whose timing
//! assertions a saturated CPU would break; cargo runs the test binaries one
//! after another.
#[path = "../it/common/mod.rs"]
mod common;

mod canary_stats;
mod stats;
mod throttle_stats;
mod traces;
