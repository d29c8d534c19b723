//! Tests of the config loader: fixtures, typed values, defaults and error reporting.

mod errors;
mod exporters;
mod fixtures;
mod receivers;
mod security;
mod service;
mod telemetry;
mod tls;
mod values;

use super::{Config, ConfigErrors, parse_str};

/// Parses `yaml`, panicking with every error if it does not load.
fn ok(yaml: &str) -> Config {
    match parse_str(yaml) {
        Ok(config) => config,
        Err(errors) => panic!("config did not load:\n{errors}"),
    }
}

/// Parses `yaml`, which must fail; returns the errors.
fn fails(yaml: &str) -> ConfigErrors {
    match parse_str(yaml) {
        Ok(config) => panic!("config loaded but should not have: {config:#?}"),
        Err(errors) => errors,
    }
}

/// The errors of `yaml` as `(path, message)` pairs.
fn errors_of(yaml: &str) -> Vec<(String, String)> {
    let errors = fails(yaml);
    errors.0.into_iter().map(|e| (e.path, e.message)).collect()
}

/// The single error of `yaml`.
fn one_error(yaml: &str) -> (String, String) {
    let mut errors = errors_of(yaml);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.remove(0)
}

/// A valid config around an exporters section (named `lb` in the pipeline).
fn with_exporters(exporters: &str, pipeline_exporter: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
         exporters:\n{exporters}\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [{pipeline_exporter}]\n"
    )
}

/// A valid config whose `receivers.otlp.protocols` is `protocols` (indented 6).
fn with_protocols(protocols: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n{protocols}\n\
         exporters:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
    )
}

/// A minimal valid config with `extra` appended under `service:` (indented 2).
fn with_service(extra: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
         exporters:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp]\n{extra}\n"
    )
}
