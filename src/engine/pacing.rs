//! Precise due times for the open model. tokio's timer fires on whole
//! milliseconds (its wheel has 1 ms slots and the runtime parks in
//! `epoll_wait`, whose timeout is in milliseconds), so a request due at t
//! left up to a millisecond after it: a median send lag of ≈1 ms that the
//! latency from the due time then carried.
//!
//! Written by hand because no crate does this for a tokio runtime (the
//! timerfd crates create a file descriptor per sleep, a few system calls per
//! request). A worker still sleeps on tokio's timer until shortly before its
//! request is due, then hands (due, its [`Notify`]) to one pacing thread
//! through a lock-free queue. The pacing thread keeps them in time order,
//! sleeps with a 1 µs timer slack until the earliest is due (spinning only
//! for the last few microseconds before it), and wakes its worker at that
//! moment, never before. Waking a task on another runtime is one eventfd
//! write: the request leaves tens of microseconds after its due time.
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use tokio::sync::Notify;

/// How long before its due time a worker hands its request to the pacing
/// thread: more than tokio's timer can be late (one millisecond slot).
pub const LEAD: Duration = Duration::from_micros(3_000);

/// Below this the pacing thread spins instead of sleeping: a sleep this
/// short would overshoot by about as much.
const SPIN_BELOW: Duration = Duration::from_micros(40);

/// The longest the pacing thread sleeps with nothing to wake: a request is
/// handed over at least [`LEAD`] before it is due, so it is in time.
const IDLE: Duration = Duration::from_micros(500);

struct Entry {
    due: Instant,
    notify: Arc<Notify>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.due.cmp(&other.due)
    }
}

/// The pacing thread's inbox and its state, shared with the workers.
pub struct Pacing {
    inbox: SegQueue<Entry>,
    stop: AtomicBool,
    /// Nanoseconds after `base` until which the thread sleeps (0: awake):
    /// a worker whose request is due sooner wakes it.
    sleeping_until_ns: AtomicU64,
    base: Instant,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Pacing {
    /// Starts the pacing thread; it runs until [`Pacing::stop`].
    pub fn start() -> std::io::Result<(Arc<Self>, std::thread::JoinHandle<()>)> {
        let pacing = Arc::new(Self {
            inbox: SegQueue::new(),
            stop: AtomicBool::new(false),
            sleeping_until_ns: AtomicU64::new(0),
            base: Instant::now(),
            thread: std::sync::OnceLock::new(),
        });
        let running = pacing.clone();
        let handle = std::thread::Builder::new()
            .name("gateprobe-pacing".to_string())
            .spawn(move || running.run())?;
        let _ = pacing.thread.set(handle.thread().clone());
        Ok((pacing, handle))
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Waits until `due`, woken by the pacing thread at that moment.
    pub async fn until(&self, due: Instant, notify: &Arc<Notify>) {
        let now = Instant::now();
        if due <= now {
            return;
        }
        if due - now > LEAD {
            tokio::time::sleep_until((due - LEAD).into()).await;
        }
        let woken = notify.notified();
        self.inbox.push(Entry {
            due,
            notify: notify.clone(),
        });
        // Pairs with the fence in `run`: either this sees the thread's sleep
        // or the thread sees this request before it sleeps.
        std::sync::atomic::fence(Ordering::SeqCst);
        let sleeping_until = self.sleeping_until_ns.load(Ordering::SeqCst);
        if sleeping_until != 0 && self.ns(due) < sleeping_until {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
        woken.await;
    }

    fn run(&self) {
        set_timer_slack();
        let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
        while !self.stop.load(Ordering::Acquire) {
            while let Some(entry) = self.inbox.pop() {
                heap.push(Reverse(entry));
            }
            let now = Instant::now();
            while heap.peek().is_some_and(|Reverse(e)| e.due <= now) {
                let Reverse(entry) = heap.pop().expect("peeked");
                entry.notify.notify_one();
            }
            let wait = heap.peek().map_or(IDLE, |Reverse(e)| {
                e.due.saturating_duration_since(now).min(IDLE)
            });
            if wait < SPIN_BELOW {
                std::hint::spin_loop();
                continue;
            }
            // Say until when it sleeps (less the spin), then check the
            // inbox once more: a request handed over meanwhile is seen.
            let wake = now + wait - SPIN_BELOW / 2;
            self.sleeping_until_ns
                .store(self.ns(wake), Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.inbox.is_empty() {
                std::thread::park_timeout(wake.saturating_duration_since(Instant::now()));
            }
            self.sleeping_until_ns.store(0, Ordering::SeqCst);
        }
        // Anything still waiting is released (the run is ending).
        for Reverse(entry) in heap.drain() {
            entry.notify.notify_one();
        }
        while let Some(entry) = self.inbox.pop() {
            entry.notify.notify_one();
        }
    }
}

/// Linux: a 1 µs timer slack for this thread (the default 50 µs lets the
/// kernel wake it that much later, to batch wake-ups).
fn set_timer_slack() {
    #[cfg(target_os = "linux")]
    unsafe {
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only
        // the calling thread.
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wakes never come early, and come within a few hundred microseconds
    /// (a loose bound: CI machines are shared; the benchmark measures it).
    #[test]
    fn wakes_at_the_due_time_never_before() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (pacing, handle) = Pacing::start().unwrap();
        let notify = Arc::new(Notify::new());
        let mut lags = Vec::new();
        runtime.block_on(async {
            for k in 0..200u64 {
                let due = Instant::now() + Duration::from_micros(300 + 37 * (k % 90));
                pacing.until(due, &notify).await;
                let now = Instant::now();
                assert!(now >= due, "woken {:?} early", due - now);
                lags.push((now - due).as_micros() as u64);
            }
        });
        pacing.stop();
        handle.join().unwrap();
        lags.sort_unstable();
        assert!(lags[100] < 2_000, "median lag {} µs", lags[100]);
    }
}
