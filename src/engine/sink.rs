//! Where a download's bytes go: a writer thread that hashes and writes the partial file while
//! the network task keeps receiving. The two meet through a bounded channel, so memory stays
//! flat (at most `QUEUE` chunks in flight plus one write buffer) whatever the file size, and
//! hashing overlaps the network instead of following it.

use super::files::{self, READ_CHUNK};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Chunks queued for the writer. hyper hands over chunks of up to ~400 KB, so this bounds the
/// bytes in flight to a few MB whatever the file size.
const QUEUE: usize = 16;

enum Cmd {
    Data(Bytes),
    /// Writes out the buffer; answers once the bytes are in the file.
    Flush(oneshot::Sender<io::Result<()>>),
    /// Empties the file and the hash: the server is sending a whole new body.
    Restart(oneshot::Sender<io::Result<()>>),
    /// The SHA-256 of everything so far, as hex.
    Digest(oneshot::Sender<String>),
    /// Flushes, fsyncs and hands back the final hash.
    Finish(oneshot::Sender<io::Result<String>>),
}

/// The partial file behind its writer thread. `offset` counts bytes handed over (written or
/// queued); `flush` makes them durable in the file.
pub struct Sink {
    tx: mpsc::Sender<Cmd>,
    /// The first write error, kept for the caller once the writer has stopped.
    failure: Arc<Mutex<Option<io::Error>>>,
    pub offset: u64,
}

impl Sink {
    /// Starts the writer on an open, locked partial holding `offset` bytes already hashed into
    /// `hasher`; the file position must be at `offset`.
    pub fn start(file: File, hasher: Sha256, offset: u64) -> Sink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failure = Arc::new(Mutex::new(None));
        let f = failure.clone();
        std::thread::Builder::new()
            .name("localbrain-writer".into())
            .spawn(move || writer(file, hasher, rx, f))
            .expect("spawn writer thread");
        Sink { tx, failure, offset }
    }

    fn stopped(&self) -> io::Error {
        match self.failure.lock().expect("failure lock").take() {
            Some(e) => e,
            None => io::Error::other("the file writer stopped"),
        }
    }

    /// Hands bytes to the writer; waits only when the queue is full (back-pressure).
    pub async fn push(&mut self, bytes: Bytes) -> io::Result<()> {
        let n = bytes.len() as u64;
        self.tx.send(Cmd::Data(bytes)).await.map_err(|_| self.stopped())?;
        self.offset += n;
        Ok(())
    }

    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> io::Result<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(cmd(reply)).await.map_err(|_| self.stopped())?;
        answer.await.map_err(|_| self.stopped())
    }

    /// Everything pushed so far is in the file (not necessarily on the platter).
    pub async fn flush(&self) -> io::Result<()> {
        self.ask(Cmd::Flush).await?
    }

    /// Drops everything: the file is emptied and the hash starts over.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.ask(Cmd::Restart).await??;
        self.offset = 0;
        Ok(())
    }

    /// The hash of the bytes so far.
    pub async fn digest(&self) -> io::Result<String> {
        self.ask(Cmd::Digest).await
    }

    /// Flushes and fsyncs the file, stops the writer, and returns the final hash.
    pub async fn finish(self) -> io::Result<String> {
        self.ask(Cmd::Finish).await?
    }
}

fn writer(file: File, mut hasher: Sha256, mut rx: mpsc::Receiver<Cmd>, failure: Arc<Mutex<Option<io::Error>>>) {
    let mut out = io::BufWriter::with_capacity(READ_CHUNK, file);
    while let Some(cmd) = rx.blocking_recv() {
        let result = match cmd {
            Cmd::Data(bytes) => {
                hasher.update(&bytes);
                out.write_all(&bytes)
            }
            Cmd::Flush(reply) => {
                let r = out.flush();
                let failed = r.as_ref().err().map(clone_err);
                let _ = reply.send(r);
                failed.map_or(Ok(()), Err)
            }
            Cmd::Restart(reply) => match restart(out, &mut hasher) {
                Ok(fresh) => {
                    out = fresh;
                    let _ = reply.send(Ok(()));
                    Ok(())
                }
                Err(e) => {
                    let _ = reply.send(Err(clone_err(&e)));
                    *failure.lock().expect("failure lock") = Some(e);
                    return;
                }
            },
            Cmd::Digest(reply) => {
                let _ = reply.send(files::hex(&hasher.clone().finalize()));
                Ok(())
            }
            Cmd::Finish(reply) => {
                let r = out.flush().and_then(|_| out.get_ref().sync_all()).map(|_| files::hex(&hasher.finalize()));
                let _ = reply.send(r);
                return;
            }
        };
        if let Err(e) = result {
            *failure.lock().expect("failure lock") = Some(e);
            return;
        }
    }
    // The download stopped (pause, cancel, error): keep what was received.
    let _ = out.flush();
}

fn restart(out: io::BufWriter<File>, hasher: &mut Sha256) -> io::Result<io::BufWriter<File>> {
    // into_parts hands back the buffer instead of writing it: those bytes belong to the old body.
    let (mut file, _old_body) = out.into_parts();
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    *hasher = Sha256::new();
    Ok(io::BufWriter::with_capacity(READ_CHUNK, file))
}

fn clone_err(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
