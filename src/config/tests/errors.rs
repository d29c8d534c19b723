//! Error reporting: paths, messages, display, and many errors in one pass.

use super::{errors_of, fails, one_error, with_exporters, with_protocols, with_service};
use crate::config::{ConfigError, ConfigErrors, EXIT_CONFIG};

#[test]
fn unknown_keys_name_their_full_path() {
    let yaml = with_exporters(
        "  loadbalancing/a:\n    protocol:\n      otlp:\n        tls:\n          insecure: true\n          insecurre: true\n    resolver:\n      static:\n        hostnames: [a:1]\n        hostname: b\n",
        "loadbalancing/a",
    );
    let errors = errors_of(&yaml);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["exporters.loadbalancing/a.protocol.otlp.tls.insecurre", "exporters.loadbalancing/a.resolver.static.hostname",]
    );
    assert!(errors[0].1.starts_with("unknown key"), "{errors:?}");
    assert!(errors[0].1.contains("`insecure`"), "hint lists valid keys: {errors:?}");
}

#[test]
fn unknown_top_level_and_service_keys() {
    let yaml = format!("{}\nrecievers: {{}}\n", with_service("  pipeline: {}"));
    let errors = errors_of(&yaml);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["service.pipeline", "recievers"]);
}

#[test]
fn many_errors_reported_in_one_go() {
    let yaml = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: localhost
        max_concurrent_streams: 0
  zipkin:
exporters:
  loadbalancing:
    routing_key: traceId
    protocol:
      otlp:
        tls:
          insecure: maybe
    resolver:
      dns:
        hostname: collectors:4317
        interval: 5
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing, otlp]
    spans:
      receivers: [otlp]
      exporters: [debug]
";
    let errors = errors_of(yaml);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "receivers.otlp.protocols.grpc.endpoint",
            "receivers.otlp.protocols.grpc.max_concurrent_streams",
            "receivers.zipkin",
            "exporters.loadbalancing.routing_key",
            "exporters.loadbalancing.protocol.otlp.tls.insecure",
            "exporters.loadbalancing.resolver.dns.hostname",
            "exporters.loadbalancing.resolver.dns.interval",
            "exporters.debug",
            "service.pipelines.traces.exporters[1]",
            "service.pipelines.spans",
        ],
        "{errors:#?}"
    );
}

#[test]
fn yaml_syntax_error_is_one_error_with_line_and_column() {
    let (path, message) = one_error("receivers:\n  otlp: [\n  x: 1\n");
    assert_eq!(path, "");
    assert!(message.starts_with("invalid YAML"), "{message}");
    assert!(message.contains("line"), "{message}");
    assert!(message.contains("column"), "{message}");
}

#[test]
fn duplicate_keys_are_a_yaml_error() {
    let (path, message) = one_error("receivers: {}\nreceivers: {}\n");
    assert_eq!(path, "");
    assert!(message.contains("duplicate"), "{message}");
}

#[test]
fn top_level_must_be_a_mapping() {
    let (path, message) = one_error("- a\n- b\n");
    assert_eq!(path, "");
    assert!(message.contains("expected a mapping"), "{message}");
}

#[test]
fn empty_document_needs_pipelines() {
    for yaml in ["", "# nothing\n", "service:\n", "service:\n  pipelines: {}\n"] {
        let (path, message) = one_error(yaml);
        assert_eq!(path, "service.pipelines", "{yaml:?}");
        assert_eq!(message, "at least one pipeline is required");
    }
}

#[test]
fn type_mismatches_say_what_was_found() {
    let (path, message) = one_error(&with_protocols("      grpc:\n        endpoint: [a]"));
    assert_eq!(path, "receivers.otlp.protocols.grpc.endpoint");
    assert_eq!(message, "expected a string, found a list");
    let (path, message) = one_error(&with_protocols("      grpc: 5"));
    assert_eq!(path, "receivers.otlp.protocols.grpc");
    assert_eq!(message, "expected a mapping, found a number");
}

#[test]
fn non_string_keys_are_errors() {
    let (path, message) = one_error(&with_protocols("      grpc:\n        1: x"));
    assert_eq!(path, "receivers.otlp.protocols.grpc.1");
    assert_eq!(message, "keys must be strings");
}

#[test]
fn an_unset_environment_variable_is_an_error_naming_it() {
    let yaml = with_protocols("      grpc:\n        endpoint: ${env:OTLP_GW_TEST_UNSET_IP}:4317");
    let (path, message) = one_error(&yaml);
    assert_eq!(path, "");
    assert!(message.starts_with("line 5: environment variable `OTLP_GW_TEST_UNSET_IP` is not set"), "{message}");
}

#[test]
fn environment_defaults_and_escapes_are_expanded_before_parsing() {
    let yaml = with_protocols("      grpc:\n        endpoint: ${env:OTLP_GW_TEST_UNSET_IP:-127.0.0.9}:4317");
    let cfg = super::ok(&yaml.replace("[otlp]\n      exporters", "[otlp] # $$ is a dollar\n      exporters"));
    let grpc = cfg.receivers.values().next().and_then(|r| r.grpc.clone()).expect("grpc");
    assert_eq!(grpc.endpoint.to_string(), "127.0.0.9:4317");
}

#[test]
fn merge_keys_are_applied() {
    let yaml = "\
receivers:
  otlp:
    protocols:
      grpc: &grpc
        endpoint: 127.0.0.1:4317
      http:
        <<: *grpc
        endpoint: 127.0.0.1:4318
exporters:
  otlp:
    endpoint: http://127.0.0.1:14317
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
";
    let config = super::ok(yaml);
    let (receiver, _) = config.traces_route().expect("route");
    let http = receiver.http.as_ref().expect("http");
    assert_eq!(http.endpoint.to_string(), "127.0.0.1:4318");
}

#[test]
fn display_is_path_colon_message_one_per_line() {
    let errors = ConfigErrors(vec![
        ConfigError { path: "a.b[2]".into(), message: "bad".into() },
        ConfigError { path: "c".into(), message: "worse".into() },
    ]);
    assert_eq!(errors.to_string(), "a.b[2]: bad\nc: worse");
    assert_eq!(errors.paths(), ["a.b[2]", "c"]);
    let whole_file = ConfigError { path: String::new(), message: "invalid YAML".into() };
    assert_eq!(whole_file.to_string(), "invalid YAML");
    assert_eq!(EXIT_CONFIG, 64);
}

#[test]
fn display_of_real_errors() {
    let errors = fails(&with_protocols("      grpc:\n        endpoint: :70000"));
    assert_eq!(
        errors.to_string(),
        "receivers.otlp.protocols.grpc.endpoint: invalid endpoint `:70000`: port must be a number from 0 to 65535"
    );
}
