//! `service.telemetry` and the `health_check` extension.

use super::{errors_of, ok, one_error, with_service};
use crate::config::{HostPort, LogEncoding, LogLevel, MetricsLevel};

fn hp(host: &str, port: u16) -> HostPort {
    HostPort { host: host.into(), port }
}

#[test]
fn defaults_are_the_collectors() {
    let cfg = ok(&with_service(""));
    assert_eq!(cfg.telemetry.metrics.endpoint, hp("localhost", 8888));
    assert_eq!(cfg.telemetry.metrics.level, MetricsLevel::Normal);
    assert_eq!((cfg.telemetry.logs.level, cfg.telemetry.logs.encoding), (LogLevel::Info, LogEncoding::Console));
    assert_eq!(cfg.telemetry.health_check, None);
}

#[test]
fn metrics_address_old_and_readers_new_forms() {
    let old = ok(&with_service("  telemetry:\n    metrics:\n      address: 0.0.0.0:9999"));
    assert_eq!(old.telemetry.metrics.endpoint, hp("0.0.0.0", 9999));
    let readers = "  telemetry:\n    metrics:\n      level: detailed\n      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 127.0.0.1\n                port: 0";
    let new = ok(&with_service(readers));
    assert_eq!(new.telemetry.metrics.endpoint, hp("127.0.0.1", 0));
    assert_eq!(new.telemetry.metrics.level, MetricsLevel::Detailed);
    let port_only = "  telemetry:\n    metrics:\n      readers: [{pull: {exporter: {prometheus: {port: 9000}}}}]";
    assert_eq!(ok(&with_service(port_only)).telemetry.metrics.endpoint, hp("localhost", 9000));
    let off = ok(&with_service("  telemetry:\n    metrics:\n      level: none"));
    assert_eq!(off.telemetry.metrics.level, MetricsLevel::None);
}

#[test]
fn telemetry_errors_name_their_paths() {
    let yaml = with_service(
        "  telemetry:\n    metrics:\n      level: loud\n      readers: [{pull: {exporter: {prometheus: {hots: x}}}}]\n    logs:\n      encoding: xml\n      output_paths: [stdout]\n    bogus: 1",
    );
    let paths: Vec<String> = errors_of(&yaml).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "service.telemetry.metrics.level",
            "service.telemetry.metrics.readers[0].pull.exporter.prometheus.hots",
            "service.telemetry.logs.encoding",
            "service.telemetry.logs.output_paths",
            "service.telemetry.bogus",
        ]
    );
    let both = with_service(
        "  telemetry:\n    metrics:\n      address: :8888\n      readers: [{pull: {exporter: {prometheus: {}}}}]",
    );
    let (path, message) = one_error(&both);
    assert_eq!(path, "service.telemetry.metrics.readers");
    assert!(message.contains("not both"), "{message}");
}

#[test]
fn logs_level_and_encoding() {
    let cfg = ok(&with_service("  telemetry:\n    logs:\n      level: DEBUG\n      encoding: json"));
    assert_eq!((cfg.telemetry.logs.level, cfg.telemetry.logs.encoding), (LogLevel::Debug, LogEncoding::Json));
}

#[test]
fn health_check_is_enabled_when_listed() {
    let defined = "extensions:\n  health_check:\n";
    let listed = ok(&format!("{defined}{}", with_service("  extensions: [health_check]")));
    let h = listed.telemetry.health_check.expect("enabled");
    assert_eq!((h.endpoint, h.path.as_str()), (hp("localhost", 13133), "/"));
    assert_eq!(ok(&format!("{defined}{}", with_service(""))).telemetry.health_check, None);
    let custom = "extensions:\n  health_check:\n    endpoint: 0.0.0.0:0\n    path: /health/status\n";
    let h = ok(&format!("{custom}{}", with_service("  extensions: [health_check]"))).telemetry.health_check.unwrap();
    assert_eq!((h.endpoint, h.path.as_str()), (hp("0.0.0.0", 0), "/health/status"));
}

#[test]
fn health_check_errors() {
    let (path, message) = one_error(&with_service("  extensions: [health_check]"));
    assert_eq!(path, "service.extensions[0]");
    assert!(message.contains("not defined in `extensions`"), "{message}");
    let bad = "extensions:\n  health_check:\n    path: health\n    check_collector_pipeline: {}\n";
    let paths: Vec<String> = errors_of(&format!("{bad}{}", with_service("  extensions: [health_check]")))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(paths, ["extensions.health_check.path", "extensions.health_check.check_collector_pipeline"]);
}
