//! `gateprobe merge`: the reports of a run's shards become the run's report.
//! Counts, exact histograms and per-second series add up ([`Recorder`]'s
//! merge, on the common clock `--start-at` gives); every analysis is then
//! computed again on the merged data by the function that made it live, at
//! the run's fixed size (a shard never stops early on its own evidence).
use std::collections::BTreeMap;

use crate::engine::{EndReason, RunInfo};
use crate::exit::UsageError;
use crate::record::Recorder;
use crate::report::analysis::{owner, Analysis, Merging};
use crate::report::{fingerprint, plan_facts, recorded_with, Report, ShardSection};

/// One input: how to name it (its path) and the report it holds.
pub struct Input<'a> {
    pub shown: &'a str,
    pub report: &'a Report,
}

/// Which shards a set of inputs holds, of how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub count: u64,
    pub held: Vec<u64>,
    pub missing: Vec<u64>,
}

fn bad<T>(message: String) -> Result<T, UsageError> {
    Err(UsageError(message))
}

/// The shard identity of a report: a whole run is shard 0 of 1.
fn identity(report: &Report) -> (u64, u64) {
    report
        .shard
        .as_ref()
        .map_or((0, 1), |shard| (shard.index, shard.count))
}

/// The shards a report holds: its own, or a merged report's.
fn holds(report: &Report) -> Vec<u64> {
    match &report.shard {
        Some(shard) if !shard.merged.is_empty() => shard.merged.clone(),
        _ => vec![identity(report).0],
    }
}

fn named(input: &Input<'_>) -> String {
    let (index, count) = identity(input.report);
    match input.report.shard.as_ref().map(|s| s.merged.len()) {
        Some(merged) if merged > 1 => format!(
            "{} (shards {:?} of {count})",
            input.shown,
            holds(input.report)
        ),
        _ => format!("{} (shard {index}/{count})", input.shown),
    }
}

/// Checks that the inputs are shards of one run, none twice and (unless
/// `allow_partial`) none missing; one message naming the difference.
pub fn check_shards(inputs: &[Input<'_>], allow_partial: bool) -> Result<Coverage, UsageError> {
    let Some(first) = inputs.first() else {
        return bad("merge: no report given".to_string());
    };
    if let Some(input) = inputs.iter().find(|i| i.report.command == "throttle") {
        return bad(format!(
            "{}: a throttle report cannot be merged: a throttle probe is never sharded",
            input.shown
        ));
    }
    let facts = plan_facts(first.report);
    let (_, count) = identity(first.report);
    let mut owner: BTreeMap<u64, &str> = BTreeMap::new();
    for input in inputs {
        if let Some(shard) = &input.report.shard {
            let again = fingerprint(input.report);
            if !shard.fingerprint.is_empty() && shard.fingerprint != again {
                return bad(format!(
                    "{}: its plan fingerprint {} does not match its own plan facts ({again}): the report was edited",
                    input.shown, shard.fingerprint
                ));
            }
        }
        let theirs = plan_facts(input.report);
        if let Some(((name, mine), (_, other))) =
            facts.iter().zip(&theirs).find(|((_, a), (_, b))| a != b)
        {
            return bad(format!(
                "{} and {} are not shards of one run: {name} differs ('{}' and '{}')",
                named(first),
                named(input),
                crate::console::escape_controls(mine),
                crate::console::escape_controls(other)
            ));
        }
        if fingerprint(input.report) != fingerprint(first.report) {
            return bad(format!(
                "{} and {} are not shards of one run: their steps differ",
                named(first),
                named(input)
            ));
        }
        for index in holds(input.report) {
            if let Some(before) = owner.insert(index, input.shown) {
                return bad(format!(
                    "shard {index}/{count} is given twice: {before} and {}",
                    input.shown
                ));
            }
        }
    }
    relative_starts_agree(inputs)?;
    let held: Vec<u64> = owner.keys().copied().collect();
    let missing: Vec<u64> = (0..count).filter(|i| !owner.contains_key(i)).collect();
    if !missing.is_empty() && !allow_partial {
        let list: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
        return bad(format!(
            "{} of {count} shards given: missing {} (merge what there is with --allow-partial)",
            held.len(),
            list.join(", ")
        ));
    }
    Ok(Coverage {
        count,
        held,
        missing,
    })
}

/// Shards given one relative `--start-at +D` resolve it on their own
/// clocks, so their starts may differ by when each was started: up to D
/// apart they are one run (the merge lines their series up by whole
/// seconds and says how far apart they began); further apart they are not.
fn relative_starts_agree(inputs: &[Input<'_>]) -> Result<(), UsageError> {
    let relative = inputs[0]
        .report
        .shard
        .as_ref()
        .and_then(|shard| shard.start_at_relative.as_deref());
    let Some(relative) = relative else {
        return Ok(());
    };
    let allowed_ms = crate::units::parse_duration_or_zero(relative.trim_start_matches('+'))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let starts: Vec<u64> = inputs
        .iter()
        .map(|i| i.report.run.started_unix_ms)
        .collect();
    let (earliest, latest) = (
        starts.iter().min().copied().unwrap_or(0),
        starts.iter().max().copied().unwrap_or(0),
    );
    let apart_ms = (latest - earliest) as f64;
    if apart_ms > allowed_ms.max(1000.0) {
        return bad(format!(
            "not shards of one run: they began {:.1} s apart, more than the --start-at {relative} they were given allows (start them within {relative} of each other, or give them one absolute --start-at)",
            apart_ms / 1000.0
        ));
    }
    Ok(())
}

/// How far after the earliest each shard began, by shard ("3/4" → ms):
/// shards given a relative start resolve it on their own clocks.
fn start_offsets(inputs: &[Input<'_>]) -> indexmap::IndexMap<String, f64> {
    let earliest = inputs
        .iter()
        .map(|input| input.report.run.started_unix_ms)
        .min()
        .unwrap_or(0);
    inputs
        .iter()
        .filter(|input| input.report.run.started_unix_ms > earliest)
        .map(|input| {
            let (index, count) = identity(input.report);
            (
                format!("{index}/{count}"),
                (input.report.run.started_unix_ms - earliest) as f64,
            )
        })
        .collect()
}

/// Merges the reports of one command (not a scenario: its steps merge one
/// by one) whose shards [`check_shards`] accepted: the recorded data added
/// up, then each analysis of `list` merges its checks.
pub fn merge_one(
    list: &[&'static dyn Analysis],
    inputs: &[Input<'_>],
    coverage: &Coverage,
) -> Result<Report, UsageError> {
    let first = inputs[0].report;
    let names: Vec<String> = match first.shard.as_ref().map(|s| &s.classes) {
        Some(classes) if !classes.is_empty() => classes.clone(),
        _ => {
            let mut names: Vec<String> = first.classes.keys().cloned().collect();
            if !names.iter().any(|n| n == crate::classify::UNMATCHED) {
                names.push(crate::classify::UNMATCHED.to_string());
            }
            names
        }
    };
    let (recorder, info, end_reason) = add_up(inputs, &names)?;
    let mut merged = first.clone();
    merged.measured(&recorder, &info);
    merged.run.end_reason = end_reason;
    if let Some(shard) = &first.shard {
        merged.run.load = shard.load.clone();
        merged.run.concurrency = shard.concurrency;
    }
    if let Some(check) = first
        .checks
        .iter()
        .find(|check| owner(list, &check.kind).is_none())
    {
        return bad(format!(
            "check '{}': of a kind ({}) no analysis of this build makes, so it cannot be computed again on merged shards",
            check.name, check.kind
        ));
    }
    merged.checks.clear();
    let merging = Merging {
        inputs,
        recorder: &recorder,
        info: &info,
    };
    let mut decided = false;
    for analysis in list {
        decided |= analysis.merge(&merging, &mut merged).map_err(UsageError)?;
    }
    if !decided {
        merged.decide_by_checks();
    }
    // The merged send-lag histogram (set by `measured`) is kept: the
    // first shard's own was saved here before, beside merged percentiles.
    merged.shard = merged.shard.take().map(|shard| ShardSection {
        merged: coverage.held.clone(),
        missing: coverage.missing.clone(),
        start_late_ms: info.start_late_ms.map(crate::units::round2),
        ..shard
    });
    say_how_merged(&mut merged, inputs, coverage);
    shard_rates(&mut merged, inputs);
    Ok(merged)
}

/// Each shard's sent series on the merged timeline's clock and bins, so
/// that the report draws each shard's rate beside the merged one.
/// One input merged alone is the identity: it gets none.
fn shard_rates(merged: &mut Report, inputs: &[Input<'_>]) {
    let Some(timeline) = merged.series.timeline.as_mut().filter(|_| inputs.len() > 1) else {
        return;
    };
    let width_us = (timeline.width_s * 1e6).round() as u64;
    let base_ms = inputs
        .iter()
        .map(|i| i.report.run.started_unix_ms)
        .min()
        .unwrap_or(0);
    for input in inputs {
        let (Some(saved), Some(shard)) = (&input.report.series.timeline, &input.report.shard)
        else {
            continue;
        };
        let offset_s = (input.report.run.started_unix_ms - base_ms) as f64 / 1000.0;
        let offset_us = offset_s.round() as u64 * 1_000_000;
        let from_us = (saved.width_s * 1e6).round() as u64;
        let rebin =
            |sent: &[u64]| crate::record::timeline::rebin(sent, from_us, width_us, offset_us);
        if saved.shards.is_empty() {
            let label = format!("{}/{}", shard.index, shard.count);
            timeline.shards.insert(label, rebin(&saved.sent));
        } else {
            // A merged report merged again: its shards' own rates, so that
            // merging stays associative.
            for (label, sent) in &saved.shards {
                timeline.shards.insert(label.clone(), rebin(sent));
            }
        }
    }
}

/// Adds to the merged reason what a reader must know of how the shards
/// came together: shards that began later (a relative `--start-at`) and
/// shards missing from a partial merge.
fn say_how_merged(merged: &mut Report, inputs: &[Input<'_>], coverage: &Coverage) {
    let offsets = start_offsets(inputs);
    if !offsets.is_empty() {
        let said: Vec<String> = offsets
            .iter()
            .map(|(shard, ms)| {
                format!(
                    "shard {shard} began {:.1} s after the earliest",
                    ms / 1000.0
                )
            })
            .collect();
        merged.reason = format!(
            "{} ({}: a relative --start-at resolved on each shard's own clock; the series are lined up on the wall clock)",
            merged.reason,
            said.join(", ")
        );
    }
    if let Some(shard) = &mut merged.shard {
        shard.began_after_ms = offsets;
    }
    if !coverage.missing.is_empty() {
        merged.reason = format!(
            "{} (partial: {} of {} shards merged)",
            merged.reason,
            coverage.held.len(),
            coverage.count
        );
    }
}

/// The inputs' recorded data added up on the earliest one's clock, their
/// run facts combined, and the worst ending's reason.
fn add_up(
    inputs: &[Input<'_>],
    names: &[String],
) -> Result<(Recorder, RunInfo, Option<String>), UsageError> {
    // Earliest first: the others' series shift later onto its clock, and
    // its recorder (as saved) is the one added to, so that one shard
    // merged alone re-encodes exactly as saved.
    let mut order: Vec<&Input<'_>> = inputs.iter().collect();
    order.sort_by_key(|input| input.report.run.started_unix_ms);
    let base_ms = order[0].report.run.started_unix_ms;
    let mut recorder: Option<Recorder> = None;
    let mut info = RunInfo {
        started_unix_ms: base_ms,
        window_s: 0.0,
        target_rate_per_s: Some(0.0),
        wall_s: 0.0,
        end: EndReason::Finished,
        start_late_ms: None,
    };
    let mut end_reason = None;
    for input in order {
        let (theirs, facts) = recorded_with(input.report, names)
            .map_err(|why| UsageError(format!("{}: {why}", input.shown)))?;
        let offset_s = (input.report.run.started_unix_ms - base_ms) as f64 / 1000.0;
        match &mut recorder {
            None => recorder = Some(theirs),
            Some(recorder) => recorder.merge_shifted(&theirs, offset_s.round() as usize),
        }
        info.window_s = info.window_s.max(offset_s + facts.window_s);
        info.wall_s = info.wall_s.max(offset_s + facts.wall_s);
        info.target_rate_per_s = match (info.target_rate_per_s, facts.target_rate_per_s) {
            (Some(sum), Some(rate)) => Some(sum + rate),
            _ => None,
        };
        info.start_late_ms = match (info.start_late_ms, facts.start_late_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // The worst ending stands: interrupted, then stopped, then finished.
        let rank = |end: &EndReason| match end {
            EndReason::Interrupted => 2,
            EndReason::Stopped(_) => 1,
            EndReason::Finished => 0,
        };
        if rank(&facts.end) > rank(&info.end) {
            info.end = facts.end;
            end_reason = input.report.run.end_reason.clone();
        }
    }
    Ok((recorder.expect("at least one input"), info, end_reason))
}
