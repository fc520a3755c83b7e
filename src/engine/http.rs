//! The HTTP both transfers share: sending a request and reading its body against the stop
//! token and the stall timeout, pacing, what each answer they cannot use means, and the wait
//! before another try. What a 503 does is decided here ([`Job::refused`]), for the single
//! stream and every segment alike; whether an error is worth another try, in `retry::classify`.

use super::error::TransferError;
use super::job::Job;
use super::retry::{Failure, Retry, RetryState, classify, jitter, retry_after};
use super::runners::Waiting;
use crate::proxy::Route;
use bytes::Bytes;
use reqwest::Response;
use reqwest::header::{self, HeaderMap};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Why a request or a body read did not bring what was asked.
#[derive(Debug)]
pub(super) enum Failed {
    /// The stop token fired: a pause, a cancel, a shutdown, or another connection's failure.
    Stopped,
    /// Worth another try, after at least what the server asked to wait.
    Again { error: TransferError, retry_after: Option<Duration> },
    /// Waiting would not cure it (a bad certificate, a missing file, another file).
    Fatal(TransferError),
}

impl Failed {
    /// A failed file operation during a transfer: waiting would not cure it.
    pub(super) fn file(what: &'static str) -> impl FnOnce(std::io::Error) -> Failed {
        move |source| Failed::Fatal(TransferError::File { what, source })
    }

    /// A failed request or body, tried again or not as [`classify`] says.
    fn classified(verdict: Retry, error: TransferError) -> Failed {
        match verdict {
            Retry::Transient => Failed::Again { error, retry_after: None },
            Retry::Fatal => Failed::Fatal(error),
        }
    }
}

impl Job {
    /// Sends a GET for the bytes `from..to` (`to` exclusive; `None` to the end) with If-Range
    /// when a validator is known, racing `stop` and the stall timeout.
    pub(super) async fn get(
        &self,
        url: &str,
        from: u64,
        to: Option<u64>,
        stop: &CancellationToken,
    ) -> Result<Response, Failed> {
        let mut req = self.client.get(url).header(header::ACCEPT_ENCODING, "identity");
        // Only the hub's own address gets the token; reqwest drops it on the redirect to the CDN.
        if let Some(token) = self.cfg.hub.as_ref().filter(|h| h.is_hub_url(url)).and_then(|h| h.token.as_ref()) {
            req = req.bearer_auth(token.secret());
        }
        if from > 0 || to.is_some() {
            let end = to.map_or(String::new(), |t| (t - 1).to_string());
            req = req.header(header::RANGE, format!("bytes={from}-{end}"));
            if let Some(v) = self.validator() {
                req = req.header(header::IF_RANGE, v);
            }
        }
        let route = self.proxies.route(url);
        if let Route::Unusable { variable, value } = route {
            return Err(Failed::Fatal(TransferError::ProxySetting { variable, value }));
        }
        let sent = tokio::select! {
            _ = stop.cancelled() => return Err(Failed::Stopped),
            r = tokio::time::timeout(self.cfg.stall_timeout, req.send()) => r,
        };
        match sent {
            Err(_) => Err(Failed::Again { error: TransferError::NoAnswer { host: host_of(url) }, retry_after: None }),
            Ok(Err(source)) => {
                // A connection through a proxy goes to the proxy first: one that is not there
                // stays away however often it is asked.
                if source.is_connect()
                    && let Route::Through { variable, url: proxy } = route
                    && let Some(error) = proxy_missing(variable, &proxy, self.cfg.connect_timeout).await
                {
                    return Err(Failed::Fatal(error));
                }
                let verdict = classify(Failure::Error(&source));
                Err(Failed::classified(verdict, TransferError::Unreachable { host: host_of(url), source }))
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// What an answer whose status the transfer cannot use means: 408, 429 and 5xx are worth
    /// another try (after their Retry-After), every other status is final for this URL.
    pub(super) fn refused(url: &str, resp: &Response) -> Failed {
        let (status, host) = (resp.status(), host_of(url));
        match classify(Failure::Status(status)) {
            Retry::Transient => {
                Failed::Again { error: TransferError::Busy { host, status }, retry_after: retry_after(resp.headers()) }
            }
            Retry::Fatal => Failed::Fatal(TransferError::Refused { status, host }),
        }
    }

    /// An answer that is a web page (a login, a licence to accept, a captive portal, a rate
    /// limit) where the model should be: a GGUF is never served as HTML, so no byte of it is
    /// written.
    pub(super) fn web_page(url: &str, resp: &Response) -> Option<Failed> {
        let content_type = resp.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let is_html = content_type.trim_start().to_ascii_lowercase().starts_with("text/html");
        is_html.then(|| {
            Failed::Fatal(TransferError::WebPage { host: host_of(url), content_type: content_type.to_string() })
        })
    }

    /// A short answer with status 200 and another length than the model's (its Content-Length,
    /// or the bytes its body brought before it ended): a captive portal's page or a filter's
    /// notice, whatever type it claims. Only a 200 that starts at byte 0 says this; a short
    /// body of the model's length is a cut connection, tried again.
    pub(super) fn not_the_model(&self, url: &str, resp: &Response, bytes: u64) -> Option<Failed> {
        let catalog = self.model.size_bytes;
        (resp.status() == reqwest::StatusCode::OK && bytes < catalog && bytes <= PAGE_MAX).then(|| {
            let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            Failed::Fatal(TransferError::NotTheModel {
                host: host_of(url),
                bytes,
                catalog,
                content_type: content_type.map(str::to_string),
            })
        })
    }

    /// The next piece of the body at file offset `at`, where the answer is meant to run to
    /// `end`. `None` once the body ends at `end`; ending before it is a failure worth another try.
    pub(super) async fn chunk(
        &self,
        resp: &mut Response,
        at: u64,
        end: u64,
        stop: &CancellationToken,
    ) -> Result<Option<Bytes>, Failed> {
        let next = tokio::select! {
            _ = stop.cancelled() => return Err(Failed::Stopped),
            r = tokio::time::timeout(self.cfg.stall_timeout, resp.chunk()) => r,
        };
        let host = || host_of(resp.url().as_str());
        match next {
            Err(_) => {
                let error = TransferError::Stalled { host: host(), secs: self.cfg.stall_timeout.as_secs() };
                Err(Failed::Again { error, retry_after: None })
            }
            Ok(Err(source)) => {
                let verdict = classify(Failure::Error(&source));
                Err(Failed::classified(verdict, TransferError::Broken { host: host(), source }))
            }
            Ok(Ok(None)) if at >= end => Ok(None),
            Ok(Ok(None)) => {
                let error = TransferError::EndedEarly { host: host(), at, size: self.model.size_bytes };
                Err(Failed::classified(classify(Failure::EndedEarly), error))
            }
            Ok(Ok(Some(bytes))) => Ok(Some(bytes)),
        }
    }

    /// Waits for the shared bandwidth limit, if one is set, before `bytes` more go on.
    pub(super) async fn pace(&self, bytes: u64, stop: &CancellationToken) -> Result<(), Failed> {
        let Some(pacer) = &self.pacer else { return Ok(()) };
        let wait = pacer.book(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::select! {
                _ = stop.cancelled() => return Err(Failed::Stopped),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        Ok(())
    }

    /// Waits before another try of `error`, as `retry` says; when its budget is spent, the
    /// failure that ends the download.
    pub(super) async fn back_off(
        &self,
        retry: &mut RetryState,
        error: TransferError,
        retry_after: Option<Duration>,
        stop: &CancellationToken,
        segment: Option<usize>,
    ) -> Result<(), Failed> {
        let Some(delay) = retry.next_delay(retry_after, jitter()) else {
            let tries = retry.failures() + 1;
            return Err(Failed::Fatal(TransferError::GaveUp { last: Box::new(error), tries }));
        };
        let delay_ms = delay.as_millis() as u64;
        tracing::info!(id = self.id, segment, reason = %error, delay_ms, "retrying");
        // A restart from zero is the engine's own step, not a failure to tell anyone about.
        let told = (!matches!(error, TransferError::Restart(_))).then(|| Waiting {
            what: error.said().what,
            detail: error.to_string(),
            attempt: retry.failures() + 1,
            of: retry.tries(),
            until: Instant::now() + delay,
        });
        if let Some(w) = &told {
            *self.slot.waiting.lock().expect("waiting lock") = Some(w.clone());
        }
        let waited = tokio::select! {
            _ = stop.cancelled() => Err(Failed::Stopped),
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.slot.try_now.notified() => Ok(()),
        };
        if let Some(w) = told {
            // Only our own wait: another segment may have started a later one meanwhile.
            let mut waiting = self.slot.waiting.lock().expect("waiting lock");
            if waiting.as_ref() == Some(&w) {
                *waiting = None;
            }
        }
        waited
    }
}

/// An answer no longer than this where a model (hundreds of megabytes) should be is a page:
/// sign-in pages and notices are a few kilobytes.
const PAGE_MAX: u64 = 1024 * 1024;

/// Why the proxy at `proxy` (set in `variable`) cannot be reached, when it cannot: its name
/// does not resolve, or its address refuses connections. `None` when it answers (the failure
/// was beyond it) or does not answer in time (maybe busy: worth another try).
async fn proxy_missing(variable: &'static str, proxy: &str, within: Duration) -> Option<TransferError> {
    let url = reqwest::Url::parse(proxy).ok()?;
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(1080);
    let missing = |found, source| TransferError::ProxyUnreachable { variable, proxy: proxy.to_string(), found, source };
    let addrs: Vec<_> = match tokio::time::timeout(within, tokio::net::lookup_host((host.as_str(), port))).await {
        Err(_) => return None,
        Ok(Err(e)) => return Some(missing(false, e)),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    let mut refused = None;
    for addr in addrs {
        match tokio::time::timeout(within, tokio::net::TcpStream::connect(addr)).await {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = Some(e),
            _ => return None,
        }
    }
    refused.map(|e| missing(true, e))
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The `Content-Range` of a 206 answer, parsed.
pub(super) fn content_range(headers: &HeaderMap) -> Option<super::range::ContentRange> {
    headers.get(header::CONTENT_RANGE)?.to_str().ok().and_then(super::range::parse_content_range)
}

/// The ETag (strong ones only: If-Range needs a strong validator), else Last-Modified.
pub(super) fn validator_of(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok()).filter(|e| !e.starts_with("W/"));
    etag.or_else(|| headers.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok())).map(str::to_string)
}

/// The host a URL names, as people know it ("huggingface.co"), without credentials or port.
pub(super) fn host_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.host_str().unwrap_or(url).to_string(),
        Err(_) => url.to_string(),
    }
}
