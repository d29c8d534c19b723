//! What loadgen sends: gRPC or OTLP/HTTP (protobuf or JSON) bodies, compressed or not.
//!
//! Plain gRPC stamps fresh trace ids into every request (cheap). Every other variant is
//! encoded ahead of time into a pool that requests cycle through, so a JSON or gzip run
//! measures the receiver's decoding, not the load generator's encoding.

use std::cell::Cell;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::compression::Encoding;
use crate::tools::spangen::Template;
use crate::wire::GRPC_PREFIX;

/// Distinct pre-encoded requests per run: enough that trace ids spread over every backend.
const POOL: usize = 64;

/// The transport and body format of the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Grpc,
    /// OTLP/HTTP with `application/x-protobuf` bodies (sent over h2c).
    HttpProtobuf,
    /// OTLP/HTTP with `application/json` bodies (sent over h2c).
    HttpJson,
}

impl Protocol {
    /// `grpc`, `http/protobuf` or `http/json`, as the OTel SDKs' `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(format!("unknown protocol {s:?} (grpc, http/protobuf, http/json)")),
        }
    }

    /// The HTTP `Content-Type` of an OTLP/HTTP body.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::HttpJson => "application/json",
            _ => "application/x-protobuf",
        }
    }
}

/// The bodies of a run.
pub struct Bodies {
    template: Template,
    pool: Vec<Bytes>,
    next: Cell<usize>,
}

impl Bodies {
    pub fn new(template: Template, protocol: Protocol, compression: Encoding) -> std::io::Result<Bodies> {
        let mut pool = Vec::new();
        if protocol != Protocol::Grpc || compression != Encoding::Identity {
            let mut rng = fastrand::Rng::with_seed(0x10ad);
            for _ in 0..POOL {
                pool.push(encode(&template.stamp(&mut rng), protocol, compression)?);
            }
        }
        Ok(Bodies { template, pool, next: Cell::new(0) })
    }

    /// Spans in every body.
    pub fn spans(&self) -> usize {
        self.template.spans()
    }

    /// The next body to send.
    pub fn next(&self, rng: &mut fastrand::Rng) -> Bytes {
        if self.pool.is_empty() {
            return self.template.stamp(rng);
        }
        let i = self.next.get();
        self.next.set((i + 1) % self.pool.len());
        self.pool[i].clone()
    }
}

/// One framed protobuf request as `protocol` carries it, compressed with `compression`.
fn encode(framed: &[u8], protocol: Protocol, compression: Encoding) -> std::io::Result<Bytes> {
    let message = &framed[GRPC_PREFIX..];
    let payload = match protocol {
        Protocol::HttpJson => to_json(message)?,
        _ => message.to_vec(),
    };
    let packed = if compression == Encoding::Identity { payload } else { compression.encode(&payload)? };
    if protocol != Protocol::Grpc {
        return Ok(Bytes::from(packed));
    }
    let mut out = Vec::with_capacity(GRPC_PREFIX + packed.len());
    out.push(u8::from(compression != Encoding::Identity));
    out.extend_from_slice(&u32::try_from(packed.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&packed);
    Ok(Bytes::from(out))
}

/// OTLP/JSON of a protobuf trace request (opentelemetry-proto's serde mapping).
fn to_json(message: &[u8]) -> std::io::Result<Vec<u8>> {
    let request = ExportTraceServiceRequest::decode(message).map_err(std::io::Error::other)?;
    serde_json::to_vec(&request).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_json(body: &[u8]) -> ExportTraceServiceRequest {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn every_variant_carries_the_same_spans() {
        let template = Template::new("svc", 10, 1);
        let mut rng = fastrand::Rng::with_seed(1);
        let framed = template.stamp(&mut rng);
        let want = ExportTraceServiceRequest::decode(&framed[GRPC_PREFIX..]).unwrap();
        let json = encode(&framed, Protocol::HttpJson, Encoding::Identity).unwrap();
        assert_eq!(decode_json(&json), want);
        let gz = encode(&framed, Protocol::HttpProtobuf, Encoding::Gzip).unwrap();
        let plain = Encoding::Gzip.decode(&gz, 1 << 20).unwrap();
        assert_eq!(ExportTraceServiceRequest::decode(&plain[..]).unwrap(), want);
        let grpc = encode(&framed, Protocol::Grpc, Encoding::Gzip).unwrap();
        assert_eq!(grpc[0], 1, "compressed flag");
        assert_eq!(Encoding::Gzip.decode(&grpc[GRPC_PREFIX..], 1 << 20).unwrap(), plain);
    }

    #[test]
    fn plain_grpc_stamps_and_pools_cycle() {
        let mut rng = fastrand::Rng::with_seed(1);
        let plain = Bodies::new(Template::new("svc", 4, 1), Protocol::Grpc, Encoding::Identity).unwrap();
        assert_ne!(plain.next(&mut rng), plain.next(&mut rng), "fresh trace ids each time");
        let pooled = Bodies::new(Template::new("svc", 4, 1), Protocol::HttpProtobuf, Encoding::Identity).unwrap();
        let first = pooled.next(&mut rng);
        let again = (1..POOL).map(|_| pooled.next(&mut rng)).last();
        assert_ne!(again.as_ref(), Some(&first));
        assert_eq!(pooled.next(&mut rng), first, "the pool wraps around");
        assert_eq!(Protocol::parse("http/json"), Ok(Protocol::HttpJson));
    }
}
