//! The plan of a parallel download: the file cut into byte ranges fetched over separate
//! connections, how far each has got, and the text form of that kept on the row so a resume
//! keeps every finished byte.

/// One byte range of the file: `[start, end)`, of which the first `done` bytes are in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub done: u64,
}

impl Segment {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_complete(&self) -> bool {
        self.done == self.size()
    }
}

/// How a file is cut, as ollama does: a sixteenth of the file per segment, but no segment below
/// `min_bytes` or above `max_bytes`, so small files stay one stream and huge ones get many
/// segments of a size a retry can afford to lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRule {
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub max_count: u64,
}

impl Default for SegmentRule {
    fn default() -> Self {
        SegmentRule { min_bytes: 100_000_000, max_bytes: 1_000_000_000, max_count: 16 }
    }
}

/// The segments of a fresh download of `size` bytes; one segment when the file is small.
/// More than `max_count` only when even `max_bytes` segments cannot cover the file.
pub fn plan(size: u64, rule: SegmentRule) -> Vec<Segment> {
    let per = size.div_ceil(rule.max_count.max(1)).clamp(rule.min_bytes.max(1), rule.max_bytes.max(1));
    let mut out = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + per).min(size);
        out.push(Segment { start, end, done: 0 });
        start = end;
    }
    out
}

/// Bytes in the file over all segments.
pub fn done_bytes(segments: &[Segment]) -> u64 {
    segments.iter().map(|s| s.done).sum()
}

/// `start-end:done,...` for the row.
pub fn encode(segments: &[Segment]) -> String {
    segments.iter().map(|s| format!("{}-{}:{}", s.start, s.end, s.done)).collect::<Vec<_>>().join(",")
}

/// The segments a download fetches: the row's `saved` ones when its partial is still whole
/// (`on_disk == size`), a fresh plan for a new download of a large file, `None` for one stream
/// (a small file, one connection, or a single-stream partial to continue).
pub fn to_fetch(
    saved: Option<&str>,
    on_disk: u64,
    size: u64,
    connections: usize,
    rule: SegmentRule,
) -> Option<Vec<Segment>> {
    match saved {
        Some(text) if on_disk == size => {
            if let Some(saved) = decode(text, size) {
                return Some(saved);
            }
        }
        // The partial is gone (or not this size): a fresh plan, over a truncated file.
        Some(_) => {}
        None if on_disk > 0 => return None,
        None => {}
    }
    if connections <= 1 {
        return None;
    }
    let plan = plan(size, rule);
    (plan.len() > 1).then_some(plan)
}

/// Reads the row's text back; `None` unless the segments cover `[0, size)` in order without gaps
/// and no segment claims more than its length (a row from another file size, or damaged).
pub fn decode(text: &str, size: u64) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut expected_start = 0;
    for part in text.split(',') {
        let (range, done) = part.split_once(':')?;
        let (start, end) = range.split_once('-')?;
        let seg = Segment { start: start.parse().ok()?, end: end.parse().ok()?, done: done.parse().ok()? };
        if seg.start != expected_start || seg.end <= seg.start || seg.done > seg.size() {
            return None;
        }
        expected_start = seg.end;
        out.push(seg);
    }
    (expected_start == size && size > 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    #[test]
    fn plans_follow_the_size_like_ollama() {
        let rule = SegmentRule::default();
        // Small files are one stream.
        assert_eq!(plan(50 * MB, rule).len(), 1);
        assert_eq!(plan(150 * MB, rule).len(), 2);
        // 386 MB: sixteenths would be 24 MB, so 100 MB segments.
        let p = plan(386 * MB, rule);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Segment { start: 0, end: 100 * MB, done: 0 });
        assert_eq!(p[3].end, 386 * MB);
        // 2 GiB: sixteen segments of 134 MB.
        let p = plan(2 << 30, rule);
        assert_eq!(p.len(), 16);
        assert_eq!(p[0].size(), (2u64 << 30) / 16);
        // 40 GB: segments stop at 1 GB, so more than sixteen.
        let p = plan(40_000 * MB, rule);
        assert_eq!(p.len(), 40);
        assert!(p.iter().all(|s| s.size() == 1_000 * MB));
    }

    #[test]
    fn plans_cover_the_file_exactly() {
        let rule = SegmentRule { min_bytes: 7, max_bytes: 100, max_count: 16 };
        for size in [1, 6, 7, 8, 99, 100, 101, 1000, 1601, 12345] {
            let p = plan(size, rule);
            assert_eq!(p.first().unwrap().start, 0);
            assert_eq!(p.last().unwrap().end, size);
            assert!(p.windows(2).all(|w| w[0].end == w[1].start), "{size}: {p:?}");
            assert!(p.iter().all(|s| s.size() <= 100));
        }
    }

    #[test]
    fn the_row_text_round_trips_and_rejects_what_does_not_fit() {
        let mut p = plan(1000, SegmentRule { min_bytes: 300, max_bytes: 300, max_count: 16 });
        p[0].done = 300;
        p[2].done = 17;
        let text = encode(&p);
        assert_eq!(text, "0-300:300,300-600:0,600-900:17,900-1000:0");
        assert_eq!(decode(&text, 1000), Some(p.clone()));
        assert_eq!(done_bytes(&p), 317);
        for bad in [
            "",
            "0-300:300",            // does not reach the end
            "0-300:301,300-1000:0", // more done than the segment holds
            "0-300:0,301-1000:0",   // a gap
            "0-300:0,200-1000:0",   // an overlap
            "0-1000:x",             // not a number
            "0-1000",               // no progress
            "5-1000:0",             // does not start at 0
        ] {
            assert_eq!(decode(bad, 1000), None, "{bad:?}");
        }
        assert_eq!(decode("0-1000:0", 999), None);
    }
}
