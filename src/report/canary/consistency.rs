//! The canary's section agrees with the run (a saved report's consistency).
use crate::report::consistency::{longest_ms, share, sum, within, wrong, Found};
use crate::report::{CanaryMergeInputs, CanarySection, Report};

/// The canary's plan and counts: levels and shares in 0–1, expected shares
/// adding up to 1, no more responses seen than completed.
pub(super) fn consistent(report: &Report, canary: &CanarySection, at: &str) -> Found {
    share(at, "alpha", canary.alpha)?;
    share(at, "power", canary.power)?;
    for (name, value) in &canary.expect {
        share(at, &format!("expect.{name}"), *value)?;
    }
    let total: f64 = canary.expect.values().sum();
    if (total - 1.0).abs() > 1e-6 {
        return wrong(at, "expect", format!("the shares add up to {total}, not 1"));
    }
    for (name, value) in &canary.tolerance {
        share(at, &format!("tolerance.{name}"), *value)?;
    }
    for (name, value) in [
        ("max_unclassified", canary.max_unclassified),
        (
            "assumed_baseline_error_rate",
            canary.assumed_baseline_error_rate,
        ),
        (
            "observed_baseline_error_rate",
            canary.observed_baseline_error_rate,
        ),
        ("connection_dispersion_p", canary.connection_dispersion_p),
        ("second_dispersion_p", canary.second_dispersion_p),
    ] {
        if let Some(value) = value {
            share(at, name, value)?;
        }
    }
    within(
        at,
        "split_expected_sequential",
        canary.split_expected_sequential,
        0.0,
        1e15,
    )?;
    let seen = u128::from(canary.classified) + u128::from(canary.unclassified);
    if seen > u128::from(report.run.requests_completed) {
        return wrong(
            at,
            "classified",
            format!(
                "classified and unclassified add up to {seen}, more than run.requests_completed ({})",
                report.run.requests_completed
            ),
        );
    }
    match &canary.merge_inputs {
        Some(inputs) => merge_inputs(report, canary, inputs, &format!("{at}merge_inputs.")),
        None => Ok(()),
    }
}

/// What a canary shard saves for the merge: the health spec's levels and
/// margins, and latency blocks whose sums a run's latencies could make.
fn merge_inputs(
    report: &Report,
    canary: &CanarySection,
    inputs: &CanaryMergeInputs,
    at: &str,
) -> Found {
    if let Some(health) = &inputs.health {
        share(at, "health.alpha", health.alpha)?;
        share(at, "health.power", health.power)?;
        share(at, "health.max_error_increase", health.max_error_increase)?;
        share(at, "health.assumed_error_rate", health.assumed_error_rate)?;
        let (field, margin) = match health.max_latency_increase {
            crate::canary::health::LatencyMargin::Relative(f) => {
                ("health.max_latency_increase.relative", f)
            }
            crate::canary::health::LatencyMargin::Absolute { ms } => {
                ("health.max_latency_increase.ms", ms)
            }
        };
        within(at, field, margin, 0.0, 1e9)?;
    }
    let longest = longest_ms(report);
    for (variant, name) in canary.expect.keys().enumerate() {
        let blocks = inputs
            .latency_blocks
            .iter()
            .enumerate()
            .filter_map(|(bin, blocks)| blocks.get(variant).map(|b| (bin, b)));
        let count = sum(blocks.clone().map(|(_, b)| &b.count));
        let class = report.classes.get(name).map_or(0, |c| c.count);
        if count > u128::from(class) {
            return wrong(
                at,
                "latency_blocks",
                format!("{count} latencies of '{name}', more than its {class} responses"),
            );
        }
        for (bin, block) in blocks {
            let field = |f: &str| format!("latency_blocks[{bin}][{variant}].{f}");
            let n = block.count as f64;
            // Latencies are at most the run's length, and (in ms, from
            // µs clocks) at least 1 µs: ln ms within ±50 is generous.
            within(at, &field("sum_ms"), block.sum_ms, 0.0, n * longest)?;
            within(
                at,
                &field("sum_sq_ms"),
                block.sum_sq_ms,
                0.0,
                n * longest * longest,
            )?;
            within(
                at,
                &field("sum_ln_ms"),
                block.sum_ln_ms,
                -50.0 * n,
                50.0 * n,
            )?;
            within(
                at,
                &field("sum_sq_ln_ms"),
                block.sum_sq_ln_ms,
                0.0,
                2500.0 * n,
            )?;
        }
    }
    Ok(())
}
