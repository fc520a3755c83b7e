//! One download's run: claim the row, hash what is already on disk, stream the rest (resuming
//! with Range + If-Range, retrying transient failures), verify the SHA-256 computed while
//! streaming, and install atomically. See DESIGN.md "The download engine".

use super::files;
use super::range::parse_content_range;
use super::retry::{Failure, Retry, RetryState, classify, jitter, retry_after};
use super::sink::Sink;
use super::{Engine, Slot};
use crate::catalog::ModelEntry;
use crate::status::DownloadStatus::{self, *};
use crate::store::downloads::{self, DownloadRow};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How a run ended, for the bookkeeping after it.
pub(super) enum Outcome {
    /// Installed (or found installed) and marked complete.
    Done,
    /// Paused or cancelled by someone else, who already wrote the row.
    Stopped,
    /// Another process holds the partial's lock and is downloading it: its row, not ours.
    Busy,
    /// Failed: the message for the row, and whether the partial is worth keeping.
    Failed { message: String, keep_partial: bool },
}

/// An attempt that can be tried again, with what the server asked to wait.
struct Transient {
    reason: String,
    retry_after: Option<Duration>,
}

pub(super) fn failed(message: impl Into<String>, keep_partial: bool) -> Outcome {
    Outcome::Failed { message: message.into(), keep_partial }
}

impl Engine {
    /// The row, for the engine's own tasks: a row gone (deleted) or unreadable ends the task,
    /// the latter logged, since no user is waiting on an answer.
    pub(super) async fn row_or_log(&self, id: i64) -> Option<DownloadRow> {
        match downloads::get_any_user(&self.db, id).await {
            Ok(row) => row,
            Err(e) => {
                tracing::error!(id, error = %e, "cannot read download row");
                None
            }
        }
    }

    /// The runner task. Holds the slot's run lock for its whole life.
    pub(super) async fn run(self: Arc<Self>, id: i64, slot: Arc<Slot>, token: CancellationToken) {
        let _run = slot.run.lock().await;
        let Some(row) = self.row_or_log(id).await else { return };
        // A pause or cancel that landed before this runner started wins.
        if row.status != Pending || token.is_cancelled() {
            return;
        }
        tracing::info!(id, model = %row.model_id, "download starting");
        let outcome = match self.catalog.get(&row.model_id) {
            Some(model) => self.transfer(&row, model, &slot, &token).await,
            None => failed(format!("{} is no longer in the catalog", row.model_id), true),
        };
        slot.live.lock().expect("live lock").idle();
        let partial = PathBuf::from(&row.partial_path);
        match outcome {
            Outcome::Done => tracing::info!(id, "download complete"),
            Outcome::Busy => tracing::warn!(id, "another localbrain process is downloading this; leaving it"),
            Outcome::Stopped => {
                // Record the real progress for a paused row; cancel removes the file itself.
                self.reconcile_bytes(id, &partial, &[Paused]).await;
                tracing::info!(id, "download stopped");
            }
            Outcome::Failed { message, keep_partial } => {
                tracing::warn!(id, error = %message, "download failed");
                if !keep_partial {
                    let _ = files::remove_if_exists(&partial);
                }
                self.reconcile_bytes(id, &partial, &[Pending, Downloading, Verifying]).await;
                if let Err(e) = downloads::set_status(&self.db, id, Failed, Some(&message)).await {
                    tracing::error!(id, error = %e, "cannot record failure");
                }
            }
        }
    }

    async fn transfer(
        self: &Arc<Self>,
        row: &DownloadRow,
        model: &ModelEntry,
        slot: &Slot,
        token: &CancellationToken,
    ) -> Outcome {
        let target = PathBuf::from(&row.target_path);
        let partial = PathBuf::from(&row.partial_path);

        // Already installed: one streaming hash, shown as verifying, decides whether anything
        // needs downloading.
        if files::len_or_zero(&target) == model.size_bytes {
            if !self.moved(row.id, Verifying).await {
                return Outcome::Stopped;
            }
            let (t, tok) = (target.clone(), token.clone());
            match blocking(move || files::hash_file(&t, &tok)).await {
                Ok(Some(hash)) if hash == model.sha256 => {
                    return self.finish_already_installed(row.id, model.size_bytes).await;
                }
                Ok(None) => return Outcome::Stopped,
                Ok(Some(_)) | Err(_) => {
                    tracing::info!(id = row.id, "installed file differs from the catalog; downloading it again");
                }
            }
        }

        // From pending, or from verifying a wrong installed file.
        if !self.moved(row.id, Downloading).await {
            return Outcome::Stopped;
        }
        if let Some(segments) = self.parallel_plan(row, model.size_bytes, &partial) {
            if let Some(outcome) = self.transfer_parallel(row, model, slot, token, &partial, segments).await {
                return outcome;
            }
        } else if row.segments.is_some()
            && let Err(e) = self.reset_to_one_stream(row.id, &partial).await
        {
            return failed(io_words("cannot reset the partial file", &e), true);
        }
        let mut sink = match self.open_sink(&partial, model.size_bytes, token).await {
            Ok(Some(sink)) => sink,
            Ok(None) => return Outcome::Stopped,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Outcome::Busy,
            Err(e) => return failed(io_words("cannot prepare the partial file", &e), true),
        };
        self.record(row.id, slot, sink.offset, true).await;

        match self.fetch(row, model, slot, token, &mut sink).await {
            Ok(()) => {}
            Err(outcome) => {
                // A write error here was already reported in the outcome.
                let _ = sink.stop().await;
                return outcome;
            }
        }
        let offset = sink.offset;
        let digest = match sink.finish().await {
            Ok(digest) => digest,
            Err(e) => return failed(io_words("cannot save the file", &e), true),
        };
        self.record(row.id, slot, offset, true).await;
        self.verify_and_install(row.id, model, slot, token, &partial, &target, &digest).await
    }

    /// The end of every download: the hash computed while downloading decides, then the install.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn verify_and_install(
        &self,
        id: i64,
        model: &ModelEntry,
        slot: &Slot,
        token: &CancellationToken,
        partial: &Path,
        target: &Path,
        digest: &str,
    ) -> Outcome {
        if !self.moved(id, Verifying).await {
            return Outcome::Stopped;
        }
        if digest != model.sha256 {
            return failed(
                format!(
                    "the downloaded file is corrupt: its SHA-256 fingerprint does not match the catalog, so nothing was installed (got {digest}, expected {})",
                    model.sha256
                ),
                false,
            );
        }
        self.install(id, slot, token, partial, target).await
    }

    /// Streams the body into `sink` until it holds the whole file, trying mirrors and retrying.
    async fn fetch(
        &self,
        row: &DownloadRow,
        model: &ModelEntry,
        slot: &Slot,
        token: &CancellationToken,
        sink: &mut Sink,
    ) -> Result<(), Outcome> {
        let urls: Vec<&str> = model.urls().collect();
        let mut url_index = 0;
        let mut validator = row.validator.clone();
        let size = model.size_bytes;
        // A partial that is already whole needs no request: keep it if its hash is right.
        if sink.offset == size && !sink.digest().await.is_ok_and(|d| d == model.sha256) {
            if let Err(e) = sink.restart().await {
                return Err(failed(io_words("cannot reset the partial file", &e), true));
            }
            self.record(row.id, slot, 0, true).await;
        }
        let mut retry = RetryState::new(self.cfg.retry.clone(), sink.offset);
        while sink.offset < size {
            let url = urls[url_index];
            let attempt =
                self.attempt(row.id, url, size, &model.sha256, &mut validator, slot, token, sink, &mut retry).await;
            let transient = match attempt {
                Attempt::Complete => break,
                Attempt::Stopped => return Err(Outcome::Stopped),
                Attempt::Fatal(outcome) => return Err(outcome),
                Attempt::WrongFile(why) | Attempt::Permanent(why) if url_index + 1 < urls.len() => {
                    tracing::warn!(id = row.id, url, reason = %why, "trying the next mirror");
                    url_index += 1;
                    continue;
                }
                Attempt::WrongFile(why) | Attempt::Permanent(why) => return Err(failed(why, true)),
                Attempt::Transient(t) => t,
            };
            if let Err(e) = sink.flush().await {
                return Err(failed(io_words("cannot write the download", &e), true));
            }
            self.record(row.id, slot, sink.offset, true).await;
            let Some(delay) = retry.next_delay(transient.retry_after, jitter()) else {
                return Err(failed(
                    format!(
                        "{}; gave up after {} tries (the partial download is kept)",
                        transient.reason,
                        retry.failures() + 1
                    ),
                    true,
                ));
            };
            tracing::info!(id = row.id, reason = %transient.reason, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::select! {
                _ = token.cancelled() => return Err(Outcome::Stopped),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        Ok(())
    }

    /// One HTTP request and its body.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        id: i64,
        url: &str,
        size: u64,
        expected_sha256: &str,
        validator: &mut Option<String>,
        slot: &Slot,
        token: &CancellationToken,
        sink: &mut Sink,
        retry: &mut RetryState,
    ) -> Attempt {
        let mut req = self.client.get(url).header(header::ACCEPT_ENCODING, "identity");
        if sink.offset > 0 {
            req = req.header(header::RANGE, format!("bytes={}-", sink.offset));
            if let Some(v) = validator.as_deref() {
                req = req.header(header::IF_RANGE, v);
            }
        }
        let resp = tokio::select! {
            _ = token.cancelled() => return Attempt::Stopped,
            r = tokio::time::timeout(self.cfg.stall_timeout, req.send()) => r,
        };
        let resp = match resp {
            Err(_) => return Attempt::failed(Failure::Stalled, "the download server did not answer in time".into()),
            Ok(Err(e)) => {
                let why = format!("cannot reach the download server ({})", error_chain(&e));
                return Attempt::failed(Failure::Error(&e), why);
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        match status {
            StatusCode::PARTIAL_CONTENT if sink.offset > 0 => {
                let Some(range) =
                    headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(parse_content_range)
                else {
                    return self.restart(id, sink, "the server's partial answer had no usable Content-Range").await;
                };
                if let Some(total) = range.total
                    && total != size
                {
                    return Attempt::WrongFile(size_words(total, size));
                }
                if range.start != sink.offset {
                    return self.restart(id, sink, "the server resumed at the wrong place").await;
                }
            }
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                if let Some(len) = content_length(&headers)
                    && status == StatusCode::OK
                    && len != size
                {
                    return Attempt::WrongFile(size_words(len, size));
                }
                if sink.offset > 0 {
                    // The server ignored Range, or If-Range saw a changed file: a whole new body.
                    if let Err(e) = sink.restart().await {
                        return Attempt::Fatal(failed(io_words("cannot reset the partial file", &e), true));
                    }
                    self.record(id, slot, 0, true).await;
                    tracing::info!(id, "server sent the whole file; starting over");
                }
                let new_validator = validator_of(&headers);
                if new_validator != *validator {
                    *validator = new_validator;
                    let _ = downloads::set_validator(&self.db, id, validator.as_deref()).await;
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The partial may already be whole: keep it if its hash is right, else start over.
                if sink.offset == size && sink.digest().await.is_ok_and(|d| d == expected_sha256) {
                    return Attempt::Complete;
                }
                return self.restart(id, sink, "the server could not continue the partial download").await;
            }
            s => {
                return match classify(Failure::Status(s)) {
                    Retry::Transient => {
                        Attempt::transient(format!("the download server is busy ({s})"), retry_after(&headers))
                    }
                    Retry::Fatal => {
                        Attempt::Permanent(format!("the download server answered {s} for {}", host_of(url)))
                    }
                };
            }
        }
        self.stream_body(id, size, resp, slot, token, sink, retry).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_body(
        &self,
        id: i64,
        size: u64,
        mut resp: reqwest::Response,
        slot: &Slot,
        token: &CancellationToken,
        sink: &mut Sink,
        retry: &mut RetryState,
    ) -> Attempt {
        let mut last_persist = Instant::now();
        loop {
            let next = tokio::select! {
                _ = token.cancelled() => return Attempt::Stopped,
                r = tokio::time::timeout(self.cfg.stall_timeout, resp.chunk()) => r,
            };
            match next {
                Err(_) => {
                    let why = format!("the download stalled: no data for {} s", self.cfg.stall_timeout.as_secs());
                    return Attempt::failed(Failure::Stalled, why);
                }
                Ok(Err(e)) => {
                    return Attempt::failed(Failure::Error(&e), format!("the connection broke ({})", error_chain(&e)));
                }
                Ok(Ok(None)) if sink.offset == size => return Attempt::Complete,
                Ok(Ok(None)) => {
                    let why = format!("the server's answer ended early, at {} of {} bytes", sink.offset, size);
                    return Attempt::failed(Failure::EndedEarly, why);
                }
                Ok(Ok(Some(bytes))) => {
                    if sink.offset + bytes.len() as u64 > size {
                        return Attempt::Fatal(failed(
                            format!("the server sent more than the catalog's {size} bytes: it is a different file"),
                            false,
                        ));
                    }
                    if let Some(pacer) = &self.pacer {
                        let wait = pacer.book(bytes.len() as u64, Instant::now());
                        if !wait.is_zero() {
                            tokio::select! {
                                _ = token.cancelled() => return Attempt::Stopped,
                                _ = tokio::time::sleep(wait) => {}
                            }
                        }
                    }
                    if let Err(e) = sink.push(bytes).await {
                        return Attempt::Fatal(failed(io_words("cannot write the download", &e), true));
                    }
                    retry.reached(sink.offset);
                    let persist = last_persist.elapsed() >= self.cfg.progress_interval;
                    if persist {
                        last_persist = Instant::now();
                        // The row must never claim bytes that are still only in the buffer.
                        if let Err(e) = sink.flush().await {
                            return Attempt::Fatal(failed(io_words("cannot write the download", &e), true));
                        }
                    }
                    self.record(id, slot, sink.offset, persist).await;
                }
            }
        }
    }

    /// Truncates the partial and asks again from byte 0.
    async fn restart(&self, id: i64, sink: &mut Sink, why: &str) -> Attempt {
        tracing::info!(id, reason = why, "restarting from zero");
        if let Err(e) = sink.restart().await {
            return Attempt::Fatal(failed(io_words("cannot reset the partial file", &e), true));
        }
        let _ = downloads::set_bytes(&self.db, id, 0, &[Downloading]).await;
        Attempt::transient(why, Some(Duration::ZERO))
    }

    /// Opens the partial, drops it if it is longer than the model, and hashes what it holds.
    async fn open_sink(&self, partial: &Path, size: u64, token: &CancellationToken) -> std::io::Result<Option<Sink>> {
        let (p, tok) = (partial.to_path_buf(), token.clone());
        blocking(move || {
            let mut file = files::open_partial(&p)?;
            // Held until the file is closed: a second process never writes the same partial.
            files::try_lock(&file)?;
            let mut len = file.metadata()?.len();
            if len > size {
                file.set_len(0)?;
                len = 0;
            }
            let Some(hasher) = files::hash_prefix(&mut file, len, &tok)? else { return Ok(None) };
            file.seek(SeekFrom::Start(len))?;
            Ok(Some(Sink::start(file, hasher, len)))
        })
        .await
    }

    /// The install step, under the slot's critical lock so a cancel cannot slip in between the
    /// rename and the row write.
    async fn install(&self, id: i64, slot: &Slot, token: &CancellationToken, partial: &Path, target: &Path) -> Outcome {
        let _critical = slot.critical.lock().await;
        if token.is_cancelled() || !self.moved(id, Installing).await {
            return Outcome::Stopped;
        }
        let (p, t) = (partial.to_path_buf(), target.to_path_buf());
        if let Err(e) = blocking(move || files::install(&p, &t)).await {
            return failed(io_words("cannot install the model", &e), true);
        }
        if self.moved(id, Complete).await { Outcome::Done } else { Outcome::Stopped }
    }

    async fn finish_already_installed(&self, id: i64, size: u64) -> Outcome {
        let _ = downloads::set_bytes(&self.db, id, size, &[Verifying]).await;
        if self.moved(id, Complete).await { Outcome::Done } else { Outcome::Stopped }
    }

    /// A compare-and-set status move; false when someone else moved the row first.
    async fn moved(&self, id: i64, to: DownloadStatus) -> bool {
        match downloads::set_status(&self.db, id, to, None).await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::error!(id, error = %e, "cannot write status");
                false
            }
        }
    }

    /// Live progress always; the row only when `persist`.
    async fn record(&self, id: i64, slot: &Slot, bytes: u64, persist: bool) {
        slot.live.lock().expect("live lock").record(bytes, Instant::now());
        if persist {
            let _ = downloads::set_bytes(&self.db, id, bytes, &[Downloading]).await;
        }
    }
}

/// The outcome of one request.
enum Attempt {
    Complete,
    Stopped,
    Transient(Transient),
    /// The server's file is not the catalog's (its size differs): try a mirror, else fail.
    WrongFile(String),
    /// A failure that waiting would not cure (a 404, a bad certificate...): try a mirror, else
    /// fail.
    Permanent(String),
    Fatal(Outcome),
}

impl Attempt {
    fn transient(reason: impl Into<String>, retry_after: Option<Duration>) -> Attempt {
        Attempt::Transient(Transient { reason: reason.into(), retry_after })
    }

    /// A failed request or body, tried again or not as [`classify`] says.
    fn failed(failure: Failure<'_>, reason: String) -> Attempt {
        match classify(failure) {
            Retry::Transient => Attempt::transient(reason, None),
            Retry::Fatal => Attempt::Permanent(reason),
        }
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)?
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The ETag (strong ones only: If-Range needs a strong validator), else Last-Modified.
pub(super) fn validator_of(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok()).filter(|e| !e.starts_with("W/"));
    etag.or_else(|| headers.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok())).map(str::to_string)
}

fn size_words(server: u64, catalog: u64) -> String {
    format!("the server's file is {server} bytes but the catalog says {catalog}: it is a different file")
}

pub(super) fn io_words(what: &str, e: &std::io::Error) -> String {
    if files::is_disk_full(e) {
        "disk full: free some space and try again (the partial download is kept)".to_string()
    } else {
        format!("{what}: {e}")
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// An error with its causes, which is where reqwest says what really happened.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
