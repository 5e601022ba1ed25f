//! A real PostgreSQL (Debian's `postgresql`) in a temporary directory on an ephemeral loopback
//! port, started with `initdb` + `postgres` by the test itself (no system service). As root
//! (CI), the server runs as the `postgres` user, since PostgreSQL refuses to run as root.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgServer {
    pub port: u16,
    child: Option<Child>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// uid and gid to run as (root only).
    user: Option<(u32, u32)>,
    /// Serves TLS too, with `server.crt` / `server.key` in the directory.
    tls: bool,
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest installed server's binaries (`/usr/lib/postgresql/N/bin`).
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Is PostgreSQL installed? When it is not: fail under CI (`.ci/run` installs it), skip (with
/// a note) on a developer machine.
pub fn available(test: &str) -> bool {
    let found = bin_dir().is_some();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: PostgreSQL is not installed (apt-get install postgresql)"
        );
        eprintln!("SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql)");
    }
    found
}

/// The `postgres` user's uid and gid, from /etc/passwd.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.first() == Some(&"postgres")).then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .expect("a postgres user (the postgresql package makes one)")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl PgServer {
    /// initdb (trust auth, user `gatehouse`, no fsync) and start; waits until it answers.
    pub fn start() -> PgServer {
        PgServer::start_with(None)
    }

    /// Like [`PgServer::start`], serving TLS with this certificate and key (PEM) as well.
    pub fn start_tls(cert: &str, key: &str) -> PgServer {
        PgServer::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> PgServer {
        let bin = bin_dir().expect("PostgreSQL binaries");
        let dir = tempfile::tempdir().unwrap();
        let user = is_root().then(postgres_user);
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "gatehouse", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        assert!(initdb.status().unwrap().success(), "initdb failed");
        if let Some((cert, key)) = tls {
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = dir.path().join(name);
                std::fs::write(&path, pem).unwrap();
                // PostgreSQL refuses a key others can read.
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .unwrap();
                if let Some((uid, gid)) = user {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
            }
        }
        let mut server = PgServer {
            port: super::free_port(),
            child: None,
            bin,
            dir,
            user,
            tls: tls.is_some(),
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"]);
        if self.tls {
            let file = |name: &str| self.dir.path().join(name).display().to_string();
            cmd.args(["-c", "ssl=on", "-c"])
                .arg(format!("ssl_cert_file={}", file("server.crt")))
                .arg("-c")
                .arg(format!("ssl_key_file={}", file("server.key")));
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("PostgreSQL did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("postgres://gatehouse@127.0.0.1:{}/postgres", self.port)
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Fast shutdown (SIGINT).
    pub fn stop(&mut self) {
        self.signal("-INT");
    }

    /// Immediate shutdown, as a crash (SIGQUIT): the next start recovers.
    pub fn kill(&mut self) {
        self.signal("-QUIT");
    }

    /// Start again on the same port and data.
    pub fn restart(&mut self) {
        self.run();
    }
}

impl PgServer {
    /// The `[session]` lines of a gate keeping its sessions here, sealed with the Redis tests'
    /// store key.
    pub fn session_config(&self) -> String {
        format!(
            "store = \"postgres\"\npostgres_url = \"{}\"\nstore_secrets = [\"{}\"]\n",
            self.url(),
            super::redis::store_secret()
        )
    }
}
