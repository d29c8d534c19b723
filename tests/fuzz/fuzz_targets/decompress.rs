//! Request body decompression (HTTP Content-Encoding, gRPC grpc-encoding) on any bytes:
//! never panics, never returns more than the limit, and what it encodes decodes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otlp_gateway::compression::{DecodeError, Encoding};

const ENCODINGS: [Encoding; 5] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd, Encoding::Snappy, Encoding::Identity];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let encoding = ENCODINGS[usize::from(selector & 7) % ENCODINGS.len()];
    // Limits from 1 byte to 64 KiB, so bombs stop early and small outputs pass.
    let limit = 1usize << (selector >> 4);
    match encoding.decode(body, limit) {
        Ok(out) => assert!(out.len() <= limit, "{} gave {} bytes past the limit {limit}", encoding.name(), out.len()),
        Err(DecodeError::TooLarge { limit: l }) => assert_eq!(l, limit),
        Err(DecodeError::Corrupt(_)) => {}
    }
    let encoded = encoding.encode(body).expect("encoding into memory");
    match encoding.decode(&encoded, body.len()) {
        Ok(out) => assert_eq!(out, body, "{} round trip", encoding.name()),
        Err(e) => panic!("{} cannot decode its own output: {e}", encoding.name()),
    }
});
