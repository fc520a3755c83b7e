//! A parallel download: the file's segments (see `segments`) fetched over several ranged
//! connections at once into the preallocated partial (see `segment_sink` for the writing and
//! the hashing that follows the finished prefix). The partial's space is reserved only once an
//! answer has shown the right file (a 206 of this size at the asked place): an unreachable host
//! or a refusal costs no disk.
//!
//! Connections take segments in file order, so the finished prefix, and with it the hash, grows
//! while the download runs. More connections only help when one is slow (a CDN capping each
//! connection, a long fat pipe); when one stream is already fast, extra ones only make segments
//! finish together and leave the hasher a backlog at the end. So the others open only while the
//! first delivers less than `fast_stream_bps` (checked every `PROBE`).
//!
//! The first connection's answer is awaited before the others open: it tells whether the
//! server serves ranges of this file and gives the validator (ETag or Last-Modified) every later
//! request sends as If-Range, so no two segments can come from two versions of the file. Any
//! answer showing the server cannot serve ranges of exactly this file (a 200, a range at the
//! wrong place, another size, a refusal) hands the download back to the single-stream path,
//! which starts over, tries mirrors and words any failure. A failure of the host itself that
//! waiting would not cure (a bad certificate) ends the run at once, keeping every segment.

use super::files;
use super::retry::{Failure, Retry, RetryState, classify, jitter, retry_after};
use super::runner::{Outcome, blocking, error_chain, failed, io_words, validator_of};
use super::segment_sink::{Progress, SegmentSink, SegmentWriter};
use super::segments::{self, Segment};
use super::{Engine, Slot};
use crate::catalog::ModelEntry;
use crate::status::DownloadStatus::{Downloading, Paused};
use crate::store::downloads::{self, DownloadRow};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header;
use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long the first connection is watched before more are opened (when a speed rule is set),
/// and again every so long while it stays fast. 200 ms saved 0.2 s against a capped server but
/// let a hiccup of the disk in those first moments open helpers on a fast link (BENCHMARKS.md);
/// over the internet a download takes minutes, so half a second of looking costs nothing.
const PROBE: Duration = Duration::from_millis(500);

/// How a parallel run ended.
pub(super) enum Parallel {
    /// Every byte is in the file: the SHA-256 of the whole file.
    Done(String),
    Stopped,
    /// Start over in one stream, for this reason.
    OneStream(String),
    Failed(Outcome),
}

/// How one connection stopped early.
enum End {
    Stopped,
    OneStream(String),
    Failed(String),
}

/// A request that can be tried again.
struct Again {
    reason: String,
    retry_after: Option<Duration>,
}

enum Step {
    Again(Again),
    End(End),
}

fn again(reason: impl Into<String>, retry_after: Option<Duration>) -> Step {
    Step::Again(Again { reason: reason.into(), retry_after })
}

/// A failed request or body, tried again or not as [`classify`] says.
fn failed_step(failure: Failure<'_>, reason: String) -> Step {
    match classify(failure) {
        Retry::Transient => again(reason, None),
        Retry::Fatal => Step::End(End::Failed(reason)),
    }
}

/// What every connection of one run shares.
struct Run {
    id: i64,
    url: String,
    size: u64,
    /// Sent as If-Range; learnt from the first answer when the row has none yet.
    validator: Mutex<Option<String>>,
    /// Unfinished segments not yet taken by a connection, in file order.
    queue: Mutex<VecDeque<usize>>,
    progress: Arc<Progress>,
    /// Stops every connection: the download's token, or the first connection that failed.
    stop: CancellationToken,
    /// The partial (a handle of the locked file), to reserve its space on.
    partial: File,
    /// Set once the partial has its full length reserved.
    reserved: tokio::sync::OnceCell<()>,
}

impl Run {
    fn next_segment(&self) -> Option<(usize, Segment)> {
        let idx = self.queue.lock().expect("queue lock").pop_front()?;
        Some((idx, self.progress.snapshot()[idx]))
    }

    /// Gives the partial its full length with the blocks reserved (see `files::preallocate`),
    /// once per run, before the first byte is written: every connection asks, the first does it.
    async fn reserve(&self) -> std::io::Result<()> {
        self.reserved
            .get_or_try_init(|| async {
                let (file, size) = (self.partial.try_clone()?, self.size);
                blocking(move || if file.metadata()?.len() == size { Ok(()) } else { files::preallocate(&file, size) })
                    .await
            })
            .await
            .map(|_| ())
    }
}

impl Engine {
    /// The segments to download in parallel: the row's own when it is a parallel download whose
    /// partial is still there, a fresh plan for a new download of a large file, `None` for one
    /// stream (a small file, one connection configured, or a single-stream partial to continue).
    pub(super) fn parallel_plan(&self, row: &DownloadRow, size: u64, partial: &Path) -> Option<Vec<Segment>> {
        let on_disk = files::len_or_zero(partial);
        match &row.segments {
            Some(text) if on_disk == size => {
                if let Some(saved) = segments::decode(text, size) {
                    return Some(saved);
                }
            }
            // The partial is gone (or not this size): a fresh plan, over a truncated file.
            Some(_) => {}
            None if on_disk > 0 => return None,
            None => {}
        }
        if self.cfg.connections <= 1 {
            return None;
        }
        let plan = segments::plan(size, self.cfg.segment_rule);
        (plan.len() > 1).then_some(plan)
    }

    /// Runs a parallel download to its end. `None` when it handed over to one stream, after
    /// emptying the partial and the row's segments.
    pub(super) async fn transfer_parallel(
        self: &Arc<Self>,
        row: &DownloadRow,
        model: &ModelEntry,
        slot: &Slot,
        token: &CancellationToken,
        partial: &Path,
        segments: Vec<Segment>,
    ) -> Option<Outcome> {
        let size = model.size_bytes;
        let fresh = segments::done_bytes(&segments) == 0;
        if fresh {
            // The row describes the file before the file grows: recovery then never takes a
            // preallocated partial's length for progress.
            let text = segments::encode(&segments);
            match downloads::set_segments(&self.db, row.id, 0, Some(&text), &[Downloading]).await {
                Ok(true) => {}
                Ok(false) => return Some(Outcome::Stopped),
                Err(e) => return Some(failed(format!("cannot record the download: {e}"), true)),
            }
        }
        let p = partial.to_path_buf();
        let opened = blocking(move || {
            let file = files::open_partial(&p)?;
            files::try_lock(&file)?;
            if fresh {
                file.set_len(0)?;
            }
            Ok(file)
        })
        .await;
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(Outcome::Busy),
            Err(e) => return Some(failed(io_words("cannot prepare the partial file", &e), true)),
        };
        slot.live.lock().expect("live lock").record(segments::done_bytes(&segments), Instant::now());
        let url = model.urls().next().unwrap_or_default();
        // A fresh plan asks without If-Range: whatever validator the row has is from an older try.
        let validator = if fresh { None } else { row.validator.clone() };
        match self.fetch_parallel(row.id, url, validator, size, slot, token, file, &segments).await {
            Parallel::Done(digest) => {
                let target = Path::new(&row.target_path);
                Some(self.verify_and_install(row.id, model, slot, token, partial, target, &digest).await)
            }
            Parallel::Stopped => Some(Outcome::Stopped),
            Parallel::Failed(outcome) => Some(outcome),
            Parallel::OneStream(why) => {
                tracing::info!(id = row.id, reason = %why, "continuing in one stream from the start");
                match self.reset_to_one_stream(row.id, partial).await {
                    Ok(()) => None,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(Outcome::Busy),
                    Err(e) => Some(failed(io_words("cannot reset the partial file", &e), true)),
                }
            }
        }
    }

    /// Empties the partial and drops the row's segments: the next bytes come in one stream.
    pub(super) async fn reset_to_one_stream(&self, id: i64, partial: &Path) -> std::io::Result<()> {
        let p = partial.to_path_buf();
        blocking(move || {
            let file = files::open_partial(&p)?;
            files::try_lock(&file)?;
            file.set_len(0)
        })
        .await?;
        downloads::set_segments(&self.db, id, 0, None, &[Downloading]).await.map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Downloads the unfinished `segments` of the row's model into `file` (locked; its space is
    /// reserved by the first connection whose answer shows the right file).
    #[allow(clippy::too_many_arguments)]
    async fn fetch_parallel(
        self: &Arc<Self>,
        id: i64,
        url: &str,
        validator: Option<String>,
        size: u64,
        slot: &Slot,
        token: &CancellationToken,
        file: File,
        segments: &[Segment],
    ) -> Parallel {
        let progress = Arc::new(Progress::new(segments));
        let partial = match file.try_clone() {
            Ok(partial) => partial,
            Err(e) => return Parallel::Failed(failed(io_words("cannot start writing the download", &e), true)),
        };
        let sink = match SegmentSink::start(file, progress.clone(), size) {
            Ok(sink) => sink,
            Err(e) => return Parallel::Failed(failed(io_words("cannot start writing the download", &e), true)),
        };
        let queue: VecDeque<usize> =
            segments.iter().enumerate().filter(|(_, s)| !s.is_complete()).map(|(i, _)| i).collect();
        let connections = self.cfg.connections.max(1).min(queue.len());
        let run = Arc::new(Run {
            id,
            url: url.to_string(),
            size,
            validator: Mutex::new(validator),
            queue: Mutex::new(queue),
            progress: progress.clone(),
            stop: token.child_token(),
            partial,
            reserved: tokio::sync::OnceCell::new(),
        });
        let mut set = JoinSet::new();
        let (ready_tx, mut ready_rx) = oneshot::channel();
        if connections > 0 {
            set.spawn(self.clone().connection(run.clone(), sink.writer(), Some(ready_tx)));
        }
        let mut waiting_for_first = connections > 1;
        // Set once the first connection answers: when, and the bytes then. The others open at
        // once without a speed rule, else once a probe shows one stream is not fast enough.
        let mut probe: Option<(Instant, u64)> = None;
        let probe_timer = tokio::time::sleep(PROBE);
        tokio::pin!(probe_timer);
        let mut opened = 1;
        let mut end: Option<End> = None;
        let mut tick = tokio::time::interval(self.cfg.progress_interval.min(Duration::from_millis(250)));
        loop {
            tokio::select! {
                first = &mut ready_rx, if waiting_for_first => {
                    waiting_for_first = false;
                    if first.is_ok() {
                        if self.cfg.fast_stream_bps.is_none() {
                            opened = self.open_more(&mut set, &run, &sink, opened, connections);
                        } else {
                            probe = Some((Instant::now(), progress.done_bytes()));
                            probe_timer.as_mut().reset(tokio::time::Instant::now() + PROBE);
                        }
                    }
                }
                joined = set.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => {
                        // The first connection to give up decides; the others stop.
                        end.get_or_insert(e);
                        run.stop.cancel();
                    }
                    Some(Err(e)) => {
                        end.get_or_insert(End::Failed(format!("a download connection crashed: {e}")));
                        run.stop.cancel();
                    }
                },
                _ = tick.tick() => {
                    // The row is the only record of what a preallocated partial holds, so it is
                    // written on every tick: a kill -9 loses at most a quarter second of bytes.
                    self.persist_segments(id, &progress).await;
                    slot.live.lock().expect("live lock").record(progress.done_bytes(), Instant::now());
                }
                _ = &mut probe_timer, if probe.is_some() && opened < connections => {
                    let (since, at) = probe.expect("probing");
                    let done = progress.done_bytes();
                    let rate = (done - at) as f64 / since.elapsed().as_secs_f64();
                    let fast = self.cfg.fast_stream_bps.expect("a probe runs only under a speed rule");
                    if rate < fast as f64 {
                        tracing::info!(id, rate_mbps = rate / 1e6, "one stream is slow; opening more connections");
                        opened = self.open_more(&mut set, &run, &sink, opened, connections);
                    } else {
                        probe = Some((Instant::now(), done));
                        probe_timer.as_mut().reset(tokio::time::Instant::now() + PROBE);
                    }
                }
            }
        }
        let result = match end {
            None => match sink.finish().await {
                Ok(digest) => Parallel::Done(digest),
                Err(e) => Parallel::Failed(failed(io_words("cannot save the file", &e), true)),
            },
            Some(end) => {
                // A write error here was already reported by the connection that met it.
                let _ = sink.stop().await;
                match end {
                    End::Stopped => Parallel::Stopped,
                    End::OneStream(why) => Parallel::OneStream(why),
                    End::Failed(why) => Parallel::Failed(failed(why, true)),
                }
            }
        };
        // Every byte written is now counted: the row gets the final per-segment progress.
        self.persist_segments(id, &progress).await;
        slot.live.lock().expect("live lock").record(progress.done_bytes(), Instant::now());
        result
    }

    /// Opens connections up to `connections`; returns how many are open.
    fn open_more(
        self: &Arc<Self>,
        set: &mut JoinSet<Result<(), End>>,
        run: &Arc<Run>,
        sink: &SegmentSink,
        opened: usize,
        connections: usize,
    ) -> usize {
        for _ in opened..connections {
            set.spawn(self.clone().connection(run.clone(), sink.writer(), None));
        }
        connections.max(opened)
    }

    async fn persist_segments(&self, id: i64, progress: &Progress) {
        let snapshot = progress.snapshot();
        let text = segments::encode(&snapshot);
        let bytes = segments::done_bytes(&snapshot);
        if let Err(e) = downloads::set_segments(&self.db, id, bytes, Some(&text), &[Downloading, Paused]).await {
            tracing::error!(id, error = %e, "cannot record segment progress");
        }
    }

    /// One connection: takes segments in file order until none is left.
    async fn connection(
        self: Arc<Self>,
        run: Arc<Run>,
        writer: SegmentWriter,
        mut ready: Option<oneshot::Sender<()>>,
    ) -> Result<(), End> {
        while let Some((idx, seg)) = run.next_segment() {
            self.fetch_segment(&run, &writer, idx, seg, &mut ready).await?;
        }
        Ok(())
    }

    /// Fetches one segment from where it stands to its end, retrying transient failures.
    async fn fetch_segment(
        &self,
        run: &Run,
        writer: &SegmentWriter,
        idx: usize,
        seg: Segment,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), End> {
        let mut next = seg.start + seg.done;
        let mut retry = RetryState::new(self.cfg.retry.clone(), next);
        while next < seg.end {
            let step = match self.request_range(run, next, seg.end).await {
                Ok(resp) => {
                    if let Err(e) = run.reserve().await {
                        return Err(End::Failed(io_words("cannot reserve space for the download", &e)));
                    }
                    if let Some(first) = ready.take() {
                        let _ = first.send(());
                    }
                    self.stream_segment(run, writer, idx, resp, &mut next, seg.end, &mut retry).await
                }
                Err(step) => Err(step),
            };
            let again = match step {
                Ok(()) => continue,
                Err(Step::End(end)) => return Err(end),
                Err(Step::Again(again)) => again,
            };
            let Some(delay) = retry.next_delay(again.retry_after, jitter()) else {
                return Err(End::Failed(format!(
                    "{}; gave up after {} tries (the partial download is kept)",
                    again.reason,
                    retry.failures() + 1
                )));
            };
            tracing::info!(id = run.id, segment = idx, reason = %again.reason, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::select! {
                _ = run.stop.cancelled() => return Err(End::Stopped),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        Ok(())
    }

    /// Asks for bytes `from..end` and checks the answer is exactly that part of this file.
    async fn request_range(&self, run: &Run, from: u64, end: u64) -> Result<reqwest::Response, Step> {
        let validator = run.validator.lock().expect("validator lock").clone();
        let mut req = self
            .client
            .get(&run.url)
            .header(header::ACCEPT_ENCODING, "identity")
            .header(header::RANGE, format!("bytes={from}-{}", end - 1));
        if let Some(v) = validator.as_deref() {
            req = req.header(header::IF_RANGE, v);
        }
        let resp = tokio::select! {
            _ = run.stop.cancelled() => return Err(Step::End(End::Stopped)),
            r = tokio::time::timeout(self.cfg.stall_timeout, req.send()) => r,
        };
        let resp = match resp {
            Err(_) => return Err(failed_step(Failure::Stalled, "the download server did not answer in time".into())),
            Ok(Err(e)) => {
                let why = format!("cannot reach the download server ({})", error_chain(&e));
                return Err(failed_step(Failure::Error(&e), why));
            }
            Ok(Ok(r)) => r,
        };
        let one_stream = |why: &str| Err(Step::End(End::OneStream(why.to_string())));
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let range = resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(super::range::parse_content_range);
                let Some(range) = range else {
                    return one_stream("the server's partial answer had no usable Content-Range");
                };
                if range.total.is_some_and(|t| t != run.size) {
                    return one_stream("the server's file has another size");
                }
                if range.start != from {
                    return one_stream("the server answered a range at the wrong place");
                }
                if validator.is_none() {
                    let learnt = validator_of(resp.headers());
                    if learnt.is_some() {
                        *run.validator.lock().expect("validator lock") = learnt.clone();
                        let _ = downloads::set_validator(&self.db, run.id, learnt.as_deref()).await;
                    }
                }
                Ok(resp)
            }
            StatusCode::OK => {
                one_stream("the server sent the whole file instead of a part (no ranges, or the file changed)")
            }
            s => match classify(Failure::Status(s)) {
                Retry::Transient => {
                    Err(again(format!("the download server is busy ({s})"), retry_after(resp.headers())))
                }
                Retry::Fatal => one_stream(&format!("the server answered {s} to a ranged request")),
            },
        }
    }

    /// Streams a 206 body into the segment until it reaches `end`.
    #[allow(clippy::too_many_arguments)]
    async fn stream_segment(
        &self,
        run: &Run,
        writer: &SegmentWriter,
        idx: usize,
        mut resp: reqwest::Response,
        next: &mut u64,
        end: u64,
        retry: &mut RetryState,
    ) -> Result<(), Step> {
        loop {
            let chunk = tokio::select! {
                _ = run.stop.cancelled() => return Err(Step::End(End::Stopped)),
                r = tokio::time::timeout(self.cfg.stall_timeout, resp.chunk()) => r,
            };
            let bytes: Bytes = match chunk {
                Err(_) => {
                    let secs = self.cfg.stall_timeout.as_secs();
                    return Err(failed_step(Failure::Stalled, format!("the download stalled: no data for {secs} s")));
                }
                Ok(Err(e)) => {
                    return Err(failed_step(Failure::Error(&e), format!("the connection broke ({})", error_chain(&e))));
                }
                Ok(Ok(None)) => {
                    let why = format!("the server's answer ended early, at byte {next} of {}", run.size);
                    return Err(failed_step(Failure::EndedEarly, why));
                }
                Ok(Ok(Some(bytes))) => bytes,
            };
            // Never past the segment: those bytes belong to the neighbour's connection.
            let room = (end - *next) as usize;
            let bytes = if bytes.len() > room { bytes.slice(..room) } else { bytes };
            if let Some(pacer) = &self.pacer {
                let wait = pacer.book(bytes.len() as u64, Instant::now());
                if !wait.is_zero() {
                    tokio::select! {
                        _ = run.stop.cancelled() => return Err(Step::End(End::Stopped)),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
            let n = bytes.len() as u64;
            if let Err(e) = writer.push(idx, bytes).await {
                return Err(Step::End(End::Failed(io_words("cannot write the download", &e))));
            }
            *next += n;
            retry.reached(*next);
            if *next == end {
                return Ok(());
            }
        }
    }
}
