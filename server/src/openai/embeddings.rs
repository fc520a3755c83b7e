//! `POST /v1/embeddings`: the vectors Open WebUI, LangChain and every RAG library ask for, from
//! any installed model (an embedding model, or a chat model, which embeds too).

use super::KeyUser;
use super::error::OpenAiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use base64::Engine;
use localbrain::brain::Brain;
use localbrain::chat::{EmbedInput, EmbedRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The request. `user` and other fields are accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Input,
    /// `float` (the default) or `base64`: little-endian f32s, as OpenAI sends them.
    pub encoding_format: Option<String>,
    /// Only the model's own width is honoured: vectors are never cut.
    pub dimensions: Option<u32>,
}

/// `input`: a string, a list of strings, a token list, or a list of token lists.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

impl Input {
    fn into_inputs(self) -> Vec<EmbedInput> {
        match self {
            Input::One(s) => vec![EmbedInput::Text(s)],
            Input::Many(v) => v.into_iter().map(EmbedInput::Text).collect(),
            Input::Tokens(t) => vec![EmbedInput::Tokens(t)],
            Input::TokenLists(v) => v.into_iter().map(EmbedInput::Tokens).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EmbeddingList {
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Serialize)]
pub struct Embedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: Vector,
}

/// A vector as numbers, or as base64 of its little-endian f32s.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u32,
    pub total_tokens: u32,
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(brain): State<Arc<Brain>>,
    Extension(_user): Extension<KeyUser>,
    body: Bytes,
) -> Result<Json<EmbeddingList>, OpenAiError> {
    let request: EmbeddingRequest = super::parse_body(&body, "an embeddings request")?;
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(OpenAiError::bad_request(format!(
                "encoding_format {other:?} is not one localbrain writes: use \"float\" or \"base64\""
            )));
        }
    };
    let model_id = super::model_id(&brain, &request.model);
    let out = brain
        .embed(EmbedRequest { model_id, inputs: request.input.into_inputs() })
        .await
        .map_err(OpenAiError::from_brain)?;
    let width = out.vectors.first().map_or(0, Vec::len);
    if let Some(d) = request.dimensions.filter(|&d| d as usize != width) {
        return Err(OpenAiError::bad_request(format!(
            "dimensions {d} is not supported: this model's vectors have {width} dimensions, and localbrain does not \
             shorten them (leave dimensions out, or send {width})"
        )));
    }
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| Embedding {
            object: "embedding",
            index,
            embedding: if base64 { Vector::Base64(encode(&v)) } else { Vector::Float(v) },
        })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model: request.model,
        usage: EmbeddingUsage { prompt_tokens: out.prompt_tokens, total_tokens: out.prompt_tokens },
    }))
}

/// Base64 of `v`'s little-endian f32s.
fn encode(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_shape_the_clients_send_is_read() {
        let inputs = |json: &str| serde_json::from_str::<EmbeddingRequest>(json).unwrap().input.into_inputs();
        assert_eq!(inputs(r#"{"model":"m","input":"hi"}"#), vec![EmbedInput::Text("hi".into())]);
        assert_eq!(inputs(r#"{"model":"m","input":["a","b"]}"#).len(), 2);
        assert_eq!(inputs(r#"{"model":"m","input":[1,2,3]}"#), vec![EmbedInput::Tokens(vec![1, 2, 3])]);
        assert_eq!(
            inputs(r#"{"model":"m","input":[[1],[2,3]]}"#),
            vec![EmbedInput::Tokens(vec![1]), EmbedInput::Tokens(vec![2, 3])]
        );
    }

    #[test]
    fn base64_is_little_endian_f32s() {
        // 1.0f32 is 00 00 80 3f.
        assert_eq!(encode(&[1.0]), "AACAPw==");
    }
}
