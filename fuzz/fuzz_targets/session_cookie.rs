#![no_main]
//! See fuzz/README.md and `gatehouse_fuzz::targets::session_cookie` for the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatehouse_fuzz::targets::session_cookie(data));
