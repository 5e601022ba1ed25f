//! A named table of adversarial cases: every case is counted, failures are collected, and the
//! table fails once at the end listing all of them (so one run shows every broken case).

pub struct Tally {
    table: &'static str,
    tried: usize,
    failures: Vec<String>,
}

impl Tally {
    pub fn new(table: &'static str) -> Tally {
        Tally {
            table,
            tried: 0,
            failures: Vec::new(),
        }
    }

    /// One case: `ok`, or a failure described by `detail`.
    pub fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) {
        self.tried += 1;
        if !ok {
            self.failures.push(format!("[{name}] {detail}"));
        }
    }

    /// One case whose check says why it failed.
    pub fn check_result(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.check(name, true, ""),
            Err(e) => self.check(name, false, e),
        }
    }

    /// How many cases were tried so far.
    pub fn tried(&self) -> usize {
        self.tried
    }

    /// Print the count and fail with every broken case, if any.
    pub fn finish(self) {
        println!(
            "table {}: {} cases tried, {} passed",
            self.table,
            self.tried,
            self.tried - self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} cases failed in {}:\n{}",
            self.failures.len(),
            self.tried,
            self.table,
            self.failures.join("\n")
        );
    }
}
