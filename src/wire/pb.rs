//! Protobuf wire format: a field-at-a-time reader and the few writers the splitter needs.
//!
//! The reader never allocates and never trusts a length: every offset is checked against the
//! buffer, so garbage input ends in a `WireError`, never a panic.

use std::ops::Range;

/// Why a buffer is not valid protobuf at the level we walk. Small and `Copy`: hot-path errors
/// must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated message at byte {0}")]
    Truncated(usize),
    #[error("varint longer than 10 bytes at byte {0}")]
    VarintOverflow(usize),
    #[error("invalid wire type {wire} at byte {at}")]
    BadWireType { wire: u8, at: usize },
    #[error("field number 0 at byte {0}")]
    ZeroField(usize),
    #[error("field {field} has wire type {wire}, expected length-delimited, at byte {at}")]
    NotLengthDelimited { field: u32, wire: u8, at: usize },
    #[error("unbalanced group at byte {0}")]
    Group(usize),
    #[error("groups nested deeper than {MAX_GROUP_DEPTH} at byte {0}")]
    TooDeep(usize),
    #[error("message of {0} bytes is over the 4 GiB the wire walker handles")]
    TooLarge(usize),
}

/// Deprecated groups are skipped, never produced; nesting beyond this is hostile.
pub const MAX_GROUP_DEPTH: u32 = 32;

pub const WT_VARINT: u8 = 0;
pub const WT_I64: u8 = 1;
pub const WT_LEN: u8 = 2;
pub const WT_SGROUP: u8 = 3;
pub const WT_EGROUP: u8 = 4;
pub const WT_I32: u8 = 5;

/// One field as it stands in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    pub wire: u8,
    /// The whole field: tag, length prefix and payload. Copy this to keep the field verbatim.
    pub whole: Range<usize>,
    /// The payload of a length-delimited field (empty for other wire types).
    pub payload: Range<usize>,
}

impl Field {
    /// The payload range, or an error if this field is not length-delimited.
    pub fn len_payload(&self) -> Result<Range<usize>, WireError> {
        if self.wire == WT_LEN {
            return Ok(self.payload.clone());
        }
        Err(WireError::NotLengthDelimited { field: self.number, wire: self.wire, at: self.whole.start })
    }
}

/// Walks the fields of one message held in `buf[range]`. Offsets it returns index `buf`.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], range: Range<usize>) -> Self {
        Reader { buf, pos: range.start, end: range.end.min(buf.len()) }
    }

    /// The next field, `Ok(None)` at the end of the message.
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<Field>, WireError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let start = self.pos;
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| WireError::ZeroField(start))?;
        if number == 0 {
            return Err(WireError::ZeroField(start));
        }
        let wire = (tag & 7) as u8;
        let payload = self.skip_value(number, wire, start, 0)?;
        Ok(Some(Field { number, wire, whole: start..self.pos, payload }))
    }

    /// Advances past one value of `wire` type; returns the payload range of a LEN field.
    fn skip_value(&mut self, number: u32, wire: u8, at: usize, depth: u32) -> Result<Range<usize>, WireError> {
        match wire {
            WT_VARINT => self.varint().map(|_| self.pos..self.pos),
            WT_I64 => self.advance(8).map(|_| self.pos..self.pos),
            WT_I32 => self.advance(4).map(|_| self.pos..self.pos),
            WT_LEN => self.len_delimited(),
            WT_SGROUP => self.skip_group(number, depth + 1).map(|_| self.pos..self.pos),
            _ => Err(WireError::BadWireType { wire, at }),
        }
    }

    fn len_delimited(&mut self) -> Result<Range<usize>, WireError> {
        let at = self.pos;
        let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated(at))?;
        let start = self.pos;
        self.advance(len)?;
        Ok(start..self.pos)
    }

    /// Skips a deprecated group up to its matching end tag.
    fn skip_group(&mut self, number: u32, depth: u32) -> Result<(), WireError> {
        if depth > MAX_GROUP_DEPTH {
            return Err(WireError::TooDeep(self.pos));
        }
        loop {
            let at = self.pos;
            if at >= self.end {
                return Err(WireError::Group(at));
            }
            let tag = self.varint()?;
            let (inner, wire) = ((tag >> 3) as u32, (tag & 7) as u8);
            if wire == WT_EGROUP {
                return if inner == number { Ok(()) } else { Err(WireError::Group(at)) };
            }
            self.skip_value(inner, wire, at, depth)?;
        }
    }

    #[inline]
    fn advance(&mut self, n: usize) -> Result<(), WireError> {
        match self.pos.checked_add(n) {
            Some(p) if p <= self.end => {
                self.pos = p;
                Ok(())
            }
            _ => Err(WireError::Truncated(self.pos)),
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let (v, n) = read_varint(&self.buf[..self.end], self.pos)?;
        self.pos += n;
        Ok(v)
    }
}

/// The payload of the last length-delimited field `number` in `buf[range]`, or an empty
/// range. The hot path of trace-id routing: a tight skip loop over every field (checking the
/// framing as it goes), falling back to `Reader` only for deprecated groups.
#[inline]
pub fn last_len_field(buf: &[u8], range: Range<usize>, number: u32) -> Result<Range<usize>, WireError> {
    let end = range.end.min(buf.len());
    let buf = &buf[..end];
    let (mut pos, mut found) = (range.start, 0..0);
    while pos < end {
        let at = pos;
        let (tag, n) = read_varint(buf, pos)?;
        pos += n;
        let wire = (tag & 7) as u8;
        pos = match wire {
            WT_LEN => {
                let (len, n) = read_varint(buf, pos)?;
                let start = pos + n;
                let stop = (len as usize).checked_add(start).filter(|&e| e <= end).ok_or(WireError::Truncated(pos))?;
                if tag >> 3 == u64::from(number) {
                    found = start..stop;
                }
                stop
            }
            WT_VARINT => pos + read_varint(buf, pos)?.1,
            WT_I64 if pos + 8 <= end => pos + 8,
            WT_I32 if pos + 4 <= end => pos + 4,
            _ => return slow_last_len_field(buf, at..end, number, found),
        };
        if tag >> 3 == 0 || tag >> 35 != 0 {
            return Err(WireError::ZeroField(at));
        }
        if tag >> 3 == u64::from(number) && wire != WT_LEN {
            return Err(WireError::NotLengthDelimited { field: number, wire, at });
        }
    }
    Ok(found)
}

/// Calls `f` with the payload of every length-delimited field `number` in `buf[range]`, in
/// order: `last_len_field`'s tight skip loop for walks that want every occurrence (attributes).
#[inline]
pub fn each_len_field(
    buf: &[u8],
    range: Range<usize>,
    number: u32,
    mut f: impl FnMut(Range<usize>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let end = range.end.min(buf.len());
    let buf = &buf[..end];
    let mut pos = range.start;
    while pos < end {
        let at = pos;
        let (tag, n) = read_varint(buf, pos)?;
        pos += n;
        let wire = (tag & 7) as u8;
        // Field 0, or a number past u32: invalid, as the full reader says.
        if tag >> 3 == 0 || tag >> 35 != 0 {
            return Err(WireError::ZeroField(at));
        }
        pos = match wire {
            WT_LEN => {
                let (len, n) = read_varint(buf, pos)?;
                let start = pos + n;
                let stop = (len as usize).checked_add(start).filter(|&e| e <= end).ok_or(WireError::Truncated(pos))?;
                if tag >> 3 == u64::from(number) {
                    f(start..stop)?;
                }
                stop
            }
            _ if tag >> 3 == u64::from(number) => {
                return Err(WireError::NotLengthDelimited { field: number, wire, at });
            }
            WT_VARINT => pos + read_varint(buf, pos)?.1,
            WT_I64 if pos + 8 <= end => pos + 8,
            WT_I32 if pos + 4 <= end => pos + 4,
            _ => return slow_each_len_field(buf, at..end, number, f),
        };
    }
    Ok(())
}

#[cold]
fn slow_each_len_field(
    buf: &[u8],
    range: Range<usize>,
    number: u32,
    mut f: impl FnMut(Range<usize>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut r = Reader::new(buf, range);
    while let Some(field) = r.next_field()? {
        if field.number == number {
            f(field.len_payload()?)?;
        }
    }
    Ok(())
}

/// `last_len_field` from `range` on with the full reader (groups, errors).
#[cold]
fn slow_last_len_field(
    buf: &[u8],
    range: Range<usize>,
    number: u32,
    mut found: Range<usize>,
) -> Result<Range<usize>, WireError> {
    let mut r = Reader::new(buf, range);
    while let Some(f) = r.next_field()? {
        if f.number == number {
            found = f.len_payload()?;
        }
    }
    Ok(found)
}

/// Decodes a varint at `buf[at..]`; returns the value and its length in bytes.
#[inline(always)]
pub fn read_varint(buf: &[u8], at: usize) -> Result<(u64, usize), WireError> {
    // Tags and most lengths are one byte: answer those without a loop or a call.
    match buf.get(at) {
        Some(&b) if b < 0x80 => Ok((u64::from(b), 1)),
        _ => read_varint_long(buf, at),
    }
}

#[inline(never)]
fn read_varint_long(buf: &[u8], at: usize) -> Result<(u64, usize), WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(&b) = buf.get(at + i) else {
            return Err(WireError::Truncated(at));
        };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((value, i + 1));
        }
    }
    Err(WireError::VarintOverflow(at))
}

/// Bytes a varint of `v` takes.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `v` as a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes taken by a length-delimited field header (tag + length) for a field number below 16.
#[inline]
pub fn len_header_len(len: usize) -> usize {
    1 + varint_len(len as u64)
}

/// Appends the tag and length of a length-delimited field (field numbers below 16 only).
#[inline]
pub fn put_len_header(out: &mut Vec<u8>, field: u32, len: usize) {
    debug_assert!(field < 16);
    out.push(((field << 3) as u8) | WT_LEN);
    put_varint(out, len as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Result<Vec<Field>, WireError> {
        let mut r = Reader::new(buf, 0..buf.len());
        let mut out = vec![];
        while let Some(f) = r.next_field()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn varint_round_trip_and_length() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut b = vec![];
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "len of {v}");
            assert_eq!(read_varint(&b, 0), Ok((v, b.len())));
        }
    }

    #[test]
    fn reads_every_wire_type() {
        // field 1 varint 150, field 2 LEN "hi", field 3 fixed64, field 4 fixed32, group 5 { 1: 1 }
        let buf = [
            0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4, 0x2b, 0x08, 0x01,
            0x2c,
        ];
        let f = fields(&buf).unwrap();
        assert_eq!(f.iter().map(|f| f.number).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(&buf[f[1].payload.clone()], b"hi");
        assert_eq!(f[4].whole, 21..25);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let cases: &[&[u8]] = &[
            &[0x0a, 5, 1], // length past the end
            &[0x08],       // truncated varint
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x0f],                                                       // wire type 7
            &[0x00, 0x01],                                                 // field 0
            &[0x0b, 0x08, 0x01],                                           // unterminated group
            &[0x0b, 0x14],                                                 // group closed with another number
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // huge length
        ];
        for c in cases {
            assert!(fields(c).is_err(), "{c:?} should fail");
        }
    }

    #[test]
    fn fast_scan_agrees_with_the_reader() {
        let cases: &[&[u8]] = &[
            &[0x0a, 2, 1, 2, 0x10, 5, 0x0a, 1, 9],       // two field-1s: last wins
            &[0x0a, 2, 1, 2, 0x08, 5],                   // field 1 as a varint
            &[0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 1, 7], // fixed64 then field 1
            &[0x0b, 0x08, 1, 0x0c, 0x0a, 1, 3],          // a group before field 1
            &[0x0a, 5, 1],                               // truncated
            &[0x1d, 1, 2],                               // truncated fixed32
            &[0x00, 0x01],                               // field 0
            &[0x0f],                                     // bad wire type
        ];
        for c in cases {
            let slow = slow_last_len_field(c, 0..c.len(), 1, 0..0);
            assert_eq!(last_len_field(c, 0..c.len(), 1).is_ok(), slow.is_ok(), "{c:?}");
            if let Ok(r) = slow {
                assert_eq!(last_len_field(c, 0..c.len(), 1), Ok(r), "{c:?}");
            }
        }
    }

    #[test]
    fn deep_groups_are_refused() {
        let mut buf = vec![0x0b; 100];
        buf.extend(vec![0x0c; 100]);
        assert!(matches!(fields(&buf), Err(WireError::TooDeep(_))));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The fast loop finds exactly what the full reader finds, and fails where it fails.
        #[test]
        fn each_len_field_agrees_with_the_reader(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), n in 1u32..4) {
            let mut fast = vec![];
            let fast = each_len_field(&bytes, 0..bytes.len(), n, |r| { fast.push(r); Ok(()) }).map(|()| fast);
            let slow = fields(&bytes).and_then(|fs| {
                fs.into_iter().filter(|f| f.number == n).map(|f| f.len_payload()).collect::<Result<Vec<_>, _>>()
            });
            proptest::prop_assert_eq!(fast.is_ok(), slow.is_ok());
            if let (Ok(a), Ok(b)) = (fast, slow) {
                proptest::prop_assert_eq!(a, b);
            }
        }
    }
}
