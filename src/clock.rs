//! The one wall clock: whole seconds since the Unix epoch. Decisions take `now` as an argument
//! (so tests pass any time they like); only the edges (the gate's phases, the stores, token
//! issuers) read it here.

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
