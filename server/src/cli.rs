//! Command line and configuration: flags with environment fallbacks.

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

// What people read in `--help`: the doc comments below and the `after_help` examples. Every
// command carries an example (a test in server/tests/cli.rs walks them all).
/// A private AI model on this machine: pick one that fits, download it, chat with it, offline.
///
/// With no command, localbrain serves its web app on http://127.0.0.1:3000. Open the login link
/// it prints; Settings -> "Local AI brain" recommends a model that fits this machine and
/// downloads it. The commands below do the same from a terminal.
#[derive(Debug, Parser)]
#[command(
    name = "localbrain",
    version,
    after_help = "Examples:
  localbrain                                        serve the web app (same as `localbrain serve`)
  localbrain catalog                                which models fit this machine
  localbrain download qwen2.5-0.5b-instruct-q4_k_m  download, verify and install a model
  localbrain run qwen2.5-0.5b-instruct-q4_k_m \"Why is the sky blue?\"
  localbrain models                                 what is installed, and what it takes on disk
  localbrain user add alice                         a login link for a new user

Downloads go through the proxy in HTTPS_PROXY, HTTP_PROXY or ALL_PROXY when one is set;
NO_PROXY lists hosts reached directly (e.g. NO_PROXY=localhost,192.168.0.0/16)."
)]
pub struct Cli {
    /// Where localbrain keeps its database and models [default: ~/.localbrain]
    #[arg(long, env = "LOCALBRAIN_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Where installed models go [default: <data-dir>/models]
    #[arg(long, env = "LOCALBRAIN_MODELS_DIR", global = true)]
    pub models_dir: Option<PathBuf>,

    /// sqlite://... or postgres://... [default: SQLite file in the data dir]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// A catalog TOML file replacing the built-in one
    #[arg(long, env = "LOCALBRAIN_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,

    /// Bandwidth limit for all downloads, bytes per second: 10M, 500K... [default: none]
    #[arg(long, env = "LOCALBRAIN_MAX_RATE", global = true, value_parser = localbrain::engine::pace::parse_rate)]
    pub max_rate: Option<u64>,

    /// The most connections one download of a large file opens (1 to 16; 1 = one stream)
    #[arg(long, env = "LOCALBRAIN_CONNECTIONS", global = true, default_value_t = localbrain::engine::DEFAULT_CONNECTIONS,
          value_parser = clap::value_parser!(u16).range(1..=16).map(usize::from))]
    pub connections: usize,

    /// Seconds without a byte before a connection is dropped and tried again (1 to 3600)
    #[arg(long, env = "LOCALBRAIN_STALL_TIMEOUT", global = true, default_value_t = localbrain::engine::DEFAULT_STALL_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_timeout: u64,

    /// How many times a failing download is tried again (waiting longer each time) before it
    /// stops with the reason; each try that gets further starts the count again
    #[arg(long, env = "LOCALBRAIN_RETRIES", global = true, default_value_t = localbrain::engine::retry::RetryPolicy::default().max_retries,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,

    /// Smallest segment of a parallel download in bytes. For tests, which need many segments
    /// in a small file; the product keeps ollama's 100 MB.
    #[arg(long, env = "LOCALBRAIN_SEGMENT_MIN_BYTES", global = true, hide = true)]
    pub segment_min_bytes: Option<u64>,

    /// Replies a loaded model writes at once, batched into one decode (each gets its own
    /// context); fewer when the memory free at load time does not hold them [default: 4 for
    /// serve, 1 for run]
    #[arg(long, env = "LOCALBRAIN_PARALLEL", global = true, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: Option<u32>,

    /// CPU threads for generating replies [default: physical cores - 1, at least 1]
    #[arg(long, env = "LOCALBRAIN_THREADS", global = true, value_parser = clap::value_parser!(u32).range(1..=512))]
    pub threads: Option<u32>,

    /// How long an idle model stays in memory: 300, 30s, 5m, 1h; 0 unloads it after each reply
    #[arg(long, env = "LOCALBRAIN_KEEP_ALIVE", global = true, default_value = "5m", value_parser = parse_duration)]
    pub keep_alive: std::time::Duration,

    /// Context size in tokens a conversation runs in (capped by the model's own)
    #[arg(long, env = "LOCALBRAIN_CONTEXT", global = true, default_value_t = localbrain::brain::DEFAULT_CONTEXT_TOKENS,
          value_parser = clap::value_parser!(u32).range(256..=1_048_576))]
    pub context: u32,

    /// Tokens/s below which a model counts as too slow to recommend ("slow here")
    #[arg(long, env = "LOCALBRAIN_USABLE_SPEED", global = true, default_value_t = localbrain::speed::DEFAULT_USABLE_TOKENS_PER_SECOND,
          value_parser = parse_speed)]
    pub usable_speed: f64,

    /// Layers of a model on the GPU: auto (all when the model and its context fit the card's
    /// free memory, else as many as fit), 0 (the CPU only) or a number. A build without a GPU
    /// backend runs on the CPU whatever this says
    #[arg(long, env = "LOCALBRAIN_GPU_LAYERS", global = true, default_value = "auto", value_name = "N|auto")]
    pub gpu_layers: localbrain::brain::offload::GpuLayers,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app (the default)
    ///
    /// Starts the web app and prints a one-time login link for the admin user (created on the
    /// first run). Ctrl-C stops it; downloads in progress are paused and can be resumed later.
    #[command(after_help = "Examples:
  localbrain serve
  localbrain serve --addr 127.0.0.1:8080
  localbrain serve --public-url https://brain.example.com   (behind a reverse proxy)
  LOCALBRAIN_DATA_DIR=/srv/localbrain localbrain serve")]
    Serve(ServeArgs),
    /// Download, verify and install a model from the catalog or from Hugging Face
    ///
    /// The same downloads as the web app: a progress bar, then the SHA-256 is checked and the
    /// model is installed in the models folder. Ctrl-C pauses; running the same command again
    /// resumes where it stopped. Exits with 0 only when the verified model is installed.
    ///
    /// A model on Hugging Face is named hf.co/ORG/REPO (the best quant for this machine),
    /// hf.co/ORG/REPO:QUANT, or by its file's address; it is pinned to the repo's commit and
    /// checked against the hub's own SHA-256. HF_TOKEN (or huggingface-cli's token file) signs in
    /// for gated models; HF_ENDPOINT points at a mirror.
    #[command(after_help = "Examples:
  localbrain download qwen2.5-0.5b-instruct-q4_k_m
  localbrain download hf.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF
  localbrain download hf.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q8_0
  localbrain download https://huggingface.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf
  localbrain --max-rate 10M download qwen2.5-0.5b-instruct-q4_k_m
  HTTPS_PROXY=http://proxy.example:3128 localbrain download qwen2.5-0.5b-instruct-q4_k_m
  localbrain download qwen2.5-0.5b-instruct-q4_k_m --verbose   (a failure's technical details too)

`localbrain catalog` lists the model ids.")]
    Download {
        /// A catalog model id (see `localbrain catalog`), or hf.co/ORG/REPO[:QUANT], or a file's address on Hugging Face
        model_id: String,
        /// Also print the technical details of a failure
        #[arg(long, short)]
        verbose: bool,
    },
    /// List the models, how each fits this machine, and the one recommended
    ///
    /// Shows this machine (memory, CPU, memory speed, GPU, free disk), every model localbrain
    /// can download (size, memory needed, whether it fits, how fast it would write here), and
    /// marks with `*` the best one that fits and writes at a usable speed. The memory speed is
    /// measured once (under half a second) and kept in the data folder's machine.json. Given a
    /// Hugging Face repo, the same for each of its quants (read from the hub, nothing downloaded).
    #[command(after_help = "Examples:
  localbrain catalog
  localbrain catalog --measure                        measure the memory speed again
  localbrain --usable-speed 4 catalog                 accept slower models
  localbrain --catalog my-models.toml catalog
  localbrain catalog hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF   every quant of a Hugging Face repo")]
    Catalog {
        /// Measure this machine's memory speed again instead of using the stored figure
        #[arg(long)]
        measure: bool,
        /// A Hugging Face repo (hf.co/ORG/REPO, or its page's address): list its quants instead,
        /// each with its size, fit and speed here, and the one the pick chose
        reference: Option<String>,
    },
    /// Chat with an installed model: one reply to PROMPT, or a conversation without one
    ///
    /// The reply is written to stdout as the model writes it, and its speed (N tokens, X
    /// tokens/s) to stderr. Without a prompt it is a conversation: /bye or Ctrl-D leaves,
    /// Ctrl-C stops the reply being written. Everything stays on this machine.
    #[command(after_help = "Examples:
  localbrain run qwen2.5-0.5b-instruct-q4_k_m \"Why is the sky blue?\"
  localbrain run qwen2.5-0.5b-instruct-q4_k_m
  localbrain run qwen2.5-0.5b-instruct-q4_k_m --max-tokens 50 --temperature 0 \"Name three colours\"")]
    Run {
        /// An installed model: its id (see `localbrain models`) or the hf.co/ORG/REPO[:QUANT] it was downloaded as
        model_id: String,
        /// What to ask; the words are joined. Without it: an interactive chat
        #[arg(trailing_var_arg = true)]
        prompt: Vec<String>,
        /// Most tokens in one reply [default: what the context has room for]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_tokens: Option<u32>,
        /// Sampling temperature, 0 to 2; 0 always picks the likeliest word [default: 0.7]
        #[arg(long)]
        temperature: Option<f32>,
        /// Also print how long the prompt took and when the first word came
        #[arg(long, short)]
        verbose: bool,
    },
    /// List the models on this machine: size, when installed, what they are, whether their
    /// files check out, and what unfinished downloads take
    #[command(after_help = "Example:
  localbrain models")]
    Models,
    /// Delete an installed model's file (asks first; every user of this machine loses it)
    #[command(after_help = "Examples:
  localbrain rm qwen2.5-0.5b-instruct-q4_k_m
  localbrain rm qwen2.5-0.5b-instruct-q4_k_m --yes   (in a script: no question)")]
    Rm {
        /// An installed model: its id (see `localbrain models`) or the hf.co/ORG/REPO[:QUANT] it was downloaded as
        model_id: String,
        /// Delete without asking (needed when not run from a terminal)
        #[arg(long, short)]
        yes: bool,
    },
    /// Add people who may use the web app, and print their login links
    ///
    /// A login link works once, for 15 minutes. It points at LOCALBRAIN_PUBLIC_URL when that is
    /// set, else at the server running on this data folder (it records its address there), else
    /// at LOCALBRAIN_ADDR (default 127.0.0.1:3000).
    #[command(
        subcommand,
        after_help = "Examples:
  localbrain user add alice
  localbrain user login alice"
    )]
    User(UserCommand),
    /// Make, list and revoke a user's API keys (for programs that use localbrain's API)
    ///
    /// A key's secret is shown once, by `key add`, and stored only as a hash. Programs send it
    /// as `Authorization: Bearer <key>`. A revoked key stops working at once. The Settings page
    /// has the same keys in its "API keys" card.
    #[command(
        subcommand,
        after_help = "Examples:
  localbrain key add alice editor
  KEY=$(localbrain key add alice scripts | tail -1)
  localbrain key list alice
  localbrain key revoke alice editor"
    )]
    Key(KeyCommand),
}

/// `localbrain key ...`
#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Make an API key for a user: the secret alone on the last line of stdout
    #[command(after_help = "Examples:
  localbrain key add alice editor
  localbrain key add alice \"my laptop\"
  KEY=$(localbrain key add alice scripts | tail -1)")]
    Add {
        /// The user's name, as given to `localbrain user add`
        user: String,
        /// What the key is for, unique among the user's keys (1 to 64 characters)
        name: String,
    },
    /// List a user's API keys: name, the start of the key, when made and last used
    #[command(after_help = "Example:
  localbrain key list alice")]
    List {
        /// The user's name
        user: String,
    },
    /// Revoke a user's API key: it stops working at once
    #[command(after_help = "Example:
  localbrain key revoke alice editor")]
    Revoke {
        /// The user's name
        user: String,
        /// The key's name, as `localbrain key list` shows it
        name: String,
    },
}

/// `localbrain user ...`
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user and print a one-time login link
    #[command(after_help = "Examples:
  localbrain user add alice
  localbrain user add --admin bob   (bob may also delete installed models)")]
    Add {
        /// The new user's name: lowercase letters, digits, '.', '_' or '-'
        name: String,
        /// Make the user an admin (admins may delete installed models)
        #[arg(long)]
        admin: bool,
    },
    /// Print a fresh one-time login link for an existing user
    #[command(after_help = "Example:
  localbrain user login alice")]
    Login {
        /// The user's name, as given to `localbrain user add`
        name: String,
    },
    /// Sign a user out everywhere: every browser session of theirs stops working at once
    #[command(after_help = "Example:
  localbrain user logout alice   (a lost laptop: then `localbrain user login alice` for a new link)")]
    Logout {
        /// The user's name
        name: String,
    },
}

/// Flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "LOCALBRAIN_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// The address people reach the server at when it sits behind a reverse proxy, e.g.
    /// https://brain.example.com: login links point there, and requests for that host are
    /// accepted [default: the address it listens on]
    #[arg(long, env = "LOCALBRAIN_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// The most connections served at once; more wait their turn [default: 1000, or half the
    /// open-file limit when that is lower]
    #[arg(long, env = "LOCALBRAIN_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: Option<u32>,

    /// How long a client has to send a request's headers, and the longest an open connection
    /// may sit idle between requests
    #[arg(long, env = "LOCALBRAIN_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_timeout: std::time::Duration,

    /// The longest an answer's write may wait for a client that stopped reading; then the
    /// connection is closed, and a reply being streamed to it is stopped
    #[arg(long, env = "LOCALBRAIN_WRITE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub write_timeout: std::time::Duration,

    /// How long a client has to send a request's body once its headers arrived (then 408)
    #[arg(long, env = "LOCALBRAIN_BODY_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub body_timeout: std::time::Duration,

    /// A web page at this origin (http(s)://host[:port]) may call the /v1 API from a browser;
    /// repeat it for more. None may by default
    #[arg(long = "cors-origin", env = "LOCALBRAIN_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_public_url)]
    pub cors_origins: Vec<String>,

    /// Chat requests (the card's and the API's) that may wait while every slot is writing; one
    /// more is refused at once (429, with a Retry-After from the measured speed), never left hanging
    #[arg(long, env = "LOCALBRAIN_QUEUE_LIMIT", default_value_t = localbrain::brain::DEFAULT_QUEUE_LIMIT as u32,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub queue_limit: u32,

    /// A reverse proxy in front of the server (an address, or a network like 10.0.0.0/8):
    /// requests from it are counted and logged by the client address it puts in
    /// X-Forwarded-For. Repeat it for more. None by default: the header is ignored
    #[arg(long = "trusted-proxy", env = "LOCALBRAIN_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<crate::proxies::IpNet>,

    /// A browser session not used for this long ends: 30m, 12h, 7d
    #[arg(long, env = "LOCALBRAIN_SESSION_IDLE", default_value = "7d", value_parser = parse_positive_duration)]
    pub session_idle: std::time::Duration,

    /// A browser session ends this long after sign-in, however much it is used: 12h, 30d
    #[arg(long, env = "LOCALBRAIN_SESSION_MAX", default_value = "30d", value_parser = parse_positive_duration)]
    pub session_max: std::time::Duration,
}

fn parse_trusted_proxy(s: &str) -> Result<crate::proxies::IpNet, String> {
    s.parse()
}

/// Resolved configuration, every path absolute-or-as-given and every default filled in.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub database_url: String,
    pub catalog: Option<PathBuf>,
    pub max_rate: Option<u64>,
    pub connections: usize,
    pub stall_timeout: std::time::Duration,
    pub retries: u32,
    pub segment_min_bytes: Option<u64>,
    pub threads: u32,
    /// `--parallel` when given: `serve` defaults to [`localbrain::brain::DEFAULT_PARALLEL`],
    /// `run` (one person at a keyboard) to 1.
    pub parallel: Option<u32>,
    pub keep_alive: std::time::Duration,
    pub context: u32,
    pub usable_speed: f64,
    pub gpu_layers: localbrain::brain::offload::GpuLayers,
}

impl Cli {
    /// Fills in the defaults. Fails only when no home folder is known and no data dir was given.
    pub fn config(&self) -> anyhow::Result<Config> {
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .context("no home folder is set: pass --data-dir or set LOCALBRAIN_DATA_DIR")?;
                PathBuf::from(home).join(".localbrain")
            }
        };
        let models_dir = self.models_dir.clone().unwrap_or_else(|| data_dir.join("models"));
        let database_url = self
            .database_url
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| localbrain::store::default_url(&data_dir));
        Ok(Config {
            data_dir,
            models_dir,
            database_url,
            catalog: self.catalog.clone(),
            max_rate: self.max_rate,
            connections: self.connections,
            stall_timeout: std::time::Duration::from_secs(self.stall_timeout),
            retries: self.retries,
            segment_min_bytes: self.segment_min_bytes,
            threads: self.threads.unwrap_or_else(localbrain::brain::default_threads),
            parallel: self.parallel,
            keep_alive: self.keep_alive,
            context: self.context,
            usable_speed: self.usable_speed,
            gpu_layers: self.gpu_layers,
        })
    }

    /// The subcommand, `serve` with its defaults when none was given.
    pub fn command(&self) -> Command {
        match &self.command {
            Some(Command::Serve(a)) => Command::Serve(a.clone()),
            Some(Command::Download { model_id, verbose }) => {
                Command::Download { model_id: model_id.clone(), verbose: *verbose }
            }
            Some(Command::Catalog { measure, reference }) => {
                Command::Catalog { measure: *measure, reference: reference.clone() }
            }
            Some(Command::Models) => Command::Models,
            Some(Command::Rm { model_id, yes }) => Command::Rm { model_id: model_id.clone(), yes: *yes },
            Some(Command::Run { model_id, prompt, max_tokens, temperature, verbose }) => Command::Run {
                model_id: model_id.clone(),
                prompt: prompt.clone(),
                max_tokens: *max_tokens,
                temperature: *temperature,
                verbose: *verbose,
            },
            Some(Command::User(u)) => Command::User(u.clone()),
            Some(Command::Key(k)) => Command::Key(k.clone()),
            None => {
                let defaults = ServeArgs::parse_from_env_or_default();
                Command::Serve(defaults)
            }
        }
    }
}

impl ServeArgs {
    /// `serve`'s flags when the subcommand was omitted: env fallbacks still apply.
    /// `serve`'s flags from the environment alone (for commands that print server links).
    pub fn from_env() -> ServeArgs {
        Self::parse_from_env_or_default()
    }

    fn parse_from_env_or_default() -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["localbrain"]).serve
    }
}

/// "300" or "300s" (seconds), "5m", "1h", "7d", "0".
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a duration: use 300, 30s, 5m, 1h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?} is not a duration: use 300, 30s, 5m, 1h or 7d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// A speed in tokens/s: more than 0, at most 10,000.
fn parse_speed(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 10_000.0 => Ok(v),
        _ => Err(format!("{text:?} is not a speed: give tokens per second, e.g. 8 or 4.5")),
    }
}

/// A duration that is more than zero (a timeout of 0 would refuse everything).
fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() { Err(format!("{text:?} is too short: give at least 1s")) } else { Ok(d) }
}

/// `http(s)://host[:port]`, with no path, query or login in it; the trailing `/` is dropped.
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{text:?} is not a public URL ({why}): use e.g. https://brain.example.com");
    let text = text.trim().trim_end_matches('/');
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if rest.is_empty() {
        return Err(bad("there is no host"));
    }
    if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace() || c.is_control()) {
        return Err(bad(&format!("{c:?} has no place in it: only the scheme, host and port")));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hang_off_the_data_dir() {
        // An empty --database-url means the default, whatever DATABASE_URL the test runs under.
        let cli = Cli::parse_from(["localbrain", "--data-dir", "/tmp/lb", "--database-url", "", "serve"]);
        let cfg = cli.config().unwrap();
        assert_eq!(cfg.models_dir, PathBuf::from("/tmp/lb/models"));
        assert!(cfg.database_url.starts_with("sqlite:///tmp/lb/localbrain.db"));
    }

    #[test]
    fn keep_alive_takes_seconds_minutes_and_hours() {
        use std::time::Duration;
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn public_urls_are_a_scheme_a_host_and_a_port() {
        assert_eq!(parse_public_url("https://brain.example.com/"), Ok("https://brain.example.com".into()));
        assert_eq!(parse_public_url("http://10.0.0.5:8080"), Ok("http://10.0.0.5:8080".into()));
        for bad in ["brain.example.com", "ftp://x", "https://", "https://a.b/brain", "https://u:p@a.b", "https://a b"] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_joins_the_prompt_words() {
        let cli = Cli::parse_from(["localbrain", "run", "m", "why", "is", "the", "sky", "blue?"]);
        match cli.command() {
            Command::Run { model_id, prompt, max_tokens, temperature, verbose } => {
                assert_eq!(model_id, "m");
                assert_eq!(prompt.join(" "), "why is the sky blue?");
                assert_eq!((max_tokens, temperature, verbose), (None, None, false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serve_is_the_default_command() {
        let cli = Cli::parse_from(["localbrain", "--data-dir", "/tmp/lb"]);
        assert!(matches!(cli.command(), Command::Serve(_)));
    }
}
