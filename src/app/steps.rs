//! One loop for every job made of steps: a scenario's steps, and a
//! throttle probe's API keys probed in turn. Each step runs to its own
//! report (printed as it ends unless quiet); an interrupt stops the loop;
//! the steps' reports combine into one ([`combine`]) with the worst verdict.
use std::time::Duration;

use anyhow::Result;

use crate::app::job::Job;
use crate::check::Verdict;
use crate::report::{Check, Report, StepReport};

/// What a step does: a job, or a pause between jobs.
pub enum Work {
    Job(Job),
    Pause(Duration),
}

/// One step: its name in the report, the heading printed before it runs,
/// and its work.
pub struct Step {
    pub name: String,
    heading: String,
    pub work: Work,
}

impl Step {
    pub fn new(heading: String, name: String, work: Work) -> Self {
        Step {
            name,
            heading,
            work,
        }
    }
}

/// Runs the steps in order and combines their reports as `command`'s.
pub async fn execute(command: &str, steps: &[Step], target: &str, quiet: bool) -> Result<Report> {
    let mut reports: Vec<StepReport> = Vec::new();
    let mut ran = 0;
    for step in steps {
        if crate::signals::interrupted() {
            break;
        }
        if !quiet {
            crate::outln!("── {} ──", step.heading);
        }
        let report = match &step.work {
            Work::Pause(duration) => {
                let interrupted = tokio::select! {
                    _ = tokio::time::sleep(*duration) => false,
                    _ = crate::signals::interrupt().cancelled_owned() => true,
                };
                if interrupted {
                    break;
                }
                ran += 1;
                continue;
            }
            Work::Job(job) => Box::pin(job.execute()).await?,
        };
        if !quiet {
            crate::out!("{}", crate::output::text::render(&report));
        }
        let interrupted = report.run.ended == "interrupted";
        reports.push(StepReport {
            name: step.name.clone(),
            report,
        });
        if interrupted {
            break;
        }
        ran += 1;
    }
    Ok(combine(
        command,
        reports,
        steps.len() - ran,
        steps.len(),
        target,
    ))
}

/// The scenario's report: every step's checks (named `step: check`), its
/// classes and counts summed over the steps (so the books balance), and each
/// step's own report; fail if any step failed, error if one could not
/// measure, inconclusive if one was, or if a step did not run (interrupted).
pub fn combine(
    command: &str,
    steps: Vec<StepReport>,
    not_run: usize,
    planned: usize,
    target: &str,
) -> Report {
    let mut report = Report::empty(command, target);
    report.run.load = match command {
        "run" => format!("scenario of {planned} steps"),
        _ => format!("{planned} keys, probed in turn"),
    };
    for step in &steps {
        report.absorb(&step.report);
    }
    // Sharded steps make a sharded scenario: its identity is theirs (each
    // step keeps its own section, which a merge reads).
    report.shard = steps
        .iter()
        .find_map(|step| step.report.shard.as_ref())
        .map(|shard| crate::report::ShardSection {
            load: report.run.load.clone(),
            concurrency: 0,
            start_late_ms: None,
            classes: Vec::new(),
            body: None,
            schedule_lag_us: None,
            fingerprint: String::new(),
            ..shard.clone()
        });
    report.checks = steps
        .iter()
        .flat_map(|step| {
            step.report.checks.iter().map(|check| Check {
                name: format!("{}: {}", step.name, check.name),
                ..check.clone()
            })
        })
        .collect();
    let interrupted = crate::signals::interrupted()
        || steps
            .iter()
            .any(|step| step.report.run.ended == "interrupted");
    if interrupted {
        report.run.ended = "interrupted".to_string();
        report.run.end_reason = Some(format!(
            "interrupted by {}",
            crate::signals::received_name()
        ));
    }
    let worst = [Verdict::Fail, Verdict::Error, Verdict::Inconclusive]
        .into_iter()
        .find_map(|wanted| steps.iter().find(|step| step.report.verdict == wanted));
    let (verdict, reason) = match worst {
        Some(step) => (
            step.report.verdict,
            format!("step {}: {}", step.name, step.report.reason),
        ),
        None if not_run > 0 || interrupted => (
            Verdict::Inconclusive,
            format!(
                "interrupted after {} of {planned} steps: partial results",
                planned - not_run
            ),
        ),
        None if steps.len() == 1 => (Verdict::Pass, "the step passed".to_string()),
        None => (Verdict::Pass, format!("all {} steps passed", steps.len())),
    };
    report.verdict = verdict;
    report.exit_code = verdict.exit_code();
    report.reason = reason;
    report.steps = steps;
    report
}
