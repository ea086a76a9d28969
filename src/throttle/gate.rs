//! The throttle probe's gates: an expected parameter against its estimate.
//! One function makes a gate, live and when `gateprobe report --recompute`
//! rebuilds it from a saved report's estimates and expectations.
use serde_json::json;

use super::estimate::Estimated;
use crate::check::{Check, Interval, Verdict};
use crate::units::{round2, trim_float};

/// A burst is a whole number of requests that a probe sees to about ±1: the
/// burst's band is never narrower than this many requests either side.
const MIN_BURST_SLACK: f64 = 2.0;

/// A parameter a probe can be told to expect (`--expect-rate`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parameter {
    Rate,
    Burst,
    Concurrency,
    WindowLimit,
    Window,
    QueueDepth,
}

impl Parameter {
    /// In the order the gates are reported.
    pub const ALL: [Parameter; 6] = [
        Parameter::Rate,
        Parameter::Burst,
        Parameter::Concurrency,
        Parameter::WindowLimit,
        Parameter::Window,
        Parameter::QueueDepth,
    ];

    /// The gate's check name.
    pub fn check_name(self) -> &'static str {
        match self {
            Parameter::Rate => "throttle rate",
            Parameter::Burst => "throttle burst",
            Parameter::Concurrency => "throttle concurrency",
            Parameter::WindowLimit => "throttle window limit",
            Parameter::Window => "throttle window",
            Parameter::QueueDepth => "throttle queue depth",
        }
    }

    /// The report's field holding what the probe was told to expect.
    pub fn expect_field(self) -> &'static str {
        match self {
            Parameter::Rate => "expect_rate_per_s",
            Parameter::Burst => "expect_burst",
            Parameter::Concurrency => "expect_concurrency",
            Parameter::WindowLimit => "expect_window_limit",
            Parameter::Window => "expect_window_s",
            Parameter::QueueDepth => "expect_queue_depth",
        }
    }

    /// The parameter in words, and its unit as shown after a number.
    pub fn what(self) -> (&'static str, &'static str) {
        match self {
            Parameter::Rate => ("admitted rate", " rps"),
            Parameter::Burst => ("burst", ""),
            Parameter::Concurrency => ("concurrency", ""),
            Parameter::WindowLimit => ("window limit", ""),
            Parameter::Window => ("window", " s"),
            Parameter::QueueDepth => ("queue depth", ""),
        }
    }

    /// The expected band's half-width: the tolerance's share of the expected
    /// value; counts of requests get at least a request or two either side.
    pub fn slack(self, expected: f64, tolerance: f64) -> f64 {
        let share = expected * tolerance;
        match self {
            Parameter::Rate | Parameter::Window => share,
            Parameter::Concurrency => share.max(1.0),
            Parameter::Burst | Parameter::WindowLimit | Parameter::QueueDepth => {
                share.max(MIN_BURST_SLACK)
            }
        }
    }
}

/// A gate on an estimate at `confidence`: pass when its interval lies inside
/// the band `expected ± slack`, fail when entirely outside, inconclusive
/// otherwise or when there is no estimate (`why_missing` says why).
pub fn gate(
    parameter: Parameter,
    (expected, slack): (f64, f64),
    found: Option<Estimated>,
    confidence: f64,
    why_missing: &str,
) -> Check {
    let name = parameter.check_name();
    let (what, unit) = parameter.what();
    let (low, high) = (expected - slack, expected + slack);
    let band = format!(
        "{}–{}{unit}",
        trim_float(round2(low)),
        trim_float(round2(high))
    );
    let expected_json = json!({ "value": expected, "low": low, "high": high });
    let Some(found) = found else {
        return Check::new(
            name,
            "throttle",
            Verdict::Inconclusive,
            serde_json::Value::Null,
            expected_json,
            format!(
                "expected {what} {}{unit} ({band}); {why_missing}",
                trim_float(expected)
            ),
        );
    };
    let verdict = if found.low >= low && found.high <= high {
        Verdict::Pass
    } else if found.high < low || found.low > high {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    };
    let judgement = match verdict {
        Verdict::Pass => "inside",
        Verdict::Fail => "outside",
        _ => "not decided against",
    };
    let mut check = Check::new(
        name,
        "throttle",
        verdict,
        json!(found.estimate),
        expected_json,
        format!(
            "{what} {:.1}{unit} ({:.0}% interval {:.1}–{:.1}), {judgement} the expected {band}",
            found.estimate,
            confidence * 100.0,
            found.low,
            found.high
        ),
    );
    check.interval = Some(Interval {
        low: found.low,
        high: found.high,
        confidence,
        kind: Some("see throttle.interval_kind".to_string()),
    });
    check
}

/// A usage plan's declared quota (`get-usage-plan` `quota`), where it was
/// declared, and what the probe saw of it: the report keeps these, so the
/// check is rebuilt from them exactly.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuotaFacts {
    /// Requests per period.
    pub limit: u64,
    /// `DAY`, `WEEK` or `MONTH`.
    pub period: String,
    pub source: String,
    /// Requests the gateway admitted during the probe.
    pub admitted: u64,
    /// Whether a 429 `Limit Exceeded` stopped the probe.
    pub exhausted: bool,
}

/// The quota gate. A quota counts every request the key made in its period,
/// the probe's and everyone else's, so a client sees only a lower bound on
/// its use: the gate fails when the gateway admitted more than the declared
/// limit within the probe alone (the quota is larger than declared, or not
/// enforced), and passes otherwise, saying whether the quota ran out. An
/// exact count: no sampling error, only the classification's.
pub fn quota_check(facts: &QuotaFacts) -> Check {
    let QuotaFacts {
        limit,
        period,
        source,
        admitted,
        exhausted,
    } = facts;
    let declared = format!("the declared {limit} per {period} ({source})");
    let (verdict, reason) = match (*exhausted, admitted > limit) {
        (true, false) => (
            Verdict::Pass,
            format!(
                "the quota ran out after {admitted} admitted requests, within {declared}; \
                 the rest of it was used earlier in the period"
            ),
        ),
        (true, true) => (
            Verdict::Fail,
            format!(
                "the gateway admitted {admitted} requests before its quota stopped them: \
                 more than {declared}"
            ),
        ),
        (false, true) => (
            Verdict::Fail,
            format!(
                "{admitted} requests admitted and no 429 Limit Exceeded: more than {declared}, \
                 so the quota is not enforced as declared"
            ),
        ),
        (false, false) => (
            Verdict::Pass,
            format!("not reached: {admitted} requests admitted, within {declared}"),
        ),
    };
    Check::new(
        "throttle quota",
        "throttle.quota",
        verdict,
        json!({ "admitted": admitted, "exhausted": exhausted }),
        json!({ "limit": limit, "period": period }),
        reason,
    )
}
