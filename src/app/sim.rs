//! `gateprobe sim`: load a config, serve it on loopback, print what it serves.
use std::fmt::Write as _;
use std::net::SocketAddr;

use anyhow::Result;

use crate::cli::SimArgs;
use crate::plan::UsageError;
use crate::sim::config::{self, Config, Integration};

/// Reads `--config` (or the built-in default) into a checked config.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, UsageError> {
    match path {
        Some(path) => {
            let text = crate::input::read_text(path, "--config", crate::input::CONFIG_LIMIT)?;
            config::parse(&path.display().to_string(), &text).map_err(UsageError)
        }
        None => config::parse("built-in config", config::DEFAULT_CONFIG).map_err(UsageError),
    }
}

/// Runs `gateprobe sim` until Ctrl-C.
pub async fn run(args: SimArgs) -> Result<u8> {
    let config = load_config(args.config.as_deref())?;
    let printed = match (&args.print_aws_stage, &args.print_aws_usage_plan) {
        (Some(name), _) => Some(crate::sim::config::aws::stage(&config, name)),
        (_, Some(name)) => Some(crate::sim::config::aws::usage_plan(&config, name)),
        _ => None,
    };
    if let Some(printed) = printed {
        let (json, left_out) = printed.map_err(UsageError)?;
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        for what in left_out {
            eprintln!("gateprobe sim: left out {what}");
        }
        return Ok(0);
    }
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        UsageError(format!(
            "--listen '{}': expected ADDRESS:PORT, e.g. 127.0.0.1:8080",
            args.listen
        ))
    })?;
    let (tls, ca_pem) = match (&args.tls_cert, &args.tls_key, args.tls) {
        (Some(cert), Some(key), _) => (Some(crate::sim::tls::given(cert, key)?), None),
        (_, _, true) => {
            let (acceptor, ca) = crate::sim::tls::generated()?;
            (Some(acceptor), Some(ca))
        }
        _ => (None, None),
    };
    let running = crate::sim::start_with(config, listen, args.seed, tls)
        .await
        .map_err(|err| UsageError(format!("--listen {listen}: cannot listen: {err}")))?;
    // The CA is on disk before the listening line: whoever waits for that
    // line (a script, a test) may read the file at once.
    let ca_path = match &ca_pem {
        Some(ca) => {
            let path = args.tls_ca.clone().unwrap_or_else(|| {
                std::env::temp_dir()
                    .join(format!("gateprobe-sim-ca-{}.pem", running.address.port()))
            });
            std::fs::write(&path, ca).map_err(|err| {
                UsageError(format!("--tls-ca {}: cannot write: {err}", path.display()))
            })?;
            Some(path)
        }
        None => None,
    };
    crate::outln!("gateprobe sim listening on {}", running.base());
    if let Some(path) = ca_path {
        crate::outln!(
            "TLS: a certificate generated now for localhost, 127.0.0.1 and ::1; trust its CA with --cacert {}",
            path.display()
        );
    }
    crate::out!("{}", describe(running.simulator.config(), &running.base()));
    crate::outln!("Ctrl-C stops it.");
    crate::signals::interrupt().cancelled().await;
    Ok(crate::exit::PASS)
}

/// A limiter as people configure it: `50 rps burst 10`, `queue 60 rps burst
/// 30`, `fixed window 60 per 1s`.
pub fn describe_limiter(throttle: &config::Throttle) -> String {
    use config::LimiterKind;
    let window = crate::units::trim_float(throttle.window_s);
    match throttle.kind {
        LimiterKind::TokenBucket => format!("{} rps burst {}", throttle.rate, throttle.burst),
        LimiterKind::Queue => format!("queue {} rps burst {}", throttle.rate, throttle.burst),
        LimiterKind::FixedWindow => format!("fixed window {} per {window}s", throttle.limit),
        LimiterKind::SlidingWindow => format!(
            "sliding window {} per {window}s{}",
            throttle.limit,
            if throttle.counts_refused {
                ", refusals counted"
            } else {
                ""
            }
        ),
    }
}

/// The configured truth, one line per route, for people.
pub fn describe(config: &Config, base: &str) -> String {
    let mut out = String::new();
    for (name, stage) in &config.stages {
        let Some(deployment) = config.deployments.get(&stage.deployment) else {
            continue;
        };
        for route in &deployment.routes {
            let mut facts = Vec::new();
            facts.push(match &route.integration {
                Integration::Mock { status, .. } => format!("mock {status}"),
                Integration::Json { status, .. } => format!("json {status}"),
                Integration::StartExecution { .. } => "StartExecution".to_string(),
            });
            if let Some(canary) = &stage.canary {
                facts.push(format!(
                    "canary {}% → {}",
                    canary.percent_traffic, canary.deployment
                ));
            }
            if let Some(throttle) = stage
                .method_throttles
                .get(&format!("{} {}", route.method, route.path))
            {
                facts.push(format!("method throttle {}", describe_limiter(throttle)));
            }
            if let Some(throttle) = stage.throttle {
                facts.push(format!("stage throttle {}", describe_limiter(&throttle)));
            }
            if let Some(concurrency) = config
                .deployments
                .get(&stage.deployment)
                .and_then(|deployment| deployment.concurrency)
            {
                facts.push(format!(
                    "Lambda concurrency {} × {}ms (admits ≈ {:.0} rps)",
                    concurrency.limit,
                    crate::units::trim_float(concurrency.duration_ms),
                    concurrency.limit as f64 * 1000.0 / concurrency.duration_ms
                ));
            }
            if route.api_key_required {
                let keys: Vec<String> = config
                    .usage_plans
                    .iter()
                    .filter(|plan| plan.stages.is_empty() || plan.stages.contains(name))
                    .map(|plan| {
                        let limit = plan
                            .throttle
                            .map(|t| format!(" {}", describe_limiter(&t)))
                            .unwrap_or_default();
                        format!("{} ({}{limit})", plan.api_keys.join(", "), plan.name)
                    })
                    .collect();
                facts.push(if keys.is_empty() {
                    "x-api-key required, but no usage plan covers this stage: always 403"
                        .to_string()
                } else {
                    format!("x-api-key required: {}", keys.join("; "))
                });
            }
            let _ = writeln!(
                out,
                "  {:<5} {base}/{name}{:<14} {}",
                route.method,
                route.path,
                facts.join(" · ")
            );
        }
    }
    out
}
