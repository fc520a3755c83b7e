//! The real `localbrain` binary as a child process, on a port of its own, with a temp data
//! folder, a test catalog pointing at the fixture host, and its own database (the kit's
//! [`FreshDb`]: SQLite, or, when DATABASE_URL names PostgreSQL, a fresh database on that server
//! that is dropped when the test ends). Plus the HTTP helpers the tests speak through.

use localbrain::catalog::ModelEntry;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::catalog::{entry, smol_entry};
pub use testkit::{Fixture, FreshDb, SMOL, SMOL_LLAMA3_TOOLS, SMOL_TOOLS, sha256_hex, test_bytes, test_model_path};

/// The model the tests download: 4 MiB at `/alpha.gguf`.
pub const ALPHA: &str = "alpha-test-q4_k_m";
pub const ALPHA_PATH: &str = "/alpha.gguf";
pub const ALPHA_SIZE: usize = 4 * 1024 * 1024;
/// A second, smaller model: 1 MiB at `/beta.gguf`.
pub const BETA: &str = "beta-test-q8_0";
pub const BETA_PATH: &str = "/beta.gguf";
pub const BETA_SIZE: usize = 1024 * 1024;
/// A catalog model whose host answers 404: its downloads fail at once.
pub const GAMMA: &str = "gamma-test-q4_0";
pub const GAMMA_PATH: &str = "/gamma.gguf";

// The real model (SmolLM2-135M, [`SMOL`]) is in the catalog but not on the host: tests that
// chat install it by copying the cached file ([`Server::install_smol`]).

/// The fixture's bytes for each model.
pub fn alpha_bytes() -> Vec<u8> {
    test_bytes(ALPHA_SIZE, 1)
}
pub fn beta_bytes() -> Vec<u8> {
    test_bytes(BETA_SIZE, 2)
}

/// A model host serving alpha and beta (gamma is missing on purpose).
pub async fn model_host() -> Fixture {
    Fixture::serve(vec![(ALPHA_PATH, alpha_bytes()), (BETA_PATH, beta_bytes())]).await
}

/// Polls `f` every 25 ms until it yields `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A signed-in user: the session cookie to send.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub cookie: String,
}

/// An HTTP answer: status and body (JSON when it parses, else `Value::Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// The `{"error": "..."}` message, asserting the body has that shape.
    pub fn error(&self) -> &str {
        self.json.get("error").and_then(Value::as_str).unwrap_or_else(|| {
            panic!("expected a JSON body {{\"error\": \"...\"}} with status {}, got {:?}", self.status, self.text)
        })
    }
}

/// The catalog the server is started with: alpha, beta and gamma on the fixture host, and the
/// real model.
fn test_catalog(host: &Fixture) -> Vec<ModelEntry> {
    let test = |id: &str, name: &str, path: &str, sha: String, size: usize, quality: i64| ModelEntry {
        name: name.into(),
        license: "mit".into(),
        quality,
        ..entry(id, &[host.url(path)], size as u64, &sha)
    };
    let gamma = test_bytes(1000, 3);
    vec![
        test(ALPHA, "Alpha Test", ALPHA_PATH, sha256_hex(&alpha_bytes()), ALPHA_SIZE, 3),
        test(BETA, "Beta Test", BETA_PATH, sha256_hex(&beta_bytes()), BETA_SIZE, 2),
        test(GAMMA, "Gamma Test", GAMMA_PATH, sha256_hex(&gamma), gamma.len(), 1),
        ModelEntry {
            name: "SmolLM2 135M".into(),
            license: "mit".into(),
            quality: 0,
            ..smol_entry(&host.url("/smollm.gguf"))
        },
        // The same weights with a template that shows tools (installed by `install_tools_model`).
        ModelEntry {
            id: SMOL_TOOLS.into(),
            name: "SmolLM2 135M with Qwen's tool template".into(),
            quality: -1,
            ..smol_entry(&host.url("/unused.gguf"))
        },
        ModelEntry {
            id: SMOL_LLAMA3_TOOLS.into(),
            name: "SmolLM2 135M with Llama 3's tool-call format".into(),
            quality: -2,
            ..smol_entry(&host.url("/unused.gguf"))
        },
    ]
}

/// A free loopback port (there is a small window in which someone else may take it; the
/// caller retries when the server cannot bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `localbrain serve`. Dropping it kills the process, then drops its database.
pub struct Server {
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    /// The database the server uses.
    pub database_url: String,
    /// The admin's one-time login link, as printed.
    pub admin_link: String,
    /// No redirects, no cookie store: every test says exactly what it sends.
    pub http: reqwest::Client,
    /// The process; a Mutex so [`Server::kill9`] works through a shared reference.
    child: std::sync::Mutex<Option<Child>>,
    log: PathBuf,
    catalog: PathBuf,
    /// Settings of this server beyond the harness's own (`LOCALBRAIN_...` variables).
    env: Vec<(String, String)>,
    // Dropped after the child is killed (field order); a server sharing another's database
    // ([`Server::another`]) has none of its own.
    _db: Option<FreshDb>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary against `host` with a fresh data folder and database.
    pub async fn start(host: &Fixture) -> Server {
        Self::start_with(host, &[]).await
    }

    /// [`Server::start`], with settings of its own in the environment of the server and of the
    /// commands run against it.
    pub async fn start_with(host: &Fixture, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::Builder::new().prefix("lbapi").tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let models_dir = data_dir.join("models");
        let catalog = dir.path().join("catalog.toml");
        testkit::catalog::write(&catalog, test_catalog(host));
        let db = FreshDb::create().await;
        let log = dir.path().join("server.log");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut server = Server {
            port: 0,
            base: String::new(),
            data_dir,
            models_dir,
            database_url: db.url.clone(),
            admin_link: String::new(),
            http,
            child: Default::default(),
            log,
            catalog,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            _db: Some(db),
            _dir: dir,
        };
        server.launch();
        server
    }

    /// A second server on this one's database and models folder, with a data folder of its
    /// own: two instances of one deployment. Drop it before this one (declare it after).
    pub async fn another(&self) -> Server {
        self.another_on(Some(&self.models_dir))
    }

    /// A second server on this one's database with a models folder of its own (another host's
    /// disk): it cannot see this one's unfinished files.
    pub async fn another_elsewhere(&self) -> Server {
        self.another_on(None)
    }

    fn another_on(&self, models_dir: Option<&Path>) -> Server {
        let dir = tempfile::Builder::new().prefix("lbapi2").tempdir().expect("temp dir");
        let models_dir = models_dir.map_or_else(|| dir.path().join("data").join("models"), Path::to_path_buf);
        let mut env = self.env.clone();
        env.push(("LOCALBRAIN_MODELS_DIR".into(), models_dir.display().to_string()));
        let mut server = Server {
            port: 0,
            base: String::new(),
            data_dir: dir.path().join("data"),
            models_dir,
            database_url: self.database_url.clone(),
            admin_link: String::new(),
            http: self.http.clone(),
            child: Default::default(),
            log: dir.path().join("server.log"),
            catalog: self.catalog.clone(),
            env,
            _db: None,
            _dir: dir,
        };
        server.launch();
        server
    }

    /// kill -9: the process dies mid-whatever, as on a lost host.
    pub fn kill9(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9, then `serve` again on the same data folder and database (on a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// Starts `serve` on a free port (another, when the port was taken meanwhile).
    fn launch(&mut self) {
        let server = self;
        for attempt in 1..=3 {
            let port = free_port();
            match server.spawn(port) {
                Ok((child, link)) => {
                    server.port = port;
                    server.base = format!("http://127.0.0.1:{port}");
                    server.admin_link = link;
                    *server.child.lock().unwrap() = Some(child);
                    return;
                }
                Err(why) if attempt < 3 && why.contains("cannot listen") => continue,
                Err(why) => panic!("localbrain did not start: {why}\n--- server log ---\n{}", server.log_text()),
            }
        }
        unreachable!()
    }

    /// The command with this server's folders, catalog and database, and nothing inherited
    /// that could point it elsewhere.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbrain"));
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("LOCALBRAIN_ADDR")
            .env_remove("LOCALBRAIN_DATA_DIR")
            .env_remove("LOCALBRAIN_MODELS_DIR")
            .env_remove("LEPTOS_SITE_ROOT")
            .env("LOCALBRAIN_CATALOG", &self.catalog)
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("LOCALBRAIN_THREADS", "1")
            .env("LOCALBRAIN_CONTEXT", "1024")
            // No token or hub of the developer's: a test sets HF_ENDPOINT and HF_TOKEN itself.
            .env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN")
            .env_remove("HF_ENDPOINT")
            .env("HF_HOME", self.data_dir.join("hf"))
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().as_ref().expect("the server runs").id()
    }

    /// Runs `serve` on `port` and reads the admin's login link from its stdout.
    fn spawn(&self, port: u16) -> Result<(Child, String), String> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut child = self
            .command()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", env!("CARGO_BIN_EXE_localbrain")))?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads stdout to its end so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(at) = line.find("http")
                        && line.contains("/login?token=")
                    {
                        return Ok((child, line[at..].trim().to_string()));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.log_text());
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no login link within 60 s\n{}", self.log_text()));
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `localbrain user add NAME`: the printed login link, which must point at this server
    /// (the address it recorded; nothing tells the command which port it is on).
    pub fn user_add_link(&self, name: &str) -> String {
        let out =
            self.command().args(["user", "add", name]).stdin(Stdio::null()).output().expect("run localbrain user add");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "user add {name} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout.lines().find(|l| l.contains("/login?token=")).expect("user add printed no login link");
        let link = line[line.find("http://").expect("link")..].trim().to_string();
        assert!(link.starts_with(&format!("{}/login?token=", self.base)), "link {link} is not for {}", self.base);
        link
    }

    /// `localbrain user login NAME`: a fresh login link for an existing user.
    pub fn user_login_link(&self, name: &str) -> String {
        let out = self.command().args(["user", "login", name]).stdin(Stdio::null()).output().expect("run user login");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "user login {name} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout.lines().find(|l| l.contains("/login?token=")).expect("user login printed no login link");
        line[line.find("http://").expect("link")..].trim().to_string()
    }

    /// `localbrain user add --admin NAME`, signed in.
    pub async fn add_admin(&self, name: &str) -> User {
        let out = self
            .command()
            .args(["user", "add", "--admin", name])
            .stdin(Stdio::null())
            .output()
            .expect("run localbrain user add --admin");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "user add --admin {name} failed: {stdout}");
        let line = stdout.lines().find(|l| l.contains("/login?token=")).expect("no login link");
        let link = line[line.find("http://").expect("link")..].trim().to_string();
        self.login(name, &link).await
    }

    /// GET a login link: asserts the 303 to /settings and returns the session cookie.
    pub async fn login(&self, name: &str, link: &str) -> User {
        let resp = self.http.get(link).send().await.expect("GET login link");
        assert_eq!(resp.status().as_u16(), 303, "login link for {name}");
        let set_cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("lb_session="))
            .unwrap_or_else(|| panic!("login for {name} set no lb_session cookie"))
            .to_string();
        let pair = set_cookie.split(';').next().unwrap().trim().to_string();
        User { name: name.to_string(), cookie: pair }
    }

    /// The admin, signed in through the link `serve` printed.
    pub async fn admin(&self) -> User {
        self.login("admin", &self.admin_link.clone()).await
    }

    /// A new user made with `localbrain user add`, signed in.
    pub async fn add_user(&self, name: &str) -> User {
        let link = self.user_add_link(name);
        self.login(name, &link).await
    }

    /// POST raw bytes to `/api/<endpoint>` with an optional Cookie header and extra headers.
    pub async fn post_raw(
        &self,
        cookie: Option<&str>,
        endpoint: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some(c) = cookie {
            req = req.header(reqwest::header::COOKIE, c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("POST /api/{endpoint}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, json, text }
    }

    /// POST JSON as `user` (or as nobody).
    pub async fn call(&self, user: Option<&User>, endpoint: &str, body: Value) -> Answer {
        self.post_raw(user.map(|u| u.cookie.as_str()), endpoint, serde_json::to_vec(&body).unwrap(), &[]).await
    }

    /// Whether the brain is writing a reply now, as the card sees it.
    pub async fn busy(&self, user: &User) -> bool {
        self.ok(user, "brain", json!({})).await["busy"].as_bool().unwrap()
    }

    /// How long one token of the test model takes now, from a short reply's own figure: a test
    /// that waits on the model budgets in tokens at this speed, measured at its start, so a
    /// loaded machine slows it without failing it.
    pub async fn token_time(&self, user: &User) -> Duration {
        let ask =
            json!({ "model_id": SMOL, "messages": [{ "role": "user", "content": "Say hello." }], "max_tokens": 16 });
        let reply = self
            .http
            .post(format!("{}/api/chat", self.base))
            .header(reqwest::header::COOKIE, &user.cookie)
            .json(&ask)
            .send()
            .await
            .expect("POST /api/chat");
        let lines = reply.text().await.expect("the reply");
        // One JSON event a line; the last, `done`, carries the reply's speed.
        let done: Value = serde_json::from_str(lines.lines().last().unwrap_or_default()).expect("a JSON line");
        let per_second = done["stats"]["tokens_per_second"].as_f64().unwrap_or_else(|| panic!("no speed: {lines}"));
        Duration::from_secs_f64(1.0 / per_second.max(0.1))
    }

    /// Waits for the brain to stop writing once a reply's client left: within a few tokens at
    /// `token` (and a poll's round trip). How long it took.
    pub async fn freed_after_leaving(&self, user: &User, token: Duration) -> Duration {
        let left = Instant::now();
        let budget = Duration::from_secs(3) + token * 20;
        wait_for("the brain to be free", budget, || async { (!self.busy(user).await).then_some(()) }).await;
        println!("freed {} ms after the client left ({} ms a token)", left.elapsed().as_millis(), token.as_millis());
        left.elapsed()
    }

    /// POST JSON as `user`, asserting 200; the JSON body.
    pub async fn ok(&self, user: &User, endpoint: &str, body: Value) -> Value {
        let a = self.call(Some(user), endpoint, body.clone()).await;
        assert_eq!(a.status, 200, "{} POST /api/{endpoint} {body}: {}", user.name, a.text);
        a.json
    }

    pub async fn start_dl(&self, user: &User, model: &str) -> Value {
        self.ok(user, "downloads/start", json!({ "model_id": model })).await
    }

    pub async fn get_dl(&self, user: &User, id: i64) -> Value {
        self.ok(user, "downloads/get", json!({ "id": id })).await
    }

    pub async fn list(&self, user: &User) -> Vec<Value> {
        match self.ok(user, "downloads/list", json!({})).await {
            Value::Array(rows) => rows,
            other => panic!("list is not an array: {other}"),
        }
    }

    /// Polls the download until `pred` holds; the row that satisfied it.
    pub async fn wait_dl(
        &self,
        user: &User,
        id: i64,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let row = self.get_dl(user, id).await;
            if pred(&row) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "download {id}: timed out after {timeout:?} waiting for {what}; last seen {row}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Rows of a table, read straight from the database (not through the API).
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&self.database_url).await.expect("open test database");
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut c).await.unwrap();
        c.close().await.ok();
        n
    }

    /// Writes straight to the database (what another process, or a host that is gone, left).
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&self.database_url).await.expect("open test database");
        sqlx::query(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.close().await.ok();
    }

    /// Every regular file under the models folder (recursively), relative to it, but the
    /// folder's own id file (`.localbrain-folder`).
    pub fn model_files(&self) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.models_dir, &self.models_dir, &mut out);
        out.retain(|f| f != ".localbrain-folder");
        out.sort();
        out
    }

    /// The partial file a download writes to.
    pub fn partial_path(&self, model: &str, id: i64) -> PathBuf {
        self.models_dir.join(".partial").join(format!("{model}.{id}.partial"))
    }

    /// Where a model is installed.
    pub fn installed_path(&self, model: &str) -> PathBuf {
        self.models_dir.join(format!("{model}.gguf"))
    }

    /// Puts the real test model in the models folder, as an installed download would.
    pub fn install_smol(&self) {
        std::fs::create_dir_all(&self.models_dir).unwrap();
        std::fs::copy(test_model_path(), self.installed_path(SMOL)).unwrap();
    }

    /// Installs [`SMOL_TOOLS`] and [`SMOL_LLAMA3_TOOLS`]: the test model with chat templates
    /// that show it tools, in Qwen's format and in Llama 3's.
    pub fn install_tools_model(&self) {
        std::fs::create_dir_all(&self.models_dir).unwrap();
        std::fs::copy(testkit::gguf::tools_model_path(), self.installed_path(SMOL_TOOLS)).unwrap();
        std::fs::copy(testkit::gguf::llama3_tools_model_path(), self.installed_path(SMOL_LLAMA3_TOOLS)).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the localbrain log ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// The id of a DownloadView.
pub fn id_of(row: &Value) -> i64 {
    row["id"].as_i64().unwrap_or_else(|| panic!("no id in {row}"))
}

/// The status of a DownloadView.
pub fn status_of(row: &Value) -> &str {
    row["status"].as_str().unwrap_or_else(|| panic!("no status in {row}"))
}

/// A DownloadView without its live numbers (speed and ETA move with the clock).
pub fn without_live(row: &Value) -> Value {
    let mut r = row.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("speed_bps");
        o.remove("eta_seconds");
    }
    r
}
