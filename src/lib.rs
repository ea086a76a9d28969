//! gateprobe: a traffic generator and canary verifier for API gateways.
//!
//! The binary is wiring only; everything lives here so that integration tests
//! call [`run`] in-process with `Cli::parse_from([...])`.

pub mod canary;
pub mod classify;
pub mod cli;
pub mod console;
pub mod demo;
pub mod engine;
pub mod input;
pub mod plan;
pub mod progress;
pub mod record;
pub mod redact;
pub mod report;
pub mod resources;
pub mod sample;
pub mod scenario;
pub mod signals;
pub mod sim;
pub mod stats;
pub mod template;
pub mod throttle;
pub mod units;

use anyhow::Result;

pub use plan::UsageError;

/// Exit codes, as documented in DESIGN.md and the README.
pub mod exit {
    /// Every check passed (or, with no checks, something succeeded).
    pub const PASS: u8 = 0;
    /// A check failed: the gate is closed.
    pub const FAIL: u8 = 1;
    /// Usage or input error: bad flag, scenario, URL or matcher.
    pub const USAGE: u8 = 2;
    /// Not enough evidence within the bounds.
    pub const INCONCLUSIVE: u8 = 3;
    /// Could not measure: target unreachable or nothing succeeded.
    pub const ERROR: u8 = 4;
}

/// Maps an error that escaped [`run`] to its exit code: input errors are 2,
/// everything else means the run could not measure (4).
pub fn exit_code_for_error(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|cause| cause.downcast_ref::<UsageError>().is_some())
    {
        exit::USAGE
    } else {
        exit::ERROR
    }
}

/// Runs one command and returns its exit code.
pub async fn run(cli: cli::Cli) -> Result<u8> {
    // Signal handlers first: SIGTERM or SIGHUP during planning or sending
    // must leave a report, not kill the process.
    let _ = signals::interrupt();
    resources::raise_open_files();
    match cli.command {
        cli::Command::Load(args) => engine::command::load(args).await,
        cli::Command::Canary(args) => canary::run(args).await,
        cli::Command::Throttle(args) => throttle::run(args).await,
        cli::Command::Report(args) => report::rerender(args),
        cli::Command::Run(args) => scenario::run(args).await,
        cli::Command::Sim(args) => sim::command::run(args).await,
        cli::Command::Demo(args) => demo::run(args).await,
    }
}
