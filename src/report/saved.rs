//! A saved report read back: checked against itself, turned back into the
//! recorder it came from, and its checks recomputed from its data.
use super::analysis::{Analysis, Rechecked};
use super::{Check, Report, SCHEMA};
use anyhow::Result;

use crate::engine::{EndReason, RunInfo};
use crate::record::Recorder;
use crate::sample::{ErrorDetail, ErrorKind};

/// Parses a saved report (`shown` names it in messages) and checks it as
/// input: any error is a usage error (exit 2), never a panic.
pub fn read_saved(shown: &str, text: &str) -> Result<Report, crate::exit::UsageError> {
    let report: Report = crate::json::parse_json(shown, text)
        .map_err(|why| crate::exit::UsageError(format!("not a gateprobe report: {why}")))?;
    check_saved(shown, &report)?;
    Ok(report)
}

/// A saved report is input: its schema and exit codes, and its fields'
/// agreement with each other ([`consistency`]).
fn check_saved(shown: &str, report: &Report) -> Result<(), crate::exit::UsageError> {
    check_verdicts(shown, report)?;
    super::consistency::check(report)
        .map_err(|why| crate::exit::UsageError(format!("{shown}: {why}")))
}

/// A saved report's schema, and its exit code against its verdict (a file
/// whose `exit_code` says 7, or 0 beside `fail`, was edited and must not
/// open a gate), and the same of each step's.
fn check_verdicts(shown: &str, report: &Report) -> Result<(), crate::exit::UsageError> {
    if report.schema != SCHEMA {
        return Err(crate::exit::UsageError(format!(
            "{shown}: field 'schema': '{}', expected '{SCHEMA}'",
            crate::console::escape_controls(&report.schema)
        )));
    }
    if report.exit_code != report.verdict.exit_code() {
        return Err(crate::exit::UsageError(format!(
            "{shown}: field 'exit_code': {} does not match verdict '{}' (exit {}): the report was edited",
            report.exit_code,
            report.verdict.as_str(),
            report.verdict.exit_code()
        )));
    }
    for (index, step) in report.steps.iter().enumerate() {
        check_verdicts(&format!("{shown}: steps[{index}]"), &step.report)?;
    }
    Ok(())
}

/// A saved report's recorded data, rebuilt: the recorder (counts, errors,
/// statuses, exact histograms, series) and run facts that made it. Every
/// fixed-horizon analysis reads these, so it gives the same result on a
/// saved report as it gave live (and, later, on merged shards).
pub fn recorded(report: &Report) -> Result<(Recorder, RunInfo), String> {
    let mut names: Vec<String> = report.classes.keys().cloned().collect();
    if !names.iter().any(|name| name == crate::classify::UNMATCHED) {
        names.push(crate::classify::UNMATCHED.to_string());
    }
    recorded_with(report, &names)
}

/// [`recorded`] into a recorder of the classes `names` (a superset of the
/// report's, in the classifier's order: what shards of one run share).
pub fn recorded_with(report: &Report, names: &[String]) -> Result<(Recorder, RunInfo), String> {
    let mut recorder = Recorder::new(names);
    for (name, class) in &report.classes {
        let stats = names
            .iter()
            .position(|known| known == name)
            .map(|at| &mut recorder.classes[at])
            .ok_or_else(|| format!("class '{name}' is not one of the run's classes"))?;
        stats.count = class.count;
        stats.failed = class.failed;
        stats.bytes = class.bytes;
        for (status, count) in &class.statuses {
            let status = status
                .parse()
                .map_err(|_| format!("status '{status}' is not a number"))?;
            stats.statuses.insert(status, *count);
        }
        stats.latency_us = crate::record::histogram_from_base64(&class.histograms.latency_us)?;
        stats.service_us = crate::record::histogram_from_base64(&class.histograms.service_us)?;
    }
    for (kind, count) in &report.errors {
        if let Some(kind) = ErrorKind::parse(kind) {
            recorder.errors[kind.index()] = *count;
        }
    }
    for (name, count) in &report.error_details {
        if let Some(detail) = ErrorDetail::ALL.into_iter().find(|d| d.as_str() == name) {
            recorder.error_details[detail.index()] = *count;
        }
    }
    recorder.keys = report.api_keys.values().copied().collect();
    let run = &report.run;
    recorder.sent = run.requests_sent;
    recorder.dropped = run.dropped;
    recorder.aborted = run.aborted;
    recorder.late = run.late;
    if let Some(lag) = report
        .shard
        .as_ref()
        .and_then(|s| s.schedule_lag_us.as_deref())
    {
        recorder.send_lag_us = crate::record::histogram_from_base64(lag)?;
    }
    recorder.series.sent = report.series.sent.clone();
    recorder.series.dropped = report.series.dropped.clone();
    for (name, series) in names.iter().zip(recorder.series.completed.iter_mut()) {
        if let Some(saved) = report.series.completed.get(name) {
            series.clone_from(saved);
        }
    }
    if let Some(saved) = &report.series.timeline {
        recorder.timeline = crate::record::Timeline::load(saved, names)?;
    }
    let info = RunInfo {
        started_unix_ms: run.started_unix_ms,
        window_s: run.duration_s,
        target_rate_per_s: run.target_rate_per_s,
        wall_s: run.wall_s,
        end: match run.ended.as_str() {
            "interrupted" => EndReason::Interrupted,
            "stopped" => EndReason::Stopped(run.end_reason.clone().unwrap_or_default()),
            _ => EndReason::Finished,
        },
        start_late_ms: report.shard.as_ref().and_then(|shard| shard.start_late_ms),
    };
    Ok((recorder, info))
}

/// What `--recompute` found: checks recomputed from the recorded data (all
/// equal to the saved ones, or the first that is not), and the checks kept
/// as saved, by why (they need what a report does not hold).
#[derive(Debug, Default)]
pub struct Recomputed {
    pub same: usize,
    /// Why → how many checks were kept for that reason.
    pub kept: std::collections::BTreeMap<&'static str, usize>,
    pub differs: Option<String>,
}

/// Why a check is kept as saved when no analysis of this build makes it.
const NO_ANALYSIS: &str = "checks no analysis of this build makes";

/// One saved check rebuilt by the analysis that made it live, from the
/// saved recorded data; `Ok(Err(why))` when it needs data a report does
/// not hold.
pub fn check_again(
    list: &[&'static dyn Analysis],
    saved: &Report,
    recorder: &Recorder,
    info: &RunInfo,
    check: &Check,
) -> Rechecked {
    match super::analysis::owner(list, &check.kind) {
        Some(analysis) => analysis.recheck(saved, recorder, info, check),
        None => Ok(Err(NO_ANALYSIS)),
    }
}

/// Recomputes every fixed-horizon check of `report` (and of each step) from
/// its recorded data, each by its analysis in `list`, and compares each
/// with the saved one.
pub fn recompute(list: &[&'static dyn Analysis], report: &Report) -> Result<Recomputed, String> {
    let mut found = Recomputed::default();
    let reports: Vec<(String, &Report)> = if report.steps.is_empty() {
        vec![(String::new(), report)]
    } else {
        report
            .steps
            .iter()
            .map(|step| (format!("step {}: ", step.name), &step.report))
            .collect()
    };
    for (place, saved) in reports {
        let (recorder, info) = recorded(saved).map_err(|why| format!("{place}{why}"))?;
        for check in &saved.checks {
            let again = match check_again(list, saved, &recorder, &info, check)
                .map_err(|why| format!("{place}check '{}': {why}", check.name))?
            {
                Ok(again) => again,
                Err(why) => {
                    *found.kept.entry(why).or_default() += 1;
                    continue;
                }
            };
            let same = serde_json::to_value(&again).ok() == serde_json::to_value(check).ok();
            if same {
                found.same += 1;
            } else if found.differs.is_none() {
                found.differs = Some(format!(
                    "{place}check '{}' recomputes to {} ({}), saved {} ({})",
                    check.name,
                    again.verdict.as_str(),
                    again.reason,
                    check.verdict.as_str(),
                    check.reason
                ));
            }
        }
    }
    Ok(found)
}
