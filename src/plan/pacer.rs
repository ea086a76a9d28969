//! A hard cap on sends in any sliding one-second window, shared across runs.
//!
//! The throttle probe promises never to send more than `--max-rate` requests
//! in any one-second window. Its schedules never ask for more, but a schedule
//! is a promise about *due* times: a descheduled engine thread sends late, and
//! late requests bunch. The pacer makes the promise about *send* times.
//!
//! How: every send takes a sequence number `k` and may not go before the send
//! time of `k − cap` plus the window. Any `cap + 1` sends include two whose
//! numbers are `cap` or more apart, so no window holds more than `cap`. Each
//! send reserves its time in its slot before it sleeps, so the send `cap`
//! numbers later sees it even while it waits. Lock-free: one atomic add and
//! one slot per send.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Pacer {
    epoch: Instant,
    window: Duration,
    next: AtomicU64,
    /// Per sequence number modulo the cap: reserved send time, ns since the
    /// epoch plus one (0: never used). Nanoseconds, not microseconds: a time
    /// truncated to the microsecond let a send go up to 1 µs early.
    slots: Box<[AtomicU64]>,
}

impl Pacer {
    /// At most `cap` sends in any window of `window`.
    pub fn new(cap: u64, window: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            window,
            next: AtomicU64::new(0),
            slots: (0..cap.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The cap per window.
    pub fn cap(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Reserves the next send and returns when it may go (now, or later).
    pub fn reserve(&self) -> Instant {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(sequence % self.slots.len() as u64) as usize];
        let now = Instant::now();
        let previous = slot.load(Ordering::Acquire);
        let at = if previous == 0 {
            now
        } else {
            now.max(self.epoch + Duration::from_nanos(previous - 1) + self.window)
        };
        let nanos = at.saturating_duration_since(self.epoch).as_nanos() as u64;
        slot.store(nanos + 1, Ordering::Release);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_window_holds_more_than_the_cap() {
        let pacer = Pacer::new(10, Duration::from_millis(100));
        // 35 sends asked for at once: 10 now, 10 a window later, and so on.
        let times: Vec<Instant> = (0..35).map(|_| pacer.reserve()).collect();
        let start = times[0];
        let offsets: Vec<f64> = times
            .iter()
            .map(|at| at.duration_since(start).as_secs_f64())
            .collect();
        for (index, at) in offsets.iter().enumerate() {
            let in_window = offsets
                .iter()
                .filter(|other| **other >= *at && **other < at + 0.1 - 1e-9)
                .count();
            assert!(in_window <= 10, "send {index}: {in_window} in its window");
        }
        assert!(offsets[34] >= 0.3 - 1e-3, "{}", offsets[34]);
    }
}
