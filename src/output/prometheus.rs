//! `--prometheus`: the run in the Prometheus text exposition format (0.0.4),
//! for node_exporter's textfile collector or a Pushgateway. It holds the
//! requests by class and status, the transport errors by kind, one latency
//! histogram per class whose buckets are read off the exact recorder, one
//! state-set gauge per check (its verdict) with its interval and sample,
//! and the run's verdict. Every series carries the run's labels: `target`
//! (secrets redacted, as everywhere), `stage` (an API Gateway stage, when
//! the URL names one), `shard` (`I/N`, or `merged`) and, for a scenario's
//! steps, `step`. Written by hand: it is a few lines of a fixed text
//! format, and the Prometheus client crates are registries for a live
//! process, not a writer of one finished run.
use std::fmt::Write as _;

use anyhow::Result;

use super::Format;
use crate::record::histogram_from_base64;
use crate::report::{Report, Verdict};

pub struct Prometheus;

/// Escapes a label value (backslash, double quote, line feed).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// A float as Prometheus reads it (`+Inf`, `NaN`, shortest round trip).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{value}")
    }
}

/// The stage of an API Gateway URL (`https://ID.execute-api.REGION.amazonaws.com/STAGE/…`).
fn stage(target: &str) -> Option<&str> {
    let rest = target.split_once("://")?.1;
    let (host, path) = rest.split_once('/')?;
    if !host.contains(".execute-api.") {
        return None;
    }
    path.split(['/', '?']).next().filter(|s| !s.is_empty())
}

/// The families being written. A family's samples must be contiguous in
/// the text format, and a scenario's steps add to every family, so each
/// family keeps its own text until the end.
struct Writer {
    /// (name, `# HELP`/`# TYPE` lines and samples), in first-seen order.
    families: Vec<(&'static str, String)>,
    /// The family samples go to.
    current: usize,
    /// `target="…",stage="…",shard="…"` (and `step`), already escaped.
    labels: String,
}

impl Writer {
    fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        if let Some(index) = self.families.iter().position(|(known, _)| *known == name) {
            self.current = index;
            return;
        }
        self.current = self.families.len();
        let header = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        self.families.push((name, header));
    }

    fn sample(&mut self, name: &str, extra: &[(&str, &str)], value: f64) {
        let out = &mut self.families[self.current].1;
        let _ = write!(out, "{name}{{{}", self.labels);
        for (key, label) in extra {
            let _ = write!(out, ",{key}=\"{}\"", escape(label));
        }
        let _ = writeln!(out, "}} {}", number(value));
    }
}

fn run_labels(report: &Report, step: Option<&str>) -> String {
    let mut labels = format!("target=\"{}\"", escape(&report.run.target));
    if let Some(stage) = stage(&report.run.target) {
        let _ = write!(labels, ",stage=\"{}\"", escape(stage));
    }
    let shard = match &report.shard {
        Some(shard) if !shard.merged.is_empty() => "merged".to_string(),
        Some(shard) => format!("{}/{}", shard.index, shard.count),
        None => "0/1".to_string(),
    };
    let _ = write!(labels, ",shard=\"{shard}\"");
    if let Some(step) = step {
        let _ = write!(labels, ",step=\"{}\"", escape(step));
    }
    labels
}

/// Every families' samples of one report (a whole run or one step).
/// Long because it is the list of families, one short block each, in the
/// order a reader of the file meets them.
fn write_report(writer: &mut Writer, report: &Report) {
    writer.family(
        "gateprobe_run_verdict",
        "gauge",
        "The run's verdict: 1 for the verdict it reached, 0 for the others.",
    );
    state_set(writer, "gateprobe_run_verdict", &[], report.verdict);
    writer.family(
        "gateprobe_run_exit_code",
        "gauge",
        "The exit code the run's verdict gives.",
    );
    writer.sample("gateprobe_run_exit_code", &[], f64::from(report.exit_code));
    writer.family(
        "gateprobe_run_started_timestamp_seconds",
        "gauge",
        "When the run started (Unix time).",
    );
    let started = report.run.started_unix_ms as f64 / 1000.0;
    writer.sample("gateprobe_run_started_timestamp_seconds", &[], started);
    writer.family(
        "gateprobe_run_duration_seconds",
        "gauge",
        "How long the run sent for.",
    );
    writer.sample("gateprobe_run_duration_seconds", &[], report.run.duration_s);
    writer.family(
        "gateprobe_requests_total",
        "counter",
        "Requests by what became of them: due, sent, completed, dropped (never sent), aborted (no answer by the end), late (sent over 10 ms behind schedule).",
    );
    let run = &report.run;
    for (outcome, count) in [
        ("due", run.requests_due),
        ("sent", run.requests_sent),
        ("completed", run.requests_completed),
        ("dropped", run.dropped),
        ("aborted", run.aborted),
        ("late", run.late),
    ] {
        writer.sample(
            "gateprobe_requests_total",
            &[("outcome", outcome)],
            count as f64,
        );
    }
    writer.family(
        "gateprobe_responses_total",
        "counter",
        "Responses by the class that served them and their HTTP status.",
    );
    for (class, section) in &report.classes {
        for (status, count) in &section.statuses {
            let labels = [("class", class.as_str()), ("status", status.as_str())];
            writer.sample("gateprobe_responses_total", &labels, *count as f64);
        }
    }
    writer.family(
        "gateprobe_errors_total",
        "counter",
        "Transport errors (no HTTP response) by kind.",
    );
    for (kind, count) in &report.errors {
        writer.sample("gateprobe_errors_total", &[("kind", kind)], *count as f64);
    }
    writer.family(
        "gateprobe_latency_seconds",
        "histogram",
        "Latency from each request's due time, by class; buckets, count and sum are read off the run's HdrHistogram (3 significant digits).",
    );
    for (class, section) in &report.classes {
        let Ok(histogram) = histogram_from_base64(&section.histograms.latency_us) else {
            continue;
        };
        if histogram.is_empty() {
            continue;
        }
        // Powers of two from 1 ms, up to the first bucket holding every
        // value: each count is exact in the recorder's own buckets.
        let mut cumulative = 0;
        let mut sum_us = 0.0;
        for value in histogram.iter_recorded() {
            sum_us += histogram.median_equivalent(value.value_iterated_to()) as f64
                * value.count_at_value() as f64;
        }
        for step in histogram.iter_log(1000, 2.0) {
            cumulative += step.count_since_last_iteration();
            let le = number(step.value_iterated_to() as f64 / 1e6);
            let labels = [("class", class.as_str()), ("le", le.as_str())];
            writer.sample(
                "gateprobe_latency_seconds_bucket",
                &labels,
                cumulative as f64,
            );
        }
        let total = histogram.len() as f64;
        let labels = [("class", class.as_str()), ("le", "+Inf")];
        writer.sample("gateprobe_latency_seconds_bucket", &labels, total);
        writer.sample(
            "gateprobe_latency_seconds_sum",
            &[("class", class)],
            sum_us / 1e6,
        );
        writer.sample(
            "gateprobe_latency_seconds_count",
            &[("class", class)],
            total,
        );
    }
    write_checks(writer, report);
}

/// One state set per check (its verdict), and its interval and sample.
/// The writer keeps each family's lines together, so one pass per check
/// writes them all.
fn write_checks(writer: &mut Writer, report: &Report) {
    for check in &report.checks {
        writer.family(
            "gateprobe_check_verdict",
            "gauge",
            "Each check's verdict: 1 for the verdict it reached, 0 for the others.",
        );
        let labels = [
            ("check", check.name.as_str()),
            ("kind", check.kind.as_str()),
        ];
        state_set(writer, "gateprobe_check_verdict", &labels, check.verdict);
        let name = [("check", check.name.as_str())];
        let interval = check.interval.as_ref();
        let gauges = [
            (
                "gateprobe_check_interval_low",
                "The low end of the check's interval, in the check's unit.",
                interval.map(|i| i.low),
            ),
            (
                "gateprobe_check_interval_high",
                "The high end of the check's interval, in the check's unit.",
                interval.map(|i| i.high),
            ),
            (
                "gateprobe_check_interval_confidence",
                "The interval's confidence level.",
                interval.map(|i| i.confidence),
            ),
            (
                "gateprobe_check_used_samples",
                "Responses the check decided on.",
                check.used.map(|n| n as f64),
            ),
            (
                "gateprobe_check_planned_samples",
                "Responses the check's plan allowed.",
                check.planned.map(|n| n as f64),
            ),
        ];
        for (family, help, value) in gauges {
            writer.family(family, "gauge", help);
            if let Some(value) = value {
                writer.sample(family, &name, value);
            }
        }
    }
}

/// A verdict as a state set: 1 for the one reached, 0 for the others.
fn state_set(writer: &mut Writer, name: &str, labels: &[(&str, &str)], reached: Verdict) {
    for verdict in [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Inconclusive,
        Verdict::Error,
    ] {
        let mut all = labels.to_vec();
        all.push(("verdict", verdict.as_str()));
        writer.sample(name, &all, f64::from(u8::from(reached == verdict)));
    }
}

pub fn render(report: &Report) -> String {
    let mut writer = Writer {
        families: Vec::new(),
        current: 0,
        labels: run_labels(report, None),
    };
    write_report(&mut writer, report);
    for step in &report.steps {
        writer.labels = run_labels(&step.report, Some(&step.name));
        write_report(&mut writer, &step.report);
    }
    // A family with no samples (no check has an interval) is left out.
    writer
        .families
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 2)
        .map(|(_, text)| text)
        .collect()
}

impl Format for Prometheus {
    fn flag(&self) -> &'static str {
        "--prometheus"
    }

    fn help(&self) -> &'static str {
        "Write the run's metrics in Prometheus text format to FILE (node_exporter textfile collector, Pushgateway)"
    }

    fn extension(&self) -> &'static str {
        "prom"
    }

    fn media_type(&self) -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        Ok(render(report).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_escape_and_stages_come_from_api_gateway_urls() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let url = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/orders?x=1";
        assert_eq!(stage(url), Some("prod"));
        assert_eq!(stage("http://127.0.0.1:8080/prod/orders"), None);
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.25), "0.25");
    }
}
