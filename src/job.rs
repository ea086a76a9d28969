//! The commands' shared flow: plan → run → report → outputs → exit code.
use anyhow::Result;

use crate::output::emit;
use crate::report::read_saved;

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
        let found = crate::report::recompute(&report)
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
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect();
            crate::errln!(
                "gateprobe: recomputed {} fixed-horizon check{} from the recorded data: all equal the saved ones{}",
                found.same,
                if found.same == 1 { "" } else { "s" },
                if kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; kept as saved (sequential or per-request, not in a report): {}",
                        kept.join(", ")
                    )
                }
            );
        }
    }
    emit(&args.outputs, args.quiet, &report)?;
    Ok(report.verdict.exit_code())
}
