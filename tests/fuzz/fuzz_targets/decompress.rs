//! Request body decompression (HTTP Content-Encoding, gRPC grpc-encoding) on any bytes:
//! never panics, never returns more than the limit, what it encodes decodes back, and gzip and
//! deflate agree with flate2's `Read` decoders (the same bytes, or both refuse).
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use otlp_gateway::compression::{DecodeError, Encoding};

const ENCODINGS: [Encoding; 5] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd, Encoding::Snappy, Encoding::Identity];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let encoding = ENCODINGS[usize::from(selector & 7) % ENCODINGS.len()];
    // Limits from 1 byte to 64 KiB, so bombs stop early and small outputs pass.
    let limit = 1usize << (selector >> 4);
    let ours = encoding.decode(body, limit);
    match &ours {
        Ok(out) => assert!(out.len() <= limit, "{} gave {} bytes past the limit {limit}", encoding.name(), out.len()),
        Err(DecodeError::TooLarge { limit: l }) => assert_eq!(*l, limit),
        Err(DecodeError::Corrupt(_)) => {}
    }
    if let Some(want) = reference(encoding, body, limit) {
        assert_eq!(ours.ok(), want, "{} differs from flate2", encoding.name());
    }
    let encoded = encoding.encode(body).expect("encoding into memory");
    match encoding.decode(&encoded, body.len()) {
        Ok(out) => assert_eq!(out, body, "{} round trip", encoding.name()),
        Err(e) => panic!("{} cannot decode its own output: {e}", encoding.name()),
    }
});

/// flate2's streaming decoder for gzip and deflate: `Some(None)` when it refuses the body.
fn reference(encoding: Encoding, body: &[u8], limit: usize) -> Option<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let take = u64::try_from(limit).expect("small limit") + 1;
    let read = match encoding {
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(body).take(take).read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(body).take(take).read_to_end(&mut out),
        _ => return None,
    };
    Some(read.ok().filter(|_| out.len() <= limit).map(|_| out))
}
