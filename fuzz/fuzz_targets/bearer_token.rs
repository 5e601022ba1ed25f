#![no_main]
//! See fuzz/README.md and `gatehouse_fuzz::targets::bearer_token` for the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatehouse_fuzz::targets::bearer_token(data));
