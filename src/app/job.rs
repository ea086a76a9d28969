//! The one pipeline every command, scenario step and demo step goes
//! through: a command line becomes a planned [`Job`]; the job runs to a
//! measurement and its analyses' checks ([`Job::execute`], which returns the
//! report with its one verdict); [`finish`] writes the outputs and returns
//! the exit code.
use anyhow::Result;

use crate::app::steps::{self, Step, Work};
use crate::canary::CanaryPlan;
use crate::check::threshold::Threshold;
use crate::check::Verdict;
use crate::cli::Command;
use crate::engine::NoObserver;
use crate::exit::UsageError;
use crate::output::emit;
use crate::plan::{LoadPlan, Outputs};
use crate::report::analysis::{self, Live, Observed, Planned, ALL};
use crate::report::{read_saved, Report};
use crate::throttle::ThrottlePlan;

/// A measurement, planned: what `load`, `canary`, `throttle` or a scenario
/// step runs.
pub enum Job {
    /// Traffic, and the thresholds checked on it (a scenario's; none for `load`).
    Load(Box<LoadPlan>, Vec<Threshold>),
    Canary(Box<CanaryPlan>),
    Throttle(Box<ThrottlePlan>),
}

impl Job {
    /// Plans a measuring command (`load`, `canary`, `throttle`); `None` for
    /// the others. Every mistake is a usage error.
    pub fn plan(command: &Command) -> Result<Option<Self>, UsageError> {
        Ok(Some(match command {
            Command::Load(args) => {
                Job::Load(Box::new(crate::cli::load::load_plan(args)?), Vec::new())
            }
            Command::Canary(args) => Job::Canary(Box::new(crate::cli::canary::canary_plan(args)?)),
            Command::Throttle(args) => {
                Job::Throttle(Box::new(crate::cli::throttle::throttle_plan(args)?))
            }
            _ => return Ok(None),
        }))
    }

    fn load(&self) -> &LoadPlan {
        match self {
            Job::Load(plan, _) => plan,
            Job::Canary(plan) => &plan.load,
            Job::Throttle(plan) => &plan.load,
        }
    }

    pub fn outputs(&self) -> &Outputs {
        &self.load().outputs
    }

    pub fn quiet(&self) -> bool {
        self.load().quiet
    }

    /// What the job planned, as the analyses read it.
    fn planned(&self) -> Planned<'_> {
        match self {
            Job::Load(plan, thresholds) => Planned::Load { plan, thresholds },
            Job::Canary(plan) => Planned::Canary(plan),
            Job::Throttle(plan) => Planned::Throttle(plan),
        }
    }

    /// What the run will do and why, printed before it starts.
    pub fn describe(&self) -> Vec<String> {
        analysis::describe(ALL, self.planned())
    }

    /// Runs the job to its report: the measurement, the checks and the verdict.
    pub async fn execute(&self) -> Result<Report> {
        Ok(match self {
            Job::Load(plan, _) => {
                let (recorder, info) =
                    crate::engine::command::execute(plan, &mut NoObserver).await?;
                let live = Live {
                    planned: self.planned(),
                    observed: Observed::Nothing,
                    recorder: &recorder,
                    info: &info,
                };
                analysis::analyse(ALL, live)
            }
            Job::Canary(plan) => crate::app::canary::verify(plan).await?,
            Job::Throttle(plan) if plan.load.request.api_keys.values.len() > 1 => {
                per_key(plan).await?
            }
            Job::Throttle(plan) => crate::app::throttle::probe(plan).await?,
        })
    }
}

/// `throttle --api-keys` with several keys: usage plans limit each key on
/// its own bucket, so each key is probed in turn, alone, and estimated on
/// its own; the report holds one step per key and the worst verdict.
async fn per_key(plan: &ThrottlePlan) -> Result<Report> {
    let keys = &plan.load.request.api_keys;
    let steps: Vec<Step> = (0..keys.values.len())
        .map(|slot| {
            let mut one = plan.clone();
            one.load.request.api_keys = keys.only(slot);
            let name = format!("key {}", keys.labels[slot]);
            Step::new(name.clone(), name, Work::Job(Job::Throttle(Box::new(one))))
        })
        .collect();
    let target = &plan.load.request.display_url;
    steps::execute("throttle", &steps, target, plan.load.quiet).await
}

/// Runs a measuring command end to end: plan lines, the job, the outputs;
/// returns the exit code.
pub async fn run(job: Job) -> Result<u8> {
    if !job.quiet() {
        for line in job.describe() {
            crate::errln!("gateprobe: {line}");
        }
    }
    let report = job.execute().await?;
    finish(job.outputs(), job.quiet(), &report)
}

/// Writes the outputs of a finished report and returns its exit code: the
/// last step of every command.
pub fn finish(outputs: &Outputs, quiet: bool, report: &Report) -> Result<u8> {
    finish_with(outputs, quiet, report, None)
}

/// [`finish`], with `summary` (when given) printed in place of the text
/// report's own ending, as `gateprobe run` does with its steps' lines.
pub fn finish_with(
    outputs: &Outputs,
    quiet: bool,
    report: &Report,
    summary: Option<fn(&Report) -> String>,
) -> Result<u8> {
    let sealed;
    let report = if report.shard.is_some() || report.steps.iter().any(|s| s.report.shard.is_some())
    {
        let mut copy = report.clone();
        copy.seal();
        sealed = copy;
        &sealed
    } else {
        report
    };
    emit(outputs, quiet || summary.is_some(), report)?;
    if let (Some(summary), false) = (summary, quiet) {
        crate::out!("{}", summary(report));
    }
    Ok(exit_code(report, quiet))
}

/// The process's exit code for a finished report: its own, except for one
/// shard of several that measured, which exits 0 whatever its checks said
/// (they see its stripe alone; `gateprobe merge` of all shards gives the
/// run's verdict and exit code), so that its Job or matrix step succeeds
/// and the merge runs. Could-not-measure and interrupted shards keep theirs.
pub fn exit_code(report: &Report, quiet: bool) -> u8 {
    let shard = report.shard.as_ref();
    let one_of_several = shard.is_some_and(|s| s.count > 1 && s.merged.is_empty());
    let measured = matches!(
        report.verdict,
        Verdict::Pass | Verdict::Fail | Verdict::Inconclusive
    ) && report.run.ended != "interrupted";
    match shard {
        Some(shard) if one_of_several && measured => {
            if !quiet && report.exit_code != 0 {
                crate::errln!(
                    "gateprobe: shard {}/{} measured its part ({} on its own); it exits 0: `gateprobe merge` of all {} shards gives the run's verdict",
                    shard.index,
                    shard.count,
                    report.verdict.as_str(),
                    shard.count
                );
            }
            crate::exit::PASS
        }
        _ => report.exit_code,
    }
}

/// `gateprobe report SAVED.json`: reads a saved report (any version-1 report)
/// and writes it again in the formats asked for; the terminal summary when
/// none is. Exits with the saved report's exit code, so a pipeline can gate
/// on a report made elsewhere (e.g. merged shards).
pub fn rerender(args: crate::cli::ReportCommandArgs) -> Result<u8> {
    crate::plan::check_outputs(&args.outputs)?;
    let shown = args.saved.display().to_string();
    let text = crate::input::read_text(&args.saved, "saved report", crate::input::REPORT_LIMIT)?;
    let report = read_saved(&shown, &text)?;
    if args.recompute {
        let found = crate::report::recompute(ALL, &report)
            .map_err(|why| crate::exit::UsageError(format!("{shown}: --recompute: {why}")))?;
        if let Some(differs) = found.differs {
            return Err(crate::exit::UsageError(format!(
                "{shown}: --recompute: {differs}: the report does not match its own data"
            ))
            .into());
        }
        if !args.quiet {
            let kept: Vec<String> = found
                .kept
                .iter()
                .map(|(why, count)| format!("{count} {why}"))
                .collect();
            crate::errln!(
                "gateprobe: recomputed {} fixed-horizon check{} from the recorded data: all equal the saved ones{}",
                found.same,
                if found.same == 1 { "" } else { "s" },
                if kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; kept as saved: {}",
                        kept.join("; ")
                    )
                }
            );
        }
    }
    finish(&args.outputs, args.quiet, &report)?;
    Ok(report.verdict.exit_code())
}

/// `merge --samples OUT` and `--samples-from FILE…` come together.
fn check_samples_flags(args: &crate::cli::MergeArgs) -> Result<(), UsageError> {
    match (args.outputs.path("--samples"), args.samples_from.is_empty()) {
        (Some(_), true) => Err(UsageError(
            "--samples: merge concatenates the shards' samples files: name them with --samples-from FILE".to_string(),
        )),
        (None, false) => Err(UsageError(
            "--samples-from: give the merged file with --samples FILE".to_string(),
        )),
        _ => Ok(()),
    }
}

/// `gateprobe merge SHARD.json…`: the shards' reports, checked to be one
/// run's, merged (a scenario step by step) and written like any report;
/// exits with the merged verdict.
pub fn merge(args: crate::cli::MergeArgs) -> Result<u8> {
    use crate::report::merge::{check_shards, merge_one, Input};
    crate::plan::check_outputs(&args.outputs)?;
    check_samples_flags(&args)?;
    let mut saved = Vec::new();
    for path in &args.shards {
        let shown = path.display().to_string();
        let text = crate::input::read_text(path, "shard report", crate::input::REPORT_LIMIT)?;
        let report = read_saved(&shown, &text)?;
        saved.push((shown, report));
    }
    let inputs: Vec<Input<'_>> = saved
        .iter()
        .map(|(shown, report)| Input { shown, report })
        .collect();
    let coverage = check_shards(&inputs, args.allow_partial)?;
    let first = inputs[0].report;
    let mut report = if first.steps.is_empty() {
        merge_one(ALL, &inputs, &coverage)?
    } else {
        let mut steps = Vec::new();
        for (index, step) in first.steps.iter().enumerate() {
            let of_step: Vec<Input<'_>> = inputs
                .iter()
                .map(|input| Input {
                    shown: input.shown,
                    report: &input.report.steps[index].report,
                })
                .collect();
            let merged = merge_one(ALL, &of_step, &coverage)
                .map_err(|why| UsageError(format!("step {}: {}", step.name, why.0)))?;
            steps.push(crate::report::StepReport {
                name: step.name.clone(),
                report: merged,
            });
        }
        let planned = steps.len();
        crate::app::steps::combine("run", steps, 0, planned, &first.run.target)
    };
    if !coverage.missing.is_empty() && report.verdict == Verdict::Pass {
        report.verdict = Verdict::Inconclusive;
        report.exit_code = report.verdict.exit_code();
        report.reason = format!(
            "{} of {} shards merged (--allow-partial): part of the run is unseen, so no pass",
            coverage.held.len(),
            coverage.count
        );
    }
    if !args.quiet {
        crate::errln!(
            "gateprobe: merged {} of {} shard{}; every check computed again on the merged data at the run's fixed size{}",
            coverage.held.len(),
            coverage.count,
            if coverage.count == 1 { "" } else { "s" },
            if coverage.missing.is_empty() {
                String::new()
            } else {
                format!("; missing {:?}", coverage.missing)
            }
        );
    }
    if let Some(path) = args.outputs.path("--samples") {
        let rows =
            crate::engine::samples::concatenate(path, &args.samples_from).map_err(UsageError)?;
        if !args.quiet {
            crate::errln!(
                "gateprobe: {rows} sample rows of {} files in {}",
                args.samples_from.len(),
                path.display()
            );
        }
    }
    finish(&args.outputs, args.quiet, &report)
}
