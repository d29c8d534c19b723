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

/// Number of data points in a metrics request.
pub fn count_points(buf: &[u8], range: Range<usize>) -> Result<u64, WireError> {
    let mut n = 0;
    let mut err = Ok(());
    for_each_item(buf, range, |metric| match metric_points(buf, metric) {
        Ok(p) => n += p,
        Err(e) => err = Err(e),
    })?;
    err.map(|()| n)
}

/// Data points of one `Metric`: field 1 of whichever data field (5, 7, 9, 10, 11) it has.
fn metric_points(buf: &[u8], metric: Range<usize>) -> Result<u64, WireError> {
    let (mut r, mut n, mut member) = (Reader::new(buf, metric), 0, 0);
    while let Some(f) = r.next_field()? {
        if matches!(f.number, 5 | 7 | 9 | 10 | 11) {
            // A repeated oneof member merges; a different one replaces it.
            if f.number != member {
                (n, member) = (0, f.number);
            }
            children(buf, f.len_payload()?, 1, &mut |_| n += 1)?;
        }
    }
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

    #[test]
    fn counts_data_points() {
        let buf = crate::tools::signalgen::metrics_request("s", 2, 5).encode_to_vec();
        assert_eq!(count_points(&buf, 0..buf.len()), Ok(2 * 3 * 5));
    }
}
