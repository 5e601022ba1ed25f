//! Gatehouse's integration tests, in one test binary: each module is a former `tests/<name>.rs`,
//! all sharing `common` (the harness: a running gate, the mock GitHub, a recording upstream,
//! Redis servers). One binary compiles `common` once and links the crate once, instead of once
//! per file.
//!
//! Run one module with a filter: `cargo test --test integration websocket::` (or
//! `adversarial_` for all the adversarial suites). Tests of all modules run in parallel in this
//! one process, so a test must not change process-wide state (environment variables, the
//! current directory, signal handlers, the global allocator); a test that needs to stays its own
//! binary, as `tests/allocations.rs` does for its counting global allocator. So does
//! `tests/identity_isolation.rs`, a load test with a throughput floor that other tests running
//! beside it would push it under; it compiles `common` in with `#[path]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

mod common;

mod access_log;
mod adversarial_bearer;
mod adversarial_cookies;
mod adversarial_headers;
mod adversarial_login;
mod adversarial_paths;
mod adversarial_redirects;
mod adversarial_smuggling;
mod architecture;
mod browser;
mod cli;
mod csrf;
mod deploy_files;
mod differential;
mod docs;
mod faults;
mod forward_auth;
mod fuzz_smoke;
mod gate_security;
mod github_app;
mod github_refusals;
mod h2c;
mod hosts;
mod lifecycle;
mod limits;
mod log_secrecy;
mod membership;
mod metrics;
mod mock_github;
mod oauth2_clients;
mod one_reading;
mod pages;
mod policy_rules;
mod postgres_store;
mod redis_cluster;
mod redis_topologies;
mod replicas;
mod revocation_by_user;
mod revocations;
mod rotation;
mod routes;
mod session_store;
mod sign_in_flow;
mod streaming;
mod tls;
mod tokens;
mod trust_leaks;
mod upgrade;
mod watchers;
mod websocket;
