//! `grpc-status-details-bin`: a `google.rpc.Status` carrying a `google.rpc.RetryInfo`,
//! encoded by hand with prost (the messages are three small structs).

use std::time::Duration;

use prost::Message;

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The encoded `google.rpc.Status` for `code`/`message` with a `RetryInfo` of `delay`.
pub fn retry_info_status(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    let seconds = i64::try_from(delay.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(delay.subsec_nanos()).unwrap_or(0);
    let info = RetryInfo { retry_delay: Some(ProtoDuration { seconds, nanos }) };
    let any = Any { type_url: RETRY_INFO_TYPE.into(), value: info.encode_to_vec() };
    RpcStatus { code, message: message.into(), details: vec![any] }.encode_to_vec()
}

/// Base64 without padding, as gRPC writes `-bin` metadata.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_without_padding() {
        let cases = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn retry_info_decodes_as_google_rpc_status() {
        let bytes = retry_info_status(8, "full", Duration::from_millis(1500));
        let status = RpcStatus::decode(bytes.as_slice()).unwrap();
        assert_eq!((status.code, status.message.as_str()), (8, "full"));
        assert_eq!(status.details[0].type_url, RETRY_INFO_TYPE);
        let info = RetryInfo::decode(status.details[0].value.as_slice()).unwrap();
        assert_eq!(info.retry_delay, Some(ProtoDuration { seconds: 1, nanos: 500_000_000 }));
    }
}
