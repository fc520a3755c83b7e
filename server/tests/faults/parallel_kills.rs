//! kill -9 at random moments of a *parallel* download (four connections, 1 MiB segments).
//!
//! The partial of a parallel download is preallocated to the full size once the first answer
//! shows the right file (empty before that), so its length says nothing; what it holds is told
//! by the row's per-segment progress. After every kill this test reads that progress from the
//! database and checks every byte it claims against the served file, and checks that the next
//! run asks each unfinished segment for exactly the bytes after what was recorded: no recorded
//! byte is ever fetched twice, none is ever wrong.

use super::{Env, MIB, MODEL, Rng, env_u64, mb, runtime};
use localbrain::engine::segments::{self, Segment};
use localbrain::status::DownloadStatus::*;
use localbrain::store::{Db, downloads};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use testkit::{Fixture, test_bytes};

const SIZE: usize = 12 * MIB;
const SEGMENT: usize = MIB;

/// The open download's segments as the database has them, read while no process runs.
fn saved_segments(rt: &tokio::runtime::Runtime, env: &Env) -> Option<Vec<Segment>> {
    if !env.data.join("localbrain.db").exists() {
        return None;
    }
    rt.block_on(async {
        let db = Db::connect(&localbrain::store::default_url(&env.data)).await.unwrap();
        let open = downloads::in_statuses_any_user(&db, &[Pending, Downloading, Paused, Verifying, Installing, Failed])
            .await
            .unwrap();
        db.pool.close().await;
        let row = open.into_iter().find(|r| r.model_id == MODEL)?;
        segments::decode(row.segments.as_deref()?, SIZE as u64)
    })
}

/// Every byte the segments claim is the served file's byte at that place.
fn assert_claimed_bytes_right(env: &Env, segs: &[Segment], data: &[u8], ctx: &str) {
    let partials = env.partials();
    let Some((path, len)) = partials.first() else { return };
    if *len == 0 && segments::done_bytes(segs) == 0 {
        // Killed before the first answer: no space reserved yet, no byte claimed.
        return;
    }
    assert_eq!(*len, SIZE as u64, "{ctx}: a parallel partial is preallocated to the full size");
    let got = std::fs::read(path).unwrap();
    for s in segs {
        let (a, b) = (s.start as usize, (s.start + s.done) as usize);
        if let Some(at) = got[a..b].iter().zip(&data[a..b]).position(|(x, y)| x != y) {
            panic!("{ctx}: segment {}-{} claims {} bytes but byte {} is wrong", s.start, s.end, s.done, a + at);
        }
    }
}

/// `bytes=A-B` -> A.
fn range_start(r: &str) -> u64 {
    r.strip_prefix("bytes=").and_then(|r| r.split_once('-')).and_then(|(a, _)| a.parse().ok()).unwrap()
}

#[test]
fn kill_9_during_parallel_downloads_keeps_every_recorded_byte() {
    let seed = env_u64("LOCALBRAIN_FAULT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let want_kills = env_u64("LOCALBRAIN_FAULT_KILLS").unwrap_or(30) as u32;
    eprintln!("parallel faults: seed {seed} (replay with LOCALBRAIN_FAULT_SEED={seed}), {want_kills} kills");
    let mut rng = Rng(seed);
    let rt = runtime();
    let data = test_bytes(SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    let env = Env::new(&server, SIZE).parallel(4, SEGMENT);

    let (mut kills, mut completions, mut resumed_segments) = (0u32, 0u32, 0u32);
    let mut cycles = 1u64;
    let mut iteration = 0u32;
    loop {
        iteration += 1;
        let finishing = kills >= want_kills;
        let left_alone = finishing || iteration.is_multiple_of(6);
        // A slow line (a whole run takes ~3 s) so most kills land mid-transfer; sometimes a fast
        // one, so they land while hashing the last segments, installing, writing the row.
        let fast = left_alone || rng.below(5) == 0;
        server.set(|m| {
            m.chunk = 64 * 1024;
            m.chunk_delay = if fast { Duration::ZERO } else { Duration::from_millis(60) };
        });
        let ctx = format!("seed {seed}, iteration {iteration}{}", if fast { " (fast server)" } else { "" });
        let saved = saved_segments(&rt, &env).filter(|_| env.partial_len() == SIZE as u64);
        let reqs_before = server.file_requests().len();

        let (mut child, out, err) = env.spawn();
        let killed = if left_alone {
            let run = env.finish(child, out, err, Duration::from_secs(60));
            env.assert_installed(&run, &data, &ctx);
            completions += 1;
            false
        } else {
            let wait = if fast { rng.below(400) } else { rng.below(2000) };
            let until = Instant::now() + Duration::from_millis(wait);
            while Instant::now() < until && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            if status.signal() == Some(9) {
                kills += 1;
                true
            } else {
                let run = super::Run {
                    status,
                    stdout: std::fs::read_to_string(out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&err).unwrap_or_default(),
                };
                env.assert_installed(&run, &data, &ctx);
                completions += 1;
                false
            }
        };
        env.assert_nothing_wrong_in_target(&data, &ctx);
        if let Some(now) = saved_segments(&rt, &env) {
            assert_claimed_bytes_right(&env, &now, &data, &ctx);
        }

        // This run asked every unfinished segment for exactly what was not recorded yet.
        if let Some(saved) = &saved {
            let starts: Vec<u64> = server.file_requests()[reqs_before..]
                .iter()
                .filter_map(|r| r.range.as_deref())
                .map(range_start)
                .collect();
            for s in saved.iter().filter(|s| !s.is_complete()) {
                if let Some(first) = starts.iter().find(|&&a| a >= s.start && a < s.end) {
                    assert_eq!(
                        *first,
                        s.start + s.done,
                        "{ctx}: segment {}-{} resumed at the wrong byte",
                        s.start,
                        s.end
                    );
                    resumed_segments += 1;
                }
                assert!(
                    !starts.iter().any(|&a| a >= s.start && a < s.start + s.done),
                    "{ctx}: a recorded byte of segment {}-{} was asked for again",
                    s.start,
                    s.end
                );
            }
        }
        if !killed {
            if finishing {
                break;
            }
            std::fs::remove_file(env.target()).unwrap();
            cycles += 1;
        }
    }
    let sent = server.bytes_sent();
    let summary = format!(
        "parallel faults: {kills} kills, {completions} completions, {resumed_segments} segments resumed, sent {:.1} MB for {:.1} MB installed",
        mb(sent),
        mb(cycles * SIZE as u64)
    );
    println!("{summary}");
    eprintln!("{summary} (seed {seed})");
    assert!(kills >= want_kills);
    assert!(resumed_segments > 0, "some kills landed mid-segment and were resumed");
}
