//! The OpenAI-compatible API under `/v1`, for other programs (editors, notebooks, scripts):
//! `GET /v1/models`, `POST /v1/chat/completions` and `/v1/completions` (streamed or not) and
//! `POST /v1/embeddings`. It runs on the same brain
//! as the card and the terminal (one loaded model, one queue, the same Stop), for the user whose
//! API key (`Authorization: Bearer`) the request carries. Keys reach `/v1` only and sessions
//! never do: a page in a browser cannot spend a signed-in person's cookie here. Browsers are let
//! in only from the origins `--cors-origin` lists.

mod embeddings;
pub mod error;
mod stream;
mod text;
mod wire;

use crate::guesses::{Guesses, MAX_FAILURES};
use crate::site::Site;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::OpenAiError;
use localbrain::brain::{Brain, tool_calls};
use localbrain::chat::ChatEvent;
use localbrain::store::{Db, api_keys};
use localbrain::time::unix_seconds;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wire::{
    AnswerMessage, ChatLogprobs, Choice, Completion, CompletionRequest, Model, ModelList, Usage, WireToolCall,
    finish_reason,
};

/// The user whose key a request carries.
#[derive(Clone, Copy, Debug)]
struct KeyUser(i64);

/// The `/v1` routes, to nest under `/v1`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/models", get(models))
        .route("/chat/completions", post(completions))
        .route("/completions", post(text::completions))
        .route("/embeddings", post(embeddings::embeddings))
        .fallback(unknown)
        .layer(middleware::from_fn_with_state(KeyCheck { db: state.db.clone(), guesses: Arc::default() }, bearer))
        .layer(middleware::from_fn_with_state(state.site.clone(), cors))
}

/// The key in `Authorization: Bearer KEY`.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim()).filter(|k| !k.is_empty())
}

/// What the key check needs: the keys, and the wrong ones each address has sent.
#[derive(Clone)]
struct KeyCheck {
    db: Db,
    guesses: Arc<Guesses>,
}

/// Lets a request with a valid API key through, as its user; 401 otherwise. The key itself is
/// never logged. An address that sends [`MAX_FAILURES`] wrong keys within the guess window gets
/// 429 for its next wrong ones, unlogged, so a scanner or a client retrying a revoked key cannot
/// flood the log; a valid key from it still gets in.
async fn bearer(State(check): State<KeyCheck>, mut req: Request, next: Next) -> Response {
    let Some(key) = bearer_key(req.headers()) else {
        return OpenAiError::unauthorized(
            "no API key: send it as `Authorization: Bearer KEY` (make one in the Settings page's API keys card, \
             or on the server with `localbrain key add USER NAME`)",
        )
        .into_response();
    };
    match api_keys::user_for_key(&check.db, key).await {
        Ok(Some(user)) => {
            req.extensions_mut().insert(KeyUser(user.id));
            next.run(req).await
        }
        Ok(None) => {
            if let Some(ConnectInfo(client)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
                let ip = client.ip();
                if let Err(wait) = check.guesses.check(ip, Instant::now()) {
                    return OpenAiError::too_many_bad_keys(wait).into_response();
                }
                let failures = check.guesses.failed(ip, Instant::now());
                if failures < MAX_FAILURES {
                    tracing::warn!(client = %ip, failures, "API request with an unknown or revoked key");
                } else {
                    tracing::warn!(
                        client = %ip,
                        failures,
                        "API request with an unknown or revoked key; this address's next wrong keys get 429, unlogged"
                    );
                }
            }
            OpenAiError::unauthorized("this API key is not valid here: it was revoked, or never made on this server")
                .into_response()
        }
        Err(e) => OpenAiError::internal("could not check the API key; see the server log")
            .because(format!("API key lookup failed: {e}"))
            .into_response(),
    }
}

/// CORS for the origins `--cors-origin` lists; none by default. A preflight from a listed
/// origin is answered here (it carries no key); every other origin gets no CORS headers, so
/// browsers keep its pages out (and the hygiene layer refuses its POSTs).
async fn cors(State(site): State<Site>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).filter(|o| o.to_str().is_ok_and(|o| site.cors_allows(o))).cloned();
    let mut response = match (&origin, req.method()) {
        (Some(_), &Method::OPTIONS) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            r
        }
        _ => next.run(req).await,
    };
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

/// Any other `/v1` path.
async fn unknown(req: Request) -> OpenAiError {
    OpenAiError::not_found(
        format!(
            "{} {} is not an endpoint here; localbrain serves GET /v1/models, POST /v1/chat/completions, POST /v1/completions and POST /v1/embeddings",
            req.method(),
            req.uri().path()
        ),
        "unknown_url",
    )
}

/// `GET /v1/models`: the installed models this server can run.
async fn models(State(brain): State<Arc<Brain>>, Extension(_user): Extension<KeyUser>) -> Json<ModelList> {
    let data = brain
        .installed()
        .await
        .into_iter()
        .filter(|m| m.problem.is_none())
        .map(|m| Model { created: m.installed_at, id: m.model_id, object: "model", owned_by: "localbrain" })
        .collect();
    Json(ModelList { object: "list", data })
}

/// A JSON body read as `T`, or a 400 naming the field that is wrong (`what` names the request).
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, OpenAiError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
        let at = e.path().to_string();
        let field = if at == "." { String::new() } else { format!("{at}: ") };
        OpenAiError::bad_request(format!("the body is not {what}: {field}{}", e.inner()))
    })
}

/// The model id a request's `model` names: a Hugging Face model answers to the reference it
/// was downloaded as, as well as to its id.
fn model_id(brain: &Brain, model: &str) -> String {
    if let Some(Ok(r)) = localbrain::hub::reference::parse(model, None)
        && let Some(id) = localbrain::hub::shelf::known_ids(brain.catalog(), &r).into_iter().next()
    {
        return id;
    }
    model.to_string()
}

/// The tools whose calls are read out of the reply: none when the model may not call any.
fn offered_tools(chat: &localbrain::chat::ChatRequest) -> Vec<localbrain::chat::ToolDef> {
    if chat.tool_choice == localbrain::chat::ToolChoice::None { Vec::new() } else { chat.tools.clone() }
}

/// `POST /v1/chat/completions`.
async fn completions(
    State(brain): State<Arc<Brain>>,
    Extension(user): Extension<KeyUser>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let request: CompletionRequest = parse_body(&body, "a chat completion request")?;
    let mut chat = request.to_chat()?;
    chat.model_id = model_id(&brain, &chat.model_id);
    let reply = brain.chat(user.0, chat.clone()).await.map_err(OpenAiError::from_brain)?;
    let created = SystemTime::now();
    let answer = stream::Answer {
        // Reply ids count from 1 in each process: the start time keeps them apart across restarts.
        id: format!("chatcmpl-{}-{}", created.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()), reply.id),
        created: unix_seconds(created),
        model: request.model.clone(),
        include_usage: request.include_usage(),
        logprobs: chat.logprobs.is_some(),
        tools: offered_tools(&chat),
        held: String::new(),
        sent_words: false,
    };
    if request.streams() {
        return Ok(stream::respond(answer, reply));
    }
    let mut reply = reply;
    let mut content = String::new();
    let mut logprobs = chat.logprobs.map(|_| ChatLogprobs::default());
    loop {
        match reply.events.recv().await {
            Some(ChatEvent::Started { .. }) => {}
            Some(ChatEvent::Piece { text, logprobs: entries }) => {
                content.push_str(&text);
                if let Some(lp) = logprobs.as_mut() {
                    lp.content.extend(ChatLogprobs::of(&entries).content);
                }
            }
            Some(ChatEvent::Done { stats }) => {
                let mut finish = finish_reason(stats.finish).ok_or_else(stream::stopped)?;
                let (content, calls) = tool_calls::parse(&content, &answer.tools);
                if !calls.is_empty() {
                    finish = "tool_calls";
                }
                let message = AnswerMessage {
                    role: "assistant",
                    content: (calls.is_empty() || !content.is_empty()).then_some(content),
                    tool_calls: calls.iter().map(WireToolCall::from).collect(),
                };
                let completion = Completion {
                    id: answer.id,
                    object: "chat.completion",
                    created: answer.created,
                    model: answer.model,
                    choices: [Choice { index: 0, message, finish_reason: finish, logprobs }],
                    usage: Usage::from(&stats),
                };
                return Ok(Json(completion).into_response());
            }
            Some(ChatEvent::Error { error }) => return Err(OpenAiError::internal(error)),
            None => return Err(OpenAiError::internal("the answer ended without a word from the brain")),
        }
    }
}
