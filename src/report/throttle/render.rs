//! The throttle probe's section in every format: the terminal summary's
//! lines, the markup paragraphs and the charts.
use std::fmt::Write as _;

use crate::report::markup::{per_second, Figure, Line, Markup};
use crate::report::ThrottleSection;

/// The limiter, its parameters and intervals, the probe's facts, steps,
/// evidence, lockout and notes: the terminal summary's throttle lines.
pub(super) fn text(out: &mut String, throttle: &ThrottleSection) {
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
    steps(out, throttle);
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
fn steps(out: &mut String, throttle: &ThrottleSection) {
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
/// The limiter, its parameters with their intervals, and the evidence.
pub(super) fn markup(markup: &dyn Markup, out: &mut String, throttle: &ThrottleSection) {
    let parameters: Vec<String> = throttle
        .parameters()
        .into_iter()
        .map(|(_, label, unit, value)| {
            format!(
                "{} {}",
                markup.text(label),
                markup.strong(&format!("{:.1}{unit}", value.estimate))
            ) + &format!(" ({:.1}–{:.1})", value.ci_low, value.ci_high)
        })
        .collect();
    markup.paragraph(
        out,
        &format!(
            "Throttle: {}{}{}; {:.0}% intervals; {} requests.",
            markup.text(throttle.model_label()),
            if parameters.is_empty() { "" } else { ": " },
            parameters.join(", "),
            throttle.confidence * 100.0,
            throttle.requests_used
        ),
    );
    // The knee and the safe rate, in the text report's words.
    if let Some(knee) = throttle.knee_text() {
        markup.paragraph(out, &markup.text(&knee));
    }
    let evidence: Vec<String> = throttle.evidence.iter().map(|e| markup.text(e)).collect();
    markup.list(out, &evidence);
}

/// The probe: offered, admitted and throttled per second, and the fitted
/// model's rate with its interval once throttling began.
pub(super) fn probe_figure(throttle: &ThrottleSection) -> Figure {
    let series = &throttle.series;
    let mut lines = vec![
        Line::new("offered", per_second(&series.offered)),
        Line::new("admitted", per_second(&series.admitted)),
        Line::new("throttled", per_second(&series.throttled)),
    ];
    if let (Some(rate), Some(first)) = (throttle.rate_per_s, throttle.first_throttle_s) {
        let from = first.floor();
        let to = series.admitted.len().saturating_sub(1) as f64;
        if to > from {
            let flat = |value: f64| vec![(from, value), (to, value)];
            lines.push(
                Line::new(
                    format!("fitted {} rate", throttle.model),
                    flat(rate.estimate),
                )
                .dashed(),
            );
            lines.push(Line::edge_of_previous(flat(rate.ci_low)).dashed());
            lines.push(Line::edge_of_previous(flat(rate.ci_high)).dashed());
        }
    }
    Figure {
        title: "Throttle probe: offered vs admitted per second, and the fitted model".to_string(),
        x_label: "seconds",
        y_label: "requests",
        lines,
    }
}

/// A queue's wait: admitted requests' latency over the probe.
pub(super) fn queue_figure(throttle: &ThrottleSection) -> Option<Figure> {
    if throttle.model != "queue" {
        return None;
    }
    let points: Vec<(f64, f64)> = throttle
        .series
        .admitted_latency_ms
        .iter()
        .enumerate()
        .filter(|(_, ms)| **ms > 0.0)
        .map(|(second, ms)| (second as f64, *ms))
        .collect();
    (!points.is_empty()).then(|| Figure {
        title: "Queue: admitted requests' latency (median per second)".to_string(),
        x_label: "seconds",
        y_label: "ms",
        lines: vec![Line::new("admitted latency", points)],
    })
}
