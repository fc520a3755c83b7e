//! Live progress kept in memory for the UI: bytes on disk now, speed as a moving average over the
//! last few seconds, and the time left at that speed. The database gets bytes at most once a
//! second; these numbers are read on every poll.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window the speed is averaged over.
const WINDOW: Duration = Duration::from_secs(5);

/// A download's live numbers.
#[derive(Debug, Default)]
pub struct Live {
    /// Bytes on disk (written, maybe not yet persisted to the row).
    pub bytes: u64,
    samples: VecDeque<(Instant, u64)>,
}

impl Live {
    /// Records that `bytes` are on disk at `now`.
    pub fn record(&mut self, bytes: u64, now: Instant) {
        if bytes < self.bytes {
            // A restart from zero: old samples describe another transfer.
            self.samples.clear();
        }
        self.bytes = bytes;
        self.samples.push_back((now, bytes));
        while let Some(&(t, _)) = self.samples.front() {
            if now.duration_since(t) > WINDOW && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Forgets the speed (the transfer stopped) but keeps the byte count.
    pub fn idle(&mut self) {
        self.samples.clear();
    }

    /// Bytes per second over the window; 0 with fewer than two samples.
    pub fn speed_bps(&self, now: Instant) -> u64 {
        let (Some(&(t0, b0)), Some(&(_, b1))) = (self.samples.front(), self.samples.back()) else {
            return 0;
        };
        let secs = now.duration_since(t0).as_secs_f64();
        if secs < 0.2 || b1 <= b0 {
            return 0;
        }
        ((b1 - b0) as f64 / secs) as u64
    }

    /// Seconds left to reach `total` at the current speed; `None` when nothing flows.
    pub fn eta_seconds(&self, total: u64, now: Instant) -> Option<u64> {
        let speed = self.speed_bps(now);
        (speed > 0).then(|| total.saturating_sub(self.bytes).div_ceil(speed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_and_eta_from_samples_with_a_fixed_clock() {
        let t0 = Instant::now();
        let mut live = Live::default();
        assert_eq!(live.speed_bps(t0), 0);
        live.record(0, t0);
        live.record(1_000_000, t0 + Duration::from_secs(1));
        live.record(2_000_000, t0 + Duration::from_secs(2));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(live.speed_bps(now), 1_000_000);
        assert_eq!(live.eta_seconds(10_000_000, now), Some(8));
    }

    #[test]
    fn old_samples_leave_the_window_and_restarts_reset_it() {
        let t0 = Instant::now();
        let mut live = Live::default();
        for s in 0..20u64 {
            live.record(s * 100, t0 + Duration::from_secs(s));
        }
        let now = t0 + Duration::from_secs(19);
        assert_eq!(live.speed_bps(now), 100);
        live.record(0, now);
        assert_eq!(live.speed_bps(now), 0);
        live.idle();
        assert_eq!(live.eta_seconds(1000, now), None);
        assert_eq!(live.bytes, 0);
    }
}
