//! The JSON API driven over HTTP, against the real `localbrain` binary (issue 5, "Done when"):
//! ownership on every endpoint, 401 without a session, 400 for bad input with nothing written,
//! single-use login links and the cookie's flags, Origin/Host/body-size hygiene, 20 racing
//! starts, and a full download with its state transitions.
//!
//! Every test starts its own server (a child process on a free port, a temp data folder) and its
//! own model host (the test kit's loopback host). The database is a SQLite file of its own, or,
//! when DATABASE_URL is `postgres://...`, a fresh database per test on that server:
//!
//!     cargo test -p localbrain-server --test api
//!     DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p localbrain-server --test api

mod balancer;
mod chat;
mod conversations;
mod embeddings;
mod guesses;
mod harness;
mod headers;
mod hub;
mod hub_split;
mod instances;
mod instances_bench;
mod internal_errors;
mod keys;
mod models;
mod openai;
mod public_url;
mod retrying;
mod signout;
mod slow_clients;
mod structured;
mod text_completions;
mod tools;

use harness::*;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{ETAG, sha256_hex};

/// Long enough for a slow, shared CI machine; every wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(60);

/// The endpoints that act on one download by id.
const BY_ID: [&str; 5] =
    ["downloads/get", "downloads/pause", "downloads/resume", "downloads/cancel", "downloads/try_now"];

/// Starts `model` for `user` with the host holding the body at `hold` bytes, and waits until the
/// engine has all of them: the download then sits in `downloading` and nothing moves.
async fn start_held(s: &Server, user: &User, model: &str, hold: u64) -> i64 {
    let id = id_of(&s.start_dl(user, model).await);
    s.wait_dl(user, id, "downloading, held", WAIT, |r| {
        status_of(r) == "downloading" && r["bytes_downloaded"].as_u64() == Some(hold)
    })
    .await;
    id
}

/// Every endpoint that acts on a download, as `who`, on download `id`: all must be 404 with the
/// same words as for a download that does not exist at all (no existence leak).
async fn assert_not_found_everywhere(s: &Server, who: &User, id: i64, missing_words: &[String; 5]) {
    for (endpoint, missing) in BY_ID.iter().zip(missing_words) {
        let a = s.call(Some(who), endpoint, json!({ "id": id })).await;
        assert_eq!(a.status, 404, "{} on another user's download {id} via {endpoint}: {}", who.name, a.text);
        assert_eq!(a.error(), missing, "{endpoint}: another user's download must read like a missing one");
    }
    let listed: Vec<i64> = s.list(who).await.iter().map(id_of).collect();
    assert!(!listed.contains(&id), "{}'s list shows another user's download {id}: {listed:?}", who.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_download_is_not_found_on_every_endpoint_and_stays_unchanged() {
    const HOLD: u64 = 256 * 1024;
    let host = model_host().await;
    host.set_path(ALPHA_PATH, |k| k.hold_at = Some(HOLD));
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let bob = s.add_user("bob").await;

    // Alice has one download in each kind of state: complete, failed, downloading (then paused).
    let beta = id_of(&s.start_dl(&alice, BETA).await);
    s.wait_dl(&alice, beta, "complete", WAIT, |r| status_of(r) == "complete").await;
    let gamma = id_of(&s.start_dl(&alice, GAMMA).await);
    s.wait_dl(&alice, gamma, "failed", WAIT, |r| status_of(r) == "failed").await;
    let alpha = start_held(&s, &alice, ALPHA, HOLD).await;
    let beta_installed = std::fs::read(s.installed_path(BETA)).unwrap();

    // What "not found" says for an id nobody has.
    let nobody = alpha + beta + gamma + 1000;
    let mut missing_words: [String; 5] = Default::default();
    for (endpoint, words) in BY_ID.iter().zip(missing_words.iter_mut()) {
        let a = s.call(Some(&alice), endpoint, json!({ "id": nobody })).await;
        assert_eq!(a.status, 404, "{endpoint} on a missing id: {}", a.text);
        *words = a.error().to_string();
    }

    // 1. While alpha is downloading (live speed and ETA move with the clock, so they are left out).
    let before: Vec<Value> = s.list(&alice).await.iter().map(without_live).collect();
    assert_eq!(before.len(), 3, "{before:?}");
    for id in [alpha, beta, gamma] {
        assert_not_found_everywhere(&s, &bob, id, &missing_words).await;
    }
    let after: Vec<Value> = s.list(&alice).await.iter().map(without_live).collect();
    assert_eq!(after, before, "bob's attempts changed alice's downloads");
    assert_eq!(status_of(&s.get_dl(&alice, alpha).await), "downloading");

    // 2. With alpha paused and its runner gone, the rows are still: compare them whole.
    let paused = s.ok(&alice, "downloads/pause", json!({ "id": alpha })).await;
    assert_eq!(status_of(&paused), "paused");
    s.wait_dl(&alice, alpha, "paused with the held bytes recorded", WAIT, |r| {
        status_of(r) == "paused" && r["bytes_downloaded"].as_u64() == Some(HOLD)
    })
    .await;
    wait_for("the host to see alpha's connection close", WAIT, || async {
        host.requests(ALPHA_PATH).iter().all(|r| r.ended).then_some(())
    })
    .await;
    let before = s.list(&alice).await;
    for id in [alpha, beta, gamma] {
        assert_not_found_everywhere(&s, &bob, id, &missing_words).await;
        assert_eq!(s.get_dl(&alice, id).await, before.iter().find(|r| id_of(r) == id).unwrap().clone());
    }
    assert_eq!(s.list(&alice).await, before, "bob's attempts changed alice's downloads");
    assert!(s.list(&bob).await.is_empty(), "bob has no downloads of his own yet");

    // Nothing on disk or on the wire moved either: bob's resume started no transfer, his cancel
    // removed no partial, and alice's installed model is intact.
    assert_eq!(host.requests(ALPHA_PATH).len(), 1, "{:?}", host.requests(ALPHA_PATH));
    assert_eq!(std::fs::metadata(s.partial_path(ALPHA, alpha)).unwrap().len(), HOLD);
    assert_eq!(std::fs::read(s.installed_path(BETA)).unwrap(), beta_installed);
    assert_eq!(s.count_rows("model_downloads").await, 3);

    // Bob's own start of a model alice has is a row of his own, and leaves hers alone.
    let bobs = s.start_dl(&bob, BETA).await;
    assert_ne!(id_of(&bobs), beta);
    s.wait_dl(&bob, id_of(&bobs), "complete", WAIT, |r| status_of(r) == "complete").await;
    let bobs_list: Vec<i64> = s.list(&bob).await.iter().map(id_of).collect();
    assert_eq!(bobs_list, vec![id_of(&bobs)]);
    assert_eq!(s.list(&alice).await, before, "bob's own download changed alice's rows");
    // And alice cannot reach bob's.
    assert_not_found_everywhere(&s, &alice, id_of(&bobs), &missing_words).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_get_401_on_every_endpoint() {
    const HOLD: u64 = 256 * 1024;
    let host = model_host().await;
    host.set_path(ALPHA_PATH, |k| k.hold_at = Some(HOLD));
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let alpha = start_held(&s, &alice, ALPHA, HOLD).await;
    let before: Vec<Value> = s.list(&alice).await.iter().map(without_live).collect();

    // A real session id with one character changed.
    let mut forged = alice.cookie.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let cookies: [Option<&str>; 6] = [
        None,
        Some("lb_session=garbage"),
        Some("lb_session="),
        Some("lb_session=0000000000000000000000000000000000000000000000000000000000000000"),
        Some("other_cookie=1"),
        Some(forged.as_str()),
    ];
    let calls: [(&str, Value); 8] = [
        ("catalog", json!({})),
        ("downloads/start", json!({ "model_id": BETA })),
        ("downloads/start", json!({ "model_id": ALPHA })),
        ("downloads/list", json!({})),
        ("downloads/get", json!({ "id": alpha })),
        ("downloads/pause", json!({ "id": alpha })),
        ("downloads/resume", json!({ "id": alpha })),
        ("downloads/cancel", json!({ "id": alpha })),
    ];
    for cookie in cookies {
        for (endpoint, body) in &calls {
            let a = s.post_raw(cookie, endpoint, serde_json::to_vec(body).unwrap(), &[]).await;
            assert_eq!(a.status, 401, "{endpoint} {body} with cookie {cookie:?}: {}", a.text);
            assert!(!a.error().is_empty());
        }
    }

    let after: Vec<Value> = s.list(&alice).await.iter().map(without_live).collect();
    assert_eq!(after, before, "unauthenticated calls changed alice's download");
    assert_eq!(s.count_rows("model_downloads").await, 1, "an unauthenticated start wrote a row");
    assert!(host.requests(BETA_PATH).is_empty(), "an unauthenticated start reached the model host");
    assert_eq!(s.model_files(), vec![format!(".partial/{ALPHA}.{alpha}.partial")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_400_and_writes_nothing() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let alice = s.admin().await;

    let ten_kb = "a".repeat(10 * 1024);
    let ten_kb_dots = "../".repeat(10 * 1024 / 3);
    let path_like: Vec<&str> = vec![
        "../x",
        "/etc/passwd",
        "a/b",
        "",
        &ten_kb,
        &ten_kb_dots,
        "..",
        ".",
        ".partial",
        "../../../../etc/passwd",
        "..\\x",
        "C:\\Windows\\x",
        "alpha-test-q4_k_m/../beta-test-q8_0",
        "./alpha-test-q4_k_m",
        "alpha-test-q4_k_m\u{0}",
        "alpha-test-q4_k_m ",
        "ALPHA-TEST-Q4_K_M",
        "%2e%2e%2fx",
        "no-such-model",
        "alpha-test-q4_k_m.gguf",
    ];
    let mut bodies: Vec<(&str, Vec<u8>)> = vec![
        ("downloads/start", b"{".to_vec()),
        ("downloads/start", b"".to_vec()),
        ("downloads/start", b"not json".to_vec()),
        ("downloads/start", b"[]".to_vec()),
        ("downloads/start", b"{}".to_vec()),
        ("downloads/start", br#"{"model_id": 5}"#.to_vec()),
        ("downloads/start", br#"{"model_id": null}"#.to_vec()),
        ("downloads/start", br#"{"model_id": ["alpha-test-q4_k_m"]}"#.to_vec()),
        ("downloads/start", br#"{"model_id": "alpha-test-q4_k_m""#.to_vec()),
    ];
    for id in &path_like {
        bodies.push(("downloads/start", serde_json::to_vec(&json!({ "model_id": id })).unwrap()));
    }
    for endpoint in BY_ID {
        for body in [
            "{",
            r#"{"id":"x"}"#,
            r#"{"id":"../x"}"#,
            r#"{"id":"1"}"#,
            r#"{"id":1.5}"#,
            r#"{"id":null}"#,
            r#"{}"#,
            r#"{"id":99999999999999999999999}"#,
            r#"{"model_id":"alpha-test-q4_k_m"}"#,
        ] {
            bodies.push((endpoint, body.as_bytes().to_vec()));
        }
    }
    bodies.push(("downloads/list", b"{".to_vec()));
    for (endpoint, body) in &bodies {
        assert!(body.len() < 16 * 1024, "keep bad-input bodies under the size limit");
        let a = s.post_raw(Some(&alice.cookie), endpoint, body.clone(), &[]).await;
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        assert_eq!(a.status, 400, "{endpoint} {shown:?}: {}", a.text);
        assert!(!a.error().is_empty(), "{endpoint} {shown:?}: 400 without words");
    }

    // Nothing was written: no row, no file, no request to the model host.
    assert!(s.list(&alice).await.is_empty());
    assert_eq!(s.count_rows("model_downloads").await, 0);
    assert_eq!(s.model_files(), Vec::<String>::new());
    assert!(host.seen().is_empty(), "bad input reached the model host: {:?}", host.seen());
    // Nothing escaped the models folder either.
    assert!(!s.data_dir.join("x").exists() && !s.data_dir.join("x.gguf").exists());
    assert!(!s.models_dir.parent().unwrap().join("x.gguf").exists());
}

/// `name=value; Attr; Attr=v` -> the attribute names and values, lowercased names.
fn cookie_attrs(set_cookie: &str) -> Vec<(String, String)> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| {
            let (k, v) = a.trim().split_once('=').unwrap_or((a.trim(), ""));
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_link_is_single_use_and_the_cookie_is_httponly_samesite_strict() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let bob_link = s.user_add_link("bob");

    for (who, link) in [("admin", s.admin_link.clone()), ("bob", bob_link)] {
        let first = s.http.get(&link).send().await.unwrap();
        assert_eq!(first.status().as_u16(), 303, "{who}: first use of the link");
        assert_eq!(first.headers()["location"], "/settings", "{who}");
        let set_cookie = first
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|v| v.starts_with("lb_session="))
            .unwrap_or_else(|| panic!("{who}: no session cookie"));
        let value = set_cookie.split(';').next().unwrap().trim_start_matches("lb_session=");
        assert!(value.len() >= 32, "{who}: session id too short to be unguessable: {value:?}");
        let attrs = cookie_attrs(&set_cookie);
        assert!(attrs.iter().any(|(k, _)| k == "httponly"), "{who}: not HttpOnly: {set_cookie}");
        assert!(
            attrs.iter().any(|(k, v)| k == "samesite" && v.eq_ignore_ascii_case("strict")),
            "{who}: not SameSite=Strict: {set_cookie}"
        );
        assert!(attrs.iter().any(|(k, v)| k == "path" && v == "/"), "{who}: not Path=/: {set_cookie}");

        // The cookie signs in.
        let user = User { name: who.to_string(), cookie: format!("lb_session={value}") };
        assert!(s.list(&user).await.is_empty());

        // The link is spent.
        let second = s.http.get(&link).send().await.unwrap();
        assert_eq!(second.status().as_u16(), 400, "{who}: second use of the link must be refused");
        assert!(
            second.headers().get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().starts_with("lb_session=")),
            "{who}: a spent link set a session cookie"
        );
        // ...and the first session still works.
        assert!(s.list(&user).await.is_empty());
    }

    // Links that never were.
    for bad in ["/login", "/login?token=", "/login?token=nope", &format!("/login?token={}", "0".repeat(64))] {
        let r = s.http.get(format!("{}{bad}", s.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{bad}");
        assert!(r.headers().get("set-cookie").is_none(), "{bad} set a cookie");
    }
    assert_eq!(s.count_rows("sessions").await, 2, "exactly the two good sign-ins made sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_is_403_and_foreign_host_is_421_and_nothing_happens() {
    const HOLD: u64 = 256 * 1024;
    let host = model_host().await;
    host.set_path(ALPHA_PATH, |k| k.hold_at = Some(HOLD));
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let here = format!("127.0.0.1:{}", s.port);
    let elsewhere = format!("127.0.0.1:{}", if s.port == 65535 { 1 } else { s.port + 1 });
    let beta_start = serde_json::to_vec(&json!({ "model_id": BETA })).unwrap();

    // Foreign Origin on a state-changing request: refused, nothing started.
    for origin in [
        "http://evil.example",
        "https://evil.example",
        &format!("http://{elsewhere}"),
        "http://localhost.evil.example",
        "null",
    ] {
        let a = s.post_raw(Some(&alice.cookie), "downloads/start", beta_start.clone(), &[("origin", origin)]).await;
        assert_eq!(a.status, 403, "Origin {origin}: {}", a.text);
        assert!(!a.error().is_empty());
    }
    assert_eq!(s.count_rows("model_downloads").await, 0, "a cross-site start wrote a row");
    assert!(host.seen().is_empty(), "a cross-site start reached the model host");
    assert_eq!(s.model_files(), Vec::<String>::new());

    // ...nor cancelled: a cross-site cancel of a running download leaves it running.
    let alpha = start_held(&s, &alice, ALPHA, HOLD).await;
    for endpoint in ["downloads/cancel", "downloads/pause"] {
        let a = s
            .post_raw(
                Some(&alice.cookie),
                endpoint,
                serde_json::to_vec(&json!({ "id": alpha })).unwrap(),
                &[("origin", "http://evil.example")],
            )
            .await;
        assert_eq!(a.status, 403, "{endpoint}: {}", a.text);
    }
    assert_eq!(status_of(&s.get_dl(&alice, alpha).await), "downloading");
    assert!(s.partial_path(ALPHA, alpha).exists());

    // The same origin is welcome (so the 403s above are about the origin, not the header).
    let a = s
        .post_raw(Some(&alice.cookie), "downloads/list", b"{}".to_vec(), &[("origin", &format!("http://{here}"))])
        .await;
    assert_eq!(a.status, 200, "same-origin list: {}", a.text);

    // A Host that is not this server (DNS rebinding): 421, on the API and on the login page.
    let link = s.user_add_link("bob");
    let path_and_query = &link[link.find("/login").unwrap()..];
    for bad_host in [
        format!("evil.example:{}", s.port),
        elsewhere.clone(),
        "evil.example".to_string(),
        format!("10.1.2.3:{}", s.port),
    ] {
        let a = s.post_raw(Some(&alice.cookie), "downloads/start", beta_start.clone(), &[("host", &bad_host)]).await;
        assert_eq!(a.status, 421, "start with Host {bad_host}: {}", a.text);
        let a = s.post_raw(Some(&alice.cookie), "downloads/list", b"{}".to_vec(), &[("host", &bad_host)]).await;
        assert_eq!(a.status, 421, "list with Host {bad_host}: {}", a.text);
        // In the API's error shape, like every other refusal under /api.
        assert_eq!((a.json["kind"].as_str(), a.error()), (Some("misdirected"), "unknown Host"), "{}", a.text);
        let r = s.http.get(format!("{}{path_and_query}", s.base)).header("host", &bad_host).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 421, "login with Host {bad_host}");
        assert!(r.headers().get("set-cookie").is_none());
        // A page, like the login link's other refusals.
        let kind = r.headers()["content-type"].to_str().unwrap().to_string();
        let page = r.text().await.unwrap();
        assert!(kind.starts_with("text/html") && page.contains("<h1>Unknown address</h1>"), "{kind}: {page}");
    }
    // The refused login did not spend the link, and localhost on our port is ours.
    let r = s
        .http
        .get(format!("{}{path_and_query}", s.base))
        .header("host", format!("localhost:{}", s.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "the link still works after the 421s, via localhost");
    assert_eq!(s.count_rows("model_downloads").await, 1, "a foreign-Host start wrote a row");
    assert!(host.requests(BETA_PATH).is_empty(), "a refused start reached the model host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_16_kib_are_refused_with_413_and_change_nothing() {
    const HOLD: u64 = 256 * 1024;
    let host = model_host().await;
    host.set_path(ALPHA_PATH, |k| k.hold_at = Some(HOLD));
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let alpha = start_held(&s, &alice, ALPHA, HOLD).await;

    // Oversized bodies, whatever they say: a start naming a model (valid JSON, only too long), junk,
    // a valid cancel padded with spaces, and a start sent chunked (no Content-Length).
    let big_start = serde_json::to_vec(&json!({ "model_id": "a".repeat(20 * 1024) })).unwrap();
    let big_junk = vec![b'x'; 20 * 1024];
    let padded_start = format!("{{\"model_id\": \"{BETA}\"{}}}", " ".repeat(20 * 1024)).into_bytes();
    let padded_cancel = format!("{{\"id\": {alpha}{}}}", " ".repeat(20 * 1024)).into_bytes();
    let mut statuses = Vec::new();
    for (endpoint, body) in [
        ("downloads/start", &big_start),
        ("downloads/start", &big_junk),
        ("downloads/start", &padded_start),
        ("downloads/cancel", &padded_cancel),
    ] {
        assert!(body.len() > 16 * 1024);
        let a = s.post_raw(Some(&alice.cookie), endpoint, body.clone(), &[]).await;
        statuses.push((format!("{endpoint} with {} bytes", body.len()), a.status, a.text));
    }
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = padded_start.chunks(1024).map(|c| Ok(c.to_vec())).collect();
    let chunked = s
        .http
        .post(format!("{}/api/downloads/start", s.base))
        .header("content-type", "application/json")
        .header("cookie", &alice.cookie)
        .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    statuses.push((
        format!("chunked downloads/start with {} bytes", padded_start.len()),
        chunked.status().as_u16(),
        chunked.text().await.unwrap(),
    ));

    // Nothing happened: no new row, the running download was not cancelled, no request for beta.
    assert_eq!(s.count_rows("model_downloads").await, 1, "an oversized start wrote a row: {statuses:?}");
    assert_eq!(
        status_of(&s.get_dl(&alice, alpha).await),
        "downloading",
        "an oversized cancel went through: {statuses:?}"
    );
    assert!(host.requests(BETA_PATH).is_empty());
    assert_eq!(s.model_files(), vec![format!(".partial/{ALPHA}.{alpha}.partial")]);

    // ...and the refusal says what it is: 413 Payload Too Large.
    let wrong: Vec<_> = statuses.iter().filter(|(_, status, _)| *status != 413).collect();
    assert!(wrong.is_empty(), "oversized bodies must get 413; got: {wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_simultaneous_starts_make_one_row_one_runner_one_partial() {
    const HOLD: u64 = 1024 * 1024;
    let host = model_host().await;
    host.set_path(ALPHA_PATH, |k| k.hold_at = Some(HOLD));
    let s = std::sync::Arc::new(Server::start(&host).await);
    let alice = s.admin().await;

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (s, alice, barrier) = (s.clone(), alice.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            s.call(Some(&alice), "downloads/start", json!({ "model_id": ALPHA })).await
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let a = done.unwrap();
        assert_eq!(a.status, 200, "a racing start failed: {}", a.text);
        assert_eq!(a.json["model_id"], ALPHA);
        ids.push(id_of(&a.json));
    }
    let id = ids[0];
    assert!(ids.iter().all(|i| *i == id), "racing starts returned different downloads: {ids:?}");

    let listed = s.list(&alice).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(id_of(&listed[0]), id);
    assert_eq!(s.count_rows("model_downloads").await, 1);

    // While it runs: one transfer, one partial.
    s.wait_dl(&alice, id, "downloading, held", WAIT, |r| {
        status_of(r) == "downloading" && r["bytes_downloaded"].as_u64() == Some(HOLD)
    })
    .await;
    assert_eq!(host.requests(ALPHA_PATH).len(), 1, "{:?}", host.requests(ALPHA_PATH));
    assert_eq!(s.model_files(), vec![format!(".partial/{ALPHA}.{id}.partial")]);

    // Let it finish: still one request in all, and one installed file.
    host.set_path(ALPHA_PATH, |k| k.hold_at = None);
    let done = s.wait_dl(&alice, id, "complete", WAIT, |r| status_of(r) == "complete").await;
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    let requests = host.requests(ALPHA_PATH);
    assert_eq!(requests.len(), 1, "more than one runner fetched the model: {requests:?}");
    assert_eq!(requests[0].sent, ALPHA_SIZE as u64);
    assert_eq!(s.model_files(), vec![format!("{ALPHA}.gguf")]);
    assert_eq!(sha256_hex(&std::fs::read(s.installed_path(ALPHA)).unwrap()), sha256_hex(&alpha_bytes()));
    assert_eq!(s.list(&alice).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_runs_pauses_resumes_completes_and_refuses_wrong_transitions() {
    const HOLD: u64 = 2 * 1024 * 1024;
    let host = model_host().await;
    // About 1 MB/s, held at 2 MiB until released.
    host.set_path(ALPHA_PATH, |k| {
        k.chunk = 64 * 1024;
        k.chunk_delay = Duration::from_millis(60);
        k.hold_at = Some(HOLD);
    });
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let wrong = |a: &Answer, what: &str| {
        assert_eq!(a.status, 409, "{what}: {}", a.text);
        assert!(!a.error().is_empty());
    };

    let catalog = s.ok(&alice, "catalog", json!({})).await;
    let ids: Vec<&str> = catalog["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![ALPHA, BETA, GAMMA, SMOL, SMOL_TOOLS, SMOL_LLAMA3_TOOLS]);

    // Start: a fresh row with the catalog's numbers.
    let started = s.start_dl(&alice, ALPHA).await;
    let id = id_of(&started);
    assert!(matches!(status_of(&started), "pending" | "downloading"), "{started}");
    assert_eq!(started["model_id"], ALPHA);
    assert_eq!(started["total_bytes"].as_u64(), Some(ALPHA_SIZE as u64));
    assert!(started["completed_at"].is_null() && started["error"].is_null());
    // Starting again while it runs is the same download.
    assert_eq!(id_of(&s.start_dl(&alice, ALPHA).await), id);

    // Bytes flow, with a live speed and time left; resuming a running download is refused.
    let running = s
        .wait_dl(&alice, id, "bytes, speed and ETA", WAIT, |r| {
            status_of(r) == "downloading"
                && r["bytes_downloaded"].as_u64().unwrap() > 0
                && r["speed_bps"].as_u64().unwrap() > 0
                && r["eta_seconds"].as_u64().is_some()
        })
        .await;
    let pct = running["percent"].as_f64().unwrap();
    assert!(pct > 0.0 && pct < 100.0, "{running}");
    wrong(&s.call(Some(&alice), "downloads/resume", json!({ "id": id })).await, "resume a downloading one");

    // Pause at the hold point: the row keeps exactly what arrived.
    s.wait_dl(&alice, id, "the hold point", WAIT, |r| r["bytes_downloaded"].as_u64() == Some(HOLD)).await;
    let paused = s.ok(&alice, "downloads/pause", json!({ "id": id })).await;
    assert_eq!(status_of(&paused), "paused");
    assert!(paused["paused_at"].as_i64().is_some(), "{paused}");
    wrong(&s.call(Some(&alice), "downloads/pause", json!({ "id": id })).await, "pause a paused one");
    let settled = s
        .wait_dl(&alice, id, "paused with bytes recorded", WAIT, |r| {
            status_of(r) == "paused" && r["bytes_downloaded"].as_u64() == Some(HOLD)
        })
        .await;
    assert_eq!(settled["speed_bps"].as_u64(), Some(0));
    wait_for("the partial to hold the paused bytes", WAIT, || async {
        (std::fs::metadata(s.partial_path(ALPHA, id)).map(|m| m.len()).unwrap_or(0) == HOLD).then_some(())
    })
    .await;

    // Resume continues from the partial with Range + If-Range, and finishes.
    host.set_path(ALPHA_PATH, |k| {
        k.hold_at = None;
        k.chunk_delay = Duration::from_millis(5);
    });
    let resumed = s.ok(&alice, "downloads/resume", json!({ "id": id })).await;
    assert!(matches!(status_of(&resumed), "pending" | "downloading"), "{resumed}");
    let done = s.wait_dl(&alice, id, "complete", WAIT, |r| status_of(r) == "complete").await;
    let requests = host.requests(ALPHA_PATH);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!((requests[0].range.as_deref(), requests[0].status), (None, 200));
    assert_eq!(requests[1].range.as_deref(), Some(format!("bytes={HOLD}-").as_str()), "{requests:?}");
    assert_eq!(requests[1].if_range.as_deref(), Some(ETAG));
    assert_eq!(requests[1].status, 206);
    assert_eq!(requests[1].sent, ALPHA_SIZE as u64 - HOLD, "the resume fetched only the rest");

    // Installed, verified, nothing left behind.
    let installed = s.installed_path(ALPHA);
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    assert_eq!(done["percent"].as_f64(), Some(100.0));
    assert!(done["completed_at"].as_i64().is_some() && done["error"].is_null(), "{done}");
    assert_eq!(done["target_path"].as_str(), Some(installed.to_str().unwrap()));
    let bytes = std::fs::read(&installed).unwrap();
    assert_eq!(bytes.len(), ALPHA_SIZE);
    assert_eq!(sha256_hex(&bytes), sha256_hex(&alpha_bytes()));
    assert_eq!(s.model_files(), vec![format!("{ALPHA}.gguf")]);

    // A complete download takes no more orders.
    for endpoint in ["downloads/pause", "downloads/resume", "downloads/cancel"] {
        wrong(&s.call(Some(&alice), endpoint, json!({ "id": id })).await, &format!("{endpoint} a complete one"));
    }
    assert_eq!(s.get_dl(&alice, id).await, done);
    assert!(installed.exists(), "a refused cancel removed the installed model");

    // Cancel: the partial goes, and a cancelled download takes no more orders.
    host.set_path(BETA_PATH, |k| k.hold_at = Some(256 * 1024));
    let beta = start_held(&s, &alice, BETA, 256 * 1024).await;
    assert!(s.partial_path(BETA, beta).exists());
    let cancelled = s.ok(&alice, "downloads/cancel", json!({ "id": beta })).await;
    assert_eq!(status_of(&cancelled), "cancelled");
    assert!(!s.partial_path(BETA, beta).exists(), "cancel kept the partial");
    for endpoint in ["downloads/pause", "downloads/resume", "downloads/cancel"] {
        wrong(&s.call(Some(&alice), endpoint, json!({ "id": beta })).await, &format!("{endpoint} a cancelled one"));
    }
    assert_eq!(status_of(&s.get_dl(&alice, beta).await), "cancelled");
    // Starting it again is a new download, which completes.
    host.set_path(BETA_PATH, |k| k.hold_at = None);
    let again = id_of(&s.start_dl(&alice, BETA).await);
    assert_ne!(again, beta);
    s.wait_dl(&alice, again, "complete", WAIT, |r| status_of(r) == "complete").await;
    assert_eq!(sha256_hex(&std::fs::read(s.installed_path(BETA)).unwrap()), sha256_hex(&beta_bytes()));

    // A failed download: pause is refused, Retry (resume) tries again, Dismiss (cancel) ends it.
    let gamma = id_of(&s.start_dl(&alice, GAMMA).await);
    let failed = s.wait_dl(&alice, gamma, "failed", WAIT, |r| status_of(r) == "failed").await;
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("404")), "{failed}");
    wrong(&s.call(Some(&alice), "downloads/pause", json!({ "id": gamma })).await, "pause a failed one");
    let retried = s.ok(&alice, "downloads/resume", json!({ "id": gamma })).await;
    assert!(matches!(status_of(&retried), "pending" | "downloading" | "failed"), "{retried}");
    wait_for("the retry to reach the host", WAIT, || async { (host.requests(GAMMA_PATH).len() == 2).then_some(()) })
        .await;
    s.wait_dl(&alice, gamma, "failed again", WAIT, |r| status_of(r) == "failed").await;
    assert_eq!(status_of(&s.ok(&alice, "downloads/cancel", json!({ "id": gamma })).await), "cancelled");

    // The list: the caller's downloads, newest first.
    let listed: Vec<i64> = s.list(&alice).await.iter().map(id_of).collect();
    assert_eq!(listed, vec![gamma, again, beta, id]);
    assert_eq!(s.model_files(), vec![format!("{ALPHA}.gguf"), format!("{BETA}.gguf")]);
}
