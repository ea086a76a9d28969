//! Output: every format renders the one report model, and this module
//! decides where each goes. One format = one file implementing [`Format`]
//! and one entry in [`FORMATS`].
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod markup;
pub mod prometheus;
pub mod text;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::report::Report;

/// One output format: renders a report to bytes.
pub trait Format {
    /// The flag that selects it (`--json`), also its name in messages.
    fn flag(&self) -> &'static str;
    /// The flag's help line.
    fn help(&self) -> &'static str;
    /// The file extension a saved report in this format is served under
    /// (`gateprobe serve`'s `/v1/runs/{key}/report.EXT`), and its media type.
    fn extension(&self) -> &'static str;
    fn media_type(&self) -> &'static str;
    fn render(&self, report: &Report) -> Result<Vec<u8>>;
    /// An environment variable naming a file this format is also appended
    /// to when set (GitHub Actions' job summary for Markdown).
    fn append_to_env(&self) -> Option<&'static str> {
        None
    }
}

/// Every requested (format, file), in the list's order.
pub fn files(
    outputs: &crate::plan::Outputs,
) -> impl Iterator<Item = (&'static dyn Format, &std::path::PathBuf)> {
    FORMATS
        .iter()
        .filter_map(|format| Some((*format, outputs.path(format.flag())?)))
}

/// Every file format, in the order they are written and listed in `--help`.
/// The flags, the output checks and the writing all come from this list.
pub const FORMATS: &[&dyn Format] = &[
    &json::Json,
    &junit::Junit,
    &markdown::Markdown,
    &html::Html,
    &prometheus::Prometheus,
];

/// Writes every requested format, then the terminal summary (to stderr when
/// a report goes to stdout); `--markdown` is also appended to
/// `$GITHUB_STEP_SUMMARY` when that is set (GitHub Actions' job summary).
pub fn emit(outputs: &crate::plan::Outputs, quiet: bool, report: &Report) -> Result<()> {
    let mut written = Vec::new();
    let mut to_stdout = false;
    for (format, path) in files(outputs) {
        write(format, report, path)?;
        if path.as_os_str() == "-" {
            to_stdout = true;
        } else {
            written.push(path.display().to_string());
        }
        let Some(variable) = format.append_to_env() else {
            continue;
        };
        if let Some(summary) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .with_context(|| {
                    format!("{variable} {}: cannot append", summary.to_string_lossy())
                })?;
            file.write_all(&format.render(report)?)?;
        }
    }
    if !quiet {
        let mut text = text::render(report);
        for path in &written {
            text.push_str(&format!("  report    {path}\n"));
        }
        if to_stdout {
            crate::err!("{text}");
        } else {
            crate::out!("{text}");
        }
    }
    Ok(())
}

/// Writes `report` with `format` to `path` (`-` is stdout). A file is
/// written whole or not at all (a temporary file beside it, then a rename),
/// so an interrupted or failing run never leaves half a report for CI to
/// read. Standard output that is closed or full (`| head`, `> /dev/full`) is
/// not an error of the run: the write is dropped quietly.
pub fn write(format: &dyn Format, report: &Report, path: &Path) -> Result<()> {
    let bytes = format.render(report)?;
    if path.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&bytes).and_then(|_| stdout.flush());
        return Ok(());
    }
    write_atomically(path, &bytes).with_context(|| {
        format!(
            "{} {}: cannot write the report",
            format.flag(),
            path.display()
        )
    })
}

/// Writes `bytes` to a temporary file in `path`'s folder and renames it over
/// `path` (atomic on one file system).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
