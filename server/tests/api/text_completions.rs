//! `POST /v1/completions` (the legacy shape editors call) and log-probabilities on chat,
//! against the real binary and model: a prompt continued as it is, echo, several prompts,
//! top-N logprobs that agree with greedy sampling, streaming, seeds, and each refusal in words.

use super::harness::*;
use super::openai::{error_message, make_key, v1};
use serde_json::{Value, json};
use std::time::Duration;

/// A streamed `/v1` answer's events: the JSON chunks, and whether it ended with `[DONE]`.
pub(crate) async fn sse(s: &Server, key: &str, path: &str, body: Value) -> (Vec<Value>, bool) {
    let resp = s
        .http
        .post(format!("{}/v1/{path}", s.base))
        .bearer_auth(key)
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let data: Vec<&str> =
        text.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.strip_prefix("data: ").expect(e)).collect();
    let done = data.last() == Some(&"[DONE]");
    let chunks = data.iter().filter(|d| **d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    (chunks, done)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_is_continued_as_it_is_in_the_legacy_shape() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "editor");
    let complete = |body: Value| {
        let (s, key) = (&s, &key);
        async move { v1(s, Some(key), "POST", "completions", Some(body)).await }
    };
    let prompt = "def fibonacci(n):\n    ";

    // Whole, OpenAI's default of 16 tokens.
    let (status, _, c) = complete(json!({ "model": SMOL, "prompt": prompt, "temperature": 0 })).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["object"], "text_completion");
    assert!(c["id"].as_str().unwrap().starts_with("cmpl-"), "{c}");
    let choice = &c["choices"][0];
    assert_eq!(choice["index"], 0);
    assert!(!choice["text"].as_str().unwrap().is_empty(), "{c}");
    assert!(matches!(choice["finish_reason"].as_str(), Some("stop" | "length")), "{c}");
    assert!(choice["logprobs"].is_null(), "{c}");
    let u = &c["usage"];
    assert!(u["completion_tokens"].as_u64().unwrap() <= 16 && u["prompt_tokens"].as_u64().unwrap() >= 5, "{u}");
    // No chat template around it: the prompt is its own tokens (a chat turn would add a dozen).
    assert!(u["prompt_tokens"].as_u64().unwrap() < 12, "{u}");
    let greedy = choice["text"].as_str().unwrap().to_string();

    // Echo puts the prompt in front; a seed makes a sampled answer repeatable.
    let (_, _, c) = complete(json!({ "model": SMOL, "prompt": prompt, "temperature": 0, "echo": true })).await;
    assert_eq!(c["choices"][0]["text"].as_str().unwrap(), format!("{prompt}{greedy}"), "{c}");
    let seeded =
        json!({ "model": SMOL, "prompt": "Once upon a time", "temperature": 1.0, "seed": 7, "max_tokens": 12 });
    let (_, _, a) = complete(seeded.clone()).await;
    let (_, _, b) = complete(seeded).await;
    assert_eq!(a["choices"][0]["text"], b["choices"][0]["text"], "the same seed, another answer");

    // Several prompts: one choice each, in order, written side by side; usage adds up.
    let (status, _, c) = complete(
        json!({ "model": SMOL, "prompt": [prompt, "The capital of France is"], "max_tokens": 6, "temperature": 0 }),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    let choices = c["choices"].as_array().unwrap();
    assert_eq!(choices.iter().map(|c| c["index"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1]);
    assert!(greedy.starts_with(choices[0]["text"].as_str().unwrap()), "{c}");
    assert!(c["usage"]["completion_tokens"].as_u64().unwrap() <= 12, "{c}");

    // Log-probabilities: one entry per token; at temperature 0 each token is its place's likeliest.
    let (status, _, c) =
        complete(json!({ "model": SMOL, "prompt": prompt, "temperature": 0, "max_tokens": 8, "logprobs": 3 })).await;
    assert_eq!(status, 200, "{c}");
    let lp = &c["choices"][0]["logprobs"];
    let tokens = lp["tokens"].as_array().unwrap();
    let n = tokens.len();
    assert!(n >= 1 && n as u64 <= c["usage"]["completion_tokens"].as_u64().unwrap(), "{c}");
    assert_eq!((lp["token_logprobs"].as_array().unwrap().len(), lp["top_logprobs"].as_array().unwrap().len()), (n, n));
    let joined: String = tokens.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, c["choices"][0]["text"].as_str().unwrap(), "the tokens spell the text");
    let offsets: Vec<u64> = lp["text_offset"].as_array().unwrap().iter().map(|o| o.as_u64().unwrap()).collect();
    assert_eq!(offsets[0], 0);
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    for i in 0..n {
        let chosen = lp["token_logprobs"][i].as_f64().unwrap();
        let top = lp["top_logprobs"][i].as_object().unwrap();
        assert!(!top.is_empty() && top.len() <= 3, "{top:?}");
        let best = top.values().map(|v| v.as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
        assert!(chosen <= 0.0 && (best - chosen).abs() < 1e-4, "token {i}: {chosen} vs the top {best}");
    }

    // Streamed: text_completion chunks that spell the greedy answer, the usage, [DONE].
    let (chunks, done) = sse(
        &s,
        &key,
        "completions",
        json!({ "model": SMOL, "prompt": prompt, "temperature": 0, "stream": true, "stream_options": { "include_usage": true } }),
    )
    .await;
    assert!(done);
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"), "{chunks:?}");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
    assert_eq!(text, greedy);
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"].is_string()));
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert!(chunks.last().unwrap()["usage"]["completion_tokens"].as_u64().unwrap() >= 1);

    // Each refusal in words.
    for (body, words) in [
        (json!({ "model": SMOL, "prompt": "x", "suffix": "y" }), "fill-in-the-middle"),
        (json!({ "model": SMOL, "prompt": "x", "echo": true, "logprobs": 1 }), "echo with logprobs"),
        (json!({ "model": SMOL, "prompt": [1, 2, 3] }), "token arrays"),
        (json!({ "model": SMOL, "prompt": "x", "n": 2 }), "n and best_of must be 1"),
        (json!({ "model": SMOL, "prompt": "x", "logprobs": 21 }), "at most 20"),
        (json!({ "model": SMOL, "prompt": "" }), "the prompt is empty"),
        (json!({ "model": SMOL, "prompt": [] }), "send 1 to 16 prompts"),
        (json!({ "model": SMOL }), "prompt"),
    ] {
        let (status, _, e) = complete(body.clone()).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(error_message(&e).contains(words), "{body}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_answers_carry_logprobs_when_asked() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "lp");
    let body = json!({ "model": SMOL, "messages": [{ "role": "user", "content": "Name a colour." }], "max_tokens": 6,
        "temperature": 0, "logprobs": true, "top_logprobs": 2 });
    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(body.clone())).await;
    assert_eq!(status, 200, "{c}");
    let content = c["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert!(!content.is_empty(), "{c}");
    let joined: String = content.iter().map(|t| t["token"].as_str().unwrap()).collect();
    assert_eq!(joined, c["choices"][0]["message"]["content"].as_str().unwrap());
    for t in content {
        let top = t["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 2, "{t}");
        assert_eq!(t["bytes"].as_array().unwrap().len(), t["token"].as_str().unwrap().len(), "{t}");
        assert!((top[0]["logprob"].as_f64().unwrap() - t["logprob"].as_f64().unwrap()).abs() < 1e-4, "greedy: {t}");
        assert!(top[0]["logprob"].as_f64() >= top[1]["logprob"].as_f64(), "{t}");
    }
    // Without logprobs: null, as before.
    let (_, _, plain) = v1(
        &s,
        Some(&key),
        "POST",
        "chat/completions",
        Some(json!({ "model": SMOL,
        "messages": [{ "role": "user", "content": "Hi" }], "max_tokens": 2 })),
    )
    .await;
    assert!(plain["choices"][0]["logprobs"].is_null(), "{plain}");
    // Streamed: each piece's chunk carries its tokens.
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let (chunks, done) = sse(&s, &key, "chat/completions", streamed).await;
    assert!(done);
    let entries: usize = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty()))
        .map(|c| c["choices"][0]["logprobs"]["content"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(entries, content.len(), "{chunks:?}");
}
