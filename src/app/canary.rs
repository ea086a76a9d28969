//! `gateprobe canary`'s flow: the load engine sends the plan's traffic, the
//! canary's watch ([`crate::canary::watch::Watch`]) decides when to stop,
//! and the analyses state the checks ([`crate::report::analysis`]).
use anyhow::Result;

use crate::canary::watch::Watch;
use crate::canary::CanaryPlan;
use crate::engine::command;
use crate::report::analysis::{analyse, Live, Observed, Planned, ALL};
use crate::report::Report;

/// Sends the plan's traffic and returns the report with its checks.
pub async fn verify(plan: &CanaryPlan) -> Result<Report> {
    let mut watch = Watch::new(plan);
    let (recorder, info) = command::execute(&plan.load, &mut watch).await?;
    watch.finish();
    let live = Live {
        planned: Planned::Canary(plan),
        observed: Observed::Canary(&mut watch),
        recorder: &recorder,
        info: &info,
    };
    Ok(analyse(ALL, live))
}
