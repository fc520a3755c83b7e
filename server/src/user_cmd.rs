//! `localbrain user add [--admin] NAME` and `localbrain user login NAME`: one-time login links.

use crate::cli::UserCommand;
use anyhow::{Context, bail};
use localbrain::catalog::is_valid_model_id;
use localbrain::store::{Db, sessions, users};
use std::net::SocketAddr;

/// Runs a user subcommand; prints the login link.
pub async fn run(db: &Db, cmd: UserCommand, addr: &SocketAddr) -> anyhow::Result<()> {
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
            println!("{}", login_link(db, user.id, addr).await?);
        }
        UserCommand::Login { name } => {
            let user = users::by_name(db, &name)
                .await
                .with_context(|| format!("cannot look up user {name:?}"))?
                .with_context(|| format!("there is no user called {name:?}"))?;
            println!("Login link for {} (works once, for 15 minutes):", user.name);
            println!("{}", login_link(db, user.id, addr).await?);
        }
    }
    Ok(())
}

/// A fresh one-time login URL for a user on this server.
pub async fn login_link(db: &Db, user_id: i64, addr: &SocketAddr) -> anyhow::Result<String> {
    let token = sessions::create_login_token(db, user_id).await.context("cannot make a login link")?;
    let host = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    Ok(format!("http://{host}/login?token={}", token.expose()))
}
