//! A short measurement of how fast this machine reads memory: what bounds the speed a model
//! writes at, since every generated token reads (roughly) every weight once.
//!
//! Each of `threads` threads fills its share of a [`BUFFER_BYTES`] buffer (much larger than the
//! caches of a typical CPU, so reads come from RAM), waits for the others, then reads its share
//! over and over until [`WINDOW`] has passed, checking the clock every [`CHUNK_BYTES`]. The
//! figure is the bytes all threads read divided by the time they took. Bounded: the fill stops
//! at [`FILL_LIMIT`] and the reading at [`WINDOW`], so the whole takes at most about 0.35 s
//! (0.23-0.34 s on a 2-core machine). The same
//! threads as generation use, because that is the bandwidth a reply gets.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The buffer all threads read together: 256 MiB.
pub const BUFFER_BYTES: usize = 256 << 20;
/// How long the threads read.
pub const WINDOW: Duration = Duration::from_millis(150);
/// The clock is read after each chunk this size, so a slow machine still stops near [`WINDOW`].
pub const CHUNK_BYTES: usize = 4 << 20;
/// The longest the buffer is filled for. Touching fresh memory can be slow (in a VM the host
/// may back each page on first touch: 0.5 s for 256 MiB was seen here); past this the threads
/// read what they have.
pub const FILL_LIMIT: Duration = Duration::from_millis(200);

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Bytes read per second, in GB/s (10^9).
    pub gbps: f64,
    /// Threads that read.
    pub threads: u32,
    /// The whole measurement, filling the buffer included.
    pub elapsed: Duration,
}

/// Measures with `threads` threads (at least 1). Blocks for about [`WINDOW`] plus the time to
/// fill the buffer; call it from a blocking thread in async code.
pub fn measure(threads: u32) -> Measurement {
    let started = Instant::now();
    let fill_by = started + FILL_LIMIT;
    let threads = threads.clamp(1, 256);
    let share = BUFFER_BYTES / threads as usize;
    let barrier = Barrier::new(threads as usize);
    let results: Vec<(u64, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(|| read_share(share, fill_by, &barrier))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or((0, Duration::ZERO))).collect()
    });
    let bytes: u64 = results.iter().map(|(b, _)| b).sum();
    let secs = results.iter().map(|(_, d)| d.as_secs_f64()).fold(0.0, f64::max);
    let gbps = if secs > 0.0 { bytes as f64 / secs / 1e9 } else { 0.0 };
    Measurement { gbps, threads, elapsed: started.elapsed() }
}

/// One thread's part: fill its own share in [`CHUNK_BYTES`] pieces (written, so its pages are
/// its own and not the shared zero page) until it is whole or `fill_by` has passed, then
/// compare the pieces two by two until the window ends: a comparison of equal bytes reads both
/// sides to the end. Comparing is `memcmp`, which is optimized whatever this crate's build
/// profile (a hand-written loop reads ~20x slower in a debug build). Returns (bytes read, time
/// spent reading).
fn read_share(bytes: usize, fill_by: Instant, barrier: &Barrier) -> (u64, Duration) {
    let wanted = bytes.div_ceil(CHUNK_BYTES).max(2);
    let mut pieces: Vec<Vec<u8>> = Vec::with_capacity(wanted);
    while pieces.len() < wanted && (pieces.len() < 2 || Instant::now() < fill_by) {
        pieces.push(vec![0x5a_u8; CHUNK_BYTES]);
    }
    barrier.wait();
    let start = Instant::now();
    let mut read = 0u64;
    let mut equal = true;
    'reading: loop {
        for pair in pieces.chunks_exact(2) {
            equal &= std::hint::black_box(&pair[0]) == std::hint::black_box(&pair[1]);
            read += 2 * CHUNK_BYTES as u64;
            if start.elapsed() >= WINDOW {
                break 'reading;
            }
        }
    }
    std::hint::black_box(equal);
    (read, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_is_bounded_and_reads_memory() {
        let m = measure(1);
        // Any machine that can run a model reads faster than 0.1 GB/s and slower than 10 TB/s.
        assert!(m.gbps > 0.1 && m.gbps < 10_000.0, "{m:?}");
        assert_eq!(m.threads, 1);
        // The fill and the window are bounded: under half a second, with room for a busy machine
        // to schedule the threads late.
        assert!(m.elapsed < FILL_LIMIT + WINDOW + Duration::from_millis(150), "{m:?}");
    }

    /// `make bench-bandwidth`: the figure and the time it took, with the threads generation
    /// uses and with every core (BENCHMARKS.md).
    #[test]
    #[ignore = "a benchmark: run by make bench-bandwidth"]
    fn bench_bandwidth() {
        let cores = crate::hardware::cpu_cores().unwrap_or(1);
        let generation = crate::brain::default_threads();
        for threads in [generation, cores] {
            for _ in 0..3 {
                let m = measure(threads);
                println!(
                    "bandwidth: {:.1} GB/s with {} thread(s), {} ms in all",
                    m.gbps,
                    m.threads,
                    m.elapsed.as_millis()
                );
            }
        }
    }
}
