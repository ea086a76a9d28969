//! The throttle probe's section in every format: the terminal summary's
//! lines, the markup paragraphs and the charts.
use std::fmt::Write as _;

use crate::report::markup::{per_bin_rate, per_second, Figure, Line, Markup, Role, Stroke};
use crate::report::{Report, ThrottleSection};

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

/// The fitted limiter in a few words: its kind and parameters.
fn model_name(throttle: &ThrottleSection) -> String {
    let parameters: Vec<String> = throttle
        .parameters()
        .into_iter()
        .map(|(_, label, unit, value)| format!("{label} {:.1}{unit}", value.estimate))
        .collect();
    format!(
        "fitted {}: {}",
        throttle.model_label(),
        parameters.join(", ")
    )
}

/// The probe over time: offered, admitted and refused (429) per second in
/// the timeline's bins (per second in reports of earlier versions), and
/// the fitted model's rate with its interval once throttling began.
pub(super) fn probe_figure(report: &Report, throttle: &ThrottleSection) -> Figure {
    let mut lines = match &report.series.timeline {
        Some(timeline) => {
            let answered = timeline.summed(|c| &c.answered);
            let throttled = timeline.summed(|c| &c.throttled);
            let admitted: Vec<u64> = answered
                .iter()
                .zip(&throttled)
                .map(|(a, t)| a - t.min(a))
                .collect();
            let (width, end) = (timeline.width_s, timeline.end_s);
            let sent_end = report.run.duration_s.max(width.min(end));
            vec![
                Line::new("offered", per_bin_rate(&timeline.sent, width, sent_end))
                    .role(Role::Sent),
                Line::new("admitted", per_bin_rate(&admitted, width, end)).role(Role::Admitted),
                Line::new("refused (429)", per_bin_rate(&throttled, width, end))
                    .role(Role::Throttled),
            ]
        }
        None => {
            let series = &throttle.series;
            vec![
                Line::new("offered", per_second(&series.offered)).role(Role::Sent),
                Line::new("admitted", per_second(&series.admitted)).role(Role::Admitted),
                Line::new("refused (429)", per_second(&series.throttled)).role(Role::Throttled),
            ]
        }
    };
    let to = lines
        .iter()
        .flat_map(|l| l.points.last())
        .map(|p| p.0)
        .fold(0.0, f64::max);
    if let (Some(rate), Some(first)) = (throttle.rate_per_s, throttle.first_throttle_s) {
        if to > first {
            let flat = |value: f64| vec![(first, value), (to, value)];
            lines.push(
                Line::new(model_name(throttle), flat(rate.estimate))
                    .role(Role::Model)
                    .dashed(),
            );
            lines.push(Line::edge_of_previous(flat(rate.ci_low)).stroke(Stroke::Dotted));
            lines.push(Line::edge_of_previous(flat(rate.ci_high)).stroke(Stroke::Dotted));
        }
    }
    Figure::new(
        "Throttle probe: offered, admitted and refused per second, and the fitted model",
        "seconds",
        "requests per second",
        lines,
    )
}

/// Admitted against offered, one point per second of the probe, with the
/// fitted model's steady state drawn: every kind admits min(offered, its
/// rate) once its burst, queue or window is spent.
pub(super) fn admission_figure(throttle: &ThrottleSection) -> Option<Figure> {
    let series = &throttle.series;
    let points: Vec<(f64, f64)> = series
        .offered
        .iter()
        .zip(&series.admitted)
        .filter(|(offered, _)| **offered > 0)
        .map(|(offered, admitted)| (*offered as f64, *admitted as f64))
        .collect();
    if points.is_empty() {
        return None;
    }
    let mut lines = vec![Line::new("a second of the probe", points.clone())
        .role(Role::Admitted)
        .stroke(Stroke::Points)];
    let top = points.iter().map(|p| p.0).fold(0.0, f64::max);
    if let Some(rate) = throttle.rate_per_s {
        let knee = rate.estimate.min(top);
        let model = vec![(0.0, 0.0), (knee, knee), (top, rate.estimate.min(top))];
        lines.push(
            Line::new(model_name(throttle), model)
                .role(Role::Model)
                .dashed(),
        );
    }
    let mut figure = Figure::new(
        "Admitted against offered, per second, and the fitted model",
        "offered per second",
        "admitted per second",
        lines,
    );
    figure.legend_lower = true;
    Some(figure)
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
    (!points.is_empty()).then(|| {
        Figure::new(
            "Queue: admitted requests' latency (median per second)",
            "seconds",
            "ms",
            vec![Line::new("admitted latency", points).role(Role::Other)],
        )
    })
}
