//! When to try again. Transient failures (connect errors, resets, timeouts, stalls, 408, 429,
//! 5xx) wait an exponentially growing delay with jitter, or what the server's Retry-After asks
//! for (capped), and give up after a fixed number of attempts in a row without progress. Progress
//! (any byte written) resets the count: a long download over a flaky line is not doomed by
//! failures spread over hours.

use std::time::Duration;

/// The retry budget and delays. Tests shrink them; the product uses [`RetryPolicy::default`].
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in a row without progress before the download fails.
    pub max_retries: u32,
    /// The first delay; each further one doubles it.
    pub base: Duration,
    /// No delay is longer than this (also caps Retry-After).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 8, base: Duration::from_millis(500), max_delay: Duration::from_secs(60) }
    }
}

/// Counts failures in a row and says how long to wait before the next attempt.
#[derive(Clone, Debug)]
pub struct RetryState {
    policy: RetryPolicy,
    failures: u32,
}

impl RetryState {
    /// A fresh count under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryState { policy, failures: 0 }
    }

    /// Bytes arrived: the next failure counts as the first.
    pub fn progressed(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure. `None` when the budget is spent; else the delay to wait. `jitter` is a
    /// number in [0, 1) (random in the product, fixed in tests); `retry_after` is the server's ask.
    pub fn next_delay(&mut self, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
        if self.failures >= self.policy.max_retries {
            return None;
        }
        self.failures += 1;
        if let Some(ask) = retry_after {
            return Some(ask.min(self.policy.max_delay));
        }
        let exp = self.policy.base.saturating_mul(1u32 << (self.failures - 1).min(20));
        // Jitter spreads clients that failed together: between 50% and 100% of the step.
        let jittered = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        Some(jittered.min(self.policy.max_delay))
    }
}

/// Reads a Retry-After header given in seconds (the HTTP-date form is treated as absent).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A jitter value in [0, 1) without a random-number crate: the clock's nanoseconds mixed.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    (mixed as f64) / ((1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { max_retries: 4, base: Duration::from_millis(100), max_delay: Duration::from_secs(1) }
    }

    #[test]
    fn delays_double_with_full_jitter_and_stop_at_the_budget() {
        let mut s = RetryState::new(policy());
        let got: Vec<_> = (0..5).map(|_| s.next_delay(None, 1.0)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(got, vec![ms(100), ms(200), ms(400), ms(800), None]);
    }

    #[test]
    fn zero_jitter_halves_the_step_and_the_cap_holds() {
        let mut s = RetryState::new(RetryPolicy { max_retries: 10, ..policy() });
        let got: Vec<_> = (0..6).map(|_| s.next_delay(None, 0.0).unwrap().as_millis()).collect();
        assert_eq!(got, vec![50, 100, 200, 400, 800, 1000]);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut s = RetryState::new(policy());
        assert_eq!(s.next_delay(Some(Duration::from_millis(700)), 0.3), Some(Duration::from_millis(700)));
        assert_eq!(s.next_delay(Some(Duration::from_secs(90)), 0.3), Some(Duration::from_secs(1)));
    }

    #[test]
    fn progress_resets_the_count() {
        let mut s = RetryState::new(policy());
        for _ in 0..4 {
            s.next_delay(None, 0.5).unwrap();
        }
        s.progressed();
        assert_eq!(s.failures(), 0);
        assert!(s.next_delay(None, 0.5).is_some());
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
