//! `gateprobe demo`: the whole job on the embedded simulator, as a short
//! narrative a newcomer can follow — what is checked, against what truth,
//! what was measured, and where the reports went.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Parser;

use crate::canary;
use crate::cli::{Cli, Command, DemoArgs, ReportArgs};
use crate::engine::{command::execute, NoObserver};
use crate::plan::UsageError;
use crate::report::Report;
use crate::scenario;
use crate::sim::{self, config};
use crate::throttle;

/// Runs one `load`, `canary` or `throttle` against the simulator with `args`, quietly,
/// and saves its JSON report as `out/name.json`.
/// A command line as a shell would take it (arguments with spaces or
/// quotes in single quotes).
fn shown(args: &[&str]) -> String {
    args.iter()
        .map(|arg| {
            if arg.chars().any(|c| " '\"&|;<>*?$".contains(c)) {
                format!("'{}'", arg.replace('\'', "'\\''"))
            } else {
                arg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn measure(args: &[&str], out: &Path, name: &str) -> Result<(Report, PathBuf)> {
    let mut argv = vec!["gateprobe"];
    argv.extend_from_slice(args);
    argv.push("--quiet");
    let cli = Cli::try_parse_from(argv).map_err(|err| UsageError(err.to_string()))?;
    let report = match cli.command {
        Command::Load(load) => {
            let plan = crate::cli::load::load_plan(&load)?;
            let (recorder, info) = execute(&plan, &mut NoObserver).await?;
            Report::for_load(&plan, &recorder, &info)
        }
        Command::Canary(args) => canary::verify(&canary::canary_plan(&args)?).await?,
        Command::Throttle(args) => throttle::probe(&throttle::throttle_plan(&args)?).await?,
        _ => unreachable!("the demo only measures with load, canary and throttle"),
    };
    let path = out.join(format!("{name}.json"));
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

/// Runs the demo.
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
    let running = sim::start(config, "127.0.0.1:0".parse()?, Some(args.seed)).await?;
    let base = format!("http://{}", running.address);
    crate::outln!(
        "gateprobe demo — an API gateway simulated on {base} (no cloud account needed)\n"
    );
    crate::outln!("What it serves (its configured truth):");
    crate::out!(
        "{}",
        sim::command::describe(running.simulator.config(), &base)
    );

    // 1. The canary verdict.
    let hello = format!("{base}/PROD/hello");
    crate::outln!(
        "\n1. Canary verdict. PROD sends 10% of requests, at random, to a Mock canary that"
    );
    crate::outln!("   answers an empty body; the stable deployment answers JSON with a version.");
    crate::outln!("   Is the split 10% (± 2pp, α = 0.01, power 0.95), and is the canary as healthy as stable?");
    crate::outln!("   gateprobe canary {hello} --rate 2000 --expect canary=10% \\");
    crate::outln!("     --classify canary=body:empty --classify stable=json:/version");
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
    let (split, split_path) = measure(&args, &out, "1-canary-split").await?;
    print_checks(&split);

    let beta = format!("{base}/BETA/hello");
    crate::outln!(
        "\n   A misconfigured split: BETA was meant to send 5% to the canary, but its weight"
    );
    crate::outln!(
        "   was typed as 25. The same check with --expect canary=5% and no health comparison:"
    );
    crate::outln!("   gateprobe canary {beta} --rate 2000 --expect canary=5% --no-health …");
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
    let (wrong, _) = measure(&args, &out, "1-misconfigured-split").await?;
    print_checks(&wrong);

    // 2. A throttled method.
    let throttled = format!("{base}/PROD/throttled");
    crate::outln!("\n2. Throttle. GET /PROD/throttled has a method throttle: 50 rps, burst 10.");
    crate::outln!(
        "   Probe it: double the rate until 429s begin, overload it, fit admitted over time."
    );
    crate::outln!("   gateprobe throttle {throttled} --idle 0 --expect-rate 50 --expect-burst 10");
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
        &out,
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
            "   → first 429 at {:.2} s; knee {} rps; {} requests in {:.1} s",
            found.first_throttle_s.unwrap_or(0.0),
            found
                .knee_rate_per_s
                .map_or("-".to_string(), crate::units::trim_float),
            found.requests_used,
            probe.run.duration_s
        );
    }
    print_checks(&probe);

    // 2b. A concurrency limit: a Lambda function's reserved concurrency.
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
    crate::outln!("   gateprobe {}", shown(&args));
    let (limited, _) = measure(&args, &out, "2-concurrency").await?;
    if let Some(found) = &limited.throttle {
        let model = crate::throttle::identify::Limiter::parse(&found.model)
            .unwrap_or_default()
            .label();
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

    // 3. A POST that fronts Step Functions StartExecution.
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
    crate::outln!("   gateprobe load {execution} -X POST -H 'x-api-key: …' --rate 100 -n 200 \\");
    crate::outln!("     -d '{unique_body}' --classify started=json:/executionArn --classify exists=json:/__type=ExecutionAlreadyExists");
    let post = |key: Option<&'static str>,
                rate: &'static str,
                count: &'static str,
                body: String,
                name: &'static str| {
        let (execution, out) = (execution.clone(), out.clone());
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
            measure(&args, &out, name).await.map(|(report, _)| report)
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

    // 4. The same checks as one scenario: the CI gate, with every report format.
    crate::outln!(
        "\n4. The CI gate. scenarios/demo.json runs the canary check, the throttle probe,"
    );
    crate::outln!("   unique StartExecution POSTs and the promoted stage as one pipeline step:");
    crate::outln!(
        "   gateprobe run scenarios/demo.json --target {base} --set GATEPROBE_API_KEY=… \\"
    );
    crate::outln!("     --json demo.json --junit demo.xml --markdown demo.md --html demo.html");
    let vars = BTreeMap::from([("GATEPROBE_API_KEY".to_string(), "demo-key-gold".to_string())]);
    let gate = scenario::run_text(
        "scenarios/demo.json",
        DEMO_SCENARIO,
        &vars,
        Some(&base),
        true,
    )
    .await?;
    for step in &gate.steps {
        crate::outln!(
            "     {:<5} {:<16} {}",
            step.report.verdict.as_str().to_uppercase(),
            step.name,
            step.report.reason
        );
    }
    let html = out.join("demo.html");
    let outputs = ReportArgs::new([
        ("--json", out.join("demo.json")),
        ("--junit", out.join("demo.xml")),
        ("--markdown", out.join("demo.md")),
        ("--html", html.clone()),
    ]);
    crate::output::emit(&outputs, true, &gate)?;
    crate::outln!(
        "   → verdict {} (exit {}) after {} requests",
        gate.verdict.as_str().to_uppercase(),
        gate.exit_code,
        gate.run.requests_sent
    );

    crate::outln!(
        "\nReports (JSON, schema gateprobe.report/v1) are in {}",
        out.display()
    );
    crate::outln!("  e.g. {}", split_path.display());
    crate::outln!("  HTML report with charts: {}", html.display());
    crate::outln!(
        "Done in {:.1} s. Next: `gateprobe sim` serves this gateway for your own runs.",
        started.elapsed().as_secs_f64()
    );
    Ok(gate.exit_code)
}

/// The demo's scenario, as users copy it from `scenarios/demo.json`.
const DEMO_SCENARIO: &str = include_str!("../scenarios/demo.json");
