//! Browser navigation or API client? Decides between a login redirect and a 401 (README.md "Browsers and API clients").
//! Read once per request, into `RequestFacts::browser`; no allocation.
//!
//! - `X-Requested-With: XMLHttpRequest` is always an API client.
//! - `Sec-Fetch-Mode: navigate` is a browser navigation, whatever the method.
//! - Without Sec-Fetch headers: a GET or HEAD whose `Accept` names `text/html` is a navigation.
//! - Everything else, including `Accept: */*`, is an API client.

use http::request::Parts;
use http::Method;

pub fn is_browser_navigation(req: &Parts) -> bool {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-requested-with").is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest")) {
        return false;
    }
    if let Some(mode) = header("sec-fetch-mode") {
        return mode.eq_ignore_ascii_case("navigate");
    }
    (req.method == Method::GET || req.method == Method::HEAD)
        && header("accept").is_some_and(|a| {
            a.as_bytes()
                .windows(b"text/html".len())
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn classifies_as_documented() {
        assert!(is_browser_navigation(&parts(
            "GET",
            &[("accept", "text/html,*/*")]
        )));
        assert!(is_browser_navigation(&parts(
            "POST",
            &[("sec-fetch-mode", "navigate")]
        )));
        assert!(!is_browser_navigation(&parts("GET", &[("accept", "*/*")])));
        assert!(is_browser_navigation(&parts(
            "HEAD",
            &[("accept", "Text/HTML")]
        )));
        assert!(!is_browser_navigation(&parts("GET", &[])));
        assert!(!is_browser_navigation(&parts(
            "POST",
            &[("accept", "text/html")]
        )));
        assert!(!is_browser_navigation(&parts(
            "GET",
            &[("accept", "text/html"), ("sec-fetch-mode", "cors")]
        )));
        assert!(!is_browser_navigation(&parts(
            "GET",
            &[
                ("sec-fetch-mode", "navigate"),
                ("x-requested-with", "XMLHttpRequest")
            ]
        )));
    }
}
