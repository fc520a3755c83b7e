//! Failed credential attempts (login links; API keys, counted apart), per client address: after [`MAX_FAILURES`] within
//! [`WINDOW`] an address is refused (429 with Retry-After) until its oldest failure leaves the
//! window. A 256-bit token cannot be guessed anyway; this keeps a scanner from trying at full
//! speed and puts it in the log. Memory stays bounded: at most [`MAX_ADDRESSES`] addresses are
//! tracked, the stalest forgotten first.
//!
//! Behind a reverse proxy every client has the proxy's address, so they share one count.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an address may have within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Addresses tracked at once.
const MAX_ADDRESSES: usize = 10_000;

/// The failed attempts of every recent address.
#[derive(Default)]
pub struct Guesses {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Guesses {
    /// `Err(wait)` while `ip` has used up its failures: how long until it may try again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut all = self.failures.lock().expect("guesses lock");
        let Some(times) = all.get_mut(&ip) else { return Ok(()) };
        forget_old(times, now);
        match times.front() {
            Some(&oldest) if times.len() >= MAX_FAILURES => Err(WINDOW.saturating_sub(now - oldest)),
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt from `ip`; returns how many it has within the window.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> usize {
        let mut all = self.failures.lock().expect("guesses lock");
        if !all.contains_key(&ip) && all.len() >= MAX_ADDRESSES {
            all.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
            if all.len() >= MAX_ADDRESSES {
                let stalest = all.iter().min_by_key(|(_, t)| t.back().copied()).map(|(ip, _)| *ip);
                if let Some(stalest) = stalest {
                    all.remove(&stalest);
                }
            }
        }
        let times = all.entry(ip).or_default();
        forget_old(times, now);
        times.push_back(now);
        times.len()
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_oldest_leaves_the_window() {
        let g = Guesses::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(g.check(a, t0), Ok(()), "attempt {i}");
            assert_eq!(g.failed(a, t0 + Duration::from_secs(i as u64)), i + 1);
        }
        let now = t0 + Duration::from_secs(60);
        assert_eq!(g.check(a, now), Err(WINDOW - Duration::from_secs(60)));
        assert_eq!(g.check(b, now), Ok(()), "another address has its own count");
        assert_eq!(g.check(a, t0 + WINDOW), Ok(()), "the oldest failure left the window");
    }
}
