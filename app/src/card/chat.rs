//! "Try it": a chat with an installed model, inside the card. The reply streams in as the
//! model writes it; Stop (or leaving the page) stops the generation on the server. The
//! conversation lives as long as the page.

use crate::api;
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use localbrain::chat::{BrainView, ChatEvent, ChatMessage, ChatStats, Finish, Role};

/// The chat, for the installed models in `brain`. Shows nothing until a model is installed.
#[component]
pub fn TryIt(brain: RwSignal<BrainView>) -> impl IntoView {
    let usable = move || brain.with(|b| b.models.iter().filter(|m| m.facts.is_some()).cloned().collect::<Vec<_>>());
    let model = RwSignal::new(None::<String>);
    let conversation = RwSignal::new(Vec::<ChatMessage>::new());
    let draft = RwSignal::new(String::new());
    let generating = RwSignal::new(false);
    let reply_id = StoredValue::new(None::<i64>);
    let last_stats = RwSignal::new(None::<(ChatStats, String)>);
    let error = RwSignal::new(None::<String>);
    // Set when the card goes away mid-reply: the reading loop then drops the stream, which
    // closes the connection, which stops the generation on the server.
    let gone = StoredValue::new(false);

    // The chosen model, or the first usable one.
    let chosen = move || {
        let models = usable();
        model
            .get()
            .filter(|id| models.iter().any(|m| &m.model_id == id))
            .or_else(|| models.first().map(|m| m.model_id.clone()))
    };
    let chosen_name = move |id: &str| {
        brain.with(|b| b.models.iter().find(|m| m.model_id == id).map(|m| m.name.clone()).unwrap_or_default())
    };

    let send = move || {
        let text = draft.get_untracked().trim().to_string();
        let Some(model_id) = chosen() else { return };
        if text.is_empty() || generating.get_untracked() {
            return;
        }
        draft.set(String::new());
        error.set(None);
        conversation.update(|c| c.push(ChatMessage::new(Role::User, text)));
        let messages = conversation.get_untracked();
        conversation.update(|c| c.push(ChatMessage::new(Role::Assistant, String::new())));
        generating.set(true);
        let name = chosen_name(&model_id);
        spawn_local(async move {
            let outcome = stream_reply(model_id, messages, conversation, reply_id, gone).await;
            reply_id.try_set_value(None);
            let _ = generating.try_set(false);
            match outcome {
                Ok(stats) => {
                    let _ = last_stats.try_set(Some((stats, name)));
                }
                Err(e) => {
                    // Nothing was written: the question stays, the empty answer goes.
                    let _ = conversation.try_update(|c| {
                        if c.last().is_some_and(|m| m.role == Role::Assistant && m.content.is_empty()) {
                            c.pop();
                        }
                    });
                    let _ = error.try_set(Some(e));
                }
            }
        });
    };
    let stop = move || {
        if let Some(id) = reply_id.get_value() {
            spawn_local(async move {
                let _ = api::stop_chat(id).await;
            });
        }
    };
    on_cleanup(move || {
        gone.try_set_value(true);
        if let Some(Some(id)) = reply_id.try_get_value() {
            spawn_local(async move {
                let _ = api::stop_chat(id).await;
            });
        }
    });

    view! {
        {move || {
            let models = usable();
            let problems: Vec<_> = brain.with(|b| b.models.iter().filter_map(|m| m.problem.clone()).collect());
            (!models.is_empty() || !problems.is_empty()).then(|| view! {
                <section class="try-it" data-testid="chat" aria-labelledby="try-it-title">
                    <h3 id="try-it-title">"Try it"</h3>
                    {problems.into_iter().map(|p| view! { <p class="warn" data-testid="model-problem">{p}</p> }).collect_view()}
                    {(models.len() > 1).then(|| view! {
                        <label class="field" for="chat-model">"Talk to"</label>
                        <select id="chat-model" class="select" disabled=move || generating.get()
                            on:change=move |ev| model.set(Some(event_target_value(&ev)))>
                            {models.iter().map(|m| {
                                let selected = chosen().as_deref() == Some(m.model_id.as_str());
                                view! { <option value=m.model_id.clone() selected=selected>{m.name.clone()}</option> }
                            }).collect_view()}
                        </select>
                    })}
                    {move || chosen().and_then(|id| brain.with(|b| b.models.iter().find(|m| m.model_id == id).and_then(|m| m.facts.as_ref().map(|f| f.summary()))))
                        .map(|facts| view! { <p class="muted facts" data-testid="facts">{facts}</p> })}
                    {(!models.is_empty()).then(|| view! {
                        <ol class="conversation" data-testid="conversation" aria-live="polite">
                            {move || conversation.get().into_iter().map(|m| {
                                let class = if m.role == Role::User { "msg msg-user" } else { "msg msg-assistant" };
                                let who = if m.role == Role::User { "You" } else { "Model" };
                                view! { <li class=class><span class="who">{who}</span><p>{m.content}</p></li> }
                            }).collect_view()}
                        </ol>
                        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
                            <textarea class="message" aria-label="Message" placeholder="Ask anything…" rows="2"
                                prop:value=move || draft.get()
                                on:input=move |ev| draft.set(event_target_value(&ev))
                                on:keydown=move |ev| {
                                    if ev.key() == "Enter" && !ev.shift_key() {
                                        ev.prevent_default();
                                        send();
                                    }
                                }></textarea>
                            {move || if generating.get() {
                                view! { <button type="button" class="btn btn-secondary" on:click=move |_| stop()>"Stop"</button> }.into_any()
                            } else {
                                view! { <button type="submit" class="btn btn-primary" disabled=move || draft.with(|d| d.trim().is_empty())>"Send"</button> }.into_any()
                            }}
                        </form>
                        {move || error.get().map(|e| view! { <p class="error" role="alert" data-testid="chat-error">{e}</p> })}
                        <p class="muted chat-footer" data-testid="chat-footer">{move || footer(last_stats.get(), brain.with(|b| b.threads))}</p>
                    })}
                </section>
            })
        }}
    }
}

/// "24 tokens/s · SmolLM2 135M" after a reply; what happens where before the first.
fn footer(last: Option<(ChatStats, String)>, threads: u32) -> String {
    match last {
        Some((s, name)) => {
            let ending = match s.finish {
                Finish::Stop => "",
                Finish::Length => " · stopped at the length limit",
                Finish::Cancelled => " · stopped",
            };
            let reused = if s.cached_tokens > 0 {
                format!(" · {} prompt tokens reused", s.cached_tokens)
            } else {
                String::new()
            };
            format!("{:.0} tokens/s · {name}{reused}{ending}", s.tokens_per_second)
        }
        None => format!(
            "Runs on this machine ({threads} CPU thread{}); nothing you type leaves it.",
            if threads == 1 { "" } else { "s" }
        ),
    }
}

/// Sends the conversation and writes the reply into its last message as the pieces arrive.
async fn stream_reply(
    model_id: String,
    messages: Vec<ChatMessage>,
    conversation: RwSignal<Vec<ChatMessage>>,
    reply_id: StoredValue<Option<i64>>,
    gone: StoredValue<bool>,
) -> Result<ChatStats, String> {
    let stream = api::chat(model_id, messages, None, None, None).await.map_err(|e| e.to_string())?;
    let mut stream = stream.into_inner();
    let mut lines = Lines::default();
    while let Some(chunk) = stream.next().await {
        if gone.try_get_value().unwrap_or(true) {
            return Err("stopped".into());
        }
        let chunk = chunk.map_err(|e| e.to_string())?;
        for event in lines.push(&chunk) {
            match event {
                ChatEvent::Started { id, .. } => reply_id.set_value(Some(id)),
                ChatEvent::Piece { text } => {
                    let _ = conversation.try_update(|c| {
                        if let Some(last) = c.last_mut() {
                            last.content.push_str(&text);
                        }
                    });
                }
                ChatEvent::Done { stats } => return Ok(stats),
                ChatEvent::Error { error } => return Err(error),
            }
        }
    }
    Err("the connection to localbrain closed before the reply ended".into())
}

/// Splits a byte stream into JSON lines: a line (or a character) split across two network
/// chunks is held until its end arrives.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) -> Vec<ChatEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            if let Ok(event) = serde_json::from_slice(&line[..nl]) {
                out.push(event);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_anywhere_come_out_whole() {
        let text = "{\"type\":\"piece\",\"text\":\"Grüß\"}\n{\"type\":\"piece\",\"text\":\"!\"}\n";
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let mut lines = Lines::default();
            let mut events = lines.push(&bytes[..cut]);
            events.extend(lines.push(&bytes[cut..]));
            assert_eq!(
                events,
                vec![ChatEvent::Piece { text: "Grüß".into() }, ChatEvent::Piece { text: "!".into() }],
                "cut at {cut}"
            );
        }
    }
}
