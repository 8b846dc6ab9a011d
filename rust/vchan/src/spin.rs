//! Bounded, adaptive spinning before sleeping.
//!
//! A sleep and wake-up through the event channel costs tens of
//! microseconds; handing a cache line to the other core costs ~100 ns. So a
//! side that finds the ring empty (or full) first watches the peer's index
//! for a while. The while grows when watching paid off and shrinks when it
//! did not, so a busy pair runs at memory speed and an idle side soon stops
//! burning CPU. The peer sees only the standard notify bits.

use std::time::{Duration, Instant};

const MIN: Duration = Duration::from_micros(2);
const MAX: Duration = Duration::from_micros(100);
const START: Duration = Duration::from_micros(20);

/// The adaptive spin budget of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Spin {
    budget: Duration,
}

impl Spin {
    pub(crate) fn new() -> Spin {
        Spin { budget: START }
    }

    /// Spin until `done()` or the budget runs out; true if `done()`.
    pub(crate) fn spin(&mut self, mut done: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..32 {
                if done() {
                    self.budget = (self.budget * 2).min(MAX);
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= self.budget {
                self.budget = (self.budget / 2).max(MIN);
                return false;
            }
        }
    }
}
