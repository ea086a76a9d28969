//! `--json`: the versioned machine-readable report (`gateprobe.report/v1`).
use anyhow::Result;

use super::Format;
use crate::report::Report;

pub struct Json;

impl Format for Json {
    fn flag(&self) -> &'static str {
        "--json"
    }

    fn help(&self) -> &'static str {
        "Write the JSON report to FILE (`-` for stdout)"
    }

    fn extension(&self) -> &'static str {
        "json"
    }

    fn media_type(&self) -> &'static str {
        "application/json"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        // The remedies the other formats print, written in (the saved
        // report then carries them).
        let mut filled = report.clone();
        filled.fill_remedies();
        let mut bytes = serde_json::to_vec_pretty(&filled)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
