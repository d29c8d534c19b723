//! `service:`: pipelines, `telemetry`, `extensions`, and our `runtime` extension.

use std::collections::BTreeSet;

use serde_yaml::Value;

use super::errors::Errors;
use super::model::{ComponentId, Pipeline, RuntimeConfig, Signal};
use super::parse::Field;
use super::telemetry::{LogsConfig, MetricsConfig, enabled_extensions, telemetry};
use super::values::{MAX_CORE, parse_component_id, parse_cores};

/// The message for any processor, in a section or a pipeline.
pub const PROCESSORS_NOT_SUPPORTED: &str = "processors are not supported; otlp-gateway forwards data unchanged";

/// The message for any connector.
pub const CONNECTORS_NOT_SUPPORTED: &str = "connectors are not supported; otlp-gateway forwards data unchanged";

/// The message for any extension but `health_check` and `bearertokenauth`, in a section or in
/// `service.extensions`.
pub const EXTENSIONS_NOT_SUPPORTED: &str =
    "extensions other than `health_check` and `bearertokenauth` are not supported by this version of otlp-gateway";

/// The ids that pipelines may reference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Declared<'a> {
    pub receivers: &'a BTreeSet<ComponentId>,
    pub exporters: &'a BTreeSet<ComponentId>,
    pub extensions: &'a BTreeSet<ComponentId>,
}

/// What `service` yields.
pub(crate) struct Service {
    pub pipelines: Vec<Pipeline>,
    pub runtime: RuntimeConfig,
    pub metrics: MetricsConfig,
    pub logs: LogsConfig,
    /// Whether `service.extensions` lists `health_check`.
    pub health_check: bool,
    /// The extensions `service.extensions` lists.
    pub extensions: BTreeSet<ComponentId>,
}

pub(crate) fn service(field: &Field<'_>, declared: Declared<'_>, errs: &mut Errors) -> Service {
    let mut fields = field.fields(errs);
    let pipelines = pipelines(&fields.take_or_null("pipelines"), declared, errs);
    let runtime = fields.take("runtime").map(|r| runtime(&r, errs));
    let (metrics, logs) = telemetry(&fields.take_or_null("telemetry"), errs);
    let extensions = enabled_extensions(&fields.take_or_null("extensions"), declared.extensions, errs);
    fields.finish(errs);
    let health_check = extensions.iter().any(|id| id.kind == "health_check");
    Service { pipelines, runtime: runtime.unwrap_or_default(), metrics, logs, health_check, extensions }
}

fn pipelines(field: &Field<'_>, declared: Declared<'_>, errs: &mut Errors) -> Vec<Pipeline> {
    let entries = field.fields(errs).into_rest();
    if entries.is_empty() && matches!(field.value, Value::Null | Value::Mapping(_)) {
        field.report(errs, "at least one pipeline is required");
    }
    let pipeline = |entry: Field<'_>| pipeline(&entry, declared, errs);
    entries.into_iter().filter_map(pipeline).collect()
}

fn pipeline(entry: &Field<'_>, declared: Declared<'_>, errs: &mut Errors) -> Option<Pipeline> {
    let id = entry.fail_on(errs, parse_component_id(&entry.key));
    let signal = id.as_ref().and_then(|id| entry.fail_on(errs, signal(&id.kind)));
    let (receivers, exporters) = pipeline_body(entry, declared, errs);
    let name = id?.name;
    let signal = signal?;
    Some(Pipeline { signal, name, receivers, exporters })
}

type Ids = Vec<ComponentId>;

/// The `receivers` and `exporters` of a pipeline; `processors` must be empty.
fn pipeline_body(entry: &Field<'_>, declared: Declared<'_>, errs: &mut Errors) -> (Ids, Ids) {
    let mut fields = entry.fields(errs);
    let receivers = fields.take_or_null("receivers");
    let receivers = references(&receivers, "receiver", declared.receivers, errs);
    let processors = fields.take_or_null("processors");
    refuse_items(&processors, errs, PROCESSORS_NOT_SUPPORTED);
    let exporters = fields.take_or_null("exporters");
    let exporters = references(&exporters, "exporter", declared.exporters, errs);
    fields.finish(errs);
    (receivers, exporters)
}

fn signal(kind: &str) -> Result<Signal, String> {
    match kind {
        "traces" => Ok(Signal::Traces),
        "metrics" => Ok(Signal::Metrics),
        "logs" => Ok(Signal::Logs),
        _ => Err(format!("unknown signal `{kind}`; use `traces`, `metrics` or `logs`")),
    }
}

/// A pipeline's `receivers` or `exporters`: non-empty, each defined, none twice.
fn references(field: &Field<'_>, what: &str, declared: &BTreeSet<ComponentId>, errs: &mut Errors) -> Vec<ComponentId> {
    let Some(items) = field.list(errs) else {
        return Vec::new();
    };
    if items.is_empty() {
        field.report(errs, format!("at least one {what} is required"));
    }
    let mut ids = Vec::new();
    for item in items {
        if let Some(id) = reference(&item, what, declared, &ids, errs) {
            ids.push(id);
        }
    }
    ids
}

fn reference(
    item: &Field<'_>,
    what: &str,
    declared: &BTreeSet<ComponentId>,
    earlier: &[ComponentId],
    errs: &mut Errors,
) -> Option<ComponentId> {
    let id = item.parsed(errs, parse_component_id)?;
    if !declared.contains(&id) {
        return item.fail(errs, format!("{what} `{id}` is not defined in `{what}s`"));
    }
    if earlier.contains(&id) {
        return item.fail(errs, format!("{what} `{id}` is listed more than once"));
    }
    Some(id)
}

/// A list that must be empty (or null): each item is reported with `message`.
fn refuse_items(field: &Field<'_>, errs: &mut Errors, message: &str) {
    for item in field.list(errs).unwrap_or_default() {
        item.report(errs, message);
    }
}

/// 1 TiB: past any machine's memory, so a larger value is a typo.
const MAX_REQUEST_MEMORY_MIB: u64 = 1 << 20;

/// A configured `request_memory_mib` must hold two of the largest requests: one being read
/// and its split parts (a request over the budget could never be accepted at all).
pub(crate) fn check_request_memory(cfg: &super::Config, errs: &mut Errors) {
    let (Some(memory), largest) = (cfg.runtime.request_memory, cfg.largest_request()) else { return };
    if memory < largest.saturating_mul(2) {
        let need = largest.saturating_mul(2).div_ceil(1 << 20);
        let msg = format!("must be at least {need} MiB: twice the largest request a receiver accepts");
        errs.add("service.runtime.request_memory_mib", &msg);
    }
}

/// `runtime` (ours): `cores: "0-3"` or `cores: [0, 2]`.
fn runtime(field: &Field<'_>, errs: &mut Errors) -> RuntimeConfig {
    let mut fields = field.fields(errs);
    let cores = fields.take("cores").and_then(|c| cores(&c, errs));
    let drain = fields.take("drain_timeout").and_then(|d| d.duration(errs));
    let memory = fields.take("request_memory_mib").and_then(|m| m.uint(errs, 1, MAX_REQUEST_MEMORY_MIB));
    let conns = fields.take("max_connections_per_core").and_then(|c| c.uint(errs, 1, 1 << 24));
    fields.finish(errs);
    let mut runtime = RuntimeConfig::default();
    runtime.cores = cores;
    runtime.drain_timeout = drain.unwrap_or(runtime.drain_timeout);
    runtime.request_memory = memory.and_then(|m| usize::try_from(m << 20).ok());
    runtime.max_connections_per_core = conns.map_or(runtime.max_connections_per_core, |c| c as usize);
    runtime
}

fn cores(field: &Field<'_>, errs: &mut Errors) -> Option<Vec<usize>> {
    match field.value {
        Value::Null => None,
        Value::String(_) => field.parsed(errs, parse_cores),
        Value::Sequence(_) => core_list(field, errs),
        _ => field.fail(errs, "expected a core list such as \"0-3\" or [0, 2]"),
    }
}

fn core_list(field: &Field<'_>, errs: &mut Errors) -> Option<Vec<usize>> {
    let items = field.list(errs)?;
    if items.is_empty() {
        return field.fail(errs, "list at least one core, or leave `cores` out for all cores");
    }
    let max = u64::try_from(MAX_CORE).unwrap_or(u64::MAX);
    let cores: Vec<Option<u64>> = items.iter().map(|c| c.uint(errs, 0, max)).collect();
    let mut cores: Vec<usize> =
        cores.into_iter().collect::<Option<Vec<u64>>>()?.into_iter().filter_map(|c| usize::try_from(c).ok()).collect();
    cores.sort_unstable();
    cores.dedup();
    Some(cores)
}
