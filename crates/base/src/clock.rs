//! The one wall clock: whole seconds since the Unix epoch. Decisions take `now` as an argument
//! (so tests pass any time they like); only the edges (the gate's phases, the stores, token
//! issuers, the CLI client) read it here.

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_system_clock() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = super::unix_now();
        assert!(now >= before && now <= before + 5, "{before} {now}");
    }
}
