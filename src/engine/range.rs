//! HTTP range arithmetic: the `Content-Range` of a 206 answer.

/// A parsed `Content-Range: bytes start-end/total` (end inclusive; total `None` for `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

/// Parses a `Content-Range` value of a 206 answer; `None` when malformed.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if let Some(t) = total
        && end >= t
    {
        return None;
    }
    Some(ContentRange { start, end, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_servers_send() {
        let cases: &[(&str, Option<ContentRange>)] = &[
            ("bytes 100-199/200", Some(ContentRange { start: 100, end: 199, total: Some(200) })),
            ("bytes 0-0/1", Some(ContentRange { start: 0, end: 0, total: Some(1) })),
            ("bytes 5-9/*", Some(ContentRange { start: 5, end: 9, total: None })),
            (" bytes  7-8/10 ", Some(ContentRange { start: 7, end: 8, total: Some(10) })),
            ("bytes 9-5/10", None),
            ("bytes 5-10/10", None),
            ("bytes */10", None),
            ("items 0-1/2", None),
            ("bytes 0-1", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_content_range(input), *want, "{input:?}");
        }
    }
}
