//! Latency traces of real loopback servers, the dependence the canary's
//! latency check is measured under (`canary_stats.rs` replays them in
//! virtual time). Recorded by
//!
//!     cargo test --release --test it -- --ignored record_latency_traces --nocapture
//!
//! which sends 40,000 requests at 500 rps to nginx on loopback (Debian's
//! nginx-light, installed when missing) split 7% / 93% by `split_clients`,
//! once on an idle machine and once with two threads spinning on the CPU
//! (a shared CI runner), and writes each request's latency from its due
//! time, in send order, to `tests/fixtures/latency/*.txt.gz` (one line per
//! request: latency in µs, then `c` for the canary or `s`).
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use gateprobe::engine::{Observer, Verdict};
use gateprobe::record::Recorder;
use gateprobe::sample::Sample;

use crate::common;

/// Where the traces are.
pub fn trace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/latency")
}

/// One recorded request: latency (µs) and whether the canary served it.
#[derive(Debug, Clone, Copy)]
pub struct Traced {
    pub latency_us: u32,
    pub canary: bool,
}

/// Reads a trace written by [`record_latency_traces`].
pub fn read_trace(name: &str) -> Vec<Traced> {
    let file = std::fs::File::open(trace_dir().join(name)).expect("trace committed");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .filter_map(|line| {
            let (latency, variant) = line.split_once(' ')?;
            Some(Traced {
                latency_us: latency.parse().ok()?,
                canary: variant == "c",
            })
        })
        .collect()
}

/// Collects every response's latency in send order.
struct Collect {
    canary_class: u16,
    rows: Vec<Option<Traced>>,
}

impl Observer for Collect {
    fn observe(&mut self, sample: &Sample, _recorder: &Recorder) -> Verdict {
        let index = sample.index as usize;
        if self.rows.len() <= index {
            self.rows.resize(index + 1, None);
        }
        self.rows[index] = Some(Traced {
            latency_us: sample.latency_us().min(u32::MAX as u64) as u32,
            canary: sample.class == self.canary_class,
        });
        Verdict::Continue
    }
}

async fn record(url: &str, name: &str) {
    let cli = gateprobe::cli::Cli::parse_from([
        "gateprobe",
        "load",
        url,
        "--rate",
        "500",
        "--requests",
        "40000",
        "--classify",
        "canary=header:x-deployment=canary",
        "--classify",
        "stable=header:x-deployment=stable",
        "--quiet",
    ]);
    let gateprobe::cli::Command::Load(args) = cli.command else {
        unreachable!()
    };
    let plan = gateprobe::cli::load::load_plan(&args).expect("a valid plan");
    let mut collect = Collect {
        canary_class: 0,
        rows: Vec::new(),
    };
    gateprobe::engine::command::execute(&plan, &mut collect)
        .await
        .expect("the run");
    let rows: Vec<Traced> = collect.rows.into_iter().flatten().collect();
    let canary = rows.iter().filter(|row| row.canary).count();
    common::say(&format!("{name}: {} requests, {canary} canary", rows.len()));
    std::fs::create_dir_all(trace_dir()).unwrap();
    let file = std::fs::File::create(trace_dir().join(name)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    for row in rows {
        writeln!(
            gz,
            "{} {}",
            row.latency_us,
            if row.canary { 'c' } else { 's' }
        )
        .unwrap();
    }
    gz.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes: records the committed latency traces"]
async fn record_latency_traces() {
    let http = r#"split_clients "${request_id}" $variant { 7% canary; * stable; }"#;
    let server = r#"location / { add_header x-deployment $variant always; return 200 '{"version":"$variant"}'; }"#;
    let nginx = match common::start_nginx(http, server) {
        Ok(nginx) => nginx,
        Err(reason) => {
            common::say(&format!("SKIPPED recording traces: {reason}"));
            return;
        }
    };
    let url = format!("http://127.0.0.1:{}/x", nginx.port);
    record(&url, "nginx-500rps-idle.txt.gz").await;
    let spinning = Arc::new(AtomicBool::new(true));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let spinning = spinning.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while spinning.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    record(&url, "nginx-500rps-busy.txt.gz").await;
    spinning.store(false, Ordering::Relaxed);
    for hog in hogs {
        let _ = hog.join();
    }
}
