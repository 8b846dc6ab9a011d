//! Bounded, adaptive spinning before sleeping.
//!
//! A sleep and wake-up through the event channel costs tens of
//! microseconds; handing a cache line to the other core costs ~100 ns. So a
//! side that finds the ring empty (or full) first watches the peer's index
//! for a while. The while grows when watching paid off and shrinks when it
//! did not, so a busy pair runs at memory speed and an idle side soon stops
//! burning CPU. It also grows when a side slept but was woken within the
//! longest budget: a longer spin would have caught that peer, and without
//! this two sides that both sleep would each see wake-ups outlast a budget
//! that only shrinks. The peer sees only the standard notify bits.

use std::time::{Duration, Instant};

const MIN: Duration = Duration::from_micros(2);
const MAX: Duration = Duration::from_micros(100);
const START: Duration = Duration::from_micros(20);
/// A side that waited longer than this was facing an idle peer: it starts
/// again from the shortest spin at once.
const IDLE: Duration = Duration::from_millis(1);

/// The adaptive spin budget of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Spin {
    budget: Duration,
}

impl Spin {
    pub(crate) fn new() -> Spin {
        Spin { budget: START }
    }

    /// After a failed spin, the side slept and was woken `waited` after it
    /// began to wait: if that is within the longest budget, spinning that
    /// long (with margin) would have succeeded, so the budget becomes so.
    /// After a wait longer than [`IDLE`], the budget drops to the minimum.
    pub(crate) fn woke_after(&mut self, waited: Duration) {
        if waited < MAX {
            self.budget = self.budget.max((waited * 2).min(MAX));
        } else if waited > IDLE {
            self.budget = MIN;
        }
    }

    /// Spin until `done()` or the budget runs out: `Ok` if `done()`, else
    /// `Err` with when the spin began. The clock is read only once the
    /// first 32 looks failed: a peer that is right there costs no clock
    /// read (which on a small ring, waited on every few KiB, would
    /// dominate).
    pub(crate) fn spin(&mut self, mut done: impl FnMut() -> bool) -> Result<(), Instant> {
        let mut start = None;
        loop {
            for _ in 0..32 {
                if done() {
                    self.budget = (self.budget * 2).min(MAX);
                    return Ok(());
                }
                std::hint::spin_loop();
            }
            let began = *start.get_or_insert_with(Instant::now);
            if began.elapsed() >= self.budget {
                self.budget = (self.budget / 2).max(MIN);
                return Err(began);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_shrink_and_quick_wake_ups_grow_the_budget() {
        let mut s = Spin::new();
        for _ in 0..10 {
            assert!(s.spin(|| false).is_err());
        }
        assert_eq!(s.budget, MIN);
        // Woken 30 µs after starting to wait: spin ~60 µs next time.
        s.woke_after(Duration::from_micros(30));
        assert_eq!(s.budget, Duration::from_micros(60));
        // Never beyond MAX, and never for a peer that was idle for long.
        s.woke_after(Duration::from_micros(90));
        assert_eq!(s.budget, MAX);
        let mut idle = Spin::new();
        idle.budget = MIN;
        idle.woke_after(Duration::from_millis(5));
        assert_eq!(idle.budget, MIN);
        // A side that faced a long-idle peer stops spinning at once.
        let mut busy = Spin::new();
        busy.budget = MAX;
        busy.woke_after(Duration::from_millis(5));
        assert_eq!(busy.budget, MIN);
        // A spin that succeeds doubles it.
        let mut t = Spin::new();
        assert!(t.spin(|| true).is_ok());
        assert_eq!(t.budget, (START * 2).min(MAX));
    }
}
