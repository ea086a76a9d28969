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
        self.reserve_at(Instant::now())
    }

    /// [`Pacer::reserve`] at a given `now`: the clock seam, so that the
    /// pacer's promise is tested on chosen times rather than the machine's.
    pub fn reserve_at(&self, now: Instant) -> Instant {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(sequence % self.slots.len() as u64) as usize];
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

    /// The wall-clock test's deterministic twin: sends asked for at chosen
    /// times (bursts, gaps, a steady trickle, seeded), released by the pacer
    /// at exactly the times its rule gives — never before they were asked
    /// for, never more than the cap in any window, and at once whenever the
    /// window has room.
    #[test]
    fn in_chosen_time_every_window_holds_at_most_the_cap() {
        let window = Duration::from_millis(1000);
        for seed in 0..200_u64 {
            let cap = 1 + seed % 17;
            let pacer = Pacer::new(cap, window);
            let epoch = pacer.epoch;
            let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut asked = Duration::ZERO;
            let mut released: Vec<Duration> = Vec::new();
            for _ in 0..300 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Mostly bursts (no gap), sometimes short gaps, now and then a long one.
                let gap_us = match (state >> 33) % 10 {
                    0..=5 => 0,
                    6..=8 => (state >> 40) % 50_000,
                    _ => 1_000_000 + (state >> 40) % 1_000_000,
                };
                asked += Duration::from_micros(gap_us);
                let at = pacer.reserve_at(epoch + asked).duration_since(epoch);
                assert!(at >= asked, "seed {seed}: released before it was asked for");
                // The rule: the send `cap` before, plus the window, or now.
                let rule = match released.len().checked_sub(cap as usize) {
                    Some(back) => asked.max(released[back] + window),
                    None => asked,
                };
                assert_eq!(at, rule, "seed {seed}, send {}", released.len());
                released.push(at);
            }
            for (index, at) in released.iter().enumerate() {
                let in_window = released[index..]
                    .iter()
                    .take_while(|other| **other < *at + window)
                    .count();
                assert!(in_window as u64 <= cap, "seed {seed}: {in_window} > {cap}");
            }
        }
    }
}
