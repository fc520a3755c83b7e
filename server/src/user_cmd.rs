//! `localbrain user add [--admin] NAME` and `localbrain user login NAME`: one-time login links;
//! `localbrain user logout NAME`: every session of a user ended.

use crate::cli::UserCommand;
use anyhow::{Context, bail};
use localbrain::catalog::is_valid_model_id;
use localbrain::store::{Db, sessions, users};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Runs a user subcommand; prints the login link, for the server at `base` ([`link_base`]).
pub async fn run(db: &Db, cmd: UserCommand, base: &str) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { name, admin } => {
            // User names follow the model-id charset: safe in URLs, logs and file names.
            if !is_valid_model_id(&name) {
                bail!("{name:?} is not a valid user name: use lowercase letters, digits, '.', '_' or '-'");
            }
            let user = users::create(db, &name, if admin { "admin" } else { "user" })
                .await
                .with_context(|| format!("cannot create user {name:?}"))?
                .with_context(|| {
                    format!("a user called {name:?} already exists; `localbrain user login {name}` prints a link")
                })?;
            let what = if admin { "admin" } else { "user" };
            println!("Created {what} {}. Login link (works once, for 15 minutes):", user.name);
            println!("{}", login_link(db, user.id, base).await?);
        }
        UserCommand::Login { name } => {
            let user = users::by_name(db, &name)
                .await
                .with_context(|| format!("cannot look up user {name:?}"))?
                .with_context(|| format!("there is no user called {name:?}"))?;
            println!("Login link for {} (works once, for 15 minutes):", user.name);
            println!("{}", login_link(db, user.id, base).await?);
        }
        UserCommand::Logout { name } => {
            let user = users::by_name(db, &name)
                .await
                .with_context(|| format!("cannot look up user {name:?}"))?
                .with_context(|| format!("there is no user called {name:?}"))?;
            let ended = sessions::delete_user_sessions(db, user.id).await.context("cannot end the sessions")?;
            let s = if ended == 1 { "" } else { "s" };
            println!("Signed {} out everywhere ({ended} session{s} ended).", user.name);
        }
    }
    Ok(())
}

/// A fresh one-time login URL for a user of the server at `base` (`http://host:port`).
pub async fn login_link(db: &Db, user_id: i64, base: &str) -> anyhow::Result<String> {
    let token = sessions::create_login_token(db, user_id).await.context("cannot make a login link")?;
    Ok(format!("{base}/login?token={}", token.expose()))
}

/// The base URL of a server listening on `addr` (an unspecified address is reached on 127.0.0.1).
pub fn base_of(addr: &SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    format!("http://{host}")
}

/// Where a running server records the address it really serves on, in its data folder.
fn recorded_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server-url")
}

/// Records the running server's base URL for `user add` / `user login`, replacing the file in
/// one rename so a reader never sees half of it. Not fatal: links then fall back to the
/// configured address.
pub fn record_base(data_dir: &Path, base: &str) {
    let path = recorded_path(data_dir);
    let tmp = path.with_extension("tmp");
    let written = std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&tmp, format!("{base}\n")))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the server's address; login links use LOCALBRAIN_ADDR");
    }
}

/// The server a login link points at: the public URL when one is configured
/// (`LOCALBRAIN_PUBLIC_URL`), else the address the last `serve` on this data folder recorded
/// (its public URL or where it listens), else `addr` (`LOCALBRAIN_ADDR`, default 127.0.0.1:3000).
pub fn link_base(data_dir: &Path, public_url: Option<&str>, addr: &SocketAddr) -> String {
    if let Some(url) = public_url {
        return url.to_string();
    }
    std::fs::read_to_string(recorded_path(data_dir))
        .ok()
        .and_then(|s| crate::cli::parse_public_url(s.trim()).ok())
        .unwrap_or_else(|| base_of(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_recorded_server_else_the_configured_address() {
        let dir = tempfile::tempdir().unwrap();
        let configured: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert_eq!(link_base(dir.path(), None, &configured), "http://127.0.0.1:3000");
        record_base(dir.path(), &base_of(&"0.0.0.0:4123".parse().unwrap()));
        assert_eq!(link_base(dir.path(), None, &configured), "http://127.0.0.1:4123");
        record_base(dir.path(), "http://[::1]:5000");
        assert_eq!(link_base(dir.path(), None, &configured), "http://[::1]:5000");
        // A server behind a proxy records its public URL; a configured one wins over all.
        record_base(dir.path(), "https://brain.example.com");
        assert_eq!(link_base(dir.path(), None, &configured), "https://brain.example.com");
        assert_eq!(link_base(dir.path(), Some("https://other.example"), &configured), "https://other.example");
        // Something else in the file is not trusted as a link.
        std::fs::write(recorded_path(dir.path()), "javascript:alert(1)").unwrap();
        assert_eq!(link_base(dir.path(), None, &configured), "http://127.0.0.1:3000");
    }
}
