//! Body compression both ways: decoding what clients send (gRPC `grpc-encoding`, HTTP
//! `Content-Encoding`) under a hard size cap, and encoding what we export.
//!
//! Decoding is incremental: output grows as the decoder produces it and stops one byte past the
//! cap, so a compression bomb costs at most the cap in memory, never the size it claims. gzip and
//! deflate inflate from the slice into the output ([`inflate`]); zstd and snappy through `Read`.

mod inflate;

use std::io::{Read, Write};

/// zstd window limit for decoding (2^24 = 16 MiB): covers every level up to 19 and the Go
/// encoders' defaults (8 MiB), and keeps a hostile frame from making the decoder allocate the
/// format's maximum window.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// A body encoding the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    #[default]
    Identity,
    Gzip,
    /// HTTP `deflate`: zlib-wrapped (RFC 1950), as browsers and the collector use it.
    Deflate,
    Zstd,
    /// Snappy's framing format (what the collector's gRPC snappy codec writes).
    Snappy,
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("decompressed body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body is not valid {0} data")]
    Corrupt(&'static str),
}

impl Encoding {
    /// The encoding a `grpc-encoding` / `Content-Encoding` token names (case-insensitive).
    pub fn from_token(token: &[u8]) -> Option<Encoding> {
        let t = token.trim_ascii();
        let is = |name: &str| t.eq_ignore_ascii_case(name.as_bytes());
        if t.is_empty() || is("identity") {
            return Some(Encoding::Identity);
        }
        [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd, Encoding::Snappy].into_iter().find(|e| is(e.name()))
    }

    /// The token on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
            Encoding::Snappy => "snappy",
        }
    }

    /// Decodes `input`, refusing output past `limit` bytes without holding more than that.
    pub fn decode(self, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        self.decode_into(input, limit, &mut out)?;
        Ok(out)
    }

    /// [`decode`](Self::decode), appending to `out` (which may already hold a prefix).
    pub fn decode_into(self, input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let corrupt = |_| DecodeError::Corrupt(self.name());
        match self {
            Encoding::Identity if input.len() > limit => Err(DecodeError::TooLarge { limit }),
            Encoding::Identity => {
                out.extend_from_slice(input);
                Ok(())
            }
            Encoding::Gzip => inflate::gunzip(input, limit, out),
            Encoding::Deflate => inflate::unzlib(input, limit, out),
            Encoding::Snappy => {
                capped(snap::read::FrameDecoder::new(input), input.len().saturating_mul(4), limit, self, out)
            }
            Encoding::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
                capped(d, zstd_size_hint(input), limit, self, out)
            }
        }
    }

    /// Encodes `input` at the codec's fast default level.
    pub fn encode(self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        let out = Vec::with_capacity(input.len() / 4 + 64);
        match self {
            Encoding::Identity => Ok(input.to_vec()),
            Encoding::Gzip => finish_gzip(flate2::write::GzEncoder::new(out, flate2::Compression::fast()), input),
            Encoding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(out, flate2::Compression::fast());
                e.write_all(input)?;
                e.finish()
            }
            Encoding::Zstd => zstd::bulk::compress(input, 1),
            Encoding::Snappy => {
                let mut e = snap::write::FrameEncoder::new(out);
                e.write_all(input)?;
                e.into_inner().map_err(|e| std::io::Error::other(e.to_string()))
            }
        }
    }
}

fn finish_gzip(mut e: flate2::write::GzEncoder<Vec<u8>>, input: &[u8]) -> std::io::Result<Vec<u8>> {
    e.write_all(input)?;
    e.finish()
}

/// The first frame's stated content size, else a 4× guess: only a first allocation, since a
/// body may hold several frames and the peer may lie.
fn zstd_size_hint(input: &[u8]) -> usize {
    let stated = zstd::zstd_safe::get_frame_content_size(input).ok().flatten();
    stated.and_then(|n| usize::try_from(n).ok()).unwrap_or(input.len().saturating_mul(4))
}

/// Appends `decoder`'s output to `out`, at most `limit + 1` bytes, growing as data comes from
/// a first allocation of `hint` bytes (never more than the limit).
fn capped(decoder: impl Read, hint: usize, limit: usize, enc: Encoding, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (start, cap) = (out.len(), u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1));
    out.reserve(hint.min(limit).saturating_add(1));
    decoder.take(cap).read_to_end(out).map_err(|_| DecodeError::Corrupt(enc.name()))?;
    if out.len() - start > limit {
        out.truncate(start);
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 5] =
        [Encoding::Identity, Encoding::Gzip, Encoding::Deflate, Encoding::Zstd, Encoding::Snappy];

    fn sample() -> Vec<u8> {
        (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = sample();
        for enc in ALL {
            let packed = enc.encode(&data).unwrap();
            assert_eq!(enc.decode(&packed, data.len()).unwrap(), data, "{enc:?}");
        }
    }

    #[test]
    fn one_byte_over_the_limit_is_too_large() {
        let data = sample();
        for enc in ALL {
            let packed = enc.encode(&data).unwrap();
            let err = enc.decode(&packed, data.len() - 1).unwrap_err();
            assert_eq!(err, DecodeError::TooLarge { limit: data.len() - 1 }, "{enc:?}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 16 MiB of zeros is about 16 KiB of gzip: a thousandfold past a 1 MiB limit.
        let zeros = vec![0u8; 16 << 20];
        for enc in [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd, Encoding::Snappy] {
            let bomb = enc.encode(&zeros).unwrap();
            let mut out = Vec::new();
            let err = enc.decode_into(&bomb, 1 << 20, &mut out).unwrap_err();
            assert_eq!(err, DecodeError::TooLarge { limit: 1 << 20 }, "{enc:?}");
            // The buffer grew by doubling up to the cap, never to the claimed size.
            assert!(out.capacity() <= 4 << 20, "{enc:?}: {}", out.capacity());
        }
    }

    #[test]
    fn garbage_and_truncation_are_corrupt() {
        let data = sample();
        for enc in [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd, Encoding::Snappy] {
            assert!(matches!(enc.decode(b"not compressed at all", 1 << 20), Err(DecodeError::Corrupt(_))), "{enc:?}");
            let packed = enc.encode(&data).unwrap();
            let cut = &packed[..packed.len() / 2];
            assert!(matches!(enc.decode(cut, 1 << 30), Err(DecodeError::Corrupt(_))), "{enc:?}");
        }
    }

    #[test]
    fn tokens_are_case_insensitive_and_unknown_ones_refused() {
        assert_eq!(Encoding::from_token(b"GZIP"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_token(b" zstd "), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_token(b""), Some(Encoding::Identity));
        assert_eq!(Encoding::from_token(b"br"), None);
    }
}
