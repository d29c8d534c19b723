//! OTLP client settings: the load balancer's `protocol.otlp` and the plain `otlp` exporter.

use std::time::Duration;

use super::errors::Errors;
use super::model::{Compression, HostPort, OtlpExporter};
use super::parse::{Field, Fields, not_supported};
use super::values::{EndpointRules, parse_endpoint};

/// Default `compression`, as in the collector.
pub const DEFAULT_COMPRESSION: Compression = Compression::Gzip;

/// Default per-request deadline to a backend.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The message for any configuration that would need TLS to a backend.
pub const TLS_NOT_SUPPORTED: &str = "TLS to backends is not supported yet; set tls.insecure: true";

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

/// Collector TLS client keys: meaningless without TLS, so refused rather than ignored.
const TLS_KEYS: &[&str] = &[
    "ca_file",
    "ca_pem",
    "cert_file",
    "cert_pem",
    "key_file",
    "key_pem",
    "insecure_skip_verify",
    "server_name_override",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "include_system_ca_certs_pool",
    "reload_interval",
];

const HTTPS_REFUSED: &str = "`https://` means TLS, which is not supported yet for backends; \
    use `http://` or `host:port` with tls.insecure: true";

const BACKEND: EndpointRules = EndpointRules { listen: false, default_port: None };

/// `exporters.loadbalancing.protocol.otlp`: no endpoint, the resolver supplies those.
pub(crate) fn lb_protocol(field: &Field<'_>, errs: &mut Errors) -> OtlpExporter {
    let mut fields = field.fields(errs);
    fields.reject(&["endpoint"], errs, |_| {
        "not allowed here: the load balancer takes backend endpoints from `resolver`".into()
    });
    let settings = settings(&mut fields, errs, true);
    fields.finish(errs);
    settings
}

/// `exporters.otlp`: one backend at `endpoint`.
pub(crate) fn otlp_exporter(field: &Field<'_>, errs: &mut Errors) -> OtlpExporter {
    let mut fields = field.fields(errs);
    let endpoint = fields.required("endpoint", errs);
    let endpoint = endpoint.and_then(|e| e.parsed(errs, backend_url));
    // Only a valid endpoint without `http://` needs the TLS check: a bad one is reported already.
    let tls_required = matches!(endpoint, Some((_, false)));
    let settings = settings(&mut fields, errs, tls_required);
    fields.finish(errs);
    OtlpExporter { endpoint: endpoint.map(|(endpoint, _)| endpoint), ..settings }
}

/// `host:port`, `http://host:port` (plaintext) or `https://...` (TLS: refused for now).
fn backend_url(text: &str) -> Result<(HostPort, bool), String> {
    if text.starts_with("https://") {
        return Err(HTTPS_REFUSED.to_string());
    }
    let (rest, plaintext) = match text.strip_prefix("http://") {
        Some(rest) => (rest.strip_suffix('/').unwrap_or(rest), true),
        None if text.contains("://") => return Err(format!("unsupported scheme in `{text}`")),
        None => (text, false),
    };
    Ok((parse_endpoint(rest, BACKEND)?, plaintext))
}

/// The keys both shapes share. `tls_required`: false when the endpoint's `http://` already says
/// plaintext (or the endpoint is invalid and reported).
fn settings(fields: &mut Fields<'_>, errs: &mut Errors, tls_required: bool) -> OtlpExporter {
    let compression = fields.take("compression");
    let compression = compression.and_then(|c| c.parsed(errs, parse_compression));
    let timeout = fields.take("timeout").and_then(|t| t.duration(errs));
    let headers = fields.take("headers").map(|h| headers(&h, errs)).unwrap_or_default();
    check_tls(&fields.take_or_null("tls"), errs, tls_required);
    fields.unsupported(UNSUPPORTED, errs);
    OtlpExporter {
        endpoint: None,
        compression: compression.unwrap_or(DEFAULT_COMPRESSION),
        headers,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        insecure: true,
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

/// Plaintext only: `tls.insecure: true` is required unless the endpoint says `http://`.
fn check_tls(tls: &Field<'_>, errs: &mut Errors, tls_required: bool) {
    let mut fields = tls.fields(errs);
    let insecure = fields.take("insecure");
    let value = insecure.as_ref().and_then(|i| i.boolean(errs));
    fields.reject(TLS_KEYS, errs, tls_key_refused);
    fields.finish(errs);
    if !tls_required {
        return;
    }
    match (insecure, value) {
        (_, Some(true)) | (Some(_), None) => {} // fine, or not a boolean (already reported)
        (Some(insecure), Some(false)) => insecure.report(errs, TLS_NOT_SUPPORTED),
        (None, _) if tls.is_null() => tls.report(errs, TLS_NOT_SUPPORTED),
        (None, _) => errs.add(&format!("{}.insecure", tls.path), TLS_NOT_SUPPORTED),
    }
}

fn tls_key_refused(key: &str) -> String {
    let refused = not_supported(key);
    format!("{refused} (TLS to backends is not implemented yet)")
}
