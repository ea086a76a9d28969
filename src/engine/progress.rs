//! Live progress on stderr: an indicatif bar with elapsed/remaining time, the
//! current rate and the classes so far. Only when stderr is a terminal and
//! `--quiet` is off, so CI logs and pipes stay clean.
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Live;

/// A running progress display; dropped or finished when the run ends.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts a display for a run of `duration` (or `None` when it shows nothing).
    pub fn start(
        quiet: bool,
        duration: Duration,
        class_names: &[String],
        live: Arc<Live>,
    ) -> Option<Self> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let total_ms = duration.as_millis().min(u64::MAX as u128) as u64;
        let bar =
            ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr_with_hz(5));
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let names = class_names.to_vec();
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let (mut last_sent, mut last_at) = (0u64, start);
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now = Instant::now();
                let sent = live.sent.load(Ordering::Relaxed);
                let rate = (sent - last_sent.min(sent)) as f64
                    / now.duration_since(last_at).as_secs_f64().max(1e-3);
                (last_sent, last_at) = (sent, now);
                let classes: Vec<String> = names
                    .iter()
                    .zip(&live.by_class)
                    .map(|(name, count)| (name, count.load(Ordering::Relaxed)))
                    .filter(|(_, count)| *count > 0)
                    .map(|(name, count)| format!("{name} {count}"))
                    .collect();
                let dropped = live.dropped.load(Ordering::Relaxed);
                let dropped = if dropped > 0 {
                    format!(" · dropped {dropped}")
                } else {
                    String::new()
                };
                shown.set_position((now.duration_since(start).as_millis() as u64).min(total_ms));
                shown.set_message(format!(
                    "{rate:.0}/s · sent {sent}{dropped} · {}",
                    classes.join(" · ")
                ));
            }
        });
        Some(Self { bar, task })
    }

    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
