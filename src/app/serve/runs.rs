//! The server's runs: one per caller key (Flagger's
//! `namespace.name.checksum`, Argo's key in the path), so that a retry or a
//! re-call joins the run it started. At most `max_runs` run at once. Each
//! run's record and report persist in the state directory, so that a
//! restarted server answers a finished run as before; a run the server did
//! not see finish is recorded as interrupted.
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::report::Report;

/// One run as callers see it (the run JSON of `/v1/runs/{key}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub key: String,
    pub profile: String,
    /// The caller's variables (typed and checked; never a secret).
    pub vars: BTreeMap<String, String>,
    /// `running`, `done` or `error`.
    pub state: String,
    /// `pass`, `fail` or `inconclusive` once done; `null` before, and on error.
    pub verdict: Option<String>,
    pub reason: String,
    pub checks: Vec<CheckLine>,
    /// Interrupted before its bounds (SIGTERM, DELETE, a controller's event).
    #[serde(default)]
    pub interrupted: bool,
    pub started_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    /// Where its report is (`.json`, `.md`, `.xml`, `.txt` beside `.html`).
    pub report: String,
}

/// One check of a finished run, in one line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckLine {
    pub name: String,
    pub verdict: String,
    pub reason: String,
}

struct Entry {
    record: RunRecord,
    report: Option<Arc<Report>>,
    stop: Option<CancellationToken>,
    finished: watch::Receiver<bool>,
}

/// Why a run was not started.
pub enum Refused {
    /// `max_runs` are running: try again later.
    Busy(usize),
    /// The key names a run of another profile or other variables.
    Conflict(String),
}

pub struct Runs {
    entries: Mutex<HashMap<String, Entry>>,
    state_dir: Option<PathBuf>,
    max_runs: usize,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A key callers may use: it names files in the state directory.
pub fn valid_key(key: &str) -> bool {
    (1..=253).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Runs {
    /// The registry, with the runs saved in `state_dir` read back.
    pub fn open(state_dir: Option<PathBuf>, max_runs: usize) -> std::io::Result<Self> {
        let runs = Runs {
            entries: Mutex::new(HashMap::new()),
            state_dir,
            max_runs: max_runs.max(1),
        };
        if let Some(dir) = &runs.state_dir {
            std::fs::create_dir_all(dir)?;
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if name.ends_with(".report.json") || !name.ends_with(".json") {
                    continue;
                }
                runs.load(&path);
            }
        }
        Ok(runs)
    }

    /// One saved run (an unreadable file is skipped, and said).
    fn load(&self, path: &std::path::Path) {
        let read = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<RunRecord>(&text).ok());
        let Some(mut record) = read.filter(|r| valid_key(&r.key)) else {
            crate::errln!(
                "gateprobe serve: {}: not a saved run; skipped",
                path.display()
            );
            return;
        };
        if record.state == "running" {
            record.state = "error".to_string();
            record.interrupted = true;
            record.reason = "interrupted: the server stopped before the run finished (DELETE the run to run it again)".to_string();
            self.save(&record, None);
        }
        let report = self.saved_report(&record.key).map(Arc::new);
        let (_, finished) = watch::channel(true);
        let entry = Entry {
            record: record.clone(),
            report,
            stop: None,
            finished,
        };
        self.lock().insert(record.key, entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, key: &str, suffix: &str) -> Option<PathBuf> {
        Some(self.state_dir.as_ref()?.join(format!("{key}{suffix}")))
    }

    fn saved_report(&self, key: &str) -> Option<Report> {
        let text = std::fs::read_to_string(self.path(key, ".report.json")?).ok()?;
        crate::report::read_saved(key, &text).ok()
    }

    fn save(&self, record: &RunRecord, report: Option<&Report>) {
        let write = |suffix: &str, bytes: Vec<u8>| {
            if let Some(path) = self.path(&record.key, suffix) {
                if let Err(err) = crate::output::write_atomically(&path, &bytes) {
                    crate::errln!("gateprobe serve: cannot save {}: {err}", path.display());
                }
            }
        };
        if let Some(report) = report {
            write(
                ".report.json",
                serde_json::to_vec_pretty(report).unwrap_or_default(),
            );
        }
        write(
            ".json",
            serde_json::to_vec_pretty(record).unwrap_or_default(),
        );
    }

    /// The run under `key`, if any.
    pub fn get(&self, key: &str) -> Option<RunRecord> {
        self.lock().get(key).map(|entry| entry.record.clone())
    }

    pub fn report(&self, key: &str) -> Option<Arc<Report>> {
        self.lock().get(key).and_then(|entry| entry.report.clone())
    }

    /// Joins the run under `key`, or starts `work` as it when there is none
    /// (and fewer than `max_runs` run). `Ok(true)` when it was started.
    /// The run goes on a thread of its own with its own runtime (the
    /// engine's observers are not `Send`, and a run must not slow the
    /// server's answers).
    pub fn start_or_join<F>(
        self: &Arc<Self>,
        key: &str,
        profile: &str,
        vars: &BTreeMap<String, String>,
        work: impl FnOnce() -> F + Send + 'static,
    ) -> Result<bool, Refused>
    where
        F: std::future::Future<Output = anyhow::Result<Report>> + 'static,
    {
        let mut entries = self.lock();
        if let Some(entry) = entries.get(key) {
            let same = entry.record.profile == profile && &entry.record.vars == vars;
            return if same {
                Ok(false)
            } else {
                Err(Refused::Conflict(format!(
                    "run '{key}' is of profile '{}' with other variables: DELETE it first, or use another key",
                    entry.record.profile
                )))
            };
        }
        let running = entries
            .values()
            .filter(|e| e.record.state == "running")
            .count();
        if running >= self.max_runs {
            return Err(Refused::Busy(running));
        }
        let record = RunRecord {
            key: key.to_string(),
            profile: profile.to_string(),
            vars: vars.clone(),
            state: "running".to_string(),
            verdict: None,
            reason: "running".to_string(),
            checks: Vec::new(),
            interrupted: false,
            started_unix_ms: now_ms(),
            finished_unix_ms: None,
            report: format!("/v1/runs/{key}/report.html"),
        };
        self.save(&record, None);
        let stop = crate::signals::run_token();
        let (done, finished) = watch::channel(false);
        entries.insert(
            key.to_string(),
            Entry {
                record,
                report: None,
                stop: Some(stop.clone()),
                finished,
            },
        );
        drop(entries);
        let (runs, owned_key) = (self.clone(), key.to_string());
        let spawned = std::thread::Builder::new()
            .name("gateprobe-serve-run".to_string())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(crate::signals::with_stop(stop, work())),
                    Err(err) => Err(anyhow::anyhow!("cannot start the run's runtime: {err}")),
                };
                runs.finish(&owned_key, result);
                let _ = done.send(true);
            });
        if let Err(err) = spawned {
            self.finish(
                key,
                Err(anyhow::anyhow!("cannot start the run's thread: {err}")),
            );
        }
        Ok(true)
    }

    /// Records a run's end: its verdict and checks, or why it failed.
    fn finish(&self, key: &str, result: anyhow::Result<Report>) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return;
        };
        let record = &mut entry.record;
        record.finished_unix_ms = Some(now_ms());
        entry.stop = None;
        match result {
            Ok(report) => {
                record.interrupted = report.run.ended == "interrupted"
                    || report
                        .steps
                        .iter()
                        .any(|s| s.report.run.ended == "interrupted");
                record.state = if report.verdict == crate::check::Verdict::Error {
                    "error"
                } else {
                    "done"
                }
                .to_string();
                record.verdict =
                    (record.state == "done").then(|| report.verdict.as_str().to_string());
                record.reason = report.reason.clone();
                record.checks = checks_of(&report);
                self.save(record, Some(&report));
                entry.report = Some(Arc::new(report));
            }
            Err(err) => {
                record.state = "error".to_string();
                record.reason = format!("{err:#}");
                self.save(record, None);
            }
        }
    }

    /// Waits until the run under `key` is finished or `wait` has passed.
    pub async fn wait(&self, key: &str, wait: std::time::Duration) {
        let Some(mut finished) = self.lock().get(key).map(|e| e.finished.clone()) else {
            return;
        };
        let _ = tokio::time::timeout(wait, finished.wait_for(|done| *done)).await;
    }

    /// Stops the run under `key` if it runs (it ends interrupted, with its
    /// partial report).
    pub fn stop(&self, key: &str) {
        if let Some(stop) = self.lock().get(key).and_then(|e| e.stop.clone()) {
            stop.cancel();
        }
    }

    /// Stops and forgets the run under `key`, and its saved files.
    pub fn remove(&self, key: &str) -> Option<RunRecord> {
        let entry = self.lock().remove(key)?;
        if let Some(stop) = &entry.stop {
            stop.cancel();
        }
        for suffix in [".json", ".report.json"] {
            if let Some(path) = self.path(key, suffix) {
                let _ = std::fs::remove_file(path);
            }
        }
        Some(entry.record)
    }

    /// Stops every run and waits (up to `wait`) for each to record its end.
    pub async fn stop_all(&self, wait: std::time::Duration) {
        let waiting: Vec<_> = self
            .lock()
            .values()
            .filter_map(|e| {
                e.stop.as_ref().map(CancellationToken::cancel)?;
                Some(e.finished.clone())
            })
            .collect();
        for mut finished in waiting {
            let _ = tokio::time::timeout(wait, finished.wait_for(|done| *done)).await;
        }
    }

    /// Runs by (state, verdict), for `/metrics`.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        let mut counts = BTreeMap::new();
        for entry in self.lock().values() {
            let verdict = entry
                .record
                .verdict
                .clone()
                .unwrap_or_else(|| "none".into());
            *counts
                .entry((entry.record.state.clone(), verdict))
                .or_default() += 1;
        }
        counts
    }
}

fn checks_of(report: &Report) -> Vec<CheckLine> {
    let line = |prefix: &str, check: &crate::check::Check| CheckLine {
        name: format!("{prefix}{}", check.name),
        verdict: check.verdict.as_str().to_string(),
        reason: check.reason.clone(),
    };
    let mut lines: Vec<CheckLine> = report.checks.iter().map(|c| line("", c)).collect();
    for step in &report.steps {
        let prefix = format!("{}: ", step.name);
        lines.extend(step.report.checks.iter().map(|c| line(&prefix, c)));
    }
    lines
}
