//! GitHub list pagination: `per_page` (default 30, clamped to 100), `page` (default 1),
//! and a `Link` header with absolute URLs (prev, next, last, first, in GitHub's order).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use url::form_urlencoded;

const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;

/// Answer one page of `items`; `url` is the absolute URL of the list without its query.
pub(super) fn paginate(items: Vec<Value>, url: &str, query: Option<&str>) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let number = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let per_page = number("per_page").map_or(DEFAULT_PER_PAGE, |n| n.min(MAX_PER_PAGE));
    let page = number("page").unwrap_or(1);
    let last = items.len().div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page);
    let slice: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();

    let link_to = |n: usize, rel: &str| {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().filter(|(k, _)| k != "page"))
            .append_pair("page", &n.to_string())
            .finish();
        format!("<{url}?{query}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link_to(page - 1, "prev"));
    }
    if page < last {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(last, "last"));
    }
    if page > 1 {
        links.push(link_to(1, "first"));
    }
    let mut response = Json(slice).into_response();
    if let Ok(value) = links.join(", ").parse() {
        if !links.is_empty() {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::paginate;
    use serde_json::json;

    fn link(n: usize, query: &str) -> Option<String> {
        let items = (0..n).map(|i| json!(i)).collect();
        let r = paginate(items, "http://h/api/v3/user/orgs", Some(query));
        r.headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn first_middle_last() {
        let first = link(5, "per_page=2").unwrap();
        assert_eq!(
            first,
            "<http://h/api/v3/user/orgs?per_page=2&page=2>; rel=\"next\", \
<http://h/api/v3/user/orgs?per_page=2&page=3>; rel=\"last\""
        );
        let middle = link(5, "per_page=2&page=2").unwrap();
        assert!(middle.contains("page=1>; rel=\"prev\""));
        assert!(middle.contains("page=3>; rel=\"next\""));
        assert!(middle.contains("page=1>; rel=\"first\""));
        let last = link(5, "page=3&per_page=2").unwrap();
        assert!(!last.contains("next"));
        assert!(last.contains("page=2>; rel=\"prev\""));
    }

    #[test]
    fn single_page_has_no_link_and_per_page_clamps() {
        assert_eq!(link(30, ""), None);
        assert!(link(101, "per_page=1000").is_some());
        assert_eq!(link(100, "per_page=1000"), None);
    }
}
