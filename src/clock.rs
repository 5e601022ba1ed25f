//! The one wall clock: whole seconds since the Unix epoch. Decisions take `now` as an argument
//! (so tests pass any time they like); only the edges (the gate's phases, the stores, token
//! issuers) read it here. It lives in the leaf crate `gatehouse-base`, shared with the CLI
//! client.

pub use gatehouse_base::clock::unix_now;
