//! Where a parallel download's bytes go. Every connection hands its chunks to one writer thread
//! (a bounded queue, so memory stays flat whatever the file size) that writes them at their
//! place in the preallocated partial. A hasher thread follows the contiguous completed prefix:
//! as soon as the bytes after what it has hashed are in the file, it reads them back while they
//! are still in the page cache and hashes them, so hashing overlaps the download and no second
//! pass over the file is needed at the end.

use super::files::{self, READ_CHUNK};
use super::segments::Segment;
use super::writer::{Feed, WriterThread};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Chunks queued for the writer, shared by every connection. hyper hands over chunks of up to
/// ~400 KB, so this bounds the bytes in flight to about 6 MB.
const QUEUE: usize = 16;

/// The segments and how many bytes of each are in the file. Only the writer advances `done`,
/// and only after the bytes are written, so `done` never claims what a kill -9 would lose.
pub struct Progress {
    bounds: Vec<(u64, u64)>,
    done: Vec<AtomicU64>,
}

impl Progress {
    pub fn new(segments: &[Segment]) -> Progress {
        Progress {
            bounds: segments.iter().map(|s| (s.start, s.end)).collect(),
            done: segments.iter().map(|s| AtomicU64::new(s.done)).collect(),
        }
    }

    /// The segments as they stand.
    pub fn snapshot(&self) -> Vec<Segment> {
        self.bounds
            .iter()
            .zip(&self.done)
            .map(|(&(start, end), d)| Segment { start, end, done: d.load(Ordering::Acquire) })
            .collect()
    }

    /// Bytes in the file over all segments.
    pub fn done_bytes(&self) -> u64 {
        self.done.iter().map(|d| d.load(Ordering::Acquire)).sum()
    }

    /// The end of the longest run of file bytes from 0 that are all written.
    fn prefix_end(&self) -> u64 {
        for (&(start, end), d) in self.bounds.iter().zip(&self.done) {
            let done = d.load(Ordering::Acquire);
            if start + done < end {
                return start + done;
            }
        }
        self.bounds.last().map_or(0, |b| b.1)
    }
}

enum Cmd {
    Data {
        segment: usize,
        bytes: Bytes,
    },
    /// Answers once every chunk queued before it is in the file.
    Barrier(oneshot::Sender<()>),
    /// Ends the writer thread, closing its handle of the file.
    Close,
}

/// The partial file behind its writer and hasher threads.
pub struct SegmentSink {
    writer: WriterThread<Cmd>,
    stop_hashing: Arc<AtomicBool>,
    hasher: JoinHandle<io::Result<Option<String>>>,
}

/// A connection's handle for queueing its segment's bytes.
#[derive(Clone)]
pub struct SegmentWriter(Feed<Cmd>);

impl SegmentWriter {
    /// Queues bytes that continue `segment`; waits only when the queue is full (back-pressure).
    pub async fn push(&self, segment: usize, bytes: Bytes) -> io::Result<()> {
        self.0.send(Cmd::Data { segment, bytes }).await
    }
}

impl SegmentSink {
    /// Starts the threads on an open, locked partial that holds the bytes `progress` says it does;
    /// its `size` bytes are reserved by the caller before the first byte is queued. The hasher
    /// starts from byte 0: after a restart it re-reads the finished prefix once, as a
    /// single-stream resume does.
    pub fn start(file: File, progress: Arc<Progress>, size: u64) -> io::Result<SegmentSink> {
        let reader = file.try_clone()?;
        let stop_hashing = Arc::new(AtomicBool::new(false));
        let (p, stop) = (progress.clone(), stop_hashing.clone());
        let hasher =
            files::spawn_low_priority("localbrain-hasher", move || hash_prefix_as_it_grows(reader, &p, size, &stop))?;
        let (wake, stop) = (hasher.thread().clone(), stop_hashing.clone());
        let writer = WriterThread::spawn("localbrain-writer", QUEUE, move |rx| {
            let written = write_segments(file, &progress, rx, &wake);
            // No more bytes will come (the download ended, or its task was dropped): the
            // hasher must not wait for them, nor keep the file and its lock open.
            stop.store(true, Ordering::Release);
            wake.unpark();
            written
        });
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                stop_hashing.store(true, Ordering::Release);
                hasher.thread().unpark();
                return Err(e);
            }
        };
        Ok(SegmentSink { writer, stop_hashing, hasher })
    }

    pub fn writer(&self) -> SegmentWriter {
        SegmentWriter(self.writer.feed())
    }

    /// Waits until everything queued so far is in the file, so `progress` covers it.
    pub async fn settle(&self) -> io::Result<()> {
        self.writer.ask(Cmd::Barrier).await
    }

    /// Writes out the queue and waits for the hasher to reach the end: the SHA-256 of the file.
    pub async fn finish(self) -> io::Result<String> {
        if let Err(e) = self.settle().await {
            let _ = self.stop().await;
            return Err(e);
        }
        let hasher = self.hasher;
        let digest = tokio::task::spawn_blocking(move || hasher.join())
            .await
            .map_err(io::Error::other)?
            .map_err(|_| io::Error::other("the hasher thread panicked"));
        self.writer.close(Some(Cmd::Close)).await;
        digest??.ok_or_else(|| io::Error::other("hashing stopped before the end of the file"))
    }

    /// Writes out the queue and stops the hasher: the download is pausing or giving up.
    pub async fn stop(self) -> io::Result<()> {
        let settled = self.settle().await;
        self.stop_hashing.store(true, Ordering::Release);
        self.hasher.thread().unpark();
        let hasher = self.hasher;
        let _ = tokio::task::spawn_blocking(move || hasher.join()).await;
        self.writer.close(Some(Cmd::Close)).await;
        settled
    }
}

/// The writer thread's body: ends at the first error, which the next send reports.
fn write_segments(file: File, progress: &Progress, mut rx: mpsc::Receiver<Cmd>, hasher: &Thread) -> io::Result<()> {
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Cmd::Data { segment, bytes } => {
                let (start, end) = progress.bounds[segment];
                let done = progress.done[segment].load(Ordering::Acquire);
                let at = start + done;
                // Connections clip their bodies to the segment; this guards the neighbour anyway.
                if at + bytes.len() as u64 > end {
                    return Err(io::Error::other(format!("bytes past the end of segment {segment}")));
                }
                file.write_all_at(&bytes, at)?;
                let now_done = done + bytes.len() as u64;
                progress.done[segment].store(now_done, Ordering::Release);
                hasher.unpark();
                // Start writing back every WRITEBACK_EVERY bytes of a segment (see files).
                if now_done / files::WRITEBACK_EVERY > done / files::WRITEBACK_EVERY {
                    let from = start + (done / files::WRITEBACK_EVERY) * files::WRITEBACK_EVERY;
                    files::start_writeback(&file, from, start + now_done - from);
                }
            }
            Cmd::Barrier(reply) => {
                let _ = reply.send(());
            }
            Cmd::Close => return Ok(()),
        }
    }
    Ok(())
}

/// Hashes the file from byte 0 as far as the written prefix reaches, waiting for it to grow.
/// `None` when told to stop first.
fn hash_prefix_as_it_grows(
    file: File,
    progress: &Progress,
    size: u64,
    stop: &AtomicBool,
) -> io::Result<Option<String>> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut hashed = 0u64;
    while hashed < size {
        if stop.load(Ordering::Acquire) {
            return Ok(None);
        }
        let ready = progress.prefix_end() - hashed;
        if ready == 0 {
            // The writer unparks us after every write; the timeout only covers a stop.
            std::thread::park_timeout(Duration::from_millis(50));
            continue;
        }
        let want = ready.min(READ_CHUNK as u64) as usize;
        let n = file.read_at(&mut buf[..want], hashed)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the partial file is shorter than its segments"));
        }
        hasher.update(&buf[..n]);
        hashed += n as u64;
    }
    Ok(Some(super::files::hex(&hasher.finalize())))
}
