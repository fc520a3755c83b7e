//! A short measurement of how fast this machine reads memory: what bounds the speed a model
//! writes at, since every generated token reads (roughly) every weight once.
//!
//! Each of `threads` threads fills its share of a [`BUFFER_BYTES`] buffer (much larger than the
//! caches of a typical CPU, so reads come from RAM), waits for the others, then reads its share
//! over and over until [`WINDOW`] has passed, checking the clock every [`CHUNK_BYTES`]. The
//! figure is the bytes all threads read divided by the time they took. Bounded: the fill plus
//! the window take about 0.3 s on a 2-core machine, whatever the memory's speed. The same
//! threads as generation use, because that is the bandwidth a reply gets.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The buffer all threads read together: 256 MiB.
pub const BUFFER_BYTES: usize = 256 << 20;
/// How long the threads read.
pub const WINDOW: Duration = Duration::from_millis(150);
/// The clock is read after each chunk this size, so a slow machine still stops near [`WINDOW`].
pub const CHUNK_BYTES: usize = 4 << 20;

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
    let threads = threads.clamp(1, 256);
    let share = BUFFER_BYTES / threads as usize;
    let barrier = Barrier::new(threads as usize);
    let results: Vec<(u64, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(|| read_share(share, &barrier))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or((0, Duration::ZERO))).collect()
    });
    let bytes: u64 = results.iter().map(|(b, _)| b).sum();
    let secs = results.iter().map(|(_, d)| d.as_secs_f64()).fold(0.0, f64::max);
    let gbps = if secs > 0.0 { bytes as f64 / secs / 1e9 } else { 0.0 };
    Measurement { gbps, threads, elapsed: started.elapsed() }
}

/// One thread's part: fill its own share (written, so its pages are its own and not the shared
/// zero page), then compare the share's two halves chunk by chunk until the window ends: a
/// comparison of equal bytes reads both sides to the end. Comparing is `memcmp`, which is
/// optimized whatever this crate's build profile (a hand-written loop reads ~20x slower in a
/// debug build). Returns (bytes read, time spent reading).
fn read_share(bytes: usize, barrier: &Barrier) -> (u64, Duration) {
    let share = vec![0x5a_u8; bytes.max(2 * CHUNK_BYTES)];
    let (left, right) = share.split_at(share.len() / 2);
    barrier.wait();
    let start = Instant::now();
    let mut read = 0u64;
    let mut equal = true;
    'reading: loop {
        for (a, b) in left.chunks(CHUNK_BYTES).zip(right.chunks(CHUNK_BYTES)) {
            equal &= std::hint::black_box(a) == std::hint::black_box(b);
            read += (a.len() + b.len()) as u64;
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
        // The window plus the fill: well under a second even on a busy machine.
        assert!(m.elapsed < Duration::from_secs(2), "{m:?}");
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
