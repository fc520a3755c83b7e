//! The segmented transfer: the file's segments (see `segments`) fetched over several ranged
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
//! wrong place, another size, a refusal) hands the download back to the single stream, which
//! starts over, tries mirrors and words any failure. A failure of the host itself that waiting
//! would not cure (a bad certificate) ends the run at once, keeping every segment.

use super::blocking::blocking;
use super::error::TransferError;
use super::files;
use super::http::{Failed, content_range, validator_of};
use super::job::{Job, Outcome};
use super::retry::RetryState;
use super::segment_sink::{Progress, SegmentSink, SegmentWriter};
use super::segments::{self, Segment};
use crate::status::DownloadStatus::{Downloading, Paused};
use crate::store::downloads;
use reqwest::StatusCode;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
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

/// How one connection, and with it the run, stopped early.
enum End {
    Stopped,
    /// The server cannot serve ranges of exactly this file: start over in one stream.
    OneStream(&'static str),
    Failed(TransferError),
}

impl From<Failed> for End {
    fn from(f: Failed) -> End {
        match f {
            Failed::Stopped => End::Stopped,
            Failed::Fatal(error) | Failed::Again { error, .. } => End::Failed(error),
        }
    }
}

/// What every connection of one run shares.
pub(super) struct Segmented {
    job: Arc<Job>,
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

impl Segmented {
    /// The segments to fetch (see [`segments::to_fetch`]); `None` for one stream.
    pub(super) fn plan(job: &Job) -> Option<Vec<Segment>> {
        let on_disk = files::len_or_zero(&job.partial);
        let (connections, rule) = (job.cfg.connections, job.cfg.segment_rule);
        segments::to_fetch(job.segments.as_deref(), on_disk, job.model.size_bytes, connections, rule)
    }

    /// Runs the transfer to its end: the SHA-256 of the whole file, how it ended, or `None` when
    /// it handed over to one stream after emptying the partial and the row's segments.
    pub(super) async fn run(job: &Arc<Job>, plan: Vec<Segment>) -> Result<String, Option<Outcome>> {
        let fresh = segments::done_bytes(&plan) == 0;
        if fresh {
            // The row describes the file before the file grows: recovery then never takes a
            // preallocated partial's length for progress.
            let text = segments::encode(&plan);
            match downloads::set_segments(&job.db, job.id, job.base, Some(&text), &[Downloading]).await {
                Ok(true) => {}
                Ok(false) => return Err(Some(Outcome::Stopped)),
                Err(e) => return Err(Some(Outcome::kept(TransferError::Record(e)))),
            }
            // A fresh plan asks without If-Range: whatever validator the row has is from an older try.
            *job.validator.lock().expect("validator lock") = None;
        }
        let p = job.partial.clone();
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
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(Some(Outcome::Busy)),
            Err(e) => return Err(Some(Outcome::file("cannot prepare the partial file")(e))),
        };
        job.slot.record(job.base + segments::done_bytes(&plan));
        match Segmented::fetch(job, file, &plan).await {
            Ok(digest) => Ok(digest),
            Err(End::Stopped) => Err(Some(Outcome::Stopped)),
            Err(End::Failed(error)) => Err(Some(Outcome::kept(error))),
            Err(End::OneStream(why)) => {
                tracing::info!(id = job.id, reason = why, "continuing in one stream from the start");
                match Segmented::reset_to_one_stream(job).await {
                    Ok(()) => Err(None),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(Some(Outcome::Busy)),
                    Err(e) => Err(Some(Outcome::file("cannot reset the partial file")(e))),
                }
            }
        }
    }

    /// Empties the partial and drops the row's segments: the next bytes come in one stream.
    pub(super) async fn reset_to_one_stream(job: &Job) -> io::Result<()> {
        let p = job.partial.clone();
        blocking(move || {
            let file = files::open_partial(&p)?;
            files::try_lock(&file)?;
            file.set_len(0)
        })
        .await?;
        downloads::set_segments(&job.db, job.id, job.base, None, &[Downloading]).await.map_err(io::Error::other)?;
        Ok(())
    }

    /// Downloads the unfinished `plan` segments into `file` (locked; its space is reserved by
    /// the first connection whose answer shows the right file).
    async fn fetch(job: &Arc<Job>, file: File, plan: &[Segment]) -> Result<String, End> {
        let cannot_start = |e| End::Failed(TransferError::file("cannot start writing the download")(e));
        let progress = Arc::new(Progress::new(plan));
        let partial = file.try_clone().map_err(cannot_start)?;
        let sink = SegmentSink::start(file, progress.clone(), job.model.size_bytes).map_err(cannot_start)?;
        let queue: VecDeque<usize> =
            plan.iter().enumerate().filter(|(_, s)| !s.is_complete()).map(|(i, _)| i).collect();
        let connections = job.cfg.connections.max(1).min(queue.len());
        let run = Arc::new(Segmented {
            job: job.clone(),
            queue: Mutex::new(queue),
            progress: progress.clone(),
            stop: job.cancel.child_token(),
            partial,
            reserved: tokio::sync::OnceCell::new(),
        });
        let mut set = JoinSet::new();
        let (ready_tx, mut ready_rx) = oneshot::channel();
        if connections > 0 {
            set.spawn(run.clone().connection(sink.writer(), Some(ready_tx)));
        }
        let mut waiting_for_first = connections > 1;
        // Set once the first connection answers: when, and the bytes then. The others open at
        // once without a speed rule, else once a probe shows one stream is not fast enough.
        let mut probe: Option<(Instant, u64)> = None;
        let probe_timer = tokio::time::sleep(PROBE);
        tokio::pin!(probe_timer);
        let mut opened = 1;
        let mut end: Option<End> = None;
        let mut tick = tokio::time::interval(job.cfg.progress_interval.min(Duration::from_millis(250)));
        loop {
            tokio::select! {
                first = &mut ready_rx, if waiting_for_first => {
                    waiting_for_first = false;
                    if first.is_ok() {
                        if job.cfg.fast_stream_bps.is_none() {
                            opened = run.open_more(&mut set, &sink, opened, connections);
                        } else {
                            probe = Some((Instant::now(), progress.done_bytes()));
                            probe_timer.as_mut().reset(tokio::time::Instant::now() + PROBE);
                        }
                    }
                }
                joined = set.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    // The first connection to give up decides; the others stop.
                    Some(Ok(Err(e))) => {
                        end.get_or_insert(e);
                        run.stop.cancel();
                    }
                    Some(Err(e)) => {
                        end.get_or_insert(End::Failed(TransferError::Crashed(format!("a connection failed: {e}"))));
                        run.stop.cancel();
                    }
                },
                _ = tick.tick() => {
                    // The row is the only record of what a preallocated partial holds, so it is
                    // written on every tick: a kill -9 loses at most a quarter second of bytes.
                    run.persist().await;
                }
                _ = &mut probe_timer, if probe.is_some() && opened < connections => {
                    let (since, at) = probe.expect("probing");
                    let done = progress.done_bytes();
                    let rate = (done - at) as f64 / since.elapsed().as_secs_f64();
                    let fast = job.cfg.fast_stream_bps.expect("a probe runs only under a speed rule");
                    if rate < fast as f64 {
                        tracing::info!(id = job.id, rate_mbps = rate / 1e6, "one stream is slow; opening more connections");
                        opened = run.open_more(&mut set, &sink, opened, connections);
                    } else {
                        probe = Some((Instant::now(), done));
                        probe_timer.as_mut().reset(tokio::time::Instant::now() + PROBE);
                    }
                }
            }
        }
        let result = match end {
            None => sink.finish().await.map_err(|e| End::Failed(TransferError::file("cannot save the file")(e))),
            Some(end) => {
                // A write error here was already reported by the connection that met it.
                let _ = sink.stop().await;
                Err(end)
            }
        };
        // Every byte written is now counted: the row gets the final per-segment progress.
        run.persist().await;
        result
    }

    /// Opens connections up to `connections`; returns how many are open.
    fn open_more(
        self: &Arc<Self>,
        set: &mut JoinSet<Result<(), End>>,
        sink: &SegmentSink,
        opened: usize,
        connections: usize,
    ) -> usize {
        for _ in opened..connections {
            set.spawn(self.clone().connection(sink.writer(), None));
        }
        connections.max(opened)
    }

    /// The segments to the row, the bytes to the live numbers.
    async fn persist(&self) {
        let snapshot = self.progress.snapshot();
        let (text, bytes) = (segments::encode(&snapshot), self.job.base + segments::done_bytes(&snapshot));
        let job = &self.job;
        if let Err(e) = downloads::set_segments(&job.db, job.id, bytes, Some(&text), &[Downloading, Paused]).await {
            tracing::error!(id = job.id, error = %e, "cannot record segment progress");
        }
        job.slot.record(bytes);
    }

    fn next_segment(&self) -> Option<(usize, Segment)> {
        let idx = self.queue.lock().expect("queue lock").pop_front()?;
        Some((idx, self.progress.snapshot()[idx]))
    }

    /// Gives the partial its full length with the blocks reserved (see `files::preallocate`),
    /// once per run, before the first byte is written: every connection asks, the first does it.
    async fn reserve(&self) -> io::Result<()> {
        self.reserved
            .get_or_try_init(|| async {
                let (file, size) = (self.partial.try_clone()?, self.job.model.size_bytes);
                blocking(move || if file.metadata()?.len() == size { Ok(()) } else { files::preallocate(&file, size) })
                    .await
            })
            .await
            .map(|_| ())
    }

    /// One connection: takes segments in file order until none is left.
    async fn connection(
        self: Arc<Self>,
        writer: SegmentWriter,
        mut ready: Option<oneshot::Sender<()>>,
    ) -> Result<(), End> {
        while let Some((idx, seg)) = self.next_segment() {
            self.fetch_segment(&writer, idx, seg, &mut ready).await?;
        }
        Ok(())
    }

    /// Fetches one segment from where it stands to its end, retrying what is worth it.
    async fn fetch_segment(
        &self,
        writer: &SegmentWriter,
        idx: usize,
        seg: Segment,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), End> {
        let job = &self.job;
        let mut next = seg.start + seg.done;
        let mut retry = RetryState::new(job.cfg.retry.clone(), next);
        while next < seg.end {
            let (error, retry_after) = match self.fetch_range(writer, idx, &mut next, seg.end, &mut retry, ready).await
            {
                Ok(()) => continue,
                Err(Failed::Again { error, retry_after }) => (error, retry_after),
                Err(other) => return Err(self.ended(other)),
            };
            job.back_off(&mut retry, error, retry_after, &self.stop, Some(idx)).await.map_err(End::from)?;
        }
        Ok(())
    }

    /// A connection's end: a host that waiting would not cure ends the run, with every segment
    /// kept; anything the server says about this file hands it back to the single stream.
    fn ended(&self, failed: Failed) -> End {
        match failed {
            Failed::Fatal(TransferError::Restart(why)) => End::OneStream(why),
            Failed::Fatal(TransferError::Refused { .. }) => End::OneStream("the server refused a ranged request"),
            other => End::from(other),
        }
    }

    /// Asks for bytes `*next..end`, checks the answer is exactly that part of this file, and
    /// streams it into the segment.
    async fn fetch_range(
        &self,
        writer: &SegmentWriter,
        idx: usize,
        next: &mut u64,
        end: u64,
        retry: &mut RetryState,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), Failed> {
        let job = &self.job;
        let had_validator = job.validator().is_some();
        let url = job.model.urls().next().unwrap_or_default();
        let mut resp = job.get(url, *next, Some(end), &self.stop).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let why = match content_range(resp.headers()) {
                    None => Some("the server's partial answer had no usable Content-Range"),
                    Some(r) if r.total.is_some_and(|t| t != job.model.size_bytes) => {
                        Some("the server's file has another size")
                    }
                    Some(r) if r.start != *next => Some("the server answered a range at the wrong place"),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    return Err(one_stream(why));
                }
                if !had_validator {
                    let learnt = validator_of(resp.headers());
                    if learnt.is_some() {
                        job.set_validator(learnt).await;
                    }
                }
            }
            StatusCode::OK => {
                return Err(one_stream(
                    "the server sent the whole file instead of a part (no ranges, or the file changed)",
                ));
            }
            _ => return Err(Job::refused(url, &resp)),
        }
        self.reserve().await.map_err(Failed::file("cannot reserve space for the download"))?;
        if let Some(first) = ready.take() {
            let _ = first.send(());
        }
        while let Some(bytes) = job.chunk(&mut resp, *next, end, &self.stop).await? {
            // Never past the segment: those bytes belong to the neighbour's connection.
            let room = (end - *next) as usize;
            let bytes = if bytes.len() > room { bytes.slice(..room) } else { bytes };
            job.pace(bytes.len() as u64, &self.stop).await?;
            let n = bytes.len() as u64;
            writer.push(idx, bytes).await.map_err(Failed::file("cannot write the download"))?;
            *next += n;
            retry.reached(*next);
            if *next == end {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// An answer that shows the server cannot serve ranges of exactly this file.
fn one_stream(why: &'static str) -> Failed {
    Failed::Fatal(TransferError::Restart(why))
}
