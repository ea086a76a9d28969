//! The canary's report: its checks (share, unclassified, independence,
//! health) and its section, from what the watch saw.
mod analysis;
mod consistency;
mod health_checks;

pub use analysis::Canary;

use health_checks::{health_checks, Compared};
use indexmap::IndexMap;
use serde_json::json;

use crate::canary::drops::{DropDesign, Drops};
use crate::canary::health;
use crate::canary::health::Block;
use crate::canary::latency::{once_bound, Bins, Decide, LatencyBounds};
use crate::canary::plan::*;
use crate::canary::split::{unclassified_check, Outcome, Rule, ShareTest};
use crate::canary::watch::{self, VariantHealth, Watch};
use crate::engine::EndReason;
use crate::engine::RunInfo;
use crate::report;
use crate::report::{CanaryMergeInputs, CanarySection, Check, Interval, Report, Verdict};

/// The canary's checks and section on a finished run, and its verdict.
fn decide_live(plan: &CanaryPlan, watch: &mut Watch<'_>, info: &RunInfo, report: &mut Report) {
    report.command = "canary".to_string();
    let dependence = watch.dependence.finding(plan.split.horizon());
    let mut checks = share_checks(plan, watch, dependence.is_some());
    checks.push(unclassified_check(
        watch.unattributable,
        watch.classified + watch.unattributable,
        plan.max_unclassified,
    ));
    checks.push(independence_check(watch, dependence.as_deref()));
    if plan.health.is_some() {
        let split_failed = split_failed(&checks);
        checks.extend(health_checks(
            plan,
            watch,
            dependence.is_some(),
            split_failed,
        ));
    }
    decide(report, checks, dependence.as_deref(), &info.end);
    report.canary = Some(canary_section(plan, watch));
}

/// The canary's one verdict rule: a finding of dependence voids every
/// other check; an interrupted run is inconclusive; otherwise the checks'
/// combined verdict (a run that could not measure stays so).
fn decide(report: &mut Report, checks: Vec<Check>, dependence: Option<&str>, end: &EndReason) {
    let (verdict, deciding) = report::combine(&checks);
    let deciding_reason = deciding.map(|check| format!("{}: {}", check.name, check.reason));
    match (end, report.verdict) {
        (_, Verdict::Error) => {}
        (EndReason::Interrupted, _) => {
            report.verdict = Verdict::Inconclusive;
            report.reason = format!(
                "interrupted before the checks were decided: partial results{}",
                deciding_reason
                    .map(|why| format!("; {why}"))
                    .unwrap_or_default()
            );
        }
        _ => {
            report.verdict = verdict;
            report.reason = match dependence {
                // The one finding that voids every other check: say it first.
                Some(finding) => format!(
                    "split independence: {finding}; the checks assume a random split per request, so no verdict is given"
                ),
                None => deciding_reason
                    .unwrap_or_else(|| format!("all {} checks passed", checks.len())),
            };
        }
    }
    report.exit_code = report.verdict.exit_code();
    report.checks = checks;
}

/// A merged canary: `report` is the shards' merged measurement (its
/// classes sum theirs) and `shards` their canary sections and checks. The
/// section's counts and latency blocks are added up, and every check is
/// decided once on them at the run's fixed size by the live checks' own
/// rules: the split's and the health's confidence sequences (which hold at
/// any size), the unclassified share; split independence stands as the
/// shards found it (each tested its own connections).
fn merged(
    report: &mut Report,
    shards: &[(&CanarySection, &[Check])],
    end: &EndReason,
) -> Result<(), String> {
    let mut section = added_up(shards)?;
    let names: Vec<&str> = section.expect.keys().map(String::as_str).collect();
    let count = |name: &str| report.classes.get(name).map_or(0, |c| c.count);
    let failed = |name: &str| report.classes.get(name).map_or(0, |c| c.failed);
    let counts: Vec<u64> = names.iter().map(|n| count(n)).collect();
    let failures: Vec<u64> = names.iter().map(|n| failed(n)).collect();
    let unattributable = section.unclassified;
    if let Some(baseline) = section
        .baseline
        .as_ref()
        .and_then(|b| names.iter().position(|n| n == b))
    {
        if counts[baseline] > 0 {
            section.observed_baseline_error_rate =
                Some(failures[baseline] as f64 / counts[baseline] as f64);
        }
    }
    let dependence = shards.iter().enumerate().find_map(|(index, (_, checks))| {
        checks
            .iter()
            .find(|c| c.kind == "split.independence" && c.verdict != Verdict::Pass)
            .map(|c| format!("shard {index}: {}", c.reason))
    });
    let mut checks = Vec::new();
    let each = crate::canary::split::alpha_each(section.alpha, section.tolerance.len());
    for (name, tolerance) in &section.tolerance {
        let share = *section
            .expect
            .get(name)
            .ok_or("a tolerance for no expected share")?;
        let expectation = crate::canary::split::Expectation {
            share,
            tolerance: *tolerance,
        };
        let mut test = ShareTest::at_counts(
            expectation,
            each,
            section.power,
            count(name),
            section.classified,
            unattributable,
        );
        let mut check = share_check(name, None, &mut test, unattributable, dependence.is_some());
        check
            .reason
            .push_str(" (merged shards, decided once at the run's fixed size)");
        checks.push(check);
    }
    checks.push(unclassified_check(
        unattributable,
        section.classified + unattributable,
        section.max_unclassified.unwrap_or(1.0),
    ));
    checks.push(
        shards
            .iter()
            .flat_map(|(_, checks)| checks.iter())
            .filter(|c| c.kind == "split.independence")
            .max_by_key(|c| c.verdict != Verdict::Pass)
            .cloned()
            .ok_or("a shard without its split independence check")?,
    );
    let split_failed = split_failed(&checks);
    checks.extend(merged_health(
        &section,
        (&names, &counts, &failures),
        dependence.is_some(),
        split_failed,
    ));
    report.canary = Some(section);
    decide(report, checks, dependence.as_deref(), end);
    Ok(())
}

/// A saved (maybe edited) section's plan, as merge and `--recompute` read
/// it: levels and tolerances strictly between 0 and 1, shares within 0–1
/// (outside them the statistics have no meaning, and panicked).
fn plausible(section: &CanarySection) -> Result<(), String> {
    let within = |name: &str, value: f64, open: bool| {
        let inside = if open {
            value > 0.0 && value < 1.0
        } else {
            (0.0..=1.0).contains(&value)
        };
        match inside {
            true => Ok(()),
            false => Err(format!(
                "canary.{name} is {value}, expected a fraction {}",
                if open {
                    "between 0 and 1"
                } else {
                    "from 0 to 1"
                }
            )),
        }
    };
    within("alpha", section.alpha, true)?;
    within("power", section.power, true)?;
    for (name, tolerance) in &section.tolerance {
        within(&format!("tolerance.{name}"), *tolerance, true)?;
    }
    for (name, share) in &section.expect {
        within(&format!("expect.{name}"), *share, false)?;
    }
    if let Some(most) = section.max_unclassified {
        within("max_unclassified", most, false)?;
    }
    if let Some(width) = section.merge_inputs.as_ref().and_then(|i| i.latency_bin_us) {
        if !(1..=1 << 40).contains(&width) {
            return Err(format!(
                "canary.merge_inputs.latency_bin_us is {width}, expected a bin width of 1 to 2^40 µs"
            ));
        }
    }
    Ok(())
}

/// The shards' canary sections ([`plausible`] each) added up: counts, and the latency blocks of
/// each second (the split's connection tests are each shard's own).
fn added_up(shards: &[(&CanarySection, &[Check])]) -> Result<CanarySection, String> {
    for (section, _) in shards {
        plausible(section)?;
    }
    let mut section = shards[0].0.clone();
    section.classified = shards.iter().map(|(s, _)| s.classified).sum();
    section.unclassified = shards.iter().map(|(s, _)| s.unclassified).sum();
    section.connections = shards.iter().map(|(s, _)| s.connections).sum();
    section.stopped_because = None;
    section.connection_dispersion_p = None;
    section.second_dispersion_p = None;
    let variants = section.expect.len();
    if let Some(inputs) = &mut section.merge_inputs {
        let mut merged = Bins::new(inputs.bin_us(), variants);
        for (shard, _) in shards {
            let theirs = shard
                .merge_inputs
                .as_ref()
                .ok_or("a shard without its merge inputs")?;
            if theirs
                .latency_blocks
                .iter()
                .any(|row| row.len() != variants)
            {
                return Err("a shard's latency blocks do not have one block per variant".into());
            }
            merged.merge(&Bins {
                width_us: theirs.bin_us(),
                variants,
                bins: theirs.latency_blocks.clone(),
            });
        }
        inputs.latency_bin_us = Some(merged.width_us);
        inputs.latency_blocks = merged.bins;
    }
    Ok(section)
}

/// The health checks on merged counts and blocks (none without a spec or
/// a baseline).
fn merged_health(
    section: &CanarySection,
    (names, counts, failures): (&[&str], &[u64], &[u64]),
    dependent: bool,
    split_failed: bool,
) -> Vec<Check> {
    let unattributable = section.unclassified;
    let health = section
        .merge_inputs
        .as_ref()
        .and_then(|i| Some((i.health?, i)));
    let baseline = section
        .baseline
        .as_ref()
        .and_then(|b| names.iter().position(|n| n == b));
    if let (Some((spec, inputs)), Some(baseline)) = (health, baseline) {
        let healths: Vec<VariantHealth> = (0..names.len())
            .filter(|&v| v != baseline && section.expect[v] > 0.0)
            .map(|variant| {
                let pairs: Vec<(Block, Block)> = inputs
                    .latency_blocks
                    .iter()
                    .map(|row| (row[variant], row[baseline]))
                    .collect();
                let latency = LatencyBounds::from_pairs(
                    &pairs,
                    spec.max_latency_increase,
                    spec.alpha,
                    Decide::Once(once_bound(spec.alpha)),
                );
                let pair = section.expect[variant] + section.expect[baseline];
                let drops = (pair > 0.0).then(|| {
                    let design = DropDesign::one_look(
                        section.expect[variant] / pair,
                        counts[variant] + counts[baseline],
                        spec.alpha,
                    );
                    Drops::at(
                        &design,
                        Some(0),
                        counts[variant],
                        counts[baseline],
                        unattributable,
                    )
                });
                VariantHealth {
                    variant,
                    drops,
                    errors: Some(spec.error_bounds(&health::ErrorCounts {
                        variant_failed: failures[variant],
                        variant: counts[variant],
                        baseline_failed: failures[baseline],
                        baseline: counts[baseline],
                        unattributable,
                    })),
                    latency,
                }
            })
            .collect();
        let compared = Compared {
            names: names.to_vec(),
            counts,
            failed: failures,
            unattributable,
            observed_baseline_error_rate: section.observed_baseline_error_rate,
            planned: section.planned_requests,
            spec: &spec,
            baseline,
            dependent,
            latency: None,
            drops: &[],
            split_failed,
        };
        return compared.checks(&healths);
    }
    Vec::new()
}

fn canary_section(plan: &CanaryPlan, watch: &Watch<'_>) -> CanarySection {
    CanarySection {
        expect: plan
            .variants
            .iter()
            .map(|variant| (variant.name.clone(), variant.share))
            .collect::<IndexMap<_, _>>(),
        baseline: plan.baseline.map(|index| plan.variants[index].name.clone()),
        alpha: plan.alpha,
        power: plan.power,
        split_fixed_horizon: plan.tost_size,
        split_expected_sequential: plan.expected_sequential,
        planned_requests: watch.planned,
        max_requests: plan.max_requests,
        classified: watch.classified,
        unclassified: watch.unattributable,
        max_unclassified: Some(plan.max_unclassified),
        tolerance: plan
            .variants
            .iter()
            .filter_map(|variant| {
                let test = &watch.split.tests[variant.test?];
                Some((variant.name.clone(), test.expectation.tolerance))
            })
            .collect(),
        interval_kind: Some(INTERVAL_KIND.to_string()),
        split_horizon: Some(plan.split.horizon()),
        initial_planned_requests: Some(plan.planned_requests),
        assumed_baseline_error_rate: plan.health.map(|spec| spec.assumed_error_rate),
        observed_baseline_error_rate: watch.observed_baseline_error_rate,
        stopped_because: watch.stopped.clone(),
        merge_inputs: plan.load.sharding.as_ref().map(|_| CanaryMergeInputs {
            health: plan.health,
            latency_seconds: 0,
            latency_bin_us: Some(watch.latency_bins().width_us),
            latency_blocks: watch.latency_bins().bins.clone(),
        }),
        connections: Some(watch.dependence.connections as u64),
        connection_dispersion_p: watch.dependence.by_connection.map(|d| d.2),
        second_dispersion_p: watch.dependence.by_second.map(|d| d.2),
    }
}

/// How the share intervals are made, for reports.
pub const INTERVAL_KIND: &str =
    "exact (Clopper–Pearson) interval at 1 − 2α, the fixed-sample TOST's; the verdict uses the group-sequential exact binomial bounds, stricter at every look";

/// What would decide an undecided share: the responses a plan needs to
/// decide a share as far from the nearer edge as the one observed.
fn what_would_decide(test: &ShareTest, observed: f64) -> String {
    let (low, high) = test.expectation.band();
    let distance = (observed - low).abs().min((observed - high).abs());
    if distance < 1e-4 {
        return format!(
            "the share is {}pp from an edge of the band, where millions of responses are needed: a wider --tolerance, if a share at the edge is close enough",
            points_of(distance)
        );
    }
    let needed = crate::canary::design::budget_for_zone(
        &test.expectation,
        test.alpha(),
        test.power(),
        distance,
    );
    format!(
        "about {needed} responses decide a share {}pp from an edge: --max-requests {needed}",
        points_of(distance)
    )
}

/// A share distance in percentage points, for people: 0.76.
fn points_of(distance: f64) -> String {
    format!("{:.2}", distance * 100.0)
}

/// One check per tested share.
fn share_checks(plan: &CanaryPlan, watch: &mut Watch<'_>, dependent: bool) -> Vec<Check> {
    let unattributable = watch.unattributable;
    plan.variants
        .iter()
        .filter_map(|variant| {
            let test = &mut watch.split.tests[variant.test?];
            Some(share_check(
                &variant.name,
                variant.source.as_deref(),
                test,
                unattributable,
                dependent,
            ))
        })
        .collect()
}

/// The check of one tested share, from its test's one decision.
/// Long because the reason is the check: the share, the band, the interval
/// and how it was decided are written out from the test's one decision.
fn share_check(
    name: &str,
    source: Option<&str>,
    test: &mut ShareTest,
    unattributable: u64,
    dependent: bool,
) -> Check {
    let decision = test.finish();
    let e = test.expectation.clone();
    let (hits, trials) = test.counts();
    let observed = if trials == 0 {
        0.0
    } else {
        hits as f64 / trials as f64
    };
    let confidence = 1.0 - 2.0 * test.alpha();
    let (low, high) = test.interval().unwrap_or((0.0, 1.0));
    let (band_low, band_high) = e.band();
    let design = test.design();
    let looks = design.looks.len();
    let zone = match design.zone.width() {
        Some(zone) => format!(
            "the share is within {}pp of an edge, where this budget cannot decide",
            points_of(zone)
        ),
        None => "this budget cannot decide a share at any distance from an edge".to_string(),
    };
    let how = match (decision.rule, decision.verdict) {
        (Rule::Sequence, _) => format!(
            "outside the band after {} responses (the always-valid gross-error sequence)",
            decision.trials
        ),
        (Rule::Look, verdict) => format!(
            "{} the band at look {} of {looks} ({} responses)",
            if verdict == Outcome::Pass { "inside" } else { "outside" },
            decision.look,
            decision.trials
        ),
        (Rule::FinalLook, verdict) => format!(
            "{} the band at a last look when the run ended early ({} of the planned {} responses; the rest of α spent there)",
            if verdict == Outcome::Pass { "inside" } else { "outside" },
            decision.trials,
            design.budget()
        ),
        (Rule::Horizon, _) => format!(
            "undecided at the plan's last look ({} responses): {zone} with power {}",
            decision.trials,
            test.power(),
        ),
        (Rule::EndOfRun, _) => format!(
            "undecided when the run ended ({} of the planned {} responses)",
            decision.trials,
            design.budget(),
        ),
    };
    let mut verdict = match decision.verdict {
        Outcome::Pass => Verdict::Pass,
        Outcome::Fail => Verdict::Fail,
        Outcome::Inconclusive => Verdict::Inconclusive,
    };
    let mut reason = format!(
        "{} got {} ({hits}/{trials}), expected {} (band {}–{}); {how}; exact {} interval {}–{}",
        name,
        percent(observed),
        percent(e.share),
        percent(band_low),
        percent(band_high),
        level(confidence),
        percent(low),
        percent(high),
    );
    if let Some(source) = source {
        reason.push_str(&format!(" (expected share declared by {source})"));
    }
    if unattributable > 0 {
        reason.push_str(&format!(
            " ({} unattributable responses counted both ways)",
            unattributable
        ));
    }
    if dependent {
        verdict = Verdict::Inconclusive;
        reason.push_str(
            " — but the responses are not independent per request (see split independence)",
        );
    }
    let mut check = Check::new(
        format!("share {}", name),
        "split.share",
        verdict,
        json!({ "share": observed, "responses": hits, "of": trials,
                "rule": format!("{:?}", decision.rule).to_lowercase(),
                "unattributable": unattributable }),
        json!({ "share": e.share, "tolerance": e.tolerance, "band": [band_low, band_high] }),
        reason,
    );
    check.interval = Some(Interval {
        low,
        high,
        confidence,
        kind: Some(INTERVAL_KIND.to_string()),
    });
    check.p_value = Some(test.always_valid_p());
    check.planned = Some(test.horizon());
    check.used = Some(decision.trials);
    check.remedy = match decision.rule {
        _ if check.verdict != Verdict::Inconclusive => None,
        _ if dependent => {
            Some("a split that is random per request first (see split independence)".to_string())
        }
        Rule::Horizon | Rule::EndOfRun => Some(what_would_decide(test, observed)),
        _ => None,
    };
    check
}

/// Whether the responses look independent per request (per connection, per second).
fn independence_check(watch: &Watch<'_>, finding: Option<&str>) -> Check {
    let dependence = &watch.dependence;
    let p = |test: Option<(f64, usize, f64)>| test.map(|(_, _, p)| p);
    let mut check = Check::new(
        "split independence",
        "split.independence",
        if finding.is_some() {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        },
        json!({ "connections": dependence.connections,
                "by_connection_p": p(dependence.by_connection),
                "by_second_p": p(dependence.by_second) }),
        json!({ "assumption": "each request is assigned to a variant independently", "min_p": watch::DEPENDENCE_P }),
        match finding {
            Some(finding) => format!("{finding}: the checks assume a random split per request, so no verdict is given"),
            None if watch.plan.load.no_keepalive => format!(
                "a new connection for every request (--no-keepalive): a split that sticks to connections is a split per request here; no sign that it changes over time{}",
                p(dependence.by_second).map_or(String::new(), |p| format!(" (p = {})", crate::units::format_p(p)))
            ),
            None => format!(
                "no sign that the split depends on the connection ({} connections{}) or the second{}",
                dependence.connections,
                p(dependence.by_connection).map_or(String::new(), |p| format!(", p = {}", crate::units::format_p(p))),
                p(dependence.by_second).map_or(String::new(), |p| format!(" (p = {})", crate::units::format_p(p)))
            ),
        },
    );
    // Its p-values are looked at every second: not always-valid, so they
    // stay in the reason and the observed values, not the p-value column.
    // The finding ends with what to do ("rerun with --no-keepalive …",
    // "rerun once it holds still"): that is the remedy.
    check.remedy =
        finding.and_then(|finding| finding.rfind("rerun").map(|at| finding[at..].to_string()));
    check
}

/// Whether a share check among `checks` failed (the drop test's
/// attribution assumes the expected split).
fn split_failed(checks: &[Check]) -> bool {
    checks
        .iter()
        .any(|check| check.kind == "split.share" && check.verdict == Verdict::Fail)
}
