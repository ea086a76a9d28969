//! gateprobe: a traffic generator and canary verifier for API gateways.
//!
//! The binary is wiring only; everything lives here so that integration tests
//! call [`run`] in-process with `Cli::parse_from([...])`.

pub mod app;
pub mod canary;
pub mod check;
pub mod classify;
pub mod cli;
pub mod console;
pub mod engine;
pub mod exit;
pub mod identity;
pub mod input;
pub mod json;
pub mod output;
pub mod plan;
pub mod record;
pub mod redact;
pub mod report;
pub mod resources;
pub mod sample;
pub mod signals;
pub mod sigv4;
pub mod sim;
pub mod stats;
pub mod template;
pub mod throttle;
pub mod units;

use anyhow::Result;

pub use exit::UsageError;

/// Maps an error that escaped [`run`] to its exit code (see [`exit::code_for_error`]).
pub fn exit_code_for_error(err: &anyhow::Error) -> u8 {
    exit::code_for_error(err)
}

/// Runs one command and returns its exit code.
pub async fn run(cli: cli::Cli) -> Result<u8> {
    // Signal handlers first: SIGTERM or SIGHUP during planning or sending
    // must leave a report, not kill the process.
    let _ = signals::interrupt();
    resources::raise_open_files();
    if let Some(job) = app::job::Job::plan(&cli.command)? {
        return app::job::run(job).await;
    }
    match cli.command {
        cli::Command::Report(args) => app::job::rerender(args),
        cli::Command::Merge(args) => app::job::merge(args),
        cli::Command::Run(args) => app::scenario::run(args).await,
        cli::Command::Sim(args) => app::sim::run(args).await,
        cli::Command::Demo(args) => app::demo::run(args).await,
        cli::Command::Serve(args) => app::serve::run(args).await,
        cli::Command::Completions(args) => cli::generate::completions(&args),
        cli::Command::Man(args) => cli::generate::man(&args),
        cli::Command::Load(_) | cli::Command::Canary(_) | cli::Command::Throttle(_) => {
            unreachable!("planned as jobs above")
        }
    }
}
