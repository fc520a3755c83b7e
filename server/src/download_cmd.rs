//! `localbrain download MODEL_ID`: the engine the web card uses, driven from a terminal with a
//! progress bar. Ctrl-C pauses (the partial is kept); running it again resumes. While the
//! engine waits to try again after a failure the terminal says why and when (a countdown on a
//! terminal, a line per try otherwise); a failure ends with the words table's sentences, and
//! `--verbose` adds the technical details.

use crate::ctrl_c::CtrlC;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use localbrain::engine::{Engine, News};
use localbrain::status::DownloadStatus;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs one download to its end. `Ok` only when the verified file is installed.
pub async fn run(engine: Arc<Engine>, user_id: i64, model_id: &str, verbose: bool) -> anyhow::Result<()> {
    let mut ctrl_c = CtrlC::listen()?;
    let model = engine
        .catalog()
        .get(model_id)
        .with_context(|| format!("there is no model called {model_id:?} in the catalog (see `localbrain catalog`)"))?
        .clone();
    let start = engine.start(user_id, model_id).await?;
    let id = start.id;
    let bar = ProgressBar::new(model.size_bytes);
    let name: String = model.id.chars().take(12).collect();
    let flowing = ProgressStyle::with_template(
        "{msg:12} [{bar:40.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let waiting = ProgressStyle::with_template("{wide_msg}").expect("valid template");
    bar.set_style(flowing.clone());
    bar.set_message(name.clone());
    let settled = engine.wait_settled(id);
    tokio::pin!(settled);
    // Bytes as this process's runner writes them; silent when another process runs the download.
    let mut news = engine.watch(id);
    let mut paused_by_user = false;
    // The row, read twice a second, says whether the engine is waiting to try again.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut told_attempt = None;
    let done = loop {
        tokio::select! {
            res = &mut settled => break res.context("lost track of the download")?,
            _ = ctrl_c.pressed(), if !paused_by_user => {
                paused_by_user = true;
                bar.set_message("pausing...");
                if let Err(e) = engine.pause(user_id, id).await {
                    // Already past the point of pausing (complete, failed): just finish.
                    tracing::debug!(error = %e, "pause on Ctrl-C refused");
                }
            }
            bytes = next_bytes(&mut news) => bar.set_position(bytes),
            _ = tick.tick(), if !paused_by_user => {
                let Ok(view) = engine.get(user_id, id).await else { continue };
                // When another process (the server) runs it, this process's news is silent
                // (its runner only waits for the other to let go) and the row's bytes, written
                // by the other's heartbeat each second, are the live figure.
                if news.is_none() || view.bytes_downloaded > bar.position() {
                    bar.set_position(view.bytes_downloaded);
                }
                match view.retrying {
                    Some(r) if bar.is_hidden() => {
                        // Not a terminal (a log, a script): one line per try, not a countdown.
                        if told_attempt != Some(r.attempt) {
                            eprintln!("{}", r.sentence());
                            if verbose {
                                eprintln!("  details: {}", r.detail);
                            }
                        }
                        told_attempt = Some(r.attempt);
                    }
                    Some(r) => {
                        if told_attempt.is_none() {
                            bar.set_style(waiting.clone());
                        }
                        told_attempt = Some(r.attempt);
                        bar.set_message(r.sentence());
                    }
                    None if told_attempt.is_some() => {
                        told_attempt = None;
                        bar.set_style(flowing.clone());
                        bar.set_message(name.clone());
                    }
                    None => {}
                }
            }
        }
    };
    bar.set_position(done.bytes_downloaded);
    match done.status {
        DownloadStatus::Complete => {
            bar.finish_with_message("installed");
            let path = done.target_path.unwrap_or_default();
            // The hash proves it is the catalog's file; the header says whether it can run here.
            let checked = std::path::PathBuf::from(&path);
            match tokio::task::spawn_blocking(move || localbrain::brain::gguf::read(&checked)).await {
                Ok(Ok(header)) => eprintln!("{} · chat with it: localbrain run {model_id}", header.facts.summary()),
                Ok(Err(e)) => {
                    eprintln!("warning: the file is installed, but it is not a model localbrain can run: {e}")
                }
                Err(_) => {}
            }
            println!("{path}");
            Ok(())
        }
        DownloadStatus::Paused => {
            bar.abandon_with_message("paused");
            bail!(
                "paused at {} of {} bytes; run `localbrain download {model_id}` again to resume",
                done.bytes_downloaded,
                done.total_bytes
            )
        }
        status => {
            bar.set_style(flowing);
            bar.abandon_with_message(status.to_string());
            if let Some(detail) = done.error_detail.filter(|_| verbose) {
                eprintln!("details: {detail}");
            }
            let why = done.error.unwrap_or_else(|| format!("The download ended {status}."));
            // The engine's words serve the card too, so the terminal's next step is added here.
            bail!("{why} Try again with: localbrain download {model_id}")
        }
    }
}

/// The bytes of the download's next news; waits forever once there is no more news (the runner
/// ended, or runs in another process), leaving the end to `wait_settled`.
async fn next_bytes(news: &mut Option<watch::Receiver<News>>) -> u64 {
    if let Some(rx) = news {
        if rx.changed().await.is_ok() {
            return rx.borrow_and_update().bytes;
        }
        *news = None;
    }
    std::future::pending().await
}
