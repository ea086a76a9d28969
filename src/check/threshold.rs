//! k6-like thresholds on a `load` step: `p99_ms < 300`, `error_rate < 1%`,
//! `share[canary] > 5%`. Parsed and checked against the step's classes
//! before anything is sent: a metric or class that does not exist is an
//! input error (exit 2), never a silent pass (grafana/k6#1526).
use serde_json::json;

use crate::check::{Check, Verdict};
use crate::engine::RunInfo;
use crate::record::Recorder;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    /// Latency quantile in ms (0.5, 0.9, 0.99, 0.999, 1.0 for max).
    Latency(f64),
    ErrorRate,
    Share,
    Count,
    Rps,
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    metric: Metric,
    class: Option<String>,
    op: Op,
    limit: f64,
}

const METRICS: &str = "p50_ms, p90_ms, p99_ms, p999_ms, max_ms (optionally [class]), \
error_rate, share[class], count[class], rps, dropped";

impl Threshold {
    /// Parses `METRIC[class] OP VALUE`; `classes` are the step's class names.
    pub fn parse(text: &str, classes: &[String]) -> Result<Self, String> {
        let bad = |why: &str| format!("threshold '{text}': {why}");
        let (at, op, width) = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
            .iter()
            .find_map(|(symbol, op)| text.find(symbol).map(|at| (at, *op, symbol.len())))
            .ok_or_else(|| {
                bad("expected METRIC OP VALUE with OP one of < <= > >=, e.g. p99_ms < 300")
            })?;
        let (left, right) = (text[..at].trim(), text[at + width..].trim());
        let (name, class) = match left.split_once('[') {
            Some((name, rest)) => {
                let class = rest
                    .strip_suffix(']')
                    .ok_or_else(|| bad("expected METRIC[class], e.g. share[canary]"))?;
                (name.trim(), Some(class.trim().to_string()))
            }
            None => (left, None),
        };
        let metric = match name {
            "p50_ms" => Metric::Latency(0.5),
            "p90_ms" => Metric::Latency(0.9),
            "p99_ms" => Metric::Latency(0.99),
            "p999_ms" => Metric::Latency(0.999),
            "max_ms" => Metric::Latency(1.0),
            "error_rate" => Metric::ErrorRate,
            "share" => Metric::Share,
            "count" => Metric::Count,
            "rps" => Metric::Rps,
            "dropped" => Metric::Dropped,
            other => {
                return Err(bad(&format!(
                    "no metric '{other}'; the metrics are {METRICS}"
                )))
            }
        };
        let needs_class = matches!(metric, Metric::Share | Metric::Count);
        let takes_class = needs_class || matches!(metric, Metric::Latency(_));
        match (&class, needs_class, takes_class) {
            (None, true, _) => return Err(bad(&format!("{name} needs a class: {name}[class]"))),
            (Some(_), _, false) => return Err(bad(&format!("{name} takes no class"))),
            (Some(class), _, _) if !classes.iter().any(|known| known == class) => {
                return Err(bad(&format!(
                    "no class '{class}'; the classes are {}",
                    classes.join(", ")
                )))
            }
            _ => {}
        }
        let limit = match right.strip_suffix('%') {
            Some(number) => number.trim().parse::<f64>().map(|v| v / 100.0),
            None => right.trim_end_matches("ms").trim().parse::<f64>(),
        }
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| bad(&format!("'{right}' is not a number (e.g. 300, 1%, 250ms)")))?;
        Ok(Self {
            text: text.trim().to_string(),
            metric,
            class,
            op,
            limit,
        })
    }

    /// The observed value in `report`, or why there is none.
    /// The metric on the recorded counts (a live run's, or a saved report's
    /// rebuilt by `report::recorded`: the same numbers either way).
    fn observe(&self, recorder: &Recorder, info: &RunInfo) -> Result<f64, String> {
        let completed = recorder.completed();
        let class_index = |wanted: &str| recorder.class_names.iter().position(|n| n == wanted);
        match self.metric {
            Metric::Latency(quantile) => {
                let mut merged = crate::record::new_histogram();
                for (name, class) in recorder.class_names.iter().zip(&recorder.classes) {
                    if self.class.as_deref().is_some_and(|wanted| wanted != name) {
                        continue;
                    }
                    let _ = merged.add(&class.latency_us);
                }
                if merged.is_empty() {
                    return Err("no responses to measure".to_string());
                }
                Ok(merged.value_at_quantile(quantile) as f64 / 1000.0)
            }
            Metric::ErrorRate => {
                if completed == 0 {
                    return Err("no completed requests".to_string());
                }
                let transport: u64 = recorder.errors.iter().sum();
                let failed: u64 = recorder.classes.iter().map(|class| class.failed).sum();
                Ok((transport + failed) as f64 / completed as f64)
            }
            Metric::Share | Metric::Count => {
                let class = self.class.as_deref().unwrap_or_default();
                let count = class_index(class).map_or(0, |i| recorder.classes[i].count);
                if self.metric == Metric::Count {
                    Ok(count as f64)
                } else if completed == 0 {
                    Err("no completed requests".to_string())
                } else {
                    Ok(count as f64 / completed as f64)
                }
            }
            Metric::Rps => Ok(if info.window_s > 0.0 {
                recorder.sent as f64 / info.window_s
            } else {
                0.0
            }),
            Metric::Dropped => Ok(recorder.dropped as f64),
        }
    }

    fn show(&self, value: f64) -> String {
        match self.metric {
            Metric::ErrorRate | Metric::Share => crate::units::percent(value),
            Metric::Latency(_) => format!("{value:.2} ms"),
            _ => crate::units::trim_float((value * 100.0).round() / 100.0),
        }
    }

    /// The threshold as a check on a run's recorded counts.
    pub fn check(&self, recorder: &Recorder, info: &RunInfo) -> Check {
        let expected = json!({ "threshold": self.text, "limit": self.limit });
        match self.observe(recorder, info) {
            Ok(value) => {
                let holds = match self.op {
                    Op::Lt => value < self.limit,
                    Op::Le => value <= self.limit,
                    Op::Gt => value > self.limit,
                    Op::Ge => value >= self.limit,
                };
                let verdict = if holds { Verdict::Pass } else { Verdict::Fail };
                Check::new(
                    self.text.clone(),
                    "threshold",
                    verdict,
                    json!(value),
                    expected,
                    format!(
                        "observed {}: the threshold {}",
                        self.show(value),
                        if holds { "holds" } else { "is broken" }
                    ),
                )
            }
            Err(why) => Check::new(
                self.text.clone(),
                "threshold",
                Verdict::Inconclusive,
                serde_json::Value::Null,
                expected,
                format!("cannot evaluate: {why}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let classes = vec!["canary".to_string(), "stable".to_string()];
        let t = Threshold::parse("share[canary] > 5%", &classes).unwrap();
        assert_eq!((t.metric, t.op, t.limit), (Metric::Share, Op::Gt, 0.05));
        let t = Threshold::parse("p99_ms<=300", &classes).unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::Latency(0.99), Op::Le, 300.0)
        );
        for (text, why) in [
            ("p98_ms < 3", "no metric 'p98_ms'"),
            ("share[canry] > 5%", "no class 'canry'"),
            ("share > 5%", "needs a class"),
            ("rps[canary] > 5", "takes no class"),
            ("p99_ms = 3", "expected METRIC OP VALUE"),
            ("p99_ms < fast", "not a number"),
        ] {
            let err = Threshold::parse(text, &classes).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
