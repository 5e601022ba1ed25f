//! Which app a request is for: `[[routes]]` by host and path prefix (the most specific host,
//! then the longest prefix, wins), else the `[upstream]` shorthand.

use crate::config::RouteSettings;

/// `routes[i]`, or `None` for the `[upstream]` fallback.
pub type RouteId = Option<usize>;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Route(RouteId),
    /// No route takes it and there is no `[upstream]`.
    Nowhere,
}

/// `host`: lower-case, without port. `path`: normalized.
pub fn select(
    routes: &[RouteSettings],
    has_fallback: bool,
    host: Option<&str>,
    path: &str,
) -> Destination {
    let mut best: Option<(u8, usize, usize)> = None;
    for (i, route) in routes.iter().enumerate() {
        let host_rank = match (&route.host, host) {
            (None, _) => 0,
            (Some(want), Some(h)) if want.starts_with('.') && h.ends_with(want.as_str()) => 1,
            (Some(want), Some(h)) if want == h => 2,
            _ => continue,
        };
        if !prefix_matches(&route.prefix, path) {
            continue;
        }
        let rank = (host_rank, route.prefix.len(), usize::MAX - i);
        if best.is_none_or(|b| rank > b) {
            best = Some(rank);
        }
    }
    match best {
        Some((_, _, inv)) => Destination::Route(Some(usize::MAX - inv)),
        None if has_fallback => Destination::Route(None),
        None => Destination::Nowhere,
    }
}

/// `/grafana` takes `/grafana` and `/grafana/…`, not `/grafanax`; ASCII case is ignored, as
/// rule paths ignore it.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let (p, q) = (prefix.as_bytes(), path.as_bytes());
    q.len() >= p.len()
        && q[..p.len()].eq_ignore_ascii_case(p)
        && (q.len() == p.len() || q[p.len()] == b'/' || p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamTarget;

    fn route(host: Option<&str>, prefix: &str) -> RouteSettings {
        RouteSettings {
            name: format!("{host:?}{prefix}"),
            host: host.map(str::to_string),
            prefix: prefix.to_string(),
            target: UpstreamTarget {
                url: url::Url::parse("http://127.0.0.1:1").unwrap(),
                addr: "127.0.0.1:1".parse().unwrap(),
                tls: false,
                sni: String::new(),
                connect_timeout: std::time::Duration::from_secs(1),
                read_timeout: std::time::Duration::from_secs(1),
                ca_file: None,
                h2c: false,
            },
        }
    }

    #[test]
    fn host_then_longest_prefix_wins() {
        let routes = [
            route(None, "/grafana"),
            route(None, "/grafana/api"),
            route(Some("app.example.com"), ""),
            route(Some(".example.com"), "/x"),
        ];
        let go = |host, path| select(&routes, true, host, path);
        assert_eq!(go(None, "/grafana/dash"), Destination::Route(Some(0)));
        assert_eq!(go(None, "/GRAFANA"), Destination::Route(Some(0)));
        assert_eq!(go(None, "/grafana/api/x"), Destination::Route(Some(1)));
        assert_eq!(go(None, "/grafanax"), Destination::Route(None));
        assert_eq!(
            go(Some("app.example.com"), "/grafana/x"),
            Destination::Route(Some(2))
        );
        assert_eq!(
            go(Some("b.example.com"), "/x/1"),
            Destination::Route(Some(3))
        );
        assert_eq!(go(Some("example.com"), "/x/1"), Destination::Route(None));
        assert_eq!(select(&routes, false, None, "/other"), Destination::Nowhere);
    }
}
