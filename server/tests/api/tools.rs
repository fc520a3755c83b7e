//! Tools on `/v1/chat/completions` against the real binary and weights: the test model with a
//! tool-use template (Qwen2.5's, and Llama 3's call format) is shown the tools, a required call
//! comes back parsed into `message.tool_calls` (streamed as `delta.tool_calls`), a `role: tool`
//! answer is read back, and what cannot work (a template without tools, a bad tool) is a 400 in
//! words.

use super::harness::*;
use super::openai::{error_message, make_key, v1};
use super::text_completions::sse;
use serde_json::{Value, json};

fn weather_tool() -> Value {
    json!({ "type": "function", "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": { "type": "object", "properties": {
            "city": { "type": "string", "minLength": 1, "maxLength": 20 },
            "unit": { "enum": ["celsius", "fahrenheit"] }
        }, "required": ["city", "unit"] }
    }})
}

fn time_tool() -> Value {
    json!({ "type": "function", "function": { "name": "get_time", "parameters": { "type": "object", "properties": {} } } })
}

/// Checks one call of `get_weather` in OpenAI's shape; its arguments.
fn weather_call(call: &Value) -> Value {
    assert!(call["id"].as_str().is_some_and(|id| id.starts_with("call_")), "{call}");
    assert_eq!(call["type"], "function", "{call}");
    assert_eq!(call["function"]["name"], "get_weather", "{call}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments are text")).unwrap();
    let city = args["city"].as_str().unwrap_or_else(|| panic!("{args}"));
    assert!((1..=20).contains(&city.chars().count()), "{args}");
    assert!(["celsius", "fahrenheit"].contains(&args["unit"].as_str().unwrap()), "{args}");
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn a_required_tool_call_comes_back_parsed_and_its_result_is_read() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.install_tools_model();
    s.admin().await;
    let key = make_key(&s, "admin", "agent");
    let chat = |body: Value| {
        let (s, key) = (&s, &key);
        async move { v1(s, Some(key), "POST", "chat/completions", Some(body)).await }
    };
    let question = json!([{ "role": "user", "content": "What is the weather in Paris?" }]);

    // Required: the grammar makes the reply calls; they come back parsed, content null.
    let (status, _, c) =
        chat(json!({ "model": SMOL_TOOLS, "messages": question, "tools": [weather_tool(), time_tool()],
        "tool_choice": "required", "temperature": 0, "max_tokens": 200 }))
        .await;
    assert_eq!(status, 200, "{c}");
    let choice = &c["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{c}");
    assert!(choice["message"]["content"].is_null(), "{c}");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert!((1..=4).contains(&calls.len()), "{c}");
    assert!(
        calls.iter().all(|c| ["get_weather", "get_time"].contains(&c["function"]["name"].as_str().unwrap())),
        "{c}"
    );

    // A named function: exactly one call of it, for any seed.
    for seed in [1, 2, 3] {
        let (status, _, c) = chat(json!({ "model": SMOL_TOOLS, "messages": question, "tools": [weather_tool(), time_tool()],
            "tool_choice": { "type": "function", "function": { "name": "get_weather" } }, "seed": seed, "max_tokens": 200 }))
        .await;
        assert_eq!(status, 200, "{c}");
        let calls = c["choices"][0]["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{c}");
        weather_call(&calls[0]);
    }

    // Streamed: the call arrives as delta.tool_calls, never as text.
    let (chunks, done) = sse(
        &s,
        &key,
        "chat/completions",
        json!({ "model": SMOL_TOOLS, "messages": question,
        "tools": [weather_tool()], "tool_choice": "required", "temperature": 0, "max_tokens": 200, "stream": true }),
    )
    .await;
    assert!(done);
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!text.contains("<tool_call>"), "the call leaked into the text: {text:?}");
    let deltas: Vec<&Value> =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array()).flatten().collect();
    assert!(!deltas.is_empty(), "{chunks:?}");
    assert_eq!(deltas[0]["index"], 0);
    let args = weather_call(deltas[0]);
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"), "{chunks:?}");

    // The round trip: the call and its result sent back; the model answers in words (or calls
    // again: either is a well-formed answer).
    let call = json!({ "id": "call_abc", "type": "function",
        "function": { "name": "get_weather", "arguments": args.to_string() } });
    let round = json!([
        { "role": "user", "content": "What is the weather in Paris?" },
        { "role": "assistant", "content": null, "tool_calls": [call] },
        { "role": "tool", "tool_call_id": "call_abc", "content": "{\"temperature\": 21, \"sky\": \"sunny\"}" }
    ]);
    for choice in ["auto", "none"] {
        let (status, _, c) = chat(json!({ "model": SMOL_TOOLS, "messages": round, "tools": [weather_tool()],
            "tool_choice": choice, "temperature": 0, "max_tokens": 24 }))
        .await;
        assert_eq!(status, 200, "{choice}: {c}");
        let m = &c["choices"][0]["message"];
        let words = m["content"].as_str().is_some_and(|t| !t.trim().is_empty());
        assert!(words || m["tool_calls"].is_array(), "{choice}: {c}");
        if choice == "none" {
            assert!(words && m["tool_calls"].is_null(), "tool_choice none made a call: {c}");
        }
        // The tool's result was read: the prompt holds it (more tokens than the question alone).
        assert!(c["usage"]["prompt_tokens"].as_u64().unwrap() > 40, "{c}");
    }

    // What cannot work is refused in words, with nothing generated.
    for (body, words) in [
        (json!({ "model": SMOL, "messages": question, "tools": [weather_tool()] }), "no place for tools"),
        (
            json!({ "model": SMOL_TOOLS, "messages": question, "tools": [weather_tool()],
            "tool_choice": { "type": "function", "function": { "name": "get_time" } } }),
            "\"get_time\", which is not one of the tools",
        ),
        (
            json!({ "model": SMOL_TOOLS, "messages": question, "tools": [{ "type": "function", "function": { "name": "has space" } }] }),
            "must be 1 to 64",
        ),
        (
            json!({ "model": SMOL_TOOLS, "messages": question, "tool_choice": "required",
            "tools": [{ "type": "function", "function": { "name": "f", "parameters": { "type": "object",
                "properties": { "x": { "type": "string", "format": "email" } } } } }] }),
            "\"format\"",
        ),
        (
            json!({ "model": SMOL_TOOLS, "messages": question, "tools": [weather_tool()], "tool_choice": "required",
            "response_format": { "type": "json_object" } }),
            "cannot both",
        ),
    ] {
        let (status, _, e) = chat(body.clone()).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(error_message(&e).contains(words), "wanted {words:?}: {e}");
    }
    // tool_choice none on a model without tool support: the tools are simply not shown.
    let (status, _, c) =
        chat(json!({ "model": SMOL, "messages": question, "tools": [weather_tool()], "tool_choice": "none", "max_tokens": 4 }))
            .await;
    assert_eq!(status, 200, "{c}");
}

/// Llama 3.1-3.3's format: the grammar makes the whole reply one `{"name", "parameters"}` call,
/// which comes back in OpenAI's shape (streamed too, never as text), and the round trip renders.
#[tokio::test(flavor = "multi_thread")]
async fn a_llama3_template_gets_one_call_in_its_own_format_read_back() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_tools_model();
    s.admin().await;
    let key = make_key(&s, "admin", "agent");
    let question = json!([{ "role": "user", "content": "What is the weather in Paris?" }]);
    let ask = json!({ "model": SMOL_LLAMA3_TOOLS, "messages": question, "tools": [weather_tool(), time_tool()],
        "tool_choice": "required", "temperature": 0, "max_tokens": 200 });

    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(ask.clone())).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["choices"][0]["finish_reason"], "tool_calls", "{c}");
    assert!(c["choices"][0]["message"]["content"].is_null(), "{c}");
    let calls = c["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "its templates take one call a turn: {c}");
    assert!(["get_weather", "get_time"].contains(&calls[0]["function"]["name"].as_str().unwrap()), "{c}");

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    streamed["tools"] = json!([weather_tool()]);
    let (chunks, done) = sse(&s, &key, "chat/completions", streamed).await;
    assert!(done);
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!text.contains("\"parameters\""), "the call leaked into the text: {text:?}");
    let deltas: Vec<&Value> =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array()).flatten().collect();
    assert_eq!(deltas.len(), 1, "{chunks:?}");
    let args = weather_call(deltas[0]);

    let call = json!({ "id": "call_abc", "type": "function",
        "function": { "name": "get_weather", "arguments": args.to_string() } });
    let round = json!([
        { "role": "user", "content": "What is the weather in Paris?" },
        { "role": "assistant", "content": null, "tool_calls": [call] },
        { "role": "tool", "tool_call_id": "call_abc", "content": "{\"temperature\": 21, \"sky\": \"sunny\"}" }
    ]);
    let body = json!({ "model": SMOL_LLAMA3_TOOLS, "messages": round, "tools": [weather_tool()],
        "tool_choice": "none", "temperature": 0, "max_tokens": 24 });
    let (status, _, c) = v1(&s, Some(&key), "POST", "chat/completions", Some(body)).await;
    assert_eq!(status, 200, "{c}");
    assert!(c["choices"][0]["message"]["content"].as_str().is_some_and(|t| !t.trim().is_empty()), "{c}");
    assert!(c["usage"]["prompt_tokens"].as_u64().unwrap() > 40, "{c}");
}
