//! `--samples FILE`: every request as one CSV row, streamed as the run's
//! consumer records it, for the tools people already graph raw results
//! with (k6's `--out csv`, vegeta's results). Memory stays flat: one
//! reused line buffer and a 256 KB write buffer, whatever the run's size.
//! The phases of a throttle probe and the steps of a scenario append to
//! the same file (the registry below opens each path once per process).
//! `gateprobe merge --samples OUT --samples-from SHARD.csv…` concatenates
//! shards' files.
//!
//! Columns: `shard` (I/N), `index` (the request's number in its run),
//! `due_us` (µs from the run's start when it was due), `send_lag_us` (how
//! late it left), `latency_us` (due to done: what the report's latency
//! percentiles are made of; empty when it never completed), `status` (0:
//! no response), `class`, `connection` (0: none), `outcome` (completed,
//! aborted, dropped) and `error` (the transport error's kind, if any).
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::sample::{Outcome, Sample};

/// The first line of every samples file.
pub const HEADER: &str =
    "shard,index,due_us,send_lag_us,latency_us,status,class,connection,outcome,error";

/// One open samples file.
pub struct SampleRows {
    path: PathBuf,
    out: BufWriter<File>,
    line: Vec<u8>,
    /// Why writing stopped (a full disk): said once, at the end.
    failed: Option<String>,
    pub rows: u64,
}

type Shared = Arc<Mutex<SampleRows>>;

/// Opens `path` for this process's runs: created (truncated) with its
/// header the first time, appended to by later runs of the same command.
pub fn open(path: &Path) -> std::io::Result<Shared> {
    static OPEN: Mutex<Vec<(PathBuf, Shared)>> = Mutex::new(Vec::new());
    let mut open = OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, rows)) = open.iter().find(|(known, _)| known == path) {
        return Ok(rows.clone());
    }
    let file = File::create(path)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    writeln!(out, "{HEADER}")?;
    let rows = Arc::new(Mutex::new(SampleRows {
        path: path.to_path_buf(),
        out,
        line: Vec::with_capacity(160),
        failed: None,
        rows: 0,
    }));
    open.push((path.to_path_buf(), rows.clone()));
    Ok(rows)
}

impl SampleRows {
    /// Writes one sample's row. No allocation: the line buffer is reused
    /// and the numbers are formatted into it.
    pub fn write(&mut self, sample: &Sample, shard: &str, classes: &[String]) {
        if self.failed.is_some() {
            return;
        }
        let line = &mut self.line;
        line.clear();
        let lag = sample.sent_us.saturating_sub(sample.due_us);
        let _ = write!(line, "{shard},{},{},", sample.index, sample.due_us);
        let (outcome, latency) = match sample.outcome {
            Outcome::Completed => ("completed", Some(sample.latency_us())),
            Outcome::Aborted => ("aborted", None),
            Outcome::Dropped => ("dropped", None),
        };
        if sample.outcome != Outcome::Dropped {
            let _ = write!(line, "{lag}");
        }
        line.push(b',');
        if let Some(latency) = latency {
            let _ = write!(line, "{latency}");
        }
        let class = classes
            .get(usize::from(sample.class))
            .map_or("", String::as_str);
        let _ = write!(
            line,
            ",{},{class},{},{outcome},",
            sample.status, sample.connection
        );
        if let Some(kind) = sample.error {
            line.extend_from_slice(kind.as_str().as_bytes());
        }
        line.push(b'\n');
        if let Err(err) = self.out.write_all(line) {
            self.failed = Some(err.to_string());
            return;
        }
        self.rows += 1;
    }

    /// Flushes what is buffered; a write that failed is said once.
    pub fn finish(&mut self) -> Result<(), String> {
        if let Err(err) = self.out.flush() {
            self.failed.get_or_insert(err.to_string());
        }
        match &self.failed {
            Some(why) => Err(format!(
                "--samples {}: {why}: the file holds the first {} rows",
                self.path.display(),
                self.rows
            )),
            None => Ok(()),
        }
    }
}

/// `merge --samples OUT --samples-from A.csv …`: the shards' rows one file
/// after another under one header, streamed line by line.
pub fn concatenate(into: &Path, from: &[PathBuf]) -> Result<u64, String> {
    use std::io::BufRead;
    let file = File::create(into).map_err(|e| format!("--samples {}: {e}", into.display()))?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let fail = |e: std::io::Error| format!("--samples {}: {e}", into.display());
    writeln!(out, "{HEADER}").map_err(fail)?;
    let mut rows = 0;
    for path in from {
        let shown = path.display();
        let file = File::open(path).map_err(|e| format!("--samples-from {shown}: {e}"))?;
        let mut lines = std::io::BufReader::new(file).lines();
        match lines.next() {
            Some(Ok(first)) if first == HEADER => {}
            _ => {
                return Err(format!(
                    "--samples-from {shown}: not a gateprobe samples file (its first line is not `{HEADER}`)"
                ))
            }
        }
        for (number, line) in lines.enumerate() {
            let line = line.map_err(|e| format!("--samples-from {shown}:{}: {e}", number + 2))?;
            out.write_all(line.as_bytes()).map_err(fail)?;
            out.write_all(b"\n").map_err(fail)?;
            rows += 1;
        }
    }
    out.flush().map_err(fail)?;
    Ok(rows)
}
