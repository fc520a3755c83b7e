//! localbrain's core: the types the UI and the server share, and the pure logic both use.
//!
//! Everything outside `ssr` compiles to WASM. The `ssr` feature adds the store (sqlx over SQLite
//! or PostgreSQL), the download engine and the brain (llama.cpp); those never reach the browser.

pub mod catalog;
pub mod chat;
pub mod conversation;
pub mod hardware;
pub mod hub;
pub mod installed;
pub mod keys;
pub mod memory_rule;
pub mod recommend;
pub mod speed;
pub mod status;
pub mod units;
pub mod view;

#[cfg(feature = "ssr")]
pub mod brain;
#[cfg(feature = "ssr")]
pub mod disk;
#[cfg(feature = "ssr")]
pub mod engine;
#[cfg(feature = "ssr")]
pub mod hub_settings;
#[cfg(feature = "ssr")]
pub mod library;
#[cfg(feature = "ssr")]
pub mod machine;
#[cfg(feature = "ssr")]
pub mod proxy;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod time;
