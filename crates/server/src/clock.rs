//! Clocks for the service: wall-clock Unix seconds that tests can drive with tokio's paused
//! time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use certwatch::{Clock, SystemClock};

/// A clock that starts at a given Unix time and advances with tokio's clock. Under
/// `tokio::time::pause()` it moves only when the test (or auto-advance) moves time, so a
/// scheduler driven by it is deterministic.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_unix: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start_unix` now. Needs a tokio runtime.
    pub fn starting_at(start_unix: u64) -> Self {
        TokioClock {
            start_unix,
            start: tokio::time::Instant::now(),
        }
    }

    /// A clock reading the system time now and then advancing with tokio's clock.
    pub fn from_system() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        Self::starting_at(now)
    }
}

impl Clock for TokioClock {
    fn now_unix(&self) -> u64 {
        self.start_unix + self.start.elapsed().as_secs()
    }
}

/// `clock.now_unix()` as the store's `i64`.
pub fn now(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.now_unix()).unwrap_or(i64::MAX)
}
