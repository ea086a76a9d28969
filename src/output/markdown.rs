//! `--markdown`: the summary a person reads on the CI page — the verdict and
//! its reason first, then one row per check, the classes, and the throttle
//! or canary findings. With `GITHUB_STEP_SUMMARY` set, it is also appended
//! to the job summary.
use std::fmt::Write as _;

use anyhow::Result;

use super::markup::{document, Align, Markup};
use super::Format;
use crate::report::{Report, Verdict};

pub struct Markdown;

/// Escapes text for a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::Inconclusive => "⚠️ INCONCLUSIVE",
        Verdict::Error => "⛔ ERROR",
    }
}

impl Markup for Markdown {
    fn text(&self, text: &str) -> String {
        cell(text)
    }

    fn code(&self, text: &str) -> String {
        format!("`{text}`")
    }

    fn strong(&self, text: &str) -> String {
        format!("**{}**", cell(text))
    }

    fn verdict(&self, verdict: Verdict) -> String {
        mark(verdict).to_string()
    }

    fn heading(&self, out: &mut String, level: usize, title: &str, report: &Report) {
        let hashes = "#".repeat(level);
        let _ = writeln!(out, "{hashes} {title}: {}\n", mark(report.verdict));
        let _ = writeln!(
            out,
            "**{}** (exit {})\n",
            cell(&report.reason),
            report.exit_code
        );
    }

    fn paragraph(&self, out: &mut String, text: &str) {
        let _ = writeln!(out, "{text}\n");
    }

    fn table(&self, out: &mut String, columns: &[(&str, Align)], rows: &[Vec<String>]) {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let rules: Vec<&str> = columns
            .iter()
            .map(|(_, align)| match align {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        let _ = writeln!(out, "| {} |\n|{}|", names.join(" | "), rules.join("|"));
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let _ = writeln!(out);
    }

    fn list(&self, out: &mut String, items: &[String]) {
        for item in items {
            let _ = writeln!(out, "- {item}");
        }
        if !items.is_empty() {
            let _ = writeln!(out);
        }
    }
}

pub fn render(report: &Report) -> String {
    // Markdown draws no figures, so nothing in its traversal can fail.
    document(&Markdown, report).unwrap_or_default()
}

impl Format for Markdown {
    fn flag(&self) -> &'static str {
        "--markdown"
    }

    fn help(&self) -> &'static str {
        "Write a Markdown summary to FILE; also appended to $GITHUB_STEP_SUMMARY when set"
    }

    fn extension(&self) -> &'static str {
        "md"
    }

    fn media_type(&self) -> &'static str {
        "text/markdown; charset=utf-8"
    }

    fn append_to_env(&self) -> Option<&'static str> {
        Some("GITHUB_STEP_SUMMARY")
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        Ok(render(report).into_bytes())
    }
}
