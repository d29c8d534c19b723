use std::io::{Read, Write};

use proptest::prelude::*;

use super::*;

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
}

fn gz(input: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(input).unwrap();
    e.finish().unwrap()
}

fn decode(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    gunzip(input, limit, &mut out).map(|()| out)
}

/// flate2's `Read` decoders, which this module replaced: the reference behaviour.
fn reference(input: &[u8], zlib: bool, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let take = u64::try_from(limit).unwrap() + 1;
    let read = if zlib {
        flate2::read::ZlibDecoder::new(input).take(take).read_to_end(&mut out)
    } else {
        flate2::read::MultiGzDecoder::new(input).take(take).read_to_end(&mut out)
    };
    read.ok().filter(|_| out.len() <= limit).map(|_| out)
}

/// A member with every optional header field: extra, name, comment and header CRC.
fn full_header_member(payload: &[u8]) -> Vec<u8> {
    let plain = gz(payload);
    let mut m = vec![0x1f, 0x8b, 8, FHCRC | FEXTRA | FNAME | FCOMMENT, 0, 0, 0, 0, 0, 255];
    m.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
    m.extend_from_slice(b"name.pb\0comment\0");
    let hcrc = crc32fast::hash(&m) as u16;
    m.extend_from_slice(&hcrc.to_le_bytes());
    m.extend_from_slice(&plain[10..]);
    m
}

#[test]
fn every_header_field_is_skipped_and_the_header_crc_checked() {
    let payload = data(5000);
    let mut m = full_header_member(&payload);
    assert_eq!(decode(&m, 1 << 20).unwrap(), payload);
    let hcrc_at = 10 + 5 + 16;
    m[hcrc_at] ^= 1;
    assert_eq!(decode(&m, 1 << 20), Err(DecodeError::Corrupt(GZIP)));
}

#[test]
fn members_concatenate_and_a_small_last_member_only_hints() {
    // The last member's ISIZE (10 bytes) is the first size guess; the buffer must grow past it.
    let (a, b) = (data(300_000), data(10));
    let mut both = gz(&a);
    both.extend_from_slice(&gz(&b));
    let out = decode(&both, 1 << 20).unwrap();
    assert_eq!(out.len(), a.len() + b.len());
    assert_eq!((&out[..a.len()], &out[a.len()..]), (&a[..], &b[..]));
}

#[test]
fn many_tiny_members_share_one_inflater() {
    let payload = data(100);
    let mut body: Vec<u8> = (0..1000).flat_map(|_| gz(b"")).collect();
    body.extend_from_slice(&gz(&payload));
    assert_eq!(decode(&body, 1 << 20).unwrap(), payload);
}

#[test]
fn an_empty_member_is_an_empty_body_and_no_member_is_corrupt() {
    assert_eq!(decode(&gz(b""), 10).unwrap(), b"");
    assert_eq!(decode(b"", 10), Err(DecodeError::Corrupt(GZIP)));
}

#[test]
fn a_wrong_crc_size_flag_or_trailing_bytes_is_corrupt() {
    let good = gz(&data(1000));
    let n = good.len();
    let mut bad = Vec::new();
    for (at, bit) in [(n - 8, 1u8), (n - 4, 1), (3, 0x80)] {
        let mut m = good.clone();
        m[at] ^= bit;
        bad.push(m);
    }
    bad.push([&good[..], b"junk"].concat());
    for m in bad {
        assert_eq!(decode(&m, 1 << 20), Err(DecodeError::Corrupt(GZIP)));
    }
}

#[test]
fn a_lying_size_never_reserves_past_the_limit() {
    let mut m = gz(b"tiny");
    let n = m.len();
    m[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut out = Vec::new();
    assert_eq!(gunzip(&m, 4096, &mut out), Err(DecodeError::Corrupt(GZIP)));
    assert!(out.capacity() <= 4097, "{}", out.capacity());
}

#[test]
fn a_prefix_is_kept_and_not_counted_against_the_limit() {
    let payload = data(1000);
    let mut out = vec![9; 5];
    gunzip(&gz(&payload), payload.len(), &mut out).unwrap();
    assert_eq!((&out[..5], &out[5..]), (&[9u8; 5][..], &payload[..]));
    let mut z = Vec::from(&b"pre"[..]);
    unzlib(&super::super::Encoding::Deflate.encode(&payload).unwrap(), payload.len(), &mut z).unwrap();
    assert_eq!(&z[3..], &payload[..]);
}

/// `valid` with one kind of damage: none, a flipped byte, a cut, or bytes appended.
fn damage(mut v: Vec<u8>, kind: u8, at: prop::sample::Index, byte: u8, tail: &[u8]) -> Vec<u8> {
    let at = at.index(v.len().max(1)).min(v.len().saturating_sub(1));
    match kind {
        0 => {}
        1 => v[at] ^= byte.max(1),
        2 => v.truncate(at),
        _ => v.extend_from_slice(tail),
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// On valid and damaged bodies, gzip and deflate agree with flate2's `Read` decoders: the
    /// same bytes, or both refuse.
    #[test]
    fn agrees_with_flate2(
        len in 0usize..20_000,
        limit in 1usize..30_000,
        zlib in any::<bool>(),
        kind in 0..4u8,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        tail in proptest::collection::vec(any::<u8>(), 1..20),
    ) {
        let payload = data(len);
        let valid = if zlib { super::super::Encoding::Deflate.encode(&payload).unwrap() } else { gz(&payload) };
        let body = damage(valid, kind, at, byte, &tail);
        let mut ours = Vec::new();
        let got = if zlib { unzlib(&body, limit, &mut ours) } else { gunzip(&body, limit, &mut ours) };
        prop_assert_eq!(got.ok().map(|()| ours), reference(&body, zlib, limit), "kind {}", kind);
    }
}
