//! Command-line definitions (clap derive). Values stay raw strings in the
//! argument structs; the builders beside them ([`load`], [`canary`],
//! [`throttle`]) turn them into validated, typed plans (`crate::plan`,
//! `crate::canary`, `crate::throttle`) with one clear message per mistake.
pub mod aws;
pub mod canary;
pub mod generate;
pub mod load;
pub mod throttle;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::schedule::{Shape, SHAPES};
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
    /// Check a canary: its share of the traffic and its health against the
    /// baseline, with stated error rates, stopping as soon as it is decided.
    Canary(CanaryArgs),
    /// Find where 429s start and estimate the limiter's rate and burst, never
    /// sending more than --max-rate per second or --max-requests in all.
    Throttle(ThrottleArgs),
    /// Run a scenario file: ordered load / canary / throttle / pause steps
    /// whose checks make one verdict and exit code (the CI gate).
    Run(RunArgs),
    /// Re-render a saved JSON report as text, JSON, JUnit, Markdown or HTML;
    /// exits with the saved report's exit code.
    Report(ReportCommandArgs),
    /// Merge the JSON reports of a run's shards (--shard I/N) into the run's
    /// report: counts, histograms and series added exactly, every check
    /// computed again on the union; exits with the merged verdict.
    Merge(MergeArgs),
    /// Run the embedded API-gateway simulator on loopback until Ctrl-C.
    Sim(SimArgs),
    /// Show the whole job against the embedded simulator (no cloud account).
    Demo(DemoArgs),
    /// Serve verdicts to rollout controllers: Flagger webhooks
    /// (/v1/flagger/HOOK) and Argo Rollouts' Web provider (/v1/argo/runs/KEY),
    /// each run a profile (a scenario file) from --profiles.
    Serve(ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// generated from these flags, e.g. `gateprobe completions bash >
    /// ~/.local/share/bash-completion/completions/gateprobe`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) generated from these flags, or write one
    /// page per command into --dir (gateprobe.1, gateprobe-load.1, …).
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback unless told otherwise; beyond
    /// loopback, --token-file is required).
    #[arg(long, default_value = "127.0.0.1:8484", value_name = "ADDR:PORT")]
    pub listen: String,

    /// A folder of scenario files: each is a profile named by its stem.
    #[arg(long, value_name = "DIR")]
    pub profiles: PathBuf,

    /// Keep every run's record and report here, so that a restarted server
    /// answers finished runs the same way.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// At most this many runs at once; past it, 429 with Retry-After.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_runs: usize,

    /// The token callers must present: Argo as `Authorization: Bearer`,
    /// Flagger (which cannot send headers) as metadata.token. Never shown.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Flagger namespaces accepted (repeatable); default: any.
    #[arg(long, value_name = "NAMESPACE")]
    pub allow_namespace: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write gateprobe.1 and a page per command into this directory
    /// (created if missing) instead of printing gateprobe.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seed: Option<u64>,

    /// Serve HTTPS with a certificate generated now for localhost,
    /// 127.0.0.1 and ::1; its CA is written to --tls-ca (give that file to
    /// clients as --cacert).
    #[arg(long)]
    pub tls: bool,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The --tls-cert's private key (PEM). Never shown.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where --tls writes its CA certificate (PEM); default: a file in the
    /// system's temporary directory, named when the simulator starts.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<PathBuf>,

    /// Print stage NAME as `aws apigateway get-stage` would (JSON) and exit:
    /// feed it to --aws-stage to check the simulator against its declaration.
    #[arg(long, value_name = "NAME", conflicts_with = "print_aws_usage_plan")]
    pub print_aws_stage: Option<String>,

    /// Print usage plan NAME as `aws apigateway get-usage-plan` would and exit.
    #[arg(long, value_name = "NAME")]
    pub print_aws_usage_plan: Option<String>,
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

    /// Run the whole demo over HTTPS: the simulator serves a certificate
    /// generated now and every command trusts its CA with --cacert (also
    /// GATEPROBE_DEMO_TLS=1).
    #[arg(long)]
    pub tls: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CanaryArgs {
    /// Expected share of a class, CLASS=SHARE (repeatable): canary=10%.
    /// Classes come from --classify; shares may sum to at most 100% (the rest
    /// goes to the baseline).
    #[arg(
        long = "expect",
        value_name = "CLASS=SHARE",
        required_unless_present = "aws_stage"
    )]
    pub expect: Vec<String>,

    /// The stage as `aws apigateway get-stage` prints it (JSON): its
    /// canarySettings.percentTraffic is the expected share of class
    /// 'canary', and the report names the file and field.
    #[arg(long, value_name = "FILE")]
    pub aws_stage: Option<PathBuf>,

    /// The class the canary is compared with (default: the one class not
    /// named in --expect, or the largest expected one).
    #[arg(long, value_name = "CLASS")]
    pub baseline: Option<String>,

    /// Allowed deviation of a share: 2pp (absolute) or 20% (of the expected
    /// share). Default: the larger of 1pp and 20% of the share.
    #[arg(long, value_name = "Npp|N%")]
    pub tolerance: Option<String>,

    /// Error level: the chance of failing a correct split (and of each health
    /// test failing a healthy canary).
    #[arg(
        long,
        default_value = "0.01",
        value_name = "P",
        allow_negative_numbers = true
    )]
    pub alpha: String,

    /// Power: the chance of passing a split that is exactly as expected.
    #[arg(
        long,
        default_value = "0.95",
        value_name = "P",
        allow_negative_numbers = true
    )]
    pub power: String,

    /// Most requests to send (default: what the checks need, planned up front).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_requests: Option<String>,

    /// Most responses outside every variant (429, 5xx without a variant's
    /// mark, transport errors, unmatched) before the checks are inconclusive.
    /// Default: a tenth of the smallest expected share (1% for a 10% canary).
    #[arg(long, value_name = "N%")]
    pub max_unclassified: Option<String>,

    /// The baseline's error rate the plan assumes until it is observed
    /// (the run re-plans from what it sees).
    #[arg(long, default_value = "1%", value_name = "N%")]
    pub baseline_error_rate: String,

    /// What makes a variant's response an error (default: status:5xx).
    #[arg(long, value_name = "MATCHER")]
    pub error_if: Option<String>,

    /// Largest acceptable increase of the canary's error rate over the baseline's.
    #[arg(long, default_value = "1pp", value_name = "Npp")]
    pub max_error_increase: String,

    /// Largest acceptable latency increase: 20% (the canary's geometric-mean
    /// latency at most 1.2× the baseline's) or an absolute 50ms (difference
    /// of mean latencies).
    #[arg(
        long,
        default_value = "20%",
        value_name = "N%|DURATION",
        allow_hyphen_values = true
    )]
    pub max_latency_increase: String,

    /// Check the split only: skip the health comparison (stops sooner).
    #[arg(long)]
    pub no_health: bool,

    #[command(flatten)]
    pub load: LoadArgs,
}

/// Flags shared by every command that sends traffic.
/// `gateprobe throttle URL`: find where 429s start and estimate the token
/// bucket's rate and burst, within hard bounds on what is sent.
#[derive(Debug, Clone, Args)]
pub struct ThrottleArgs {
    /// Never send more than this many requests in any one-second window.
    #[arg(
        long,
        default_value = "1000",
        value_name = "RPS",
        allow_negative_numbers = true
    )]
    pub max_rate: String,

    /// Never send more than this many requests in all.
    #[arg(
        long,
        default_value = "20000",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_requests: String,

    /// Stop sending after this long (the idle wait not included).
    #[arg(
        long,
        default_value = "60s",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub max_duration: String,

    /// Gate: the refill rate the limiter should have (requests per second).
    #[arg(long, value_name = "RPS", allow_negative_numbers = true)]
    pub expect_rate: Option<String>,

    /// Gate on the stage's declared limits (`aws apigateway get-stage` JSON):
    /// methodSettings for the URL's method and resource (~1path/GET), else
    /// the stage default (*/*).
    #[arg(long, value_name = "FILE")]
    pub aws_stage: Option<PathBuf>,

    /// Gate on a usage plan's declared limits (`aws apigateway
    /// get-usage-plan` JSON): apiStages[].throttle for the method, else its
    /// throttle. With --aws-stage too, the tighter rate governs.
    #[arg(long, value_name = "FILE")]
    pub aws_usage_plan: Option<PathBuf>,

    /// Gate: the bucket size (burst) the limiter should have.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub expect_burst: Option<String>,

    /// Gate: the kind of limiter: token_bucket, queue, fixed_window,
    /// sliding_window, concurrency or none.
    #[arg(long, value_name = "MODEL")]
    pub expect_model: Option<String>,

    /// Gate: the requests in progress a concurrency limit allows (a Lambda
    /// function's reserved concurrency, nginx limit_conn).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub expect_concurrency: Option<String>,

    /// Gate: the requests a window limiter admits per window.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub expect_window_limit: Option<String>,

    /// Gate: a window limiter's length, e.g. 1s or 1m.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub expect_window: Option<String>,

    /// Gate: the requests a queue holds (nginx limit_req burst without nodelay).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub expect_queue_depth: Option<String>,

    /// How far the estimates may be from the --expect-* values.
    #[arg(long, default_value = "10%", value_name = "N%")]
    pub tolerance: String,

    /// Wait this long before the first request, so that the bucket is full.
    #[arg(
        long,
        default_value = "2s",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub idle: String,

    /// The first rate of the doubling search.
    #[arg(
        long,
        default_value = "10",
        value_name = "RPS",
        allow_negative_numbers = true
    )]
    pub start_rate: String,

    /// How long each rate of the doubling search is held.
    #[arg(
        long,
        default_value = "500ms",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub step: String,

    /// Keep probing when a 429 carries Retry-After (by default the probe
    /// stops sending, as asked, and reports what it has).
    #[arg(long)]
    pub ignore_retry_after: bool,

    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Target URL (http or https). May contain {{seq}}, {{uuid}}, {{unix_ms}}.
    pub url: String,

    /// Run time bound, e.g. 30s, 500ms, 2m (default 10s unless --requests is given).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
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

    /// The rate shapes of their own (`--steps`, `--ramp`, …).
    #[command(flatten)]
    pub curve: CurveArgs,

    /// Open model: most requests in flight at once; a request that comes due
    /// while all are busy is counted as dropped, never sent late.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_in_flight: Option<String>,

    #[command(flatten)]
    pub sharding: ShardArgs,

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
    #[arg(
        long,
        default_value = "10s",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub timeout: String,

    /// Use HTTP/2 (prior knowledge on http://, ALPN on https://).
    #[arg(long)]
    pub http2: bool,

    /// Do not verify TLS certificates.
    #[arg(long)]
    pub insecure: bool,

    /// Also trust the CA certificates in FILE (PEM), beside the platform's
    /// roots (which honour SSL_CERT_FILE and SSL_CERT_DIR).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Present this client certificate chain (PEM: leaf, then intermediates)
    /// for mutual TLS; its key in the same file, or given with --key.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// The client certificate's private key (PEM). Never shown.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// API keys to rotate over requests as x-api-key (repeatable): KEY,
    /// LABEL=KEY, or @FILE with one per line (# comments). Labels name keys
    /// in the per-key report; values are never shown. `throttle` probes each
    /// key in turn and estimates each key's limit.
    #[arg(long = "api-keys", value_name = "[LABEL=]KEY|@FILE")]
    pub api_keys: Vec<String>,

    /// How requests take the keys: round-robin, or random (a hash of the
    /// request's number, so a run is reproducible).
    #[arg(long, value_name = "round-robin|random", default_value = "round-robin")]
    pub api_key_order: String,

    /// Open a new connection for every request (Connection: close), as
    /// many clients do: each pays the TCP (and TLS) handshake, and each can
    /// reach another node behind a load balancer.
    #[arg(long)]
    pub no_keepalive: bool,

    /// Sign every request with AWS Signature Version 4 for REGION (service
    /// execute-api unless given), at its send time. Credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else
    /// AWS_PROFILE (default 'default') in ~/.aws/credentials or ~/.aws/config.
    /// Never shown.
    #[arg(long, value_name = "REGION[:SERVICE]")]
    pub aws_sigv4: Option<String>,

    /// Connect to ADDR (comma-separated addresses, IPv6 in brackets) for
    /// HOST:PORT, keeping HOST for TLS (SNI, verification) and the Host
    /// header, like curl: the way to probe one node behind a name.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,

    /// Classification rule NAME=MATCHER (repeatable, first match wins), e.g.
    /// canary=body:empty, stable=json:/version, throttled=status:429.
    #[arg(long = "classify", value_name = "NAME=MATCHER")]
    pub classify: Vec<String>,

    /// Most body bytes read for matching (the rest is drained, not kept).
    #[arg(long, default_value = "64KiB", value_name = "SIZE")]
    pub max_body: String,

    #[command(flatten)]
    pub outputs: ReportArgs,

    /// No progress bar and no terminal summary.
    #[arg(short, long)]
    pub quiet: bool,
}

impl LoadArgs {
    /// The rate-shape flags and their values, `--rate` first and then
    /// [`SHAPES`]: the one list of them. `load` takes one at a time;
    /// `throttle` refuses them all (it picks its own rates).
    pub fn shapes(&self) -> Vec<(&'static str, Option<&str>)> {
        std::iter::once(("--rate", self.rate.as_deref()))
            .chain(
                SHAPES
                    .iter()
                    .zip(&self.curve.values)
                    .map(|(shape, value)| (shape.flag, value.as_deref())),
            )
            .collect()
    }

    /// The rate-shape flags' names, in the order of [`LoadArgs::shapes`].
    pub fn shape_flags() -> impl Iterator<Item = &'static str> {
        std::iter::once("--rate").chain(SHAPES.iter().map(|shape| shape.flag))
    }
}

/// The values of the [`SHAPES`] flags, one per entry (clap's flags are made
/// from the list, as [`ReportArgs`]' are from the formats').
#[derive(Debug, Clone)]
pub struct CurveArgs {
    pub values: Vec<Option<String>>,
}

impl Default for CurveArgs {
    fn default() -> Self {
        Self {
            values: vec![None; SHAPES.len()],
        }
    }
}

impl CurveArgs {
    /// The shape given, if one was (`load` refuses two at once beforehand).
    pub fn given(&self) -> Option<(&'static Shape, &str)> {
        SHAPES
            .iter()
            .zip(&self.values)
            .find_map(|(shape, value)| Some((shape, value.as_deref()?)))
    }
}

fn shape_id(shape: &Shape) -> &'static str {
    shape.flag.trim_start_matches("--")
}

impl clap::FromArgMatches for CurveArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for (shape, value) in SHAPES.iter().zip(&mut self.values) {
            if let Some(text) = matches.get_one::<String>(shape_id(shape)) {
                *value = Some(text.clone());
            }
        }
        Ok(())
    }
}

impl Args for CurveArgs {
    fn augment_args(mut command: clap::Command) -> clap::Command {
        for shape in SHAPES {
            command = command.arg(
                clap::Arg::new(shape_id(shape))
                    .long(shape_id(shape))
                    .value_name(shape.value_name)
                    .help(shape.help),
            );
        }
        command
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// `--shard`, `--shard-from-env`, `--start-at`: one process's part of a
/// run spread over several (Kubernetes Indexed Jobs, a CI matrix, local
/// processes), merged afterwards by `gateprobe merge`.
#[derive(Debug, Clone, Default, Args)]
pub struct ShardArgs {
    /// Run shard I of N (counted from 0): only the whole run's requests
    /// whose index is I mod N, each at the whole run's due time. Every bound
    /// (rate, --requests, --max-in-flight, --connections) is the whole run's,
    /// divided; `gateprobe merge` adds the shards' JSON reports up exactly.
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    pub shard: Option<String>,

    /// As --shard I/N with I read from $JOB_COMPLETION_INDEX (set by a
    /// Kubernetes Indexed Job) and N given here.
    #[arg(long, value_name = "N")]
    pub shard_from_env: Option<String>,

    /// Uneven shares, one whole number per shard (2,1,1: shard 0 sends half
    /// the requests), for runners of different sizes. The requests are
    /// striped by smooth weighted round-robin, so every shard follows the
    /// whole run's rate curve at its share (as k6's execution segments
    /// 0,1/2,3/4,1 would). Every shard of the run must be given the same.
    #[arg(long, value_name = "W,W,…")]
    pub shard_weights: Option<String>,

    /// When the schedule starts, on the wall clock: RFC 3339
    /// (2026-12-02T10:00:00Z) or +DURATION from now (+30s), so that shards
    /// started apart send on one clock. A shard that starts late says how
    /// late and counts the requests due before it started as dropped.
    #[arg(long, value_name = "RFC3339|+DURATION", allow_hyphen_values = true)]
    pub start_at: Option<String>,
}

impl ShardArgs {
    /// The flags, for the commands and scenario steps that refuse them.
    pub const FLAGS: [&'static str; 4] = [
        "--shard",
        "--shard-from-env",
        "--shard-weights",
        "--start-at",
    ];

    pub fn given(&self) -> Option<&'static str> {
        [
            self.shard.is_some(),
            self.shard_from_env.is_some(),
            self.shard_weights.is_some(),
            self.start_at.is_some(),
        ]
        .into_iter()
        .zip(Self::FLAGS)
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// Where reports go: one file per format. The flags are made from
/// [`crate::output::FORMATS`], so a new format is one file and one entry there.
pub type ReportArgs = crate::plan::Outputs;

fn format_id(format: &dyn crate::output::Format) -> &'static str {
    format.flag().trim_start_matches("--")
}

impl clap::FromArgMatches for ReportArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for format in crate::output::FORMATS {
            if let Some(path) = matches.get_one::<PathBuf>(format_id(*format)) {
                self.set(format.flag(), path.clone());
            }
        }
        if let Some(path) = matches.get_one::<PathBuf>("samples") {
            self.set("--samples", path.clone());
        }
        Ok(())
    }
}

impl Args for ReportArgs {
    fn augment_args(mut command: clap::Command) -> clap::Command {
        for format in crate::output::FORMATS {
            command = command.arg(
                clap::Arg::new(format_id(*format))
                    .long(format_id(*format))
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help(format.help()),
            );
        }
        command.arg(
            clap::Arg::new("samples")
                .long("samples")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Stream every request to FILE as a CSV row (due time, send lag, latency, status, class, connection, shard); memory stays flat"),
        )
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// `gateprobe run SCENARIO.json`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The scenario (JSON; schema/scenario.schema.json documents it).
    pub scenario: PathBuf,

    /// Give `${NAME}` in the scenario a value (before the environment).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,

    /// Use this base URL instead of the scenario's `target`.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// Run shard I/N of every load and canary step (a throttle step
    /// refuses); --start-at aligns the first step, later steps start when
    /// the one before ends.
    #[command(flatten)]
    pub sharding: ShardArgs,

    #[command(flatten)]
    pub outputs: ReportArgs,

    /// No progress bars and no terminal summaries.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `gateprobe report SAVED.json`: re-render a saved JSON report.
#[derive(Debug, Clone, Args)]
pub struct ReportCommandArgs {
    /// A JSON report written by --json.
    pub saved: PathBuf,

    /// Recompute every fixed-horizon check (thresholds) from the report's
    /// recorded data and compare it with the saved one: exit 2 if one differs.
    #[arg(long)]
    pub recompute: bool,

    #[command(flatten)]
    pub outputs: ReportArgs,

    /// Print nothing to the terminal.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `gateprobe merge SHARD.json…`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (from --json), one per shard, any order.
    #[arg(required = true, num_args = 1..)]
    pub shards: Vec<PathBuf>,

    /// Merge the shards given even when some are missing; the report says
    /// which, and a pass becomes inconclusive (part of the run is unseen).
    #[arg(long)]
    pub allow_partial: bool,

    /// The shards' --samples files, concatenated under one header into the
    /// file --samples names (repeatable; in the order given).
    #[arg(long = "samples-from", value_name = "FILE")]
    pub samples_from: Vec<PathBuf>,

    #[command(flatten)]
    pub outputs: ReportArgs,

    /// Print nothing to the terminal.
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
            let first = crate::console::escape_controls(first);
            crate::errln!("{first} (see --help)");
            ExitCode::from(crate::exit::USAGE)
        }
    }
}
