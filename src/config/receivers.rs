//! `receivers:`: only the OTLP receiver, with its gRPC and HTTP servers.

use super::components::{Components, section};
use super::errors::Errors;
use super::limits::protocol_limits;
use super::model::{GrpcServer, HostPort, HttpServer, OtlpReceiver};
use super::parse::{Field, Fields};
use super::security;
use super::tls::receiver_tls;
use super::values::{LISTEN, parse_endpoint};
use crate::tls::{ALPN_GRPC, ALPN_HTTP};

/// Default gRPC listen endpoint, as in the collector.
pub const DEFAULT_GRPC_ENDPOINT: (&str, u16) = ("localhost", 4317);
/// Default HTTP listen endpoint, as in the collector.
pub const DEFAULT_HTTP_ENDPOINT: (&str, u16) = ("localhost", 4318);
/// Default `max_recv_msg_size_mib`.
pub const DEFAULT_MAX_RECV_MSG_SIZE_MIB: u64 = 4;
/// Default `max_concurrent_streams`.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Default HTTP `read_header_timeout`, as in the collector.
pub const DEFAULT_READ_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Default HTTP `max_request_body_size`, as in the collector.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 20 * MIB;
/// The gRPC length prefix is 32 bits, so no message can reach 4 GiB.
const MAX_RECV_MSG_SIZE_MIB: u64 = 4095;
const MIB: usize = 1024 * 1024;

/// Collector gRPC server keys that are not implemented: refused so that nobody is silently
/// insecure or silently misconfigured.
const GRPC_UNSUPPORTED: &[&str] = &["include_metadata", "read_buffer_size", "write_buffer_size"];

/// Collector HTTP server keys that are not implemented.
const HTTP_UNSUPPORTED: &[&str] = &[
    "cors",
    "include_metadata",
    "response_headers",
    "compression_algorithms",
    "traces_url_path",
    "metrics_url_path",
    "logs_url_path",
];

pub(crate) fn receivers(field: &Field<'_>, errs: &mut Errors) -> Components<OtlpReceiver> {
    section(field, errs, |id, body, errs| match id.kind.as_str() {
        "otlp" => otlp_receiver(body, errs),
        other => body.fail(errs, format!("receiver type `{other}` is not supported; only `otlp` is")),
    })
}

fn otlp_receiver(body: &Field<'_>, errs: &mut Errors) -> Option<OtlpReceiver> {
    let mut fields = body.fields(errs);
    let protocols = fields.take_or_null("protocols");
    fields.finish(errs);
    let mut fields = protocols.fields(errs);
    let grpc = fields.take("grpc").map(|g| grpc_server(&g, errs));
    let http = fields.take("http").map(|h| http_server(&h, errs));
    fields.finish(errs);
    if grpc.is_none() && http.is_none() {
        return protocols.fail(errs, "at least one protocol (`grpc` or `http`) is required");
    }
    Some(OtlpReceiver { grpc, http })
}

fn grpc_server(field: &Field<'_>, errs: &mut Errors) -> GrpcServer {
    let mut fields = field.fields(errs);
    let endpoint = endpoint(&mut fields, errs, DEFAULT_GRPC_ENDPOINT);
    let max_mib = fields.take("max_recv_msg_size_mib");
    let max_mib = max_mib.and_then(|m| m.uint(errs, 1, MAX_RECV_MSG_SIZE_MIB));
    let streams = fields.take("max_concurrent_streams");
    let streams = streams.and_then(|s| s.uint(errs, 1, u32::MAX.into()));
    if let Some(transport) = fields.take("transport") {
        check_transport(&transport, errs);
    }
    let tls = fields.take("tls").and_then(|t| receiver_tls(&t, errs, ALPN_GRPC));
    let (auth, keepalive) = (security::auth(&mut fields, errs), security::keepalive(&mut fields, errs));
    let limits = protocol_limits(&mut fields, errs);
    fields.unsupported(GRPC_UNSUPPORTED, errs);
    fields.finish(errs);
    let max_mib = max_mib.unwrap_or(DEFAULT_MAX_RECV_MSG_SIZE_MIB);
    GrpcServer {
        endpoint,
        max_recv_msg_size: usize::try_from(max_mib).unwrap_or(usize::MAX / MIB) * MIB,
        max_concurrent_streams: streams.map_or(DEFAULT_MAX_CONCURRENT_STREAMS, saturate_u32),
        tls,
        auth,
        keepalive,
        limits,
    }
}

fn saturate_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn check_transport(field: &Field<'_>, errs: &mut Errors) {
    match field.string(errs) {
        Some("tcp") | None => {}
        Some(other) => field.report(errs, format!("transport `{other}` is not supported; use `tcp`")),
    }
}

fn http_server(field: &Field<'_>, errs: &mut Errors) -> HttpServer {
    let mut fields = field.fields(errs);
    let endpoint = endpoint(&mut fields, errs, DEFAULT_HTTP_ENDPOINT);
    let max = fields.take("max_request_body_size");
    // Bodies are forwarded as one gRPC message, whose length prefix is 32 bits.
    let max = max.and_then(|m| m.uint(errs, 1, MAX_RECV_MSG_SIZE_MIB * MIB as u64));
    let header_timeout = fields.take("read_header_timeout").and_then(|t| t.duration(errs));
    let streams = fields.take("max_concurrent_streams").and_then(|s| s.uint(errs, 1, u32::MAX.into()));
    let tls = fields.take("tls").and_then(|t| receiver_tls(&t, errs, ALPN_HTTP));
    let auth = security::auth(&mut fields, errs);
    let idle_timeout = fields.take("idle_timeout").and_then(|t| t.duration(errs));
    let limits = protocol_limits(&mut fields, errs);
    fields.unsupported(HTTP_UNSUPPORTED, errs);
    fields.finish(errs);
    let max_request_body_size = max.map_or(DEFAULT_MAX_REQUEST_BODY_SIZE, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let read_header_timeout = header_timeout.unwrap_or(DEFAULT_READ_HEADER_TIMEOUT);
    let idle_timeout = idle_timeout.unwrap_or(crate::receiver::limits::DEFAULT_HTTP_IDLE_TIMEOUT);
    let max_concurrent_streams = streams.map_or(DEFAULT_MAX_CONCURRENT_STREAMS, saturate_u32);
    HttpServer {
        endpoint,
        max_request_body_size,
        read_header_timeout,
        auth,
        idle_timeout,
        tls,
        max_concurrent_streams,
        limits,
    }
}

/// `endpoint`, or the default when absent (or invalid: the error is already reported).
fn endpoint(fields: &mut Fields<'_>, errs: &mut Errors, default: (&str, u16)) -> HostPort {
    let endpoint = fields.take("endpoint");
    let endpoint = endpoint.and_then(|e| e.parsed(errs, |s| parse_endpoint(s, LISTEN)));
    endpoint.unwrap_or_else(|| HostPort { host: default.0.to_string(), port: default.1 })
}
