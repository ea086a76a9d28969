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
}

/// One line of a chart.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Draw in the colour of an earlier line (an interval's second edge).
    pub same_colour_as_previous: bool,
}

impl Line {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            dashed: false,
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

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
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
