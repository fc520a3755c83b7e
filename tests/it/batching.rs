//! Several replies at once with the real model: a loaded model writes all its slots in one
//! decode per token, a reply joins the others at the next token, a cancelled one frees its
//! slot, greedy text does not change with its neighbours, and the waiting ones are taken in
//! turn per owner.

use crate::brain::{ask, brain, collect, installed_copy, smol_catalog};
use localbrain::brain::Reply;
use localbrain::chat::{ChatEvent, ChatStats, Finish};
use std::time::{Duration, Instant};

/// What one reply did, with when its first piece and its end came.
struct Timed {
    text: String,
    stats: ChatStats,
    first: Instant,
    end: Instant,
}

async fn timed(mut reply: Reply) -> Timed {
    let mut text = String::new();
    let mut first = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(180), reply.events.recv()).await.expect("reply within 3 min") {
            Some(ChatEvent::Started { .. }) => {}
            Some(ChatEvent::Piece { text: t, .. }) => {
                first.get_or_insert_with(Instant::now);
                text += &t;
            }
            Some(ChatEvent::Done { stats }) => {
                let end = Instant::now();
                return Timed { text, stats, first: first.unwrap_or(end), end };
            }
            other => panic!("unexpected event: {other:?}"),
        }
    }
}

const QUESTIONS: [&str; 4] = [
    "Write a short poem about the moon.",
    "Explain what a river is to a child.",
    "List some animals that live on farms.",
    "Describe your favourite breakfast.",
];

#[tokio::test(flavor = "multi_thread")]
async fn four_streams_all_start_before_the_first_ends_and_read_like_one_alone() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| c.parallel = 4);
    // Alone first: the greedy reply to the first question, on a slot with nothing beside it.
    let alone = collect(brain.chat(1, ask(QUESTIONS[0], 48)).await.unwrap()).await.0.concat();
    assert_eq!(brain.slots(), 4);

    let mut replies = Vec::new();
    for (i, q) in QUESTIONS.iter().enumerate() {
        replies.push(brain.chat(i as i64 + 1, ask(q, 48)).await.unwrap());
    }
    let done = futures::future::join_all(replies.into_iter().map(timed)).await;
    let first_end = done.iter().map(|t| t.end).min().unwrap();
    for (i, t) in done.iter().enumerate() {
        assert!(!t.text.trim().is_empty(), "reply {i} is empty");
        assert!(t.first < first_end, "reply {i} had no piece before the first reply ended");
        assert!(matches!(t.stats.finish, Finish::Stop | Finish::Length), "{:?}", t.stats);
    }
    // Beside three others, the greedy reply is word for word the one written alone.
    assert_eq!(done[0].text, alone, "a greedy reply changed when written beside others");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_one_of_four_leaves_the_other_three_complete() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| c.parallel = 4);
    let mut replies = Vec::new();
    for (i, q) in QUESTIONS.iter().enumerate() {
        replies.push(brain.chat(i as i64 + 1, ask(q, 40)).await.unwrap());
    }
    let mut stopped = replies.remove(1);
    // Its first piece, so it is being written beside the others when it is stopped.
    loop {
        match stopped.events.recv().await {
            Some(ChatEvent::Piece { .. }) => break,
            Some(ChatEvent::Started { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(brain.stop(2, stopped.id));
    let others = tokio::spawn(futures::future::join_all(replies.into_iter().map(timed)));
    let cancelled = timed(stopped).await;
    assert_eq!(cancelled.stats.finish, Finish::Cancelled, "{:?}", cancelled.stats);
    assert!(cancelled.stats.generated_tokens < 40, "{:?}", cancelled.stats);
    for t in others.await.unwrap() {
        assert!(matches!(t.stats.finish, Finish::Stop | Finish::Length), "{:?}", t.stats);
        assert!(!t.text.trim().is_empty());
        if t.stats.finish == Finish::Length {
            assert_eq!(t.stats.generated_tokens, 40, "{:?}", t.stats);
        }
    }
    // Its slot is free: a fifth reply is written.
    let (pieces, _) = collect(brain.chat(5, ask("Hi", 8)).await.unwrap()).await;
    assert!(!pieces.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_that_arrives_mid_generation_joins_at_the_next_token() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| c.parallel = 2);
    let long = brain.chat(1, ask("Write a very long story about a dragon.", 400)).await.unwrap();
    let long = tokio::spawn(timed(long));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let short = timed(brain.chat(2, ask("Say hello.", 8)).await.unwrap()).await;
    let long = long.await.unwrap();
    assert!(short.end < long.end, "the short reply waited for the long one to end");
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_replies_are_taken_in_turn_per_owner() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| {
        c.parallel = 1;
        c.queue_limit = 8;
    });
    // Owner 1 fills the one slot and queues four more; owner 2 asks once, after all of them.
    let mut ones = Vec::new();
    for _ in 0..5 {
        ones.push(brain.chat(1, ask("Say one word.", 4)).await.unwrap());
    }
    let two = brain.chat(2, ask("Say one word.", 4)).await.unwrap();
    let two = tokio::spawn(timed(two));
    let ones = futures::future::join_all(ones.into_iter().map(timed)).await;
    let two = two.await.unwrap();
    // Owner 2 went next after the reply being written, ahead of owner 1's second.
    assert!(two.end < ones[1].end, "owner 2 waited behind all of owner 1's requests");
    assert!(ones[0].end < two.end);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_conversations_keep_their_caches_side_by_side() {
    use localbrain::chat::{ChatMessage, Role};
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| c.parallel = 2);
    let mut a = ask("My name is Ada. Greet me.", 12);
    let mut b = ask("Tell me about rivers.", 12);
    let (a1, a_one) = collect(brain.chat(1, a.clone()).await.unwrap()).await;
    let (b1, b_one) = collect(brain.chat(2, b.clone()).await.unwrap()).await;
    // B's first turn shares only the template's opening with A's: it took the other slot
    // instead of cutting A's conversation back to that opening.
    for (req, reply, next) in [(&mut a, a1, "What is my name?"), (&mut b, b1, "And lakes?")] {
        req.messages.push(ChatMessage::new(Role::Assistant, reply.concat()));
        req.messages.push(ChatMessage::new(Role::User, next));
    }
    let (_, a_two) = collect(brain.chat(1, a).await.unwrap()).await;
    let (_, b_two) = collect(brain.chat(2, b).await.unwrap()).await;
    assert!(a_two.cached_tokens >= a_one.prompt_tokens, "A's turn 1 read {}: {a_two:?}", a_one.prompt_tokens);
    assert!(b_two.cached_tokens >= b_one.prompt_tokens, "B's turn 1 read {}: {b_two:?}", b_one.prompt_tokens);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_for_another_model_waits_for_the_loaded_ones_replies_to_end() {
    use localbrain::catalog::ModelEntry;
    use localbrain::chat::ChatRequest;
    use localbrain::engine::files::target_path;
    use testkit::catalog::{smol_entry, to_toml};
    const COPY: &str = "smollm2-copy-q4_1";
    let (_dir, models) = installed_copy();
    std::fs::copy(testkit::test_model_path(), target_path(&models, COPY)).unwrap();
    let unused = "http://127.0.0.1:9/unused";
    let toml = to_toml([smol_entry(unused), ModelEntry { id: COPY.into(), ..smol_entry(unused) }]);
    let brain = brain(&models, &toml, |c| c.parallel = 2);

    let first = brain.chat(1, ask("Write a long story about a ship.", 120)).await.unwrap();
    let first = tokio::spawn(timed(first));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The other model is loaded only once the reply being written with this one has ended...
    let other = timed(brain.chat(2, ChatRequest { model_id: COPY.into(), ..ask("Say hello.", 8) }).await.unwrap());
    let other = other.await;
    let first = first.await.unwrap();
    assert!(first.end <= other.first, "the swap did not wait for the running reply");
    // ...which was written whole, not cut by the swap.
    assert!(matches!(first.stats.finish, Finish::Stop | Finish::Length), "{:?}", first.stats);
    if first.stats.finish == Finish::Length {
        assert_eq!(first.stats.generated_tokens, 120);
    }
    assert!(!other.text.is_empty());
    assert_eq!(brain.loaded_model().as_deref(), Some(COPY));
}
