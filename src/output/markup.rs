//! One traversal of a report for the markup formats (Markdown, HTML), as
//! hyperfine's `MarkupExporter` does it: [`document`] decides what is shown
//! and in which order — the verdict, the run, the checks, the throttle
//! findings, the classes, the figures, each step of a scenario — and each
//! format says only how a heading, a paragraph, a table or a list is written.
//! The terminal summary (`text.rs`, fixed-width columns) and the data formats
//! (JSON, JUnit) have their own shapes.
use anyhow::Result;

use crate::report::analysis::Analysis;
pub use crate::report::markup::{Align, Markup};
use crate::report::Report;

/// The whole document: one report, or a scenario's steps after a table of them.
pub fn document(markup: &impl Markup, report: &Report) -> Result<String> {
    document_with(crate::report::analysis::ALL, markup, report)
}

/// [`document`], with the sections of the analyses in `list`.
pub fn document_with(
    list: &[&'static dyn Analysis],
    markup: &impl Markup,
    report: &Report,
) -> Result<String> {
    let mut out = String::new();
    markup.begin(&mut out, report);
    let remedy = crate::report::run_remedy(report);
    if report.steps.is_empty() {
        let title = format!("gateprobe {}", report.command);
        section(list, markup, &mut out, report, &title, 2)?;
    } else {
        markup.heading(&mut out, 2, "gateprobe run", report);
        if let Some(remedy) = &remedy {
            markup.paragraph(
                &mut out,
                &format!("{} {}", markup.strong("To decide"), markup.text(remedy)),
            );
        }
        let rows: Vec<Vec<String>> = report
            .steps
            .iter()
            .map(|step| {
                vec![
                    markup.text(&step.name),
                    markup.text(&step.report.command),
                    markup.verdict(step.report.verdict),
                    markup.text(&step.report.reason),
                ]
            })
            .collect();
        let left = Align::Left;
        let columns = [
            ("step", left),
            ("kind", left),
            ("verdict", left),
            ("reason", left),
        ];
        markup.table(&mut out, &columns, &rows);
        for step in &report.steps {
            let title = format!("step {}", step.name);
            section(list, markup, &mut out, &step.report, &title, 3)?;
        }
    }
    markup.end(&mut out);
    Ok(out)
}

/// One report's body under a heading of `level`.
fn section(
    list: &[&'static dyn Analysis],
    markup: &impl Markup,
    out: &mut String,
    report: &Report,
    title: &str,
    level: usize,
) -> Result<()> {
    markup.heading(out, level, title, report);
    let run = &report.run;
    markup.paragraph(
        out,
        &format!(
            "{} · {}",
            markup.code(&format!("{} {}", run.method, run.target)),
            markup.text(&run.summary())
        ),
    );
    if !report.checks.is_empty() {
        let rows: Vec<Vec<String>> = report
            .checks
            .iter()
            .map(|check| {
                vec![
                    markup.verdict(check.verdict),
                    markup.text(&check.name),
                    markup.text(&check.reason),
                ]
            })
            .collect();
        let left = Align::Left;
        let columns = [("verdict", left), ("check", left), ("reason", left)];
        markup.table(out, &columns, &rows);
        let remedies: Vec<String> = report
            .checks
            .iter()
            .filter_map(|check| {
                let remedy = crate::report::remedy(check, report)?;
                Some(format!(
                    "{} to decide: {}",
                    markup.strong(&check.name),
                    markup.text(&remedy)
                ))
            })
            .collect();
        markup.list(out, &remedies);
    }
    for analysis in list {
        analysis.markup(markup, report, out);
    }
    classes(markup, out, report);
    markup.figures(out, report)
}

/// One row per class with responses.
fn classes(markup: &impl Markup, out: &mut String, report: &Report) {
    let ms = |value: Option<f64>| value.map_or("-".to_string(), |ms| format!("{ms:.2}"));
    let rows: Vec<Vec<String>> = report
        .classes
        .iter()
        .filter(|(_, class)| class.count > 0)
        .map(|(name, class)| {
            let latency = class.latency_ms.as_ref();
            let statuses: Vec<String> = class
                .statuses
                .iter()
                .map(|(status, count)| format!("{status}×{count}"))
                .collect();
            vec![
                markup.class_name(name),
                class.count.to_string(),
                format!("{:.2}%", class.share * 100.0),
                ms(latency.map(|p| p.p50)),
                ms(latency.map(|p| p.p99)),
                ms(latency.map(|p| p.max)),
                statuses.join(" "),
            ]
        })
        .collect();
    let (left, right) = (Align::Left, Align::Right);
    let columns = [
        ("class", left),
        ("count", right),
        ("share", right),
        ("p50 ms", right),
        ("p99 ms", right),
        ("max ms", right),
        ("statuses", left),
    ];
    markup.table(out, &columns, &rows);
}
