//! Runs a plan's traffic with progress and Ctrl-C handling: the engine
//! step of every job ([`crate::app::job`]).
use std::sync::Arc;

use anyhow::Result;

use crate::engine::progress::Progress;
use crate::engine::{self, Live, Observer, RunControl, RunInfo};
use crate::plan::LoadPlan;
use crate::record::Recorder;

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
        if let Some(sharding) = &plan.sharding {
            if let Some(at) = sharding.start_at {
                crate::errln!(
                    "gateprobe: time 0 is {}{}",
                    humantime::format_rfc3339_millis(at),
                    sharding.start_at_relative.as_ref().map_or(String::new(), |given| format!(
                        " (--start-at {given}, rounded up to a whole second: shards started together agree)"
                    ))
                );
            }
        }
    }
    let result = engine::run(plan, control, live, observer).await;
    on_signal.abort();
    if let Some(progress) = progress {
        progress.finish();
    }
    result
}
