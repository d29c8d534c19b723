//! OTLP client settings: the load balancer's `protocol.otlp` and the plain `otlp` exporter.

use std::time::Duration;

use super::errors::Errors;
use super::model::{Compression, HostPort, OtlpExporter};
use super::parse::{Field, Fields};
use super::tls::{Scheme, exporter_tls};
use super::values::{EndpointRules, parse_endpoint};

/// Default `compression`, as in the collector.
pub const DEFAULT_COMPRESSION: Compression = Compression::Gzip;

/// Default per-request deadline to a backend.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Collector OTLP exporter keys that are not implemented.
const UNSUPPORTED: &[&str] = &[
    "retry_on_failure",
    "sending_queue",
    "batcher",
    "auth",
    "keepalive",
    "balancer_name",
    "authority",
    "wait_for_ready",
    "read_buffer_size",
    "write_buffer_size",
];

const BACKEND: EndpointRules = EndpointRules { listen: false, default_port: None };

/// `exporters.loadbalancing.protocol.otlp`: no endpoint, the resolver supplies those.
pub(crate) fn lb_protocol(field: &Field<'_>, errs: &mut Errors) -> OtlpExporter {
    let mut fields = field.fields(errs);
    fields.reject(&["endpoint"], errs, |_| {
        "not allowed here: the load balancer takes backend endpoints from `resolver`".into()
    });
    let settings = settings(&mut fields, errs, Scheme::Unsaid);
    fields.finish(errs);
    settings
}

/// `exporters.otlp`: one backend at `endpoint`.
pub(crate) fn otlp_exporter(field: &Field<'_>, errs: &mut Errors) -> OtlpExporter {
    let mut fields = field.fields(errs);
    let endpoint = fields.required("endpoint", errs);
    let endpoint = endpoint.and_then(|e| e.parsed(errs, backend_url));
    let scheme = endpoint.as_ref().map_or(Scheme::Unsaid, |(_, scheme)| *scheme);
    let settings = settings(&mut fields, errs, scheme);
    fields.finish(errs);
    OtlpExporter { endpoint: endpoint.map(|(endpoint, _)| endpoint), ..settings }
}

/// `host:port`, `http://host:port` (plaintext) or `https://host:port` (TLS).
fn backend_url(text: &str) -> Result<(HostPort, Scheme), String> {
    let (rest, scheme) = match (text.strip_prefix("http://"), text.strip_prefix("https://")) {
        (Some(rest), _) => (rest, Scheme::Http),
        (_, Some(rest)) => (rest, Scheme::Https),
        _ if text.contains("://") => return Err(format!("unsupported scheme in `{text}`")),
        _ => (text, Scheme::Unsaid),
    };
    Ok((parse_endpoint(rest.strip_suffix('/').unwrap_or(rest), BACKEND)?, scheme))
}

/// The keys both shapes share. `scheme`: what the endpoint says about TLS.
fn settings(fields: &mut Fields<'_>, errs: &mut Errors, scheme: Scheme) -> OtlpExporter {
    let compression = fields.take("compression");
    let compression = compression.and_then(|c| c.parsed(errs, parse_compression));
    let timeout = fields.take("timeout").and_then(|t| t.duration(errs));
    let headers = fields.take("headers").map(|h| headers(&h, errs)).unwrap_or_default();
    let tls = exporter_tls(&fields.take_or_null("tls"), errs, scheme);
    fields.unsupported(UNSUPPORTED, errs);
    OtlpExporter {
        endpoint: None,
        compression: compression.unwrap_or(DEFAULT_COMPRESSION),
        headers,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        tls,
    }
}

/// `gzip`, `zstd`, `snappy` or `none` (`""` too, as in the collector).
fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "none" | "" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        "snappy" => Ok(Compression::Snappy),
        _ => Err(format!("unknown compression `{text}`; use gzip, zstd, snappy or none")),
    }
}

/// Headers the gateway sets itself on every gRPC call: configuring them would break the call.
const RESERVED_HEADERS: &[&str] = &["content-type", "te", "grpc-encoding", "grpc-accept-encoding", "grpc-timeout"];

/// `headers`: a mapping of header name to string value, each checked as HTTP allows.
fn headers(field: &Field<'_>, errs: &mut Errors) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for h in field.fields(errs).into_rest() {
        let name = h.key.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.starts_with(':') {
            h.report(errs, "not a valid HTTP header name");
        } else if RESERVED_HEADERS.contains(&name.as_str()) {
            h.report(errs, "set by the gateway itself; it cannot be configured");
        } else if let Some(value) = h.string(errs) {
            match http::HeaderValue::from_str(value) {
                Ok(_) => out.push((name, value.to_string())),
                Err(_) => h.report(errs, "not a valid HTTP header value"),
            }
        }
    }
    out
}
