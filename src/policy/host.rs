//! The `Host` a request names, in the one form rules and routes judge and the app receives.
//!
//! nginx, Apache and most app stacks pick the same virtual host for `Admin.Example.com.`,
//! `admin.example.com:` and `admin.example.com`; a gate comparing the bytes would not. So the
//! host is lower-cased, one trailing dot and an empty port are dropped, and what no server
//! reads the same way (empty labels, characters outside a host name, a bad port) is refused,
//! as nginx refuses it.

use std::borrow::Cow;

/// A `Host` header value after canonicalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalHost<'a> {
    /// Lower-case, without a trailing dot; IPv6 literals keep their brackets. Borrowed from
    /// the header when it was already in this form (the common case: no allocation).
    pub name: Cow<'a, str>,
    /// The port, when one was given (an empty port is no port).
    pub port: Option<u16>,
    /// The header as sent is not byte for byte [`CanonicalHost::header_value`].
    pub changed: bool,
}

impl CanonicalHost<'_> {
    /// The form sent upstream: `name` or `name:port`.
    pub fn header_value(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// Why a `Host` cannot be judged (the caller answers 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    #[error("the Host header is empty")]
    Empty,
    #[error("the Host header holds characters a host name cannot have")]
    BadCharacter,
    #[error("the Host header has an empty label (`..`, or a leading or doubled trailing dot)")]
    EmptyLabel,
    #[error("the Host header's port is not a number from 0 to 65535")]
    BadPort,
}

/// Canonicalize a `Host` header value (or the authority of an absolute-form target).
///
/// # Errors
///
/// [`HostError`] when the value is not a host name, IP literal or IPv6 literal with an
/// optional port.
pub fn canonical_host(raw: &[u8]) -> Result<CanonicalHost<'_>, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    let (name_bytes, port) = split_port(raw)?;
    let name = if name_bytes.first() == Some(&b'[') {
        ipv6_literal(name_bytes)?
    } else {
        dns_name(name_bytes)?
    };
    // Unchanged: the same name, and the port (if any) written as `:N` without leading zeros.
    let port_len = port.map_or(0, |p| 1 + p.to_string().len());
    let changed = name.as_bytes() != name_bytes || raw.len() != name_bytes.len() + port_len;
    Ok(CanonicalHost {
        name,
        port,
        changed,
    })
}

/// Split `name[:port]`; the last `:` outside brackets starts the port.
fn split_port(raw: &[u8]) -> Result<(&[u8], Option<u16>), HostError> {
    let after_literal = if raw.first() == Some(&b'[') {
        raw.iter()
            .position(|b| *b == b']')
            .ok_or(HostError::BadCharacter)?
            + 1
    } else {
        0
    };
    let Some(colon) = raw[after_literal..]
        .iter()
        .position(|b| *b == b':')
        .map(|i| i + after_literal)
    else {
        return Ok((raw, None));
    };
    if colon != after_literal && after_literal > 0 {
        // `[::1]x:80`: something between the literal and its port.
        return Err(HostError::BadCharacter);
    }
    let port = &raw[colon + 1..];
    if port.is_empty() {
        return Ok((&raw[..colon], None));
    }
    let port = std::str::from_utf8(port)
        .ok()
        .filter(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or(HostError::BadPort)?;
    Ok((&raw[..colon], Some(port)))
}

/// A DNS name or IPv4 address: letters, digits, `-` and `_` in non-empty labels; one trailing
/// dot (the root) is dropped.
fn dns_name(name: &[u8]) -> Result<Cow<'_, str>, HostError> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() {
        return Err(HostError::EmptyLabel);
    }
    for label in name.split(|b| *b == b'.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel);
        }
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(HostError::BadCharacter);
        }
    }
    // Checked above: every byte is ASCII.
    let text = std::str::from_utf8(name).map_err(|_| HostError::BadCharacter)?;
    Ok(crate::policy::lower(text))
}

/// `[…]` holding an IPv6 address, in the standard text form.
fn ipv6_literal(name: &[u8]) -> Result<Cow<'_, str>, HostError> {
    let inner = name
        .strip_prefix(b"[")
        .and_then(|n| n.strip_suffix(b"]"))
        .ok_or(HostError::BadCharacter)?;
    let addr: std::net::Ipv6Addr = std::str::from_utf8(inner)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(HostError::BadCharacter)?;
    Ok(Cow::Owned(format!("[{addr}]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> String {
        canonical_host(raw.as_bytes()).unwrap().name.into_owned()
    }

    #[test]
    fn spellings_of_one_host_agree() {
        for raw in [
            "admin.example.com",
            "Admin.Example.COM",
            "admin.example.com.",
            "admin.example.com:",
            "admin.example.com.:",
            "ADMIN.example.com.:80",
            "admin.example.com:80",
        ] {
            assert_eq!(name(raw), "admin.example.com", "{raw}");
        }
        assert_eq!(name("127.0.0.1:4180"), "127.0.0.1");
        assert_eq!(name("[::1]:4180"), "[::1]");
        assert_eq!(name("[0:0::1]"), "[::1]");
        assert_eq!(name("my_host"), "my_host");
    }

    #[test]
    fn ports_are_kept_and_empty_ports_dropped() {
        let h = canonical_host(b"Example.com.:8080").unwrap();
        assert_eq!(h.header_value(), "example.com:8080");
        let h = canonical_host(b"example.com:").unwrap();
        assert_eq!(h.header_value(), "example.com");
        assert!(h.changed);
        assert!(canonical_host(b"example.com:080").unwrap().changed);
        assert!(canonical_host(b"example.com.").unwrap().changed);
        assert!(canonical_host(b"Example.com").unwrap().changed);
        for same in ["example.com", "example.com:8080", "127.0.0.1:1", "[::1]:80"] {
            let h = canonical_host(same.as_bytes()).unwrap();
            assert!(!h.changed, "{same}");
            assert_eq!(h.header_value(), same);
        }
        assert!(matches!(
            canonical_host(b"example.com:8080").unwrap().name,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn what_servers_read_differently_is_refused() {
        for raw in [
            "",
            ".",
            "admin.example.com..",
            ".admin.example.com",
            "admin..example.com",
            "admin.example.com:80.",
            "admin.example.com:8o",
            "admin.example.com:99999",
            "admin.example.com::80",
            "admin example.com",
            "admin.example.com/x",
            "user@admin.example.com",
            "admin.example.com\\",
            "caf\u{e9}.example.com",
            "[::1",
            "[::1]x",
            "[::1]x:80",
            "[nothex]",
            "::1",
        ] {
            assert!(canonical_host(raw.as_bytes()).is_err(), "{raw:?}");
        }
        assert!(canonical_host(b"a\xffb").is_err());
    }
}
