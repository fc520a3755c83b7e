//! The figures of issue 17 for BENCHMARKS.md, `make bench-instances` (ignored in `make test`):
//! ten rounds each of (1) a Pause sent to instance B until the transfer that instance A runs
//! stops (the model host's last byte), and (2) kill -9 of the instance running a download until
//! bytes flow again from another. Medians and ranges are printed; the database is whatever
//! DATABASE_URL names (the make target runs both).

use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const ROUNDS: usize = 10;

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let backend =
        if std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) { "PostgreSQL" } else { "SQLite" };
    eprintln!(
        "BENCH {name} on {backend}: median {:.0} ms, min {:.0} ms, max {:.0} ms over {} rounds",
        (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0,
        ms[0],
        ms[ms.len() - 1],
        ms.len()
    );
}

/// Waits until the host has sent nothing for `quiet`; when its last byte went out.
async fn last_byte(host: &Fixture, quiet: Duration) -> Instant {
    let (mut seen, mut at) = (host.bytes_sent(), Instant::now());
    while at.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = host.bytes_sent();
        if now != seen {
            (seen, at) = (now, Instant::now());
        }
    }
    at
}

#[tokio::test]
#[ignore = "a benchmark: make bench-instances"]
async fn bench_pause_from_another_instance_and_takeover_after_kill() {
    let host = model_host().await;
    host.set(|m| {
        m.chunk = 4 * 1024;
        m.chunk_delay = Duration::from_millis(5);
    });
    let b = Server::start(&host).await;
    let admin = b.admin().await;

    let mut pause_ms = Vec::new();
    let a = b.another().await;
    for _ in 0..ROUNDS {
        let id = id_of(&a.start_dl(&admin, ALPHA).await);
        a.wait_dl(&admin, id, "flowing", WAIT, |r| r["speed_bps"].as_u64().unwrap_or(0) > 0).await;
        let asked = Instant::now();
        b.ok(&admin, "downloads/pause", json!({ "id": id })).await;
        pause_ms.push(last_byte(&host, Duration::from_millis(1500)).await.duration_since(asked).as_secs_f64() * 1000.0);
        b.ok(&admin, "downloads/cancel", json!({ "id": id })).await;
    }
    drop(a);
    summary("pause on B until A's transfer stops", pause_ms);

    let mut takeover_ms = Vec::new();
    for _ in 0..ROUNDS {
        let a = b.another().await;
        let id = id_of(&a.start_dl(&admin, ALPHA).await);
        a.wait_dl(&admin, id, "flowing", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 200_000).await;
        let requests = host.requests(ALPHA_PATH).len();
        a.kill9();
        let killed = Instant::now();
        let flowing = wait_for("bytes from the new runner", WAIT, || async {
            host.requests(ALPHA_PATH).get(requests).filter(|r| r.sent > 0).map(|_| killed.elapsed())
        })
        .await;
        takeover_ms.push(flowing.as_secs_f64() * 1000.0);
        b.ok(&admin, "downloads/cancel", json!({ "id": id })).await;
    }
    summary("kill -9 of the runner until bytes flow from another instance", takeover_ms);
}
