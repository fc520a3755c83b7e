//! Kept conversations over HTTP with the real model: a chat sent with a conversation id is
//! written into it (the question before the reply, the reply when it ends), survives a restart,
//! is listed newest first, and is another user's 404 on every endpoint.

use super::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Sends a chat turn into conversation `id` and reads the reply to its end: (text, last event).
async fn turn(s: &Server, user: &User, id: i64, messages: &Value) -> (String, Value) {
    let body =
        json!({ "model_id": SMOL, "messages": messages, "max_tokens": 16, "temperature": 0, "conversation_id": id });
    let resp = s
        .http
        .post(format!("{}/api/chat", s.base))
        .header(reqwest::header::COOKIE, &user.cookie)
        .timeout(Duration::from_secs(120))
        .json(&body)
        .send()
        .await
        .expect("POST /api/chat");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.unwrap();
    let mut text = String::new();
    let mut last = Value::Null;
    for line in body.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        match e["type"].as_str() {
            Some("piece") => text.push_str(e["text"].as_str().unwrap()),
            Some("done" | "error") => last = e,
            _ => {}
        }
    }
    (text, last)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_conversation_survives_a_restart_and_is_only_its_owners() {
    let host = model_host().await;
    let mut s = Server::start(&host).await;
    s.install_smol();
    let alice = s.admin().await;
    assert_eq!(s.ok(&alice, "conversations", json!({})).await, json!({ "list": [], "open": null }));

    // Refused in words: a bad model id, an empty question, signed out.
    let bad = s.call(Some(&alice), "conversations/start", json!({ "model_id": "../x", "question": "Hi" })).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let empty = s.call(Some(&alice), "conversations/start", json!({ "model_id": SMOL, "question": "  " })).await;
    assert_eq!(empty.status, 400, "{}", empty.text);
    assert_eq!(s.call(None, "conversations", json!({})).await.status, 401);

    let started =
        s.ok(&alice, "conversations/start", json!({ "model_id": SMOL, "question": "Name a colour.\nThanks" })).await;
    let id = started["id"].as_i64().unwrap();
    assert_eq!(started["title"], "Name a colour.");
    let mut messages = json!([{ "role": "user", "content": "Name a colour." }]);
    let (reply, done) = turn(&s, &alice, id, &messages).await;
    assert_eq!(done["type"], "done", "{done}");
    assert!(!reply.is_empty());
    messages.as_array_mut().unwrap().push(json!({ "role": "assistant", "content": reply }));

    // After a kill -9 and a new start, the conversation is there, whole, as the latest.
    s.restart();
    let alice = s.login("admin", &s.user_login_link("admin")).await;
    let view = s.ok(&alice, "conversations", json!({})).await;
    assert_eq!(view["list"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["open"]["summary"]["id"], id);
    assert_eq!(view["open"]["summary"]["model_id"], SMOL);
    assert_eq!(view["open"]["messages"], messages);

    // A second turn goes on in it; a second conversation is listed first.
    messages.as_array_mut().unwrap().push(json!({ "role": "user", "content": "Another one?" }));
    let (more, _) = turn(&s, &alice, id, &messages).await;
    messages.as_array_mut().unwrap().push(json!({ "role": "assistant", "content": more }));
    assert_eq!(s.ok(&alice, "conversations/open", json!({ "id": id })).await["messages"], messages);
    let second = s.ok(&alice, "conversations/start", json!({ "model_id": SMOL, "question": "Hi" })).await;
    let listed: Vec<i64> = s.ok(&alice, "conversations", json!({})).await["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![second["id"].as_i64().unwrap(), id]);

    // Bob: none listed, Alice's reads as missing, and he cannot write into it.
    let bob = s.add_user("bob").await;
    assert_eq!(s.ok(&bob, "conversations", json!({})).await, json!({ "list": [], "open": null }));
    let missing = s.call(Some(&bob), "conversations/open", json!({ "id": id + 1000 })).await;
    let hers = s.call(Some(&bob), "conversations/open", json!({ "id": id })).await;
    assert_eq!((missing.status, hers.status), (404, 404));
    assert_eq!(hers.error().replace(&id.to_string(), "N"), missing.error().replace(&(id + 1000).to_string(), "N"));
    let body =
        json!({ "model_id": SMOL, "messages": [{ "role": "user", "content": "Mine now" }], "conversation_id": id });
    let write = s.call(Some(&bob), "chat", body).await;
    assert_eq!(write.status, 404, "{}", write.text);
    assert_eq!(s.ok(&alice, "conversations/open", json!({ "id": id })).await["messages"], messages, "unchanged");
    // Reopened, it is the latest again: a reload shows it.
    let view = s.ok(&alice, "conversations", json!({})).await;
    assert_eq!(view["list"][0]["id"], id, "{view}");
    assert_eq!(view["open"]["summary"]["id"], id);
}
