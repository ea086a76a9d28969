//! The window limiters' evidence: a lockout's recovery, a fixed window's
//! clumps, and the counters whose replay reproduces every answer seen.
use super::super::estimate::{Estimated, Fit, Kind, Record};
use super::*;

/// A lockout: the window from the recovery, the limit from what was sent
/// within one window before the first refusal.
/// Long because the window and the limit of a lockout are measured from the
/// same few instants (the flood, the silence, the recovery) in sequence.
pub(super) fn locked_out(records: &[Record], lockout: &Lockout, found: &mut Identified) {
    found.model = Limiter::SlidingWindow;
    found.counts_refused = Some(true);
    found.evidence.push(format!(
        "under sustained overload no request was admitted for {:.2} s: a limiter that counts \
         refused requests locked this client out; the probe backed off at once ({} refused \
         requests after that)",
        lockout.recognised_at_s - lockout.silent_from_s,
        lockout.refused_after
    ));
    let Some(recovered) = lockout.recovered_at_s else {
        found.evidence.push(
            "the probe's bounds ended before the limiter let a request through again: the \
             window's length is unknown"
                .to_string(),
        );
        return;
    };
    // Once the overload stops, the count of its requests within the last W
    // seconds drops under the limit L after W − L/λ (a sliding log); a
    // two-window estimate (HAProxy's) can take up to twice the window. So
    // W lies in [D/2, D + L/λ] for the recovery delay D.
    let since = |t: f64| (t - lockout.last_flood_s).max(0.0);
    let (low_delay, high_delay) = (
        lockout.last_refused_probe_s.map_or(0.0, since),
        since(recovered),
    );
    let flood = lockout.flood_rate_per_s.max(1e-9);
    // The limit: what the burst into an empty window admitted, else what
    // was sent within a window before the first refusal.
    let first_refusal = records
        .iter()
        .find(|r| r.kind == Kind::Throttled)
        .map_or(0.0, |r| r.sent_s);
    let sent_within = |window: f64| {
        records
            .iter()
            .filter(|r| {
                r.kind != Kind::Other
                    && r.sent_s < first_refusal
                    && r.sent_s >= first_refusal - window
            })
            .count() as f64
    };
    let middle_delay = 0.5 * (low_delay + high_delay);
    let limit = match lockout.burst_admitted {
        Some(admitted) => estimated(admitted as f64, admitted as f64, admitted as f64),
        None => {
            let guess = middle_delay + sent_within(middle_delay) / flood;
            estimated(
                sent_within(guess),
                sent_within(0.5 * low_delay),
                sent_within(2.0 * high_delay),
            )
        }
    };
    let bracket = estimated(
        middle_delay + limit.estimate / flood,
        (0.5 * low_delay).max(0.001),
        high_delay + limit.high / flood,
    );
    // With the limit counted, replaying the client's own sends through each
    // window length in the bracket (and each limit the burst's count allows)
    // finds the ones that explain every admission and refusal it saw.
    let replayed = lockout.burst_admitted.and_then(|admitted| {
        let straddle = admitted / 16 + 2;
        replay_window(
            records,
            admitted.saturating_sub(straddle).max(1)..=admitted,
            bracket.low,
            bracket.high,
        )
    });
    let (limit, window) = replayed.map_or((limit, bracket), |found| (found.limit, found.window));
    found.window_s = Some(window);
    found.window_limit = Some(limit);
    found.rate = Some(estimated(
        limit.estimate / window.estimate,
        limit.low / window.high,
        limit.high / window.low,
    ));
    found.interval_kind.push((
        "window_s",
        if replayed.is_some() { REPLAY } else { RECOVERY },
    ));
    found.interval_kind.push((
        "window_limit",
        match (replayed, lockout.burst_admitted) {
            (Some(_), _) => REPLAY,
            (None, Some(_)) => "counted: admitted by a burst into the empty window",
            (None, None) => "requests sent within the window's bracket before the first refusal",
        },
    ));
    found.evidence.push(format!(
        "after backing off, the first admission came {high_delay:.2} s after the last request \
         of the overload (the last refused probe {low_delay:.2} s after it){}",
        lockout.burst_admitted.map_or(String::new(), |admitted| format!(
            "; two windows later a fast burst into the empty window admitted {admitted} before its first refusal"
        ))
    ));
    if let Some(Replayed { counter, .. }) = replayed {
        found.evidence.push(format!(
            "replaying this client's {} sends through a {counter} reproduces every admission \
             and refusal for limits of {:.0}–{:.0} per window and windows of {:.3}–{:.3} s",
            records.len(),
            limit.low,
            limit.high,
            window.low,
            window.high,
        ));
    }
}

/// How a sliding window counts what it has seen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Counter {
    /// Every request within the last W seconds (a sliding log).
    Log,
    /// HAProxy's `freq_ctr`: this window's count plus the previous one's
    /// weighted by the share of W not yet elapsed, windows on a fixed phase.
    TwoWindow { phase_s: f64 },
}

/// Requests (refusals too) whose replay through `counter` of length `window`
/// with `limit` disagrees with what was seen: refused when the count with
/// the request itself passes the limit. Counting stops past `cap` (the
/// caller has a better fit already): returns `cap + 1` then.
fn mismatches(
    sends: &[(f64, bool)],
    limit: f64,
    window: f64,
    counter: Counter,
    cap: usize,
) -> usize {
    let mut wrong = 0;
    match counter {
        Counter::Log => {
            let mut oldest = 0;
            for (index, &(at, admitted)) in sends.iter().enumerate() {
                while sends[oldest].0 <= at - window {
                    oldest += 1;
                }
                let count = (index - oldest + 1) as f64;
                wrong += usize::from((count <= limit) != admitted);
                if wrong > cap {
                    return wrong;
                }
            }
        }
        Counter::TwoWindow { phase_s } => {
            let (mut current_index, mut current, mut previous) = (i64::MIN, 0.0, 0.0);
            let per_window = 1.0 / window;
            for &(at, admitted) in sends {
                let position = (at - phase_s) * per_window;
                // floor and fract without libm calls (this loop is the
                // replay's whole cost); an exactly integral negative position
                // lands one window early, which no send time makes matter.
                let index = position as i64 - i64::from(position < 0.0);
                let fract = position - index as f64;
                if index != current_index {
                    previous = if index == current_index.wrapping_add(1) {
                        current
                    } else {
                        0.0
                    };
                    current = 0.0;
                    current_index = index;
                }
                let count = current + 1.0 + previous * (1.0 - fract);
                wrong += usize::from((count <= limit) != admitted);
                if wrong > cap {
                    return wrong;
                }
                current += 1.0;
            }
        }
    }
    wrong
}

/// The counters a replay tries: (name, whether it is a two-window estimate).
const COUNTERS: [(&str, bool); 2] = [("sliding log", false), ("two-window estimate", true)];

/// What replaying the sends found: the counter, and the limits and window
/// lengths that reproduce what was seen.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replayed {
    pub(super) counter: &'static str,
    pub(super) limit: Estimated,
    pub(super) window: Estimated,
}

/// The (limit, window length) pairs, limits in `limits` and lengths in
/// `[low, high]`, whose replay reproduces what was seen best (to within one
/// request, for timing at the edges), for either counter; `None` when
/// neither fits (more than 1% of requests disagree everywhere). The limit
/// is fitted too: a burst into a two-window counter that straddles its
/// boundary admits a little more than the limit (the previous window's
/// weight decays while it runs).
/// Long because it is one search: for each counter kind, every candidate
/// window and limit is replayed against the same records and scored in
/// place; the scoring's state is the search's.
pub(super) fn replay_window(
    records: &[Record],
    limits: std::ops::RangeInclusive<u64>,
    low: f64,
    high: f64,
) -> Option<Replayed> {
    let sends: Vec<(f64, bool)> = records
        .iter()
        .filter(|r| r.kind != Kind::Other)
        .map(|r| (r.sent_s, r.kind == Kind::Admitted))
        .collect();
    if sends.len() < 20 || !(high > low && low > 0.0) || limits.is_empty() {
        return None;
    }
    const STEP: f64 = 1.01;
    // Window phases tried for a two-window counter: a coarse grid for the
    // search, a fine one for the pairs that came close.
    const PHASES: usize = 24;
    const FINE_PHASES: usize = 96;
    const REFINED: usize = 4;
    // The fewest over the phases: once a phase scores w, the others only
    // matter below it, so each replay is cut short at the best so far (the
    // minimum is the same, found sooner). The search starts at the phase
    // that fitted the previous pair best (the next length's best is near).
    let hint = std::cell::Cell::new(0.0_f64);
    let two_window_wrong = |limit: u64, window: f64, phases: usize, cap: usize| {
        let mut best = usize::MAX;
        let first = (hint.get() * phases as f64) as usize % phases.max(1);
        for k in (first..phases).chain(0..first) {
            let phase_s = window * k as f64 / phases as f64;
            let cap = cap.min(best.saturating_sub(1));
            let wrong = mismatches(
                &sends,
                limit as f64,
                window,
                Counter::TwoWindow { phase_s },
                cap,
            );
            if wrong < best {
                best = wrong;
                hint.set(k as f64 / phases as f64);
            }
            if best == 0 {
                break;
            }
        }
        best
    };
    // (counter, limit, window, wrong): every pair within three of the
    // fewest mismatches seen so far is kept; the rest are cut short.
    let mut scored: Vec<(&'static str, u64, f64, usize)> = Vec::new();
    let mut fewest = usize::MAX;
    // The burst's own count first: it is the likeliest limit, and its fit
    // makes the cap tight for the others.
    for (name, two_window) in COUNTERS {
        let mut fitted = false;
        for limit in limits.clone().rev() {
            let mut window = low;
            let mut limit_best = usize::MAX;
            while window <= high {
                let cap = fewest.saturating_add(3);
                let wrong = if two_window {
                    two_window_wrong(limit, window, PHASES, cap)
                } else {
                    mismatches(&sends, limit as f64, window, Counter::Log, cap)
                };
                if wrong <= cap {
                    fewest = fewest.min(wrong);
                    limit_best = limit_best.min(wrong);
                    scored.push((name, limit, window, wrong));
                }
                window *= STEP;
            }
            // Fewer allowed fits worse and worse once past the limit: stop
            // at the first limit that fits no window after one that did.
            if limit_best <= fewest.saturating_add(3) {
                fitted = true;
            } else if fitted {
                break;
            }
        }
    }
    // A two-window counter's boundaries drift by the length's error every
    // window, so near its best pairs the grid is refined: lengths an
    // eighth of a step apart, phases eight times closer.
    let mut closest: Vec<(u64, f64, usize)> = scored
        .iter()
        .filter(|s| s.0 == COUNTERS[1].0)
        .map(|s| (s.1, s.2, s.3))
        .collect();
    closest.sort_by_key(|s| s.2);
    closest.truncate(REFINED);
    for (limit, window, _) in closest {
        for j in -8..=8 {
            let window = window * STEP.powf(j as f64 / 8.0);
            let cap = fewest.saturating_add(3);
            let wrong = two_window_wrong(limit, window, FINE_PHASES, cap);
            if wrong <= cap {
                fewest = fewest.min(wrong);
                scored.push((COUNTERS[1].0, limit, window, wrong));
            }
        }
    }
    if fewest * 100 > sends.len() {
        return None;
    }
    // The counter with the best fit gives the estimate; the interval holds
    // every counter's pairs within one of its own best, when that best is
    // within two of the overall one (the phase grid can cost a two-window
    // counter a request or two, and a sliding log of another length can
    // then fit as well).
    // On a tie the two-window estimate: it is what HAProxy, Redis and
    // Envoy-style sliding windows count with (a true sliding log keeps
    // every timestamp, and is rarer).
    let best = scored
        .iter()
        .filter(|s| s.3 == fewest)
        .max_by_key(|s| s.0 == COUNTERS[1].0)?;
    let own_bests: Vec<(&str, usize)> = COUNTERS
        .into_iter()
        .map(|(name, _)| {
            let own = scored.iter().filter(|s| s.0 == name).map(|s| s.3).min();
            (name, own.unwrap_or(usize::MAX))
        })
        .collect();
    let own_best = |name: &str| {
        own_bests
            .iter()
            .find(|b| b.0 == name)
            .map_or(usize::MAX, |b| b.1)
    };
    let fitting: Vec<(u64, f64)> = scored
        .iter()
        .filter(|s| {
            let own = own_best(s.0);
            own <= fewest + 2 && s.3 <= own + 1
        })
        .map(|s| (s.1, s.2))
        .collect();
    // The estimate: among the exact pairs, the median limit, then the
    // lengths that fit exactly with it.
    let mut exact: Vec<(u64, f64)> = scored
        .iter()
        .filter(|s| s.0 == best.0 && s.3 == fewest)
        .map(|s| (s.1, s.2))
        .collect();
    exact.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let (limit, _) = exact[exact.len() / 2];
    let windows: Vec<f64> = exact
        .iter()
        .filter(|pair| pair.0 == limit)
        .map(|pair| pair.1)
        .collect();
    // The middle of their span on the log grid (the refined grid is denser
    // near some pairs, so a median of grid points would lean to them).
    let window = (windows[0] * windows[windows.len() - 1]).sqrt();
    let span = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
    };
    let (limit_low, limit_high) = span(&mut fitting.iter().map(|pair| pair.0 as f64));
    let (window_low, window_high) = span(&mut fitting.iter().map(|pair| pair.1));
    Some(Replayed {
        counter: best.0,
        limit: estimated(limit as f64, limit_low, limit_high),
        window: estimated(window, window_low / STEP, window_high * STEP),
    })
}

/// Admissions in clumps: a fixed window, if the clumps are regular.
pub(super) fn fixed_window(
    records: &[Record],
    fit: &Fit,
    from_s: f64,
    offered: f64,
    found: &mut Identified,
) {
    let found_clumps = clumps(records, from_s, clump_gap_s(offered));
    // The first clump may be a window's tail, the last one cut short.
    let inner: Vec<&Clump> = found_clumps
        .iter()
        .skip(1)
        .take(found_clumps.len().saturating_sub(2))
        .collect();
    let bounded: Vec<&Clump> = found_clumps
        .iter()
        .skip(1)
        .filter(|c| c.refused_before_s.is_some())
        .collect();
    if bounded.len() >= 3 && !inner.is_empty() {
        let starts: Vec<f64> = bounded.iter().map(|c| c.start_s).collect();
        let mut spacings: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        spacings.sort_by(f64::total_cmp);
        let typical = percentile_sorted(&spacings, 0.5);
        if spacings
            .iter()
            .all(|s| (s - typical).abs() <= 0.25 * typical)
        {
            // Boundaries b lie in (refused before, first admission]; the
            // first and last bounded clumps are (k − 1) windows apart.
            let (first, last) = (bounded[0], bounded[bounded.len() - 1]);
            let windows = (bounded.len() - 1) as f64;
            let first_refused = first.refused_before_s.unwrap_or(first.start_s);
            let last_refused = last.refused_before_s.unwrap_or(last.start_s);
            let slack = 2.0 * fit.timing_s;
            let window = estimated(
                (last.start_s - first.start_s) / windows,
                (last_refused - first.start_s - slack) / windows,
                (last.start_s - first_refused + slack) / windows,
            );
            let mut sizes: Vec<f64> = inner.iter().map(|c| c.size as f64).collect();
            sizes.sort_by(f64::total_cmp);
            let limit = percentile_sorted(&sizes, 0.5);
            let (low, high) = median_interval(&sizes);
            found.model = Limiter::FixedWindow;
            found.window_s = Some(window);
            found.window_limit = Some(estimated(limit, low, high));
            found.rate = Some(estimated(
                limit / window.estimate,
                low / window.high,
                high / window.low.max(1e-6),
            ));
            found.interval_kind.push(("window_s", BOUNDS));
            found.interval_kind.push(("window_limit", MEDIAN));
            found.evidence.push(format!(
                "admissions came in {} clumps {:.3} s apart, {limit:.0} in each, with nothing \
                 between ({:.0}% of spans silent): a fixed window of {limit:.0} per {:.3} s \
                 (whether it counts refusals makes no difference to what it admits)",
                found_clumps.len(),
                window.estimate,
                fit.silent_share * 100.0,
                window.estimate
            ));
            return;
        }
    }
    found.evidence.push(format!(
        "admissions came in clumps ({:.0}% of spans silent) but not at regular boundaries in the \
         time the probe had: a window of unknown length",
        fit.silent_share * 100.0
    ));
}
