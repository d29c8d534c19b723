//! `bearertokenauth`, a receiver's `auth`, gRPC `keepalive`, HTTP `idle_timeout` and
//! `service.runtime.max_connections_per_core`, and the servers' protocol limits.

use std::time::Duration;

use super::{errors_of, ok, one_error, with_service};
use crate::config::{ComponentId, Keepalive, ProtocolLimits, TokenSource};

/// A config whose receiver has `grpc` and `http` servers with `server` lines (indented 8),
/// `extensions` (indented 2) and `service.extensions: [enabled]`.
fn secured(server: &str, extensions: &str, enabled: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n{server}\n      http:\n{server}\n\
         exporters:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n\
         extensions:\n{extensions}\n\
         service:\n  extensions: [{enabled}]\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
    )
}

const AUTH: &str = "        auth:\n          authenticator: bearertokenauth/clients";

fn id(kind: &str, name: &str) -> ComponentId {
    ComponentId { kind: kind.into(), name: Some(name.into()) }
}

#[test]
fn bearer_token_auth_in_the_collector_shape() {
    let ext = "  bearertokenauth/clients:\n    tokens: [\"a\", \"b\"]\n  bearertokenauth/file:\n    filename: /etc/tokens\n    scheme: Token\n    header: X-Auth";
    let config = ok(&secured(AUTH, ext, "bearertokenauth/clients, bearertokenauth/file"));
    let clients = &config.authenticators[&id("bearertokenauth", "clients")];
    assert_eq!((clients.scheme.as_str(), clients.header.as_str()), ("Bearer", "authorization"));
    assert_eq!(clients.tokens, TokenSource::Inline(vec!["a".into(), "b".into()]));
    let file = &config.authenticators[&id("bearertokenauth", "file")];
    assert_eq!((file.scheme.as_str(), file.header.as_str()), ("Token", "x-auth"));
    assert_eq!(file.tokens, TokenSource::File("/etc/tokens".into()));
    let receiver = config.receivers.values().next().unwrap();
    assert_eq!(receiver.grpc.as_ref().unwrap().auth, Some(id("bearertokenauth", "clients")));
    assert_eq!(receiver.http.as_ref().unwrap().auth, Some(id("bearertokenauth", "clients")));
}

#[test]
fn token_sources_are_exactly_one() {
    let both = "  bearertokenauth/clients:\n    token: a\n    filename: /x";
    let (path, message) = one_error(&secured(AUTH, both, "bearertokenauth/clients"));
    assert_eq!(path, "extensions.bearertokenauth/clients");
    assert!(message.contains("only one"), "{message}");
    let none = "  bearertokenauth/clients:\n    scheme: Bearer";
    let (_, message) = one_error(&secured(AUTH, none, "bearertokenauth/clients"));
    assert!(message.contains("one of"), "{message}");
    let bad = "  bearertokenauth/clients:\n    tokens: [\"\", \"ok\"]\n    extra: 1";
    let errors = errors_of(&secured(AUTH, bad, "bearertokenauth/clients"));
    let paths: Vec<_> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(paths, ["extensions.bearertokenauth/clients.extra", "extensions.bearertokenauth/clients.tokens[0]"]);
    assert!(errors[1].1.contains("non-empty"), "{errors:?}");
}

#[test]
fn an_authenticator_must_be_defined_and_enabled() {
    let ext = "  bearertokenauth/clients:\n    token: a\n  health_check:";
    let errors = errors_of(&secured(AUTH, ext, "health_check"));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].0, "receivers.otlp.protocols.grpc.auth.authenticator");
    assert!(errors[0].1.contains("service.extensions"), "{}", errors[0].1);
    let other = AUTH.replace("clients", "other");
    let errors = errors_of(&secured(&other, ext, "bearertokenauth/clients"));
    assert!(errors.iter().all(|e| e.1.contains("not a `bearertokenauth` extension")), "{errors:#?}");
}

#[test]
fn keepalive_server_parameters_and_http_idle_timeout() {
    let yaml = super::with_protocols(
        "      grpc:\n        keepalive:\n          server_parameters:\n            max_connection_idle: 0s\n            max_connection_age: 10m\n            max_connection_age_grace: 30s\n      http:\n        idle_timeout: 5s",
    );
    let config = ok(&yaml);
    let receiver = config.receivers.values().next().unwrap();
    let k = receiver.grpc.as_ref().unwrap().keepalive;
    let expected = Keepalive {
        max_connection_idle: None,
        max_connection_age: Some(Duration::from_secs(600)),
        max_connection_age_grace: Some(Duration::from_secs(30)),
    };
    assert_eq!(k, expected);
    assert_eq!(receiver.http.as_ref().unwrap().idle_timeout, Duration::from_secs(5));
}

#[test]
fn keepalive_keys_not_implemented_are_refused_by_name() {
    let yaml = super::with_protocols(
        "      grpc:\n        keepalive:\n          enforcement_policy: {}\n          server_parameters:\n            time: 2h",
    );
    let errors = errors_of(&yaml);
    let paths: Vec<_> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "receivers.otlp.protocols.grpc.keepalive.enforcement_policy",
            "receivers.otlp.protocols.grpc.keepalive.server_parameters.time"
        ]
    );
}

#[test]
fn connections_per_core() {
    assert_eq!(ok(&with_service("")).runtime.max_connections_per_core, 4096);
    let config = ok(&with_service("  runtime:\n    max_connections_per_core: 10"));
    assert_eq!(config.runtime.max_connections_per_core, 10);
    let (path, _) = one_error(&with_service("  runtime:\n    max_connections_per_core: 0"));
    assert_eq!(path, "service.runtime.max_connections_per_core");
}

#[test]
fn print_config_shows_the_limits_and_masks_the_tokens() {
    let ext = "  bearertokenauth/clients:\n    tokens: [\"s3cret-a\", \"s3cret-b\"]";
    let keepalive = "        keepalive:\n          server_parameters:\n            max_connection_idle: 0s\n";
    let text = secured(AUTH, ext, "bearertokenauth/clients").replacen("grpc:\n", &format!("grpc:\n{keepalive}"), 1);
    let config = ok(&text.replacen("http:\n", "http:\n        idle_timeout: 5s\n", 1));
    let yaml = crate::config::effective_yaml(&config);
    assert!(!yaml.contains("s3cret"), "{yaml}");
    let again = ok(&yaml);
    assert_eq!(again.receivers, config.receivers, "{yaml}");
    // The printed config says the default request memory outright.
    assert_eq!(again.request_memory(), config.request_memory());
    let runtime = crate::config::RuntimeConfig { request_memory: None, ..again.runtime.clone() };
    assert_eq!(runtime, config.runtime);
    assert_eq!(again.authenticators.keys().collect::<Vec<_>>(), config.authenticators.keys().collect::<Vec<_>>());
}

const LIMITS: &str = "        handshake_timeout: 3s\n        read_timeout: 500ms\n        http2:\n          max_header_list_size: 8192\n          max_frame_size: 65536\n          max_pending_reset_streams: 5\n          max_local_reset_streams: 50\n          max_control_frames: 200";

#[test]
fn protocol_limits_on_both_servers() {
    let config = ok(&super::with_protocols(&format!("      grpc:\n{LIMITS}\n      http:\n{LIMITS}")));
    let receiver = config.receivers.values().next().expect("receiver");
    let expected = ProtocolLimits {
        handshake_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_millis(500),
        max_header_list_size: 8192,
        max_frame_size: 65536,
        max_pending_reset_streams: 5,
        max_local_reset_streams: 50,
        max_control_frames: 200,
    };
    assert_eq!(receiver.grpc.as_ref().map(|g| g.limits), Some(expected));
    assert_eq!(receiver.http.as_ref().map(|h| h.limits), Some(expected));
    let http = ok(&super::with_protocols("      http:\n        max_concurrent_streams: 7"));
    let streams = http.receivers.values().next().and_then(|r| r.http.as_ref()).map(|h| h.max_concurrent_streams);
    assert_eq!(streams, Some(7));
    let defaults = ok(&super::with_protocols("      grpc:"));
    let grpc = defaults.receivers.values().next().and_then(|r| r.grpc.as_ref()).map(|g| g.limits);
    assert_eq!(grpc, Some(ProtocolLimits::default()));
    assert_eq!(ProtocolLimits::default().read_timeout, Duration::from_secs(30));
}

#[test]
fn bad_protocol_limits_are_all_reported_with_their_paths() {
    let bad = "        handshake_timeout: 0s\n        read_timeout: 5\n        http2:\n          max_frame_size: 1000\n          max_header_list_size: 100\n          max_control_frames: 0\n          max_pending_reset_streams: -1\n          max_streams: 3";
    let errors = errors_of(&super::with_protocols(&format!("      grpc:\n{bad}")));
    let paths: Vec<_> = errors.iter().map(|e| e.0.as_str()).collect();
    let at = |k: &str| format!("receivers.otlp.protocols.grpc.{k}");
    let expected = [
        at("handshake_timeout"),
        at("read_timeout"),
        at("http2.max_header_list_size"),
        at("http2.max_frame_size"),
        at("http2.max_pending_reset_streams"),
        at("http2.max_control_frames"),
        at("http2.max_streams"),
    ];
    assert_eq!(paths, expected, "{errors:#?}");
    assert!(errors[1].1.contains("needs a unit"), "{errors:#?}");
    assert!(errors[3].1.contains("16384"), "{errors:#?}");
}

#[test]
fn print_config_shows_the_protocol_limits_and_reads_them_back() {
    let config = ok(&super::with_protocols(&format!("      grpc:\n{LIMITS}\n      http:\n        read_timeout: 2s")));
    let yaml = crate::config::effective_yaml(&config);
    for key in ["handshake_timeout: 3s", "read_timeout: 500ms", "read_timeout: 2s", "max_control_frames: 200"] {
        assert!(yaml.contains(key), "{key} in {yaml}");
    }
    assert_eq!(ok(&yaml).receivers, config.receivers, "{yaml}");
}
