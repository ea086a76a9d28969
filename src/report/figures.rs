//! The charts every report has, as data ([`Figure`]): the traffic over
//! time, each shard's rate in a merged run, latency over time and its
//! distribution; with each analysis's own charts between them ([`all`]).
//! The formats with pictures draw them (`output::html`).
use crate::record::histogram_from_base64;
use crate::report::analysis::ALL;
use crate::report::markup::{per_bin_rate, per_second, Figure, Line, Role, Stroke};
use crate::report::Report;
use crate::units::short;

/// Every chart of a report, in order: the run's traffic, each analysis's
/// charts, then the latency.
pub fn all(report: &Report) -> Vec<Figure> {
    traffic_figure(report)
        .into_iter()
        .chain(shards_figure(report))
        .chain(ALL.iter().flat_map(|analysis| analysis.figures(report)))
        .chain(latency_time_figure(report))
        .chain(latency_figure(report))
        .collect()
}

/// Requests per second over the run from its timeline: sent, and what
/// came back stacked — each class's answers, then the throttled and the
/// errors among them.
fn traffic_figure(report: &Report) -> Option<Figure> {
    let Some(timeline) = &report.series.timeline else {
        return legacy_traffic_figure(report);
    };
    let width = timeline.width_s;
    let sent_end = report.run.duration_s.max(width.min(timeline.end_s));
    let mut lines =
        vec![Line::new("sent", per_bin_rate(&timeline.sent, width, sent_end)).role(Role::Sent)];
    let bins = timeline.bins();
    let at = |series: &[u64], bin: usize| series.get(bin).copied().unwrap_or(0);
    // Layers from the bottom: errors, throttled, then each class's others;
    // each area is drawn to its running total, the tallest first.
    let mut running = vec![0u64; bins];
    let mut layers = Vec::new();
    let errors = timeline.summed(|c| &c.errors);
    let throttled = timeline.summed(|c| &c.throttled);
    for (name, role, counts) in [
        ("errors", Role::Errors, errors.clone()),
        ("throttled", Role::Throttled, throttled),
    ] {
        if counts.iter().any(|c| *c > 0) {
            for (total, count) in running.iter_mut().zip(&counts) {
                *total += count;
            }
            layers.push((name.to_string(), role, running.clone()));
        }
    }
    for (class, series) in &timeline.classes {
        let others: Vec<u64> = (0..bins)
            .map(|b| {
                at(&series.answered, b)
                    .saturating_sub(at(&series.throttled, b) + at(&series.errors, b))
            })
            .collect();
        if others.iter().any(|c| *c > 0) {
            for (total, count) in running.iter_mut().zip(&others) {
                *total += count;
            }
            layers.push((
                format!("{class} answered"),
                Role::Class(class.clone()),
                running.clone(),
            ));
        }
    }
    for (name, role, totals) in layers.into_iter().rev() {
        lines.push(
            Line::new(name, per_bin_rate(&totals, width, timeline.end_s))
                .role(role)
                .stroke(Stroke::Area),
        );
    }
    let title = format!(
        "Requests per second, in bins of {} s: sent, and the answers stacked",
        crate::units::trim_float(width)
    );
    Some(Figure::new(title, "seconds", "requests per second", lines))
}

/// A merged run: each shard's send rate beside the merged one.
fn shards_figure(report: &Report) -> Option<Figure> {
    let timeline = report.series.timeline.as_ref()?;
    if timeline.shards.is_empty() {
        return None;
    }
    let (width, end) = (
        timeline.width_s,
        report.run.duration_s.max(timeline.width_s),
    );
    let mut lines =
        vec![Line::new("merged", per_bin_rate(&timeline.sent, width, end)).role(Role::Sent)];
    for (shard, sent) in &timeline.shards {
        lines.push(Line::new(format!("shard {shard}"), per_bin_rate(sent, width, end)).dashed());
    }
    Some(Figure::new(
        format!(
            "Requests sent per second by each shard and merged, in bins of {} s",
            short(width)
        ),
        "seconds",
        "requests per second",
        lines,
    ))
}

/// A report of an earlier version has only per-second series.
fn legacy_traffic_figure(report: &Report) -> Option<Figure> {
    if report.series.sent.is_empty() {
        return None;
    }
    let mut lines = vec![Line::new("sent", per_second(&report.series.sent)).role(Role::Sent)];
    for (class, series) in &report.series.completed {
        if series.iter().any(|count| *count > 0) {
            lines.push(Line::new(class.clone(), per_second(series)).class(class));
        }
    }
    Some(Figure::new(
        "Requests per second by class",
        "seconds",
        "requests",
        lines,
    ))
}

/// Latency p50 / p90 / p99 over the run, per class, from the timeline's
/// per-bin histograms; on a log axis when the values span over 20×.
fn latency_time_figure(report: &Report) -> Option<Figure> {
    let timeline = report.series.timeline.as_ref()?;
    let mut lines = Vec::new();
    for (class, series) in &timeline.classes {
        let histograms: Vec<(f64, hdrhistogram::Histogram<u64>)> = series
            .latency_us
            .iter()
            .enumerate()
            .filter(|(_, text)| !text.is_empty())
            .filter_map(|(bin, text)| {
                let histogram = histogram_from_base64(text).ok()?;
                Some(((bin as f64 + 0.5) * timeline.width_s, histogram))
            })
            .collect();
        if histograms.is_empty() {
            continue;
        }
        for (label, quantile, stroke) in [
            ("p50", 0.5, Stroke::Solid),
            ("p90", 0.9, Stroke::Dashed),
            ("p99", 0.99, Stroke::Dotted),
        ] {
            let points = histograms
                .iter()
                .map(|(x, h)| (*x, h.value_at_quantile(quantile) as f64 / 1000.0))
                .collect();
            lines.push(
                Line::new(format!("{class} {label}"), points)
                    .class(class)
                    .stroke(stroke),
            );
        }
    }
    if lines.is_empty() {
        return None;
    }
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| *y > 0.0);
    let (low, high) = ys.fold((f64::INFINITY, 0.0_f64), |(l, h), y| (l.min(y), h.max(y)));
    let mut figure = Figure::new(
        format!(
            "Latency over time (p50 solid, p90 dashed, p99 dotted), in bins of {} s",
            crate::units::trim_float(timeline.width_s)
        ),
        "seconds",
        "ms",
        lines,
    );
    figure.log_y = high > 20.0 * low;
    if figure.log_y {
        figure.title.push_str(" — log scale");
    }
    Some(figure)
}

/// The response-time distribution per class: latency at each percentile,
/// the x axis spaced by nines and labelled p50, p90, p99, p99.9 (and
/// p99.99 with enough responses).
fn latency_figure(report: &Report) -> Option<Figure> {
    let mut lines = Vec::new();
    let mut most = 0;
    for (name, class) in &report.classes {
        if class.count == 0 {
            continue;
        }
        let Ok(histogram) = histogram_from_base64(&class.histograms.latency_us) else {
            continue;
        };
        most = most.max(class.count);
        // From p50 to p99.9 (p99.99 with enough responses), 40 points.
        let (from, top) = (2f64.log10(), if class.count >= 100_000 { 4.0 } else { 3.0 });
        let points: Vec<(f64, f64)> = (0..40)
            .map(|step| {
                let nines = from + (top - from) * f64::from(step) / 39.0;
                let quantile = 1.0 - 10f64.powf(-nines);
                (nines, histogram.value_at_quantile(quantile) as f64 / 1000.0)
            })
            .collect();
        lines.push(Line::new(name.clone(), points).class(name));
    }
    if lines.is_empty() {
        return None;
    }
    let mut figure = Figure::new(
        "Response-time distribution by class",
        "percentile",
        "ms",
        lines,
    );
    figure.x_ticks = [
        (2f64.log10(), "p50"),
        (1.0, "p90"),
        (2.0, "p99"),
        (3.0, "p99.9"),
    ]
    .into_iter()
    .chain((most >= 100_000).then_some((4.0, "p99.99")))
    .map(|(x, label)| (x, label.to_string()))
    .collect();
    Some(figure)
}
