//! Kept conversations as the card shows them: the list of a person's latest, and one with its
//! messages. The store keeps them per user (`store::conversations`); times are Unix milliseconds.

use crate::chat::ChatMessage;
use serde::{Deserialize, Serialize};

/// Conversations the card lists to reopen.
pub const LISTED: usize = 20;
/// Characters of the first question a conversation is titled by.
pub const TITLE_CHARS: usize = 60;

/// One line of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct ConversationSummary {
    pub id: i64,
    /// The model it was held with (it may since have been deleted).
    pub model_id: String,
    /// The start of its first question.
    pub title: String,
    pub updated_at: i64,
}

/// A conversation with its messages, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub summary: ConversationSummary,
    pub messages: Vec<ChatMessage>,
}

/// A title from the first question: its first line, cut at a word near [`TITLE_CHARS`].
pub fn title_of(question: &str) -> String {
    let line = question.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= TITLE_CHARS {
        return if line.is_empty() { "New chat".to_string() } else { line.to_string() };
    }
    let cut: String = line.chars().take(TITLE_CHARS).collect();
    let at_word = cut.rfind(' ').filter(|&i| i > TITLE_CHARS / 2).map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::title_of;

    #[test]
    fn a_title_is_the_start_of_the_first_question() {
        assert_eq!(title_of("  What is the capital of France?\nAnd why?"), "What is the capital of France?");
        assert_eq!(title_of(""), "New chat");
        let long = "Tell me everything you know about the history of lighthouses on the coast of Brittany";
        let t = title_of(long);
        assert!(t.ends_with('…') && t.chars().count() <= 61, "{t}");
        assert!(long.starts_with(t.trim_end_matches('…')), "{t}");
        // Never cut inside a character.
        assert!(title_of(&"é".repeat(100)).starts_with("éé"));
    }
}
