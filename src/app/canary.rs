//! `gateprobe canary`'s flow: the load engine sends the plan's traffic, the
//! canary's watch ([`crate::canary::watch::Watch`]) decides when to stop,
//! and the report layer states the checks ([`crate::report::canary`]).
use anyhow::Result;

use crate::canary::watch::Watch;
use crate::canary::CanaryPlan;
use crate::engine::command;
use crate::report::{canary, Report};

/// Sends the plan's traffic and returns the report with its checks.
pub async fn verify(plan: &CanaryPlan) -> Result<Report> {
    let mut watch = Watch::new(plan);
    let (recorder, info) = command::execute(&plan.load, &mut watch).await?;
    watch.finish();
    Ok(canary::build_report(plan, &mut watch, &recorder, &info))
}
