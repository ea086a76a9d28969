//! `gateprobe demo`: the whole job on the embedded simulator, as a short
//! narrative a newcomer can follow — what is checked, against what truth,
//! what was measured, and where the reports went.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, DemoArgs};
use crate::plan::UsageError;
use crate::report::Report;
use crate::sim::{self, config};

/// A command line as a shell would take it (arguments with spaces or
/// quotes in single quotes), secrets shown as `…`: secret header values and
/// every `--set` value.
fn shown(args: &[&str]) -> String {
    let mut words = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        let previous = index.checked_sub(1).map(|i| args[i]);
        let arg = match (previous, arg.split_once(':'), arg.split_once('=')) {
            (Some("-H"), Some((name, _)), _)
                if crate::redact::is_secret_header(name.trim(), &[]) =>
            {
                format!("{name}: …")
            }
            (Some("--set"), _, Some((name, _))) => format!("{name}=…"),
            _ => arg.to_string(),
        };
        words.push(if arg.chars().any(|c| " '\"&|;<>*?$".contains(c)) {
            format!("'{}'", arg.replace('\'', "'\\''"))
        } else {
            arg
        });
    }
    // A flag and its value stay on one line.
    let mut units: Vec<String> = Vec::new();
    for word in words {
        match units.last_mut() {
            Some(flag)
                if flag.starts_with('-') && !flag.contains(' ') && !word.starts_with('-') =>
            {
                flag.push(' ');
                flag.push_str(&word);
            }
            _ => units.push(word),
        }
    }
    // Wrapped as a shell continues lines, so the terminal shows it whole.
    let mut lines = vec![String::from("   gateprobe")];
    for word in units {
        let line = lines.last_mut().expect("one line");
        if line.len() + word.len() > 96 {
            line.push_str(" \\");
            lines.push(format!("     {word}"));
        } else {
            line.push(' ');
            line.push_str(&word);
        }
    }
    lines.join("\n")
}

/// Where the chapters' reports go, and the flags every command takes (over
/// HTTPS: `--cacert` with the simulator's CA).
struct Out {
    dir: PathBuf,
    common: Vec<String>,
}

impl Out {
    fn join(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// Prints a command line and runs exactly it through the job pipeline,
/// quietly; saves its JSON report as `out/name.json`.
async fn measure(args: &[&str], out: &Out, name: &str) -> Result<(Report, PathBuf)> {
    let mut args = args.to_vec();
    args.extend(out.common.iter().map(String::as_str));
    let args = args.as_slice();
    crate::outln!("{}", shown(args));
    let mut argv = vec!["gateprobe"];
    argv.extend_from_slice(args);
    argv.push("--quiet");
    let cli = Cli::try_parse_from(argv).map_err(|err| UsageError(err.to_string()))?;
    let job = crate::app::job::Job::plan(&cli.command)?.ok_or_else(|| {
        UsageError("the demo only measures with load, canary and throttle".into())
    })?;
    let report = job.execute().await?;
    let path = out.join(&format!("{name}.json"));
    crate::output::write(&crate::output::json::Json, &report, &path)?;
    Ok((report, path))
}

/// One line per check: verdict, name and reason.
fn print_checks(report: &Report) {
    for check in &report.checks {
        crate::outln!(
            "     {:<5} {:<26} {}",
            check.verdict.as_str().to_uppercase(),
            check.name,
            check.reason
        );
    }
    crate::outln!(
        "   → verdict {} (exit {}) after {} requests",
        report.verdict.as_str().to_uppercase(),
        report.exit_code,
        report.run.requests_sent
    );
}

fn count(report: &Report, class: &str) -> u64 {
    report.classes.get(class).map_or(0, |section| section.count)
}

/// Runs the demo: the simulator's truth, then each chapter in turn.
pub async fn run(args: DemoArgs) -> Result<u8> {
    let started = Instant::now();
    let out = args
        .out
        .unwrap_or_else(|| std::env::temp_dir().join("gateprobe-demo"));
    std::fs::create_dir_all(&out).map_err(|err| {
        UsageError(format!(
            "--out {}: cannot create the folder: {err}",
            out.display()
        ))
    })?;
    let config = config::parse("built-in config", config::DEFAULT_CONFIG).map_err(UsageError)?;
    // Over HTTPS with --tls or GATEPROBE_DEMO_TLS=1: the simulator's own
    // generated certificate, trusted through --cacert on every command.
    let https = args.tls
        || std::env::var("GATEPROBE_DEMO_TLS")
            .is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    let mut common = Vec::new();
    let tls = if https {
        let (acceptor, ca) = sim::tls::generated()?;
        let path = out.join("sim-ca.pem");
        std::fs::write(&path, ca)
            .map_err(|err| UsageError(format!("{}: cannot write: {err}", path.display())))?;
        common = vec!["--cacert".to_string(), path.display().to_string()];
        Some(acceptor)
    } else {
        None
    };
    let running = sim::start_with(config, "127.0.0.1:0".parse()?, Some(args.seed), tls).await?;
    let base = running.base();
    let out = Out { dir: out, common };
    crate::outln!(
        "gateprobe demo — an API gateway simulated on {base} (no cloud account needed)\n"
    );
    crate::outln!("What it serves (its configured truth):");
    crate::out!(
        "{}",
        crate::app::sim::describe(running.simulator.config(), &base)
    );

    let split_path = canary(&base, &out, running.simulator.config()).await?;
    throttle(&base, &out).await?;
    concurrency(&base, &out).await?;
    start_execution(&base, &out).await?;
    let (gate, html) = ci_gate(&base, &out).await?;

    crate::outln!(
        "\nReports (JSON, schema gateprobe.report/v1) are in {}",
        out.dir.display()
    );
    crate::outln!("  e.g. {}", split_path.display());
    crate::outln!("  HTML report with charts: {}", html.display());
    crate::outln!(
        "Done in {:.1} s. Next: `gateprobe sim` serves this gateway for your own runs.",
        started.elapsed().as_secs_f64()
    );
    Ok(gate.exit_code)
}

/// Chapter 1: the canary verdict, a misconfigured split caught by the same
/// check, and the stage's own declaration (as `aws apigateway get-stage`
/// prints it) checked against what the gateway serves.
async fn canary(base: &str, out: &Out, config: &config::Config) -> Result<PathBuf> {
    let hello = format!("{base}/PROD/hello");
    crate::outln!(
        "\n1. Canary verdict. PROD sends 10% of requests, at random, to a Mock canary that"
    );
    crate::outln!("   answers an empty body; the stable deployment answers JSON with a version.");
    crate::outln!("   Is the split 10% (± 2pp, α = 0.01, power 0.95), and is the canary as healthy as stable?");
    let classes = [
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=json:/version",
    ];
    let mut args = vec![
        "canary",
        hello.as_str(),
        "--rate",
        "2000",
        "--expect",
        "canary=10%",
    ];
    args.extend_from_slice(&classes);
    let (split, split_path) = measure(&args, out, "1-canary-split").await?;
    print_checks(&split);

    let beta = format!("{base}/BETA/hello");
    crate::outln!(
        "\n   A misconfigured split: BETA was meant to send 5% to the canary, but its weight"
    );
    crate::outln!(
        "   was typed as 25. The same check with --expect canary=5% and no health comparison:"
    );
    let mut args = vec![
        "canary",
        beta.as_str(),
        "--rate",
        "2000",
        "--expect",
        "canary=5%",
        "--no-health",
    ];
    args.extend_from_slice(&classes);
    let (wrong, _) = measure(&args, out, "1-misconfigured-split").await?;
    print_checks(&wrong);

    // Declared → observed → verdict: the stage's JSON is the expectation.
    let (stage, _) = sim::config::aws::stage(config, "BETA").map_err(UsageError)?;
    let stage_path = out.join("beta-stage.json");
    std::fs::write(&stage_path, serde_json::to_string_pretty(&stage)?)
        .map_err(|err| UsageError(format!("{}: cannot write: {err}", stage_path.display())))?;
    crate::outln!(
        "\n   What does the stage itself declare? Its settings as `aws apigateway get-stage` prints"
    );
    crate::outln!(
        "   them (gateprobe sim --print-aws-stage BETA > {}), as the expectation:",
        stage_path.display()
    );
    let stage_arg = stage_path.display().to_string();
    let mut args = vec![
        "canary",
        beta.as_str(),
        "--rate",
        "2000",
        "--aws-stage",
        stage_arg.as_str(),
        "--no-health",
    ];
    args.extend_from_slice(&classes);
    let (declared, _) = measure(&args, out, "1-declared-split").await?;
    print_checks(&declared);
    crate::outln!(
        "   The gateway serves what its stage declares; the declaration is what was mistyped."
    );
    Ok(split_path)
}

/// 2. A throttled method: the probe's estimates against the configured bucket.
async fn throttle(base: &str, out: &Out) -> Result<()> {
    let throttled = format!("{base}/PROD/throttled");
    crate::outln!("\n2. Throttle. GET /PROD/throttled has a method throttle: 50 rps, burst 10.");
    crate::outln!(
        "   Probe it: double the rate until 429s begin, overload it, fit admitted over time."
    );
    let (probe, _) = measure(
        &[
            "throttle",
            &throttled,
            "--idle",
            "0",
            "--expect-rate",
            "50",
            "--expect-burst",
            "10",
        ],
        out,
        "2-throttle",
    )
    .await?;
    if let Some(found) = &probe.throttle {
        if let (Some(rate), Some(burst)) = (&found.rate_per_s, &found.burst) {
            crate::outln!(
                "   → rate  {:>6.1} rps (95% {:.1}–{:.1})   configured 50",
                rate.estimate,
                rate.ci_low,
                rate.ci_high
            );
            crate::outln!(
                "   → burst {:>6.1}     (95% {:.1}–{:.1})   configured 10",
                burst.estimate,
                burst.ci_low,
                burst.ci_high
            );
        }
        crate::outln!(
            "   → first 429 at {:.2} s; refusals begin at {} rps (safe {} rps); {} requests in {:.1} s",
            found.first_throttle_s.unwrap_or(0.0),
            found
                .knee_rate_per_s
                .map_or("-".to_string(), crate::units::trim_float),
            found
                .safe_rate_per_s
                .map_or("-".to_string(), crate::units::trim_float),
            found.requests_used,
            probe.run.duration_s
        );
    }
    print_checks(&probe);
    Ok(())
}

/// 2b. A concurrency limit: a Lambda function's reserved concurrency.
async fn concurrency(base: &str, out: &Out) -> Result<()> {
    let reports = format!("{base}/REPORTS/report");
    crate::outln!(
        "\n   GET /REPORTS/report is a Lambda function with reserved concurrency 10 (100 ms each);"
    );
    crate::outln!(
        "   API Gateway answers its throttles 500, so mark those as refusals and ask which limiter it is:"
    );
    let args = [
        "throttle",
        reports.as_str(),
        "--idle",
        "0",
        "--classify",
        "throttled=status:500",
        "--expect-model",
        "concurrency",
        "--expect-concurrency",
        "10",
    ];
    let (limited, _) = measure(&args, out, "2-concurrency").await?;
    if let Some(found) = &limited.throttle {
        let model = found.model_label();
        crate::outln!("   → {model}");
        for (_, label, unit, value) in found.parameters() {
            crate::outln!(
                "     {label} {:.1}{unit} (95% {:.1}–{:.1})",
                value.estimate,
                value.ci_low,
                value.ci_high
            );
        }
        for evidence in found.evidence.iter().take(1) {
            crate::outln!("     because {evidence}");
        }
    }
    print_checks(&limited);
    Ok(())
}

/// 3. A POST that fronts Step Functions StartExecution: unique names, a reused one, no key.
async fn start_execution(base: &str, out: &Out) -> Result<()> {
    let execution = format!("{base}/PROD/execution");
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:HelloWorkflow";
    crate::outln!(
        "\n3. StartExecution. POST /PROD/execution fronts Step Functions and needs an API key"
    );
    crate::outln!(
        "   (partner-gold: 200 rps, burst 100). Each request gets a unique name from {{{{uuid}}}}:"
    );
    let unique_body =
        format!(r#"{{"input":"{{}}","name":"demo-{{{{uuid}}}}","stateMachineArn":"{arn}"}}"#);
    let post = |key: Option<&'static str>,
                rate: &'static str,
                count: &'static str,
                body: String,
                name: &'static str| {
        let execution = execution.clone();
        async move {
            let mut args = vec![
                "load",
                execution.as_str(),
                "-X",
                "POST",
                "--rate",
                rate,
                "-n",
                count,
                "-d",
                &body,
            ];
            if let Some(key) = key {
                args.extend_from_slice(&["-H", key]);
            }
            args.extend_from_slice(&[
                "--classify",
                "started=json:/executionArn",
                "--classify",
                "exists=json:/__type=ExecutionAlreadyExists",
                "--classify",
                "forbidden=status:403",
            ]);
            measure(&args, out, name).await.map(|(report, _)| report)
        }
    };
    let gold = Some("x-api-key: demo-key-gold");
    let unique = post(gold, "100", "200", unique_body.clone(), "3-start-execution").await?;
    crate::outln!(
        "   → started {} of {}, ExecutionAlreadyExists {}",
        count(&unique, "started"),
        unique.run.requests_completed,
        count(&unique, "exists")
    );
    let reused_body =
        format!(r#"{{"input":"{{}}","name":"demo-fixed-name","stateMachineArn":"{arn}"}}"#);
    let reused = post(gold, "50", "5", reused_body, "3-reused-name").await?;
    crate::outln!(
        "   The same name five times → started {}, ExecutionAlreadyExists {}",
        count(&reused, "started"),
        count(&reused, "exists")
    );
    let no_key = post(None, "50", "5", unique_body, "3-no-api-key").await?;
    crate::outln!(
        "   Without x-api-key → 403 Forbidden {} of {}",
        count(&no_key, "forbidden"),
        no_key.run.requests_completed
    );
    Ok(())
}

/// 4. The same checks as one scenario: the CI gate, with every report format.
async fn ci_gate(base: &str, out: &Out) -> Result<(Report, PathBuf)> {
    crate::outln!(
        "\n4. The CI gate. scenarios/demo.json runs the canary check, the throttle probe,"
    );
    crate::outln!("   unique StartExecution POSTs and the promoted stage as one pipeline step:");
    let scenario_path = out.join("demo-scenario.json");
    std::fs::write(&scenario_path, scenario_text(&out.common)?).map_err(|err| {
        UsageError(format!(
            "--out {}: cannot write: {err}",
            scenario_path.display()
        ))
    })?;
    let html = out.join("demo.html");
    let files: Vec<String> = [
        scenario_path.clone(),
        out.join("demo.json"),
        out.join("demo.xml"),
        out.join("demo.md"),
        html.clone(),
        out.join("demo.prom"),
    ]
    .iter()
    .map(|path| path.display().to_string())
    .collect();
    let set = "GATEPROBE_API_KEY=demo-key-gold";
    let args = [
        "run",
        &files[0],
        "--target",
        base,
        "--set",
        set,
        "--json",
        &files[1],
        "--junit",
        &files[2],
        "--markdown",
        &files[3],
        "--html",
        &files[4],
        "--prometheus",
        &files[5],
    ];
    crate::outln!("{}", shown(&args));
    let mut argv = vec!["gateprobe"];
    argv.extend_from_slice(&args);
    argv.push("--quiet");
    let cli = Cli::try_parse_from(argv).map_err(|err| UsageError(err.to_string()))?;
    Box::pin(crate::run(cli)).await?;
    let saved = std::fs::read_to_string(&files[1])?;
    let gate = crate::report::read_saved(&files[1], &saved)?;
    for step in &gate.steps {
        crate::outln!(
            "     {:<5} {:<16} {}",
            step.report.verdict.as_str().to_uppercase(),
            step.name,
            step.report.reason
        );
    }
    crate::outln!(
        "   → verdict {} (exit {}) after {} requests",
        gate.verdict.as_str().to_uppercase(),
        gate.exit_code,
        gate.run.requests_sent
    );
    Ok((gate, html))
}

/// The scenario file the demo runs: `scenarios/demo.json`, with the common
/// flags (over HTTPS, `--cacert`) as every step's options.
fn scenario_text(common: &[String]) -> Result<String> {
    if common.is_empty() {
        return Ok(DEMO_SCENARIO.to_string());
    }
    let mut scenario: serde_json::Value = serde_json::from_str(DEMO_SCENARIO)?;
    if let Some(steps) = scenario["steps"].as_array_mut() {
        for step in steps
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            let Some(options) = step
                .iter_mut()
                .find(|(kind, _)| ["load", "canary", "throttle"].contains(&kind.as_str()))
                .and_then(|(_, options)| options.as_object_mut())
            else {
                continue;
            };
            for pair in common.chunks(2) {
                let key = pair[0].trim_start_matches("--").replace('-', "_");
                let value = pair.get(1).cloned().unwrap_or_default();
                options.insert(key, serde_json::Value::String(value));
            }
        }
    }
    Ok(serde_json::to_string_pretty(&scenario)?)
}

/// The demo's scenario, as users copy it from `scenarios/demo.json`.
const DEMO_SCENARIO: &str = include_str!("../../scenarios/demo.json");
