//! Support crate of Gatehouse's fuzz targets. The target bodies live in `targets.rs`, which
//! `tests/integration/fuzz_smoke.rs` in the main crate also compiles (with `#[path]`), so the
//! corpus and the saved regressions are replayed by plain `cargo test`, without cargo-fuzz.

pub mod targets;
