//! The `localbrain` binary: `serve` (the default) runs the web app.

mod auth;
mod background;
mod catalog_cmd;
mod cli;
mod ctrl_c;
mod download_cmd;
mod guesses;
mod headers;
mod key_cmd;
mod listen;
mod models_cmd;
mod names;
mod openai;
mod proxies;
mod refusal;
mod run_cmd;
mod site;
mod state;
mod user_cmd;
mod web;
mod write_deadline;

use anyhow::{Context, bail};
use background::Background;
use clap::Parser;
use cli::{Cli, Command, Config};
use localbrain::brain::{Brain, BrainConfig};
use localbrain::catalog::Catalog;
use localbrain::engine::{Engine, EngineConfig};
use localbrain::library::checks::Checks;
use localbrain::store::sessions::{self, SessionRules};
use localbrain::store::{Db, redact, users};
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; terminal commands keep the screen for their own output.
    let default_filter = match cli.command {
        // llama.cpp logs ~2,300 lines per model load under `llama-cpp-2`: kept for RUST_LOG.
        None | Some(Command::Serve(_)) => "info,sqlx=warn,llama-cpp-2=warn",
        Some(_) => "warn,llama-cpp-2=error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(std::io::stderr)
        .init();
    if !matches!(cli.command, None | Some(Command::Serve(_) | Command::Download { .. })) {
        // A listing piped into `head` ends quietly once head has read enough, as Unix tools do,
        // instead of panicking on the closed pipe. The server and a download keep Rust's
        // default (the write fails, and that is handled) so a closed pipe never cuts them short.
        // SAFETY: called before any thread of ours writes, setting a signal's disposition only.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match dispatch(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("localbrain: {}", plain_words(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs the command the line asked for.
async fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    let config = cli.config()?;
    match cli.command() {
        Command::Serve(args) => serve(config, args).await,
        Command::Download { model_id, verbose } => download(config, &model_id, verbose).await,
        Command::Catalog { measure, reference: None } => {
            let (_db, engine) = open(&config).await?;
            catalog_cmd::run(&config, &brain_config(&config), engine.catalog(), measure)
        }
        Command::Catalog { measure, reference: Some(r) } => {
            catalog_cmd::hub_repo(&brain_config(&config), measure, &r).await
        }
        Command::Models => {
            let (db, engine) = open(&config).await?;
            models_cmd::list(&library(&db, &engine, &Checks::default())).await
        }
        Command::Rm { model_id, yes } => {
            let (db, engine) = open(&config).await?;
            let model_id = names::installed(&engine, &model_id)?;
            models_cmd::remove(&library(&db, &engine, &Checks::default()), &model_id, yes).await
        }
        Command::Run { model_id, prompt, max_tokens, temperature, verbose } => {
            let options = run_cmd::Options { max_tokens, temperature, verbose };
            run(config, &model_id, prompt, options).await
        }
        Command::User(cmd) => {
            let (db, _) = open(&config).await?;
            let serve_args = cli::ServeArgs::from_env();
            let base = user_cmd::link_base(&config.data_dir, serve_args.public_url.as_deref(), &serve_args.addr);
            user_cmd::run(&db, cmd, &base).await
        }
        Command::Key(cmd) => {
            let (db, _) = open(&config).await?;
            key_cmd::run(&db, cmd).await
        }
    }
}

/// An error and its causes on one line, "what failed: why". Some of the core's messages already
/// quote their source (`"database error: {0}"`); a cause whose words are already on the line is
/// not said twice.
fn plain_words(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let words = cause.to_string();
        if line.contains(&words) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&words);
    }
    line
}

/// The brain's settings: the configured threads, keep-alive and context, the usable speed, and
/// the data folder's machine file, where replies record their speed.
fn brain_config(config: &Config) -> BrainConfig {
    let mut cfg = BrainConfig::new(config.models_dir.clone());
    cfg.threads = config.threads;
    cfg.parallel = config.parallel.unwrap_or(localbrain::brain::DEFAULT_PARALLEL);
    cfg.keep_alive = config.keep_alive;
    cfg.context_tokens = config.context;
    cfg.machine_file = Some(localbrain::machine::path_in(&config.data_dir));
    cfg.usable_tokens_per_second = config.usable_speed;
    cfg.gpu_layers = config.gpu_layers;
    cfg
}

/// The models folder as the terminal sees it: no brain and no checks run in this process.
fn library<'a>(db: &'a Db, engine: &'a Engine, checks: &'a Checks) -> localbrain::library::Library<'a> {
    localbrain::library::Library { db, catalog: engine.catalog(), models_dir: engine.models_dir(), brain: None, checks }
}

/// Opens the data folder, the catalog, the database and the engine: what every subcommand needs.
async fn open(config: &Config) -> anyhow::Result<(Db, Arc<Engine>)> {
    let catalog = Catalog::load(config.catalog.as_deref())?;
    for dir in [&config.data_dir, &config.models_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open database {}", redact(&config.database_url)))?;
    let mut engine_config = EngineConfig::new(config.models_dir.clone());
    engine_config.hub = Some(localbrain::hub::settings::HubSettings::from_env()?);
    engine_config.max_rate = config.max_rate;
    engine_config.connections = config.connections;
    engine_config.stall_timeout = config.stall_timeout;
    engine_config.retry.max_retries = config.retries;
    if let Some(min) = config.segment_min_bytes.filter(|&m| m > 0) {
        engine_config.segment_rule.min_bytes = min;
        engine_config.segment_rule.max_bytes = engine_config.segment_rule.max_bytes.max(min);
    }
    let engine =
        Engine::new(db.clone(), Arc::new(catalog), engine_config).context("cannot start the download engine")?;
    // The Hugging Face models resolved before (by any process on this database) are catalog
    // models from the start.
    localbrain::hub::shelf::load(&db, engine.catalog()).await.context("cannot read the Hugging Face models kept")?;
    Ok((db, engine))
}

async fn serve(config: Config, args: cli::ServeArgs) -> anyhow::Result<()> {
    let (db, engine) = open(&config).await?;
    tracing::info!(data_dir = %config.data_dir.display(), database = %redact(&config.database_url), "store ready");
    let recovered = engine.recover().await.context("boot recovery failed")?;
    if !recovered.paused.is_empty() || recovered.orphans_removed > 0 {
        tracing::info!(paused = ?recovered.paused, orphans_removed = recovered.orphans_removed, "recovered downloads left by a restart");
    }
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr().context("cannot read the address the server listens on")?;
    // The terminal that started the server belongs to its owner: give them a way in.
    let (admin, created) = users::ensure_admin(&db).await.context("cannot set up the admin user")?;
    if created {
        println!("First run: created the admin user.");
    }
    // `user add` and `user login` print links to where people really reach this server.
    let base = args.public_url.clone().unwrap_or_else(|| user_cmd::base_of(&addr));
    user_cmd::record_base(&config.data_dir, &base);
    let link = user_cmd::login_link(&db, admin.id, &base).await?;
    println!("localbrain is running. Sign in as {} (link works once, for 15 minutes):\n  {link}", admin.name);
    let mut brain_cfg = brain_config(&config);
    brain_cfg.queue_limit = args.queue_limit as usize;
    let brain = Brain::new(Arc::new(engine.catalog().clone()), brain_cfg);
    // The memory speed is measured once per machine (and thread setting), before anyone asks
    // for the catalog, so the first page does not wait for it.
    let cfg = brain.config().clone();
    let booted = localbrain::time::now_ms();
    let hw = tokio::task::spawn_blocking(move || cfg.hardware(false)).await.context("cannot look at this machine")?;
    tracing::info!(bandwidth_gbps = ?hw.memory_bandwidth_gbps, threads = ?hw.threads, "machine measured");
    let mut background = Background::default();
    // A reading from an earlier boot may have been taken while the machine was busy: each boot
    // measures once more, in the background, and the best reading is kept.
    if let Some(path) = brain.config().machine_file.clone() {
        let threads = brain.config().threads;
        let earlier = localbrain::machine::load(&path).bandwidth.is_some_and(|b| b.measured_at < booted);
        if earlier {
            background.spawn_blocking("bandwidth", move || {
                localbrain::machine::keep_best_bandwidth(&path, threads);
            });
        }
    }
    // Installed files are checked at boot, so a damaged one is in the log before anyone asks.
    let installed = brain.installed().await;
    tracing::info!(
        models = installed.len(),
        unusable = installed.iter().filter(|m| m.problem.is_some()).count(),
        threads = config.threads,
        "brain ready"
    );
    let session_rules = SessionRules { idle: args.session_idle, max: args.session_max };
    background.spawn("session sweep", sweep_sessions(db.clone(), session_rules));
    background.spawn("download takeover", take_over_abandoned(engine.clone()));
    background.spawn("change listener", engine.clone().listen_for_changes());
    let engine_for_shutdown = engine.clone();
    let brain_for_shutdown = brain.clone();
    let checks = Arc::new(Checks::default());
    let state = state::AppState {
        leptos_options: web::leptos_options(addr),
        db,
        engine,
        brain,
        checks: checks.clone(),
        site: site::Site {
            bound: addr,
            public_url: args.public_url.clone(),
            cors_origins: args.cors_origins.clone().into(),
        },
        session_rules,
        body_timeout: args.body_timeout,
        guesses: Default::default(),
        proxies: proxies::TrustedProxies::new(args.trusted_proxies.clone()),
    };
    let ceiling = listen::connection_ceiling();
    let limits = listen::Limits {
        max_connections: args.max_connections.map_or(1000, |n| n as usize).min(ceiling),
        header_timeout: args.header_timeout,
        write_timeout: args.write_timeout,
    };
    if args.max_connections.is_some_and(|n| n as usize > ceiling) {
        tracing::warn!(ceiling, "--max-connections is above half the open-file limit; using the ceiling");
    }
    tracing::info!(max_connections = limits.max_connections, header_timeout = ?limits.header_timeout, write_timeout = ?limits.write_timeout, "listening");
    let brain_for_signal = brain_for_shutdown.clone();
    listen::serve(listener, web::router(state), limits, async move {
        shutdown_signal().await;
        brain_for_signal.close();
    })
    .await
    .context("server error")?;
    // Nothing takes over a download or sweeps while the downloads are paused.
    background.stop().await;
    checks.shutdown(std::time::Duration::from_secs(2)).await;
    brain_for_shutdown.shutdown(std::time::Duration::from_secs(2)).await;
    let paused = engine_for_shutdown.pause_all(std::time::Duration::from_secs(4)).await;
    tracing::info!(paused = ?paused, "stopped");
    Ok(())
}

/// Every two seconds, takes over the downloads whose runner died (another server on this
/// database, killed or lost): resumed here when they are in this server's models folder.
async fn take_over_abandoned(engine: Arc<Engine>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        every.tick().await;
        match engine.adopt_abandoned().await {
            Ok(ids) if !ids.is_empty() => tracing::info!(downloads = ?ids, "took over downloads whose server stopped"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look for downloads to take over"),
        }
    }
}

/// Deletes ended sessions and dead login links now and then, so the tables hold only what
/// still opens something. A failure is logged and tried again next time.
async fn sweep_sessions(db: Db, rules: SessionRules) {
    let mut every = tokio::time::interval(rules.sweep_every());
    loop {
        every.tick().await;
        match sessions::sweep(&db, &rules).await {
            Ok(swept) if swept != Default::default() => {
                tracing::info!(sessions = swept.sessions, login_links = swept.login_tokens, "swept ended sessions");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot sweep ended sessions"),
        }
    }
}

async fn download(config: Config, name: &str, verbose: bool) -> anyhow::Result<()> {
    let (db, engine) = open(&config).await?;
    let model_id = &names::to_download(&config, &engine, name).await?;
    let (admin, _) = users::ensure_admin(&db).await.context("cannot set up the admin user")?;
    engine.recover_one(admin.id, model_id).await.context("cannot recover an earlier download")?;
    // A pause from the web page reaches this terminal's transfer at once on PostgreSQL.
    let mut background = Background::default();
    background.spawn("change listener", engine.clone().listen_for_changes());
    let result = download_cmd::run(engine, admin.id, model_id, verbose).await;
    background.stop().await;
    result
}

async fn run(config: Config, name: &str, prompt: Vec<String>, options: run_cmd::Options) -> anyhow::Result<()> {
    // The database knows the Hugging Face models downloaded here.
    let (_db, engine) = open(&config).await?;
    let model_id = &names::installed(&engine, name)?;
    if engine.catalog().get(model_id).is_none() {
        bail!("there is no model called {model_id:?} in the catalog (see `localbrain catalog`)");
    }
    // One person at a keyboard: one slot (and one context's memory) unless --parallel says.
    let mut cfg = brain_config(&config);
    cfg.parallel = config.parallel.unwrap_or(1);
    let brain = Brain::new(Arc::new(engine.catalog().clone()), cfg);
    let result = run_cmd::run(brain.clone(), model_id, prompt, options).await;
    brain.shutdown(std::time::Duration::from_secs(2)).await;
    result
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
