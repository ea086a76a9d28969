//! `--html`: one self-contained page (no network, no script) with the verdict,
//! the checks, the classes and SVG charts drawn with plotters: requests per
//! second by class; the canary share over time with its expected band and
//! running interval; latency percentile curves per class; and, for throttle
//! probes, offered / admitted / throttled per second. Everything is drawn
//! from the report alone, so `gateprobe report saved.json --html` draws the
//! same charts as the run that saved it.
use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::markup::{document, Align, Markup};
use super::Format;
use crate::canary::split::{alpha_each, share_path, Expectation, SharePoint};
use crate::record::histogram_from_base64;
use crate::report::{Report, Verdict};

pub struct Html;

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One line of a chart.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
    /// Draw in the colour of an earlier line (an interval's second edge).
    same_colour_as_previous: bool,
}

impl Line {
    fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            dashed: false,
            same_colour_as_previous: false,
        }
    }

    /// The second edge of an interval or band: same colour, no legend entry.
    fn edge_of_previous(points: Vec<(f64, f64)>) -> Self {
        Self {
            same_colour_as_previous: true,
            ..Self::new(String::new(), points)
        }
    }

    fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 320;

/// Draws lines on shared axes as an SVG string.
/// Long because plotters' builder calls (axes, mesh, series, legend) are
/// one chain of configuration for one drawing.
fn chart(title: &str, x_label: &str, y_label: &str, lines: &[Line]) -> Result<String> {
    // A saved report is input: a point at infinity (or NaN) would make the
    // axes endless, so such points are left out.
    let finite = |point: &&(f64, f64)| {
        let (x, y) = **point;
        (x * 1.1).is_finite() && (y * 1.1).is_finite()
    };
    let points = lines
        .iter()
        .flat_map(|line| line.points.iter())
        .filter(finite);
    let (mut x_max, mut y_max) = (1e-9_f64, 1e-9_f64);
    let (mut x_min, mut y_min) = (f64::INFINITY, 0.0_f64);
    for &(x, y) in points {
        x_max = x_max.max(x);
        x_min = x_min.min(x);
        y_max = y_max.max(y);
        y_min = y_min.min(y);
    }
    if !x_min.is_finite() {
        x_min = 0.0;
    }
    let x_range = x_min..(x_max + (x_max - x_min) * 0.02).max(x_min + 1e-6);
    let y_range = y_min..y_max * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let fail = |err: &dyn std::fmt::Display| anyhow!("chart '{title}': {err}");
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| fail(&e))?;
        let mut colour = 0;
        for (index, line) in lines.iter().enumerate() {
            if index > 0 && !line.same_colour_as_previous {
                colour += 1;
            }
            let color = Palette99::pick(colour).to_rgba();
            let style = ShapeStyle::from(&color).stroke_width(2);
            let series = if line.dashed {
                chart.draw_series(DashedLineSeries::new(
                    line.points.iter().filter(finite).copied(),
                    6,
                    4,
                    style,
                ))
            } else {
                chart.draw_series(LineSeries::new(
                    line.points.iter().filter(finite).copied(),
                    style,
                ))
            }
            .map_err(|e| fail(&e))?;
            if !line.name.is_empty() {
                series
                    .label(line.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

fn per_second(series: &[u64]) -> Vec<(f64, f64)> {
    series
        .iter()
        .enumerate()
        .map(|(second, count)| (second as f64, *count as f64))
        .collect()
}

/// Requests sent and completed per second, by class.
fn traffic_chart(report: &Report) -> Result<Option<String>> {
    if report.series.sent.is_empty() {
        return Ok(None);
    }
    let mut lines = vec![Line::new("sent", per_second(&report.series.sent))];
    for (class, series) in &report.series.completed {
        if series.iter().any(|count| *count > 0) {
            lines.push(Line::new(class.clone(), per_second(series)));
        }
    }
    chart(
        "Requests per second by class",
        "seconds",
        "requests",
        &lines,
    )
    .map(Some)
}

/// The canary share over time: cumulative share per variant, the expected
/// band and the running confidence sequence ([`share_path`], from the saved
/// per-second series).
fn share_chart(report: &Report) -> Result<Option<String>> {
    let Some(canary) = &report.canary else {
        return Ok(None);
    };
    let variants: Vec<&String> = canary.expect.keys().collect();
    let totals: Vec<u64> = {
        let length = variants
            .iter()
            .filter_map(|name| report.series.completed.get(*name))
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        (0..length)
            .map(|second| {
                variants
                    .iter()
                    .filter_map(|name| report.series.completed.get(*name))
                    .map(|series| series.get(second).copied().unwrap_or(0))
                    .sum()
            })
            .collect()
    };
    let mut lines = Vec::new();
    let alpha = alpha_each(canary.alpha, canary.tolerance.len()).clamp(1e-9, 0.5);
    let confidence = 1.0 - alpha;
    for (name, tolerance) in &canary.tolerance {
        let (Some(series), Some(share)) =
            (report.series.completed.get(name), canary.expect.get(name))
        else {
            continue;
        };
        let expectation = Expectation {
            share: share.clamp(0.0, 1.0),
            tolerance: tolerance.clamp(1e-3, 1.0 - 1e-3),
        };
        let path = share_path(&expectation, alpha, series, &totals);
        let at = |value: fn(&SharePoint) -> f64| -> Vec<(f64, f64)> {
            path.iter().map(|p| (p.second, 100.0 * value(p))).collect()
        };
        let (share, low, high) = (at(|p| p.share), at(|p| p.low), at(|p| p.high));
        let end = share.last().map_or(1.0, |p| p.0);
        let level = format!("{:.0}%", confidence * 100.0);
        lines.push(Line::new(format!("{name} share"), share));
        lines.push(Line::new(format!("{name} {level} confidence sequence"), low).dashed());
        lines.push(Line::edge_of_previous(high).dashed());
        let (low, high) = expectation.band();
        let flat = |value: f64| vec![(0.0, 100.0 * value), (end, 100.0 * value)];
        lines.push(Line::new(format!("{name} expected band"), flat(low)));
        lines.push(Line::edge_of_previous(flat(high)));
    }
    if lines.is_empty() {
        return Ok(None);
    }
    chart("Canary share over time", "seconds", "share %", &lines).map(Some)
}

/// Latency against percentile, per class, from the saved histograms. The x
/// axis is in "nines": 1 = p90, 2 = p99, 3 = p99.9.
fn latency_chart(report: &Report) -> Result<Option<String>> {
    let mut lines = Vec::new();
    for (name, class) in &report.classes {
        if class.count == 0 {
            continue;
        }
        let Ok(histogram) = histogram_from_base64(&class.histograms.latency_us) else {
            continue;
        };
        let points: Vec<(f64, f64)> = (0..=40)
            .map(|step| {
                let nines = step as f64 / 10.0;
                let quantile = 1.0 - 10f64.powf(-nines);
                (nines, histogram.value_at_quantile(quantile) as f64 / 1000.0)
            })
            .collect();
        lines.push(Line::new(name.clone(), points));
    }
    if lines.is_empty() {
        return Ok(None);
    }
    chart(
        "Latency by percentile (x: nines — 1 = p90, 2 = p99, 3 = p99.9)",
        "nines",
        "ms",
        &lines,
    )
    .map(Some)
}

/// The throttle probe: offered, admitted and throttled per second.
fn throttle_chart(report: &Report) -> Result<Option<String>> {
    let Some(throttle) = &report.throttle else {
        return Ok(None);
    };
    let series = &throttle.series;
    let mut lines = vec![
        Line::new("offered", per_second(&series.offered)),
        Line::new("admitted", per_second(&series.admitted)),
        Line::new("throttled", per_second(&series.throttled)),
    ];
    // The fitted model: what it admits per second once throttling began,
    // with its interval.
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
    chart(
        "Throttle probe: offered vs admitted per second, and the fitted model",
        "seconds",
        "requests",
        &lines,
    )
    .map(Some)
}

/// A queue's wait: admitted requests' latency over the probe.
fn queue_latency_chart(report: &Report) -> Result<Option<String>> {
    let Some(throttle) = report.throttle.as_ref().filter(|t| t.model == "queue") else {
        return Ok(None);
    };
    let points: Vec<(f64, f64)> = throttle
        .series
        .admitted_latency_ms
        .iter()
        .enumerate()
        .filter(|(_, ms)| **ms > 0.0)
        .map(|(second, ms)| (second as f64, *ms))
        .collect();
    if points.is_empty() {
        return Ok(None);
    }
    chart(
        "Queue: admitted requests' latency (median per second)",
        "seconds",
        "ms",
        &[Line::new("admitted latency", points)],
    )
    .map(Some)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;\
font-size:14px;text-align:left}td.num{text-align:right}.pass{color:#17803d;font-weight:bold}\
.fail{color:#c62828;font-weight:bold}.inconclusive{color:#b26a00;font-weight:bold}\
.error{color:#6a1b9a;font-weight:bold}figure{margin:1em 0}.reason{font-size:15px}";

fn verdict_span(verdict: Verdict) -> String {
    format!(
        "<span class=\"{}\">{}</span>",
        verdict.as_str(),
        verdict.as_str().to_uppercase()
    )
}

impl Markup for Html {
    fn text(&self, text: &str) -> String {
        escape(text)
    }

    fn code(&self, text: &str) -> String {
        format!("<code>{}</code>", escape(text))
    }

    fn strong(&self, text: &str) -> String {
        format!("<strong>{}</strong>", escape(text))
    }

    fn verdict(&self, verdict: Verdict) -> String {
        verdict_span(verdict)
    }

    fn begin(&self, out: &mut String, report: &Report) {
        let title = format!("gateprobe {} — {}", report.command, report.verdict.as_str());
        let _ = writeln!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
            escape(&title)
        );
    }

    fn end(&self, out: &mut String) {
        out.push_str("</body></html>\n");
    }

    fn heading(&self, out: &mut String, level: usize, title: &str, report: &Report) {
        let _ = writeln!(
            out,
            "<h{level}>{} {}</h{level}>\n<p class=\"reason\">{} (exit {})</p>",
            escape(title),
            verdict_span(report.verdict),
            escape(&report.reason),
            report.exit_code
        );
    }

    fn paragraph(&self, out: &mut String, text: &str) {
        let _ = writeln!(out, "<p>{text}</p>");
    }

    fn table(&self, out: &mut String, columns: &[(&str, Align)], rows: &[Vec<String>]) {
        out.push_str("<table><tr>");
        for (name, _) in columns {
            let _ = write!(out, "<th>{}</th>", escape(name));
        }
        out.push_str("</tr>\n");
        for row in rows {
            out.push_str("<tr>");
            for (cell, (_, align)) in row.iter().zip(columns) {
                match align {
                    Align::Left => {
                        let _ = write!(out, "<td>{cell}</td>");
                    }
                    Align::Right => {
                        let _ = write!(out, "<td class=\"num\">{cell}</td>");
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }

    fn list(&self, out: &mut String, items: &[String]) {
        if items.is_empty() {
            return;
        }
        out.push_str("<ul>");
        for item in items {
            let _ = write!(out, "<li>{item}</li>");
        }
        out.push_str("</ul>\n");
    }

    fn figures(&self, out: &mut String, report: &Report) -> Result<()> {
        for svg in [
            traffic_chart(report)?,
            share_chart(report)?,
            latency_chart(report)?,
            throttle_chart(report)?,
            queue_latency_chart(report)?,
        ]
        .into_iter()
        .flatten()
        {
            let _ = writeln!(out, "<figure>{svg}</figure>");
        }
        Ok(())
    }
}

pub fn render(report: &Report) -> Result<String> {
    document(&Html, report)
}

impl Format for Html {
    fn flag(&self) -> &'static str {
        "--html"
    }

    fn help(&self) -> &'static str {
        "Write a self-contained HTML report with charts to FILE"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        Ok(render(report)?.into_bytes())
    }
}
