//! Routing-key extractors: each returns the byte range of a key inside the request, reading
//! no deeper than it must. A missing key is an empty range, never an error: data without a
//! key is still delivered (by the owner of the empty key).

use std::ops::Range;

use super::pb::{Reader, WireError, each_len_field, last_len_field, read_varint};

/// `Span.trace_id = 1`. The last occurrence wins, as in every protobuf decoder; the Go
/// collector writes fields in descending order, so it is usually the last field anyway.
pub fn span_trace_id(buf: &[u8], span: Range<usize>) -> Result<Range<usize>, WireError> {
    last_len_field(buf, span, 1)
}

/// `service.name` of `Resource*.resource = 1` → `Resource.attributes = 1` (`KeyValue`), as a
/// string value. The first matching attribute wins, as in the collector's `pcommon.Map.Get`.
pub fn resource_service_name(buf: &[u8], resource_x: Range<usize>) -> Result<Range<usize>, WireError> {
    let mut r = Reader::new(buf, resource_x);
    let mut found = None;
    while let Some(f) = r.next_field()? {
        if f.number == 1 && found.is_none() {
            found = attribute_string(buf, f.len_payload()?, b"service.name")?;
        }
    }
    Ok(found.unwrap_or(0..0))
}

/// The string value of attribute `key` among `Resource.attributes = 1`, if present.
pub fn attribute_string(buf: &[u8], resource: Range<usize>, key: &[u8]) -> Result<Option<Range<usize>>, WireError> {
    let mut r = Reader::new(buf, resource);
    while let Some(f) = r.next_field()? {
        if f.number != 1 {
            continue;
        }
        let (k, v) = key_value(buf, f.len_payload()?)?;
        if &buf[k] == key {
            return Ok(Some(match v {
                Some(v) => last_len_field(buf, v, 1)?,
                None => 0..0,
            }));
        }
    }
    Ok(None)
}

type KeyValueRanges = (Range<usize>, Option<Range<usize>>);

/// `KeyValue { key = 1; value = 2 }` as ranges.
#[inline]
fn key_value(buf: &[u8], kv: Range<usize>) -> Result<KeyValueRanges, WireError> {
    match canonical_key_value(buf, kv.clone()) {
        Some(found) => Ok(found),
        None => any_key_value(buf, kv),
    }
}

/// The encoding every SDK writes, `0a len key 12 len value` and nothing else, read without a
/// field loop; `None` sends anything else to the full reader.
#[inline]
fn canonical_key_value(buf: &[u8], kv: Range<usize>) -> Option<KeyValueRanges> {
    let key = len_at(buf, kv.start, 0x0a, kv.end)?;
    if key.end == kv.end {
        return Some((key, None));
    }
    let value = len_at(buf, key.end, 0x12, kv.end)?;
    (value.end == kv.end).then_some((key, Some(value)))
}

/// The payload of a length-delimited field with one-byte tag `tag` at `at`, within `end`.
#[inline]
fn len_at(buf: &[u8], at: usize, tag: u8, end: usize) -> Option<Range<usize>> {
    if *buf.get(at)? != tag {
        return None;
    }
    let (len, n) = read_varint(buf, at + 1).ok()?;
    let start = at + 1 + n;
    let stop = start.checked_add(usize::try_from(len).ok()?)?;
    (stop <= end).then_some(start..stop)
}

#[cold]
fn any_key_value(buf: &[u8], kv: Range<usize>) -> Result<KeyValueRanges, WireError> {
    let mut r = Reader::new(buf, kv);
    let (mut key, mut value) = (0..0, None);
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => key = f.len_payload()?,
            2 => value = Some(f.len_payload()?),
            _ => {}
        }
    }
    Ok((key, value))
}

/// Appends `(key, value)` ranges of every `KeyValue` in field `field` of `buf[msg]`. The value
/// range is the raw `AnyValue` message, so values of different types never compare equal.
pub fn collect_attributes(
    buf: &[u8],
    msg: Range<usize>,
    field: u32,
    out: &mut Vec<(Range<usize>, Range<usize>)>,
) -> Result<(), WireError> {
    each_len_field(buf, msg, field, |kv| {
        let (k, v) = key_value(buf, kv)?;
        out.push((k, v.unwrap_or(0..0)));
        Ok(())
    })
}

/// For each of `names`, the raw `AnyValue` of the first attribute (field `field` of
/// `buf[msg]`) with that key, where `found` is still `None`.
pub fn find_attributes(
    buf: &[u8],
    msg: Range<usize>,
    field: u32,
    names: &[Box<[u8]>],
    found: &mut [Option<Range<usize>>],
) -> Result<(), WireError> {
    each_len_field(buf, msg, field, |kv| {
        let (k, v) = key_value(buf, kv)?;
        let key = &buf[k];
        if let Some(i) = names.iter().position(|n| &n[..] == key) {
            found[i].get_or_insert(v.unwrap_or(0..0));
        }
        Ok(())
    })
}
