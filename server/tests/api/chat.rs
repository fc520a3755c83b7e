//! The brain over HTTP, with the real model: `POST /api/chat` streams JSON lines as tokens are
//! generated, Stop and a closed connection both stop the generation on the server (watched
//! through `POST /api/brain`), and every refusal has its status.

use super::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Sends a chat request and returns the open response.
async fn open_chat(s: &Server, user: &User, body: Value) -> reqwest::Response {
    s.http
        .post(format!("{}/api/chat", s.base))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::COOKIE, &user.cookie)
        .timeout(Duration::from_secs(120))
        .json(&body)
        .send()
        .await
        .expect("POST /api/chat")
}

fn ask(text: &str, max_tokens: u32) -> Value {
    json!({ "model_id": SMOL, "messages": [{ "role": "user", "content": text }], "max_tokens": max_tokens, "temperature": 0 })
}

/// Reads JSON lines off a streamed response.
struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
    /// Network chunks read so far.
    chunks: usize,
}

impl Events {
    fn new(resp: reqwest::Response) -> Events {
        Events { resp, buf: Vec::new(), chunks: 0 }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Some(serde_json::from_slice(&line[..nl]).expect("a JSON line"));
            }
            let chunk = self.resp.chunk().await.expect("read the stream")?;
            self.chunks += 1;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Reads to the end: the pieces' text and the last event.
    async fn finish(&mut self) -> (String, Value) {
        let mut text = String::new();
        while let Some(e) = self.next().await {
            match e["type"].as_str() {
                Some("piece") => text.push_str(e["text"].as_str().unwrap()),
                Some("done" | "error") => return (text, e),
                _ => panic!("unexpected event {e}"),
            }
        }
        panic!("the stream ended without done or error");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_streams_as_it_is_generated_and_ends_with_its_numbers() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    let alice = s.admin().await;

    let brain = s.ok(&alice, "brain", json!({})).await;
    let models = brain["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{brain}");
    assert_eq!(models[0]["model_id"], SMOL);
    assert_eq!(models[0]["facts"]["architecture"], "llama");
    assert_eq!(models[0]["facts"]["context_length"], 8192);
    assert_eq!(brain["busy"], false);
    assert_eq!(brain["threads"], 1);

    let resp = open_chat(&s, &alice, ask("Write three sentences about the sea.", 48)).await;
    assert_eq!(resp.status(), 200);
    let mut events = Events::new(resp);
    let started = events.next().await.unwrap();
    assert_eq!(started["type"], "started", "{started}");
    assert_eq!(started["model_id"], SMOL);
    let mut pieces = 0;
    let mut chunks_before_done = 0;
    let mut text = String::new();
    let done = loop {
        let e = events.next().await.expect("an event");
        match e["type"].as_str().unwrap() {
            "piece" => {
                pieces += 1;
                text.push_str(e["text"].as_str().unwrap());
                chunks_before_done = events.chunks;
            }
            "done" => break e,
            other => panic!("{other}: {e}"),
        }
    };
    assert!(!text.trim().is_empty());
    assert!(pieces >= 2, "{pieces} pieces");
    assert!(chunks_before_done >= 2, "the pieces arrived over several network reads, not in one buffered body");
    let stats = &done["stats"];
    assert!(matches!(stats["finish"].as_str(), Some("stop" | "length")), "{done}");
    assert!(stats["generated_tokens"].as_u64().unwrap() >= 1);
    assert!(stats["tokens_per_second"].as_f64().unwrap() > 0.0, "{done}");
    assert!(events.next().await.is_none(), "nothing after done");
    assert!(s.ok(&alice, "brain", json!({})).await["models"][0]["loaded"].as_bool().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_connection_stops_the_generation_on_the_server() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    let alice = s.admin().await;
    let token = s.token_time(&alice).await;
    let mut events = Events::new(open_chat(&s, &alice, ask("Write a very long story about a dragon.", 900)).await);
    while events.next().await.unwrap()["type"] != "piece" {}
    assert!(s.busy(&alice).await, "generating");
    drop(events); // the browser tab closes
    s.freed_after_leaving(&alice, token).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_the_reply_and_only_its_owner_can_stop_it() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    let alice = s.admin().await;
    let bob = s.add_user("bob").await;
    let mut events = Events::new(open_chat(&s, &alice, ask("Write a very long story about a dragon.", 900)).await);
    let id = events.next().await.unwrap()["id"].as_i64().unwrap();
    while events.next().await.unwrap()["type"] != "piece" {}
    assert_eq!(s.ok(&bob, "chat/stop", json!({ "id": id })).await, json!(false), "bob cannot stop alice's reply");
    assert_eq!(s.ok(&alice, "chat/stop", json!({ "id": id })).await, json!(true));
    let (_, last) = events.finish().await;
    assert_eq!(last["type"], "done", "{last}");
    assert_eq!(last["stats"]["finish"], "cancelled", "{last}");
    assert!(last["stats"]["generated_tokens"].as_u64().unwrap() < 900);
    assert!(!s.busy(&alice).await);
    assert_eq!(s.ok(&alice, "chat/stop", json!({ "id": id })).await, json!(false), "already ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_come_with_their_status_and_plain_words() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let alice = s.admin().await;

    let a = s.call(None, "chat", ask("Hi", 4)).await;
    assert_eq!(a.status, 401, "{}", a.text);
    let a = s.call(None, "brain", json!({})).await;
    assert_eq!(a.status, 401, "{}", a.text);

    let a = s.call(Some(&alice), "chat", ask("Hi", 4)).await;
    assert_eq!(a.status, 404, "not installed: {}", a.text);
    assert!(a.error().contains(&format!("localbrain download {SMOL}")), "{}", a.text);

    for (body, why) in [
        (
            json!({ "model_id": "../../etc/passwd", "messages": [{ "role": "user", "content": "Hi" }] }),
            "catalog model id",
        ),
        (json!({ "model_id": SMOL, "messages": [] }), "at least one message"),
        (json!({ "model_id": SMOL, "messages": [{ "role": "wizard", "content": "Hi" }] }), "bad request"),
        (json!({ "model_id": SMOL }), "bad request"),
    ] {
        let a = s.call(Some(&alice), "chat", body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert!(a.error().contains(why), "{body}: {}", a.text);
    }
    let a = s
        .call(
            Some(&alice),
            "chat",
            json!({ "model_id": "no-such-model", "messages": [{ "role": "user", "content": "Hi" }] }),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);

    // Installed, but the file is a web page that happened to have the right name.
    std::fs::create_dir_all(s.installed_path(SMOL).parent().unwrap()).unwrap();
    std::fs::write(s.installed_path(SMOL), b"<html>Please sign in</html>").unwrap();
    let a = s.call(Some(&alice), "chat", ask("Hi", 4)).await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(a.error().contains("not a model localbrain can run") && a.error().contains("not a GGUF"), "{}", a.text);
    let brain = s.ok(&alice, "brain", json!({})).await;
    assert!(brain["models"][0]["problem"].as_str().unwrap().contains("not a GGUF"), "{brain}");
    assert!(brain["models"][0]["facts"].is_null(), "{brain}");
}

/// `POST /api/catalog` carries the machine's measured facts and a speed per model; after a
/// chat, that model's speed is the measured one (measured beats predicted).
#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_shows_predicted_speeds_then_a_chats_measured_one() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    let alice = s.admin().await;
    let speed_of = |catalog: &Value, id: &str| {
        catalog["recommendation"]["fits"].as_array().unwrap().iter().find(|f| f["model_id"] == id).unwrap()["speed"]
            .clone()
    };

    let catalog = s.ok(&alice, "catalog", json!({})).await;
    let hw = &catalog["hardware"];
    assert!(hw["memory_bandwidth_gbps"].as_f64().unwrap() > 0.0, "{hw}");
    assert_eq!(hw["threads"], 1);
    assert!(hw["cpu_model"].is_string() && hw["simd"].is_string(), "{hw}");
    assert_eq!(catalog["speed"]["usable_tokens_per_second"], 8.0);
    assert_eq!(speed_of(&catalog, SMOL)["source"], "predicted", "{catalog}");

    let resp = open_chat(&s, &alice, ask("Write a very long story about a dragon.", 32)).await;
    let mut events = Events::new(resp);
    assert_eq!(events.next().await.unwrap()["type"], "started");
    let (_, done) = events.finish().await;
    assert!(done["stats"]["generated_tokens"].as_u64().unwrap() >= 16, "long enough to be recorded: {done}");

    let catalog = s.ok(&alice, "catalog", json!({})).await;
    let speed = speed_of(&catalog, SMOL);
    assert_eq!(speed["source"], "measured", "{catalog}");
    assert_eq!(speed["tokens_per_second"], done["stats"]["tokens_per_second"], "{catalog}");
}

/// `--usable-speed` (here through its environment variable) decides what counts as slow.
#[tokio::test(flavor = "multi_thread")]
async fn the_usable_speed_is_a_setting() {
    let host = model_host().await;
    let s = Server::start_with(&host, &[("LOCALBRAIN_USABLE_SPEED", "10000")]).await;
    let alice = s.admin().await;
    let catalog = s.ok(&alice, "catalog", json!({})).await;
    let reason = catalog["recommendation"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("nothing that fits runs at 10000 tokens/s here"), "{reason}");
    let fits = catalog["recommendation"]["fits"].as_array().unwrap();
    assert!(fits.iter().filter(|f| f["fit"] == "fits").all(|f| f["slow"] == true), "{catalog}");
}
