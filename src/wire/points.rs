//! Metrics routed per data point (`KeyLevel::Point`), as `streamID` and point `attributes`
//! keys need. A metric whose points all have one owner travels verbatim; otherwise it is cut
//! into one metric per owner: the metric's other fields and its data type's other fields are
//! copied into each cut, followed by that owner's points, all verbatim.

use std::ops::Range;

use super::pb::{Field, Reader, WT_VARINT, WireError, len_header_len, put_len_header, read_varint};
use super::split::{Item, Keyer, Route, Splitter, r32, span_len};

/// `Metric.data` oneof field numbers: gauge, sum, histogram, exponential histogram, summary.
const DATA_FIELDS: [u32; 5] = [5, 7, 9, 10, 11];

/// What identifies a metric's streams besides resource, scope and point attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricHead {
    pub name: Range<usize>,
    pub unit: Range<usize>,
    /// The `Metric.data` field number in use (see `DATA_FIELDS`); 0 when the metric has none.
    pub data: u32,
    /// `aggregation_temporality` of sums and histograms (0 when absent).
    pub temporality: u64,
    pub monotonic: bool,
}

impl MetricHead {
    /// Field number of `attributes` in this metric's data points.
    pub fn point_attributes_field(&self) -> u32 {
        match self.data {
            9 => 9,
            10 => 1,
            _ => 7,
        }
    }
}

/// One data point of the metric being split.
#[derive(Debug, Clone)]
pub(super) struct Point {
    owner: u32,
    whole: Range<u32>,
    payload_start: u32,
}

impl Splitter {
    /// Routes one metric (`field` of a `Scope*` message) point by point.
    pub(super) fn walk_metric<K: Keyer>(
        &mut self,
        buf: &[u8],
        scope: u32,
        field: &Field,
        key: &mut K,
        route: &Route<'_>,
    ) -> Result<(), WireError> {
        let head = self.read_metric(buf, field.len_payload()?)?;
        let empty_owner = route.owner_of(key.metric(buf, &head)?);
        for p in self.points.iter_mut() {
            p.owner = route.owner_of(key.point(buf, p.payload_start as usize..p.whole.end as usize)?);
        }
        let first = self.points.first().map_or(empty_owner, |p| p.owner);
        if self.points.iter().all(|p| p.owner == first) {
            self.push_item(scope, r32(field.whole.clone()), first);
        } else {
            self.cut_metric(buf, scope, head.data)?;
        }
        Ok(())
    }

    /// Reads a metric's fields into `metric_heads`, `data_heads` and `points`.
    fn read_metric(&mut self, buf: &[u8], metric: Range<usize>) -> Result<MetricHead, WireError> {
        self.metric_heads.clear();
        self.data_heads.clear();
        self.points.clear();
        let mut head = MetricHead::default();
        // Occurrences of the data field in force: a repeated oneof member merges (its points add
        // up); a different member replaces it, and the replaced ones travel as inert heads.
        let mut data: Vec<Field> = Vec::new();
        let mut r = Reader::new(buf, metric);
        while let Some(f) = r.next_field()? {
            match f.number {
                1 => head.name = f.len_payload()?,
                3 => head.unit = f.len_payload()?,
                n if DATA_FIELDS.contains(&n) => {
                    if data.first().is_some_and(|d| d.number != n) {
                        self.metric_heads.extend(data.drain(..).map(|d| r32(d.whole)));
                    }
                    data.push(f);
                    continue;
                }
                _ => {}
            }
            self.metric_heads.push(r32(f.whole));
        }
        head.data = data.first().map_or(0, |d| d.number);
        for d in &data {
            self.read_data(buf, d.len_payload()?, &mut head)?;
        }
        Ok(head)
    }

    /// Reads a `Gauge`/`Sum`/`Histogram`/`ExponentialHistogram`/`Summary`.
    fn read_data(&mut self, buf: &[u8], data: Range<usize>, head: &mut MetricHead) -> Result<(), WireError> {
        let mut r = Reader::new(buf, data);
        while let Some(f) = r.next_field()? {
            match (f.number, f.wire) {
                (1, _) => {
                    let payload = f.len_payload()?;
                    let point = Point { owner: 0, whole: r32(f.whole), payload_start: payload.start as u32 };
                    self.points.push(point);
                    continue;
                }
                (2, WT_VARINT) => head.temporality = varint_value(buf, &f)?,
                (3, WT_VARINT) if head.data == 7 => head.monotonic = varint_value(buf, &f)? != 0,
                _ => {}
            }
            self.data_heads.push(r32(f.whole));
        }
        Ok(())
    }

    /// Writes one metric per owner into `synth`, each an item of that owner.
    fn cut_metric(&mut self, buf: &[u8], scope: u32, data_field: u32) -> Result<(), WireError> {
        self.points.sort_by_key(|p| p.owner);
        let mut lo = 0;
        while lo < self.points.len() {
            let owner = self.points[lo].owner;
            let hi = lo + self.points[lo..].iter().take_while(|p| p.owner == owner).count();
            let bytes = self.write_cut(buf, lo..hi, data_field)?;
            self.items.push(Item { scope, bytes, backend: owner, count: 1, synth: true });
            lo = hi;
        }
        Ok(())
    }

    fn write_cut(&mut self, buf: &[u8], points: Range<usize>, data_field: u32) -> Result<Range<u32>, WireError> {
        let points = &self.points[points];
        let data_len = span_len(&self.data_heads) as usize
            + points.iter().map(|p| (p.whole.end - p.whole.start) as usize).sum::<usize>();
        let metric_len = span_len(&self.metric_heads) as usize + len_header_len(data_len) + data_len;
        let start = self.synth.len();
        // Each cut repeats the metric's other fields: with huge ones and many owners the cuts
        // could outgrow the 4 GiB the item ranges address.
        let end = start + len_header_len(metric_len) + metric_len;
        if end > u32::MAX as usize {
            return Err(WireError::TooLarge(end));
        }
        put_len_header(&mut self.synth, 2, metric_len);
        extend(&mut self.synth, buf, &self.metric_heads);
        put_len_header(&mut self.synth, data_field, data_len);
        extend(&mut self.synth, buf, &self.data_heads);
        for p in points {
            self.synth.extend_from_slice(&buf[p.whole.start as usize..p.whole.end as usize]);
        }
        Ok(start as u32..self.synth.len() as u32)
    }
}

fn extend(out: &mut Vec<u8>, buf: &[u8], ranges: &[Range<u32>]) {
    for r in ranges {
        out.extend_from_slice(&buf[r.start as usize..r.end as usize]);
    }
}

/// The value of a varint field.
pub fn varint_value(buf: &[u8], f: &Field) -> Result<u64, WireError> {
    let (_, tag_len) = read_varint(buf, f.whole.start)?;
    Ok(read_varint(buf, f.whole.start + tag_len)?.0)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use prost::Message;

    use crate::config::{RoutingKey, Signal};
    use crate::routing::RouteKey;
    use crate::tools::signalgen::metrics_request;
    use crate::tools::spangen::grpc_frame;
    use crate::wire::pb::{Reader, put_len_header};
    use crate::wire::{Route, Splitter};

    /// Field 111, bytes "mark": unknown at every level it is added to.
    const UNKNOWN: &[u8] = &[0xfa, 0x06, 4, b'm', b'a', b'r', b'k'];

    /// Re-encodes message `buf` with `UNKNOWN` appended to it and, recursively, to the
    /// length-delimited fields along `path` (field numbers, one per level).
    fn mark(buf: &[u8], path: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = Reader::new(buf, 0..buf.len());
        while let Some(f) = r.next_field().unwrap() {
            match path.first() {
                Some(&n) if f.number == n => {
                    let inner = mark(&buf[f.payload.clone()], &path[1..]);
                    put_len_header(&mut out, n, inner.len());
                    out.extend_from_slice(&inner);
                }
                _ => out.extend_from_slice(&buf[f.whole.clone()]),
            }
        }
        out.extend_from_slice(UNKNOWN);
        out
    }

    #[test]
    fn a_cut_metric_keeps_unknown_fields_at_every_level() {
        let body = metrics_request("svc", 1, 12).encode_to_vec();
        // request → resource_metrics → scope_metrics → metrics → sum → data_points
        let marked = mark(&body, &[1, 2, 2, 7, 1]);
        let owner = |h: u64| (h % 3) as usize;
        let route = Route { owner: &owner, backends: 3 };
        let mut key = RouteKey::new(Signal::Metrics, &RoutingKey::StreamId);
        let mut parts = vec![];
        Splitter::new().split(&grpc_frame(&marked), &mut key, &route, &mut parts).unwrap();
        assert_eq!(parts.len(), 3, "the 12 streams spread over 3 backends");
        let mut points = 0;
        for p in &parts {
            let req = ExportMetricsServiceRequest::decode(&p.framed[5..]).unwrap();
            let sum = req.resource_metrics[0].scope_metrics[0].metrics.iter().find(|m| m.name.ends_with("count"));
            let n = match sum.and_then(|m| m.data.clone()) {
                Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) => s.data_points.len(),
                _ => 0,
            };
            points += n;
            let marks = p.framed.windows(UNKNOWN.len()).filter(|w| *w == UNKNOWN).count();
            // request, resource, scope, the three metrics (each cut, each piece keeps its
            // mark), the sum's `Sum`, and each of its points here
            assert_eq!(marks, 3 + 3 + 1 + n, "backend {}", p.backend);
        }
        assert_eq!(points, 12, "every point of the cut metric arrived once");
    }

    /// `Metric { name, sum {points[..1]}, sum {points[1..]} }`: a repeated oneof member, which
    /// decoders merge.
    fn metric_with_split_sum(points: &[opentelemetry_proto::tonic::metrics::v1::NumberDataPoint]) -> Vec<u8> {
        use opentelemetry_proto::tonic::metrics::v1::{Metric, Sum};
        let mut m = Metric { name: "m".into(), ..Default::default() }.encode_to_vec();
        for chunk in [&points[..1], &points[1..]] {
            let sum =
                Sum { data_points: chunk.to_vec(), aggregation_temporality: 2, is_monotonic: true }.encode_to_vec();
            put_len_header(&mut m, 7, sum.len());
            m.extend_from_slice(&sum);
        }
        m
    }

    fn wrap(field: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_len_header(&mut out, field, body.len());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_repeated_data_field_is_merged_not_copied_into_every_cut() {
        use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, metric};
        let points: Vec<NumberDataPoint> = (0..12)
            .map(|i| NumberDataPoint {
                attributes: vec![crate::tools::spangen::attr("k", &i.to_string())],
                ..Default::default()
            })
            .collect();
        let request = wrap(1, &wrap(2, &wrap(2, &metric_with_split_sum(&points))));
        let owner = |h: u64| (h % 3) as usize;
        let route = Route { owner: &owner, backends: 3 };
        let mut key = RouteKey::new(Signal::Metrics, &RoutingKey::StreamId);
        let mut parts = vec![];
        Splitter::new().split(&grpc_frame(&request), &mut key, &route, &mut parts).unwrap();
        assert!(parts.len() > 1, "the points spread");
        let mut got: Vec<NumberDataPoint> = vec![];
        for p in &parts {
            let req = ExportMetricsServiceRequest::decode(&p.framed[5..]).unwrap();
            let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
            let Some(metric::Data::Sum(sum)) = &m.data else { panic!("a sum") };
            assert!(sum.is_monotonic && sum.aggregation_temporality == 2);
            got.extend(sum.data_points.iter().cloned());
        }
        got.sort_by_key(|p| format!("{:?}", p.attributes));
        let mut want = points.clone();
        want.sort_by_key(|p| format!("{:?}", p.attributes));
        assert_eq!(got, want, "every point exactly once");
        let whole = grpc_frame(&request);
        assert_eq!(crate::wire::walk::count_points(&whole, 5..whole.len()), Ok(12));
    }
}
