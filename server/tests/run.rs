//! `localbrain run` as a person uses it: the real binary and the real model (SmolLM2-135M),
//! installed in a temp data folder. Replies are checked by shape, never by their words.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::catalog::smol_entry;
use testkit::{SMOL, test_model_path};

/// A data folder whose catalog lists the test model; installed unless `install` is false.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(install: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("data/models");
        std::fs::create_dir_all(&models).unwrap();
        if install {
            std::fs::copy(test_model_path(), models.join(format!("{SMOL}.gguf"))).unwrap();
        }
        testkit::catalog::write(&dir.path().join("catalog.toml"), [smol_entry("http://127.0.0.1:9/unused.gguf")]);
        Setup { dir }
    }

    fn model_file(&self) -> PathBuf {
        self.dir.path().join(format!("data/models/{SMOL}.gguf"))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbrain"));
        cmd.arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--threads", "1", "--context", "1024"])
            .env("LOCALBRAIN_CATALOG", self.dir.path().join("catalog.toml"))
            .env("DATABASE_URL", "")
            .env_remove("LOCALBRAIN_MODELS_DIR");
        cmd
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command()
            .arg("run")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// The `N tokens, X tokens/s` lines of stderr, as (N, X).
fn stats_lines(stderr: &str) -> Vec<(u32, f64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [n, "tokens,", x, "tokens/s", ..] => Some((n.parse().ok()?, x.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

/// How long one token takes on this machine now, measured by a short reply: tests that wait on
/// the model budget in tokens at this speed, so a loaded machine slows them without failing them.
fn token_time(s: &Setup) -> Duration {
    let out = s.run(&["--max-tokens", "16", SMOL, "Say", "hello."], "");
    let stderr = text(&out.stderr);
    let (_, per_second) = *stats_lines(&stderr).first().unwrap_or_else(|| panic!("no speed line: {stderr}"));
    Duration::from_secs_f64(1.0 / per_second.max(0.1))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_prompt_streams_the_reply_to_stdout_and_its_speed_to_stderr() {
    let s = Setup::new(true);
    let out = s.run(&["--max-tokens", "24", SMOL, "What", "is", "the", "capital", "of", "France?"], "");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.trim().is_empty(), "a reply on stdout");
    let stats = stats_lines(&stderr);
    assert_eq!(stats.len(), 1, "one stats line: {stderr}");
    let (n, speed) = stats[0];
    assert!((1..=24).contains(&n) && speed > 0.0, "{stderr}");
    assert!(!stdout.contains("tokens/s"), "stdout holds just the reply");
}

/// Measured beats predicted: a run's speed is kept in the data folder's machine.json, and
/// `localbrain catalog` then shows it for that model instead of a prediction.
#[test]
fn a_run_records_its_speed_and_the_catalog_shows_it_measured() {
    let s = Setup::new(true);
    let out = s.run(&["--max-tokens", "32", SMOL, "Write", "a", "very", "long", "story", "about", "a", "dragon."], "");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (n, speed) = stats_lines(&stderr)[0];
    assert!(n >= 16, "a reply long enough to be recorded: {stderr}");
    let facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.dir.path().join("data/machine.json")).unwrap()).unwrap();
    let runs = facts["speeds"][SMOL].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{facts}");
    assert!((runs[0].as_f64().unwrap() - speed).abs() < 0.06, "{facts} vs {speed}");

    let out = s.command().arg("catalog").output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = stdout.lines().find(|l| l.contains(SMOL)).unwrap();
    assert!(row.contains("measured "), "{row}");
    assert!(!row.contains("here"), "a measured speed, not a prediction: {row}");
}

#[test]
fn without_a_prompt_it_is_a_conversation_until_bye() {
    let s = Setup::new(true);
    let out = s.run(&["--max-tokens", "16", SMOL], "Hello there!\n\nAnd what is two plus two?\n/bye\nnever read\n");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stats_lines(&stderr).len(), 2, "two replies, the empty line skipped: {stderr}");
    assert!(!text(&out.stdout).trim().is_empty());
}

/// `--verbose` says how much of each turn's prompt came from the last turn: nothing for the
/// first, at least the whole first prompt for the second.
#[test]
fn the_next_turn_of_a_conversation_reuses_what_the_model_read() {
    let s = Setup::new(true);
    let out = s.run(&["--verbose", "--max-tokens", "12", SMOL], "Hello there!\nAnd what is two plus two?\n");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // "prompt: N tokens (M reused from the last turn), ..."
    let prompts: Vec<(u32, u32)> = stderr
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                ["prompt:", n, "tokens", m, "reused", ..] => {
                    Some((n.parse().ok()?, m.trim_start_matches('(').parse().ok()?))
                }
                _ => None,
            }
        })
        .collect();
    assert_eq!(prompts.len(), 2, "{stderr}");
    assert_eq!(prompts[0].1, 0, "{stderr}");
    assert!(prompts[1].1 >= prompts[0].0 && prompts[1].1 < prompts[1].0, "{stderr}");
    // It says where the model ran: this CPU build (and --gpu-layers 0 on any build) on the CPU.
    assert_eq!(stderr.lines().filter(|l| l.starts_with("prompt:") && l.ends_with("; on CPU")).count(), 2, "{stderr}");
    let cpu = s.run(&["--verbose", "--gpu-layers", "0", "--max-tokens", "4", SMOL, "Hi"], "");
    assert!(text(&cpu.stderr).contains("; on CPU"), "{}", text(&cpu.stderr));
    let bad = s.run(&["--gpu-layers", "all", SMOL, "Hi"], "");
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("auto (as many as fit the GPU)"), "{}", text(&bad.stderr));
}

#[test]
fn end_of_input_leaves_the_conversation() {
    let s = Setup::new(true);
    let out = s.run(&["--max-tokens", "8", SMOL], "Hi\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(stats_lines(&text(&out.stderr)).len(), 1);
}

#[test]
fn ctrl_c_stops_the_reply_being_written() {
    let s = Setup::new(true);
    let token = token_time(&s);
    let mut child = s
        .command()
        .args(["run", "--max-tokens", "900", SMOL, "Write", "a", "very", "long", "story", "about", "a", "dragon."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first bytes of the reply, then press Ctrl-C.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("the reply starts");
    let pressed = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let reader = std::thread::spawn(move || std::io::Read::read_to_end(&mut stdout, &mut Vec::new()));
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Stopping takes a token; exiting frees the model and the process (about a second here).
    let budget = Duration::from_secs(3) + token * 20;
    assert!(
        pressed.elapsed() < budget,
        "stopped within a token, then exited: {:?} ({token:?} a token)",
        pressed.elapsed()
    );
    let stats = stats_lines(&stderr);
    assert_eq!(stats.len(), 1, "{stderr}");
    assert!(stats[0].0 < 900 && stderr.contains("(stopped)"), "{stderr}");
}

#[test]
fn a_model_that_is_not_installed_says_how_to_get_it() {
    let s = Setup::new(false);
    let out = s.run(&[SMOL, "Hi"], "");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("run `localbrain download {SMOL}` first")), "{stderr}");
    let out = s.run(&["no-such-model", "Hi"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no model called \"no-such-model\""), "{}", text(&out.stderr));
}

#[test]
fn a_file_that_is_not_a_usable_model_is_refused_in_plain_words() {
    let s = Setup::new(false);
    let cases: [(&str, Vec<u8>); 2] = [
        ("not a GGUF model file", b"<html>404 Not Found</html>".to_vec()),
        ("cut short", std::fs::read(test_model_path()).unwrap()[..4 * 1024 * 1024].to_vec()),
    ];
    for (why, bytes) in cases {
        std::fs::write(s.model_file(), bytes).unwrap();
        let out = s.run(&[SMOL, "Hi"], "");
        assert!(!out.status.success(), "{why}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("not a model localbrain can run") && stderr.contains(why), "{why}: {stderr}");
        assert!(stderr.lines().count() <= 2, "a plain message, not llama.cpp's log: {stderr}");
    }
}
