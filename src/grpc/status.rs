//! gRPC status: the code and message that end every call, carried in `grpc-status` and
//! `grpc-message` trailers (or headers, for a trailers-only response).

use std::borrow::Cow;
use std::fmt;

use http::{HeaderMap, HeaderValue};

/// gRPC status codes (grpc/doc/statuscodes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// Parses a `grpc-status` value; anything unknown is `Unknown`, as the spec says.
    pub fn from_ascii(v: &[u8]) -> Code {
        std::str::from_utf8(v).ok().and_then(|s| s.parse::<u8>().ok()).map_or(Code::Unknown, Code::from_u8)
    }

    /// The code with this number; anything unknown is `Unknown`.
    pub fn from_u8(n: u8) -> Code {
        CODES.get(usize::from(n)).copied().unwrap_or(Code::Unknown)
    }

    /// Whether an OTLP client should retry a request that ended with this code
    /// (OTLP specification, "Failures" for OTLP/gRPC).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Code::Cancelled
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::OutOfRange
                | Code::Unavailable
                | Code::DataLoss
                | Code::ResourceExhausted
        )
    }
}

/// A status: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub message: Cow<'static, str>,
    /// When set, the trailers carry a `google.rpc.RetryInfo` with this delay in
    /// `grpc-status-details-bin` (OTLP clients wait that long before retrying).
    pub retry_delay: Option<std::time::Duration>,
}

impl Status {
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Status { code, message: message.into(), retry_delay: None }
    }

    /// This status with a `RetryInfo` asking the client to wait `delay` before retrying.
    pub fn with_retry_delay(mut self, delay: std::time::Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    pub fn ok() -> Self {
        Status::new(Code::Ok, "")
    }

    /// Adds `grpc-status` and `grpc-message` to `map`.
    pub fn write_to(&self, map: &mut HeaderMap) {
        map.insert("grpc-status", HeaderValue::from(self.code as u8 as u16));
        if !self.message.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&percent_encode(&self.message)) {
                map.insert("grpc-message", v);
            }
        }
        if let Some(delay) = self.retry_delay {
            let details = super::details::retry_info_status(self.code as i32, &self.message, delay);
            if let Ok(v) = HeaderValue::from_str(&super::details::base64(&details)) {
                map.insert("grpc-status-details-bin", v);
            }
        }
    }

    /// Reads a status from trailers (or trailers-only headers); `None` if there is none.
    pub fn from_headers(map: &HeaderMap) -> Option<Status> {
        let code = Code::from_ascii(map.get("grpc-status")?.as_bytes());
        let message = map.get("grpc-message").map(|m| percent_decode(m.as_bytes())).unwrap_or_default();
        Some(Status::new(code, message))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// `grpc-message` encoding: printable ASCII except `%` as is, every other byte as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of `percent_encode`; malformed escapes are kept as they are, as the spec asks.
pub fn percent_decode(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let hex = v.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (v[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_trailers() {
        let s = Status::new(Code::InvalidArgument, "bad span at byte 12: 100% wrong ünicode");
        let mut map = HeaderMap::new();
        s.write_to(&mut map);
        assert_eq!(map["grpc-status"], "3");
        assert_eq!(Status::from_headers(&map), Some(s));
    }

    #[test]
    fn retry_delay_goes_in_status_details() {
        let mut map = HeaderMap::new();
        Status::new(Code::ResourceExhausted, "full").write_to(&mut map);
        assert!(map.get("grpc-status-details-bin").is_none());
        let s = Status::new(Code::ResourceExhausted, "full").with_retry_delay(std::time::Duration::from_secs(5));
        s.write_to(&mut map);
        let expected = super::super::details::retry_info_status(8, "full", std::time::Duration::from_secs(5));
        assert_eq!(map["grpc-status-details-bin"], super::super::details::base64(&expected).as_str());
    }

    #[test]
    fn unknown_codes_are_unknown() {
        assert_eq!(Code::from_ascii(b"99"), Code::Unknown);
        assert_eq!(Code::from_ascii(b"x"), Code::Unknown);
        assert_eq!(Code::from_ascii(b"14"), Code::Unavailable);
    }

    #[test]
    fn bad_escapes_are_kept() {
        assert_eq!(percent_decode(b"a%zzb%4"), "a%zzb%4");
    }
}
