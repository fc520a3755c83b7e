//! Command line and configuration: flags with environment fallbacks.

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// localbrain: a private AI model on this machine, in one click.
#[derive(Debug, Parser)]
#[command(name = "localbrain", version, about)]
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

    /// Smallest segment of a parallel download in bytes. For tests, which need many segments
    /// in a small file; the product keeps ollama's 100 MB.
    #[arg(long, env = "LOCALBRAIN_SEGMENT_MIN_BYTES", global = true, hide = true)]
    pub segment_min_bytes: Option<u64>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app (the default)
    Serve(ServeArgs),
    /// Download, verify and install a model from the catalog
    Download {
        /// A catalog model id (see `localbrain catalog`)
        model_id: String,
    },
    /// List the catalog's models, how each fits this machine, and the pick
    Catalog,
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
}

/// `localbrain user ...`
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user and print a one-time login link
    Add {
        /// Letters, digits, '.', '_' or '-'
        name: String,
    },
    /// Print a fresh one-time login link for an existing user
    Login { name: String },
}

/// Flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "LOCALBRAIN_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
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
    pub segment_min_bytes: Option<u64>,
}

impl Cli {
    /// Fills in the defaults. Fails only when no home folder is known and no data dir was given.
    pub fn config(&self) -> Result<Config, String> {
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => {
                let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(
                    "no home folder is set: pass --data-dir or set LOCALBRAIN_DATA_DIR",
                )?;
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
            segment_min_bytes: self.segment_min_bytes,
        })
    }

    /// The subcommand, `serve` with its defaults when none was given.
    pub fn command(&self) -> Command {
        match &self.command {
            Some(Command::Serve(a)) => Command::Serve(a.clone()),
            Some(Command::Download { model_id }) => Command::Download { model_id: model_id.clone() },
            Some(Command::Catalog) => Command::Catalog,
            Some(Command::User(u)) => Command::User(u.clone()),
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
    fn serve_is_the_default_command() {
        let cli = Cli::parse_from(["localbrain", "--data-dir", "/tmp/lb"]);
        assert!(matches!(cli.command(), Command::Serve(_)));
    }
}
