//! The one way a sink writes: a low-priority thread fed through a bounded channel of commands
//! (so memory stays flat whatever the file size), whose first error is kept and handed to
//! whoever sends next. Both sinks (`sink` for one stream, `segment_sink` for segments) write
//! through it, and both fail the same way: the thread ends at its first error, every later send
//! returns that error.

use super::files;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// A writer thread and its command channel.
pub(super) struct WriterThread<C> {
    feed: Feed<C>,
    handle: JoinHandle<()>,
}

/// A handle for sending commands to the thread; connections of a segmented download each
/// hold one.
pub(super) struct Feed<C> {
    tx: mpsc::Sender<C>,
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl<C> Clone for Feed<C> {
    fn clone(&self) -> Self {
        Feed { tx: self.tx.clone(), failure: self.failure.clone() }
    }
}

impl<C: Send + 'static> WriterThread<C> {
    /// Starts `body` on a thread of its own, with a queue of `queue` commands. The thread ends
    /// when `body` returns; an error it returns is what later sends report.
    pub fn spawn(
        name: &str,
        queue: usize,
        body: impl FnOnce(mpsc::Receiver<C>) -> io::Result<()> + Send + 'static,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(queue);
        let failure = Arc::new(Mutex::new(None));
        let kept = failure.clone();
        let handle = files::spawn_low_priority(name, move || {
            if let Err(e) = body(rx) {
                *kept.lock().expect("failure lock") = Some(e);
            }
        })?;
        Ok(WriterThread { feed: Feed { tx, failure }, handle })
    }

    pub fn feed(&self) -> Feed<C> {
        self.feed.clone()
    }

    pub async fn send(&self, cmd: C) -> io::Result<()> {
        self.feed.send(cmd).await
    }

    /// Sends a command that answers, and waits for the answer.
    pub async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> C) -> io::Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(cmd(reply)).await?;
        answer.await.map_err(|_| self.feed.stopped())
    }

    /// Sends `last` (if any), closes the channel and waits for the thread to end: whoever opens
    /// the partial next (a resume, the install) must not find it still open and locked.
    pub async fn close(self, last: Option<C>) {
        if let Some(cmd) = last {
            // An error means the thread already ended (a write failed).
            let _ = self.feed.tx.send(cmd).await;
        }
        let WriterThread { feed, handle } = self;
        drop(feed);
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

impl<C> Feed<C> {
    /// Queues a command; waits only when the queue is full (back-pressure).
    pub async fn send(&self, cmd: C) -> io::Result<()> {
        self.tx.send(cmd).await.map_err(|_| self.stopped())
    }

    /// The thread's first error, once it has stopped.
    fn stopped(&self) -> io::Error {
        match self.failure.lock().expect("failure lock").take() {
            Some(e) => e,
            None => io::Error::other("the file writer stopped"),
        }
    }
}
