#![no_main]
//! See fuzz/README.md and `gatehouse_fuzz::targets::safe_redirect_target` for the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatehouse_fuzz::targets::safe_redirect_target(data));
