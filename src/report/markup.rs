//! How a report's parts write themselves in the markup formats (Markdown,
//! HTML): the elements a format provides ([`Markup`]), and the charts an
//! analysis draws, as data ([`Figure`]) that a format with pictures turns
//! into drawings. It sits with the report, below the formats, so that each
//! analysis renders its own section (`crate::report::analysis`).
use anyhow::Result;

use crate::report::{Report, Verdict};

/// A column's alignment (numbers to the right).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// How one markup writes each element; cells and paragraphs arrive already
/// marked up (through `text`, `code`, `strong` and `verdict`).
pub trait Markup {
    /// Text, escaped for this markup.
    fn text(&self, text: &str) -> String;
    fn code(&self, text: &str) -> String;
    fn strong(&self, text: &str) -> String;
    /// A class's name, marked with the colour the charts give it.
    fn class_name(&self, name: &str) -> String {
        self.text(name)
    }
    /// A verdict as shown in a table cell or a heading.
    fn verdict(&self, verdict: Verdict) -> String;
    /// Before the first section / after the last (a page's head and foot).
    fn begin(&self, _out: &mut String, _report: &Report) {}
    fn end(&self, _out: &mut String) {}
    /// A report's heading at `level`: the title and the verdict, then the
    /// reason and the exit code.
    fn heading(&self, out: &mut String, level: usize, title: &str, report: &Report);
    fn paragraph(&self, out: &mut String, text: &str);
    fn table(&self, out: &mut String, columns: &[(&str, Align)], rows: &[Vec<String>]);
    fn list(&self, out: &mut String, items: &[String]);
    /// Charts of one report (none in a markup without pictures).
    fn figures(&self, _out: &mut String, _report: &Report) -> Result<()> {
        Ok(())
    }
}

/// One chart of a report, as data: the HTML format draws it.
pub struct Figure {
    pub title: String,
    pub x_label: &'static str,
    pub y_label: &'static str,
    pub lines: Vec<Line>,
    /// A logarithmic y axis (latency whose range spans decades).
    pub log_y: bool,
    /// Named ticks on the x axis in place of numbers (the percentile axis:
    /// p50, p90, p99, p99.9 at their positions).
    pub x_ticks: Vec<(f64, String)>,
    /// What the chart shows, in a sentence, for readers who cannot see it
    /// (its data table follows it behind a disclosure).
    pub summary: String,
    /// The legend in the lower right (a chart whose lines rise to the right).
    pub legend_lower: bool,
}

impl Figure {
    pub fn new(
        title: impl Into<String>,
        x_label: &'static str,
        y_label: &'static str,
        lines: Vec<Line>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label,
            y_label,
            lines,
            log_y: false,
            x_ticks: Vec::new(),
            summary: String::new(),
            legend_lower: false,
        }
    }

    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }
}

/// How a line is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stroke {
    Solid,
    Dashed,
    Dotted,
    /// Filled down to zero (drawn before the lines; stacked by the caller).
    Area,
    /// Points, not joined.
    Points,
}

/// What a line stands for, which fixes its colour in every chart: a class
/// keeps its colour across the charts and the classes table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Role {
    Class(String),
    Sent,
    /// Admitted by a limiter.
    Admitted,
    Throttled,
    Errors,
    /// A fitted model or an expectation.
    Model,
    /// Anything else: coloured in turn.
    Other,
}

/// One line of a chart.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub stroke: Stroke,
    pub role: Role,
    /// Draw in the colour of an earlier line (an interval's second edge).
    pub same_colour_as_previous: bool,
}

impl Line {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            stroke: Stroke::Solid,
            role: Role::Other,
            same_colour_as_previous: false,
        }
    }

    /// The second edge of an interval or band: same colour, no legend entry.
    pub fn edge_of_previous(points: Vec<(f64, f64)>) -> Self {
        Self {
            same_colour_as_previous: true,
            ..Self::new(String::new(), points)
        }
    }

    pub fn dashed(self) -> Self {
        self.stroke(Stroke::Dashed)
    }

    pub fn stroke(mut self, stroke: Stroke) -> Self {
        self.stroke = stroke;
        self
    }

    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    pub fn class(self, class: &str) -> Self {
        self.role(Role::Class(class.to_string()))
    }
}

/// A per-second series as points (second, count).
pub fn per_second(series: &[u64]) -> Vec<(f64, f64)> {
    series
        .iter()
        .enumerate()
        .map(|(second, count)| (second as f64, *count as f64))
        .collect()
}

/// A timeline's counts as rates per second at each bin's middle. The last
/// bin, which the run's series ends in at `end_s`, is divided by the part
/// of it the run covered, so a partial bin is not drawn as a drop; one it
/// covered less than a quarter of is left out (a rate over a sliver of
/// time is noise).
pub fn per_bin_rate(counts: &[u64], width_s: f64, end_s: f64) -> Vec<(f64, f64)> {
    let last = counts.len().saturating_sub(1);
    counts
        .iter()
        .enumerate()
        .filter_map(|(bin, count)| {
            let start = bin as f64 * width_s;
            let covered = if bin == last {
                (end_s - start).min(width_s)
            } else {
                width_s
            };
            (covered >= width_s * 0.25).then(|| (start + covered / 2.0, *count as f64 / covered))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partial last bin is drawn to its width; a sliver is left out.
    #[test]
    fn a_partial_last_bin_is_no_drop() {
        let points = per_bin_rate(&[10, 10, 10, 5], 0.1, 0.35);
        assert_eq!(points.len(), 4);
        assert!((points[3].1 - 100.0).abs() < 1e-9, "{points:?}");
        assert!((points[3].0 - 0.325).abs() < 1e-9);
        let sliver = per_bin_rate(&[10, 10, 1], 0.1, 0.21);
        assert_eq!(sliver.len(), 2);
    }
}
