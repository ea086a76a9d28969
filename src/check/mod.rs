//! A gate check and its verdict: what an analysis returns, and the one rule
//! that turns checks into a verdict (and so an exit code).
pub mod threshold;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    Error,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => crate::exit::PASS,
            Verdict::Fail => crate::exit::FAIL,
            Verdict::Inconclusive => crate::exit::INCONCLUSIVE,
            Verdict::Error => crate::exit::ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Error => "error",
        }
    }
}

/// One gate check: what was observed against what was expected, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub kind: String,
    pub verdict: Verdict,
    pub observed: serde_json::Value,
    pub expected: serde_json::Value,
    pub reason: String,
    /// Confidence interval of the observed quantity, with its level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Responses the check planned for, and how many it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// An undecided check: what would decide it (more responses, a longer
    /// run, `--no-keepalive`), as every format prints it after "to decide:".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    /// How it was made (e.g. a confidence sequence, valid at any stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Check {
    /// A check with only the required fields; the optional ones are set by hand.
    pub fn new(
        name: impl Into<String>,
        kind: &str,
        verdict: Verdict,
        observed: serde_json::Value,
        expected: serde_json::Value,
        reason: String,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.to_string(),
            verdict,
            observed,
            expected,
            reason,
            interval: None,
            p_value: None,
            planned: None,
            used: None,
            remedy: None,
        }
    }
}

/// The verdict of a set of checks: any fail fails, any inconclusive (or
/// error) leaves it inconclusive, else pass. Returns the deciding check too.
pub fn combine(checks: &[Check]) -> (Verdict, Option<&Check>) {
    for wanted in [Verdict::Fail, Verdict::Error, Verdict::Inconclusive] {
        if let Some(check) = checks.iter().find(|check| check.verdict == wanted) {
            let verdict = if wanted == Verdict::Error {
                Verdict::Inconclusive
            } else {
                wanted
            };
            return (verdict, Some(check));
        }
    }
    (Verdict::Pass, None)
}
