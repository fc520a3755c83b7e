//! The brain with a real model: SmolLM2-135M-Instruct Q4_1, downloaded by the real engine from
//! the loopback fixture host, verified, its header read, loaded by llama.cpp and asked. What the
//! model says is checked by shape (non-empty, ended by end-of-text or the limit, a speed above
//! zero), never by its words: greedy output changes with CPU features.

use crate::engine::fast_config;
use localbrain::brain::gguf::{self, GgufError};
use localbrain::brain::{Brain, BrainConfig, BrainError, Reply, RuntimeError};
use localbrain::catalog::{Catalog, ModelEntry, Purpose};
use localbrain::chat::{ChatEvent, ChatMessage, ChatRequest, ChatStats, EmbedInput, EmbedRequest, Finish, Role};
use localbrain::engine::{Engine, files};
use localbrain::status::DownloadStatus;
use localbrain::store::users;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::catalog::{catalog_toml, entry, smol_entry, to_toml};
use testkit::{Fixture, SMOL, SMOL_SHA256, TestDb, hex, test_model_path};

/// A brain over `models`, answering for the catalog in `toml`, with a short keep-alive unless
/// `tune` says otherwise.
pub(crate) fn brain(models: &Path, toml: &str, tune: impl FnOnce(&mut BrainConfig)) -> Arc<Brain> {
    let mut cfg = BrainConfig::new(models.to_path_buf());
    cfg.threads = 1;
    cfg.context_tokens = 1024;
    tune(&mut cfg);
    Brain::new(Arc::new(Catalog::parse(toml).unwrap()), cfg)
}

pub(crate) fn ask(text: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model_id: SMOL.into(),
        messages: vec![ChatMessage::new(Role::User, text)],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        seed: Some(1),
        ..Default::default()
    }
}

/// Reads a reply to its end: (the pieces, the final stats).
pub(crate) async fn collect(mut reply: Reply) -> (Vec<String>, ChatStats) {
    let mut pieces = Vec::new();
    match reply.events.recv().await {
        Some(ChatEvent::Started { id, model_id, .. }) => {
            assert_eq!(id, reply.id);
            assert_eq!(model_id, SMOL);
        }
        other => panic!("first event: {other:?}"),
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(120), reply.events.recv()).await.expect("reply within 2 min") {
            Some(ChatEvent::Piece { text, .. }) => pieces.push(text),
            Some(ChatEvent::Done { stats }) => return (pieces, stats),
            other => panic!("unexpected event: {other:?}"),
        }
    }
}

/// The first piece of a reply (after `started`).
async fn first_piece(reply: &mut Reply) -> String {
    loop {
        match reply.events.recv().await {
            Some(ChatEvent::Started { .. }) => {}
            Some(ChatEvent::Piece { text, .. }) => return text,
            other => panic!("before the first piece: {other:?}"),
        }
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The model installed in a fresh models folder by copying the cached file (the download
/// path has its own test below).
pub(crate) fn installed_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(test_model_path(), files::target_path(&models, SMOL)).unwrap();
    (dir, models)
}

/// The model, listed at a URL nothing answers (it is installed by copying).
const UNUSED: &str = "http://127.0.0.1:9/unused";

pub(crate) fn smol_catalog() -> String {
    to_toml([smol_entry(UNUSED)])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_downloads_the_model_and_the_brain_answers_with_it() {
    let bytes = std::fs::read(test_model_path()).unwrap();
    assert_eq!(hex(&Sha256::digest(&bytes)), SMOL_SHA256, "the cached test model is the one DESIGN.md names");
    let host = Fixture::start(bytes).await;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let toml = to_toml([smol_entry(&host.url("/file"))]);
    let engine =
        Engine::new(db.db.clone(), Arc::new(Catalog::parse(&toml).unwrap()), fast_config(models.clone())).unwrap();
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let started = engine.start(admin.id, SMOL).await.unwrap();
    let done = engine.wait_settled(started.id).await.unwrap();
    assert_eq!(done.status, DownloadStatus::Complete, "{:?}", done.error);

    let brain = brain(&models, &toml, |_| {});
    let header = brain.check(SMOL).await.unwrap();
    assert_eq!(header.facts.architecture, "llama");
    assert_eq!(header.facts.context_length, 8192);
    assert_eq!(header.facts.quantization, "Q4_1");
    assert!((130_000_000..140_000_000).contains(&header.facts.parameters), "{}", header.facts.parameters);
    assert!(header.facts.has_chat_template);
    assert_eq!(header.facts.summary(), "llama · 135M parameters · 8K context · Q4_1");

    let reply = brain.chat(admin.id, ask("What is the capital of France? Answer in one word.", 32)).await.unwrap();
    let (pieces, stats) = collect(reply).await;
    let text: String = pieces.concat();
    assert!(!text.trim().is_empty(), "an empty reply");
    assert!(matches!(stats.finish, Finish::Stop | Finish::Length), "{stats:?}");
    assert!(stats.generated_tokens >= 1 && stats.generated_tokens <= 32, "{stats:?}");
    if stats.finish == Finish::Length {
        assert_eq!(stats.generated_tokens, 32);
    }
    assert!(stats.prompt_tokens > 5, "{stats:?}");
    assert!(stats.tokens_per_second > 0.0 && stats.prompt_tokens_per_second > 0.0, "{stats:?}");
    assert!(stats.first_token_ms > 0, "{stats:?}");
    assert_eq!(brain.loaded_model().as_deref(), Some(SMOL));
    let listed = brain.installed().await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].loaded && listed[0].problem.is_none() && listed[0].facts.is_some(), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_keeps_its_turns_and_the_next_reads_only_its_new_tokens() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |_| {});
    let mut req = ask("My name is Ada. Say hello to me.", 24);
    let (first, one) = collect(brain.chat(1, req.clone()).await.unwrap()).await;
    assert_eq!(one.cached_tokens, 0, "nothing was cached before the first turn: {one:?}");
    req.messages.push(ChatMessage::new(Role::Assistant, first.concat()));
    req.messages.push(ChatMessage::new(Role::User, "What is my name?"));
    let (warm, two) = collect(brain.chat(1, req.clone()).await.unwrap()).await;
    assert!(!warm.concat().trim().is_empty());
    // Three turns plus the template's own text: more prompt than the first question alone.
    assert!(two.prompt_tokens > 30, "{two:?}");
    // The whole first prompt (and most of the reply, as the template writes it back) was kept.
    assert!(two.cached_tokens >= one.prompt_tokens, "turn 1 read {} tokens: {two:?}", one.prompt_tokens);
    assert!(two.cached_tokens < two.prompt_tokens, "{two:?}");

    // The same turn on a brain that has never seen the conversation: the same greedy reply,
    // so reusing the cache changed nothing but the work.
    let cold_brain = self::brain(&models, &smol_catalog(), |_| {});
    let (cold, three) = collect(cold_brain.chat(1, req.clone()).await.unwrap()).await;
    assert_eq!(three.cached_tokens, 0, "{three:?}");
    assert_eq!(three.prompt_tokens, two.prompt_tokens);
    assert_eq!(warm.concat(), cold.concat(), "a reply from the cache differs from the same reply read cold");

    // Asked again, word for word: all but the last prompt token come from the cache (that one
    // is read again for the model's next-token odds), and the reply is the same.
    let (again, four) = collect(brain.chat(1, req).await.unwrap()).await;
    assert_eq!(four.cached_tokens + 1, four.prompt_tokens, "{four:?}");
    assert_eq!(again.concat(), warm.concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn another_conversation_reuses_only_the_start_it_shares() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |_| {});
    let (_, one) = collect(brain.chat(1, ask("Tell me about the sea, in two sentences.", 16)).await.unwrap()).await;
    let mut other = ask("List three fruits.", 16);
    other.messages.insert(0, ChatMessage::new(Role::System, "You answer in lists."));
    let (text, two) = collect(brain.chat(1, other).await.unwrap()).await;
    assert!(!text.concat().trim().is_empty());
    // Only the template's opening ("<|im_start|>system\n") is common to both prompts.
    assert!(two.cached_tokens < 8, "turn 1 had {} prompt tokens: {two:?}", one.prompt_tokens);
    assert!(two.prompt_tokens > 8, "{two:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_sequence_ends_the_reply_before_it() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |_| {});
    let question = "Name three colours, one per line.";
    // Greedy, so the same prompt gives the same reply: the second run stops at a word the
    // first one wrote after its start.
    let (pieces, _) = collect(brain.chat(1, ask(question, 24)).await.unwrap()).await;
    let full = pieces.concat();
    let word = full.split_whitespace().nth(2).unwrap_or_else(|| panic!("a reply of three words or more: {full:?}"));
    let at = full.find(word).unwrap();
    let (pieces, stats) =
        collect(brain.chat(1, ChatRequest { stop: vec![word.to_string()], ..ask(question, 24) }).await.unwrap()).await;
    assert_eq!(pieces.concat(), full[..at], "the reply up to {word:?}, without it");
    assert_eq!(stats.finish, Finish::Stop, "{stats:?}");
    // A sampled reply with top_p runs too.
    let (pieces, _) = collect(
        brain.chat(1, ChatRequest { temperature: Some(0.8), top_p: Some(0.5), ..ask(question, 8) }).await.unwrap(),
    )
    .await;
    assert!(!pieces.concat().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_a_reply_between_tokens_and_frees_the_brain() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |_| {});
    let mut reply = brain.chat(7, ask("Write a very long story about a dragon.", 900)).await.unwrap();
    first_piece(&mut reply).await;
    assert!(brain.is_busy());
    assert!(!brain.stop(8, reply.id), "another owner cannot stop it");
    assert!(brain.stop(7, reply.id));
    let mut stats = None;
    while let Some(e) = reply.events.recv().await {
        if let ChatEvent::Done { stats: s } = e {
            stats = Some(s);
        }
    }
    let stats = stats.expect("a done event");
    assert_eq!(stats.finish, Finish::Cancelled);
    assert!(stats.generated_tokens < 900, "{stats:?}");
    wait_until("the brain is free", || !brain.is_busy()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_reply_stops_the_generation() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |_| {});
    let mut reply = brain.chat(1, ask("Count from one to one thousand in words.", 900)).await.unwrap();
    first_piece(&mut reply).await;
    let stopped_at = Instant::now();
    drop(reply); // what a closed connection does
    wait_until("the brain is free", || !brain.is_busy()).await;
    assert!(stopped_at.elapsed() < Duration::from_secs(2), "{:?}", stopped_at.elapsed());
    // And it answers the next one.
    let (pieces, _) = collect(brain.chat(1, ask("Hi", 8)).await.unwrap()).await;
    assert!(!pieces.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_serves_in_order_and_refuses_beyond_its_limit() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| {
        c.queue_limit = 1;
        c.parallel = 1;
    });
    let mut first = brain.chat(1, ask("Tell me a long story.", 900)).await.unwrap();
    first_piece(&mut first).await;
    // The second waits its turn (the one queue place): it has started, but nothing comes...
    let mut second = brain.chat(2, ask("Hi", 8)).await.unwrap();
    // It is next in line behind the one being written.
    assert!(matches!(second.events.recv().await, Some(ChatEvent::Started { position: 1, .. })));
    let nothing = tokio::time::timeout(Duration::from_millis(300), second.events.recv()).await;
    assert!(nothing.is_err(), "the second request waits while the first is answered: {nothing:?}");
    // ...and a third finds the queue full and is told at once, with how many wait and how long.
    let refused =
        tokio::time::timeout(Duration::from_secs(1), brain.chat(3, ask("Hi", 8))).await.expect("refused at once");
    match refused {
        Err(e @ BrainError::Busy { waiting: 1, slots: 1, retry_after }) => {
            assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
            assert!(e.to_string().contains("(1 waiting, 1 written at a time): try again in about"), "{e}");
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(brain.stop(1, first.id));
    drop(first);
    let mut pieces = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(60), second.events.recv()).await.expect("served after the first")
        {
            Some(ChatEvent::Piece { text, .. }) => pieces.push(text),
            Some(ChatEvent::Done { .. }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(!pieces.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_model_is_unloaded_after_keep_alive() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &smol_catalog(), |c| c.keep_alive = Duration::from_millis(300));
    collect(brain.chat(1, ask("Hi", 4)).await.unwrap()).await;
    assert_eq!(brain.loaded_model().as_deref(), Some(SMOL));
    wait_until("the idle model is unloaded", || brain.loaded_model().is_none()).await;
    // Asking again loads it again.
    collect(brain.chat(1, ask("Hi", 4)).await.unwrap()).await;
    assert_eq!(brain.loaded_model().as_deref(), Some(SMOL));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_the_memory_rule_refuses_is_never_loaded() {
    let (_dir, models) = installed_copy();
    // The same file, but the catalog says it needs a million GB.
    let toml = to_toml([ModelEntry { min_ram_gb: 1_000_000, ..smol_entry(UNUSED) }]);
    let brain = brain(&models, &toml, |_| {});
    let err = brain.chat(1, ask("Hi", 4)).await.err().expect("refused");
    assert!(matches!(err, BrainError::TooBig { .. }), "{err:?}");
    assert!(err.to_string().contains("pick a smaller model"), "{err}");
    assert_eq!(brain.loaded_model(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedding_model_embeds_and_is_never_asked_to_chat() {
    let (_dir, models) = installed_copy();
    // The catalog says the file is an embedding model (as it does for nomic-embed-text).
    let toml = to_toml([ModelEntry { purpose: Purpose::Embedding, ..smol_entry(UNUSED) }]);
    let brain = brain(&models, &toml, |_| {});
    let err = brain.chat(1, ask("Hi", 4)).await.err().expect("refused");
    assert!(matches!(err, BrainError::Runtime(RuntimeError::NotForChat)), "{err:?}");
    assert!(err.to_string().contains("cannot write a reply"), "{err}");
    assert_eq!(brain.loaded_model(), None, "refused before loading");
    let vectors = brain
        .embed(EmbedRequest { model_id: SMOL.into(), inputs: vec![EmbedInput::Text("A cat.".into())] })
        .await
        .unwrap();
    assert_eq!(vectors.vectors.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_the_brain_cannot_serve_say_why() {
    let (_dir, models) = installed_copy();
    let toml = to_toml([
        smol_entry(UNUSED),
        entry("other-model", &["http://127.0.0.1:9/x".into()], 10, &hex(&Sha256::digest(b"other"))),
    ]);
    let brain = brain(&models, &toml, |_| {});
    let not_installed =
        brain.chat(1, ChatRequest { model_id: "other-model".into(), ..ask("Hi", 4) }).await.err().unwrap();
    assert!(matches!(&not_installed, BrainError::NotInstalled(id) if id == "other-model"));
    assert!(not_installed.to_string().contains("localbrain download other-model"), "{not_installed}");
    let unknown = brain.chat(1, ChatRequest { model_id: "nope".into(), ..ask("Hi", 4) }).await.err().unwrap();
    assert!(matches!(unknown, BrainError::UnknownModel(_)));
    for (req, why) in [
        (ChatRequest { messages: vec![], ..ask("", 4) }, "at least one message"),
        (ChatRequest { messages: vec![ChatMessage::new(Role::Assistant, "Hi")], ..ask("", 4) }, "must be the user's"),
        (ChatRequest { max_tokens: Some(0), ..ask("Hi", 4) }, "max_tokens"),
        (ChatRequest { temperature: Some(f32::NAN), ..ask("Hi", 4) }, "temperature"),
        (ChatRequest { top_p: Some(0.0), ..ask("Hi", 4) }, "top_p"),
        (ChatRequest { top_p: Some(1.5), ..ask("Hi", 4) }, "top_p"),
        (ChatRequest { stop: vec!["a".into(); 5], ..ask("Hi", 4) }, "at most 4 stop"),
        (ChatRequest { stop: vec![String::new()], ..ask("Hi", 4) }, "stop sequence must be"),
        (ask("nul \0 here", 4), "NUL"),
        (ChatRequest { model_id: "../etc/passwd".into(), ..ask("Hi", 4) }, "catalog model id"),
    ] {
        let err = brain.chat(1, req).await.err().expect("refused");
        assert!(matches!(&err, BrainError::BadRequest(w) if w.contains(why)), "{why}: {err:?}");
    }
    // A conversation longer than the context is refused before anything is generated.
    let long = "word ".repeat(3000);
    let err = brain.chat(1, ask(&long, 4)).await.err().expect("too long");
    assert!(err.to_string().contains("context holds"), "{err}");
    assert!(!brain.is_busy());
}

/// Files that pass the download's hash check but are not models this runtime can run.
#[tokio::test(flavor = "multi_thread")]
async fn bad_files_are_named_never_loaded() {
    let real = std::fs::read(test_model_path()).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated-q4", real[..real.len() / 2].to_vec()),
        ("not-gguf-q4", b"<!doctype html><title>Sign in to continue</title>".repeat(1000)),
        ("alien-arch-q4", gguf::write::minimal("nosucharch", 4096)),
    ];
    let db = TestDb::new().await;
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let mut hosts = Vec::new();
    let mut toml = String::new();
    for (id, bytes) in &cases {
        let host = Fixture::start(bytes.clone()).await;
        toml += &catalog_toml(id, &[host.url("/file")], bytes.len() as u64, &host.sha256());
        hosts.push(host);
    }
    let engine =
        Engine::new(db.db.clone(), Arc::new(Catalog::parse(&toml).unwrap()), fast_config(models.clone())).unwrap();
    for (id, _) in &cases {
        let started = engine.start(admin.id, id).await.unwrap();
        let done = engine.wait_settled(started.id).await.unwrap();
        assert_eq!(done.status, DownloadStatus::Complete, "{id}: the hash matches, so the download completes");
    }
    let brain = brain(&models, &toml, |_| {});
    let expect = |id: &str, e: &GgufError| match id {
        "truncated-q4" => {
            matches!(e, GgufError::Truncated { needed, actual } if *needed == real.len() as u64 && *actual == real.len() as u64 / 2)
        }
        "not-gguf-q4" => matches!(e, GgufError::NotGguf),
        _ => matches!(e, GgufError::UnsupportedArchitecture(a) if a == "nosucharch"),
    };
    for (id, _) in &cases {
        match brain.check(id).await {
            Err(BrainError::Unusable { model_id, source }) => {
                assert_eq!(&model_id, id);
                assert!(expect(id, &source), "{id}: {source:?}");
            }
            other => panic!("{id}: {:?}", other.map(|h| h.facts.clone())),
        }
        let err = brain.chat(1, ChatRequest { model_id: id.to_string(), ..ask("Hi", 4) }).await.err().expect("refused");
        assert!(err.to_string().contains("not a model localbrain can run"), "{id}: {err}");
    }
    let listed = brain.installed().await;
    assert_eq!(listed.len(), 3);
    for m in &listed {
        assert!(m.facts.is_none() && !m.loaded, "{m:?}");
        assert!(m.problem.as_deref().is_some_and(|p| p.contains(&m.model_id)), "{m:?}");
    }
    assert_eq!(brain.loaded_model(), None);
}

/// Every batch size decodes (llama.cpp's graph for a batch of N sequences once asserted when N
/// did not divide its batch of tokens: 3 inputs killed the server).
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_any_size_embeds() {
    let (_dir, models) = installed_copy();
    let brain = brain(&models, &to_toml([smol_entry(UNUSED)]), |_| {});
    let words = ["first", "second text", "a third, longer piece of text", "four", "and a fifth one here"];
    for n in 1..=11 {
        let inputs: Vec<EmbedInput> =
            (0..n).map(|i| EmbedInput::Text(format!("{} {i}", words[i % words.len()]))).collect();
        let out = brain.embed(EmbedRequest { model_id: SMOL.into(), inputs }).await.unwrap();
        assert_eq!(out.vectors.len(), n);
        for v in &out.vectors {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "batch of {n}: length {norm}");
        }
    }
}

/// The KV cache a slot of the test model takes, from its header: what the memory rule counts the
/// slots that fit with (the catalog's estimate by parameters runs about 10x low for it).
#[test]
fn the_headers_cache_size_is_the_models_own() {
    let header = gguf::read(&test_model_path()).unwrap();
    // 30 layers x 3 KV heads x (64 key + 64 value dims) x 2 bytes (f16).
    assert_eq!(header.layout.kv_bytes_per_token, 30 * 3 * (64 + 64) * 2);
    let estimate = localbrain::memory_rule::kv_cache_bytes(&smol_entry("http://unused/m.gguf")) / 4096;
    assert!(header.layout.kv_bytes_per_token > 5 * estimate, "{estimate}");
}
