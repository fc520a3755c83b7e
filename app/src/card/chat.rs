//! "Try it": a chat with an installed model, inside the card. The reply streams in as the
//! model writes it; Stop (or leaving the page) stops the generation on the server. The
//! conversation is kept on the server, per user: a reload or a restart shows the latest again,
//! New chat starts over, and the earlier ones are listed to reopen.

use crate::api::{self, ChatsView};
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use localbrain::chat::{BrainView, ChatEvent, ChatMessage, ChatStats, Finish, Role};
use localbrain::conversation::ConversationSummary;

/// The chat, for the installed models in `brain`. Shows nothing until a model is installed.
#[component]
pub fn TryIt(brain: RwSignal<BrainView>, chats: ChatsView) -> impl IntoView {
    let usable = move || brain.with(|b| b.models.iter().filter(|m| m.facts.is_some()).cloned().collect::<Vec<_>>());
    let ChatsView { list, open } = chats;
    let past = RwSignal::new(list);
    // The kept conversation shown, and the model it was held with.
    let conversation_id = RwSignal::new(open.as_ref().map(|c| c.summary.id));
    let held_with = RwSignal::new(open.as_ref().map(|c| c.summary.model_id.clone()));
    let model = RwSignal::new(open.as_ref().map(|c| c.summary.model_id.clone()));
    let conversation = RwSignal::new(open.map(|c| c.messages).unwrap_or_default());
    let draft = RwSignal::new(String::new());
    let generating = RwSignal::new(false);
    let reply_id = StoredValue::new(None::<i64>);
    let last_stats = RwSignal::new(None::<(ChatStats, String)>);
    let error = RwSignal::new(None::<String>);
    // The reply's place in the line for a slot while others are being written (0: not waiting).
    let waiting = RwSignal::new(0u32);
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
        let question = messages.last().map(|m| m.content.clone()).unwrap_or_default();
        spawn_local(async move {
            let outcome = match kept_id(conversation_id, past, &model_id, &question).await {
                Ok(id) => {
                    let _ = held_with.try_set(Some(model_id.clone()));
                    stream_reply(model_id, messages, id, conversation, reply_id, waiting, gone).await
                }
                Err(e) => Err(e),
            };
            reply_id.try_set_value(None);
            let _ = waiting.try_set(0);
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
    let new_chat = move || {
        conversation_id.set(None);
        held_with.set(None);
        conversation.set(Vec::new());
        last_stats.set(None);
        error.set(None);
    };
    let reopen = move |id: i64| {
        spawn_local(async move {
            match api::open_chat(id).await {
                Ok(c) => {
                    let _ = conversation_id.try_set(Some(c.summary.id));
                    let _ = held_with.try_set(Some(c.summary.model_id.clone()));
                    let _ = model.try_set(Some(c.summary.model_id.clone()));
                    let _ = conversation.try_set(c.messages);
                    let _ = last_stats.try_set(None);
                    let _ = error.try_set(None);
                }
                Err(e) => {
                    let _ = error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    // A kept conversation whose model is not installed any more: said plainly, and another
    // installed model can go on with it.
    let gone_model = move || {
        let held = held_with.get()?;
        let installed = brain.with(|b| b.models.iter().any(|m| m.model_id == held && m.facts.is_some()));
        (!installed).then_some(held)
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

    // Kept conversations show even when no model is installed (deleting one keeps them). A memo,
    // so the section is not built again for every piece of a reply.
    let kept = Memo::new(move |_| !conversation.with(Vec::is_empty) || !past.with(Vec::is_empty));
    view! {
        {move || {
            let models = usable();
            let problems: Vec<_> = brain.with(|b| b.models.iter().filter_map(|m| m.problem.clone()).collect());
            let kept = kept.get();
            let can_write = !models.is_empty();
            (can_write || !problems.is_empty() || kept).then(|| view! {
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
                    {move || gone_model().map(|id| {
                        let next = if can_write {
                            "pick a model to go on with it, or start a new chat"
                        } else {
                            "download a model to go on with it"
                        };
                        view! {
                            <p class="warn" data-testid="chat-model-gone">
                                {format!("This conversation was with {id}, which is not installed any more: {next}.")}
                            </p>
                        }
                    })}
                    {can_write.then(|| view! {
                        <div class="chat-bar">
                            <button type="button" class="btn btn-quiet" data-testid="new-chat"
                                disabled=move || generating.get() || conversation.with(Vec::is_empty)
                                on:click=move |_| new_chat()>"New chat"</button>
                        </div>
                    })}
                    <ol class="conversation" data-testid="conversation" aria-live="polite">
                        {move || conversation.get().into_iter().map(|m| {
                            let class = if m.role == Role::User { "msg msg-user" } else { "msg msg-assistant" };
                            let who = if m.role == Role::User { "You" } else { "Model" };
                            view! { <li class=class><span class="who">{who}</span><p>{m.content}</p></li> }
                        }).collect_view()}
                    </ol>
                    {can_write.then(|| view! {
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
                        {move || (waiting.get() > 0).then(|| view! {
                            <p class="muted" role="status" data-testid="chat-waiting">{waiting_words(waiting.get())}</p>
                        })}
                        {move || error.get().map(|e| view! { <p class="error" role="alert" data-testid="chat-error">{e}</p> })}
                        <p class="muted chat-footer" data-testid="chat-footer">{move || footer(last_stats.get(), brain.with(|b| b.threads), brain.with(|b| b.slots))}</p>
                    }.into_any())}
                    {move || {
                        let earlier: Vec<ConversationSummary> =
                            past.get().into_iter().filter(|c| Some(c.id) != conversation_id.get()).collect();
                        (!earlier.is_empty()).then(|| view! {
                            <details class="earlier-chats" data-testid="earlier-chats">
                                <summary>{format!("Earlier chats ({})", earlier.len())}</summary>
                                <ul>
                                    {earlier.into_iter().map(|c| {
                                        let id = c.id;
                                        view! {
                                            <li><button type="button" class="btn btn-quiet" disabled=move || generating.get()
                                                on:click=move |_| reopen(id)>{c.title}</button></li>
                                        }
                                    }).collect_view()}
                                </ul>
                            </details>
                        }.into_any())
                    }}
                </section>
            }.into_any())
        }}
    }
}

/// "24 tokens/s · SmolLM2 135M" after a reply; what happens where before the first.
fn footer(last: Option<(ChatStats, String)>, threads: u32, slots: u32) -> String {
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
            format!("{:.0} tokens/s · {name} · {}{reused}{ending}", s.tokens_per_second, s.ran_on())
        }
        None => format!(
            "Runs on this machine ({threads} CPU thread{}, {slots} repl{} at a time); nothing you type leaves it.",
            if threads == 1 { "" } else { "s" },
            if slots == 1 { "y" } else { "ies" }
        ),
    }
}

/// "Waiting for the brain: 2 replies are ahead of yours." while others are being written.
fn waiting_words(position: u32) -> String {
    match position {
        1 => "Waiting for the brain: it is writing other replies, and yours is next.".to_string(),
        n => format!("Waiting for the brain: {} replies are ahead of yours.", n - 1),
    }
}

/// The kept conversation to write into: the one shown, or a new one started with `question`
/// (then listed first).
async fn kept_id(
    conversation_id: RwSignal<Option<i64>>,
    past: RwSignal<Vec<ConversationSummary>>,
    model_id: &str,
    question: &str,
) -> Result<i64, String> {
    if let Some(id) = conversation_id.get_untracked() {
        return Ok(id);
    }
    let started = api::start_chat(model_id.to_string(), question.to_string()).await.map_err(|e| e.to_string())?;
    let id = started.id;
    let _ = conversation_id.try_set(Some(id));
    let _ = past.try_update(|p| p.insert(0, started));
    Ok(id)
}

/// Sends the conversation and writes the reply into its last message as the pieces arrive.
async fn stream_reply(
    model_id: String,
    messages: Vec<ChatMessage>,
    conversation_id: i64,
    conversation: RwSignal<Vec<ChatMessage>>,
    reply_id: StoredValue<Option<i64>>,
    waiting: RwSignal<u32>,
    gone: StoredValue<bool>,
) -> Result<ChatStats, String> {
    let stream =
        api::chat(model_id, messages, None, None, None, Some(conversation_id)).await.map_err(|e| e.to_string())?;
    let mut stream = stream.into_inner();
    let mut lines = Lines::default();
    while let Some(chunk) = stream.next().await {
        if gone.try_get_value().unwrap_or(true) {
            return Err("stopped".into());
        }
        let chunk = chunk.map_err(|e| e.to_string())?;
        for event in lines.push(&chunk) {
            match event {
                ChatEvent::Started { id, position, .. } => {
                    reply_id.set_value(Some(id));
                    let _ = waiting.try_set(position);
                }
                ChatEvent::Piece { text, .. } => {
                    let _ = waiting.try_set(0);
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
                vec![
                    ChatEvent::Piece { text: "Grüß".into(), logprobs: Vec::new() },
                    ChatEvent::Piece { text: "!".into(), logprobs: Vec::new() }
                ],
                "cut at {cut}"
            );
        }
    }
}
