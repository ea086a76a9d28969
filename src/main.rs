//! Binary entry point: parse flags, run the library, map the outcome to an exit code.
use std::process::ExitCode;

use clap::Parser;
use gateprobe::{cli::Cli, exit_code_for_error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return gateprobe::cli::report_parse_error(err),
    };
    // The engine runs its own per-core threads; this runtime only hosts the
    // consumer, progress and Ctrl-C. One thread: no futex ping-pong between
    // runtime threads on every consumer tick.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            gateprobe::errln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(gateprobe::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // Input echoed in a message is shown with its control
            // characters escaped: it can neither forge lines nor drive the terminal.
            let message = gateprobe::console::escape_controls(&format!("{err:#}"));
            gateprobe::errln!("error: {message}");
            ExitCode::from(exit_code_for_error(&err))
        }
    }
}
