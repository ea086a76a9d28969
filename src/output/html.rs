//! `--html`: one self-contained page (no network, no script) with the verdict,
//! the checks and what would decide the undecided ones, the classes, and
//! the report's figures (`report::figures`) drawn as SVG with plotters.
//! Each class keeps one colour in every chart and table; each chart has a
//! title, a one-sentence summary and its data table behind a disclosure;
//! the page fits 390 px and prints. Everything is drawn from the report
//! alone, so `gateprobe report saved.json --html` draws the same charts as
//! the run that saved it.
use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::markup::{document, Align, Markup};
use super::Format;
use crate::report::markup::{Figure, Line, Role, Stroke};
use crate::report::{Report, Verdict};
use crate::units::short;

pub struct Html;

/// The HTML markup of one page; it remembers the document's classes (its
/// first report's, then its steps') so that each keeps one colour throughout.
#[derive(Default)]
struct Page {
    classes: std::cell::RefCell<Vec<(String, usize)>>,
}

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

/// Each class's colour, the same in every chart and in the classes table:
/// Okabe–Ito's colour-blind-safe blue and reddish purple, then hues kept
/// apart from them and from the reserved colours below, each with at least
/// a 3:1 contrast on white (WCAG 2.1, 1.4.11 non-text; a test checks). A
/// class takes the first colour no other class of its report has, and
/// keeps it in every step of the document.
pub const CLASS_COLOURS: [&str; 6] = [
    "#0072B2", "#A8488A", "#00798C", "#4B3D9E", "#6B6B00", "#7A4A1E",
];
/// What is not a class: requests sent, admitted, throttled, failed; a model.
pub const SENT_COLOUR: &str = "#4D4D4D";
pub const ADMITTED_COLOUR: &str = "#2E7D32";
pub const THROTTLED_COLOUR: &str = "#A66A00";
pub const ERRORS_COLOUR: &str = "#C23B0B";
pub const MODEL_COLOUR: &str = "#000000";

/// The classes' colours over a document: its steps' reports in order (or
/// its one report), each class given the first colour its report's other
/// classes do not have.
fn class_colours(report: &Report) -> Vec<(String, usize)> {
    let mut assigned: Vec<(String, usize)> = Vec::new();
    let reports: Vec<&Report> = if report.steps.is_empty() {
        vec![report]
    } else {
        report.steps.iter().map(|step| &step.report).collect()
    };
    for one in reports {
        let mut taken: Vec<usize> = one
            .classes
            .keys()
            .filter_map(|name| {
                assigned
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, c)| *c)
            })
            .collect();
        for name in one.classes.keys() {
            if assigned.iter().any(|(known, _)| known == name) {
                continue;
            }
            let free = (0..CLASS_COLOURS.len())
                .find(|c| !taken.contains(c))
                .unwrap_or(assigned.len() % CLASS_COLOURS.len());
            taken.push(free);
            assigned.push((name.clone(), free));
        }
    }
    assigned
}

fn class_colour(colours: &[(String, usize)], name: &str) -> &'static str {
    let at = colours
        .iter()
        .find(|(known, _)| known == name)
        .map_or(0, |(_, c)| *c);
    CLASS_COLOURS[at % CLASS_COLOURS.len()]
}

fn rgb(hex: &str) -> RGBColor {
    let byte = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16).unwrap_or(0);
    RGBColor(byte(1), byte(3), byte(5))
}

/// The colour of a line: its class's, its role's, or the next free one.
fn colour_of(role: &Role, classes: &[(String, usize)], other: &mut usize) -> &'static str {
    match role {
        Role::Class(name) => class_colour(classes, name),
        Role::Sent => SENT_COLOUR,
        Role::Admitted => ADMITTED_COLOUR,
        Role::Throttled => THROTTLED_COLOUR,
        Role::Errors => ERRORS_COLOUR,
        Role::Model => MODEL_COLOUR,
        Role::Other => {
            *other += 1;
            CLASS_COLOURS[(classes.len() + *other - 1) % CLASS_COLOURS.len()]
        }
    }
}

/// A chart's finite points' ranges (a saved report is input: a point at
/// infinity or NaN would make the axes endless, so such points are left out).
fn finite(point: &(f64, f64)) -> bool {
    (point.0 * 1.1).is_finite() && (point.1 * 1.1).is_finite()
}

/// Draws a figure as an SVG string, its lines coloured by their roles.
/// Long because plotters' builder calls (axes, mesh, series by stroke,
/// legend, named ticks) are one chain of configuration for one drawing.
fn chart(figure: &Figure, classes: &[(String, usize)]) -> Result<String> {
    let title = figure.title.as_str();
    let log = |y: f64| if figure.log_y { y.max(1e-3).log10() } else { y };
    let lines: Vec<Vec<(f64, f64)>> = figure
        .lines
        .iter()
        .map(|line| {
            let kept = line.points.iter().filter(|p| finite(p));
            kept.map(|&(x, y)| (x, log(y))).collect()
        })
        .collect();
    let (mut x_min, mut x_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_min, mut y_max) = (
        if figure.log_y { f64::INFINITY } else { 0.0 },
        f64::NEG_INFINITY,
    );
    for &(x, y) in lines.iter().flatten() {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !x_min.is_finite() {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    let x_range_end = (x_max + (x_max - x_min) * 0.02).max(x_min + 1e-6);
    let x_range = x_min..x_range_end;
    let y_pad = if figure.log_y { 0.1 } else { 0.0 };
    let y_top = if figure.log_y {
        y_max + 0.1
    } else {
        y_max * 1.1
    };
    let y_range = (y_min - y_pad)..y_top.max(y_min + 1e-6);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let fail = |err: &dyn std::fmt::Display| anyhow!("chart '{title}': {err}");
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, y_range.clone())
            .map_err(|e| fail(&e))?;
        let y_format = |y: &f64| {
            if figure.log_y {
                short(10f64.powf(*y))
            } else {
                short(*y)
            }
        };
        let x_format = |x: &f64| short(*x);
        let named_ticks = !figure.x_ticks.is_empty();
        let no_label = |_: &f64| String::new();
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(figure.x_label)
            .x_label_formatter(&x_format)
            .y_desc(figure.y_label)
            .y_label_formatter(&y_format)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235));
        if named_ticks {
            mesh.x_label_formatter(&no_label).disable_x_mesh();
        }
        mesh.draw().map_err(|e| fail(&e))?;
        if named_ticks {
            let grid = ShapeStyle::from(&RGBColor(200, 200, 200)).stroke_width(1);
            for (x, label) in &figure.x_ticks {
                let edge = vec![(*x, y_range.start), (*x, y_range.end)];
                chart
                    .draw_series(LineSeries::new(edge, grid))
                    .map_err(|e| fail(&e))?;
                // Just above the axis, right of its line (the last one left of it).
                let right = *x < x_range_end - (x_range_end - x_min) * 0.05;
                let anchor = if right {
                    Pos::new(HPos::Left, VPos::Bottom)
                } else {
                    Pos::new(HPos::Right, VPos::Bottom)
                };
                let font = ("sans-serif", 13).into_font().color(&BLACK).pos(anchor);
                let nudge = (x_range_end - x_min) * if right { 0.005 } else { -0.005 };
                let text = Text::new(label.clone(), (*x + nudge, y_range.start), font);
                chart
                    .draw_series(std::iter::once(text))
                    .map_err(|e| fail(&e))?;
            }
        }
        let mut other = 0;
        let mut colour = MODEL_COLOUR;
        // Areas first, so the lines stay on top of them.
        let order = (0..figure.lines.len())
            .filter(|&i| figure.lines[i].stroke == Stroke::Area)
            .chain((0..figure.lines.len()).filter(|&i| figure.lines[i].stroke != Stroke::Area));
        let mut colours = vec![MODEL_COLOUR; figure.lines.len()];
        for (index, line) in figure.lines.iter().enumerate() {
            if !(index > 0 && line.same_colour_as_previous) {
                colour = colour_of(&line.role, classes, &mut other);
            }
            colours[index] = colour;
        }
        for index in order {
            let line = &figure.lines[index];
            let points = lines[index].clone();
            let colour = rgb(colours[index]);
            let style = ShapeStyle::from(&colour).stroke_width(2);
            let series = match line.stroke {
                Stroke::Solid => chart.draw_series(LineSeries::new(points, style)),
                Stroke::Dashed => chart.draw_series(DashedLineSeries::new(points, 6, 4, style)),
                Stroke::Dotted => chart.draw_series(DashedLineSeries::new(points, 2, 3, style)),
                Stroke::Area => chart.draw_series(
                    AreaSeries::new(points, y_range.start, colour.mix(0.55)).border_style(style),
                ),
                Stroke::Points => chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, style.filled())),
                ),
            }
            .map_err(|e| fail(&e))?;
            if !line.name.is_empty() {
                let stroke = line.stroke;
                series
                    .label(line.name.clone())
                    .legend(move |(x, y)| match stroke {
                        Stroke::Area | Stroke::Points => {
                            Rectangle::new([(x, y - 4), (x + 14, y + 4)], style.filled()).into_dyn()
                        }
                        _ => PathElement::new(vec![(x, y), (x + 18, y)], style).into_dyn(),
                    });
            }
        }
        chart
            .configure_series_labels()
            .position(if figure.legend_lower {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    // Scales to the page's width (the viewBox keeps its proportions), and
    // is an image with a name to assistive technology.
    let opening = format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\"");
    let named = format!(
        "<svg role=\"img\" aria-label=\"{}\" class=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\"",
        escape(title)
    );
    Ok(svg.replacen(&opening, &named, 1))
}

/// A figure's one-sentence summary when its maker gave none: each named
/// line's range.
fn summary(figure: &Figure) -> String {
    if !figure.summary.is_empty() {
        return figure.summary.clone();
    }
    let parts: Vec<String> = figure
        .lines
        .iter()
        .filter(|line| !line.name.is_empty() && !line.points.is_empty())
        .map(|line| {
            let ys = line.points.iter().filter(|p| finite(p)).map(|p| p.1);
            let (low, high) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), y| {
                (l.min(y), h.max(y))
            });
            if short(low) == short(high) {
                format!("{} {} {}", line.name, short(low), figure.y_label)
            } else {
                format!(
                    "{} from {} to {} {}",
                    line.name,
                    short(low),
                    short(high),
                    figure.y_label
                )
            }
        })
        .collect();
    format!("{}: {}.", figure.title, parts.join("; "))
}

/// A figure's data as a table: one row per x, one column per named line.
fn data_table(figure: &Figure) -> String {
    let named: Vec<&Line> = figure.lines.iter().filter(|l| !l.name.is_empty()).collect();
    let mut xs: Vec<f64> = named
        .iter()
        .flat_map(|line| line.points.iter().filter(|p| finite(p)).map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let mut out = format!("<table><tr><th>{}</th>", escape(figure.x_label));
    for line in &named {
        let _ = write!(out, "<th>{}</th>", escape(&line.name));
    }
    out.push_str("</tr>\n");
    for x in xs {
        let _ = write!(out, "<tr><td class=\"num\">{}</td>", short(x));
        for line in &named {
            let y = line
                .points
                .iter()
                .find(|p| (p.0 - x).abs() < 1e-9)
                .map(|p| p.1);
            let cell = y.map(short).unwrap_or_default();
            let _ = write!(out, "<td class=\"num\">{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>");
    out
}

/// The page's style: it fits a phone's 390 px as well as a desktop (tables
/// scroll inside their own box, long words wrap), the verdict colours keep
/// a 4.5:1 contrast on white (WCAG AA), and it prints without the
/// disclosures' tables.
const STYLE: &str = "body{font-family:sans-serif;max-width:820px;margin:2em auto;padding:0 12px;color:#222;\
overflow-wrap:break-word}code{overflow-wrap:anywhere}.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;\
font-size:14px;text-align:left}td.num{text-align:right}.pass{color:#17803d;font-weight:bold}\
.fail{color:#c62828;font-weight:bold}.inconclusive{color:#8a5300;font-weight:bold}\
.error{color:#6a1b9a;font-weight:bold}figure{margin:1.5em 0}figcaption{font-size:14px;color:#444}\
svg.chart{width:100%;height:auto;display:block}figure h4{margin:0 0 .3em;font-size:16px}\
@media (max-width:600px){svg.chart{min-width:560px}}.swatch{display:inline-block;width:.8em;height:.8em;\
margin-right:.3em;vertical-align:baseline;border-radius:2px}.reason{font-size:15px}\
@media print{body{max-width:none;margin:0}details{display:none}figure{break-inside:avoid}\
a{color:inherit}}";

fn verdict_span(verdict: Verdict) -> String {
    format!(
        "<span class=\"{}\">{}</span>",
        verdict.as_str(),
        verdict.as_str().to_uppercase()
    )
}

impl Markup for Page {
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

    fn class_name(&self, name: &str) -> String {
        format!(
            "<span class=\"swatch\" style=\"background:{}\"></span>{}",
            class_colour(&self.classes.borrow(), name),
            escape(name)
        )
    }

    fn begin(&self, out: &mut String, report: &Report) {
        *self.classes.borrow_mut() = class_colours(report);
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
        out.push_str("<div class=\"scroll\"><table><tr>");
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
        out.push_str("</table></div>\n");
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
        let figures = crate::report::figures::all(report);
        let classes = self.classes.borrow().clone();
        for figure in figures {
            let _ = writeln!(
                out,
                "<figure><h4>{}</h4><div class=\"scroll\">{}</div><figcaption>{}<details><summary>The chart's data</summary><div class=\"scroll\">{}</div></details></figcaption></figure>",
                escape(&figure.title),
                chart(&figure, &classes)?,
                escape(&summary(&figure)),
                data_table(&figure)
            );
        }
        Ok(())
    }
}

pub fn render(report: &Report) -> Result<String> {
    document(&Page::default(), report)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2.1 contrast ratio of a colour against white.
    fn contrast_on_white(hex: &str) -> f64 {
        let RGBColor(r, g, b) = rgb(hex);
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
        1.05 / (luminance + 0.05)
    }

    /// Every chart colour keeps 3:1 on white (non-text), every verdict
    /// colour 4.5:1 (text, WCAG AA), and no two class colours are equal.
    #[test]
    fn colours_keep_their_contrast() {
        let reserved = [
            SENT_COLOUR,
            ADMITTED_COLOUR,
            THROTTLED_COLOUR,
            ERRORS_COLOUR,
            MODEL_COLOUR,
        ];
        for colour in CLASS_COLOURS.iter().chain(&reserved) {
            let ratio = contrast_on_white(colour);
            assert!(ratio >= 3.0, "{colour}: {ratio:.2}:1");
        }
        let verdicts =
            regex::Regex::new(r"\.(pass|fail|inconclusive|error)\{color:(#[0-9a-f]{6})").unwrap();
        let found: Vec<_> = verdicts.captures_iter(STYLE).collect();
        assert_eq!(found.len(), 4, "{STYLE}");
        for verdict in found {
            let ratio = contrast_on_white(&verdict[2]);
            assert!(ratio >= 4.5, "{}: {ratio:.2}:1", &verdict[1]);
        }
        let mut distinct = CLASS_COLOURS.to_vec();
        distinct.extend(reserved);
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), CLASS_COLOURS.len() + reserved.len());
    }
}
