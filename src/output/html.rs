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
use crate::record::histogram_from_base64;
use crate::report::analysis::ALL;
use crate::report::markup::{per_second, Figure, Line};
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

const WIDTH: u32 = 760;
const HEIGHT: u32 = 320;

/// Draws lines on shared axes as an SVG string.
/// Long because plotters' builder calls (axes, mesh, series, legend) are
/// one chain of configuration for one drawing.
fn chart(figure: &Figure) -> Result<String> {
    let (title, lines) = (figure.title.as_str(), &figure.lines);
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
            .x_desc(figure.x_label)
            .y_desc(figure.y_label)
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

/// Requests sent and completed per second, by class.
fn traffic_figure(report: &Report) -> Option<Figure> {
    if report.series.sent.is_empty() {
        return None;
    }
    let mut lines = vec![Line::new("sent", per_second(&report.series.sent))];
    for (class, series) in &report.series.completed {
        if series.iter().any(|count| *count > 0) {
            lines.push(Line::new(class.clone(), per_second(series)));
        }
    }
    Some(Figure {
        title: "Requests per second by class".to_string(),
        x_label: "seconds",
        y_label: "requests",
        lines,
    })
}

/// Latency against percentile, per class, from the saved histograms. The x
/// axis is in "nines": 1 = p90, 2 = p99, 3 = p99.9.
fn latency_figure(report: &Report) -> Option<Figure> {
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
        return None;
    }
    Some(Figure {
        title: "Latency by percentile (x: nines — 1 = p90, 2 = p99, 3 = p99.9)".to_string(),
        x_label: "nines",
        y_label: "ms",
        lines,
    })
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
        // The run's traffic, each analysis's charts, then the latency.
        let figures = traffic_figure(report)
            .into_iter()
            .chain(ALL.iter().flat_map(|analysis| analysis.figures(report)))
            .chain(latency_figure(report));
        for figure in figures {
            let _ = writeln!(out, "<figure>{}</figure>", chart(&figure)?);
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

    fn extension(&self) -> &'static str {
        "html"
    }

    fn media_type(&self) -> &'static str {
        "text/html; charset=utf-8"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        Ok(render(report)?.into_bytes())
    }
}
