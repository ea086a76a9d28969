//! The throttle probe as one analysis: which limiter it met, its
//! parameters with their intervals, and the gates on what was expected
//! (the model, each parameter, a declared quota).
use super::render;
use crate::engine::RunInfo;
use crate::record::Recorder;
use crate::report::analysis::{Analysis, Live, Observed, Planned, Rechecked};
use crate::report::markup::{Figure, Markup};
use crate::report::{Check, Report};
use crate::throttle::gate::{gate, quota_check, Parameter};

pub struct Throttle;

/// Why a throttle check cannot be recomputed from a saved report.
const PER_REQUEST: &str = "throttle model and undecided gates (chosen from the probe's \
                           per-request records)";

impl Analysis for Throttle {
    fn name(&self) -> &'static str {
        "throttle"
    }

    fn owns(&self, kind: &str) -> bool {
        kind == "throttle" || kind.starts_with("throttle.")
    }

    fn describe(&self, planned: Planned<'_>) -> Vec<String> {
        match planned {
            Planned::Throttle(plan) => plan.describe(),
            _ => Vec::new(),
        }
    }

    fn decide(&self, live: &mut Live<'_, '_>, report: &mut Report) {
        if let (
            Planned::Throttle(plan),
            Observed::Throttle {
                watch,
                overload_rate,
                interrupted,
            },
        ) = (live.planned, &live.observed)
        {
            super::decide_live(
                plan,
                watch,
                live.recorder,
                *overload_rate,
                *interrupted,
                report,
            );
        }
    }

    /// A gate decided on an estimate is decided again from the saved
    /// estimate and expectation; the model and an undecided gate were
    /// chosen from per-request records a report does not hold.
    fn recheck(&self, saved: &Report, _: &Recorder, _: &RunInfo, check: &Check) -> Rechecked {
        let section = || {
            saved
                .throttle
                .as_ref()
                .ok_or("a throttle check but no throttle section")
        };
        Ok(Ok(match check.kind.as_str() {
            "throttle" if check.interval.is_some() => {
                let section = section()?;
                let parameter = Parameter::ALL
                    .into_iter()
                    .find(|p| p.check_name() == check.name)
                    .ok_or("a throttle check on no parameter the probe estimates")?;
                let expected = section
                    .expected(parameter)
                    .ok_or("a throttle check with no expectation in the throttle section")?;
                gate(
                    parameter,
                    (expected, parameter.slack(expected, section.tolerance)),
                    section.estimate(parameter),
                    section.confidence,
                    "",
                )
            }
            "throttle.quota" => quota_check(
                section()?
                    .quota
                    .as_ref()
                    .ok_or("a quota check but no quota in the throttle section")?,
            ),
            _ => return Ok(Err(PER_REQUEST)),
        }))
    }

    fn consistent(&self, report: &Report, at: &str) -> Result<(), String> {
        match &report.throttle {
            Some(throttle) => {
                super::consistency::consistent(report, throttle, &format!("{at}throttle."))
            }
            None => Ok(()),
        }
    }

    fn text(&self, report: &Report, out: &mut String) {
        if let Some(throttle) = &report.throttle {
            render::text(out, throttle);
        }
    }

    fn markup(&self, markup: &dyn Markup, report: &Report, out: &mut String) {
        if let Some(throttle) = &report.throttle {
            render::markup(markup, out, throttle);
        }
    }

    fn figures(&self, report: &Report) -> Vec<Figure> {
        let Some(throttle) = &report.throttle else {
            return Vec::new();
        };
        let mut figures = vec![render::probe_figure(report, throttle)];
        figures.extend(render::admission_figure(throttle));
        figures.extend(render::queue_figure(throttle));
        figures
    }
}
