//! The single-stream transfer: one connection from where the partial ends to the end of the
//! file, resuming with Range + If-Range, trying the catalog's mirrors in turn, retrying what is
//! worth another try. A `200` to a resume means the server ignored the range (or the file
//! changed): start over, never append.

use super::blocking::blocking;
use super::error::TransferError;
use super::files;
use super::http::{Failed, content_length, content_range, host_of, validator_of};
use super::job::{Job, Outcome};
use super::retry::RetryState;
use super::sink::Sink;
use crate::status::DownloadStatus::Downloading;
use crate::store::downloads;
use reqwest::StatusCode;
use std::io::{Seek, SeekFrom};
use std::time::{Duration, Instant};

/// One download's single stream: its job and the partial's writer.
pub(super) struct SingleStream<'a> {
    job: &'a Job,
    sink: Sink,
}

impl<'a> SingleStream<'a> {
    /// Downloads what the partial lacks: the SHA-256 of the whole file, or how it ended.
    pub(super) async fn run(job: &'a Job) -> Result<String, Outcome> {
        let sink = match open_sink(job).await {
            Ok(Some(sink)) => sink,
            Ok(None) => return Err(Outcome::Stopped),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Err(Outcome::Busy),
            Err(e) => {
                return Err(Outcome::file("cannot prepare the partial file")(e));
            }
        };
        let mut stream = SingleStream { job, sink };
        job.record(stream.sink.offset, true).await;
        match stream.fetch().await {
            Ok(()) => {}
            Err(outcome) => {
                // A write error here was already reported in the outcome.
                let _ = stream.sink.stop().await;
                return Err(outcome);
            }
        }
        let offset = stream.sink.offset;
        let digest = stream.sink.finish().await.map_err(Outcome::file("cannot save the file"))?;
        job.record(offset, true).await;
        Ok(digest)
    }

    /// Streams the body into the sink until it holds the whole file, trying mirrors and retrying.
    async fn fetch(&mut self) -> Result<(), Outcome> {
        let job = self.job;
        let urls: Vec<&str> = job.model.urls().collect();
        let mut url_index = 0;
        let size = job.model.size_bytes;
        // A partial that is already whole needs no request: keep it if its hash is right.
        if self.sink.offset == size && !self.sink.digest().await.is_ok_and(|d| d == job.model.sha256) {
            self.sink.restart().await.map_err(Outcome::file("cannot reset the partial file"))?;
            job.record(0, true).await;
        }
        let mut retry = RetryState::new(job.cfg.retry.clone(), self.sink.offset);
        while self.sink.offset < size {
            let url = urls[url_index];
            let (error, retry_after) = match self.attempt(url, &mut retry).await {
                Ok(()) => break,
                Err(Failed::Stopped) => return Err(Outcome::Stopped),
                Err(Failed::Fatal(error)) if url_index + 1 < urls.len() && is_mirror_worth(&error) => {
                    tracing::warn!(id = job.id, url, reason = %error, "trying the next mirror");
                    url_index += 1;
                    continue;
                }
                Err(Failed::Fatal(error)) => return Err(ended(error)),
                Err(Failed::Again { error, retry_after }) => (error, retry_after),
            };
            self.sink.flush().await.map_err(Outcome::file("cannot write the download"))?;
            job.record(self.sink.offset, true).await;
            match job.back_off(&mut retry, error, retry_after, &job.cancel, None).await {
                Ok(()) => {}
                Err(Failed::Stopped) => return Err(Outcome::Stopped),
                Err(Failed::Fatal(error) | Failed::Again { error, .. }) => return Err(ended(error)),
            }
        }
        Ok(())
    }

    /// One request and its body.
    async fn attempt(&mut self, url: &str, retry: &mut RetryState) -> Result<(), Failed> {
        let job = self.job;
        let size = job.model.size_bytes;
        let resp = job.get(url, self.sink.offset, None, &job.cancel).await?;
        let status = resp.status();
        match status {
            StatusCode::PARTIAL_CONTENT if self.sink.offset > 0 => {
                let Some(range) = content_range(resp.headers()) else {
                    return self.restart("the server's partial answer had no usable Content-Range").await;
                };
                if let Some(total) = range.total
                    && total != size
                {
                    return Err(Failed::Fatal(TransferError::WrongSize {
                        host: host_of(url),
                        server: total,
                        catalog: size,
                    }));
                }
                if range.start != self.sink.offset {
                    return self.restart("the server resumed at the wrong place").await;
                }
            }
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                if let Some(page) = Job::web_page(url, &resp) {
                    return Err(page);
                }
                if let Some(len) = content_length(resp.headers())
                    && status == StatusCode::OK
                    && len != size
                {
                    if let Some(page) = job.not_the_model(url, &resp, len) {
                        return Err(page);
                    }
                    return Err(Failed::Fatal(TransferError::WrongSize {
                        host: host_of(url),
                        server: len,
                        catalog: size,
                    }));
                }
                if self.sink.offset > 0 {
                    // The server ignored Range, or If-Range saw a changed file: a whole new body.
                    self.sink.restart().await.map_err(Failed::file("cannot reset the partial file"))?;
                    job.record(0, true).await;
                    tracing::info!(id = job.id, "server sent the whole file; starting over");
                }
                job.set_validator(validator_of(resp.headers())).await;
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The partial may already be whole: keep it if its hash is right, else start over.
                if self.sink.offset == size && self.sink.digest().await.is_ok_and(|d| d == job.model.sha256) {
                    return Ok(());
                }
                return self.restart("the server could not continue the partial download").await;
            }
            _ => return Err(Job::refused(url, &resp)),
        }
        self.stream_body(resp, retry).await
    }

    async fn stream_body(&mut self, mut resp: reqwest::Response, retry: &mut RetryState) -> Result<(), Failed> {
        let job = self.job;
        let size = job.model.size_bytes;
        let mut last_persist = Instant::now();
        // A whole answer of no stated length: only its end tells whether it was the model.
        let unsized_whole = resp.status() == StatusCode::OK && content_length(resp.headers()).is_none();
        loop {
            let next = job.chunk(&mut resp, self.sink.offset, size, &job.cancel).await;
            if let Err(Failed::Again { error: TransferError::EndedEarly { .. }, .. }) = &next
                && unsized_whole
                && let Some(page) = job.not_the_model(resp.url().as_str(), &resp, self.sink.offset)
            {
                return Err(page);
            }
            let Some(bytes) = next? else { break };
            if self.sink.offset + bytes.len() as u64 > size {
                return Err(Failed::Fatal(TransferError::TooLong { host: host_of(resp.url().as_str()), size }));
            }
            job.pace(bytes.len() as u64, &job.cancel).await?;
            self.sink.push(bytes).await.map_err(Failed::file("cannot write the download"))?;
            retry.reached(self.sink.offset);
            let persist = last_persist.elapsed() >= job.cfg.progress_interval;
            if persist {
                last_persist = Instant::now();
                // The row must never claim bytes that are still only in the buffer.
                self.sink.flush().await.map_err(Failed::file("cannot write the download"))?;
            }
            job.record(self.sink.offset, persist).await;
        }
        Ok(())
    }

    /// Truncates the partial and asks again from byte 0 (after a zero wait, within the budget).
    async fn restart(&mut self, why: &'static str) -> Result<(), Failed> {
        tracing::info!(id = self.job.id, reason = why, "restarting from zero");
        self.sink.restart().await.map_err(Failed::file("cannot reset the partial file"))?;
        let _ = downloads::set_bytes(&self.job.db, self.job.id, self.job.base, &[Downloading]).await;
        Err(Failed::Again { error: TransferError::Restart(why), retry_after: Some(Duration::ZERO) })
    }
}

/// Whether another mirror may do better: the file is missing or different here, or the host
/// refuses; a failure of the disk would fail on every mirror.
fn is_mirror_worth(error: &TransferError) -> bool {
    !matches!(error, TransferError::File { .. } | TransferError::GaveUp { .. } | TransferError::TooLong { .. })
}

/// The end of a failed transfer: the partial is kept unless its bytes are not the catalog's.
fn ended(error: TransferError) -> Outcome {
    let keep_partial = !matches!(error, TransferError::TooLong { .. } | TransferError::NotTheModel { .. });
    Outcome::Failed { error, keep_partial }
}

/// Opens the partial, drops it if it is longer than the model, and hashes what it holds.
async fn open_sink(job: &Job) -> std::io::Result<Option<Sink>> {
    let (p, tok, size) = (job.partial.clone(), job.cancel.clone(), job.model.size_bytes);
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
        Sink::start(file, hasher, len).map(Some)
    })
    .await
}
