//! Path globs as rules write them: `*` is one segment, `**` any number of segments (zero
//! included, so `/admin/**` also matches `/admin`), `{owner}` one segment that names its owner,
//! and `*` inside a segment (`*.css`) any run of characters within that segment.

/// One segment of a parsed glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `*`
    Any,
    /// `{owner}`: one segment, remembered as the owner of what lies under it.
    Owner,
    /// `**`
    GlobStar,
    /// A segment with `*` inside, e.g. `*.css` or `v*-beta`.
    Wildcard(Wildcard),
}

/// A segment pattern split at its `*`s: `a*b*c` → `["a", "b", "c"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wildcard(Vec<String>);

impl Wildcard {
    pub fn matches(&self, segment: &str) -> bool {
        let parts = &self.0;
        let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
            return true;
        };
        if segment.len() < first.len() + last.len() {
            return false;
        }
        if !segment.starts_with(first.as_str()) || !segment.ends_with(last.as_str()) {
            return false;
        }
        let mut rest = &segment[first.len()..segment.len() - last.len()];
        for middle in &parts[1..parts.len() - 1] {
            match rest.find(middle.as_str()) {
                Some(at) => rest = &rest[at + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Parse `glob`; `Err` says what is wrong in words for a config error.
pub fn parse(glob: &str, case_sensitive: bool) -> Result<Vec<Segment>, String> {
    if !glob.starts_with('/') {
        return Err(format!("`{glob}` does not start with `/`"));
    }
    if let Some(c) = glob
        .chars()
        .find(|c| "?[]\\#".contains(*c) || c.is_control())
    {
        return Err(format!(
            "`{glob}` contains `{c}`, which a path glob does not support"
        ));
    }
    let normal =
        super::path::normalize(glob).map_err(|e| format!("`{glob}` is not a valid path: {e}"))?;
    let inner = glob.strip_suffix('/').unwrap_or(glob);
    if inner.len() > 1 && inner[1..].split('/').any(|s| matches!(s, "" | "." | "..")) {
        return Err(format!(
            "`{glob}` is not in normal form (it would never match a request): write `{}`",
            normal.path
        ));
    }
    // Requests are matched in their canonical form (`café` as `caf%C3%A9`, `%3A` as `:`), so
    // literal text is put in that form too.
    let canonical = |text: &str| {
        super::path::canonical_segment(text)
            .map_err(|e| format!("`{glob}` is not a valid path: {e}"))
    };
    let mut segments = Vec::new();
    let mut owner_seen = false;
    let mut globstar_seen = false;
    for raw in glob.split('/').filter(|s| !s.is_empty()) {
        let text = match raw {
            "**" | "*" | "{owner}" => raw.to_string(),
            _ => canonical(raw)?,
        };
        let text = if case_sensitive {
            text
        } else {
            text.to_ascii_lowercase()
        };
        let segment = match raw {
            "**" => {
                globstar_seen = true;
                Segment::GlobStar
            }
            "*" => Segment::Any,
            "{owner}" => {
                if owner_seen {
                    return Err(format!("`{glob}` names `{{owner}}` twice"));
                }
                if globstar_seen {
                    return Err(format!(
                        "`{glob}` puts `{{owner}}` after `**`, so its position is unknown"
                    ));
                }
                owner_seen = true;
                Segment::Owner
            }
            _ if raw.contains("**") => {
                return Err(format!(
                    "`{glob}` has `**` inside a segment; `**` must be a whole segment like `/a/**`"
                ))
            }
            _ if raw.contains(['{', '}']) => {
                return Err(format!(
                    "`{glob}` has braces; only a whole `{{owner}}` segment is supported (write two rules, or use path_regex)"
                ))
            }
            _ if raw.contains('*') => {
                Segment::Wildcard(Wildcard(text.split('*').map(str::to_string).collect()))
            }
            _ => Segment::Literal(text),
        };
        segments.push(segment);
    }
    Ok(segments)
}

/// The position of `{owner}` among the segments, if any.
pub fn owner_position(segments: &[Segment]) -> Option<usize> {
    segments.iter().position(|s| *s == Segment::Owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rule_shapes() {
        assert_eq!(
            parse("/Admin/**", false).unwrap(),
            [Segment::Literal("admin".into()), Segment::GlobStar]
        );
        assert_eq!(
            parse("/api/*/items/", true).unwrap(),
            [
                Segment::Literal("api".into()),
                Segment::Any,
                Segment::Literal("items".into())
            ]
        );
        let owner = parse("/{owner}/**", false).unwrap();
        assert_eq!(owner_position(&owner), Some(0));
        assert_eq!(parse("/", false).unwrap(), []);
    }

    #[test]
    fn literals_take_the_canonical_request_form() {
        assert_eq!(
            parse("/wiki/Special%3aAdmin/**", true).unwrap()[1],
            Segment::Literal("Special:Admin".into())
        );
        assert_eq!(
            parse("/Caf\u{e9}", false).unwrap(),
            [Segment::Literal("caf%c3%a9".into())]
        );
        assert_eq!(
            parse("/caf%C3%A9", true).unwrap(),
            [Segment::Literal("caf%C3%A9".into())]
        );
    }

    #[test]
    fn refuses_what_would_mislead() {
        for bad in [
            "admin",
            "/a/**b",
            "/{a,b}",
            "/**/{owner}",
            "/{owner}/{owner}",
            "/a/../b",
            "/a//b",
            "/a?",
            "/%zz",
        ] {
            assert!(parse(bad, false).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn wildcards_match_within_one_segment() {
        let Segment::Wildcard(w) = &parse("/*.css", false).unwrap()[0] else {
            panic!("not a wildcard");
        };
        assert!(w.matches("site.css"));
        assert!(w.matches(".css"));
        assert!(!w.matches("site.js"));
        let Segment::Wildcard(w) = &parse("/v*-b*ta", false).unwrap()[0] else {
            panic!("not a wildcard");
        };
        assert!(w.matches("v2-beta"));
        assert!(w.matches("v-bta"));
        assert!(!w.matches("v2-alpha"));
        assert!(!w.matches("v-ta"));
    }
}
