//! `localbrain key add USER NAME`, `key list USER`, `key revoke USER NAME`: a user's API keys
//! from the terminal, as the Settings page's "API keys" card makes them. `add` prints its
//! sentence to stderr and the secret alone on stdout's last line, so `| tail -1` (or `$(...)`)
//! gets the key and nothing else.

use crate::cli::KeyCommand;
use anyhow::{Context, bail};
use localbrain::keys::{ApiKey, ago};
use localbrain::store::users::User;
use localbrain::store::{Db, api_keys, users};
use localbrain::time::now_ms;

/// Runs a key subcommand.
pub async fn run(db: &Db, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Add { user, name } => {
            let user = find_user(db, &user).await?;
            let (key, secret) = api_keys::create(db, user.id, &name).await?;
            eprintln!(
                "Made API key {:?} for {}. Copy it now: it will not be shown again. Programs send it as \
                 `Authorization: Bearer <key>`.",
                key.name, user.name
            );
            println!("{}", secret.expose());
        }
        KeyCommand::List { user } => {
            let user = find_user(db, &user).await?;
            let keys = api_keys::list(db, user.id).await.context("cannot list the keys")?;
            if keys.is_empty() {
                println!("{} has no API keys. `localbrain key add {} NAME` makes one.", user.name, user.name);
            } else {
                print!("{}", table(&keys, now_ms()));
            }
        }
        KeyCommand::Revoke { user, name } => {
            let user = find_user(db, &user).await?;
            if !api_keys::revoke(db, user.id, &name).await.context("cannot revoke the key")? {
                bail!(
                    "{} has no API key called {:?}; `localbrain key list {}` shows their keys",
                    user.name,
                    name.trim(),
                    user.name
                );
            }
            println!("Revoked {}'s API key {:?}: it no longer works.", user.name, name.trim());
        }
    }
    Ok(())
}

async fn find_user(db: &Db, name: &str) -> anyhow::Result<User> {
    users::by_name(db, name)
        .await
        .with_context(|| format!("cannot look up user {name:?}"))?
        .with_context(|| format!("there is no user called {name:?}; `localbrain user add {name}` creates one"))
}

/// The keys as a table: name, the start of the secret, when made, when last used ("never").
fn table(keys: &[ApiKey], now: i64) -> String {
    let rows: Vec<[String; 4]> = keys
        .iter()
        .map(|k| {
            let used = k.last_used_at.map_or_else(|| "never".to_string(), |t| ago(t, now));
            [k.name.clone(), k.shown(), ago(k.created_at, now), used]
        })
        .collect();
    let head = ["NAME", "KEY", "CREATED", "LAST USED"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&head).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_never_for_an_unused_key() {
        let now = 1_000_000_000_000;
        let keys = [
            ApiKey {
                name: "editor".into(),
                prefix: "lb-1a2b3c4d".into(),
                created_at: now - 3 * 86_400_000,
                last_used_at: None,
            },
            ApiKey {
                name: "ci".into(),
                prefix: "lb-99aa00ff".into(),
                created_at: now - 7_200_000,
                last_used_at: Some(now - 120_000),
            },
        ];
        assert_eq!(
            table(&keys, now),
            "NAME    KEY           CREATED      LAST USED\n\
             editor  lb-1a2b3c4d…  3 days ago   never\n\
             ci      lb-99aa00ff…  2 hours ago  2 minutes ago\n"
        );
    }
}
