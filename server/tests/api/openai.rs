//! The OpenAI-compatible API (`/v1`) against the real binary and the real model: API keys made
//! with `localbrain key add`, the answer shapes (whole and streamed, read raw by `curl -N`),
//! errors in OpenAI's shape with honest statuses, the shared queue (429, never a hang), a
//! client going away mid-stream freeing the brain, CORS only where configured, and the
//! official `openai` Python client (tests/clients/openai_client.py) end to end.

use super::harness::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `localbrain key add USER NAME`: the secret, alone on stdout's last line.
pub(crate) fn make_key(s: &Server, user: &str, name: &str) -> String {
    let out = s.command().args(["key", "add", user, name]).stdin(Stdio::null()).output().expect("run key add");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "key add: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let key = stdout.lines().last().expect("a last line").trim().to_string();
    assert!(key.starts_with("lb-") && key.len() == 67, "{key:?}");
    key
}

fn ask(text: &str, max_tokens: u32) -> Value {
    json!({ "model": SMOL, "messages": [{ "role": "user", "content": text }], "max_tokens": max_tokens, "temperature": 0 })
}

/// A `/v1` call with an optional key; status, headers and JSON body.
pub(crate) async fn v1(
    s: &Server,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req =
        s.http.request(method.parse().unwrap(), format!("{}/v1/{path}", s.base)).timeout(Duration::from_secs(120));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("a /v1 call");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Asserts OpenAI's error shape and returns its message.
pub(crate) fn error_message(body: &Value) -> &str {
    let e = &body["error"];
    assert!(
        e["type"].is_string() && e.get("code").is_some() && e.get("param").is_some(),
        "not OpenAI's error shape: {body}"
    );
    e["message"].as_str().unwrap_or_else(|| panic!("no message: {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn models_and_a_whole_completion_in_openais_shape() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.admin().await;
    let key = make_key(&s, "admin", "laptop");

    let (status, _, list) = v1(&s, Some(&key), "GET", "models", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"], json!([]), "nothing installed yet");
    s.install_smol();
    let (_, _, list) = v1(&s, Some(&key), "GET", "models", None).await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(
        (data[0]["id"].as_str(), data[0]["object"].as_str(), data[0]["owned_by"].as_str()),
        (Some(SMOL), Some("model"), Some("localbrain"))
    );
    assert!(data[0]["created"].as_u64().unwrap() > 1_700_000_000, "{list}");

    let (status, _, c) =
        v1(&s, Some(&key), "POST", "chat/completions", Some(ask("What is the capital of France?", 24))).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["object"], "chat.completion");
    assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"), "{c}");
    assert_eq!(c["model"], SMOL);
    let choice = &c["choices"][0];
    assert_eq!((choice["index"].as_u64(), choice["message"]["role"].as_str()), (Some(0), Some("assistant")));
    assert!(!choice["message"]["content"].as_str().unwrap().trim().is_empty(), "{c}");
    assert!(matches!(choice["finish_reason"].as_str(), Some("stop" | "length")), "{c}");
    let u = &c["usage"];
    let (p, g, t) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["total_tokens"].as_u64().unwrap(),
    );
    assert!(p > 5 && (1..=24).contains(&g) && t == p + g, "{u}");
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0, "a fresh server has nothing cached: {u}");
    let answer = choice["message"]["content"].as_str().unwrap().to_string();

    // The client sends the conversation again with its next question, as OpenAI clients do:
    // everything up to the first answer is read from the cache, not again.
    let mut next = ask("What is the capital of France?", 8);
    next["messages"].as_array_mut().unwrap().extend([
        json!({ "role": "assistant", "content": answer }),
        json!({ "role": "user", "content": "And of Italy?" }),
    ]);
    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(next)).await;
    assert_eq!(status, 200, "{c}");
    let cached = c["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    assert!(cached >= p && cached < c["usage"]["prompt_tokens"].as_u64().unwrap(), "turn 1 had {p} prompt tokens: {c}");

    // A system message, a stop sequence, top_p and a seed are taken; a tight limit says "length".
    let body = json!({ "model": SMOL, "max_tokens": 3, "temperature": 0.5, "top_p": 0.9, "seed": 42, "stop": ["\n\n"],
        "messages": [{ "role": "system", "content": "You are terse." }, { "role": "user", "content": "Write a long story about a dragon." }] });
    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(body)).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["choices"][0]["finish_reason"], "length", "{c}");
    assert_eq!(c["usage"]["completion_tokens"], 3, "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_completion_is_server_sent_events_as_curl_reads_them() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "curl");
    let mut body = ask("Write three sentences about the sea.", 48);
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let mut curl = Command::new("curl")
        .args([
            "-N",
            "-sS",
            "--fail-with-body",
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", &body.to_string(), &format!("{}/v1/chat/completions", s.base)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    // Each line with when it arrived.
    let lines: Vec<(Instant, String)> =
        BufReader::new(curl.stdout.take().unwrap()).lines().map(|l| (Instant::now(), l.unwrap())).collect();
    assert!(curl.wait().unwrap().success());
    // Framing: `data: ...` lines, each followed by a blank line, ending with [DONE].
    for pair in lines.chunks(2) {
        assert!(pair[0].1.starts_with("data: "), "{:?}", pair[0].1);
        assert_eq!(pair.get(1).map(|l| l.1.as_str()), Some(""), "an event ends with a blank line");
    }
    let data: Vec<(Instant, &str)> = lines.iter().step_by(2).map(|(t, l)| (*t, &l["data: ".len()..])).collect();
    assert_eq!(data.last().unwrap().1, "[DONE]");
    let chunks: Vec<(Instant, Value)> =
        data[..data.len() - 1].iter().map(|(t, d)| (*t, serde_json::from_str(d).expect("a JSON chunk"))).collect();
    for (_, c) in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["model"], SMOL);
        assert_eq!(c["id"], chunks[0].1["id"], "one id for the whole answer");
    }
    assert_eq!(chunks[0].1["choices"][0]["delta"]["role"], "assistant");
    let pieces: Vec<&(Instant, Value)> = chunks
        .iter()
        .filter(|(_, c)| c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty()))
        .collect();
    assert!(pieces.len() >= 2, "{chunks:?}");
    let text: String = pieces.iter().map(|(_, c)| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert!(!text.trim().is_empty());
    let (finish_at, finish) =
        chunks.iter().find(|(_, c)| c["choices"][0]["finish_reason"].is_string()).expect("a finish chunk");
    assert!(matches!(finish["choices"][0]["finish_reason"].as_str(), Some("stop" | "length")), "{finish}");
    // The pieces were written as generated: the first arrived well before the last.
    assert!(finish_at.duration_since(pieces[0].0) >= Duration::from_millis(50), "the answer came in one burst");
    let usage = &chunks.last().unwrap().1;
    assert_eq!(usage["choices"], json!([]), "{usage}");
    // A piece is one token or more, except the held-back tail written at the end.
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() + 1 >= pieces.len() as u64, "{usage}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_live_key_gets_in_and_only_to_v1() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    let key = make_key(&s, "admin", "script");

    for (what, auth) in [
        ("no key", None),
        ("a made-up key", Some(format!("lb-{}", "0".repeat(64)))),
        ("a key with one character changed", Some(format!("{}x", &key[..key.len() - 1]))),
    ] {
        let (status, headers, body) = v1(&s, auth.as_deref(), "GET", "models", None).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(headers["www-authenticate"], "Bearer", "{what}");
        assert_eq!(body["error"]["code"], "invalid_api_key", "{what}: {body}");
        assert!(!error_message(&body).is_empty());
    }
    // A browser session is not a key.
    let r = s.http.get(format!("{}/v1/models", s.base)).header("cookie", &admin.cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A key is not a session: the app's own API does not take it.
    let r = s.http.post(format!("{}/api/brain", s.base)).bearer_auth(&key).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let (status, _, _) = v1(&s, Some(&key), "GET", "models", None).await;
    assert_eq!(status, 200);
    let (status, _, body) = v1(&s, Some(&key), "POST", "audio/speech", Some(json!({}))).await;
    assert_eq!(status, 404, "{body}");
    assert!(error_message(&body).contains("/v1/chat/completions"), "{body}");

    // Revoked: refused at once, and the key is never written to the log.
    let out = s.command().args(["key", "revoke", "admin", "script"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, _, body) = v1(&s, Some(&key), "GET", "models", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!s.log_text().contains(&key[3..]), "the key is in the server log");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_sending_wrong_keys_is_slowed_and_not_logged_but_a_valid_key_gets_in() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.admin().await;
    let key = make_key(&s, "admin", "editor");
    let wrong = format!("lb-{}", "7".repeat(64));
    // The revoked key a client keeps retrying: 10 401s, each logged, then 429s.
    for attempt in 1..=10 {
        let (status, _, body) = v1(&s, Some(&wrong), "GET", "models", None).await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    let logged = s.log_text().matches("unknown or revoked key").count();
    assert_eq!(logged, 10, "each of the first wrong keys is logged");
    for _ in 0..20 {
        let (status, headers, body) = v1(&s, Some(&wrong), "GET", "models", None).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "too_many_bad_keys", "{body}");
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((500..=600).contains(&wait), "Retry-After counts down the 10-minute window: {wait}");
    }
    assert_eq!(s.log_text().matches("unknown or revoked key").count(), logged, "the refused ones are not logged");
    // The same address with a valid key is not locked out.
    let (status, _, body) = v1(&s, Some(&key), "GET", "models", None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_say_what_is_wrong_with_honest_statuses() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "tests");
    let user = |text: &str| json!([{ "role": "user", "content": text }]);
    for (body, status, words) in [
        (json!({ "messages": user("Hi") }), 400, "model"),
        (json!({ "model": SMOL }), 400, "messages"),
        (json!({ "model": SMOL, "messages": "Hi" }), 400, "messages"),
        (json!({ "model": SMOL, "messages": [] }), 400, "at least one message"),
        (json!({ "model": SMOL, "messages": user("Hi"), "temperature": 5 }), 400, "temperature"),
        (json!({ "model": SMOL, "messages": user("Hi"), "top_p": 0 }), 400, "top_p"),
        (json!({ "model": SMOL, "messages": user("Hi"), "max_tokens": -1 }), 400, "max_tokens"),
        (json!({ "model": SMOL, "messages": user("Hi"), "stop": ["a", "b", "c", "d", "e"] }), 400, "stop"),
        (json!({ "model": SMOL, "messages": user("Hi"), "n": 2 }), 400, "n must be 1"),
        (
            json!({ "model": SMOL, "messages": [{ "role": "tool", "content": "x" }] }),
            400,
            "must follow an assistant message with tool_calls",
        ),
        (json!({ "model": "no-such-model", "messages": user("Hi") }), 404, "localbrain download no-such-model"),
        (json!({ "model": ALPHA, "messages": user("Hi") }), 404, &format!("localbrain download {ALPHA}")),
    ] {
        let (got, _, answer) = v1(&s, Some(&key), "POST", "chat/completions", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(error_message(&answer).contains(words), "{body}: {answer}");
    }
    let r = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(&key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let big = json!({ "model": SMOL, "messages": user(&"a".repeat(2 * 1024 * 1024)) });
    let (status, _, answer) = v1(&s, Some(&key), "POST", "chat/completions", Some(big)).await;
    assert_eq!(status, 413, "{answer}");
    error_message(&answer);
    assert!(!s.log_text().is_empty());
}

/// One reply at a time, eight waiting: with one being written, of nine more at once exactly one
/// is told 429 with Retry-After; the others all end, none hangs.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_429_and_every_request_ends() {
    one_refused_of(&[("LOCALBRAIN_PARALLEL", "1")], 9).await;
}

/// `--queue-limit` sets how many may wait: with 1, of two more at once one waits and one is told.
#[tokio::test(flavor = "multi_thread")]
async fn the_queue_limit_is_a_setting() {
    one_refused_of(&[("LOCALBRAIN_QUEUE_LIMIT", "1"), ("LOCALBRAIN_PARALLEL", "1")], 2).await;
}

/// While one long answer is written in the one slot, `crowd` more requests at once (one more
/// than the queue holds): exactly one is told 429 at once, with how many wait, and once the long
/// answer goes the rest are answered.
async fn one_refused_of(env: &[(&str, &str)], crowd: usize) {
    let host = model_host().await;
    let s = std::sync::Arc::new(Server::start_with(&host, env).await);
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "crowd");
    let mut long = ask("Write a very long story about a dragon.", 900);
    long["stream"] = json!(true);
    let mut writing =
        s.http.post(format!("{}/v1/chat/completions", s.base)).bearer_auth(&key).json(&long).send().await.unwrap();
    assert_eq!(writing.status().as_u16(), 200);
    writing.chunk().await.unwrap().expect("the first chunk");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..crowd {
        let (s, key) = (s.clone(), key.clone());
        tasks
            .spawn(async move { v1(&s, Some(&key), "POST", "chat/completions", Some(ask("Count to five.", 4))).await });
    }
    // The refused one answers at once, while the long answer is still being written.
    let (status, headers, body) =
        tokio::time::timeout(Duration::from_secs(60), tasks.join_next()).await.unwrap().unwrap().unwrap();
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "queue_full", "{body}");
    let words = format!("({} waiting, 1 written at a time)", crowd - 1);
    assert!(body["error"]["message"].as_str().unwrap().contains(&words), "{body}");
    assert!(headers["retry-after"].to_str().unwrap().parse::<u32>().unwrap() >= 1);
    drop(writing);
    let mut served = 0;
    while let Some(done) =
        tokio::time::timeout(Duration::from_secs(180), tasks.join_next()).await.expect("no request hangs")
    {
        let (status, _, body) = done.unwrap();
        assert_eq!(status, 200, "{body}");
        served += 1;
    }
    assert_eq!(served, crowd - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_mid_stream_frees_the_brain_within_a_token() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    let admin = s.admin().await;
    let key = make_key(&s, "admin", "leaver");
    let token = s.token_time(&admin).await;
    let mut body = ask("Write a very long story about a dragon.", 900);
    body["stream"] = json!(true);
    let mut resp =
        s.http.post(format!("{}/v1/chat/completions", s.base)).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut seen = String::new();
    while seen.matches("\"content\"").count() < 3 {
        seen.push_str(&String::from_utf8_lossy(&resp.chunk().await.unwrap().expect("more of the stream")));
    }
    assert!(s.busy(&admin).await, "generating");
    drop(resp);
    s.freed_after_leaving(&admin, token).await;
    // And the next request is served at once.
    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(ask("Hi", 4))).await;
    assert_eq!(status, 200, "{c}");
}

/// The same for a whole (non-streamed) answer: nothing has been sent when the client goes, and
/// the server notices the closed connection all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_before_a_whole_answer_frees_the_brain() {
    let host = model_host().await;
    let s = std::sync::Arc::new(Server::start(&host).await);
    s.install_smol();
    let admin = s.admin().await;
    let key = make_key(&s, "admin", "impatient");
    let token = s.token_time(&admin).await;
    let asking = {
        let (s, key) = (s.clone(), key.clone());
        tokio::spawn(async move {
            let long = ask("Write a very long story about a dragon.", 900);
            v1(&s, Some(&key), "POST", "chat/completions", Some(long)).await
        })
    };
    wait_for("the answer to be written", Duration::from_secs(30), || async { s.busy(&admin).await.then_some(()) })
        .await;
    asking.abort();
    assert!(asking.await.unwrap_err().is_cancelled());
    s.freed_after_leaving(&admin, token).await;
    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(ask("Hi", 4))).await;
    assert_eq!(status, 200, "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_get_in_only_from_the_origins_listed() {
    const APP: &str = "http://notebook.example:8888";
    let host = model_host().await;
    let s = Server::start_with(&host, &[("LOCALBRAIN_CORS_ORIGINS", APP)]).await;
    let plain = Server::start(&host).await;
    s.admin().await;
    plain.admin().await;
    for server in [&s, &plain] {
        let key = make_key(server, "admin", "browser");
        let listed = std::ptr::eq(server, &s);
        let preflight = server
            .http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/chat/completions", server.base))
            .header("origin", APP)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        let call = server
            .http
            .get(format!("{}/v1/models", server.base))
            .header("origin", APP)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let post = server
            .http
            .post(format!("{}/v1/chat/completions", server.base))
            .header("origin", "http://elsewhere.example")
            .bearer_auth(&key)
            .json(&ask("Hi", 2))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status().as_u16(), 403, "an unlisted origin's POST");
        assert!(post.headers().get("access-control-allow-origin").is_none());
        let refused: Value = post.json().await.unwrap();
        assert_eq!(refused["error"]["code"], "origin_not_allowed", "in OpenAI's shape: {refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("--cors-origin http://elsewhere.example"));
        // A page on another name that resolves here (DNS rebinding) is refused, also in that shape.
        let rebound = server
            .http
            .get(format!("{}/v1/models", server.base))
            .header("host", "rebound.example")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(rebound.status().as_u16(), 421);
        let refused: Value = rebound.json().await.unwrap();
        assert_eq!(refused["error"]["message"], "unknown Host");
        if listed {
            assert_eq!(preflight.status().as_u16(), 204);
            assert_eq!(preflight.headers()["access-control-allow-origin"], APP);
            assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
            assert_eq!(call.status().as_u16(), 200);
            assert_eq!(call.headers()["access-control-allow-origin"], APP);
        } else {
            assert_ne!(preflight.status().as_u16(), 204, "no CORS by default");
            assert!(preflight.headers().get("access-control-allow-origin").is_none());
            assert!(call.headers().get("access-control-allow-origin").is_none());
        }
    }
}

/// Runs `script` (in tests/clients) with the venv's Python against a fresh server with the test
/// model: the report (unittest's, on stderr) must say `Ran {tests} tests` and OK.
async fn python_client_suite(script: &str, tests: usize) {
    let tools = std::env::var("LOCALBRAIN_TOOLS")
        .unwrap_or_else(|_| format!("{}/.cache/localbrain/tools", std::env::var("HOME").unwrap()));
    let python = format!("{tools}/openai-venv/bin/python");
    assert!(std::path::Path::new(&python).exists(), "{python} is missing: run `scripts/install-tools.sh test`");
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.install_tools_model();
    s.admin().await;
    let key = make_key(&s, "admin", "python");
    let script = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let base = format!("{}/v1", s.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg("-v")
            .env("OPENAI_BASE_URL", base)
            .env("OPENAI_API_KEY", key)
            .env("LOCALBRAIN_MODEL", SMOL)
            .env("LOCALBRAIN_TOOLS_MODELS", format!("{SMOL_TOOLS},{SMOL_LLAMA3_TOOLS}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    // The server's log beside the client's report: a failure shows both sides.
    assert!(
        out.status.success(),
        "the client suite failed:\n{report}\n{}\nthe server's log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        s.log_text()
    );
    assert!(report.contains(&format!("Ran {tests} tests")) && report.contains("OK"), "{report}");
}

/// The official `openai` Python package (install-tools.sh puts it in a venv) against the server.
#[tokio::test(flavor = "multi_thread")]
async fn the_official_openai_python_client_works() {
    python_client_suite("openai_client.py", 10).await;
}

/// `langchain-openai` (in the same venv): embeddings and structured output, as RAG programs call them.
#[tokio::test(flavor = "multi_thread")]
async fn langchain_openai_works() {
    python_client_suite("langchain_client.py", 3).await;
}
