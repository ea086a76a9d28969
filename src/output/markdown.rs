//! `--markdown`: the summary a person reads on the CI page — the verdict and
//! its reason first, then one row per check, the classes, and the throttle
//! or canary findings. With `GITHUB_STEP_SUMMARY` set, it is also appended
//! to the job summary.
use std::fmt::Write as _;

use anyhow::Result;

use super::Format;
use crate::report::{Report, Verdict};

pub struct Markdown;

/// Escapes text for a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::Inconclusive => "⚠️ INCONCLUSIVE",
        Verdict::Error => "⛔ ERROR",
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |ms| format!("{ms:.2}"))
}

/// A report's heading (`level` hashes, the title and the verdict), then its
/// reason and exit code in bold.
fn heading(out: &mut String, report: &Report, title: &str, level: usize) {
    let hashes = "#".repeat(level);
    let _ = writeln!(out, "{hashes} {title}: {}\n", mark(report.verdict));
    let _ = writeln!(
        out,
        "**{}** (exit {})\n",
        cell(&report.reason),
        report.exit_code
    );
}

/// One report's body, under a heading of `level` hashes.
pub fn section(out: &mut String, report: &Report, title: &str, level: usize) {
    heading(out, report, title, level);
    let run = &report.run;
    let _ = writeln!(out, "`{} {}` · {}\n", run.method, run.target, run.summary());
    if !report.checks.is_empty() {
        let _ = writeln!(out, "| verdict | check | reason |\n|---|---|---|");
        for check in &report.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                mark(check.verdict),
                cell(&check.name),
                cell(&check.reason)
            );
        }
        let _ = writeln!(out);
    }
    if let Some(throttle) = &report.throttle {
        let model = throttle.model_label();
        let parameters: Vec<String> = throttle
            .parameters()
            .into_iter()
            .map(|(_, label, unit, value)| {
                format!(
                    "{label} **{:.1}{unit}** ({:.1}–{:.1})",
                    value.estimate, value.ci_low, value.ci_high
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "Throttle: {model}{}{}; {:.0}% intervals; {} requests.\n",
            if parameters.is_empty() { "" } else { ": " },
            parameters.join(", "),
            throttle.confidence * 100.0,
            throttle.requests_used
        );
        for evidence in &throttle.evidence {
            let _ = writeln!(out, "- {}", cell(evidence));
        }
        if !throttle.evidence.is_empty() {
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(
        out,
        "| class | count | share | p50 ms | p99 ms | max ms | statuses |\n|---|---:|---:|---:|---:|---:|---|"
    );
    for (name, class) in report.classes.iter().filter(|(_, class)| class.count > 0) {
        let statuses: Vec<String> = class
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        let latency = class.latency_ms.as_ref();
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}% | {} | {} | {} | {} |",
            cell(name),
            class.count,
            class.share * 100.0,
            ms(latency.map(|p| p.p50)),
            ms(latency.map(|p| p.p99)),
            ms(latency.map(|p| p.max)),
            statuses.join(" ")
        );
    }
    let _ = writeln!(out);
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.steps.is_empty() {
        section(
            &mut out,
            report,
            &format!("gateprobe {}", report.command),
            2,
        );
        return out;
    }
    heading(&mut out, report, "gateprobe run", 2);
    let _ = writeln!(out, "| step | kind | verdict | reason |\n|---|---|---|---|");
    for step in &report.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&step.name),
            step.report.command,
            mark(step.report.verdict),
            cell(&step.report.reason)
        );
    }
    let _ = writeln!(out);
    for step in &report.steps {
        section(&mut out, &step.report, &format!("step {}", step.name), 3);
    }
    out
}

impl Format for Markdown {
    fn flag(&self) -> &'static str {
        "--markdown"
    }

    fn help(&self) -> &'static str {
        "Write a Markdown summary to FILE; also appended to $GITHUB_STEP_SUMMARY when set"
    }

    fn append_to_env(&self) -> Option<&'static str> {
        Some("GITHUB_STEP_SUMMARY")
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        Ok(render(report).into_bytes())
    }
}
