//! Gate processes on a clock that differs from the machine's, as replicas on hosts whose
//! clocks drifted apart: libfaketime (Debian `faketime`) preloaded into the child shifts what
//! it reads as the wall clock, and nothing else (its monotonic clock stays true).

use std::path::PathBuf;

/// libfaketime's multi-threaded build, wherever the distribution put it
/// (`/usr/lib/<multiarch>/faketime/` on Debian).
fn library() -> Option<PathBuf> {
    let in_lib = |dir: PathBuf| dir.join("faketime/libfaketimeMT.so.1");
    std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|entry| in_lib(entry.path()))
        .chain([in_lib(PathBuf::from("/usr/lib"))])
        .find(|path| path.exists())
}

/// Is libfaketime installed? In CI it must be (`.ci/run` installs it); elsewhere the test is
/// skipped, and says so.
pub fn available(test: &str) -> bool {
    let found = library().is_some();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: libfaketime is not installed (apt-get install faketime)"
        );
        eprintln!("SKIPPED {test}: libfaketime is not installed (apt-get install faketime)");
    }
    found
}

/// The environment that puts a child's wall clock `secs` seconds behind the machine's.
pub fn behind(secs: u64) -> Vec<(&'static str, String)> {
    vec![
        (
            "LD_PRELOAD",
            library().map_or_else(String::new, |p| p.display().to_string()),
        ),
        ("FAKETIME", format!("-{secs}s")),
        ("DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}

/// A wall clock a test moves while the gate runs: libfaketime reads the offset from a file at
/// every reading of the clock (slow, but a test's gate reads it seldom).
pub struct Movable {
    file: PathBuf,
    ahead: u64,
}

impl Movable {
    /// A clock that starts on time, its offset kept in `dir`.
    pub fn new(dir: &std::path::Path) -> Movable {
        let clock = Movable {
            file: dir.join("faketime"),
            ahead: 0,
        };
        clock.write();
        clock
    }

    /// The environment that puts a child on this clock.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "LD_PRELOAD",
                library().map_or_else(String::new, |p| p.display().to_string()),
            ),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_string()),
            ("DONT_FAKE_MONOTONIC", "1".to_string()),
        ]
    }

    /// Move the clock `secs` seconds ahead.
    pub fn advance(&mut self, secs: u64) {
        self.ahead += secs;
        self.write();
    }

    fn write(&self) {
        std::fs::write(&self.file, format!("+{}s\n", self.ahead)).unwrap();
    }
}
