//! A real deployment (issue 17): three `localbrain serve` on one database and one models folder
//! behind nginx, round-robin, as the README tells an operator to run them. Everything goes
//! through the balancer, so each call may land on any instance: start, progress, pause, resume,
//! the owner killed mid-download and another taking over, cancel. The model host's log proves
//! that no two instances ever ran the download at once.

use super::harness::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// nginx in front of the instances, on a port of its own.
struct Nginx {
    base: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Listens on `port` and sends each request to the next of `upstreams`, skipping one that
    /// refuses connections (a killed instance).
    fn start(port: u16, upstreams: &[u16]) -> Nginx {
        let dir = tempfile::Builder::new().prefix("lbnginx").tempdir().unwrap();
        let d = dir.path().display();
        let servers: String =
            upstreams.iter().map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=5s; ")).collect();
        let conf = format!(
            "worker_processes 1; error_log {d}/error.log warn; pid {d}/nginx.pid;
             events {{ worker_connections 256; }}
             http {{
               access_log off;
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
               upstream localbrain {{ {servers} }}
               server {{
                 listen 127.0.0.1:{port};
                 location / {{
                   proxy_pass http://localbrain;
                   proxy_set_header Host $http_host;
                   proxy_connect_timeout 2s;
                   proxy_next_upstream error timeout;
                 }}
               }}
             }}"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf"), "-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nginx (scripts/install-tools.sh test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { base: format!("http://127.0.0.1:{port}"), child, _dir: dir }
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master takes its worker down with it (a SIGKILL would leave the worker).
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// POST `/api/<endpoint>` through the balancer as `user`, asserting 200.
async fn via(lb: &Nginx, http: &reqwest::Client, user: &User, endpoint: &str, body: Value) -> Value {
    let resp = http
        .post(format!("{}/api/{endpoint}", lb.base))
        .header(reqwest::header::COOKIE, &user.cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {endpoint} through nginx: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{endpoint} through nginx: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A log line without its colours.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// The instance whose log says it started the download's latest transfer.
fn runner_of(instances: &[&Server], id: i64) -> usize {
    let needle = format!("download starting id={id} ");
    let latest =
        |s: &Server| s.log_text().lines().map(plain).filter(|l| l.contains(&needle)).map(|l| l[..27].to_string()).max();
    (0..instances.len())
        .max_by_key(|&i| latest(instances[i]))
        .filter(|&i| latest(instances[i]).is_some())
        .expect("some instance started it")
}

#[tokio::test]
async fn three_instances_behind_nginx_share_downloads_and_take_over_from_a_killed_one() {
    let host = model_host().await;
    host.set(|m| {
        m.chunk = 8 * 1024;
        m.chunk_delay = Duration::from_millis(20);
    });
    let lb_port = free_port();
    let public = format!("http://127.0.0.1:{lb_port}");
    let first = Server::start_with(&host, &[("LOCALBRAIN_PUBLIC_URL", &public)]).await;
    // Declared after `first`, dropped before it: `first` owns the database.
    let (second, third) = (first.another().await, first.another().await);
    let servers = [&first, &second, &third];
    let lb = Nginx::start(lb_port, &servers.iter().map(|s| s.port).collect::<Vec<_>>());
    let http = servers[0].http.clone();
    // The login link points at the balancer; any instance honours it.
    assert!(servers[0].admin_link.starts_with(&public), "{}", servers[0].admin_link);
    let admin = servers[0].login("admin", &servers[0].admin_link.clone()).await;

    let id = id_of(&via(&lb, &http, &admin, "downloads/start", json!({ "model_id": ALPHA })).await);
    // Every instance shows the progress, whichever runs it.
    for s in servers {
        s.wait_dl(&admin, id, "progress seen by every instance", WAIT, |r| {
            r["bytes_downloaded"].as_u64().unwrap_or(0) > 100_000 && r["speed_bps"].as_u64().unwrap_or(0) > 0
        })
        .await;
    }
    // Pause and resume through the balancer, landing wherever they land.
    let paused = via(&lb, &http, &admin, "downloads/pause", json!({ "id": id })).await;
    assert_eq!(status_of(&paused), "paused");
    let before = host.bytes_sent();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(host.bytes_sent() - before <= 16 * 1024, "a transfer went on after the pause answered");
    via(&lb, &http, &admin, "downloads/resume", json!({ "id": id })).await;
    servers[0].wait_dl(&admin, id, "flowing again", WAIT, |r| r["speed_bps"].as_u64().unwrap_or(0) > 0).await;

    // kill -9 the instance running it: another takes over from the partial.
    let owner = runner_of(&servers, id);
    servers[owner].kill9();
    let killed = Instant::now();
    let seen_before = host.requests(ALPHA_PATH).len();
    let survivor = (owner + 1) % servers.len();
    let done = loop {
        let partials = servers[survivor].model_files().into_iter().filter(|f| f.starts_with(".partial/")).count();
        assert!(partials <= 1, "two partials at once");
        let row = servers[survivor].get_dl(&admin, id).await;
        if status_of(&row) == "complete" {
            break row;
        }
        assert!(killed.elapsed() < WAIT, "not taken over and finished within {WAIT:?}: {row}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(host.requests(ALPHA_PATH).len() > seen_before, "a new transfer after the kill");
    assert_eq!(host.max_in_flight(), 1, "two instances downloaded at once");
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    assert_eq!(
        sha256_hex(&std::fs::read(servers[survivor].installed_path(ALPHA)).unwrap()),
        sha256_hex(&alpha_bytes())
    );

    // Cancel through the balancer (nginx skips the dead instance).
    let id = id_of(&via(&lb, &http, &admin, "downloads/start", json!({ "model_id": BETA })).await);
    servers[survivor]
        .wait_dl(&admin, id, "some bytes", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 50_000)
        .await;
    let cancelled = via(&lb, &http, &admin, "downloads/cancel", json!({ "id": id })).await;
    assert_eq!(status_of(&cancelled), "cancelled");
    assert_eq!(servers[survivor].model_files(), vec![format!("{ALPHA}.gguf")]);
}
