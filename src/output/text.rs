//! The terminal summary: per class count, share, latency percentiles and
//! statuses; target vs achieved rate; transport errors by kind; the verdict.
use std::fmt::Write as _;

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
    let mut out = String::new();
    run_lines(&mut out, report);
    class_lines(&mut out, report);
    error_lines(&mut out, report);
    if let Some(throttle) = &report.throttle {
        render_throttle(&mut out, throttle);
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
        _ if report.throttle.is_some() => format!(
            "mean {:.1}/s over {:.2}s (the probe's steps are below)",
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
    }
}

fn render_throttle(out: &mut String, throttle: &crate::report::ThrottleSection) {
    let level = format!("{:.0}%", throttle.confidence * 100.0);
    let _ = writeln!(out);
    let model = throttle.model_label();
    let mut line = format!("  throttle  {model}");
    let parameters: Vec<String> = throttle
        .parameters()
        .into_iter()
        .map(|(_, label, unit, value)| {
            format!(
                "{label} {:.1}{unit} ({level} {:.1}–{:.1})",
                value.estimate, value.ci_low, value.ci_high
            )
        })
        .collect();
    if !parameters.is_empty() {
        line.push_str(": ");
        line.push_str(&parameters.join(" · "));
    }
    if let Some(counts) = throttle.counts_refused {
        line.push_str(if counts {
            " · counts refused requests"
        } else {
            " · refused requests do not count"
        });
    }
    let _ = writeln!(out, "{line}");
    let mut facts = Vec::new();
    if let Some(first) = throttle.first_throttle_s {
        facts.push(format!(
            "first refusal at {first:.2}s after {} admitted",
            throttle.admitted_before_first_throttle.unwrap_or(0)
        ));
    }
    if let Some(knee) = throttle.knee_text() {
        facts.push(knee);
    }
    if let Some(rate) = throttle.overload_rate_per_s {
        facts.push(format!("overload {} rps", crate::units::trim_float(rate)));
    }
    facts.push(format!(
        "{} requests used (cap {}, ≤ {} per second)",
        throttle.requests_used,
        throttle.max_requests,
        crate::units::trim_float(throttle.max_rate_per_s)
    ));
    let _ = writeln!(out, "            {}", facts.join(" · "));
    throttle_steps(out, throttle);
    for evidence in &throttle.evidence {
        let _ = writeln!(out, "  evidence  {evidence}");
    }
    if let Some(lockout) = &throttle.lockout {
        let _ = writeln!(
            out,
            "  lockout   recognised at {:.2}s after {:.2}s without an admission; {} refused \
             requests after that; {}",
            lockout.recognised_at_s,
            lockout.silent_s,
            lockout.refused_after,
            lockout
                .recovered_after_s
                .map_or("no admission again within the bounds".to_string(), |s| {
                    format!("admitted again {s:.2}s after the overload stopped")
                })
        );
    }
    for note in &throttle.notes {
        let _ = writeln!(out, "  note      {note}");
    }
}

/// The probe's steps and its seconds, admitted of offered; what stopped it.
fn throttle_steps(out: &mut String, throttle: &crate::report::ThrottleSection) {
    let steps: Vec<String> = throttle
        .steps
        .iter()
        .map(|step| {
            format!(
                "{}{} rps {}/{}",
                if step.phase == "overload" {
                    "overload "
                } else {
                    ""
                },
                crate::units::trim_float(step.rate_per_s),
                step.admitted,
                step.offered
            )
        })
        .collect();
    let _ = writeln!(out, "  steps     {} (admitted/offered)", steps.join(" · "));
    let seconds: Vec<String> = throttle
        .series
        .admitted
        .iter()
        .zip(&throttle.series.offered)
        .map(|(admitted, offered)| format!("{admitted}/{offered}"))
        .collect();
    let _ = writeln!(out, "  per sec   {} (admitted/offered)", seconds.join(" "));
    if throttle.retry_after_count > 0 {
        let _ = writeln!(
            out,
            "  retry     {} 429s carried Retry-After (first: {} s)",
            throttle.retry_after_count,
            throttle.retry_after_s.unwrap_or(0.0)
        );
    }
    if throttle.quota_exhausted {
        let _ = writeln!(
            out,
            "  quota     exhausted: 429 Limit Exceeded stopped the probe"
        );
    }
    if throttle.forbidden > 0 {
        let _ = writeln!(
            out,
            "  auth      {} responses were 401/403",
            throttle.forbidden
        );
    }
}
