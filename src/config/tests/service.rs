//! `service`, pipelines, and the unsupported sections (processors, connectors, extensions).

use super::{errors_of, ok, one_error, with_service};
use crate::config::{PROCESSORS_NOT_SUPPORTED, Signal};

/// The minimal valid config with its traces pipeline body replaced by `pipeline` (indented 6).
fn with_pipeline(pipeline: &str) -> String {
    with_service("").replace("      receivers: [otlp]\n      exporters: [otlp]\n", &format!("{pipeline}\n"))
}

#[test]
fn empty_processors_and_extensions_are_fine() {
    let yaml = format!("processors:\nconnectors: {{}}\nextensions: []\n{}", with_service("  extensions: []"));
    ok(&yaml);
    for processors in ["      processors: []", "      processors:"] {
        ok(&with_pipeline(&format!("      receivers: [otlp]\n{processors}\n      exporters: [otlp]")));
    }
}

#[test]
fn defined_processors_connectors_and_extensions_are_errors() {
    let yaml = format!(
        "processors:\n  batch:\n  memory_limiter/x: {{}}\nconnectors:\n  spanmetrics:\nextensions:\n  zpages:\n{}",
        with_service("  extensions: [zpages]")
    );
    let errors = errors_of(&yaml);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "processors.batch",
            "processors.memory_limiter/x",
            "connectors.spanmetrics",
            "extensions.zpages",
            "service.extensions[0]",
        ]
    );
    assert_eq!(errors[0].1, PROCESSORS_NOT_SUPPORTED);
    assert!(errors[2].1.starts_with("connectors are not supported"), "{errors:?}");
    assert!(
        errors[3].1.starts_with("extensions other than `health_check` and `bearertokenauth` are not supported"),
        "{errors:?}"
    );
}

#[test]
fn pipeline_processors_are_errors() {
    let yaml = with_pipeline("      receivers: [otlp]\n      processors: [batch]\n      exporters: [otlp]");
    let (path, message) = one_error(&yaml);
    assert_eq!(path, "service.pipelines.traces.processors[0]");
    assert_eq!(message, PROCESSORS_NOT_SUPPORTED);
}

#[test]
fn pipeline_references() {
    let cases = [
        ("      exporters: [otlp]", "service.pipelines.traces.receivers", "at least one receiver"),
        ("      receivers: []\n      exporters: [otlp]", "service.pipelines.traces.receivers", "at least one receiver"),
        ("      receivers: [otlp]", "service.pipelines.traces.exporters", "at least one exporter"),
        (
            "      receivers: [otlp/x]\n      exporters: [otlp]",
            "service.pipelines.traces.receivers[0]",
            "receiver `otlp/x` is not defined in `receivers`",
        ),
        (
            "      receivers: [otlp]\n      exporters: [otlp, loadbalancing]",
            "service.pipelines.traces.exporters[1]",
            "exporter `loadbalancing` is not defined in `exporters`",
        ),
        (
            "      receivers: [otlp, otlp]\n      exporters: [otlp]",
            "service.pipelines.traces.receivers[1]",
            "listed more than once",
        ),
        (
            "      receivers: [\"otlp/\"]\n      exporters: [otlp]",
            "service.pipelines.traces.receivers[0]",
            "must not be empty",
        ),
        ("      receivers: otlp\n      exporters: [otlp]", "service.pipelines.traces.receivers", "expected a list"),
        (
            "      receivers: [otlp]\n      exporters: [otlp]\n      exporter: [otlp]",
            "service.pipelines.traces.exporter",
            "unknown key",
        ),
    ];
    for (pipeline, path, message) in cases {
        let (got_path, got) = one_error(&with_pipeline(pipeline));
        assert_eq!(got_path, path, "{pipeline}");
        assert!(got.contains(message), "{pipeline}: {got}");
    }
}

#[test]
fn metrics_and_logs_pipelines_are_accepted() {
    let yaml = with_service("").replace("    traces:", "    metrics/m:") + "";
    let config = ok(&yaml);
    assert_eq!(config.pipelines[0].signal, Signal::Metrics);
    assert_eq!(config.pipelines[0].name.as_deref(), Some("m"));
    assert_eq!(config.traces_route(), None);
    let yaml = with_service("").replace("    traces:", "    logs:");
    assert_eq!(ok(&yaml).pipelines[0].signal, Signal::Logs);
    let (path, message) = one_error(&with_service("").replace("    traces:", "    profiles:"));
    assert_eq!(path, "service.pipelines.profiles");
    assert!(message.contains("unknown signal"), "{message}");
}

#[test]
fn unused_components_are_fine() {
    let yaml = with_service("").replace("service:", "  otlp/unused:\n    endpoint: http://b:1\nservice:");
    assert_eq!(ok(&yaml).exporters.len(), 2);
}

#[test]
fn telemetry_is_accepted_with_known_keys_only() {
    ok(&with_service("  telemetry:\n    logs:\n      level: debug\n    metrics:\n      level: detailed"));
    let (path, message) = one_error(&with_service("  telemetry:\n    log: {}"));
    assert_eq!(path, "service.telemetry.log");
    assert!(message.starts_with("unknown key"), "{message}");
}

#[test]
fn runtime_drain_timeout() {
    let drain = |extra: &str| ok(&with_service(extra)).runtime.drain_timeout;
    assert_eq!(drain(""), std::time::Duration::from_secs(10));
    assert_eq!(drain("  runtime:\n    drain_timeout: 45s"), std::time::Duration::from_secs(45));
}

#[test]
fn runtime_cores() {
    let cores = |extra: &str| ok(&with_service(extra)).runtime.cores;
    assert_eq!(cores(""), None);
    assert_eq!(cores("  runtime: {}"), None);
    assert_eq!(cores("  runtime:\n    cores: \"0-3\""), Some(vec![0, 1, 2, 3]));
    assert_eq!(cores("  runtime:\n    cores: [2, 0, 2]"), Some(vec![0, 2]));
    let cases = [
        ("  runtime:\n    cores: \"3-1\"", "service.runtime.cores"),
        ("  runtime:\n    cores: 2", "service.runtime.cores"),
        ("  runtime:\n    cores: []", "service.runtime.cores"),
        ("  runtime:\n    cores: [0, x]", "service.runtime.cores[1]"),
        ("  runtime:\n    cores: [0, 9000]", "service.runtime.cores[1]"),
        ("  runtime:\n    threads: 2", "service.runtime.threads"),
        ("  runtime:\n    drain_timeout: 10", "service.runtime.drain_timeout"),
        ("  runtime:\n    drain_timeout: 0s", "service.runtime.drain_timeout"),
    ];
    for (extra, path) in cases {
        let (got, message) = one_error(&with_service(extra));
        assert_eq!(got, path, "{extra}: {message}");
    }
}

#[test]
fn runtime_request_memory() {
    let memory = |extra: &str| ok(&with_service(extra)).request_memory();
    assert_eq!(memory(""), 256 << 20, "the default");
    assert_eq!(memory("  runtime:\n    request_memory_mib: 16"), 16 << 20);
    let (path, message) = one_error(&with_service("  runtime:\n    request_memory_mib: 7"));
    assert_eq!(path, "service.runtime.request_memory_mib");
    assert!(message.contains("at least 8 MiB"), "twice the 4 MiB default max_recv_msg_size: {message}");
    for bad in ["0", "x", "-1"] {
        let (path, _) = one_error(&with_service(&format!("  runtime:\n    request_memory_mib: {bad}")));
        assert_eq!(path, "service.runtime.request_memory_mib", "{bad}");
    }
}
