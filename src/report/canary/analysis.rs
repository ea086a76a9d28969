//! The canary as one analysis: the split's share per variant, the
//! unclassified share, the split's independence and the health against
//! the baseline (errors, latency, drops). They are one analysis because
//! they are decided together: a finding of dependence voids the others, a
//! failed share voids the drops, and one plan sizes them all.
use crate::canary::split::{alpha_each, share_path, Expectation, SharePoint};
use crate::engine::RunInfo;
use crate::record::Recorder;
use crate::report::analysis::{Analysis, Live, Merging, Observed, Planned, Rechecked};
use crate::report::markup::{Figure, Line, Role, Stroke};
use crate::report::{Check, Report};

pub struct Canary;

/// Why a canary check cannot be recomputed from a saved report.
const SEQUENTIAL: &str = "sequential canary checks (decided at a request in the run's order, \
                          which a report does not hold)";
const PER_CONNECTION: &str = "split independence (per-connection counts are not in a report)";
const NO_LIMIT: &str = "unclassified share (saved before a report held its limit)";

impl Analysis for Canary {
    fn name(&self) -> &'static str {
        "canary"
    }

    fn owns(&self, kind: &str) -> bool {
        kind.starts_with("split.") || kind.starts_with("health.")
    }

    fn describe(&self, planned: Planned<'_>) -> Vec<String> {
        match planned {
            Planned::Canary(plan) => plan.describe(),
            _ => Vec::new(),
        }
    }

    fn decide(&self, live: &mut Live<'_, '_>, report: &mut Report) {
        if let (Planned::Canary(plan), Observed::Canary(watch)) = (live.planned, &mut live.observed)
        {
            super::decide_live(plan, watch, live.info, report);
        }
    }

    /// A merged canary's checks were decided once, at the run's fixed
    /// size, on the counts and latency blocks the report holds: they are
    /// decided again so. A live run's share and health checks were decided
    /// at a request in the run's order, which a report does not hold.
    fn recheck(&self, saved: &Report, _: &Recorder, info: &RunInfo, check: &Check) -> Rechecked {
        let Some(canary) = &saved.canary else {
            return Err("a canary check but no canary section".into());
        };
        let merged = saved
            .shard
            .as_ref()
            .is_some_and(|shard| !shard.merged.is_empty());
        if merged {
            let mut again = saved.clone();
            super::merged(&mut again, &[(canary, &saved.checks[..])], &info.end)?;
            return again
                .checks
                .into_iter()
                .find(|again| again.name == check.name && again.kind == check.kind)
                .map(Ok)
                .ok_or_else(|| "not one a merged canary makes".to_string());
        }
        Ok(match check.kind.as_str() {
            "split.unclassified" => match canary.max_unclassified {
                Some(max_share) => Ok(crate::canary::split::unclassified_check(
                    canary.unclassified,
                    canary.classified + canary.unclassified,
                    max_share,
                )),
                // Saved before the section held the limit.
                None => Err(NO_LIMIT),
            },
            "split.independence" => Err(PER_CONNECTION),
            _ => Err(SEQUENTIAL),
        })
    }

    /// The shards' sections are added up and every check decided once on
    /// them (see [`super::merged`]).
    fn merge(&self, merging: &Merging<'_>, merged: &mut Report) -> Result<bool, String> {
        if merging.first().canary.is_none() {
            return Ok(false);
        }
        let shards = merging
            .inputs
            .iter()
            .map(|input| match &input.report.canary {
                Some(section) => Ok((section, &input.report.checks[..])),
                None => Err(format!(
                    "{}: a canary shard without its canary section",
                    input.shown
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        super::merged(merged, &shards, &merging.info.end)
            .map_err(|why| format!("{}: {why}", merging.inputs[0].shown))?;
        Ok(true)
    }

    fn consistent(&self, report: &Report, at: &str) -> Result<(), String> {
        match &report.canary {
            Some(canary) => super::consistency::consistent(report, canary, &format!("{at}canary.")),
            None => Ok(()),
        }
    }

    fn plan_facts(&self, report: &Report) -> Vec<(&'static str, String)> {
        let Some(canary) = &report.canary else {
            return Vec::new();
        };
        let facts = serde_json::json!({
            "expect": canary.expect, "tolerance": canary.tolerance,
            "baseline": canary.baseline, "alpha": canary.alpha, "power": canary.power,
            "max_unclassified": canary.max_unclassified,
            "planned_requests": canary.initial_planned_requests,
        });
        vec![("canary", facts.to_string())]
    }

    fn figures(&self, report: &Report) -> Vec<Figure> {
        share_figure(report).into_iter().collect()
    }
}

/// The canary share over time: cumulative share per variant, the expected
/// band and the running confidence sequence ([`share_path`]), at the
/// timeline's bins (per second in reports of earlier versions).
/// Long because it draws five lines for each tested variant (share,
/// sequence's two edges, band's two edges) from either kind of series.
fn share_figure(report: &Report) -> Option<Figure> {
    let canary = report.canary.as_ref()?;
    let variants: Vec<&String> = canary.expect.keys().collect();
    let (width, counts): (f64, Vec<(&String, &Vec<u64>)>) = match &report.series.timeline {
        Some(timeline) => (
            timeline.width_s,
            variants
                .iter()
                .filter_map(|name| Some((*name, &timeline.classes.get(*name)?.answered)))
                .collect(),
        ),
        None => (
            1.0,
            variants
                .iter()
                .filter_map(|name| Some((*name, report.series.completed.get(*name)?)))
                .collect(),
        ),
    };
    let length = counts
        .iter()
        .map(|(_, series)| series.len())
        .max()
        .unwrap_or(0);
    let totals: Vec<u64> = (0..length)
        .map(|bin| {
            counts
                .iter()
                .map(|(_, series)| series.get(bin).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let mut lines = Vec::new();
    let alpha = alpha_each(canary.alpha, canary.tolerance.len()).clamp(1e-9, 0.5);
    let confidence = 1.0 - alpha;
    for (name, tolerance) in &canary.tolerance {
        let series = counts
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, s)| *s);
        let (Some(series), Some(share)) = (series, canary.expect.get(name)) else {
            continue;
        };
        let expectation = Expectation {
            share: share.clamp(0.0, 1.0),
            tolerance: tolerance.clamp(1e-3, 1.0 - 1e-3),
        };
        let path = share_path(&expectation, alpha, series, &totals);
        let at = |value: fn(&SharePoint) -> f64| -> Vec<(f64, f64)> {
            path.iter()
                .map(|p| (p.second * width, 100.0 * value(p)))
                .collect()
        };
        let (share, low, high) = (at(|p| p.share), at(|p| p.low), at(|p| p.high));
        let end = share.last().map_or(1.0, |p| p.0);
        let level = format!("{:.0}%", confidence * 100.0);
        lines.push(Line::new(format!("{name} share"), share).class(name));
        lines.push(
            Line::new(format!("{name} {level} confidence sequence"), low)
                .class(name)
                .dashed(),
        );
        lines.push(Line::edge_of_previous(high).dashed());
        let (low, high) = expectation.band();
        let flat = |value: f64| vec![(0.0, 100.0 * value), (end, 100.0 * value)];
        lines.push(
            Line::new(format!("{name} expected band"), flat(low))
                .role(Role::Model)
                .stroke(Stroke::Dotted),
        );
        lines.push(Line::edge_of_previous(flat(high)).stroke(Stroke::Dotted));
    }
    (!lines.is_empty()).then(|| {
        Figure::new(
            "Canary share of the variants' responses over time, with its confidence sequence and the expected band",
            "seconds",
            "share %",
            lines,
        )
    })
}
