//! Tools (function calling): which models can be given them, the grammar that makes a required
//! call well formed, and the reply's calls read back out of its text.
//!
//! The model's own chat template shows it the tools (as `transformers` does). The calls it
//! writes are read in the format that template teaches ([`Format`]): the one Qwen2.5/Qwen3,
//! Hermes and their many fine-tunes use, `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
//! and Llama 3.1-3.3's, the whole reply one `{"name": ..., "parameters": {...}}`. A template
//! without tools, or with another call format, is refused in words rather than given tools it
//! would ignore or answer in a format nobody reads.
//!
//! The reply is read for both formats whatever the model: a reply that is a call of a tool
//! offered is one in either spelling, and the server's reader needs no word from the brain.
//!
//! Below the runtime (which renders the tools through [`for_template`]): its refusals are plain
//! sentences the brain answers as a bad request.

use super::json_schema::{self, Rules};
use crate::chat::{ChatRequest, MAX_TOOLS, ToolCall, ToolChoice, ToolDef};
use serde_json::{Value, json};

/// Where a call starts and ends in the Hermes format.
pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";

/// What Llama 3.1 may write before a call (the tag of its "ipython" environment).
pub const PYTHON_TAG: &str = "<|python_tag|>";

/// Most calls one reply may make when a call is required (each of the tools, or one many times).
const MAX_REQUIRED_CALLS: usize = 4;

/// The sentence Llama 3.1-3.3's templates teach their call format with.
const LLAMA3_TEACHES: &str = "\"parameters\": dictionary of argument name and its value";

/// A way of writing tool calls, as a template teaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Qwen2.5/Qwen3, Hermes: each call in `<tool_call>` tags, several a reply.
    Hermes,
    /// Llama 3.1-3.3: the reply is one call, `{"name": ..., "parameters": {...}}`. Their
    /// templates take one call a turn, so a required call is one.
    Llama3,
}

/// The format `template` teaches, if one this module reads.
pub fn format_of(template: &str) -> Option<Format> {
    if template.contains(OPEN) {
        Some(Format::Hermes)
    } else if template.contains(LLAMA3_TEACHES) {
        Some(Format::Llama3)
    } else {
        None
    }
}

/// Checks `req`'s tools against the model's template and, when a call is required, sets the
/// grammar that makes the reply one or more well-formed calls. A request without tools, or
/// with `tool_choice: none`, passes unchanged.
pub fn prepare(req: &mut ChatRequest, template: Option<&str>) -> Result<(), String> {
    if req.tools.is_empty() {
        if matches!(req.tool_choice, ToolChoice::Required | ToolChoice::Function(_)) {
            return Err(bad("tool_choice asks for a tool call, but no tools were sent"));
        }
        return Ok(());
    }
    check(&req.tools)?;
    if req.tool_choice == ToolChoice::None {
        return Ok(());
    }
    let template = template.unwrap_or("");
    if !template.contains("tools") {
        return Err(bad("this model's chat template has no place for tools, so it cannot call them: \
             pick a model made for tool use (Qwen2.5, Qwen3, Llama 3.1 and later, Hermes...) or send the request without tools"));
    }
    let Some(format) = format_of(template) else {
        return Err(bad("this model writes tool calls in a format localbrain does not read yet \
             (it reads the <tool_call> format of Qwen and Hermes models and the JSON one of Llama 3.1-3.3): \
             send the request without tools"));
    };
    let wanted: Vec<&ToolDef> = match &req.tool_choice {
        ToolChoice::Auto | ToolChoice::None => return Ok(()),
        ToolChoice::Required => req.tools.iter().collect(),
        ToolChoice::Function(name) => match req.tools.iter().find(|t| &t.name == name) {
            Some(t) => vec![t],
            None => return Err(bad(&format!("tool_choice names {name:?}, which is not one of the tools sent"))),
        },
    };
    if req.grammar.is_some() {
        return Err(bad("response_format and a required tool call cannot both shape the reply: send one of them"));
    }
    let one = matches!(req.tool_choice, ToolChoice::Function(_)) || format == Format::Llama3;
    req.grammar = Some(grammar(format, &wanted, if one { 1 } else { MAX_REQUIRED_CALLS })?);
    Ok(())
}

/// The tools as templates read them: `{"type": "function", "function": {name, description,
/// parameters}}` (what `transformers` passes as `tools`).
pub fn for_template(tools: &[ToolDef]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| {
            let mut function = json!({ "name": t.name, "parameters": parameters(t) });
            if let Some(d) = &t.description {
                function["description"] = json!(d);
            }
            json!({ "type": "function", "function": function })
        })
        .collect()
}

/// The reply's text split into what it says and the calls it makes: its `<tool_call>` blocks,
/// else the whole reply when it is one Llama 3 call. A block that is not a call of one of
/// `tools` (bad JSON, another name) stays in the text, so nothing the model wrote is lost.
pub fn parse(text: &str, tools: &[ToolDef]) -> (String, Vec<ToolCall>) {
    let (content, calls) = parse_hermes(text, tools);
    if calls.is_empty()
        && let Some(c) = whole_call(text).and_then(|body| call(body, tools))
    {
        return (String::new(), vec![c]);
    }
    (content, calls)
}

/// The reply without the blank around it and Llama 3.1's tag, when it could be one JSON call.
fn whole_call(text: &str) -> Option<&str> {
    let body = text.trim();
    let body = body.strip_prefix(PYTHON_TAG).unwrap_or(body).trim_start();
    body.starts_with('{').then_some(body)
}

fn parse_hermes(text: &str, tools: &[ToolDef]) -> (String, Vec<ToolCall>) {
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else { break };
        match call(after[..end].trim(), tools) {
            Some(c) => {
                content.push_str(&rest[..start]);
                calls.push(c);
            }
            None => content.push_str(&rest[..start + OPEN.len() + end + CLOSE.len()]),
        }
        rest = &after[end + CLOSE.len()..];
    }
    content.push_str(rest);
    if !calls.is_empty() {
        content = content.trim().to_string();
    }
    (content, calls)
}

/// How much of `text`'s end must be held back from a stream: a call has begun (all from its
/// start), or the end could be the beginning of [`OPEN`]. `at_start`: nothing but blank was
/// sent before `text`; then a reply that may be one Llama 3 call (blank so far, or beginning
/// with `{` or [`PYTHON_TAG`]) is held whole, for [`parse`] to read at its end.
pub fn hold_from(text: &str, at_start: bool) -> usize {
    if let Some(i) = text.find(OPEN) {
        return i;
    }
    if at_start {
        let body = text.trim_start();
        if body.is_empty() || body.starts_with('{') || body.starts_with(PYTHON_TAG) || PYTHON_TAG.starts_with(body) {
            return 0;
        }
    }
    (1..OPEN.len()).rev().find(|&n| text.ends_with(&OPEN[..n])).map_or(text.len(), |n| text.len() - n)
}

fn call(block: &str, tools: &[ToolDef]) -> Option<ToolCall> {
    let v: Value = serde_json::from_str(block).ok()?;
    let name = v.get("name")?.as_str()?;
    tools.iter().find(|t| t.name == name)?;
    let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
        None => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(a) => a.to_string(),
    };
    Some(ToolCall { id: call_id(), name: name.to_string(), arguments })
}

/// `call_` and 24 random hex digits, as unique as OpenAI's.
fn call_id() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    format!("call_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// The grammar of 1 to `calls` calls in `format`, each of one of `tools` with arguments
/// matching its schema.
fn grammar(format: Format, tools: &[&ToolDef], calls: usize) -> Result<String, String> {
    let mut rules = Rules::default();
    let mut alternatives = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let schema = parameters(t);
        let args = if schema.as_object().is_some_and(|o| o.is_empty()) {
            "object".to_string()
        } else {
            rules.add(&schema, &format!("tool-{i}-args")).map_err(|e| bad(&format!("tool {:?}: {e}", t.name)))?
        };
        let (head, tail) = match format {
            Format::Hermes => (format!("{OPEN}\n{{\"name\": \"{}\", \"arguments\": ", t.name), format!("}}\n{CLOSE}")),
            Format::Llama3 => (format!("{{\"name\": \"{}\", \"parameters\": ", t.name), "}".to_string()),
        };
        alternatives.push(format!(
            "{} space {args} {}",
            json_schema::literal_text(&head),
            json_schema::literal_text(&tail)
        ));
    }
    let call = format!("( {} )", alternatives.join(" | "));
    let more = if calls > 1 { format!(" (\"\\n\" {call}){{0,{}}}", calls - 1) } else { String::new() };
    Ok(rules.grammar(&format!("{call}{more}")))
}

/// A tool's parameters schema as JSON (checked by [`check`]).
fn parameters(t: &ToolDef) -> Value {
    serde_json::from_str(&t.parameters).unwrap_or_else(|_| json!({}))
}

/// Names OpenAI allows (`[a-zA-Z0-9_-]{1,64}`), unique; parameters a JSON object.
fn check(tools: &[ToolDef]) -> Result<(), String> {
    if tools.len() > MAX_TOOLS {
        return Err(bad(&format!("at most {MAX_TOOLS} tools per request")));
    }
    for (i, t) in tools.iter().enumerate() {
        let name_ok = (1..=64).contains(&t.name.len())
            && t.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(bad(&format!("tool {i}'s name {:?} must be 1 to 64 letters, digits, '_' or '-'", t.name)));
        }
        if tools[..i].iter().any(|o| o.name == t.name) {
            return Err(bad(&format!("two tools are named {:?}", t.name)));
        }
        if !serde_json::from_str::<Value>(&t.parameters).is_ok_and(|v| v.is_object()) {
            return Err(bad(&format!("tool {:?}'s parameters must be a JSON schema object", t.name)));
        }
    }
    Ok(())
}

/// A refusal in words (the brain answers it as a bad request).
fn bad(why: &str) -> String {
    why.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChatMessage, Role};

    const QWEN: &str = include_str!("testdata/qwen2.5-tools.jinja");
    const LLAMA3: &str = include_str!("testdata/llama3-tools-chatml.jinja");

    fn weather() -> ToolDef {
        ToolDef {
            name: "get_weather".into(),
            description: Some("The weather in a city".into()),
            parameters:
                r#"{"type":"object","properties":{"city":{"type":"string","maxLength":20}},"required":["city"]}"#.into(),
        }
    }

    fn ask(choice: ToolChoice) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "Weather in Paris?")],
            tools: vec![weather()],
            tool_choice: choice,
            ..Default::default()
        }
    }

    #[test]
    fn calls_are_read_out_of_the_text_and_the_rest_kept() {
        let tools = [weather()];
        let text = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        let (content, calls) = parse(text, &tools);
        assert_eq!(content, "Let me look.");
        assert_eq!((calls[0].name.as_str(), calls[0].arguments.as_str()), ("get_weather", r#"{"city":"Paris"}"#));
        assert!(calls[0].id.starts_with("call_") && calls[0].id.len() == 29, "{}", calls[0].id);
        // Two calls, ids apart.
        let two = format!(
            "{text}\n<tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"Rome\"}}}}\n</tool_call>"
        );
        let (_, calls) = parse(&two, &tools);
        assert_eq!(calls.len(), 2);
        assert_ne!(calls[0].id, calls[1].id);
        // Not a call of a tool sent, bad JSON, or never closed: text, as written.
        for text in [
            "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_weather\", \n</tool_call>",
            "Sure <tool_call> {\"name\": \"get_weather\"",
            "No tools needed.",
        ] {
            assert_eq!(parse(text, &tools), (text.to_string(), vec![]), "{text}");
        }
    }

    #[test]
    fn a_reply_that_is_one_llama3_call_is_read_and_anything_else_kept() {
        let tools = [weather()];
        let call = r#"{"name": "get_weather", "parameters": {"city": "Paris"}}"#;
        for text in [call.to_string(), format!("\n{call}\n"), format!("{PYTHON_TAG}{call}")] {
            let (content, calls) = parse(&text, &tools);
            assert_eq!(content, "", "{text}");
            assert_eq!((calls[0].name.as_str(), calls[0].arguments.as_str()), ("get_weather", r#"{"city":"Paris"}"#));
        }
        for text in [
            format!("Sure: {call}"),
            r#"{"name": "rm_rf", "parameters": {}}"#.to_string(),
            r#"{"city": "Paris"}"#.to_string(),
            format!("{call} and more"),
        ] {
            assert_eq!(parse(&text, &tools), (text.clone(), vec![]), "{text}");
        }
    }

    #[test]
    fn a_stream_holds_back_what_may_begin_a_call() {
        for at_start in [false, true] {
            assert_eq!(hold_from("Hello", at_start), 5);
            assert_eq!(hold_from("Hello <tool", at_start), 6);
            assert_eq!(hold_from("Hello <", at_start), 6);
            assert_eq!(hold_from("a <tool_call>\n{", at_start), 2);
            assert_eq!(hold_from("x < y", at_start), 5);
            assert_eq!(hold_from("Hello {\"name\"", at_start), 13);
        }
        // At the start, what may be a whole Llama 3 call is held whole; later it is text.
        for text in ["\n", "{", "\n{\"name\": ", "<|py", "<|python_tag|>{"] {
            assert_eq!(hold_from(text, true), 0, "{text:?}");
        }
        assert_eq!(hold_from("\n{\"name\": ", false), 10);
    }

    #[test]
    fn a_required_call_gets_a_grammar_and_auto_none_do_not() {
        let mut req = ask(ToolChoice::Required);
        prepare(&mut req, Some(QWEN)).unwrap();
        let g = req.grammar.unwrap();
        assert!(g.starts_with("root ::= ( \"<tool_call>\\n{\\\"name\\\": \\\"get_weather\\\""), "{g}");
        assert!(g.contains("{0,3}"), "{g}");
        let mut named = ask(ToolChoice::Function("get_weather".into()));
        prepare(&mut named, Some(QWEN)).unwrap();
        assert!(!named.grammar.unwrap().contains("{0,3}"));
        for choice in [ToolChoice::Auto, ToolChoice::None] {
            let mut req = ask(choice);
            prepare(&mut req, Some(QWEN)).unwrap();
            assert_eq!(req.grammar, None);
        }
        // Llama 3: one call, its arguments called "parameters".
        assert_eq!((format_of(QWEN), format_of(LLAMA3)), (Some(Format::Hermes), Some(Format::Llama3)));
        let mut req = ask(ToolChoice::Required);
        prepare(&mut req, Some(LLAMA3)).unwrap();
        let g = req.grammar.unwrap();
        assert!(g.starts_with("root ::= ( \"{\\\"name\\\": \\\"get_weather\\\", \\\"parameters\\\": \""), "{g}");
        assert!(!g.lines().next().unwrap().contains("{0,"), "{g}");
    }

    #[test]
    fn what_cannot_work_is_refused_in_words() {
        let smol = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}{% endfor %}";
        let mistral = "{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]";
        let no_params = ToolDef { parameters: "[]".into(), ..weather() };
        let cases: Vec<(ChatRequest, Option<&str>, &str)> = vec![
            (ask(ToolChoice::Auto), Some(smol), "no place for tools"),
            (ask(ToolChoice::Auto), None, "no place for tools"),
            (ask(ToolChoice::Required), Some(mistral), "format localbrain does not read"),
            (ask(ToolChoice::Function("nope".into())), Some(QWEN), "\"nope\", which is not one of the tools"),
            (ChatRequest { tools: vec![], ..ask(ToolChoice::Required) }, Some(QWEN), "no tools were sent"),
            (ChatRequest { tools: vec![weather(), weather()], ..ask(ToolChoice::Auto) }, Some(QWEN), "two tools"),
            (
                ChatRequest { tools: vec![ToolDef { name: "a b".into(), ..weather() }], ..ask(ToolChoice::Auto) },
                Some(QWEN),
                "name",
            ),
            (ChatRequest { tools: vec![no_params], ..ask(ToolChoice::Auto) }, Some(QWEN), "parameters must be"),
            (
                ChatRequest { grammar: Some("root ::= \"x\"".into()), ..ask(ToolChoice::Required) },
                Some(QWEN),
                "response_format",
            ),
        ];
        for (mut req, template, words) in cases {
            let err = prepare(&mut req, template).unwrap_err().to_string();
            assert!(err.contains(words), "wanted {words:?}: {err}");
        }
        // tool_choice none: the tools are not shown, so any template will do.
        prepare(&mut ask(ToolChoice::None), Some(smol)).unwrap();
        // A schema the grammar cannot enforce is named with its tool.
        let pattern = ToolDef {
            parameters: r#"{"type":"object","properties":{"c":{"type":"string","pattern":"x"}}}"#.into(),
            ..weather()
        };
        let err =
            prepare(&mut ChatRequest { tools: vec![pattern], ..ask(ToolChoice::Required) }, Some(QWEN)).unwrap_err();
        assert!(err.to_string().contains("tool \"get_weather\"") && err.to_string().contains("pattern"), "{err}");
    }

    #[test]
    fn the_template_shows_the_tools_and_a_round_trip() {
        let mut assistant = ChatMessage::new(Role::Assistant, "");
        assistant.tool_calls =
            vec![ToolCall { id: "call_1".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() }];
        let mut tool = ChatMessage::new(Role::Tool, r#"{"temp": 21}"#);
        tool.tool_call_id = Some("call_1".into());
        let messages = [ChatMessage::new(Role::User, "Weather in Paris?"), assistant, tool];
        let out = super::super::template::render_jinja(QWEN, &messages, &for_template(&[weather()]), "", "").unwrap();
        assert!(
            out.contains("<tools>\n{\"function\":{\"description\":\"The weather in a city\",\"name\":\"get_weather\""),
            "{out}"
        );
        assert!(out.contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call><|im_end|>"), "{out}");
        assert!(out.contains("<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>"), "{out}");
        assert!(out.ends_with("<|im_start|>assistant\n"), "{out}");

        let out = super::super::template::render_jinja(LLAMA3, &messages, &for_template(&[weather()]), "", "").unwrap();
        assert!(
            out.contains(LLAMA3_TEACHES) && out.contains("{\"function\":{\"description\":\"The weather in a city\""),
            "{out}"
        );
        assert!(
            out.contains(
                "<|im_start|>assistant\n{\"name\": \"get_weather\", \"parameters\": {\"city\":\"Paris\"}}<|im_end|>"
            ),
            "{out}"
        );
        assert!(out.contains("<|im_start|>ipython\n{\"temp\": 21}<|im_end|>"), "{out}");
        assert!(out.ends_with("<|im_start|>assistant\n"), "{out}");
    }
}
