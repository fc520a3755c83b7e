//! Stop sequences (the OpenAI API's `stop`): the reply ends where one of them first appears,
//! and none of it is sent. Text that could be the start of a stop sequence is held back until
//! the next tokens show whether it is one, so a stop split across tokens is still caught.

/// Most stop sequences in one request (OpenAI's limit too).
pub const MAX_STOPS: usize = 4;
/// Longest stop sequence, in bytes.
pub const MAX_STOP_BYTES: usize = 256;

/// The text of a reply on its way out, watched for stop sequences.
#[derive(Debug, Default)]
pub struct StopScan {
    stops: Vec<String>,
    held: String,
}

/// What may be sent now, and whether a stop sequence ended the reply.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    pub text: String,
    pub stopped: bool,
}

impl StopScan {
    pub fn new(stops: &[String]) -> Self {
        StopScan { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Takes the next piece of the reply; returns what can be sent.
    pub fn push(&mut self, piece: &str) -> Scanned {
        if self.stops.is_empty() {
            return Scanned { text: piece.to_string(), stopped: false };
        }
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Scanned { text, stopped: true };
        }
        // Keep the shortest tail that some stop sequence begins with; send the rest.
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len());
        let text = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        Scanned { text, stopped: false }
    }

    /// The reply ended by itself: what was held back is part of it.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut s = StopScan::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let mut out = String::new();
        for p in pieces {
            let r = s.push(p);
            out.push_str(&r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&s.finish());
        (out, false)
    }

    #[test]
    fn without_stops_everything_passes_at_once() {
        let mut s = StopScan::new(&[]);
        assert_eq!(s.push("Hello"), Scanned { text: "Hello".into(), stopped: false });
    }

    #[test]
    fn a_stop_inside_a_piece_cuts_the_reply_there() {
        assert_eq!(scan(&["\n\n"], &["One.\n\nTwo."]), ("One.".into(), true));
        assert_eq!(scan(&["END", "Two"], &["One. Two END"]), ("One. ".into(), true));
    }

    #[test]
    fn a_stop_split_across_pieces_is_caught_and_never_sent() {
        assert_eq!(scan(&["User:"], &["Fine.", " Us", "er", ": hi"]), ("Fine. ".into(), true));
    }

    #[test]
    fn a_near_miss_is_sent_once_it_cannot_be_a_stop() {
        let mut s = StopScan::new(&["User:".to_string()]);
        assert_eq!(s.push("a Us").text, "a ");
        assert_eq!(s.push("ed").text, "Used");
        assert_eq!(scan(&["User:"], &["Us", "e"]), ("Use".into(), false));
    }

    #[test]
    fn multibyte_text_is_split_on_characters() {
        assert_eq!(scan(&["🙂!"], &["héllo 🙂", "🙂!"]), ("héllo 🙂".into(), true));
    }
}
