//! `localbrain models` and `localbrain rm MODEL_ID`: the models on this machine, and deleting
//! one. The terminal belongs to the machine's owner, so it acts as the admin. `rm` asks before
//! deleting when it can (a terminal on stdin); `--yes` skips the question, and without a
//! terminal and without `--yes` it refuses instead of deleting unasked.

use anyhow::{Context, bail};
use localbrain::installed::ModelsView;
use localbrain::library::Library;
use localbrain::store::users;
use localbrain::units::format_bytes;
use std::io::{BufRead, IsTerminal, Write};

/// Prints the models, the unfinished downloads and the disk line.
pub async fn list(lib: &Library<'_>) -> anyhow::Result<()> {
    let view = admin_view(lib).await?;
    let mut out = std::io::stdout().lock();
    if view.models.is_empty() {
        writeln!(out, "No models on this machine yet (`localbrain download MODEL_ID` adds one).")?;
    }
    for m in &view.models {
        let id = m.model_id.as_deref().unwrap_or("(not in the catalog)");
        writeln!(out, "{id}  {}  {}", m.name, m.summary())?;
        match (&m.facts, &m.problem) {
            (Some(f), _) => writeln!(out, "    {}", f.summary())?,
            (None, Some(p)) => writeln!(out, "    {p}")?,
            (None, None) => {}
        }
        if m.model_id.is_none() {
            writeln!(out, "    file {} (only catalog models can be deleted here)", m.file_name)?;
        }
        if let Some(u) = m.in_use {
            writeln!(out, "    {}", u.label())?;
        }
    }
    writeln!(out, "{}", view.leftovers_line())?;
    for l in &view.leftovers {
        writeln!(
            out,
            "    {} ({}) by {}: {}, {}",
            l.name,
            l.model_id,
            l.user_name,
            l.status,
            format_bytes(l.bytes_on_disk)
        )?;
    }
    writeln!(out, "{}", view.disk_line())?;
    Ok(())
}

/// Deletes an installed model's file, asking first unless `yes`.
pub async fn remove(lib: &Library<'_>, model_id: &str, yes: bool) -> anyhow::Result<()> {
    let Some(entry) = lib.catalog.get(model_id) else {
        bail!("there is no model called {model_id:?} in the catalog (`localbrain models` lists what is installed)");
    };
    let view = admin_view(lib).await?;
    let Some(model) = view.models.iter().find(|m| m.model_id.as_deref() == Some(model_id)) else {
        bail!("{model_id} is not on this machine (`localbrain models` lists what is installed)");
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "not deleting {model_id}: there is no terminal to ask on; run `localbrain rm {model_id} --yes` to delete it"
            );
        }
        let mut err = std::io::stderr().lock();
        write!(
            err,
            "Delete {} ({})? Every user of this machine loses it. [y/N] ",
            entry.name,
            format_bytes(model.size_bytes)
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).context("cannot read the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            bail!("not deleted: {model_id} is still installed");
        }
    }
    lib.remove(model_id).await.with_context(|| format!("cannot delete {model_id}"))?;
    println!("Deleted {} ({} freed).", entry.name, format_bytes(model.size_bytes));
    Ok(())
}

/// The view as the local admin sees it.
async fn admin_view(lib: &Library<'_>) -> anyhow::Result<ModelsView> {
    let (admin, _) = users::ensure_admin(lib.db).await.context("cannot set up the admin user")?;
    lib.view(admin.id, true).await.context("cannot list the models")
}
