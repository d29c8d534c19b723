//! The gateway's own telemetry, in the collector's shapes: `service.telemetry.metrics` (the
//! Prometheus endpoint), `service.telemetry.logs`, and the `health_check` extension.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use super::errors::Errors;
use super::model::{BearerTokenAuth, ComponentId, HostPort};
use super::parse::{Field, Fields};
use super::security::{BEARER_TOKEN_AUTH, bearer_token_auth};
use super::service::EXTENSIONS_NOT_SUPPORTED;
use super::values::{LISTEN, parse_component_id, parse_endpoint};

/// Default Prometheus endpoint, as in the collector: loopback only, so a fresh install does
/// not publish its internals; set `host: 0.0.0.0` (or `address: :8888`) for a scraper elsewhere.
pub const DEFAULT_METRICS_ENDPOINT: (&str, u16) = ("localhost", 8888);

/// Default health check endpoint, as in the collector since it defaults to `localhost`.
pub const DEFAULT_HEALTH_ENDPOINT: (&str, u16) = ("localhost", 13133);

/// Everything about the gateway's own telemetry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetryConfig {
    pub metrics: MetricsConfig,
    pub logs: LogsConfig,
    /// `extensions.health_check`, when `service.extensions` lists it.
    pub health_check: Option<HealthCheck>,
}

/// `service.telemetry.metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// `level: none` turns the endpoint (metrics and status page) off.
    pub level: MetricsLevel,
    /// Where `/metrics` and the status page `/` are served. Default `localhost:8888`.
    pub endpoint: HostPort,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { level: MetricsLevel::Normal, endpoint: host_port(DEFAULT_METRICS_ENDPOINT) }
    }
}

/// `service.telemetry.metrics.level`. Every level but `none` serves every metric: the per-core
/// counters cost the same whether or not they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsLevel {
    None,
    Basic,
    Normal,
    Detailed,
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogsConfig {
    /// Default `info`. `debug` adds per-event detail, never per-request lines.
    pub level: LogLevel,
    /// `console` (text, the default) or `json` (one object per line, for log shippers).
    pub encoding: LogEncoding,
}

/// `service.telemetry.logs.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
}

/// `service.telemetry.logs.encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogEncoding {
    #[default]
    Console,
    Json,
}

/// `extensions.health_check`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Default `localhost:13133`; use `0.0.0.0:13133` for a load balancer's probes.
    pub endpoint: HostPort,
    /// Default `/`.
    pub path: String,
}

fn host_port((host, port): (&str, u16)) -> HostPort {
    HostPort { host: host.to_string(), port }
}

/// `service.telemetry`: `metrics` and `logs` are applied; `traces` and `resource` are accepted
/// and not applied (the gateway exports no traces of its own).
pub(crate) fn telemetry(field: &Field<'_>, errs: &mut Errors) -> (MetricsConfig, LogsConfig) {
    let mut fields = field.fields(errs);
    let metrics = metrics(&fields.take_or_null("metrics"), errs);
    let logs = logs(&fields.take_or_null("logs"), errs);
    fields.take("traces");
    fields.take("resource");
    fields.finish(errs);
    (metrics, logs)
}

fn metrics(field: &Field<'_>, errs: &mut Errors) -> MetricsConfig {
    let mut fields = field.fields(errs);
    let level = fields.take("level").and_then(|l| l.parsed(errs, metrics_level)).unwrap_or(MetricsLevel::Normal);
    let address = fields.take("address").and_then(|a| a.parsed(errs, |s| parse_endpoint(s, LISTEN)));
    let readers = fields.take("readers");
    let from_readers = readers.as_ref().and_then(|r| prometheus_reader(r, errs));
    fields.finish(errs);
    if let (Some(_), Some(r)) = (&address, &readers) {
        r.report(errs, "use either `address` (older collectors) or `readers`, not both");
    }
    let endpoint = address.or(from_readers).unwrap_or_else(|| host_port(DEFAULT_METRICS_ENDPOINT));
    MetricsConfig { level, endpoint }
}

fn metrics_level(s: &str) -> Result<MetricsLevel, String> {
    match s {
        "none" => Ok(MetricsLevel::None),
        "basic" => Ok(MetricsLevel::Basic),
        "normal" => Ok(MetricsLevel::Normal),
        "detailed" => Ok(MetricsLevel::Detailed),
        _ => Err(format!("unknown level `{s}`; use `none`, `basic`, `normal` or `detailed`")),
    }
}

/// `readers: [{pull: {exporter: {prometheus: {host, port}}}}]`: exactly one Prometheus pull reader.
fn prometheus_reader(field: &Field<'_>, errs: &mut Errors) -> Option<HostPort> {
    let items = field.list(errs)?;
    if items.len() != 1 {
        return field.fail(errs, "list exactly one reader: `- pull: {exporter: {prometheus: {host, port}}}`");
    }
    let mut reader = items[0].fields(errs);
    reader.unsupported(&["periodic"], errs);
    let pull = reader.required("pull", errs);
    reader.finish(errs);
    let mut pull = pull?.fields(errs);
    let exporter = pull.required("exporter", errs);
    pull.finish(errs);
    let mut exporter = exporter?.fields(errs);
    exporter.unsupported(&["otlp", "console"], errs);
    let prometheus = exporter.required("prometheus", errs);
    exporter.finish(errs);
    prometheus_endpoint(&prometheus?, errs)
}

/// `prometheus: {host, port}`; host defaults to `localhost`, port to 8888.
fn prometheus_endpoint(field: &Field<'_>, errs: &mut Errors) -> Option<HostPort> {
    let mut fields = field.fields(errs);
    let host = fields.take("host").and_then(|h| h.parsed(errs, |s| parse_endpoint(&format!("{s}:1"), LISTEN)));
    let port = fields.take("port").map(|p| p.uint(errs, 0, 65535));
    fields.unsupported(
        &["without_units", "without_type_suffix", "without_scope_info", "with_resource_constant_labels"],
        errs,
    );
    fields.finish(errs);
    let host = host.map_or_else(|| DEFAULT_METRICS_ENDPOINT.0.to_string(), |h| h.host);
    let port = match port {
        Some(p) => u16::try_from(p?).ok()?,
        None => DEFAULT_METRICS_ENDPOINT.1,
    };
    Some(HostPort { host, port })
}

fn logs(field: &Field<'_>, errs: &mut Errors) -> LogsConfig {
    let mut fields = field.fields(errs);
    let level = fields.take("level").and_then(|l| l.parsed(errs, log_level)).unwrap_or_default();
    let encoding = fields.take("encoding").and_then(|e| e.parsed(errs, log_encoding)).unwrap_or_default();
    unsupported_log_keys(&mut fields, errs);
    fields.finish(errs);
    LogsConfig { level, encoding }
}

fn unsupported_log_keys(fields: &mut Fields<'_>, errs: &mut Errors) {
    let keys = [
        "development",
        "disable_caller",
        "disable_stacktrace",
        "sampling",
        "output_paths",
        "error_output_paths",
        "initial_fields",
        "processors",
    ];
    fields.unsupported(&keys, errs);
}

fn log_level(s: &str) -> Result<LogLevel, String> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Ok(LogLevel::Error),
        "warn" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        _ => Err(format!("unknown level `{s}`; use `debug`, `info`, `warn` or `error`")),
    }
}

fn log_encoding(s: &str) -> Result<LogEncoding, String> {
    match s {
        "console" => Ok(LogEncoding::Console),
        "json" => Ok(LogEncoding::Json),
        _ => Err(format!("unknown encoding `{s}`; use `console` or `json`")),
    }
}

/// The top-level `extensions` section: `health_check` and `bearertokenauth` are implemented.
/// Returns the health check (if defined and valid), the authenticators and the ids declared.
pub(crate) fn extensions(field: &Field<'_>, errs: &mut Errors) -> Extensions {
    let mut found = Extensions::default();
    if matches!(field.value, Value::Sequence(s) if s.is_empty()) {
        return found;
    }
    for entry in field.fields(errs).into_rest() {
        let Some(id) = entry.fail_on(errs, parse_component_id(&entry.key)) else { continue };
        if id.kind == "health_check" && id.name.is_none() {
            found.health = health_check(&entry, errs);
        } else if id.kind == BEARER_TOKEN_AUTH {
            let auth = bearer_token_auth(&entry, errs);
            auth.map(|a| found.authenticators.insert(id.clone(), a));
        } else {
            entry.report(errs, EXTENSIONS_NOT_SUPPORTED);
            continue;
        }
        found.declared.insert(id);
    }
    found
}

/// What the `extensions` section declares.
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    pub health: Option<HealthCheck>,
    pub authenticators: BTreeMap<ComponentId, BearerTokenAuth>,
    pub declared: BTreeSet<ComponentId>,
}

fn health_check(field: &Field<'_>, errs: &mut Errors) -> Option<HealthCheck> {
    let mut fields = field.fields(errs);
    let endpoint = fields.take("endpoint").and_then(|e| e.parsed(errs, |s| parse_endpoint(s, LISTEN)));
    let path = fields.take("path").and_then(|p| p.parsed(errs, health_path));
    fields.unsupported(&["tls", "cors", "auth", "response_body", "check_collector_pipeline", "http", "grpc"], errs);
    fields.finish(errs);
    let endpoint = endpoint.unwrap_or_else(|| host_port(DEFAULT_HEALTH_ENDPOINT));
    Some(HealthCheck { endpoint, path: path.unwrap_or_else(|| "/".into()) })
}

fn health_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') { Ok(s.to_string()) } else { Err(format!("`{s}` must start with `/`")) }
}

/// `service.extensions`: each id must be defined in `extensions`; returns those listed (an
/// extension is enabled only when listed here).
pub(crate) fn enabled_extensions(
    field: &Field<'_>,
    declared: &BTreeSet<ComponentId>,
    errs: &mut Errors,
) -> BTreeSet<ComponentId> {
    let mut enabled = BTreeSet::new();
    for item in field.list(errs).unwrap_or_default() {
        let Some(id) = item.parsed(errs, parse_component_id) else { continue };
        if id.kind != "health_check" && id.kind != BEARER_TOKEN_AUTH {
            item.report(errs, EXTENSIONS_NOT_SUPPORTED);
        } else if !declared.contains(&id) {
            item.report(errs, format!("extension `{id}` is not defined in `extensions`"));
        } else {
            enabled.insert(id);
        }
    }
    enabled
}
