//! Models from Hugging Face, end to end: the real binary against the test kit's loopback hub
//! (its API, `resolve` redirects to a second loopback host shaped like the CDN, a gated repo),
//! serving the real test model. Each reference form installs and then runs; the hub's own
//! SHA-256 decides (a wrong one installs nothing); a gated repo needs the token, which never
//! reaches the CDN; what is not there is named with what is; a download killed with -9 resumes
//! after its CDN address expired, asking the hub again; and the card's endpoints search, list quants and start a hub download.

use super::*;
use std::process::{Output, Stdio};
use std::sync::Arc;
use testkit::{HUB_TOKEN, HubFile, HubHost, HubRepo, SMOL_SIZE, test_model_path};

const SMOL_REPO: &str = "test-org/SmolLM2-135M-Instruct-GGUF";
/// The id the Q4_1 file of [`SMOL_REPO`] installs as.
const SMOL_HUB_ID: &str = "hf--test-org--smollm2-135m-instruct-gguf--q4_1";

fn smol_bytes() -> Arc<Vec<u8>> {
    static BYTES: std::sync::OnceLock<Arc<Vec<u8>>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| Arc::new(std::fs::read(test_model_path()).unwrap())).clone()
}

/// A small, well-formed GGUF of `arch` (about 4 MiB): enough for the header check and a download.
fn small_gguf(arch: &str, seed: u64) -> Arc<Vec<u8>> {
    let mut bytes = localbrain::brain::gguf::write::minimal(arch, 1 << 20);
    // Different bytes per seed, past the header and the weights' start, so each file has a hash of its own.
    let at = bytes.len() - 8;
    bytes[at..].copy_from_slice(&seed.to_le_bytes());
    Arc::new(bytes)
}

/// The real model as Q4_1, beside a smaller quant (a small GGUF) the pick passes over.
fn smol_repo() -> HubRepo {
    HubRepo::new(
        SMOL_REPO,
        vec![
            HubFile::new("SmolLM2-135M-Instruct-Q4_1.gguf", smol_bytes()),
            HubFile::new("SmolLM2-135M-Instruct-Q2_K.gguf", small_gguf("llama", 1)),
            HubFile::new("README.md", Arc::new(b"# SmolLM2 GGUF\n".to_vec())),
        ],
    )
}

async fn server_on(hub: &HubHost) -> Server {
    Server::start_with(&model_host().await, &[("HF_ENDPOINT", &hub.base)]).await
}

/// `localbrain ARGS` against the server's folders, with `env` on top.
async fn cli(s: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = s.command();
    cmd.args(args).envs(env.iter().copied()).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("run localbrain")).await.unwrap()
}

fn text(out: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reference_form_installs_and_then_runs() {
    let hub = HubHost::start(vec![smol_repo()]).await;
    let s = server_on(&hub).await;
    let file_url = format!("{}/{SMOL_REPO}/resolve/main/SmolLM2-135M-Instruct-Q4_1.gguf", hub.base);
    let page_url = format!("https://huggingface.co/{SMOL_REPO}/blob/main/SmolLM2-135M-Instruct-Q4_1.gguf");
    let forms = [
        format!("hf.co/{SMOL_REPO}:q4_1"),
        format!("hf.co/{SMOL_REPO}"),
        file_url,
        // huggingface.co's own page address names the same file on whichever hub is configured.
        page_url,
    ];
    let installed = s.installed_path(SMOL_HUB_ID);
    let alice = s.admin().await;
    for form in &forms {
        let out = cli(&s, &["download", form], &[]).await;
        assert!(out.status.success(), "download {form}: {}", text(&out));
        // The model the terminal adopted is in the catalog at once: in `localbrain catalog`, and
        // in the running server's (another process: it reads the kept hub models again).
        let listed = cli(&s, &["catalog"], &[]).await;
        assert!(String::from_utf8_lossy(&listed.stdout).contains(SMOL_HUB_ID), "{}", text(&listed));
        let catalog = s.ok(&alice, "catalog", json!({})).await;
        assert!(catalog["models"].as_array().unwrap().iter().any(|m| m["id"] == SMOL_HUB_ID), "{catalog}");
        assert!(
            String::from_utf8_lossy(&out.stdout).trim_end().ends_with(&format!("{SMOL_HUB_ID}.gguf")),
            "{}",
            text(&out)
        );
        assert_eq!(std::fs::metadata(&installed).unwrap().len(), SMOL_SIZE, "{form}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("SmolLM2-135M-Instruct-Q4_1.gguf") && stderr.contains("license apache-2.0"),
            "{stderr}"
        );

        let out = cli(&s, &["run", form, "--max-tokens", "8", "--temperature", "0", "Say hello"], &[]).await;
        assert!(out.status.success(), "run {form}: {}", text(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty(), "a reply: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("tokens/s"), "{}", text(&out));

        let out = cli(&s, &["models"], &[]).await;
        assert!(String::from_utf8_lossy(&out.stdout).contains(SMOL_HUB_ID), "{}", text(&out));
        // Gone again, so the next form installs from nothing.
        let out = cli(&s, &["rm", form, "--yes"], &[]).await;
        assert!(out.status.success(), "rm {form}: {}", text(&out));
        assert!(!installed.exists());
    }
    // Every download went to the pinned commit, never to a branch name.
    let commit = &smol_repo().commit;
    let resolves: Vec<_> = hub.seen().into_iter().filter(|r| r.target.contains("/resolve/")).collect();
    assert!(resolves.iter().all(|r| r.target.contains(commit.as_str())), "{resolves:#?}");
    // The CDN only ever sent the Q4_1 file's bytes past its header (the Q2_K quant was not picked).
    let q2 = HubHost::cdn_path(&small_gguf("llama", 1));
    assert!(hub.cdn.requests(&q2).is_empty(), "{:?}", hub.cdn.requests(&q2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_command_lists_a_repos_quants_and_downloads_nothing() {
    let hub = HubHost::start(vec![smol_repo()]).await;
    let s = server_on(&hub).await;
    // A quant named or not, every quant is listed and the pick is the machine's.
    for form in [format!("hf.co/{SMOL_REPO}"), format!("hf.co/{SMOL_REPO}:Q2_K")] {
        let out = cli(&s, &["catalog", &form], &[]).await;
        assert!(out.status.success(), "catalog {form}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in [
            "CPU: ",
            "SmolLM2-135M-Instruct-Q4_1.gguf",
            "SmolLM2-135M-Instruct-Q2_K.gguf",
            "license apache-2.0",
            "tokens/s here",
            "* Picked: Q4_1",
            &format!("Download it with: localbrain download hf.co/{SMOL_REPO}:Q4_1"),
        ] {
            assert!(stdout.contains(line), "{line:?} in {stdout}");
        }
        let picked: Vec<&str> = stdout.lines().filter(|l| l.contains(".gguf")).filter(|l| l.contains('*')).collect();
        assert!(picked.len() == 1 && picked[0].contains("Q4_1"), "one quant marked, the Q4_1: {stdout}");
    }
    // Only the picked file's header was read: no download row, no file, no ranged read past it.
    assert!(s.model_files().is_empty(), "{:?}", s.model_files());
    let q4 = HubHost::cdn_path(&smol_bytes());
    assert!(hub.cdn.requests(&q4).iter().all(|r| r.range.as_deref().is_some_and(|r| r.starts_with("bytes=0-"))));
    let out = cli(&s, &["catalog", "hf.co/org/missing"], &[]).await;
    assert!(!out.status.success() && text(&out).contains("there is no model org/missing"), "{}", text(&out));
    let out = cli(&s, &["catalog", "qwen2.5-0.5b-instruct-q4_k_m"], &[]).await;
    assert!(!out.status.success() && text(&out).contains("is not a Hugging Face model"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_own_hash_decides_and_a_wrong_one_installs_nothing() {
    let good = small_gguf("llama", 2);
    let mut lying = HubFile::new("Tiny-Q8_0.gguf", good.clone());
    lying.listed_sha256 = testkit::sha256_hex(b"some other file");
    let mut disagreeing = HubFile::new("Tiny-Q8_0.gguf", small_gguf("llama", 3));
    disagreeing.linked_etag = Some(testkit::sha256_hex(b"yet another file"));
    let hub = HubHost::start(vec![
        HubRepo::new("org/lying", vec![lying]),
        HubRepo::new("org/disagreeing", vec![disagreeing]),
    ])
    .await;
    let s = server_on(&hub).await;

    let out = cli(&s, &["download", "hf.co/org/lying:Q8_0"], &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("sha-256") || stderr.contains("hash"), "says the file is not the one listed: {stderr}");
    assert!(!s.installed_path("hf--org--lying--q8_0").exists(), "a file that fails the hub's hash is not installed");
    assert_eq!(s.model_files().iter().filter(|f| f.ends_with(".gguf")).count(), 0, "{:?}", s.model_files());

    // X-Linked-Etag that is not the tree's: stopped before the file's bytes, saying why.
    let out = cli(&s, &["download", "hf.co/org/disagreeing"], &[]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("disagrees"), "{}", text(&out));
    let path = HubHost::cdn_path(&small_gguf("llama", 3));
    let fetched = hub.cdn.requests(&path);
    assert!(
        fetched.iter().all(|r| r.range.as_deref().is_some_and(|r| r.starts_with("bytes=0-"))),
        "only the header: {fetched:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_repo_asks_for_a_token_and_the_token_never_reaches_the_cdn() {
    let mut gated = HubRepo::new("org/gated-model", vec![HubFile::new("Gated-Q4_K_M.gguf", small_gguf("llama", 4))]);
    gated.gated = true;
    let hub = HubHost::start(vec![gated]).await;
    let s = server_on(&hub).await;

    let out = cli(&s, &["download", "hf.co/org/gated-model"], &[]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("this model needs you to accept its license on Hugging Face and a token"), "{stderr}");
    assert!(stderr.contains(&format!("{}/org/gated-model", hub.base)), "names the page to accept it on: {stderr}");

    let out = cli(&s, &["download", "hf.co/org/gated-model"], &[("HF_TOKEN", HUB_TOKEN)]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.installed_path("hf--org--gated-model--q4_k_m").exists());
    assert!(!text(&out).contains(HUB_TOKEN), "the token is never printed");

    let bearer = format!("Bearer {HUB_TOKEN}");
    let signed = hub.seen().into_iter().filter(|r| r.authorization.as_deref() == Some(bearer.as_str())).count();
    assert!(signed > 0, "the hub got the token: {:#?}", hub.seen());
    let cdn = hub.cdn.seen();
    assert!(!cdn.is_empty() && cdn.iter().all(|r| r.authorization.is_none()), "the CDN never sees it: {cdn:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_there_is_named_with_what_is() {
    // Parts 1 and 3 of 3: the second is not in the repo.
    let split = vec![
        HubFile::new("Big-Q4_K_M-00001-of-00003.gguf", small_gguf("llama", 5)),
        HubFile::new("Big-Q4_K_M-00003-of-00003.gguf", small_gguf("llama", 6)),
    ];
    let hub = HubHost::start(vec![
        smol_repo(),
        HubRepo::new("org/no-gguf", vec![HubFile::new("model.safetensors", Arc::new(vec![7; 1024]))]),
        HubRepo::new("org/split", split),
        HubRepo::new("org/alien", vec![HubFile::new("Alien-Q4_K_M.gguf", small_gguf("nosucharch", 7))]),
    ])
    .await;
    let s = server_on(&hub).await;
    let fails = |args: &'static [&'static str]| {
        let s = &s;
        async move {
            let out = cli(s, args, &[]).await;
            assert!(!out.status.success(), "{args:?}: {}", text(&out));
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    };
    let e = fails(&["download", "hf.co/org/nothing-here"]).await;
    assert!(e.contains("there is no model org/nothing-here on Hugging Face"), "{e}");
    let e = fails(&["download", "hf.co/test-org/SmolLM2-135M-Instruct-GGUF:Q5_K_M"]).await;
    assert!(e.contains("has no Q5_K_M file") && e.contains("Q4_1") && e.contains("Q2_K"), "lists what is there: {e}");
    let e = fails(&["download", "hf.co/org/no-gguf"]).await;
    assert!(e.contains("has no GGUF model file") && e.contains("model.safetensors"), "{e}");
    let e = fails(&["download", "hf.co/org/split:Q4_K_M"]).await;
    assert!(e.contains("part 1 of 3 of a split model, but the repo lacks part 2"), "{e}");
    let e = fails(&["download", "hf.co/org/alien"]).await;
    assert!(e.contains("\"nosucharch\" is not one this version of llama.cpp can run"), "{e}");
    let e = fails(&["download", "hf.co/org/bad--name"]).await;
    assert!(e.contains("is not a name the hub allows"), "{e}");
    let e = fails(&["run", "hf.co/org/alien", "hi"]).await;
    assert!(e.contains("is not on this machine") && e.contains("localbrain download hf.co/org/alien"), "{e}");
    // The unknown architecture was refused from its header: no byte past it was fetched.
    let alien = hub.cdn.requests(&HubHost::cdn_path(&small_gguf("nosucharch", 7)));
    assert!(
        !alien.is_empty() && alien.iter().all(|r| r.range.as_deref().is_some_and(|r| r.starts_with("bytes=0-"))),
        "{alien:?}"
    );
    assert!(s.model_files().is_empty(), "nothing was written: {:?}", s.model_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_with_9_resumes_after_its_cdn_address_expired_asking_the_hub_again() {
    let hub = HubHost::start(vec![smol_repo()]).await;
    // The CDN's addresses live 2 s here (an hour on the real one): the resume comes after that.
    hub.set_url_lifetime(Some(Duration::from_secs(2)));
    let q4 = HubHost::cdn_path(&smol_bytes());
    hub.cdn.set_path(&q4, |m| {
        m.chunk = 64 * 1024;
        m.chunk_delay = Duration::from_millis(15);
    });
    let s = server_on(&hub).await;
    let reference = format!("hf.co/{SMOL_REPO}:Q4_1");
    let mut child = s
        .command()
        .args(["--connections", "1", "download", &reference])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partials = s.models_dir.join(".partial");
    let on_disk = || -> u64 {
        std::fs::read_dir(&partials)
            .map(|d| d.flatten().map(|e| e.metadata().map_or(0, |m| m.len())).sum())
            .unwrap_or(0)
    };
    wait_for("the partial to grow past 2 MB", WAIT, || async { (on_disk() > 2_000_000).then_some(()) }).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let resolves_before = hub.seen().iter().filter(|r| r.target.contains("/resolve/")).count();
    let kept = on_disk();
    let old_address = hub.issued().pop().expect("the hub gave the download a CDN address");
    let expires: i64 = old_address.rsplit_once("expires=").unwrap().1.parse().unwrap();
    while localbrain::time::now_ms() <= expires {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stale = reqwest::get(&old_address).await.unwrap();
    assert_eq!(stale.status(), 403, "the address the killed download had has expired");

    hub.cdn.set_path(&q4, |m| m.chunk_delay = Duration::ZERO);
    let out = cli(&s, &["--connections", "1", "download", &reference], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let bytes = std::fs::read(s.installed_path(SMOL_HUB_ID)).unwrap();
    assert!(bytes == *smol_bytes(), "the installed file is the model");
    let resolves_after = hub.seen().iter().filter(|r| r.target.contains("/resolve/")).count();
    assert!(resolves_after > resolves_before, "the resume asked the hub again (its CDN address had expired)");
    let refused: Vec<_> = hub.cdn.seen().into_iter().filter(|r| r.status == 403).collect();
    assert_eq!(refused.len(), 1, "only the test's own look at the stale address was refused: {refused:?}");
    let last = hub.cdn.requests(&q4).pop().unwrap();
    let from: u64 = last
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    assert!(from > 0 && from <= kept, "resumed from the kept bytes ({kept}), not from zero: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cards_endpoints_search_list_quants_and_start_a_hub_download() {
    let hub = HubHost::start(vec![smol_repo(), HubRepo::new("org/other-model", vec![])]).await;
    let s = server_on(&hub).await;
    let alice = s.admin().await;

    let found = s.ok(&alice, "hub/search", json!({ "query": "smollm2" })).await;
    let repos: Vec<&str> = found.as_array().unwrap().iter().map(|f| f["repo"].as_str().unwrap()).collect();
    assert_eq!(repos, vec![SMOL_REPO]);
    assert!(found[0]["downloads"].as_u64().unwrap() > 0 && found[0]["gated"] == false, "{found}");
    let search = hub.seen().into_iter().find(|r| r.target.starts_with("/api/models?")).unwrap();
    assert!(search.target.contains("filter=gguf") && search.target.contains("sort=downloads"), "{search:?}");

    let repo = s.ok(&alice, "hub/repo", json!({ "reference": format!("hf.co/{SMOL_REPO}") })).await;
    let quants = repo["quants"].as_array().unwrap();
    let names: Vec<&str> = quants.iter().map(|q| q["quant"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Q4_1", "Q2_K"], "best first: {repo}");
    assert_eq!(quants[0]["picked"], true, "{repo}");
    assert_eq!(quants[0]["size_bytes"].as_u64(), Some(SMOL_SIZE));
    assert_eq!(quants[0]["fit"]["fit"], "fits", "{repo}");
    assert!(quants[0]["fit"]["speed"]["tokens_per_second"].as_f64().unwrap() > 0.0, "a predicted speed: {repo}");
    assert_eq!(repo["revision"].as_str(), Some(smol_repo().commit.as_str()));
    assert_eq!(repo["license"], "apache-2.0");
    assert_eq!(s.count_rows("hub_models").await, 0, "listing quants keeps nothing");

    // The card's Download sends the quant's address on huggingface.co at the listed commit,
    // whatever hub is configured.
    let address = format!(
        "https://huggingface.co/{SMOL_REPO}/resolve/{}/{}",
        repo["revision"].as_str().unwrap(),
        quants[0]["file"].as_str().unwrap()
    );
    let started = s.ok(&alice, "downloads/start", json!({ "model_id": address })).await;
    assert_eq!(started["model_id"], SMOL_HUB_ID);
    s.wait_dl(&alice, id_of(&started), "complete", WAIT, |r| status_of(r) == "complete").await;
    let catalog = s.ok(&alice, "catalog", json!({})).await;
    let entry = catalog["models"].as_array().unwrap().iter().find(|m| m["id"] == SMOL_HUB_ID).cloned();
    let entry = entry.unwrap_or_else(|| panic!("the hub model is in the catalog: {catalog}"));
    assert_eq!((entry["sha256"].as_str(), entry["license"].as_str()), (Some(testkit::SMOL_SHA256), Some("apache-2.0")));
    // Its KV cache as the header gives it (30 layers x 3 KV heads x 128 dims x 2 bytes), which
    // the memory rule counts instead of the estimate by parameters.
    assert_eq!(entry["kv_bytes_per_token"], 30 * 3 * 128 * 2, "{entry}");
    // "Models on this machine" keeps the license and the repo's page beside it.
    let listed = s.ok(&alice, "models/list", json!({})).await;
    let row = listed["models"].as_array().unwrap().iter().find(|m| m["model_id"] == SMOL_HUB_ID).cloned();
    let row = row.unwrap_or_else(|| panic!("the hub model is listed: {listed}"));
    assert_eq!(row["license"], "apache-2.0", "{row}");
    assert_eq!(row["page"].as_str(), Some(format!("{}/{SMOL_REPO}", hub.base).as_str()), "{row}");

    // Bad references and a repo with nothing to run get their own words and status.
    for (reference, status, words) in [
        ("hf.co/org/bad--name", 400, "not a name the hub allows"),
        ("hf.co/org/missing", 404, "there is no model org/missing"),
        ("hf.co/org/other-model", 404, "has no GGUF model file"),
    ] {
        let a = s.call(Some(&alice), "hub/repo", json!({ "reference": reference })).await;
        assert_eq!(a.status, status, "{reference}: {}", a.text);
        assert!(a.error().contains(words), "{reference}: {}", a.text);
    }
    // A hub that cannot be reached says so, and the catalog keeps working.
    drop(s);
    let nowhere = testkit::RefusingPort::new();
    let s = Server::start_with(&model_host().await, &[("HF_ENDPOINT", &nowhere.url(""))]).await;
    let alice = s.admin().await;
    let a = s.call(Some(&alice), "hub/search", json!({ "query": "smollm2" })).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.error().contains("can't reach 127.0.0.1"), "{}", a.text);
    assert_eq!(s.call(Some(&alice), "catalog", json!({})).await.status, 200);
}
