//! Every integration test in one binary. Each file under tests/ used to be
//! its own test binary, and each release link (thin LTO) took ≈ 90 s on two
//! cores: eight of them were most of CI's time. Tests run one at a time
//! (`RUST_TEST_THREADS=1` in .cargo/config.toml), as the separate binaries
//! effectively did for the timing-sensitive ones (rates, throttle estimates).
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
mod canary_stats;
mod cli;
mod load;
mod rate;
mod real_limiters;
mod safety;
mod saved;
mod scenarios;
mod serve;
mod shards;
mod sigv4;
mod sim;
mod stats;
mod throttle;
mod throttle_stats;
mod tls;
mod traces;
