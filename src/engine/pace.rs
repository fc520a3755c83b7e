//! A bandwidth limit shared by every transfer of one engine: each chunk books its share of
//! time on one clock, and waits until its turn. Bursts are capped at a quarter second of
//! traffic, so the average holds without starving anyone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Paces bytes to at most `rate` per second across all callers.
#[derive(Debug)]
pub struct Pacer {
    rate: u64,
    /// When the booked traffic ends; `None` before the first booking.
    next: Mutex<Option<Instant>>,
}

const BURST: Duration = Duration::from_millis(250);

impl Pacer {
    /// A pacer for `rate` bytes per second (must be > 0).
    pub fn new(rate: u64) -> Pacer {
        Pacer { rate: rate.max(1), next: Mutex::new(None) }
    }

    /// Books `bytes` at `now`; returns how long the caller must wait before going on.
    pub fn book(&self, bytes: u64, now: Instant) -> Duration {
        let cost = Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        let mut next = self.next.lock().expect("pacer lock");
        // Idle time earns at most one burst of credit.
        let start = match *next {
            None => now,
            Some(n) => n.max(now.checked_sub(BURST).unwrap_or(now)),
        };
        let end = start + cost;
        *next = Some(end);
        end.saturating_duration_since(now + BURST)
    }
}

/// Parses a rate like "10M", "500K", "2.5MB", "1000000" into bytes per second (decimal units).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_end_matches("/s").trim_end_matches(['B', 'b']);
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let value: f64 =
        num.trim().parse().map_err(|_| format!("{text:?} is not a rate like 10M or 500K (bytes per second)"))?;
    let rate = (value * mult) as u64;
    if !(value.is_finite() && rate >= 1024) {
        return Err(format!("{text:?} is too low: the limit must be at least 1K (bytes per second)"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_add_up_to_the_rate() {
        let p = Pacer::new(1_000_000);
        let t0 = Instant::now();
        // The first 250 ms of traffic pass at once (the burst), then waits grow with the bytes.
        assert_eq!(p.book(250_000, t0), Duration::ZERO);
        assert_eq!(p.book(250_000, t0), Duration::from_millis(250));
        assert_eq!(p.book(500_000, t0), Duration::from_millis(750));
        // Later, after the booked time passed, no wait.
        assert_eq!(p.book(100_000, t0 + Duration::from_secs(5)), Duration::ZERO);
    }

    #[test]
    fn rates_parse_in_decimal_units() {
        assert_eq!(parse_rate("10M"), Ok(10_000_000));
        assert_eq!(parse_rate("500K"), Ok(500_000));
        assert_eq!(parse_rate("2.5MB/s"), Ok(2_500_000));
        assert_eq!(parse_rate("1000000"), Ok(1_000_000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5M").is_err());
    }
}
