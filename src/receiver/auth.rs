//! Bearer-token authentication on the receivers, as the collector's `bearertokenauth`
//! extension checks it server side: the request's `<header>` must read `<scheme> <token>` for
//! one of the configured tokens. The check runs on the request's headers, before its body is
//! read or charged to the core's budget.

use std::path::Path;

use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use crate::config::{BearerTokenAuth, TokenSource};
use crate::grpc::{Code, Status};

/// Why an authenticator could not be built (at start or reload: the reload is refused).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the token file `{path}`: {reason}")]
    File { path: String, reason: String },
    #[error("the token file `{0}` holds no token")]
    Empty(String),
    #[error("`{0}` is not a header name")]
    Header(String),
}

/// A built authenticator: the exact header values it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerAuth {
    header: HeaderName,
    /// `<scheme> <token>` (or the bare token when the scheme is empty), one per token.
    expected: Vec<Vec<u8>>,
}

impl BearerAuth {
    /// Builds the authenticator, reading its token file if it has one.
    pub fn from_config(cfg: &BearerTokenAuth) -> Result<BearerAuth, AuthError> {
        let tokens = match &cfg.tokens {
            TokenSource::Inline(tokens) => tokens.clone(),
            TokenSource::File(path) => read_tokens(path)?,
        };
        let header =
            HeaderName::from_bytes(cfg.header.as_bytes()).map_err(|_| AuthError::Header(cfg.header.clone()))?;
        Ok(BearerAuth::new(header, &cfg.scheme, &tokens))
    }

    pub fn new(header: HeaderName, scheme: &str, tokens: &[String]) -> BearerAuth {
        let value = |t: &String| if scheme.is_empty() { t.clone() } else { format!("{scheme} {t}") };
        BearerAuth { header, expected: tokens.iter().map(|t| value(t).into_bytes()).collect() }
    }

    /// Whether `headers` carry an accepted token. Every token is compared, in constant time,
    /// whatever matched: the answer's timing tells nothing about which token came close.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Status> {
        let Some(presented) = headers.get(&self.header).map(|v| v.as_bytes()).filter(|v| !v.is_empty()) else {
            return Err(denied(format!("missing or empty {} header", self.header)));
        };
        let matched = self.expected.iter().fold(subtle::Choice::from(0), |any, t| any | t.ct_eq(presented));
        if bool::from(matched) { Ok(()) } else { Err(denied("scheme or token does not match".into())) }
    }
}

fn denied(message: String) -> Status {
    crate::telemetry::Refused::Unauthenticated.note();
    Status::new(Code::Unauthenticated, message)
}

/// One token per line; blank lines and surrounding spaces are ignored.
fn read_tokens(path: &Path) -> Result<Vec<String>, AuthError> {
    let shown = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| AuthError::File { path: shown.clone(), reason: e.to_string() })?;
    let tokens: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if tokens.is_empty() {
        return Err(AuthError::Empty(shown));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", value.parse().unwrap());
        h
    }

    fn auth(scheme: &str) -> BearerAuth {
        BearerAuth::new(HeaderName::from_static("authorization"), scheme, &["old".into(), "new".into()])
    }

    #[test]
    fn every_configured_token_is_accepted() {
        assert!(auth("Bearer").check(&headers("Bearer old")).is_ok());
        assert!(auth("Bearer").check(&headers("Bearer new")).is_ok());
        assert!(auth("").check(&headers("new")).is_ok());
    }

    #[test]
    fn wrong_missing_or_unschemed_tokens_are_unauthenticated() {
        for value in ["Bearer other", "Bearer ol", "Bearer oldx", "old", "Basic old", "bearer old"] {
            assert_eq!(auth("Bearer").check(&headers(value)).unwrap_err().code, Code::Unauthenticated, "{value}");
        }
        assert_eq!(auth("Bearer").check(&HeaderMap::new()).unwrap_err().code, Code::Unauthenticated);
    }

    #[test]
    fn token_files_hold_one_token_per_line() {
        let dir = std::env::temp_dir().join(format!("otlp-gateway-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "  first \n\nsecond\n").unwrap();
        let cfg = BearerTokenAuth {
            scheme: "Bearer".into(),
            header: "x-token".into(),
            tokens: TokenSource::File(path.clone()),
        };
        let auth = BearerAuth::from_config(&cfg).unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-token", "Bearer second".parse().unwrap());
        assert!(auth.check(&h).is_ok());
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(BearerAuth::from_config(&cfg), Err(AuthError::Empty(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
