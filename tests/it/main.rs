//! Integration tests of the core: one binary, one module per area. Every database test runs
//! against SQLite by default and against PostgreSQL when DATABASE_URL is a postgres:// URL.

mod api_keys;
mod batching;
mod brain;
mod catalog;
mod engine;
// Only in the Vulkan build (`make test-vulkan`), on Mesa's software Vulkan driver.
#[cfg(feature = "vulkan")]
mod gpu;
mod parallel;
mod retry;
mod sessions;
mod shared;
mod speed;
mod split;
mod store;
mod words;
