//! The API keys card's endpoints (`/api/keys/list|create|revoke`) over HTTP: a session's own
//! keys only, honest statuses, and a key that works on `/v1` until it is revoked.

use super::harness::*;
use serde_json::{Value, json};

fn names(view: &Value) -> Vec<&str> {
    view["keys"].as_array().expect("keys").iter().map(|k| k["name"].as_str().unwrap()).collect()
}

async fn models_with(s: &Server, key: &str) -> u16 {
    let r = s.http.get(format!("{}/v1/models", s.base)).bearer_auth(key).send().await.expect("GET /v1/models");
    r.status().as_u16()
}

#[tokio::test]
async fn each_person_makes_lists_and_revokes_their_own_keys() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let bob = s.add_user("bob").await;

    assert_eq!(s.call(None, "keys/list", json!({})).await.status, 401, "signed out");
    let made = s.ok(&alice, "keys/create", json!({ "name": " laptop " })).await;
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("lb-") && secret.len() == 67, "{secret}");
    assert_eq!(made["key"]["name"], "laptop", "the name is trimmed");
    assert!(secret.starts_with(made["key"]["prefix"].as_str().unwrap()), "the prefix is the secret's start");
    assert_eq!(names(&made["keys"]), ["laptop"]);
    assert!(made["keys"]["keys"][0]["last_used_at"].is_null(), "never used");

    // Refused in words, with nothing written.
    let again = s.call(Some(&alice), "keys/create", json!({ "name": "laptop" })).await;
    assert_eq!(again.status, 409, "{}", again.text);
    let empty = s.call(Some(&alice), "keys/create", json!({ "name": "   " })).await;
    assert_eq!(empty.status, 400, "{}", empty.text);
    let cross = s
        .post_raw(
            Some(&alice.cookie),
            "keys/create",
            br#"{"name":"evil"}"#.to_vec(),
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403, "another site's page cannot make a key: {}", cross.text);
    assert_eq!(names(&s.ok(&alice, "keys/list", json!({})).await), ["laptop"]);

    // Bob sees none of Alice's keys and cannot revoke them.
    assert!(names(&s.ok(&bob, "keys/list", json!({})).await).is_empty());
    assert_eq!(s.call(Some(&bob), "keys/revoke", json!({ "name": "laptop" })).await.status, 404);

    // The key works on /v1, and the list then says when it was used.
    assert_eq!(models_with(&s, &secret).await, 200);
    let listed = s.ok(&alice, "keys/list", json!({})).await;
    assert!(listed["keys"][0]["last_used_at"].as_i64().is_some(), "{listed}");
    assert!(listed.to_string().find(&secret[3..]).is_none(), "the list never carries the secret");

    // Revoked: gone from the list, refused at once.
    let left = s.ok(&alice, "keys/revoke", json!({ "name": "laptop" })).await;
    assert!(names(&left).is_empty());
    assert_eq!(models_with(&s, &secret).await, 401);
    assert_eq!(s.call(Some(&alice), "keys/revoke", json!({ "name": "laptop" })).await.status, 404, "already gone");
}
