//! In-place upgrades (Pingora's mechanism): `gatehouse run --upgrade` listens on
//! `server.upgrade_sock`, the running process gets `SIGQUIT`, sends its listening sockets over
//! that Unix socket, keeps accepting for Pingora's 5 s close window, then drains and exits.
//!
//! Whoever listens on the socket path receives the listeners (Pingora makes the socket 0666 and
//! trusts the first peer), so both sides insist on a directory that only its owner can write.

use super::ServeError;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the running process waits after `SIGQUIT` for the new one's socket to appear; the
/// new one waits about as long (Pingora: 6 × 1 s) for the sockets before it gives up.
pub(super) const HANDOVER_WAIT: Duration = Duration::from_secs(6);

const SOCK_FIX: &str = "create the directory, owned by Gatehouse's user and writable by no one else (`install -d -m 0700`; systemd: RuntimeDirectory=gatehouse with RuntimeDirectoryMode=0700), or set server.upgrade_sock to a path in such a directory";

/// The directory holding `sock`, if it exists and only its owner can write to it.
fn private_dir(sock: &Path) -> Result<std::fs::Metadata, String> {
    let dir = sock
        .parent()
        .ok_or_else(|| format!("`{}` has no directory", sock.display()))?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("cannot use the directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the directory {} is writable by other users (mode {:o}), who could take the listening sockets",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(meta)
}

/// Before `--upgrade` waits for the sockets: something holds `listen` (else there is no running
/// Gatehouse to take them from), and Pingora will be able to create `sock` (it panics if not).
pub(super) fn check_new_side(listen: SocketAddr, sock: &Path) -> Result<(), ServeError> {
    if std::net::TcpListener::bind(listen).is_ok() {
        return Err(ServeError::NothingToUpgrade {
            addr: listen.to_string(),
        });
    }
    let bad = |problem: String| ServeError::UpgradeSock {
        problem,
        fix: SOCK_FIX,
    };
    private_dir(sock).map_err(bad)?;
    // Can this process create files there? Not probed with a socket at `sock` itself: a
    // running process that got SIGQUIT early would send its listeners into the probe.
    let probe = sock.with_extension(format!("probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            bad(format!(
                "cannot create files in the directory of {}: {e}",
                sock.display()
            ))
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// After `SIGQUIT`: wait up to `within` for a new process to listen on `sock`, in a private
/// directory and as the directory's owner. `Err` says why the sockets stay here.
pub(super) async fn new_process_waiting(sock: &Path, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let found = std::fs::symlink_metadata(sock);
        if let Ok(meta) = &found {
            if !meta.file_type().is_socket() {
                return Err(format!("{} is not a socket", sock.display()));
            }
            let dir = private_dir(sock)?;
            if meta.uid() != dir.uid() {
                return Err(format!(
                    "{} belongs to another user than its directory",
                    sock.display()
                ));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no new process is listening on {} (server.upgrade_sock); start it with `gatehouse run --upgrade` first",
                sock.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_new_side_needs_a_holder_of_the_port_and_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("upgrade.sock");
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = held.local_addr().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_new_side(listen, &sock).is_ok());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe is removed"
        );

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_new_side(listen, &sock).unwrap_err().to_string();
        assert!(
            e.contains("server.upgrade_sock") && e.contains("writable by other users"),
            "{e}"
        );

        let missing = dir.path().join("nope/upgrade.sock");
        let e = check_new_side(listen, &missing).unwrap_err().to_string();
        assert!(e.contains("cannot use the directory"), "{e}");

        drop(held);
        let e = check_new_side(listen, &sock).unwrap_err().to_string();
        assert!(e.contains("nothing listens on"), "{e}");
    }

    #[tokio::test]
    async fn the_old_side_waits_for_a_socket_in_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let sock = dir.path().join("upgrade.sock");
        let e = new_process_waiting(&sock, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(e.contains("gatehouse run --upgrade"), "{e}");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(new_process_waiting(&sock, Duration::ZERO).await.is_ok());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o733)).unwrap();
        let e = new_process_waiting(&sock, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(e.contains("writable by other users"), "{e}");
    }
}
