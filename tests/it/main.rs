//! Integration tests of the core: one binary, one module per area. Every database test runs
//! against SQLite by default and against PostgreSQL when DATABASE_URL is a postgres:// URL.

mod api_keys;
mod batching;
mod brain;
mod catalog;
mod engine;
mod parallel;
mod retry;
mod sessions;
mod shared;
mod speed;
mod store;
mod words;
