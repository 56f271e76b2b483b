//! The page's files, built into `moor` (no CDN: the dashboard works
//! offline and loads nothing from elsewhere): one HTML page, its script in
//! a few files (plain JavaScript, no build step) and its style sheet.

use hyper::StatusCode;

use super::http::{self, Answer};

/// (name, content type, contents) of each file under `/assets/`.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("assets/app.js")),
    ("pages.js", JS, include_str!("assets/pages.js")),
    ("run.js", JS, include_str!("assets/run.js")),
    ("chart.js", JS, include_str!("assets/chart.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

/// The page (`/`).
pub fn index() -> Answer {
    http::bytes(
        StatusCode::OK,
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    )
}

/// The file `name` under `/assets/`, if there is one.
pub fn answer(name: &str) -> Option<Answer> {
    FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, content_type, body)| http::bytes(StatusCode::OK, content_type, *body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served() {
        let page = include_str!("assets/index.html");
        let named: Vec<&str> = page
            .split("/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert_eq!(named.len(), FILES.len(), "{named:?}");
        for name in named {
            let answer = answer(name).unwrap_or_else(|| panic!("{name} is not served"));
            assert_eq!(answer.status(), StatusCode::OK);
            assert!(answer.headers().contains_key("content-security-policy"));
        }
        assert!(answer("../mod.rs").is_none());
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for (name, _, body) in FILES {
            for scheme in ["http://", "https://", "//cdn", "@import"] {
                let found = body
                    .match_indices(scheme)
                    .any(|(at, _)| !body[at..].starts_with("http://www.w3.org/2000/svg"));
                assert!(!found, "{name} refers to {scheme}");
            }
        }
    }
}
