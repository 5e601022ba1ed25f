//! OAuth scopes granted to a token, with GitHub's implications (`user` covers `user:email`...).

/// The granted set, in the order requested (GitHub echoes them comma-separated).
#[derive(Clone, Debug, Default)]
pub(super) struct Scopes(Vec<String>);

impl Scopes {
    /// Parse the authorize request's `scope`: space- or comma-separated, duplicates dropped.
    pub fn parse(text: Option<&str>) -> Scopes {
        let mut out: Vec<String> = Vec::new();
        for scope in text
            .unwrap_or("")
            .split([' ', ','])
            .filter(|s| !s.is_empty())
        {
            if !out.iter().any(|s| s == scope) {
                out.push(scope.to_string());
            }
        }
        Scopes(out)
    }

    /// Whether `scope` is granted directly or through a broader scope.
    pub fn allows(&self, scope: &str) -> bool {
        let broader: &[&str] = match scope {
            "read:user" | "user:email" | "user:follow" => &["user"],
            "read:org" => &["write:org", "admin:org"],
            "write:org" => &["admin:org"],
            _ => &[],
        };
        self.0
            .iter()
            .any(|s| s == scope || broader.contains(&s.as_str()))
    }

    /// Comma-separated, as in the token response and the X-OAuth-Scopes header.
    pub fn joined(&self, sep: &str) -> String {
        self.0.join(sep)
    }
}

#[cfg(test)]
mod tests {
    use super::Scopes;

    #[test]
    fn parse_and_imply() {
        let s = Scopes::parse(Some("read:user user:email,read:user"));
        assert_eq!(s.joined(","), "read:user,user:email");
        assert!(s.allows("user:email"));
        assert!(!s.allows("read:org"));
        assert!(Scopes::parse(Some("user")).allows("user:email"));
        assert!(Scopes::parse(Some("admin:org")).allows("read:org"));
        assert!(!Scopes::parse(None).allows("read:user"));
    }
}
