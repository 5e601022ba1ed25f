//! A real `redis-server` (Debian package) on an ephemeral loopback port, owned by the test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REDIS_SERVER: &str = "redis-server";

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Is `redis-server` installed? When it is not: fail under CI (`.ci/run` installs it), skip
/// (with a note) on a developer machine.
pub fn available(test: &str) -> bool {
    let found = Command::new(REDIS_SERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: redis-server is not installed (apt-get install redis-server)"
        );
        eprintln!("SKIPPED {test}: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

impl RedisServer {
    /// Start Redis with no persistence on a free port; waits until it answers.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Like [`RedisServer::start`] with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: super::free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.run();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let mut cmd = Command::new(REDIS_SERVER);
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir"])
            .arg(self.dir.path())
            .args(["--port", &self.port.to_string()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start redis-server"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it (as a crash would: no shutdown, nothing saved).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port (empty, as after a crash without persistence).
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}
