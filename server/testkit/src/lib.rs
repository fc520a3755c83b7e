//! The workspace's one test kit, for the integration tests of the core (`tests/it`) and of the
//! binary (`server/tests`). Dev-only: no shipped crate depends on it.
//!
//! - [`host`]: a real HTTP model host on 127.0.0.1 with switchable fault modes and a request log,
//!   and below HTTP a [`RawHost`] that answers with bytes no well-behaved server sends.
//! - [`port`]: a loopback port that refuses connections while a test holds it.
//! - [`hub`]: a loopback host shaped like the Hugging Face hub (API, `resolve` redirects, gated
//!   repos) in front of a CDN-shaped [`Fixture`].
//! - [`db`]: a fresh database per test, SQLite or (when DATABASE_URL is `postgres://...`) PostgreSQL.
//! - [`catalog`]: catalog TOML written from [`localbrain::catalog::Catalog`] itself.
//! - [`test_model_path`]: the real model (SmolLM2-135M) the brain tests run.

pub mod catalog;
pub mod db;
pub mod gguf;
pub mod host;
pub mod hub;
pub mod port;
pub mod raw;

pub use db::{FreshDb, TestDb};
pub use host::{ETAG, Fixture, Modes, Seen, hex, sha256_hex, test_bytes};
pub use hub::{HUB_TOKEN, HubFile, HubHost, HubRepo, HubSeen};
pub use port::RefusingPort;
pub use raw::{RawHost, SELF_SIGNED_CERT, Then, tls12_hello_with};

use std::path::PathBuf;

/// The real test model's catalog id.
pub const SMOL: &str = "smollm2-135m-instruct-q4_1";
/// The test model with a tool-use chat template ([`gguf::tools_model_path`]), as a catalog id.
pub const SMOL_TOOLS: &str = "smollm2-135m-tools-test";
/// Its exact size in bytes.
pub const SMOL_SIZE: u64 = 98_362_432;
/// Its SHA-256 (the one DESIGN.md names).
pub const SMOL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The test model with Llama 3's tool-call format ([`gguf::llama3_tools_model_path`]), as a
/// catalog id.
pub const SMOL_LLAMA3_TOOLS: &str = "smollm2-135m-llama3-tools-test";

/// The test model's path: `LOCALBRAIN_TEST_MODEL`, else where `scripts/install-tools.sh test`
/// puts it. Panics, saying how to get it, when the file is missing.
pub fn test_model_path() -> PathBuf {
    let path = std::env::var_os("LOCALBRAIN_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME"))
            .join(".cache/localbrain/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    assert!(
        path.is_file(),
        "the test model is missing at {}: run `scripts/install-tools.sh test` (make test does)",
        path.display()
    );
    path
}
