//! Visiting the items of an OTLP request (spans, log records, metrics) without building
//! anything: for counting and inspecting in sinks and tests.

use std::ops::Range;

use super::pb::{Reader, WireError};

/// Calls `f` with the byte range of every item of the request in `buf[range]`.
pub fn for_each_item(buf: &[u8], range: Range<usize>, mut f: impl FnMut(Range<usize>)) -> Result<(), WireError> {
    let mut top = Reader::new(buf, range);
    while let Some(res) = top.next_field()? {
        if res.number != 1 {
            continue;
        }
        let mut r = Reader::new(buf, res.len_payload()?);
        while let Some(scope) = r.next_field()? {
            if scope.number == 2 {
                children(buf, scope.len_payload()?, 2, &mut f)?;
            }
        }
    }
    Ok(())
}

fn children(buf: &[u8], range: Range<usize>, number: u32, f: &mut impl FnMut(Range<usize>)) -> Result<(), WireError> {
    let mut r = Reader::new(buf, range);
    while let Some(item) = r.next_field()? {
        if item.number == number {
            f(item.len_payload()?);
        }
    }
    Ok(())
}

/// Number of items in a request.
pub fn count_items(buf: &[u8], range: Range<usize>) -> Result<u64, WireError> {
    let mut n = 0;
    for_each_item(buf, range, |_| n += 1)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::spangen;
    use prost::Message;

    #[test]
    fn counts_spans() {
        let buf = spangen::request("s", 37, 1, 1).encode_to_vec();
        assert_eq!(count_items(&buf, 0..buf.len()), Ok(37));
        assert!(count_items(&buf[..buf.len() - 1], 0..buf.len() - 1).is_err());
    }
}
