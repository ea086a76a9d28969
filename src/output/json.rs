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

    fn render(&self, report: &Report) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(report)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
