//! Slow and idle clients (issue 16, item 1). A flood of half-open connections, some sending
//! half a request head and some announcing a body that never comes, neither locks people out
//! nor takes more connections than the cap; every one is closed after its deadline, and so is a
//! kept-alive connection left idle. Bounded: a few hundred connections, each test under 40 s.

use super::harness::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What flood connection `i` sends: half a request head, or a whole head announcing a body of
/// which only the first byte comes.
fn half_request(i: usize, port: u16) -> String {
    if i.is_multiple_of(2) {
        format!("GET /settings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: {i}\r\n")
    } else {
        format!(
            "POST /api/downloads/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: 1000\r\n\r\n{{"
        )
    }
}

/// `n` connections to the server, each with its half request sent.
async fn open_flood(port: u16, n: usize) -> Vec<TcpStream> {
    let mut flood = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        c.write_all(half_request(i, port).as_bytes()).await.expect("send half a request");
        flood.push(c);
    }
    flood
}

/// Whether the server still holds `c` open without having answered.
fn still_open(c: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(c.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Reads until the server closes `c`; what it sent. Panics if it is still open after `within`.
async fn closed_by_server(mut c: TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    match tokio::time::timeout(within, c.read_to_end(&mut got)).await {
        // A reset is closed too.
        Ok(_) => String::from_utf8_lossy(&got).into_owned(),
        Err(_) => panic!("the server kept a half-open connection for more than {within:?}"),
    }
}

/// The connections on `port` that process `pid` has accepted and holds open (read from /proc:
/// its socket inodes, matched against the kernel's TCP table). Connections still waiting in the
/// kernel's queue are not the process's.
fn held_connections(pid: u32, port: u16) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    let inodes: HashSet<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect();
    // A set, not a count: /proc/net/tcp is read a page at a time while sockets come and go, and
    // a socket can be listed twice when one before it in its hash bucket closes between reads.
    let mut held = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port =
                cols.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 0A is LISTEN: the listening socket itself.
            if local_port == Some(port)
                && cols.get(3) != Some(&"0A")
                && let Some(inode) = cols.get(9).filter(|i| inodes.contains(**i))
            {
                held.insert(inode.to_string());
            }
        }
    }
    held.len()
}

#[tokio::test]
async fn people_get_answers_through_a_flood_of_half_open_connections_and_the_flood_is_closed() {
    let host = model_host().await;
    let timeout = Duration::from_secs(6);
    let s = Server::start_with(&host, &[("LOCALBRAIN_HEADER_TIMEOUT", "6s"), ("LOCALBRAIN_BODY_TIMEOUT", "6s")]).await;
    let admin = s.admin().await;
    let flood = open_flood(s.port, 400).await;

    // A page load and the card's polls are answered while the whole flood is still open.
    let page = s
        .http
        .get(format!("{}/settings", s.base))
        .header(reqwest::header::COOKIE, &admin.cookie)
        .send()
        .await
        .expect("GET /settings during the flood");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Local AI brain"));
    for _ in 0..10 {
        s.ok(&admin, "downloads/list", json!({})).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = flood.iter().filter(|c| still_open(c)).count();
    assert_eq!(open, 400, "people were answered while all 400 half-open connections were held");

    // Then the server closes every one: half heads without a word, stalled bodies with a 408.
    let mut stalled_bodies = 0;
    for (i, c) in flood.into_iter().enumerate() {
        let said = closed_by_server(c, timeout + Duration::from_secs(20)).await;
        if !i.is_multiple_of(2) {
            assert!(said.starts_with("HTTP/1.1 408"), "a stalled body gets 408, got {said:?}");
            assert!(said.contains("did not arrive within 6 s"), "{said}");
            stalled_bodies += 1;
        }
    }
    assert_eq!(stalled_bodies, 200);

    // A kept-alive connection that goes quiet after its answer is closed after the same time.
    let mut idle = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let request = format!("POST /api/logout HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n", s.port);
    idle.write_all(request.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let said = closed_by_server(idle, timeout + Duration::from_secs(20)).await;
    assert!(said.starts_with("HTTP/1.1 401"), "{said}");
    assert!(
        sent.elapsed() >= timeout - Duration::from_secs(1),
        "kept alive until the idle deadline, not closed at once"
    );
    assert!(!s.log_text().contains("Too many open files"));
}

#[tokio::test]
async fn the_connection_cap_holds_and_people_queued_behind_a_flood_get_their_answer() {
    let host = model_host().await;
    let s = Server::start_with(
        &host,
        &[("LOCALBRAIN_MAX_CONNECTIONS", "32"), ("LOCALBRAIN_HEADER_TIMEOUT", "1s"), ("LOCALBRAIN_BODY_TIMEOUT", "1s")],
    )
    .await;
    let admin = s.admin().await;
    let flood = open_flood(s.port, 200).await;

    // Queued behind 200 slow connections, 32 served at a time, a second each.
    let poll = {
        // A client of its own: a pooled connection from before the flood would skip the queue.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let url = format!("{}/api/downloads/list", s.base);
        let cookie = admin.cookie.clone();
        tokio::spawn(async move {
            http.post(url)
                .header(reqwest::header::COOKIE, cookie)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body("{}")
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while !poll.is_finished() {
        most = most.max(held_connections(s.pid(), s.port));
        assert!(Instant::now() < deadline, "the queued poll got no answer within 40 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(poll.await.unwrap().expect("the queued poll is answered"), 200);
    assert!(most > 0, "the flood was seen being served");
    assert!(most <= 32, "the server held {most} connections at once; the cap is 32");
    for c in flood {
        closed_by_server(c, Duration::from_secs(30)).await;
    }
    assert!(!s.log_text().contains("Too many open files"));
}
