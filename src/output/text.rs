//! The terminal summary: per class count, share, latency percentiles and
//! statuses; target vs achieved rate; transport errors by kind; the verdict.
use std::fmt::Write as _;

use crate::report::analysis::Analysis;
use crate::report::{Percentiles, Report};

fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.2}s", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0}ms")
    } else if value >= 10.0 {
        format!("{value:.1}ms")
    } else {
        format!("{value:.2}ms")
    }
}

fn latency_cells(latency: Option<&Percentiles>) -> String {
    match latency {
        Some(p) => format!(
            "{:>8} {:>8} {:>8} {:>8} {:>8}",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.p999),
            ms(p.max)
        ),
        None => format!("{:>8} {:>8} {:>8} {:>8} {:>8}", "-", "-", "-", "-", "-"),
    }
}

/// Renders the summary as plain text (no colour: it is also what CI logs show).
pub fn render(report: &Report) -> String {
    render_with(crate::report::analysis::ALL, report)
}

/// [`render`], with the sections of the analyses in `list`.
pub fn render_with(list: &[&'static dyn Analysis], report: &Report) -> String {
    let mut out = String::new();
    run_lines(&mut out, report);
    class_lines(&mut out, report);
    error_lines(&mut out, report);
    for analysis in list {
        analysis.text(report, &mut out);
    }
    check_lines(&mut out, report);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  verdict   {} (exit {}): {}",
        report.verdict.as_str().to_uppercase(),
        report.exit_code,
        report.reason
    );
    if let Some(remedy) = crate::report::run_remedy(report) {
        let _ = writeln!(out, "  to decide {remedy}");
    }
    out
}

/// What was run: the target, the load, the requests and the rate.
fn run_lines(out: &mut String, report: &Report) {
    let run = &report.run;
    let _ = writeln!(
        out,
        "gateprobe {}  {} {}",
        report.command, run.method, run.target
    );
    let _ = writeln!(out, "  load      {}", run.load);
    let _ = writeln!(
        out,
        "  requests  {} due · {} sent · {} completed · {} dropped (in-flight cap) · {} aborted",
        run.requests_due, run.requests_sent, run.requests_completed, run.dropped, run.aborted
    );
    if let Some(late) = run.late_text() {
        let _ = writeln!(out, "  late      {late}");
    }
    let rate = match run.target_rate_per_s {
        Some(target) if target > 0.0 => format!(
            "target {:.1}/s · achieved {:.1}/s ({:+.2}%) over {:.2}s",
            target,
            run.achieved_rate_per_s,
            (run.achieved_rate_per_s / target - 1.0) * 100.0,
            run.duration_s
        ),
        // Several rates (a throttle probe's steps, a scenario's steps).
        _ if run.model == "open" => format!(
            "mean {:.1}/s over {:.2}s (the rate varied over the run)",
            run.achieved_rate_per_s, run.duration_s
        ),
        _ => format!(
            "achieved {:.1}/s over {:.2}s (closed model)",
            run.achieved_rate_per_s, run.duration_s
        ),
    };
    let _ = writeln!(out, "  rate      {rate}");
    let _ = writeln!(out);
}

/// One line per class with responses: count, share, latency, statuses.
fn class_lines(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "  {:<14} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}  statuses",
        "class", "count", "share", "p50", "p90", "p99", "p99.9", "max"
    );
    let mut empty = Vec::new();
    for (name, class) in &report.classes {
        if class.count == 0 {
            empty.push(name.as_str());
            continue;
        }
        let statuses: Vec<String> = class
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        let _ = writeln!(
            out,
            "  {:<14} {:>9} {:>6.2}% {}  {}",
            name,
            class.count,
            class.share * 100.0,
            latency_cells(class.latency_ms.as_ref()),
            if statuses.is_empty() {
                "-".to_string()
            } else {
                statuses.join(" ")
            }
        );
    }
    if !empty.is_empty() {
        let _ = writeln!(
            out,
            "  {:<14} {:>9}  ({})",
            "no responses",
            0,
            empty.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  latency is measured from each request's due time (coordinated omission corrected)"
    );
}

/// Transport errors by kind, and how far sends fell behind schedule.
fn error_lines(out: &mut String, report: &Report) {
    let errors: Vec<String> = report
        .errors
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| {
            // The reasons of this kind, as "tls 3 (unknown issuer 3)".
            let prefix = format!("{kind}: ");
            let reasons: Vec<String> = report
                .error_details
                .iter()
                .filter_map(|(detail, n)| {
                    let reason = detail.strip_prefix(&prefix)?;
                    Some(format!("{reason} {n}"))
                })
                .collect();
            if reasons.is_empty() {
                format!("{kind} {count}")
            } else {
                format!("{kind} {count} ({})", reasons.join(", "))
            }
        })
        .collect();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  errors    {}",
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(" · ")
        }
    );
    for (label, key) in &report.api_keys {
        let _ = writeln!(
            out,
            "  key {label:<12} sent {} · responses {} · throttled {} · forbidden {} · errors {}{}",
            key.sent,
            key.responses,
            key.throttled,
            key.forbidden,
            key.errors,
            if key.dropped > 0 {
                format!(" · dropped {}", key.dropped)
            } else {
                String::new()
            }
        );
    }
    if let Some(lag) = &report.schedule_lag_ms {
        let _ = writeln!(
            out,
            "  send lag  p50 {} · p99 {} · max {} behind schedule",
            ms(lag.p50),
            ms(lag.p99),
            ms(lag.max)
        );
    }
}

/// Each check: verdict, name, p-value, responses used of planned, and reason.
fn check_lines(out: &mut String, report: &Report) {
    if !report.checks.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {:<13} {:<30} {:>10} {:>16}",
            "check", "", "p-value", "used / planned"
        );
    }
    for check in &report.checks {
        let p = check.p_value.map_or("-".to_string(), |p| {
            if p < 1e-4 {
                format!("{p:.1e}")
            } else {
                format!("{p:.4}")
            }
        });
        let used = match (check.used, check.planned) {
            (Some(used), Some(planned)) => format!("{used} / {planned}"),
            (Some(used), None) => used.to_string(),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<13} {:<30} {:>10} {:>16}",
            check.verdict.as_str().to_uppercase(),
            check.name,
            p,
            used
        );
        let _ = writeln!(out, "                {}", check.reason);
        if let Some(remedy) = crate::report::remedy(check, report) {
            let _ = writeln!(out, "                to decide: {remedy}");
        }
    }
}
