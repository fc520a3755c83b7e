//! Turns a conversation into the prompt text a model expects, with the model's own Jinja chat
//! template (`tokenizer.chat_template`). The runtime tries llama.cpp's built-in formats first
//! (they cover ~55 known templates); this renders every other one, the way Hugging Face's
//! `transformers` does: `trim_blocks` and `lstrip_blocks` on, `raise_exception` and
//! `strftime_now` defined, Python string methods available.

use crate::chat::ChatMessage;
use minijinja::{Environment, Error, ErrorKind, context};

/// Why a prompt could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("this model file has no chat template, so localbrain cannot tell how to talk to it")]
    Missing,
    #[error("the model's chat template does not render")]
    Jinja(#[source] Error),
}

/// Renders `template` for `messages`, ending where the assistant's reply begins. `tools` (the
/// functions offered, in OpenAI's `{"type": "function", "function": {...}}` shape, as
/// `transformers` passes them) are given to the template only when there are some.
pub fn render_jinja(
    template: &str,
    messages: &[ChatMessage],
    tools: &[serde_json::Value],
    bos: &str,
    eos: &str,
) -> Result<String, TemplateError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |_format: String| -> String {
        // Templates use it to print today's date in a system prompt; the date is not ours to
        // leak into every prompt, and a fixed one keeps prompts reproducible.
        String::new()
    });
    let tmpl = env.template_from_str(template).map_err(TemplateError::Jinja)?;
    let messages: Vec<_> = messages.iter().map(message).collect();
    let tools = (!tools.is_empty()).then(|| minijinja::Value::from_serialize(tools));
    tmpl.render(context! {
        messages => messages,
        tools => tools,
        add_generation_prompt => true,
        bos_token => bos,
        eos_token => eos,
    })
    .map_err(TemplateError::Jinja)
}

/// A message as templates read it: `role` and `content`, and for tool use `tool_calls` (each
/// `{"id", "type": "function", "function": {"name", "arguments"}}`, the arguments an object, as
/// `transformers` gives them) and `tool_call_id`, each only where the message has it: templates
/// ask `'tool_calls' in message` (Llama 3's), and a key present with nothing in it would say yes.
fn message(m: &ChatMessage) -> minijinja::Value {
    let mut v = serde_json::json!({ "role": m.role.as_str(), "content": m.content });
    if !m.tool_calls.is_empty() {
        let calls: Vec<serde_json::Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let arguments = serde_json::from_str::<serde_json::Value>(&c.arguments)
                    .unwrap_or_else(|_| serde_json::Value::String(c.arguments.clone()));
                serde_json::json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": arguments } })
            })
            .collect();
        v["tool_calls"] = calls.into();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = id.as_str().into();
    }
    minijinja::Value::from_serialize(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    /// SmolLM2's template as its GGUF carries it (ChatML with a default system prompt).
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// A Gemma-style template: rejects a system role with raise_exception, uses .strip().
    const STRICT: &str = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}<turn>{{ m['role'] }}\n{{ m['content'] | trim }}<end>\n{% endfor %}{% if add_generation_prompt %}<turn>model\n{% endif %}";

    #[test]
    fn renders_a_chatml_template_with_the_generation_prompt() {
        let msgs = [
            ChatMessage::new(Role::User, "Hi"),
            ChatMessage::new(Role::Assistant, "Hello!"),
            ChatMessage::new(Role::User, "Bye"),
        ];
        let out = render_jinja(SMOLLM2, &msgs, &[], "", "<|im_end|>").unwrap();
        assert!(out.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
        assert!(out.contains("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"));
        assert!(out.ends_with("<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn a_template_that_refuses_says_why() {
        let out = render_jinja(STRICT, &[ChatMessage::new(Role::User, "  Hi  ")], &[], "<bos>", "<eos>").unwrap();
        assert_eq!(out, "<bos><turn>user\nHi<end>\n<turn>model\n");
        let err =
            render_jinja(STRICT, &[ChatMessage::new(Role::System, "Be brief")], &[], "<bos>", "<eos>").unwrap_err();
        assert!(format!("{:?}", err).contains("System role not supported"), "{err:?}");
    }

    #[test]
    fn python_string_methods_work() {
        let t = "{% for m in messages %}{{ m.content.strip().upper() }}{% endfor %}";
        assert_eq!(render_jinja(t, &[ChatMessage::new(Role::User, " hi ")], &[], "", "").unwrap(), "HI");
    }
}
