//! Where a download's bytes go: a writer thread that writes the partial file and a hasher
//! thread that hashes the same bytes, while the network task keeps receiving. Each chunk is
//! handed to both threads (a reference-counted buffer, so not copied), each through a bounded
//! channel: memory stays flat (at most `QUEUE` chunks in flight) whatever
//! the file size, and writing, hashing and receiving run on three cores' worth of threads
//! instead of one after the other.

use super::files;
use super::writer::WriterThread;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use tokio::sync::{mpsc, oneshot};

/// Chunks queued for each thread. hyper hands over chunks of up to ~400 KB, so this bounds the
/// bytes in flight to a few MB whatever the file size.
const QUEUE: usize = 16;

enum WriteCmd {
    Data(Bytes),
    /// Writes out the buffer; answers once the bytes are in the file.
    Flush(oneshot::Sender<io::Result<()>>),
    /// Empties the file: the server is sending a whole new body.
    Restart(oneshot::Sender<io::Result<()>>),
    /// Flushes and fsyncs.
    Finish(oneshot::Sender<io::Result<()>>),
}

enum HashCmd {
    Data(Bytes),
    Restart,
    /// The SHA-256 of everything so far, as hex.
    Digest(oneshot::Sender<String>),
}

/// The partial file behind its writer and hasher threads. `offset` counts bytes handed over
/// (written or queued); `flush` waits until they are all in the file.
pub struct Sink {
    writer: WriterThread<WriteCmd>,
    hash_tx: mpsc::Sender<HashCmd>,
    pub offset: u64,
}

impl Sink {
    /// Starts the threads on an open, locked partial holding `offset` bytes already hashed into
    /// `hasher`; the file position must be at `offset`.
    pub fn start(file: File, hasher: Sha256, offset: u64) -> io::Result<Sink> {
        let (hash_tx, hash_rx) = mpsc::channel(QUEUE);
        files::spawn_low_priority("localbrain-hasher", move || hash_thread(hasher, hash_rx))?;
        let writer = WriterThread::spawn("localbrain-writer", QUEUE, move |rx| write(file, rx))?;
        Ok(Sink { writer, hash_tx, offset })
    }

    /// Hands bytes to both threads; waits only when a queue is full (back-pressure).
    pub async fn push(&mut self, bytes: Bytes) -> io::Result<()> {
        let n = bytes.len() as u64;
        self.hash_tx.send(HashCmd::Data(bytes.clone())).await.map_err(|_| hasher_gone())?;
        self.writer.send(WriteCmd::Data(bytes)).await?;
        self.offset += n;
        Ok(())
    }

    /// Everything pushed so far is in the file (not necessarily on the platter).
    pub async fn flush(&self) -> io::Result<()> {
        self.writer.ask(WriteCmd::Flush).await?
    }

    /// Drops everything: the file is emptied and the hash starts over.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.writer.ask(WriteCmd::Restart).await??;
        self.hash_tx.send(HashCmd::Restart).await.map_err(|_| hasher_gone())?;
        self.offset = 0;
        Ok(())
    }

    /// The hash of the bytes so far.
    pub async fn digest(&self) -> io::Result<String> {
        let (reply, answer) = oneshot::channel();
        self.hash_tx.send(HashCmd::Digest(reply)).await.map_err(|_| hasher_gone())?;
        answer.await.map_err(|_| hasher_gone())
    }

    /// Flushes and fsyncs the file, stops both threads, and returns the final hash.
    pub async fn finish(self) -> io::Result<String> {
        let synced = self.writer.ask(WriteCmd::Finish).await;
        let digest = self.digest().await;
        self.close().await;
        synced??;
        digest
    }

    /// Writes out what is queued and ends the threads: the download is pausing or giving up.
    pub async fn stop(self) -> io::Result<()> {
        let flushed = self.flush().await;
        self.close().await;
        flushed
    }

    /// Ends the threads and waits for the writer (see [`WriterThread::close`]).
    async fn close(self) {
        let Sink { writer, hash_tx, .. } = self;
        drop(hash_tx);
        writer.close(None).await;
    }
}

fn hasher_gone() -> io::Error {
    io::Error::other("the hasher stopped")
}

/// The writer thread's body: ends at the first error, which the next send reports.
fn write(file: File, mut rx: mpsc::Receiver<WriteCmd>) -> io::Result<()> {
    let mut out = Out::new(file);
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            WriteCmd::Data(bytes) => out.write(&bytes)?,
            // Chunks go straight to the file (no buffer of our own), so a flush has nothing to do:
            // the answer only says every chunk queued before it is written.
            WriteCmd::Flush(reply) => {
                let _ = reply.send(Ok(()));
            }
            WriteCmd::Restart(reply) => {
                let r = out.restart();
                let failed = r.as_ref().err().map(clone_err);
                let _ = reply.send(r);
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            WriteCmd::Finish(reply) => {
                let _ = reply.send(out.file.sync_all());
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The partial and how far its writeback has been started.
struct Out {
    file: File,
    pos: u64,
    writeback_from: u64,
}

impl Out {
    fn new(mut file: File) -> Out {
        let pos = file.stream_position().unwrap_or(0);
        Out { file, pos, writeback_from: pos }
    }

    /// hyper's chunks are large enough (up to ~400 KB) that a buffer of our own would only add
    /// a copy of every byte.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        if self.pos - self.writeback_from >= files::WRITEBACK_EVERY {
            files::start_writeback(&self.file, self.writeback_from, self.pos - self.writeback_from);
            self.writeback_from = self.pos;
        }
        Ok(())
    }

    fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.pos = 0;
        self.writeback_from = 0;
        Ok(())
    }
}

fn hash_thread(mut hasher: Sha256, mut rx: mpsc::Receiver<HashCmd>) {
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            HashCmd::Data(bytes) => hasher.update(&bytes),
            HashCmd::Restart => hasher = Sha256::new(),
            HashCmd::Digest(reply) => {
                let _ = reply.send(files::hex(&hasher.clone().finalize()));
            }
        }
    }
}

fn clone_err(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
