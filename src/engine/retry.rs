//! When to try again. [`classify`] is the one place that decides whether a failure is worth
//! another try, for the single stream and the segments alike, by its cause: the status, or the
//! error's source chain (as uv and cargo do). Transient failures (refused or reset connections,
//! timeouts, DNS failures, broken pipes, stalls, 408, 429, 5xx) wait an exponentially growing
//! delay with jitter, or what the server's Retry-After asks for (capped), and give up after a
//! fixed number of attempts in a row without progress. Fatal ones (a bad TLS certificate, a
//! server that does not speak HTTP, 401, 403, 404, 410) are not retried at all: waiting would
//! only delay the same answer. Progress resets the count, so a long download over a flaky line
//! is not doomed by failures spread over hours; progress is the partial reaching further into
//! the catalog's bytes than ever before in the run, not bytes received: a host that answers every
//! request with the same short body refills what the restart emptied, makes no progress, and
//! runs out of tries instead of being asked again forever (a short whole answer where the model
//! should be, a captive portal's page, fails at once before that: `Job::not_the_model`).

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use std::error::Error;
use std::io;
use std::time::Duration;

/// Whether a failed attempt is worth another try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Likely to pass by itself (a dropped connection, a busy server): wait and try again.
    Transient,
    /// Will fail the same way again (a bad certificate, a missing file): stop asking this host.
    Fatal,
}

/// One failed attempt, as far as retrying is concerned.
#[derive(Clone, Copy, Debug)]
pub enum Failure<'a> {
    /// The server answered with a status the transfer cannot use.
    Status(StatusCode),
    /// Sending the request or reading the body failed; the cause is in the source chain.
    Error(&'a (dyn Error + 'static)),
    /// No answer, or no byte, within the stall timeout.
    Stalled,
    /// The body ended cleanly before the bytes it was meant to bring.
    EndedEarly,
}

/// Whether `failure` is worth another try. The answer for every status, error and timeout a
/// transfer meets comes from here.
pub fn classify(failure: Failure<'_>) -> Retry {
    match failure {
        Failure::Status(StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS) => Retry::Transient,
        Failure::Status(s) if s.is_server_error() => Retry::Transient,
        // 401, 403, 404, 410 and every other answer: asking again gets the same one.
        Failure::Status(_) => Retry::Fatal,
        Failure::Error(e) => classify_error(e),
        Failure::Stalled | Failure::EndedEarly => Retry::Transient,
    }
}

/// Walks the source chain, outermost cause first, until a cause tells. A connect error no cause
/// explains (a DNS failure, an unreachable network) is transient; any other error nothing
/// explains is fatal, as uv and cargo treat it, so an unknown failure is reported at once
/// instead of after minutes of backoff.
fn classify_error(e: &(dyn Error + 'static)) -> Retry {
    let mut connect = false;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<reqwest::Error>() {
            // A URL this client cannot use, or a redirect loop.
            if e.is_builder() || e.is_redirect() {
                return Retry::Fatal;
            }
            if e.is_timeout() {
                return Retry::Transient;
            }
            if let Some(status) = e.status() {
                return classify(Failure::Status(status));
            }
            connect |= e.is_connect();
        } else if let Some(e) = c.downcast_ref::<hyper::Error>() {
            // The server's answer is not HTTP this client can read.
            if e.is_parse() {
                return Retry::Fatal;
            }
            // The connection closed before an answer, or timed out.
            if e.is_incomplete_message() || e.is_closed() || e.is_canceled() || e.is_timeout() {
                return Retry::Transient;
            }
        } else if let Some(e) = c.downcast_ref::<io::Error>()
            && let Some(verdict) = classify_io(e.kind())
        {
            return verdict;
        }
        cause = next_cause(c);
    }
    if connect { Retry::Transient } else { Retry::Fatal }
}

/// What an io error's kind tells, if anything.
fn classify_io(kind: io::ErrorKind) -> Option<Retry> {
    use io::ErrorKind::*;
    match kind {
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe | TimedOut
        | UnexpectedEof | Interrupted | WriteZero | AddrNotAvailable | HostUnreachable | NetworkUnreachable
        | NetworkDown => Some(Retry::Transient),
        // rustls reports a bad certificate or a broken handshake as InvalidData; hyper a body
        // whose framing is broken (a bad chunk size) as InvalidData or InvalidInput.
        InvalidData | InvalidInput => Some(Retry::Fatal),
        _ => None,
    }
}

/// The cause below `e`. An `io::Error`'s `source()` skips the error it wraps (it returns that
/// error's source), so the wrapped one is taken instead: it may be the cause that tells.
pub(super) fn next_cause<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => Some(inner),
        None => e.source(),
    }
}

/// The wait a 408, 429 or 5xx answer asks for in its Retry-After header, if it gives seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(header::RETRY_AFTER)?.to_str().ok().and_then(parse_retry_after)
}

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
    /// The furthest offset the partial has reached in this run: only bytes beyond it are progress.
    furthest: u64,
}

impl RetryState {
    /// A fresh count under `policy`, for a transfer whose partial already reaches offset `from`.
    pub fn new(policy: RetryPolicy, from: u64) -> Self {
        RetryState { policy, failures: 0, furthest: from }
    }

    /// The partial now holds the catalog's bytes up to `offset`. Further than ever before is
    /// progress: the next failure counts as the first. Less or as far (bytes refilling what a
    /// restart emptied) is not.
    pub fn reached(&mut self, offset: u64) {
        if offset > self.furthest {
            self.furthest = offset;
            self.failures = 0;
        }
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The most tries in a row without progress: the first one and every retry.
    pub fn tries(&self) -> u32 {
        self.policy.max_retries + 1
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
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
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
        let mut s = RetryState::new(policy(), 0);
        let got: Vec<_> = (0..5).map(|_| s.next_delay(None, 1.0)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(got, vec![ms(100), ms(200), ms(400), ms(800), None]);
    }

    #[test]
    fn zero_jitter_halves_the_step_and_the_cap_holds() {
        let mut s = RetryState::new(RetryPolicy { max_retries: 10, ..policy() }, 0);
        let got: Vec<_> = (0..6).map(|_| s.next_delay(None, 0.0).unwrap().as_millis()).collect();
        assert_eq!(got, vec![50, 100, 200, 400, 800, 1000]);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut s = RetryState::new(policy(), 0);
        assert_eq!(s.next_delay(Some(Duration::from_millis(700)), 0.3), Some(Duration::from_millis(700)));
        assert_eq!(s.next_delay(Some(Duration::from_secs(90)), 0.3), Some(Duration::from_secs(1)));
    }

    #[test]
    fn progress_resets_the_count() {
        let mut s = RetryState::new(policy(), 1_000);
        for _ in 0..4 {
            s.next_delay(None, 0.5).unwrap();
        }
        s.reached(1_001);
        assert_eq!(s.failures(), 0);
        assert!(s.next_delay(None, 0.5).is_some());
    }

    #[test]
    fn bytes_that_only_refill_a_restarted_partial_are_not_progress() {
        let mut s = RetryState::new(policy(), 1_000);
        s.next_delay(None, 0.5).unwrap();
        // Not past where the partial already was when the run began.
        s.reached(1_000);
        assert_eq!(s.failures(), 1);
        s.reached(5_000);
        s.next_delay(None, 0.5).unwrap();
        // A restart from zero, then the same short body again and again.
        for _ in 0..3 {
            s.reached(48);
            s.next_delay(None, 0.5).unwrap();
        }
        assert_eq!(s.failures(), 4);
        assert_eq!(s.next_delay(None, 0.5), None, "the budget runs out");
        s.reached(5_001);
        assert_eq!(s.failures(), 0, "new ground resets it");
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
