//! A validated throttle probe: its bounds, its search and what it expects.
use std::time::Duration;

use super::gate::Parameter;
use super::identify::Limiter;
use crate::plan::schedule::{RateCurve, Schedule};
use crate::plan::{self, LoadPlan};

/// How long the search holds `--max-rate` before concluding nothing throttles.
const HOLD_AT_MAX_S: f64 = 3.0;
/// The pacer's window is a second plus this: two sends a second apart can
/// reach the server a little closer together (timer and network jitter).
pub(crate) const PACER_MARGIN: Duration = Duration::from_millis(20);

/// Class names the probe adds (a user's `--classify` of the same name wins).
pub const QUOTA: &str = "quota";
pub const THROTTLED: &str = "throttled";
pub const FORBIDDEN: &str = "forbidden";

/// A validated probe.
#[derive(Debug, Clone)]
pub struct ThrottlePlan {
    /// Request, classifier, timeouts and outputs; schedule and bounds are set per phase.
    pub load: LoadPlan,
    pub max_rate: f64,
    pub max_requests: u64,
    pub max_duration: Duration,
    pub idle: Duration,
    pub start_rate: f64,
    pub step: Duration,
    pub expect_rate: Option<f64>,
    pub expect_burst: Option<f64>,
    pub expect_model: Option<Limiter>,
    pub expect_concurrency: Option<f64>,
    pub expect_window_limit: Option<f64>,
    pub expect_window_s: Option<f64>,
    pub expect_queue_depth: Option<f64>,
    pub tolerance: f64,
    /// Where the expected rate and burst were declared (`--aws-stage`,
    /// `--aws-usage-plan`), if not on the command line.
    pub expect_source: Option<String>,
    /// A usage plan's quota (`--aws-usage-plan`): requests per period, the
    /// period, and where it was declared.
    pub expect_quota: Option<(u64, String, String)>,
    pub honour_retry_after: bool,
    pub(crate) quota: Option<u16>,
    pub(crate) throttled: Option<u16>,
    pub(crate) forbidden: Option<u16>,
}

impl ThrottlePlan {
    /// What the probe was told to expect of a parameter.
    pub fn expected(&self, parameter: Parameter) -> Option<f64> {
        match parameter {
            Parameter::Rate => self.expect_rate,
            Parameter::Burst => self.expect_burst,
            Parameter::Concurrency => self.expect_concurrency,
            Parameter::WindowLimit => self.expect_window_limit,
            Parameter::Window => self.expect_window_s,
            Parameter::QueueDepth => self.expect_queue_depth,
        }
    }

    /// The search's rates: doubling from the start rate, the last one capped
    /// at --max-rate and held longer.
    pub(crate) fn search_steps(&self) -> Vec<(f64, f64)> {
        let step = self.step.as_secs_f64();
        let mut steps = Vec::new();
        let mut rate = self.start_rate;
        while rate < self.max_rate {
            steps.push((rate, step));
            rate *= 2.0;
        }
        steps.push((self.max_rate, HOLD_AT_MAX_S.max(step)));
        steps
    }

    /// Lines for the terminal before anything is sent.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "this probe will send at most {} requests, never more than {} in any second, \
             for at most {} (after a {} idle wait)",
            self.max_requests,
            crate::units::trim_float(self.max_rate),
            plan::format_duration(self.max_duration),
            plan::format_duration(self.idle),
        )];
        lines.push(format!(
            "search: {} rps doubling every {} up to {} rps; then 1.5× the rate where 429s began",
            crate::units::trim_float(self.start_rate),
            plan::format_duration(self.step),
            crate::units::trim_float(self.max_rate),
        ));
        let mut expected = Vec::new();
        if let Some(model) = self.expect_model {
            expected.push(format!("a {}", model.label()));
        }
        for (label, unit, value) in [
            ("rate", " rps", self.expect_rate),
            ("burst", "", self.expect_burst),
            ("concurrency", "", self.expect_concurrency),
            ("window limit", "", self.expect_window_limit),
            ("window", " s", self.expect_window_s),
            ("queue depth", "", self.expect_queue_depth),
        ] {
            if let Some(value) = value {
                expected.push(format!("{label} {}{unit}", crate::units::trim_float(value)));
            }
        }
        if !expected.is_empty() {
            lines.push(format!(
                "expecting {} (± {})",
                expected.join(", "),
                crate::units::percent(self.tolerance)
            ));
        }
        if let Some((limit, period, source)) = &self.expect_quota {
            lines.push(format!(
                "expecting the key's quota to hold at {limit} per {period} (declared by {source})"
            ));
            if self.max_requests > *limit {
                lines.push(format!(
                    "warning: this probe may send {} requests, more than the quota of {limit}                      per {period}: reaching it refuses the key until the period ends                      (--max-requests {limit} stays under it)",
                    self.max_requests
                ));
            }
        }
        lines
    }

    pub(crate) fn phase(&self, schedule: RateCurve, duration: Duration, requests: u64) -> LoadPlan {
        let mut load = self.load.clone();
        load.duration = duration.min(Duration::from_secs_f64(schedule.duration_s().min(1e9)));
        load.schedule = Schedule::Open(schedule);
        load.max_requests = Some(requests);
        load
    }
}
