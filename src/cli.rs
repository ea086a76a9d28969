//! Command-line definitions (clap derive). Values stay raw strings here; `plan`
//! turns them into a validated, typed plan with one clear message per mistake.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gateprobe",
    version,
    about = "Traffic generator and canary verifier for API gateways",
    long_about = "gateprobe fires open-model request rates at an API gateway, classifies every \
                  response by the deployment that served it, and turns what it saw into a \
                  verdict, an exit code and reports for CI.\n\nExit codes: 0 pass · 1 a check \
                  failed · 2 usage or input error · 3 inconclusive · 4 could not measure."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a bounded request stream at a URL and report what came back.
    Load(LoadArgs),
    /// Run the embedded API-gateway simulator on loopback until Ctrl-C.
    Sim(SimArgs),
    /// Show the whole job against the embedded simulator (no cloud account).
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Simulator config (JSON); default: the built-in walkthrough
    /// (scenarios/sim-default.json).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR:PORT")]
    pub listen: String,

    /// Seed for the canary choice and injected faults (reproducible runs).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Folder for the demo's JSON reports (default: a gateprobe-demo folder
    /// in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Seed for the simulator.
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub seed: u64,
}

/// Flags shared by every command that sends traffic.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Target URL (http or https). May contain {{seq}}, {{uuid}}, {{unix_ms}}.
    pub url: String,

    /// Run time bound, e.g. 30s, 500ms, 2m (default 10s unless --requests is given).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Request count bound.
    #[arg(short = 'n', long, value_name = "N", allow_negative_numbers = true)]
    pub requests: Option<String>,

    /// Requests per second (open model), or `max` for as fast as --connections allow.
    #[arg(
        short = 'r',
        long,
        value_name = "RPS|max",
        allow_negative_numbers = true
    )]
    pub rate: Option<String>,

    /// Rate steps, each held for the given time: 100,200,400@10s.
    #[arg(long, value_name = "R1,R2,…@DURATION")]
    pub steps: Option<String>,

    /// Linear rate ramp: 0..1000@60s.
    #[arg(long, value_name = "FROM..TO@DURATION")]
    pub ramp: Option<String>,

    /// Open model: most requests in flight at once; a request that comes due
    /// while all are busy is counted as dropped, never sent late.
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<String>,

    /// Closed model (--rate max): concurrent connections.
    #[arg(short = 'c', long, value_name = "N")]
    pub connections: Option<String>,

    /// HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    pub method: String,

    /// Request header 'Name: value' (repeatable). x-api-key and Authorization
    /// values are secret: they never appear in any output.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Mark another header's value as secret (repeatable).
    #[arg(long = "secret-header", value_name = "NAME")]
    pub secret_headers: Vec<String>,

    /// Request body, or @FILE to read it from a file. Templates apply.
    #[arg(short = 'd', long, value_name = "TEXT|@FILE")]
    pub body: Option<String>,

    /// Per-request timeout (connect, send and read the body).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,

    /// Use HTTP/2 (prior knowledge on http://, ALPN on https://).
    #[arg(long)]
    pub http2: bool,

    /// Do not verify TLS certificates.
    #[arg(long)]
    pub insecure: bool,

    /// Classification rule NAME=MATCHER (repeatable, first match wins), e.g.
    /// canary=body:empty, stable=json:/version, throttled=status:429.
    #[arg(long = "classify", value_name = "NAME=MATCHER")]
    pub classify: Vec<String>,

    /// Most body bytes read for matching (the rest is drained, not kept).
    #[arg(long, default_value = "64KiB", value_name = "SIZE")]
    pub max_body: String,

    /// Write the JSON report to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress bar and no terminal summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Prints a clap error as one line (help and version print in full) and
/// returns the exit code: 0 for help/version, 2 for a usage error.
pub fn report_parse_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("error: bad arguments");
            eprintln!("{first} (see --help)");
            ExitCode::from(crate::exit::USAGE)
        }
    }
}
