//! `response_format` on `/v1/chat/completions` against the real binary and model: a JSON schema
//! turns into a grammar, so even a 135M model's reply parses and matches it; `json_object` gives
//! an object; what a grammar cannot enforce is a 400 naming the keyword and its place.

use super::harness::*;
use super::openai::{error_message, make_key, v1};
use serde_json::{Value, json};

/// A schema whose every value is bounded, so any reply the grammar allows ends well inside the
/// token limit: the reply must then finish with `stop` and match the schema exactly.
fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 12 },
            "mood": { "enum": ["happy", "sad", "calm"] },
            "pet": { "type": "boolean" },
            "age": { "type": "integer" },
            "tags": { "type": "array", "items": { "type": "string", "maxLength": 8 }, "maxItems": 2 }
        },
        "required": ["name", "mood", "pet", "age", "tags"],
        "additionalProperties": false
    })
}

/// Checks `reply` against `person_schema()` by hand (every keyword the schema uses).
fn assert_person(reply: &Value) {
    let o = reply.as_object().unwrap_or_else(|| panic!("not an object: {reply}"));
    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{reply}");
    let name = o["name"].as_str().unwrap_or_else(|| panic!("name: {reply}"));
    assert!((1..=12).contains(&name.chars().count()), "{reply}");
    assert!(["happy", "sad", "calm"].contains(&o["mood"].as_str().unwrap_or("")), "{reply}");
    assert!(o["pet"].is_boolean(), "{reply}");
    assert!(o["age"].is_i64() || o["age"].is_u64(), "{reply}");
    let tags = o["tags"].as_array().unwrap_or_else(|| panic!("tags: {reply}"));
    assert!(tags.len() <= 2 && tags.iter().all(|t| t.as_str().is_some_and(|t| t.chars().count() <= 8)), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_schema_reply_always_parses_and_matches() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "structured");
    let chat = |content: &str, format: Value, extra: Value| {
        let mut body = json!({ "model": SMOL, "messages": [{ "role": "user", "content": content }],
            "max_tokens": 200, "response_format": format });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, key) = (&s, &key);
        async move { v1(s, Some(key), "POST", "chat/completions", Some(body)).await }
    };
    let format = json!({ "type": "json_schema", "json_schema": { "name": "person", "strict": true, "schema": person_schema() } });

    // Greedy and sampled (three seeds): each reply is the schema's JSON, whatever the model thinks.
    for extra in [
        json!({ "temperature": 0 }),
        json!({ "seed": 1 }),
        json!({ "seed": 2 }),
        json!({ "seed": 3, "temperature": 1.5 }),
    ] {
        let (status, _, c) = chat("Describe a person.", format.clone(), extra.clone()).await;
        assert_eq!(status, 200, "{extra}: {c}");
        assert_eq!(c["choices"][0]["finish_reason"], "stop", "{extra}: the grammar must end the reply: {c}");
        let content = c["choices"][0]["message"]["content"].as_str().unwrap();
        let reply: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{extra}: {e}: {content:?}"));
        assert_person(&reply);
    }

    // Streamed: the pieces join into the same kind of reply.
    let mut streamed = json!({ "model": SMOL, "messages": [{ "role": "user", "content": "A person, please." }],
        "max_tokens": 200, "response_format": format, "stream": true, "temperature": 0 });
    let (chunks, done) = super::text_completions::sse(&s, &key, "chat/completions", streamed.take()).await;
    assert!(done);
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_person(&serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}")));

    // json_object: an object, even when the question asks for something else.
    let (status, _, c) =
        chat("Say hello in one word.", json!({ "type": "json_object" }), json!({ "max_tokens": 40, "temperature": 0 }))
            .await;
    assert_eq!(status, 200, "{c}");
    let content = c["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.trim_start().starts_with('{'), "{content:?}");
    if c["choices"][0]["finish_reason"] == "stop" {
        assert!(serde_json::from_str::<Value>(content).unwrap().is_object(), "{content:?}");
    }
    // Text is the default, and may be said.
    let (status, _, _) = chat("Hi", json!({ "type": "text" }), json!({ "max_tokens": 2 })).await;
    assert_eq!(status, 200);

    // What a grammar cannot enforce, or a format that is not one, is refused by name.
    let schema = |schema: Value| json!({ "type": "json_schema", "json_schema": { "name": "x", "schema": schema } });
    for (format, words) in [
        (schema(json!({ "type": "string", "pattern": "^a+$" })), "\"pattern\" at #"),
        (
            schema(json!({ "type": "object", "properties": { "n": { "type": "number", "minimum": 3 } } })),
            "\"minimum\" at #/properties/n",
        ),
        (schema(json!({ "type": "wat" })), "not a JSON schema type"),
        (json!({ "type": "json_schema" }), "json_schema"),
        (json!({ "type": "xml" }), "xml"),
    ] {
        let (status, _, e) = chat("Hi", format.clone(), json!({})).await;
        assert_eq!(status, 400, "{format}: {e}");
        assert!(error_message(&e).contains(words), "{format}: wanted {words:?} in {e}");
    }
}
