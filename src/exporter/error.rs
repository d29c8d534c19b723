//! Why a forward to a backend failed, and what the client is told.

use std::time::Duration;

use crate::grpc::{Code, Status};

/// A failed forward. Small and cheap: it is built on the hot path when a backend misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Connecting failed, or the backend is in backoff after failures.
    #[error("unreachable (next connect attempt in {retry_in:?})")]
    Unreachable { retry_in: Duration },
    /// This attempt to connect failed (TCP, or the TLS handshake: the reason says which).
    #[error("cannot connect: {reason} (next attempt in {retry_in:?})")]
    Connect { reason: String, retry_in: Duration },
    /// The HTTP/2 connection or stream broke during the call.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The backend reset this one stream; the connection is fine.
    #[error("stream reset: {0}")]
    StreamReset(String),
    /// No answer within the exporter's `timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The backend answered with a non-OK gRPC status.
    #[error("answered {0}")]
    Rejected(Status),
    /// The backend broke the gRPC protocol.
    #[error("bad response: {0}")]
    BadResponse(&'static str),
    /// The backend set is empty.
    #[error("no backends are configured or resolved")]
    NoBackends,
}

impl ExportError {
    /// The status the client gets; it names the backend so operators know who failed.
    pub fn to_status(&self, backend: &str) -> Status {
        let code = match self {
            ExportError::Unreachable { .. }
            | ExportError::Connect { .. }
            | ExportError::ConnectionLost(_)
            | ExportError::StreamReset(_)
            | ExportError::NoBackends => Code::Unavailable,
            ExportError::Timeout(_) => Code::DeadlineExceeded,
            ExportError::Rejected(s) => s.code,
            ExportError::BadResponse(_) => Code::Unavailable,
        };
        Status::new(code, format!("backend {backend}: {self}"))
    }
}

/// Of several failed parts, the status to return: a retryable one first, so the client keeps
/// (and retries) data that a healthy moment downstream would accept.
pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
    statuses.into_iter().min_by_key(|s| (!s.code.is_retryable(), s.code as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_name_the_backend_and_map_codes() {
        let s = ExportError::Unreachable { retry_in: Duration::from_millis(200) }.to_status("10.0.0.1:4317");
        assert_eq!(s.code, Code::Unavailable);
        assert!(s.message.contains("10.0.0.1:4317"), "{}", s.message);
        let s = ExportError::Rejected(Status::new(Code::InvalidArgument, "bad")).to_status("b");
        assert_eq!(s.code, Code::InvalidArgument);
        assert_eq!(ExportError::Timeout(Duration::from_secs(5)).to_status("b").code, Code::DeadlineExceeded);
    }

    #[test]
    fn retryable_failures_win() {
        let w = worst([Status::new(Code::InvalidArgument, "x"), Status::new(Code::Unavailable, "y")]);
        assert_eq!(w.map(|s| s.code), Some(Code::Unavailable));
        assert_eq!(worst([]), None);
    }
}
