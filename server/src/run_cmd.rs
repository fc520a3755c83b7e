//! `localbrain run MODEL_ID [PROMPT]`: the brain the card uses, in a terminal. With a prompt,
//! the reply streams to stdout and `N tokens, X tokens/s` goes to stderr (so `> file` keeps
//! just the reply); without one, a conversation: `/bye` or Ctrl-D leaves, Ctrl-C stops the
//! reply being written.

use crate::ctrl_c::CtrlC;
use anyhow::{Context, anyhow, bail};
use localbrain::brain::{Brain, BrainError};
use localbrain::chat::{ChatEvent, ChatMessage, ChatRequest, ChatStats, Role};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The terminal's owner id for [`Brain::stop`]: the process has one person at its keyboard.
const TERMINAL: i64 = 0;

/// `run`'s flags.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Print the prompt speed and the time to the first token too.
    pub verbose: bool,
}

/// Runs one reply, or a conversation until the person leaves.
pub async fn run(brain: Arc<Brain>, model_id: &str, prompt: Vec<String>, options: Options) -> anyhow::Result<()> {
    let mut ctrl_c = CtrlC::listen()?;
    let header = brain.check(model_id).await.map_err(|e| match e {
        BrainError::NotInstalled(id) => anyhow!("{id} is not installed: run `localbrain download {id}` first"),
        other => other.into(),
    })?;
    if !prompt.is_empty() {
        let messages = vec![ChatMessage::new(Role::User, prompt.join(" "))];
        return reply(&brain, model_id, messages, options, &mut ctrl_c).await.map(|_| ());
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "Chatting with {model_id} ({}). Type /bye or press Ctrl-D to leave; Ctrl-C stops a reply.",
            header.facts.summary()
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut history: Vec<ChatMessage> = Vec::new();
    loop {
        if interactive {
            eprint!(">>> ");
        }
        let line = tokio::select! {
            line = lines.next_line() => line.context("cannot read the terminal")?,
            _ = ctrl_c.pressed() => {
                eprintln!("\n(Type /bye or press Ctrl-D to leave.)");
                continue;
            }
        };
        let Some(line) = line else {
            if interactive {
                eprintln!();
            }
            return Ok(());
        };
        let text = line.trim();
        match text {
            "" => continue,
            "/bye" => return Ok(()),
            _ => {}
        }
        history.push(ChatMessage::new(Role::User, text));
        match reply(&brain, model_id, history.clone(), options, &mut ctrl_c).await {
            Ok(answer) => history.push(ChatMessage::new(Role::Assistant, answer)),
            Err(e) => {
                // The conversation goes on without the message that failed.
                history.pop();
                eprintln!("localbrain: {}", crate::plain_words(&e));
            }
        }
    }
}

/// Streams one reply to stdout and its numbers to stderr; returns its text.
async fn reply(
    brain: &Arc<Brain>,
    model_id: &str,
    messages: Vec<ChatMessage>,
    options: Options,
    ctrl_c: &mut CtrlC,
) -> anyhow::Result<String> {
    let request = ChatRequest {
        model_id: model_id.to_string(),
        messages,
        max_tokens: options.max_tokens,
        temperature: options.temperature,
        ..Default::default()
    };
    let mut reply = brain.chat(TERMINAL, request).await?;
    let mut out = std::io::stdout();
    let mut text = String::new();
    let mut stopping = false;
    loop {
        let event = tokio::select! {
            e = reply.events.recv() => e,
            _ = ctrl_c.pressed(), if !stopping => {
                stopping = true;
                brain.stop(TERMINAL, reply.id);
                continue;
            }
        };
        match event {
            Some(ChatEvent::Piece { text: piece, .. }) => {
                text.push_str(&piece);
                // Flushed per piece: the point is to watch it being written.
                let _ = out.write_all(piece.as_bytes()).and_then(|_| out.flush());
            }
            Some(ChatEvent::Done { stats }) => {
                let _ = writeln!(out);
                eprintln!("{}", stats_line(&stats));
                if options.verbose {
                    eprintln!(
                        "prompt: {} tokens ({} reused from the last turn), {:.1} tokens/s; first token after {} ms; {}",
                        stats.prompt_tokens,
                        stats.cached_tokens,
                        stats.prompt_tokens_per_second,
                        stats.first_token_ms,
                        stats.ran_on()
                    );
                }
                return Ok(text);
            }
            Some(ChatEvent::Error { error }) => {
                let _ = writeln!(out);
                bail!(error);
            }
            Some(ChatEvent::Started { .. }) => {}
            None => bail!("the reply ended without a word from the brain"),
        }
    }
}

/// "24 tokens, 181.3 tokens/s" (and why it ended, when it did not end by itself).
fn stats_line(s: &ChatStats) -> String {
    let ending = match s.finish {
        localbrain::chat::Finish::Stop => "",
        localbrain::chat::Finish::Length => " (token limit reached)",
        localbrain::chat::Finish::Cancelled => " (stopped)",
    };
    format!("{} tokens, {:.1} tokens/s{ending}", s.generated_tokens, s.tokens_per_second)
}
