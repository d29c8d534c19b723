//! `receivers.otlp`: defaults, protocols, limits and refused keys.

use super::{ok, one_error, with_protocols};
use std::time::Duration;

use crate::config::{GrpcServer, HostPort, HttpServer, OtlpReceiver, ProtocolLimits};

fn receiver(protocols: &str) -> OtlpReceiver {
    let config = ok(&with_protocols(protocols));
    let (receiver, _) = config.traces_route().expect("traces route");
    receiver.clone()
}

fn hp(host: &str, port: u16) -> HostPort {
    HostPort { host: host.into(), port }
}

#[test]
fn null_grpc_means_enabled_with_defaults() {
    let expected = GrpcServer {
        endpoint: hp("localhost", 4317),
        max_recv_msg_size: 4 * 1024 * 1024,
        max_concurrent_streams: 1024,
        tls: None,
        auth: None,
        keepalive: Default::default(),
        limits: ProtocolLimits::default(),
    };
    for grpc in ["      grpc:", "      grpc: {}", "      grpc: ~"] {
        let got = receiver(grpc);
        assert_eq!(got.grpc.as_ref(), Some(&expected), "{grpc}");
        assert_eq!(got.http, None);
    }
}

/// The HTTP server every default gives, on `endpoint`.
fn default_http(endpoint: HostPort) -> HttpServer {
    HttpServer {
        endpoint,
        max_request_body_size: 20 << 20,
        read_header_timeout: Duration::from_secs(60),
        tls: None,
        auth: None,
        idle_timeout: Duration::from_secs(60),
        max_concurrent_streams: 1024,
        limits: ProtocolLimits::default(),
    }
}

#[test]
fn null_http_means_enabled_with_defaults() {
    let http_only = receiver("      http:");
    assert_eq!(http_only.grpc, None);
    assert_eq!(http_only.http, Some(default_http(hp("localhost", 4318))));
    let both = receiver("      grpc:\n      http:\n        endpoint: 0.0.0.0:4318");
    assert!(both.grpc.is_some());
    assert_eq!(both.http, Some(default_http(hp("0.0.0.0", 4318))));
}

#[test]
fn grpc_settings() {
    let got = receiver(
        "      grpc:\n        endpoint: \"[::1]:0\"\n        max_recv_msg_size_mib: 16\n        max_concurrent_streams: 100\n        transport: tcp",
    );
    let grpc = got.grpc.expect("grpc");
    assert_eq!(grpc.endpoint, hp("::1", 0));
    assert_eq!(grpc.max_recv_msg_size, 16 * 1024 * 1024);
    assert_eq!(grpc.max_concurrent_streams, 100);
}

#[test]
fn empty_host_listens_on_all_interfaces() {
    let grpc = receiver("      grpc:\n        endpoint: :4317").grpc.expect("grpc");
    assert_eq!(grpc.endpoint, hp("0.0.0.0", 4317));
}

#[test]
fn protocols_are_required() {
    for yaml in
        ["receivers:\n  otlp:\n", "receivers:\n  otlp:\n    protocols:\n", "receivers:\n  otlp:\n    protocols: {}\n"]
    {
        let yaml = format!(
            "{yaml}exporters:\n  otlp:\n    endpoint: http://a:1\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
        );
        let (path, message) = one_error(&yaml);
        assert_eq!(path, "receivers.otlp.protocols");
        assert!(message.contains("at least one protocol"), "{message}");
    }
}

#[test]
fn limits_are_checked() {
    let cases = [
        ("max_recv_msg_size_mib: 0", "max_recv_msg_size_mib"),
        ("max_recv_msg_size_mib: 4096", "max_recv_msg_size_mib"),
        ("max_recv_msg_size_mib: 1.5", "max_recv_msg_size_mib"),
        ("max_concurrent_streams: -1", "max_concurrent_streams"),
        ("max_concurrent_streams: 4294967296", "max_concurrent_streams"),
        ("transport: unix", "transport"),
    ];
    for (line, key) in cases {
        let (path, _) = one_error(&with_protocols(&format!("      grpc:\n        {line}")));
        assert_eq!(path, format!("receivers.otlp.protocols.grpc.{key}"), "{line}");
    }
}

#[test]
fn unimplemented_server_keys_are_refused() {
    for key in ["include_metadata", "read_buffer_size", "write_buffer_size"] {
        let yaml = with_protocols(&format!("      grpc:\n        {key}: {{}}"));
        let (path, message) = one_error(&yaml);
        assert_eq!(path, format!("receivers.otlp.protocols.grpc.{key}"));
        assert_eq!(message, format!("`{key}` is not supported by this version of otlp-gateway"));
    }
    let (path, message) = one_error(&with_protocols("      http:\n        cors: {}"));
    assert_eq!(path, "receivers.otlp.protocols.http.cors");
    assert!(message.contains("not supported"), "{message}");
}

#[test]
fn only_otlp_receivers() {
    let yaml = "\
receivers:
  otlp:
    protocols:
      grpc:
  jaeger:
    protocols: {}
exporters:
  otlp:
    endpoint: http://a:1
service:
  pipelines:
    traces:
      receivers: [otlp, jaeger]
      exporters: [otlp]
";
    let (path, message) = one_error(yaml);
    assert_eq!(path, "receivers.jaeger");
    assert_eq!(message, "receiver type `jaeger` is not supported; only `otlp` is");
}

#[test]
fn named_receivers_and_bad_ids() {
    let yaml = "\
receivers:
  otlp/in:
    protocols:
      grpc:
  otlp/:
    protocols:
      grpc:
  9otlp:
    protocols:
      grpc:
exporters:
  otlp:
    endpoint: http://a:1
service:
  pipelines:
    traces:
      receivers: [otlp/in]
      exporters: [otlp]
";
    let errors = super::errors_of(yaml);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["receivers.otlp/", "receivers.9otlp"]);
    assert!(errors[0].1.contains("must not be empty"), "{errors:?}");
}
