//! Small validated section types that other modules read (they live here so `config` imports
//! nothing of the modules it configures).

use std::str::FromStr;

/// `[pages]`, validated: what the sign-in and "who am I" pages show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagesSettings {
    /// The app's name (default: the host of `server.public_url`).
    pub app_name: String,
    /// An `https:` or `data:image/…` URL (the pages' CSP allows exactly those for images).
    pub logo_url: Option<String>,
    /// A short plain-text note on the sign-in page.
    pub message: Option<String>,
}

/// `[log] format`: human-readable lines or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(s: &str) -> Result<LogFormat, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// Can `name` be an API key's name (the Basic-auth user name)?
pub fn is_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A `host` setting (`app.example.com` or `*.example.com`) as matched: the lower-case name, or
/// `.example.com` for a wildcard. `None` when it is not a host name.
pub fn host_pattern(text: &str) -> Option<String> {
    let h = text.trim().to_ascii_lowercase();
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h.as_str()),
    };
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then(|| {
        if wild {
            format!(".{name}")
        } else {
            name.to_string()
        }
    })
}

/// GitHub's rules for user and org logins (and team slugs, which are a subset).
pub fn is_github_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
}
