//! `Export*ServiceResponse.partial_success`, merged over the parts of a split request.
//! Field numbers are the same for all three signals: `partial_success = 1` holding
//! `rejected_<items> = 1` (int64) and `error_message = 2`.

use bytes::Bytes;

use super::GRPC_PREFIX;
use super::pb::{Reader, WT_VARINT, put_len_header, put_varint, read_varint};

/// The sum of the backends' partial-success answers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartialSuccess {
    pub rejected: i64,
    pub messages: Vec<String>,
}

impl PartialSuccess {
    /// Adds one backend's framed response. A response we cannot read adds nothing: the
    /// backend accepted the data, and that is what the client needs to know.
    pub fn add_framed(&mut self, framed: &[u8]) {
        if framed.len() <= GRPC_PREFIX {
            return;
        }
        let _ = self.add(framed, GRPC_PREFIX..framed.len());
    }

    fn add(&mut self, buf: &[u8], range: std::ops::Range<usize>) -> Result<(), super::WireError> {
        let mut r = Reader::new(buf, range);
        while let Some(f) = r.next_field()? {
            if f.number == 1 {
                self.add_partial(buf, f.len_payload()?)?;
            }
        }
        Ok(())
    }

    fn add_partial(&mut self, buf: &[u8], range: std::ops::Range<usize>) -> Result<(), super::WireError> {
        let mut r = Reader::new(buf, range);
        while let Some(f) = r.next_field()? {
            match (f.number, f.wire) {
                (1, WT_VARINT) => {
                    let at = f.whole.start + 1;
                    self.rejected = self.rejected.saturating_add(read_varint(buf, at)?.0 as i64);
                }
                (2, _) => self.messages.push(String::from_utf8_lossy(&buf[f.len_payload()?]).into_owned()),
                _ => {}
            }
        }
        Ok(())
    }

    /// The merged response, gRPC prefix included (empty message when nothing was rejected).
    pub fn to_framed(&self) -> Bytes {
        let mut msg = Vec::new();
        if self.rejected != 0 || !self.messages.is_empty() {
            let mut inner = Vec::new();
            if self.rejected != 0 {
                inner.push(0x08);
                put_varint(&mut inner, self.rejected as u64);
            }
            let text = self.messages.join("; ");
            if !text.is_empty() {
                put_len_header(&mut inner, 2, text.len());
                inner.extend_from_slice(text.as_bytes());
            }
            put_len_header(&mut msg, 1, inner.len());
            msg.extend_from_slice(&inner);
        }
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        Bytes::from(framed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::spangen::grpc_frame;
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
    use prost::Message;

    fn response(rejected: i64, msg: &str) -> Bytes {
        let partial = ExportTracePartialSuccess { rejected_spans: rejected, error_message: msg.into() };
        grpc_frame(&ExportTraceServiceResponse { partial_success: Some(partial) }.encode_to_vec())
    }

    #[test]
    fn merges_rejections_from_every_backend() {
        let mut p = PartialSuccess::default();
        p.add_framed(&response(3, "too old"));
        p.add_framed(&grpc_frame(&[]));
        p.add_framed(&response(2, "bad attr"));
        let out = ExportTraceServiceResponse::decode(&p.to_framed()[5..]).unwrap();
        let partial = out.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 5);
        assert_eq!(partial.error_message, "too old; bad attr");
    }

    #[test]
    fn all_accepted_is_an_empty_message() {
        assert_eq!(&PartialSuccess::default().to_framed()[..], &[0, 0, 0, 0, 0]);
    }
}
