//! The accept loop, in place of `axum::serve`, for what it cannot be told (issue 16, item 1):
//! - at most `max_connections` connections at once, well under the open-file limit: beyond
//!   that, new ones wait in the kernel's queue instead of failing every `accept` with "Too many
//!   open files" and locking everyone out;
//! - a deadline for each request head. hyper starts that clock whenever a connection waits for
//!   a request, so it also ends a kept-alive connection that sits idle, and a client that sends
//!   half a request head. (The body has its own deadline, in `web::limit_body`.)
//! - a deadline for each write of an answer (`write_deadline`): a client that stops reading is
//!   dropped like one that left, instead of holding its slot (and a `/v1` stream its brain slot).
//!
//! Each request carries the client's address (`ConnectInfo`), which the login limit counts by.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

use crate::write_deadline::WriteDeadline;

/// How the server treats connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time for a whole request head, and the longest a connection may wait idle between requests.
    pub header_timeout: Duration,
    /// The longest a write of an answer may wait for the client to read.
    pub write_timeout: Duration,
}

/// How long open connections get to finish once shutdown begins (a reply being written, a
/// download poll); then they are closed.
const DRAIN: Duration = Duration::from_secs(5);

/// The most connections the open-file limit leaves room for: half of it, so the database,
/// model files, downloads and logs keep the other half.
pub fn connection_ceiling() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok && limit.rlim_cur != libc::RLIM_INFINITY { (limit.rlim_cur / 2).max(16) as usize } else { 4096 }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open connections finish
/// for up to [`DRAIN`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first, then the accept: a full server leaves new connections queued.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of files or memory for a moment: wait instead of spinning on the error.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(client));
            // A Router is always ready, so `call` needs no `poll_ready` first.
            router.clone().call(req.map(Body::new))
        });
        let stream = WriteDeadline::new(stream, limits.write_timeout);
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let ended = {
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    ended = connection.as_mut() => ended,
                    () = stopping(stop) => {
                        // Finish the request in flight, take no more.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                }
                // The connection, and its socket, are dropped here: before its slot is given
                // back, so the cap counts open sockets, not tasks.
            };
            if let Err(e) = ended {
                tracing::debug!(client = %client, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("connections still open {} s after shutdown began; closing them", DRAIN.as_secs());
    }
    Ok(())
}

/// Resolves once shutdown has begun.
async fn stopping(mut stop: watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held across the connection's await.
    let _ = stop.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

    /// Set when the answer's body is dropped: what a reply (a `/v1` stream) sees when its client leaves.
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    async fn get_hello(addr: std::net::SocketAddr) -> String {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_while_others_are_served() {
        let body_dropped = Arc::new(AtomicBool::new(false));
        let flag = body_dropped.clone();
        let router = Router::new().route("/hello", get(|| async { "hello" })).route(
            "/endless",
            get(move || {
                let guard = Dropped(flag.clone());
                let chunks = futures::stream::repeat_with(move || {
                    let _held = &guard;
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 64 * 1024]))
                });
                async move { Body::from_stream(chunks) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_connections: 2,
            header_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(1),
        };
        let server = tokio::spawn(serve(listener, router, limits, std::future::pending()));

        // A small receive window, a request for an endless answer, and then not one read.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stalled = socket.connect(addr).await.unwrap();
        stalled.write_all(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();

        // The other slot keeps serving while that one stalls.
        for _ in 0..3 {
            assert!(get_hello(addr).await.ends_with("hello"));
        }
        tokio::time::timeout(Duration::from_secs(15), async {
            while !body_dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the answer to a client that reads nothing was still being written 15 s on");

        // Its slot is free: with one idle connection holding the other slot, a new client is
        // still served (it would wait in the kernel's queue if the stalled one held on).
        let _idle = TcpStream::connect(addr).await.unwrap();
        let served = tokio::time::timeout(Duration::from_secs(5), get_hello(addr)).await;
        assert!(served.expect("no slot came free after the stalled client was dropped").ends_with("hello"));
        drop(stalled);
        server.abort();
    }
}
