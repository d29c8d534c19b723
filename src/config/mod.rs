//! Configuration in the OpenTelemetry Collector's YAML shape.
//!
//! `parse_str` / `load_file` turn YAML into a checked [`Config`]. The YAML is read into a
//! `serde_yaml::Value` and walked by hand, so that *every* problem is reported in one go, each
//! naming its key path (`exporters.loadbalancing.resolver.static.hostnames[2]`). Any key we do
//! not know is an error, as with serde's `deny_unknown_fields`; collector keys we know but do not
//! implement yet (auth, keepalive, ...) are errors too, so nothing is
//! silently ignored.

mod access;
mod components;
mod env;
mod errors;
mod exporters;
mod limits;
mod model;
mod otlp;
mod parse;
mod receivers;
mod render;
mod resilience;
mod routes;
mod security;
mod service;
mod telemetry;
mod tls;
mod values;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde_yaml::Value;

pub use access::DEFAULT_REQUEST_MEMORY;
pub use env::expand_env;
pub use errors::{ConfigError, ConfigErrors, EXIT_CONFIG};
pub use exporters::{DEFAULT_BACKEND_PORT, DEFAULT_DNS_INTERVAL, DEFAULT_DNS_TIMEOUT, DEFAULT_NAMESERVER_PORT};
pub use model::*;
pub use otlp::{DEFAULT_COMPRESSION, DEFAULT_TIMEOUT};
pub use receivers::{
    DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_RECV_MSG_SIZE_MIB,
    DEFAULT_MAX_REQUEST_BODY_SIZE,
};
pub use render::{MASK, effective_yaml, mask_secrets};
pub use resilience::{Resilience, ResilienceMode, RetryOnFailure, SendingQueue};
pub use routes::SignalRoute;
pub use security::BEARER_TOKEN_AUTH;
pub use service::{CONNECTORS_NOT_SUPPORTED, EXTENSIONS_NOT_SUPPORTED, PROCESSORS_NOT_SUPPORTED};
pub use telemetry::{
    DEFAULT_HEALTH_ENDPOINT, DEFAULT_METRICS_ENDPOINT, HealthCheck, LogEncoding, LogLevel, LogsConfig, MetricsConfig,
    MetricsLevel, TelemetryConfig,
};
pub use values::{MAX_CORE, parse_component_id, parse_cores, parse_duration};

use components::unsupported_section;
use errors::Errors;
use parse::Field;
use service::Declared;

/// Expands `${env:VAR}` references (see [`expand_env`]), then parses and checks a
/// configuration. On failure, returns every problem found.
pub fn parse_str(yaml: &str) -> Result<Config, ConfigErrors> {
    let value = read_yaml(&expand_env(yaml, |name| std::env::var(name).ok())?)?;
    if !matches!(value, Value::Mapping(_) | Value::Null) {
        let found = parse::kind(&value);
        return Err(ConfigErrors::single("", format!("expected a mapping, found {found}")));
    }
    let mut errs = Errors::default();
    let config = document(&Field::root(&value), &mut errs);
    errs.into_result(config)
}

/// Reads and parses a configuration file. An unreadable file is one error with path `""`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::single("", format!("cannot read `{}`: {e}", path.display())))?;
    parse_str(&text)
}

/// YAML text to a value, with `<<` merge keys applied. Syntax errors carry line and column.
fn read_yaml(yaml: &str) -> Result<Value, ConfigErrors> {
    let invalid = |e: serde_yaml::Error| ConfigErrors::single("", format!("invalid YAML: {e}"));
    let mut value: Value = serde_yaml::from_str(yaml).map_err(invalid)?;
    value.apply_merge().map_err(invalid)?;
    Ok(value)
}

/// Top-level sections this gateway does not implement; empty ones are fine.
const UNSUPPORTED_SECTIONS: [(&str, &str); 2] =
    [("processors", PROCESSORS_NOT_SUPPORTED), ("connectors", CONNECTORS_NOT_SUPPORTED)];

fn document(root: &Field<'_>, errs: &mut Errors) -> Config {
    let mut fields = root.fields(errs);
    let receivers = receivers::receivers(&fields.take_or_null("receivers"), errs);
    let exporters = exporters::exporters(&fields.take_or_null("exporters"), errs);
    for (key, message) in UNSUPPORTED_SECTIONS {
        unsupported_section(&fields.take_or_null(key), errs, message);
    }
    let extensions = telemetry::extensions(&fields.take_or_null("extensions"), errs);
    let declared =
        Declared { receivers: &receivers.declared, exporters: &exporters.declared, extensions: &extensions.declared };
    let service = service::service(&fields.take_or_null("service"), declared, errs);
    fields.finish(errs);
    let mut config = Config {
        receivers: receivers.parsed,
        exporters: exporters.parsed,
        pipelines: service.pipelines,
        runtime: service.runtime,
        telemetry: TelemetryConfig {
            metrics: service.metrics,
            logs: service.logs,
            health_check: extensions.health.filter(|_| service.health_check),
        },
        authenticators: Default::default(),
    };
    let ids = (&extensions.declared, &service.extensions);
    config.authenticators = security::authenticators(&config, extensions.authenticators, ids, errs);
    routes::check(&config, errs);
    service::check_request_memory(&config, errs);
    config
}
