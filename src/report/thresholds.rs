//! Thresholds as one analysis: a scenario's `thresholds:` on a load step,
//! each a fixed-horizon check on the step's recorded data
//! ([`crate::check::threshold`]), recomputed exactly from a saved report
//! and from merged shards.
use crate::check::threshold::Threshold;
use crate::engine::RunInfo;
use crate::record::Recorder;
use crate::report::analysis::{Analysis, Live, Planned, Rechecked};
use crate::report::{Check, Report};

pub struct Thresholds;

impl Analysis for Thresholds {
    fn name(&self) -> &'static str {
        "thresholds"
    }

    fn owns(&self, kind: &str) -> bool {
        kind == "threshold"
    }

    fn decide(&self, live: &mut Live<'_, '_>, report: &mut Report) {
        if let Planned::Load { thresholds, .. } = live.planned {
            report
                .checks
                .extend(thresholds.iter().map(|t| t.check(live.recorder, live.info)));
            report.decide_by_checks();
        }
    }

    fn recheck(&self, _: &Report, recorder: &Recorder, info: &RunInfo, check: &Check) -> Rechecked {
        let text = check.expected["threshold"].as_str().unwrap_or_default();
        Ok(Ok(
            Threshold::parse(text, &recorder.class_names)?.check(recorder, info)
        ))
    }
}
