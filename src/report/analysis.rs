//! The analyses: every kind of check a report holds sits behind one trait
//! ([`Analysis`]), and all of them are in one list ([`ALL`]). An analysis
//! owns its checks' kinds, its section of the report, its plan lines, its
//! live checks, their recomputation from saved data, their merge over
//! shards, its section's consistency, and its rendering in every format.
//! The job ([`analyse`]), `gateprobe merge`, `report --recompute`, the
//! saved-report checks and every renderer loop over the list and name no
//! analysis: adding one is its own module, one entry here, and its schema
//! fragment (docs/development.md walks through one).
use super::markup::{Figure, Markup};
use super::{Check, Report};
use crate::canary::CanaryPlan;
use crate::check::threshold::Threshold;
use crate::engine::RunInfo;
use crate::plan::LoadPlan;
use crate::record::Recorder;
use crate::throttle::ThrottlePlan;

/// Every analysis, in the order its checks, sections and charts appear.
pub const ALL: &[&dyn Analysis] = &[
    &super::canary::Canary,
    &super::throttle::Throttle,
    &super::thresholds::Thresholds,
];

/// What a job planned; each analysis reads its own part.
#[derive(Clone, Copy)]
pub enum Planned<'a> {
    /// `gateprobe load`, or a scenario's load step with its thresholds.
    Load {
        plan: &'a LoadPlan,
        thresholds: &'a [Threshold],
    },
    Canary(&'a CanaryPlan),
    Throttle(&'a ThrottlePlan),
}

impl<'a> Planned<'a> {
    /// The traffic every job sends.
    pub fn load(self) -> &'a LoadPlan {
        match self {
            Planned::Load { plan, .. } => plan,
            Planned::Canary(plan) => &plan.load,
            Planned::Throttle(plan) => &plan.load,
        }
    }
}

/// What a job's own observer saw, beyond the recorder.
pub enum Observed<'a, 'w> {
    Nothing,
    Canary(&'a mut crate::canary::watch::Watch<'w>),
    Throttle {
        watch: &'a crate::throttle::watch::Watch<'w>,
        overload_rate: Option<f64>,
        interrupted: bool,
    },
}

/// A finished run, as the analyses decide on it.
pub struct Live<'a, 'w> {
    pub planned: Planned<'a>,
    pub observed: Observed<'a, 'w>,
    pub recorder: &'a Recorder,
    pub info: &'a RunInfo,
}

/// A saved check rebuilt from the saved recorded data: `Ok(Ok(check))`, or
/// `Ok(Err(why))` when it needs what a report does not hold (it is then
/// kept as saved), or `Err` when the saved report cannot be right.
pub type Rechecked = Result<Result<Check, &'static str>, String>;

/// Shards being merged: the merged report began as a copy of the first
/// one, and holds the shards' recorded data added up.
pub struct Merging<'a> {
    pub inputs: &'a [super::merge::Input<'a>],
    pub recorder: &'a Recorder,
    pub info: &'a RunInfo,
}

impl Merging<'_> {
    /// The first shard given, whose copy the merged report began as.
    pub fn first(&self) -> &Report {
        self.inputs[0].report
    }
}

/// One kind of analysis. Every method but the first three has a default
/// that does nothing, so an analysis writes only what it has.
pub trait Analysis: Sync {
    /// Its name, as the docs list it.
    fn name(&self) -> &'static str;

    /// Whether a check of this `kind` is one it makes.
    fn owns(&self, kind: &str) -> bool;

    /// A saved check of its own, rebuilt by the rule that made it live.
    fn recheck(
        &self,
        saved: &Report,
        recorder: &Recorder,
        info: &RunInfo,
        check: &Check,
    ) -> Rechecked;

    /// What it will check and how, printed before the run starts.
    fn describe(&self, _planned: Planned<'_>) -> Vec<String> {
        Vec::new()
    }

    /// Adds its checks (and its section) to a finished run's report. An
    /// analysis that owns a job's verdict rule sets the verdict here; any
    /// other adds its checks through [`Report::add_checks`].
    fn decide(&self, _live: &mut Live<'_, '_>, _report: &mut Report) {}

    /// Adds its checks of merged shards to `merged`; returns whether it
    /// also decided the merged verdict (else the checks' combined verdict
    /// is the run's). By default, each of its checks is rebuilt on the
    /// merged data by [`Analysis::recheck`].
    fn merge(&self, merging: &Merging<'_>, merged: &mut Report) -> Result<bool, String> {
        let first = merging.first();
        for check in first.checks.iter() {
            if !self.owns(&check.kind) {
                continue;
            }
            let again = self
                .recheck(first, merging.recorder, merging.info, check)
                .map_err(|why| format!("check '{}': {why}", check.name))?
                .map_err(|why| {
                    format!(
                        "check '{}': cannot be computed again on merged shards: {why}",
                        check.name
                    )
                })?;
            merged.checks.push(again);
        }
        Ok(false)
    }

    /// Its section agrees with the rest of a saved report (fields under `at`).
    fn consistent(&self, _report: &Report, _at: &str) -> Result<(), String> {
        Ok(())
    }

    /// The plan facts every shard of one run shares, beyond the run's own.
    fn plan_facts(&self, _report: &Report) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Its section in the terminal summary, before the checks.
    fn text(&self, _report: &Report, _out: &mut String) {}

    /// Its section in Markdown and HTML, after the checks.
    fn markup(&self, _markup: &dyn Markup, _report: &Report, _out: &mut String) {}

    /// Its charts (drawn by the HTML report).
    fn figures(&self, _report: &Report) -> Vec<Figure> {
        Vec::new()
    }
}

/// The analysis that makes checks of `kind`.
pub fn owner(list: &[&'static dyn Analysis], kind: &str) -> Option<&'static dyn Analysis> {
    list.iter().copied().find(|analysis| analysis.owns(kind))
}

/// A finished run's report: what it measured, then each analysis's checks
/// and section, in the list's order.
pub fn analyse(list: &[&'static dyn Analysis], mut live: Live<'_, '_>) -> Report {
    let mut report = Report::for_load(live.planned.load(), live.recorder, live.info);
    for analysis in list {
        analysis.decide(&mut live, &mut report);
    }
    report.overrule_local_exhaustion();
    report
}

/// The plan lines of every analysis, for what a job planned.
pub fn describe(list: &[&'static dyn Analysis], planned: Planned<'_>) -> Vec<String> {
    list.iter()
        .flat_map(|analysis| analysis.describe(planned))
        .collect()
}

impl Report {
    /// Adds checks that do not own the run's verdict rule: one that is
    /// worse than the verdict so far (a fail, or an inconclusive over a
    /// pass) becomes the verdict, with its reason. A run that could not
    /// measure stays so.
    pub fn add_checks(&mut self, checks: Vec<Check>) {
        use crate::check::Verdict;
        let rank = |verdict: Verdict| match verdict {
            Verdict::Pass => 0,
            Verdict::Inconclusive => 1,
            Verdict::Fail => 2,
            Verdict::Error => 3,
        };
        let (verdict, deciding) = crate::check::combine(&checks);
        if rank(verdict) > rank(self.verdict) && self.verdict != Verdict::Error {
            if let Some(check) = deciding {
                self.reason = format!("{}: {}", check.name, check.reason);
            }
            self.verdict = verdict;
            self.exit_code = verdict.exit_code();
        }
        self.checks.extend(checks);
    }
}
