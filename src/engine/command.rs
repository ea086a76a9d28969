//! `gateprobe load`: plan → engine → report → exit code.
use std::sync::Arc;

use anyhow::Result;

use crate::cli::LoadArgs;
use crate::engine::{self, Live, NoObserver, Observer, RunControl, RunInfo};
use crate::plan::LoadPlan;
use crate::progress::Progress;
use crate::record::Recorder;
use crate::report::Report;

/// Runs `gateprobe load`.
pub async fn load(args: LoadArgs) -> Result<u8> {
    let plan = crate::cli::load::load_plan(&args)?;
    let (recorder, info) = execute(&plan, &mut NoObserver).await?;
    let report = Report::for_load(&plan, &recorder, &info);
    emit(&plan, &report)?;
    Ok(report.exit_code)
}

/// Runs the plan's traffic with progress; an interrupting signal
/// (SIGINT, SIGTERM, SIGHUP) stops it and keeps the partial results.
pub async fn execute(plan: &LoadPlan, observer: &mut dyn Observer) -> Result<(Recorder, RunInfo)> {
    let control = RunControl::default();
    let interrupt = control.clone();
    let signal = crate::signals::interrupt();
    let on_signal = tokio::spawn(async move {
        signal.cancelled().await;
        interrupt.interrupt();
    });
    let live = Arc::new(Live::new(plan.classifier.names().len()));
    let progress = Progress::start(
        plan.quiet,
        plan.duration,
        plan.classifier.names(),
        live.clone(),
    );
    if !plan.quiet {
        crate::errln!(
            "gateprobe: {} {} — {}",
            plan.request.method,
            plan.request.display_url,
            plan.describe_load()
        );
    }
    let result = engine::run(plan, control, live, observer).await;
    on_signal.abort();
    if let Some(progress) = progress {
        progress.finish();
    }
    result
}

/// Writes the terminal summary and the requested report files.
pub fn emit(plan: &LoadPlan, report: &Report) -> Result<()> {
    crate::output::emit(&plan.outputs, plan.quiet, report)
}
