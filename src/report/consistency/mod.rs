//! A saved report agrees with itself before it is rendered, merged or
//! recomputed. The schema (serde) says each field has its type; this says
//! the fields agree: counts that add up, series that cover the run and sum
//! to its counts, durations and rates finite and within what the run's
//! bounds allow, percentiles in order, shares and levels between 0 and 1,
//! intervals around their estimates. A report that fails names the field,
//! what it holds and what it should agree with: an edited or corrupted
//! file must not open a gate, nor draw a chart from numbers that cannot be.
use super::{Percentiles, Report};

/// What is wrong, as `field 'a.b': …` (the same form as a parse error).
pub(crate) type Found = Result<(), String>;

/// The longest run a report may describe, seconds (≈ 32 years): beyond
/// it a duration is a corruption, not a soak test.
pub(crate) const MAX_SECONDS: f64 = 1e9;

/// Checks `report` (and each scenario step's report, under its path).
pub fn check(report: &Report) -> Found {
    check_at(report, "")
}

fn check_at(report: &Report, at: &str) -> Found {
    counts(report, at)?;
    timing(report, at)?;
    classes(report, at)?;
    series(report, at)?;
    keys(report, at)?;
    checks(report, at)?;
    shard(report, at)?;
    for analysis in super::analysis::ALL {
        analysis.consistent(report, at)?;
    }
    for (index, step) in report.steps.iter().enumerate() {
        check_at(&step.report, &format!("{at}steps[{index}].report."))?;
    }
    steps_add_up(report, at)
}

pub(crate) fn wrong(at: &str, field: &str, what: impl std::fmt::Display) -> Found {
    Err(format!("field '{at}{field}': {what}"))
}

/// Sums in u128: a mangled u64::MAX must not overflow the check.
pub(crate) fn sum<'a>(values: impl IntoIterator<Item = &'a u64>) -> u128 {
    values.into_iter().map(|&v| u128::from(v)).sum()
}

pub(crate) fn equal(at: &str, field: &str, holds: u64, should: u128, what: &str) -> Found {
    if u128::from(holds) == should {
        return Ok(());
    }
    wrong(at, field, format!("{holds}, but {what} {should}"))
}

/// A count (or a sum of counts) no larger than what holds it.
pub(crate) fn at_most(at: &str, field: &str, count: u128, limit: u128, what: &str) -> Found {
    if count <= limit {
        return Ok(());
    }
    wrong(at, field, format!("{count}, more than {what}"))
}

/// A finite number in `low..=high`.
pub(crate) fn within(at: &str, field: &str, value: f64, low: f64, high: f64) -> Found {
    if value.is_finite() && value >= low && value <= high {
        return Ok(());
    }
    wrong(
        at,
        field,
        format!(
            "{} is outside {}–{} (what the run allows)",
            number(value),
            number(low),
            number(high)
        ),
    )
}

/// A number as a reader takes it in: 1e308, not 309 digits.
fn number(value: f64) -> String {
    if value != 0.0 && !(1e-6..1e9).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

pub(crate) fn share(at: &str, field: &str, value: f64) -> Found {
    within(at, field, value, 0.0, 1.0)
}

/// The run's books: every request that came due counted once.
fn counts(report: &Report, at: &str) -> Found {
    let run = &report.run;
    let completed = sum(report.classes.values().map(|c| &c.count));
    equal(
        at,
        "run.requests_completed",
        run.requests_completed,
        completed,
        "the classes' counts add up to",
    )?;
    let errors = sum(report.errors.values());
    if errors > completed {
        return wrong(
            at,
            "errors",
            format!("{errors} transport errors, more than the {completed} completed requests"),
        );
    }
    equal(
        at,
        "run.responses",
        run.responses,
        completed - errors,
        "completed requests less transport errors are",
    )?;
    let aborted = u128::from(run.aborted);
    let dropped = u128::from(run.dropped);
    equal(
        at,
        "run.requests_sent",
        run.requests_sent,
        completed + aborted,
        "completed plus aborted are",
    )?;
    equal(
        at,
        "run.requests_due",
        run.requests_due,
        completed + aborted + dropped,
        "completed plus aborted plus dropped are",
    )?;
    if run.late > run.requests_sent {
        return wrong(
            at,
            "run.late",
            format!("{}, more than the {} sent", run.late, run.requests_sent),
        );
    }
    let statuses = sum(report.classes.values().flat_map(|c| c.statuses.values()));
    if statuses != u128::from(run.responses) {
        return Err(flip(
            at,
            "classes.*.statuses",
            statuses,
            "run.responses",
            run.responses,
        ));
    }
    Ok(())
}

/// Durations and rates: finite, and the achieved rate what was sent over
/// the window.
fn timing(report: &Report, at: &str) -> Found {
    let run = &report.run;
    within(at, "run.duration_s", run.duration_s, 0.0, MAX_SECONDS)?;
    within(at, "run.wall_s", run.wall_s, 0.0, MAX_SECONDS)?;
    if let Some(rate) = run.target_rate_per_s {
        within(at, "run.target_rate_per_s", rate, f64::MIN_POSITIVE, 1e9)?;
    }
    let achieved = if run.duration_s > 0.0 {
        run.requests_sent as f64 / run.duration_s
    } else {
        0.0
    };
    if (run.achieved_rate_per_s - achieved).abs() > 1e-6 * achieved.max(1.0) {
        return wrong(
            at,
            "run.achieved_rate_per_s",
            format!(
                "{}, but run.requests_sent / run.duration_s is {achieved}",
                run.achieved_rate_per_s
            ),
        );
    }
    if let Some(lag) = &report.schedule_lag_ms {
        percentiles(at, "schedule_lag_ms", lag, longest_ms(report))?;
    }
    if let Some(encoded) = report
        .shard
        .as_ref()
        .and_then(|s| s.schedule_lag_us.as_ref())
    {
        let histogram = crate::record::histogram_from_base64(encoded)
            .map_err(|why| format!("field '{at}shard.schedule_lag_us': {why}"))?;
        if report.run.model == "open" {
            same_percentiles(at, "schedule_lag_ms", &report.schedule_lag_ms, &histogram)?;
        }
    }
    Ok(())
}

/// Percentiles a report shows are its histogram's: an edit to either is
/// found (both are saved; the histogram is what a merge adds).
fn same_percentiles(
    at: &str,
    field: &str,
    shown: &Option<Percentiles>,
    histogram: &hdrhistogram::Histogram<u64>,
) -> Found {
    let from = Percentiles::from_histogram(histogram);
    let pairs = |p: &Percentiles| [p.p50, p.p90, p.p99, p.p999, p.max, p.mean];
    let agree = match (shown, &from) {
        (None, None) => true,
        (Some(a), Some(b)) => pairs(a)
            .iter()
            .zip(pairs(b))
            .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1.0)),
        _ => false,
    };
    if agree {
        return Ok(());
    }
    let said = |p: &Option<Percentiles>| {
        p.as_ref().map_or("none".to_string(), |p| {
            format!("p50 {} p99 {} max {} mean {}", p.p50, p.p99, p.max, p.mean)
        })
    };
    wrong(
        at,
        field,
        format!("{}, but its histogram gives {}", said(shown), said(&from)),
    )
}

/// No latency in a run can be longer than the run (its wall time, or its
/// window when the wall was not measured); a histogram rounds up by under
/// 0.1%, and a second covers clocks read apart.
pub(crate) fn longest_ms(report: &Report) -> f64 {
    report.run.wall_s.max(report.run.duration_s) * 1000.0 * 1.01 + 1000.0
}

fn percentiles(at: &str, field: &str, p: &Percentiles, longest_ms: f64) -> Found {
    let order = [
        ("p50", p.p50),
        ("p90", p.p90),
        ("p99", p.p99),
        ("p999", p.p999),
        ("max", p.max),
    ];
    for (name, value) in order.iter().chain([("mean", p.mean)].iter()) {
        within(at, &format!("{field}.{name}"), *value, 0.0, longest_ms)?;
    }
    for pair in order.windows(2) {
        let ((low_name, low), (high_name, high)) = (pair[0], pair[1]);
        if low > high {
            return wrong(
                at,
                &format!("{field}.{low_name}"),
                format!("{low} ms is above {high_name} ({high} ms): percentiles are in order"),
            );
        }
    }
    if p.mean > p.max {
        return wrong(
            at,
            &format!("{field}.mean"),
            format!("{} ms is above max ({} ms)", p.mean, p.max),
        );
    }
    Ok(())
}

fn classes(report: &Report, at: &str) -> Found {
    let completed = report.run.requests_completed;
    let longest = longest_ms(report);
    for (name, class) in &report.classes {
        let field = |f: &str| format!("classes.{name}.{f}");
        let count = u128::from(class.count);
        let most = format!("the class's {} responses", class.count);
        at_most(at, &field("failed"), class.failed.into(), count, &most)?;
        let statuses = sum(class.statuses.values());
        at_most(at, &field("statuses"), statuses, count, &most)?;
        let expected = if completed == 0 {
            0.0
        } else {
            class.count as f64 / completed as f64
        };
        if !(class.share - expected).abs().le(&1e-9) {
            return wrong(
                at,
                &field("share"),
                format!(
                    "{}, but count / run.requests_completed is {expected}",
                    class.share
                ),
            );
        }
        for (label, p) in [
            ("latency_ms", &class.latency_ms),
            ("service_time_ms", &class.service_time_ms),
        ] {
            if let Some(p) = p {
                percentiles(at, &field(label), p, longest)?;
            }
        }
        class_histograms(at, name, class)?;
    }
    Ok(())
}

/// A class's saved histograms: readable, holding one value per response,
/// and giving the percentiles shown beside them.
fn class_histograms(at: &str, name: &str, class: &super::ClassSection) -> Found {
    let field = |f: &str| format!("classes.{name}.{f}");
    for (label, encoded, shown) in [
        (
            "histograms.latency_us",
            &class.histograms.latency_us,
            ("latency_ms", &class.latency_ms),
        ),
        (
            "histograms.service_us",
            &class.histograms.service_us,
            ("service_time_ms", &class.service_time_ms),
        ),
    ] {
        let histogram = crate::record::histogram_from_base64(encoded)
            .map_err(|why| format!("field '{at}{}': {why}", field(label)))?;
        same_percentiles(at, &field(shown.0), shown.1, &histogram)?;
        equal(
            at,
            &field(label),
            histogram.len(),
            u128::from(class.count),
            "the class's count is",
        )
        .map_err(|_| {
            format!(
                "field '{at}{}': it holds {} values, but the class's count is {}",
                field(label),
                histogram.len(),
                class.count
            )
        })?;
    }
    Ok(())
}

/// The per-second series: within the run's length, and summing to its
/// counts. A scenario's own series is empty (each step has its own).
fn series(report: &Report, at: &str) -> Found {
    let series = &report.series;
    if series.interval_s != 1.0 {
        return wrong(
            at,
            "series.interval_s",
            format!("{}, but series are per second (1)", series.interval_s),
        );
    }
    if !report.steps.is_empty() && series.sent.is_empty() {
        return Ok(());
    }
    series_lengths(report, at)?;
    let run = &report.run;
    equal(
        at,
        "series.sent",
        run.requests_sent,
        sum(&series.sent),
        "the series of sent requests adds up to",
    )
    .map_err(|_| {
        flip(
            at,
            "series.sent",
            sum(&series.sent),
            "run.requests_sent",
            run.requests_sent,
        )
    })?;
    equal(at, "series.dropped", run.dropped, sum(&series.dropped), "").map_err(|_| {
        flip(
            at,
            "series.dropped",
            sum(&series.dropped),
            "run.dropped",
            run.dropped,
        )
    })?;
    for (name, values) in &series.completed {
        let Some(class) = report.classes.get(name) else {
            return wrong(
                at,
                &format!("series.completed.{name}"),
                "a series for a class the report does not have",
            );
        };
        let field = format!("series.completed.{name}");
        if sum(values) != u128::from(class.count) {
            return Err(flip(
                at,
                &field,
                sum(values),
                &format!("classes.{name}.count"),
                class.count,
            ));
        }
    }
    Ok(())
}

/// Each series grows a second at a time as requests are sent or complete:
/// never past the run's seconds, plus one for the drain and one for a part
/// second at each end.
fn series_lengths(report: &Report, at: &str) -> Found {
    let series = &report.series;
    let run = &report.run;
    let longest = (run.wall_s.max(run.duration_s) + 3.0).ceil() as usize;
    let named = [("sent", &series.sent), ("dropped", &series.dropped)];
    let completed = series
        .completed
        .iter()
        .map(|(name, values)| (name.as_str(), values));
    for (name, values) in named.into_iter().chain(completed) {
        if values.len() > longest {
            return wrong(
                at,
                &format!("series.{name}"),
                format!(
                    "{} seconds long, but the run lasted {:.1} s",
                    values.len(),
                    run.wall_s.max(run.duration_s)
                ),
            );
        }
    }
    Ok(())
}

/// "field 'a': it adds up to X, but b is Y".
pub(crate) fn flip(at: &str, field: &str, adds_up: u128, other: &str, holds: u64) -> String {
    format!("field '{at}{field}': it adds up to {adds_up}, but {other} is {holds}")
}

fn keys(report: &Report, at: &str) -> Found {
    for (label, key) in &report.api_keys {
        let answered = u128::from(key.throttled) + u128::from(key.forbidden);
        if answered > u128::from(key.responses) {
            return wrong(
                at,
                &format!("api_keys.{label}.throttled"),
                format!(
                    "429s and 403s add up to {answered}, more than the key's {} responses",
                    key.responses
                ),
            );
        }
        let done = u128::from(key.responses) + u128::from(key.errors) + u128::from(key.dropped);
        if done > u128::from(key.sent) + u128::from(key.dropped) {
            return wrong(
                at,
                &format!("api_keys.{label}.responses"),
                format!("responses and errors exceed the key's {} sent", key.sent),
            );
        }
    }
    let sent = sum(report.api_keys.values().map(|k| &k.sent));
    if sent > u128::from(report.run.requests_sent) {
        return wrong(
            at,
            "api_keys",
            format!(
                "the keys' sent requests add up to {sent}, more than run.requests_sent ({})",
                report.run.requests_sent
            ),
        );
    }
    Ok(())
}

fn checks(report: &Report, at: &str) -> Found {
    for (index, check) in report.checks.iter().enumerate() {
        let field = |f: &str| format!("checks[{index}].{f}");
        if let Some(p) = check.p_value {
            share(at, &field("p_value"), p)?;
        }
        if let Some(interval) = &check.interval {
            share(at, &field("interval.confidence"), interval.confidence)?;
            for (name, value) in [("low", interval.low), ("high", interval.high)] {
                within(
                    at,
                    &field(&format!("interval.{name}")),
                    value,
                    -1e300,
                    1e300,
                )?;
            }
            if interval.low > interval.high {
                return wrong(
                    at,
                    &field("interval.low"),
                    format!(
                        "{} is above interval.high ({})",
                        interval.low, interval.high
                    ),
                );
            }
        }
    }
    Ok(())
}

fn shard(report: &Report, at: &str) -> Found {
    let Some(shard) = &report.shard else {
        return Ok(());
    };
    if shard.count == 0 || shard.index >= shard.count {
        return wrong(
            at,
            "shard.index",
            format!(
                "shard {} of {}: an index is below its count (from 0)",
                shard.index, shard.count
            ),
        );
    }
    if let Some(weights) = &shard.weights {
        if weights.len() as u64 != shard.count {
            return wrong(
                at,
                "shard.weights",
                format!("{} weights for {} shards", weights.len(), shard.count),
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, list) in [("merged", &shard.merged), ("missing", &shard.missing)] {
        if let Some(bad) = list.iter().find(|&&i| i >= shard.count || !seen.insert(i)) {
            return wrong(
                at,
                &format!("shard.{name}"),
                format!(
                    "shard {bad}: past the run's {} shards, or listed twice",
                    shard.count
                ),
            );
        }
    }
    if !shard.merged.is_empty() && seen.len() as u64 != shard.count {
        return wrong(
            at,
            "shard.merged",
            format!(
                "merged and missing shards name {} of the run's {}",
                seen.len(),
                shard.count
            ),
        );
    }
    if let Some(late) = shard.start_late_ms {
        within(at, "shard.start_late_ms", late, 0.0, MAX_SECONDS * 1000.0)?;
    }
    for (name, ms) in &shard.began_after_ms {
        within(
            at,
            &format!("shard.began_after_ms.{name}"),
            *ms,
            0.0,
            MAX_SECONDS * 1000.0,
        )?;
    }
    Ok(())
}

/// A scenario's totals are its steps' totals.
fn steps_add_up(report: &Report, at: &str) -> Found {
    if report.steps.is_empty() {
        return Ok(());
    }
    let runs: Vec<&super::RunSection> = report.steps.iter().map(|s| &s.report.run).collect();
    type Of = fn(&super::RunSection) -> &u64;
    let fields: [(&str, u64, Of); 5] = [
        ("run.requests_due", report.run.requests_due, |r| {
            &r.requests_due
        }),
        ("run.requests_sent", report.run.requests_sent, |r| {
            &r.requests_sent
        }),
        (
            "run.requests_completed",
            report.run.requests_completed,
            |r| &r.requests_completed,
        ),
        ("run.dropped", report.run.dropped, |r| &r.dropped),
        ("run.aborted", report.run.aborted, |r| &r.aborted),
    ];
    for (field, holds, of) in fields {
        equal(
            at,
            field,
            holds,
            sum(runs.iter().map(|r| of(r))),
            "the steps add up to",
        )?;
    }
    for (name, class) in &report.classes {
        let of = |f: fn(&super::ClassSection) -> u64| -> u128 {
            report
                .steps
                .iter()
                .filter_map(|step| step.report.classes.get(name))
                .map(|c| u128::from(f(c)))
                .sum()
        };
        let sums: [(&str, u64, u128); 3] = [
            ("count", class.count, of(|c| c.count)),
            ("failed", class.failed, of(|c| c.failed)),
            ("bytes", class.bytes, of(|c| c.bytes)),
        ];
        for (field, holds, should) in sums {
            equal(
                at,
                &format!("classes.{name}.{field}"),
                holds,
                should,
                "the steps add up to",
            )?;
        }
    }
    Ok(())
}
