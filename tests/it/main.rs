//! The integration tests that drive real traffic, in one binary (each
//! file under tests/ used to be its own binary, and each release link was
//! most of CI's time). Most of them wait on the clock: a run of 5 s at
//! 200 rps uses a few percent of a core. One at a time they took 650 s of
//! CI and 0.4 of its two cores; six at a time (`RUST_TEST_THREADS` in
//! .cargo/config.toml) 200 s, with every timing assertion kept. The
//! CPU-bound simulations, which would starve them, are their own binary
//! (tests/stats/), run after this one.
mod action;
mod analysis;
mod common;

mod declared;
mod docs;
mod faults;
mod identities;
mod kubernetes;
mod layers;

mod canary;
mod cli;
mod load;
mod rate;
mod real_limiters;
mod report_pages;
mod safety;
mod samples;
mod saved;
mod scenarios;
mod serve;
mod shards;
mod sigv4;
mod sim;
mod throttle;
mod tls;
