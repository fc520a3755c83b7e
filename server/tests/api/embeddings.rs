//! `POST /v1/embeddings` against the real binary and the real model (a chat model, which
//! embeds with mean pooling): OpenAI's shape, unit vectors, every input form, base64, a batch
//! giving the same vectors as one input at a time, and each bad input refused in words.

use super::harness::*;
use super::openai::{error_message, make_key, v1};
use base64::Engine;
use serde_json::{Value, json};

/// The vectors of an embeddings answer, by index.
fn vectors(body: &Value) -> Vec<Vec<f32>> {
    let data = body["data"].as_array().unwrap_or_else(|| panic!("no data: {body}"));
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!((d["object"].as_str(), d["index"].as_u64()), (Some("embedding"), Some(i as u64)), "{body}");
            d["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_in_openais_shape_batched_like_one_at_a_time() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    s.admin().await;
    let key = make_key(&s, "admin", "rag");
    let embed = |body: Value| {
        let (s, key) = (&s, &key);
        async move { v1(s, Some(key), "POST", "embeddings", Some(body)).await }
    };

    // One input: a unit vector as wide as the model (SmolLM2-135M: 576), with its token count.
    let (status, _, one) = embed(json!({ "model": SMOL, "input": "The cat sat on the mat." })).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!((one["object"].as_str(), one["model"].as_str()), (Some("list"), Some(SMOL)), "{one}");
    let cat = vectors(&one).remove(0);
    assert_eq!(cat.len(), 576);
    let norm: f64 = cat.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
    let tokens = one["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens > 3 && one["usage"]["total_tokens"].as_u64() == Some(tokens), "{one}");

    // Many inputs in one request, decoded together: each vector is the one it gets alone.
    let texts = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A kitten rested on the rug.", "Hi"];
    let (status, _, many) = embed(json!({ "model": SMOL, "input": texts })).await;
    assert_eq!(status, 200, "{many}");
    let batch = vectors(&many);
    assert_eq!(batch.len(), texts.len());
    for (text, v) in texts.iter().zip(&batch) {
        let (_, _, alone) = embed(json!({ "model": SMOL, "input": text })).await;
        let c = cosine(v, &vectors(&alone)[0]);
        assert!(c > 0.9999, "{text:?} in a batch differs from alone: cosine {c}");
    }
    assert!(cosine(&batch[0], &cat) > 0.9999);
    // Meaning shows: the cat is nearer the kitten than the markets.
    assert!(cosine(&batch[0], &batch[2]) > cosine(&batch[0], &batch[1]), "cat/kitten vs cat/markets");

    // base64: the same floats, little-endian.
    let (status, _, b64) = embed(json!({ "model": SMOL, "input": texts[0], "encoding_format": "base64" })).await;
    assert_eq!(status, 200, "{b64}");
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(b64["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let floats: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(floats, cat);

    // Token arrays, one and many; the model's width as `dimensions` is accepted.
    let (status, _, t) =
        embed(json!({ "model": SMOL, "input": [[504, 2354, 3461], [19556]], "dimensions": 576 })).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!((vectors(&t).len(), t["usage"]["prompt_tokens"].as_u64()), (2, Some(4)), "{t}");
    let (status, _, t) = embed(json!({ "model": SMOL, "input": [504, 2354] })).await;
    assert_eq!((status, vectors(&t).len()), (200, 1), "{t}");

    // Each bad input, refused in words.
    let long = "word ".repeat(9000);
    for (body, code, words) in [
        (json!({ "model": SMOL, "input": "" }), 400, "input[0] is empty"),
        (json!({ "model": SMOL, "input": [] }), 400, "between 1 and 2048 inputs"),
        (json!({ "model": SMOL, "input": ["ok", long] }), 400, "input[1] is"),
        (json!({ "model": SMOL, "input": [[99999999]] }), 400, "not in this model's vocabulary"),
        (json!({ "model": SMOL, "input": "x", "dimensions": 64 }), 400, "dimensions 64 is not supported"),
        (json!({ "model": SMOL, "input": "x", "encoding_format": "hex" }), 400, "encoding_format \"hex\""),
        (json!({ "model": SMOL, "input": 5 }), 400, "input"),
        (json!({ "model": "no-such-model", "input": "x" }), 404, "no-such-model"),
    ] {
        let (status, _, e) = embed(body.clone()).await;
        assert_eq!(status, code, "{body}: {e}");
        assert!(error_message(&e).contains(words), "{body}: {e}");
    }
}
