//! Cross-origin requests (CORS): with `--cors-origin`, browsers on the given origins may call
//! the API; preflight `OPTIONS` requests are answered, and answers to the origins carry
//! `Access-Control-Allow-Origin`. Without it no CORS header is sent and browsers keep other
//! origins out.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::ServeError;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for `origins` (`*` alone: any origin), or none for no origin.
///
/// # Errors
///
/// An origin that is not `scheme://host[:port]` (browsers send no path, not even `/`), or `*`
/// with other origins.
pub(crate) fn layer(origins: &[String]) -> Result<Option<CorsLayer>, ServeError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        if origins.len() > 1 {
            return Err(refused(
                "`*` alone, or a list of origins",
                origins.join(", "),
            ));
        }
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .map(|o| origin(o))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-file-name"),
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    ))
}

/// An origin as browsers send it: `scheme://host[:port]`.
fn origin(text: &str) -> Result<HeaderValue, ServeError> {
    let well_formed = text.split_once("://").is_some_and(|(scheme, host)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && !host.is_empty()
            && !host.contains(['/', '?', '#'])
    });
    let value = HeaderValue::from_str(text).ok().filter(|_| well_formed);
    value.ok_or_else(|| {
        refused(
            "an origin `scheme://host[:port]` without a path, e.g. https://app.example.com",
            text.to_string(),
        )
    })
}

fn refused(expected: &'static str, found: String) -> ServeError {
    ServeError::Config {
        field: "cors_origin",
        expected,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        let list = |o: &[&str]| layer(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(list(&[]).unwrap().is_none());
        assert!(list(&["*"]).unwrap().is_some());
        assert!(
            list(&["https://app.example.com", "http://localhost:3000"])
                .unwrap()
                .is_some()
        );
        for bad in [
            "https://app.example.com/",
            "app.example.com",
            "https://",
            "://x",
        ] {
            assert!(
                matches!(
                    list(&[bad]),
                    Err(ServeError::Config {
                        field: "cors_origin",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(list(&["*", "https://a.example"]).is_err());
    }
}
