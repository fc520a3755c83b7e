//! "Models on this machine" over HTTP (issue 15): the list with its records and facts, delete
//! (admins only; refused while a download of the model is checking it or the brain is
//! generating with it), "removed" on the downloads that installed it, a re-check finding a
//! damaged file, and the unfinished downloads with what their partials hold. A check runs as
//! a job: the request answers at once, the list shows its progress, cancel and delete stop it,
//! and a client that leaves does not.

use super::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Downloads `model` as `user` to the end.
async fn install(s: &Server, user: &User, model: &str) -> i64 {
    let id = id_of(&s.start_dl(user, model).await);
    s.wait_dl(user, id, "complete", WAIT, |r| status_of(r) == "complete").await;
    id
}

async fn models(s: &Server, user: &User) -> Value {
    s.ok(user, "models/list", json!({})).await
}

fn listed<'a>(view: &'a Value, model: &str) -> Option<&'a Value> {
    view["models"].as_array().unwrap().iter().find(|m| m["model_id"] == model)
}

/// Runs one SQL statement on the server's database, as the engine would have left a row.
async fn sql(s: &Server, statement: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&s.database_url).await.expect("open test database");
    sqlx::query(statement).execute(&mut c).await.unwrap();
    c.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_installed_models_with_their_record_facts_and_the_disk_line() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    install(&s, &admin, BETA).await;
    // Copied in by hand: no record, so "not checked yet"; its header gives the facts.
    s.install_smol();

    let view = models(&s, &admin).await;
    assert_eq!(view["is_admin"], true, "{view}");
    let beta = listed(&view, BETA).unwrap_or_else(|| panic!("beta listed: {view}"));
    assert_eq!(beta["check"], "verified", "{beta}");
    assert_eq!(beta["size_bytes"], BETA_SIZE as u64);
    assert!(beta["installed_at"].as_i64().unwrap() > 0 && beta["verified_at"].as_i64().is_some(), "{beta}");
    assert_eq!(beta["name"], "Beta Test");
    assert!(beta["problem"].as_str().unwrap().contains("not a GGUF"), "beta's bytes are no model: {beta}");
    let smol = listed(&view, SMOL).unwrap_or_else(|| panic!("smol listed: {view}"));
    assert_eq!(smol["check"], "not_checked", "{smol}");
    assert!(smol["verified_at"].is_null());
    assert_eq!(smol["facts"]["architecture"], "llama", "{smol}");
    assert!(smol["in_use"].is_null());
    let smol_size = std::fs::metadata(test_model_path()).unwrap().len();
    assert_eq!(view["models_bytes"], BETA_SIZE as u64 + smol_size);
    assert_eq!(view["partial_bytes"], 0);
    assert!(view["free_bytes"].as_u64().unwrap() > 0);

    // A stray file is listed by its name, with no catalog id (so no delete).
    std::fs::write(s.models_dir.join("stray.gguf"), b"not a model").unwrap();
    let view = models(&s, &admin).await;
    let stray = view["models"].as_array().unwrap().iter().find(|m| m["file_name"] == "stray.gguf").unwrap();
    assert!(stray["model_id"].is_null(), "{stray}");
    // Only a catalog id names a file: the stray one cannot be deleted by its name.
    let a = s.call(Some(&admin), "models/delete", json!({ "model_id": "stray" })).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = s.call(Some(&admin), "models/delete", json!({ "model_id": "../localbrain.db" })).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(s.models_dir.join("stray.gguf").exists());

    // Signed out: 401.
    assert_eq!(s.call(None, "models/list", json!({})).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_deletes_and_the_download_that_installed_it_then_reads_removed() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    let bob = s.add_user("bob").await;
    let beta = install(&s, &admin, BETA).await;
    let bobs = install(&s, &bob, BETA).await;

    let bob_view = models(&s, &bob).await;
    assert_eq!(bob_view["is_admin"], false);
    let a = s.call(Some(&bob), "models/delete", json!({ "model_id": BETA })).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.error().contains("only an admin"), "{}", a.text);
    assert!(s.installed_path(BETA).exists(), "a refused delete deletes nothing");

    // A download of it checking the file (as the engine leaves a row while hashing): 409.
    sql(&s, &format!("UPDATE model_downloads SET status = 'verifying' WHERE id = {beta}")).await;
    let a = s.call(Some(&admin), "models/delete", json!({ "model_id": BETA })).await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(a.error().contains("checking"), "{}", a.text);
    assert_eq!(listed(&models(&s, &admin).await, BETA).unwrap()["in_use"], "installing");
    sql(&s, &format!("UPDATE model_downloads SET status = 'installing' WHERE id = {beta}")).await;
    assert_eq!(s.call(Some(&admin), "models/delete", json!({ "model_id": BETA })).await.status, 409);
    sql(&s, &format!("UPDATE model_downloads SET status = 'complete' WHERE id = {beta}")).await;
    assert!(s.installed_path(BETA).exists());

    // An admin made with `user add --admin` may delete.
    let carol = s.add_admin("carol").await;
    assert_eq!(models(&s, &carol).await["is_admin"], true);
    let view = s.ok(&carol, "models/delete", json!({ "model_id": BETA })).await;
    assert!(listed(&view, BETA).is_none(), "{view}");
    assert!(!s.installed_path(BETA).exists(), "the file is gone");
    assert_eq!(s.count_rows("installed_models").await, 0);
    for (user, id) in [(&admin, beta), (&bob, bobs)] {
        let row = s.get_dl(user, id).await;
        assert_eq!(status_of(&row), "complete");
        assert!(row["removed_at"].as_i64().is_some(), "the download says removed: {row}");
    }
    // Gone now: 404.
    let a = s.call(Some(&admin), "models/delete", json!({ "model_id": BETA })).await;
    assert_eq!(a.status, 404, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_refused_while_the_brain_generates_with_the_model() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    s.install_smol();
    let admin = s.admin().await;
    let body = json!({ "model_id": SMOL, "max_tokens": 900, "temperature": 0,
        "messages": [{ "role": "user", "content": "Write a very long story about a dragon." }] });
    let mut resp = s
        .http
        .post(format!("{}/api/chat", s.base))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::COOKIE, &admin.cookie)
        .timeout(Duration::from_secs(120))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("\"piece\"") {
        seen.push_str(&String::from_utf8_lossy(&resp.chunk().await.unwrap().expect("the reply goes on")));
    }
    assert_eq!(listed(&models(&s, &admin).await, SMOL).unwrap()["in_use"], "generating");
    let a = s.call(Some(&admin), "models/delete", json!({ "model_id": SMOL })).await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(a.error().contains("answering a chat"), "{}", a.text);
    assert!(s.installed_path(SMOL).exists());

    drop(resp); // the reply stops; the model stays loaded, idle
    wait_for("the brain to be idle", WAIT, || async {
        (s.ok(&admin, "brain", json!({})).await["busy"] == false).then_some(())
    })
    .await;
    let view = s.ok(&admin, "models/delete", json!({ "model_id": SMOL })).await;
    assert!(listed(&view, SMOL).is_none());
    assert!(!s.installed_path(SMOL).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_again_finds_a_damaged_file_and_a_fresh_download_replaces_it() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    let bob = s.add_user("bob").await;
    install(&s, &admin, BETA).await;

    s.ok(&bob, "models/verify", json!({ "model_id": BETA })).await;
    let same = check_ended(&s, &bob, BETA).await;
    assert_eq!(same["check"], "verified", "{same}");

    // One byte flipped in the middle of the installed file.
    let path = s.installed_path(BETA);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[BETA_SIZE / 2] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    s.ok(&bob, "models/verify", json!({ "model_id": BETA })).await;
    let damaged = check_ended(&s, &bob, BETA).await;
    assert_eq!(damaged["check"], "damaged", "{damaged}");
    assert_eq!(listed(&models(&s, &admin).await, BETA).unwrap()["check"], "damaged");

    // A fresh download hashes the file, finds it wrong and downloads it again.
    let id = install(&s, &bob, BETA).await;
    assert_eq!(std::fs::read(&path).unwrap(), beta_bytes());
    assert!(s.get_dl(&bob, id).await["removed_at"].is_null());
    assert_eq!(listed(&models(&s, &admin).await, BETA).unwrap()["check"], "verified");

    let a = s.call(Some(&bob), "models/verify", json!({ "model_id": ALPHA })).await;
    assert_eq!(a.status, 404, "not installed: {}", a.text);
}

/// A model file big enough that hashing it takes a while (seconds in a debug build): real
/// bytes, written as a copy by hand would leave it; its size is not the catalog's, so a check
/// that ends finds it damaged.
const BIG: u64 = 256 << 20;

fn write_big_model(s: &Server, model: &str) {
    use std::io::Write;
    std::fs::create_dir_all(&s.models_dir).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(s.installed_path(model)).unwrap());
    let chunk = test_bytes(1 << 20, 7);
    for _ in 0..BIG >> 20 {
        f.write_all(&chunk).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// The check of `model` as the list shows it: `Some(bytes_done)` while it runs.
async fn checking(s: &Server, user: &User, model: &str) -> Option<u64> {
    let view = models(s, user).await;
    let row = listed(&view, model).unwrap_or_else(|| panic!("{model} listed: {view}"));
    row["checking"].as_object().map(|c| {
        assert_eq!(c["total"], BIG, "{row}");
        c["bytes_done"].as_u64().unwrap()
    })
}

/// Waits until the check of `model` has hashed more than `past` bytes; how far it got.
async fn hashed_past(s: &Server, user: &User, model: &str, past: u64) -> u64 {
    wait_for("the check to go on", WAIT, || async {
        let done = checking(s, user, model).await.unwrap_or_else(|| panic!("the check of {model} ended"));
        (done > past).then_some(done)
    })
    .await
}

/// Waits until no check of `model` runs; its row then.
async fn check_ended(s: &Server, user: &User, model: &str) -> Value {
    wait_for("the check to end", WAIT, || async {
        let view = models(s, user).await;
        let row = listed(&view, model).unwrap().clone();
        row["checking"].is_null().then_some(row)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_answers_before_the_hash_ends_and_the_list_shows_it_going_on() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    let bob = s.add_user("bob").await;
    write_big_model(&s, ALPHA);

    let started = std::time::Instant::now();
    let answer = s.ok(&bob, "models/verify", json!({ "model_id": ALPHA })).await;
    println!("models/verify answered in {} ms", started.elapsed().as_millis());
    assert_eq!(answer["check"], "not_checked", "the answer came before the result: {answer}");
    assert_eq!(answer["checking"]["total"], BIG, "{answer}");
    assert!(answer["checking"]["bytes_done"].as_u64().unwrap() < BIG, "{answer}");
    assert_eq!(s.count_rows("installed_models").await, 0, "nothing recorded while it runs");

    // Everyone's list shows it moving.
    let first = hashed_past(&s, &admin, ALPHA, 0).await;
    let later = hashed_past(&s, &bob, ALPHA, first).await;
    assert!(later < BIG, "{later}");
    // Asking again joins it: a fresh check would start over from nothing.
    let again = s.ok(&admin, "models/verify", json!({ "model_id": ALPHA })).await;
    assert!(again["checking"]["bytes_done"].as_u64().unwrap() >= later, "joined: {again}");

    let done = check_ended(&s, &admin, ALPHA).await;
    println!("the check took {} ms", started.elapsed().as_millis());
    assert_eq!(done["check"], "damaged", "its size is not the catalog's: {done}");
    assert!(done["verified_at"].as_i64().is_some(), "{done}");
    assert_eq!(s.count_rows("installed_models").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_check_and_the_last_result_stands_and_delete_stops_one_first() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    write_big_model(&s, ALPHA);
    // What an earlier check of this very file found.
    sql(
        &s,
        &format!(
            "INSERT INTO installed_models (model_id, size_bytes, sha256, installed_at, verified_at, state)
         VALUES ('{ALPHA}', {BIG}, '{}', 1000, 2000, 'verified')",
            "e".repeat(64)
        ),
    )
    .await;
    assert_eq!(listed(&models(&s, &admin).await, ALPHA).unwrap()["check"], "verified");

    s.ok(&admin, "models/verify", json!({ "model_id": ALPHA })).await;
    hashed_past(&s, &admin, ALPHA, 0).await;
    let stopped = s.ok(&admin, "models/verify/cancel", json!({ "model_id": ALPHA })).await;
    // It answers once the check has ended: nothing of it is recorded after.
    assert!(stopped["checking"].is_null(), "{stopped}");
    assert_eq!(
        (stopped["check"].as_str(), stopped["verified_at"].as_i64()),
        (Some("verified"), Some(2000)),
        "{stopped}"
    );
    let row = listed(&models(&s, &admin).await, ALPHA).unwrap().clone();
    assert_eq!((row["checking"].is_null(), row["verified_at"].as_i64()), (true, Some(2000)), "{row}");
    // Nothing runs now: cancel again answers the same row.
    let again = s.ok(&admin, "models/verify/cancel", json!({ "model_id": ALPHA })).await;
    assert_eq!(again, stopped);

    // Delete while a check runs: the check stops, the file and its record go.
    s.ok(&admin, "models/verify", json!({ "model_id": ALPHA })).await;
    hashed_past(&s, &admin, ALPHA, 0).await;
    let view = s.ok(&admin, "models/delete", json!({ "model_id": ALPHA })).await;
    assert!(listed(&view, ALPHA).is_none(), "{view}");
    assert!(!s.installed_path(ALPHA).exists());
    assert_eq!(s.count_rows("installed_models").await, 0, "the stopped check recorded nothing");

    let a = s.call(Some(&admin), "models/verify/cancel", json!({ "model_id": ALPHA })).await;
    assert_eq!(a.status, 404, "not installed: {}", a.text);
    let a = s.call(None, "models/verify/cancel", json!({ "model_id": ALPHA })).await;
    assert_eq!(a.status, 401, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_goes_on_to_its_record_when_the_client_that_asked_leaves() {
    use tokio::io::AsyncWriteExt;
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    write_big_model(&s, ALPHA);

    // The whole request; once the server is at it, the connection closes with nothing of the
    // answer read (a client that closes before the server has read its request is not served:
    // hyper drops a request whose client is gone).
    let body = json!({ "model_id": ALPHA }).to_string();
    let request = format!(
        "POST /api/models/verify HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nCookie: {}\r\nContent-Length: {}\r\n\r\n{body}",
        s.port,
        admin.cookie,
        body.len()
    );
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    wait_for("the check to start", WAIT, || async { checking(&s, &admin, ALPHA).await }).await;
    drop(c);

    let first = hashed_past(&s, &admin, ALPHA, 0).await;
    hashed_past(&s, &admin, ALPHA, first).await;
    let done = check_ended(&s, &admin, ALPHA).await;
    assert_eq!(done["check"], "damaged", "{done}");
    assert_eq!(s.count_rows("installed_models").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_downloads_show_what_they_hold_and_an_admin_may_remove_anyones() {
    const HOLD: u64 = 256 * 1024;
    let host = model_host().await;
    host.set_path(ALPHA_PATH, |k| k.hold_at = Some(HOLD));
    host.set_path(BETA_PATH, |k| k.hold_at = Some(HOLD));
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    let bob = s.add_user("bob").await;
    let held = |r: &Value| status_of(r) == "downloading" && r["bytes_downloaded"].as_u64() == Some(HOLD);
    let alpha = id_of(&s.start_dl(&admin, ALPHA).await);
    s.wait_dl(&admin, alpha, "held", WAIT, held).await;
    let beta = id_of(&s.start_dl(&bob, BETA).await);
    s.wait_dl(&bob, beta, "held", WAIT, held).await;
    s.ok(&bob, "downloads/pause", json!({ "id": beta })).await;
    s.wait_dl(&bob, beta, "paused", WAIT, |r| status_of(r) == "paused").await;

    // The writer thread lands the held bytes on disk a moment after the engine counts them.
    let view = wait_for("both partials on disk", WAIT, || async {
        let view = models(&s, &admin).await;
        (view["partial_bytes"] == 2 * HOLD).then_some(view)
    })
    .await;
    let leftovers = view["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 2, "the admin sees everyone's: {view}");
    let bobs = leftovers.iter().find(|l| l["id"] == beta).unwrap();
    assert_eq!((bobs["user_name"].as_str(), bobs["status"].as_str()), (Some("bob"), Some("paused")));
    assert_eq!(bobs["bytes_on_disk"], HOLD);

    let view = models(&s, &bob).await;
    let ids: Vec<i64> = view["leftovers"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, vec![beta], "bob sees only his own");
    assert_eq!(view["partial_bytes"], 2 * HOLD, "the disk line counts the whole disk");

    // Bob cannot remove the admin's; the admin can remove bob's.
    let a = s.call(Some(&bob), "models/leftovers/remove", json!({ "id": alpha })).await;
    assert_eq!(a.status, 404, "{}", a.text);
    assert!(s.partial_path(ALPHA, alpha).exists());
    let gone = s.ok(&admin, "models/leftovers/remove", json!({ "id": beta })).await;
    assert_eq!(status_of(&gone), "cancelled");
    assert!(!s.partial_path(BETA, beta).exists(), "its partial is removed");
    assert_eq!(status_of(&s.get_dl(&bob, beta).await), "cancelled");
    let view = models(&s, &admin).await;
    assert_eq!(view["leftovers"].as_array().unwrap().len(), 1);
    assert_eq!(view["partial_bytes"], HOLD);
    s.ok(&admin, "models/leftovers/remove", json!({ "id": alpha })).await;
}
