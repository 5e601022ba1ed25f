//! Best-effort "open this URL in the browser": spawned detached, every failure ignored (the URL
//! is printed anyway, so a person can open it by hand).

use std::process::{Command, Stdio};

/// Ask the desktop to open `url`; returns at once.
pub fn open(url: &str) {
    let mut command = opener(url);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        // Own process group: Ctrl-C at the terminal stops `gatehouse login`, not the browser.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    if let Ok(mut child) = command.spawn() {
        // Reap it whenever it exits, so no zombie lingers while we wait for the sign-in.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
    }
}

#[cfg(target_os = "macos")]
fn opener(url: &str) -> Command {
    let mut c = Command::new("open");
    c.arg(url);
    c
}

#[cfg(windows)]
fn opener(url: &str) -> Command {
    let mut c = Command::new("rundll32");
    c.arg("url.dll,FileProtocolHandler").arg(url);
    c
}

#[cfg(not(any(target_os = "macos", windows)))]
fn opener(url: &str) -> Command {
    let mut c = Command::new("xdg-open");
    c.arg(url);
    c
}
