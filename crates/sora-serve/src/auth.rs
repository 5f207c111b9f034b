//! Bearer-token authentication: the key is read once from a file, kept as its SHA-256 digest,
//! and compared with the digest of the presented token in constant time, so neither the
//! key's bytes nor its length can be learnt from how long a refusal takes.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::request::ApiError;
use crate::{ServeError, Shared};

/// The longest key file read: a token, not a document.
const MAX_KEY_BYTES: u64 = 4096;

/// The route open without a key, for load balancers and orchestrators.
const OPEN_PATH: &str = "/healthz";

/// An API key, held as its digest.
pub(crate) struct ApiKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

impl ApiKey {
    /// The key `token`, if it is one line of printable ASCII without spaces (what an
    /// `Authorization` header can carry).
    fn new(token: &[u8]) -> Result<ApiKey, String> {
        if token.is_empty() {
            return Err(
                "empty: expected one secret token (e.g. `openssl rand -hex 32 > FILE`)".into(),
            );
        }
        if let Some(bad) = token.iter().find(|b| !(0x21..=0x7e).contains(*b)) {
            return Err(format!(
                "the key holds byte 0x{bad:02x}: expected one line of printable ASCII without \
                 spaces"
            ));
        }
        Ok(ApiKey {
            digest: Sha256::digest(token).into(),
        })
    }

    /// Reads the key from `path`: a regular file of one token, a trailing newline allowed.
    pub(crate) fn read(path: &Path) -> Result<ApiKey, ServeError> {
        let problem = |problem: String| ServeError::ApiKey {
            path: path.to_path_buf(),
            problem,
        };
        // Checked before opening: opening a FIFO would wait for a writer.
        let is_file = |m: std::fs::Metadata| m.is_file();
        let cannot = |e: std::io::Error| problem(format!("cannot be read: {e}"));
        if !std::fs::metadata(path).map(is_file).map_err(cannot)? {
            return Err(problem("not a regular file".into()));
        }
        let file = std::fs::File::open(path).map_err(cannot)?;
        let mut bytes = Vec::new();
        file.take(MAX_KEY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_KEY_BYTES {
            return Err(problem(format!(
                "longer than {MAX_KEY_BYTES} bytes: expected one token"
            )));
        }
        let token = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let token = token.strip_suffix(b"\r").unwrap_or(token);
        ApiKey::new(token).map_err(problem)
    }

    /// Whether `token` is the key, in time that depends on neither.
    fn matches(&self, token: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(token).into();
        digest[..].ct_eq(&self.digest[..]).into()
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

/// Lets a request through when it carries the key (or none is set, or it asks for
/// `/healthz`); answers 401 with `WWW-Authenticate: Bearer` otherwise.
pub(crate) async fn authenticate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = shared
        .key
        .as_ref()
        .filter(|_| request.uri().path() != OPEN_PATH)
    else {
        return next.run(request).await;
    };
    let refusal = match request.headers().get(header::AUTHORIZATION).map(bearer) {
        Some(Some(token)) if key.matches(token) => None,
        Some(Some(_)) => Some("wrong API key"),
        Some(None) => Some("the Authorization header is not `Bearer <key>`"),
        None => Some("this server needs an API key: send `Authorization: Bearer <key>`"),
    };
    let Some(message) = refusal else {
        return next.run(request).await;
    };
    shared.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        let key = ApiKey::new(b"s3cret-token").unwrap();
        assert!(key.matches(b"s3cret-token"));
        assert!(!key.matches(b"s3cret-toke"));
        assert!(!key.matches(b"s3cret-token!"));
        assert!(!key.matches(b"S3cret-token"));
        assert!(!key.matches(b""));
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let token = |s: &str| bearer(&HeaderValue::from_str(s).unwrap()).map(<[u8]>::to_vec);
        assert_eq!(token("Bearer abc"), Some(b"abc".to_vec()));
        assert_eq!(token("bearer  abc "), Some(b"abc".to_vec()));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer"), None);
    }

    #[test]
    fn key_files_are_one_token_in_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let key = ApiKey::read(&write("ok", b"abc123\n")).unwrap();
        assert!(key.matches(b"abc123"));
        assert!(
            ApiKey::read(&write("crlf", b"abc123\r\n"))
                .unwrap()
                .matches(b"abc123")
        );
        let problem = |path: &Path| match ApiKey::read(path) {
            Err(e @ ServeError::ApiKey { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
                text
            }
            other => panic!("{other:?}"),
        };
        assert!(problem(&write("empty", b"")).contains("empty"));
        assert!(problem(&write("newline", b"\n")).contains("empty"));
        assert!(problem(&write("two", b"a b\n")).contains("printable ASCII"));
        assert!(problem(&write("big", &[b'a'; 5000])).contains("longer than 4096"));
        assert!(problem(dir.path()).contains("not a regular file"));
        assert!(problem(&dir.path().join("missing")).contains("cannot be read"));
    }
}
