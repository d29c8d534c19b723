//! `otlp-gateway print-config`: the effective configuration, every default filled in, in the
//! collector's YAML shape, with secrets masked.

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::model::*;
use super::telemetry::{LogEncoding, LogLevel, MetricsLevel, TelemetryConfig};

/// What a masked value reads as.
pub const MASK: &str = "[REDACTED]";

/// Keys whose values are secrets wherever they appear (a mapping under one, such as
/// `headers`, has every value masked).
const SECRET_KEYS: &[&str] = &[
    "headers",
    "auth",
    "authorization",
    "token",
    "tokens",
    "bearer_token",
    "password",
    "api_key",
    "key_pem",
    "client_secret",
];

/// The effective configuration as YAML text.
pub fn effective_yaml(cfg: &Config) -> String {
    let mut value = effective(cfg);
    mask_secrets(&mut value);
    serde_yaml::to_string(&value).unwrap_or_default()
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        if !v.is_null() {
            m.insert(Value::from(k), v);
        }
    }
    Value::Mapping(m)
}

fn text(s: impl ToString) -> Value {
    Value::String(s.to_string())
}

fn list<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Sequence(items.iter().map(f).collect())
}

/// Go-style duration: `5s`, `500ms`.
fn duration(d: Duration) -> Value {
    let ms = d.as_millis();
    if ms % 1000 == 0 { text(format!("{}s", ms / 1000)) } else { text(format!("{ms}ms")) }
}

fn effective(cfg: &Config) -> Value {
    let receivers = cfg.receivers.iter().map(|(id, r)| (text(id), receiver(r))).collect::<Mapping>();
    let exporters = cfg.exporters.iter().map(|(id, e)| (text(id), exporter(e))).collect::<Mapping>();
    let health = cfg.telemetry.health_check.as_ref();
    let mut extensions = Mapping::new();
    if let Some(h) = health {
        extensions.insert(text("health_check"), map([("endpoint", text(&h.endpoint)), ("path", text(&h.path))]));
    }
    cfg.authenticators.iter().for_each(|(id, a)| drop(extensions.insert(text(id), bearer_token_auth(a))));
    let extensions = if extensions.is_empty() { Value::Null } else { Value::Mapping(extensions) };
    map([
        ("receivers", Value::Mapping(receivers)),
        ("exporters", Value::Mapping(exporters)),
        ("extensions", extensions),
        ("service", service(cfg)),
    ])
}

fn receiver(r: &OtlpReceiver) -> Value {
    let grpc = r.grpc.as_ref().map_or(Value::Null, |g| {
        let grpc = map([
            ("endpoint", text(&g.endpoint)),
            ("max_recv_msg_size_mib", Value::from(g.max_recv_msg_size >> 20)),
            ("max_concurrent_streams", Value::from(g.max_concurrent_streams)),
            ("tls", g.tls.as_ref().map_or(Value::Null, receiver_tls)),
            ("keepalive", keepalive(&g.keepalive)),
            ("auth", auth(g.auth.as_ref())),
        ]);
        with_limits(grpc, &g.limits)
    });
    let http = r.http.as_ref().map_or(Value::Null, |h| {
        let http = map([
            ("endpoint", text(&h.endpoint)),
            ("max_request_body_size", Value::from(h.max_request_body_size)),
            ("read_header_timeout", duration(h.read_header_timeout)),
            ("max_concurrent_streams", Value::from(h.max_concurrent_streams)),
            ("idle_timeout", duration(h.idle_timeout)),
            ("auth", auth(h.auth.as_ref())),
            ("tls", h.tls.as_ref().map_or(Value::Null, receiver_tls)),
        ]);
        with_limits(http, &h.limits)
    });
    map([("protocols", map([("grpc", grpc), ("http", http)]))])
}

/// A server's map with its protocol limits added.
fn with_limits(mut server: Value, l: &ProtocolLimits) -> Value {
    let http2 = map([
        ("max_header_list_size", Value::from(l.max_header_list_size)),
        ("max_frame_size", Value::from(l.max_frame_size)),
        ("max_pending_reset_streams", Value::from(l.max_pending_reset_streams)),
        ("max_local_reset_streams", Value::from(l.max_local_reset_streams)),
        ("max_control_frames", Value::from(l.max_control_frames)),
    ]);
    if let Value::Mapping(m) = &mut server {
        m.insert(text("handshake_timeout"), duration(l.handshake_timeout));
        m.insert(text("read_timeout"), duration(l.read_timeout));
        m.insert(text("http2"), http2);
    }
    server
}

/// `keepalive.server_parameters`; an idle limit of never reads `0s` (absent is the default).
fn keepalive(k: &Keepalive) -> Value {
    let idle = k.max_connection_idle.map_or(text("0s"), duration);
    let params = map([
        ("max_connection_idle", idle),
        ("max_connection_age", k.max_connection_age.map_or(Value::Null, duration)),
        ("max_connection_age_grace", k.max_connection_age_grace.map_or(Value::Null, duration)),
    ]);
    map([("server_parameters", params)])
}

fn auth(id: Option<&ComponentId>) -> Value {
    id.map_or(Value::Null, |id| map([("authenticator", text(id))]))
}

fn bearer_token_auth(a: &BearerTokenAuth) -> Value {
    let (tokens, filename) = match &a.tokens {
        TokenSource::Inline(t) => (list(t, |s| text(s)), Value::Null),
        TokenSource::File(f) => (Value::Null, text(f.display())),
    };
    map([("scheme", text(&a.scheme)), ("header", text(&a.header)), ("tokens", tokens), ("filename", filename)])
}

fn exporter(e: &Exporter) -> Value {
    match e {
        Exporter::Otlp(o) => otlp(o),
        Exporter::LoadBalancing(lb) => {
            let (key, attributes) = match &lb.routing_key {
                Some(RoutingKey::Attributes(a)) => (text("attributes"), list(a, |s| text(s))),
                Some(k) => (text(k.name()), Value::Null),
                None => (Value::Null, Value::Null),
            };
            map([
                ("routing_key", key),
                ("routing_attributes", attributes),
                ("protocol", map([("otlp", otlp(&lb.protocol))])),
                ("resolver", resolver(&lb.resolver)),
                ("retry_on_failure", retry(&lb.retry)),
                ("sending_queue", queue(&lb.queue)),
                ("resilience", resilience(&lb.resilience)),
                ("coalesce", coalesce(&lb.coalesce)),
            ])
        }
    }
}

fn coalesce(c: &CoalesceLimits) -> Value {
    let mib = c.max_bytes >> 20;
    map([("max_in_flight", Value::from(c.max_in_flight)), ("max_size_mib", Value::from(mib))])
}

fn retry(r: &super::RetryOnFailure) -> Value {
    map([
        ("enabled", Value::from(r.enabled)),
        ("initial_interval", duration(r.initial_interval)),
        ("max_interval", duration(r.max_interval)),
        ("max_elapsed_time", duration(r.max_elapsed_time)),
        ("multiplier", Value::from(r.multiplier)),
        ("randomization_factor", Value::from(r.randomization_factor)),
    ])
}

fn resilience(r: &super::Resilience) -> Value {
    let mode = match r.mode {
        super::ResilienceMode::Failover => "failover",
        super::ResilienceMode::Hold => "hold",
    };
    map([
        ("mode", text(mode)),
        ("eject_after", Value::from(r.eject_after)),
        ("probe_interval", duration(r.probe_interval)),
    ])
}

fn queue(q: &super::SendingQueue) -> Value {
    map([
        ("enabled", Value::from(q.enabled)),
        ("queue_size", Value::from(q.queue_size as u64)),
        ("num_consumers", Value::from(q.num_consumers as u64)),
        ("max_size_mib", Value::from((q.max_bytes >> 20) as u64)),
    ])
}

fn otlp(o: &OtlpExporter) -> Value {
    let compression = match o.compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::Snappy => "snappy",
    };
    map([
        ("endpoint", o.endpoint.as_ref().map_or(Value::Null, text)),
        ("compression", text(compression)),
        ("headers", Value::Mapping(o.headers.iter().map(|(k, v)| (text(k), text(v))).collect())),
        ("timeout", duration(o.timeout)),
        ("tls", o.tls.as_ref().map_or_else(|| map([("insecure", Value::from(true))]), exporter_tls)),
    ])
}

fn path(p: &Option<std::path::PathBuf>) -> Value {
    p.as_ref().map_or(Value::Null, |p| text(p.display()))
}

fn receiver_tls(t: &ReceiverTls) -> Value {
    map([
        ("cert_file", text(t.cert_file.display())),
        ("key_file", text(t.key_file.display())),
        ("client_ca_file", path(&t.client_ca_file)),
        ("min_version", text(t.min_version.name())),
        ("max_version", text(t.max_version.name())),
    ])
}

fn exporter_tls(t: &ExporterTls) -> Value {
    map([
        ("insecure", Value::from(false)),
        ("ca_file", path(&t.ca_file)),
        ("cert_file", path(&t.cert_file)),
        ("key_file", path(&t.key_file)),
        ("insecure_skip_verify", Value::from(t.insecure_skip_verify)),
        ("server_name_override", t.server_name_override.as_ref().map_or(Value::Null, text)),
        ("min_version", text(t.min_version.name())),
        ("max_version", text(t.max_version.name())),
    ])
}

fn resolver(r: &Resolver) -> Value {
    match r {
        Resolver::Static { hostnames } => map([("static", map([("hostnames", list(hostnames, |h| text(h)))]))]),
        Resolver::Dns(d) => {
            let record = match d.record_type {
                DnsRecordType::Ip => "ip",
                DnsRecordType::Srv => "srv",
            };
            let port = if d.record_type == DnsRecordType::Ip { text(d.port) } else { Value::Null };
            let dns = map([
                ("hostname", text(&d.hostname)),
                ("port", port),
                ("interval", duration(d.interval)),
                ("timeout", duration(d.timeout)),
                ("nameserver", d.nameserver.map_or(Value::Null, text)),
                ("record_type", text(record)),
            ]);
            map([("dns", dns)])
        }
    }
}

fn service(cfg: &Config) -> Value {
    let pipelines = cfg.pipelines.iter().map(|p| (text(pipeline_id(p)), pipeline(p))).collect::<Mapping>();
    let health = cfg.telemetry.health_check.is_some().then(|| "health_check".to_string());
    let ids: Vec<String> = health.into_iter().chain(cfg.authenticators.keys().map(|id| id.to_string())).collect();
    let extensions = if ids.is_empty() { Value::Null } else { list(&ids, |s| text(s)) };
    let cores = cfg.runtime.cores.as_ref().map_or(Value::Null, |c| list(c, |c| Value::from(*c)));
    let memory = Value::from((cfg.request_memory() >> 20) as u64);
    let runtime = map([
        ("cores", cores),
        ("drain_timeout", duration(cfg.runtime.drain_timeout)),
        ("request_memory_mib", memory),
        ("max_connections_per_core", Value::from(cfg.runtime.max_connections_per_core)),
    ]);
    map([
        ("extensions", extensions),
        ("pipelines", Value::Mapping(pipelines)),
        ("telemetry", telemetry(&cfg.telemetry)),
        ("runtime", runtime),
    ])
}

fn pipeline_id(p: &Pipeline) -> String {
    match &p.name {
        Some(n) => format!("{}/{n}", p.signal.name()),
        None => p.signal.name().to_string(),
    }
}

fn pipeline(p: &Pipeline) -> Value {
    map([("receivers", list(&p.receivers, |s| text(s))), ("exporters", list(&p.exporters, |s| text(s)))])
}

fn telemetry(t: &TelemetryConfig) -> Value {
    let level = match t.metrics.level {
        MetricsLevel::None => "none",
        MetricsLevel::Basic => "basic",
        MetricsLevel::Normal => "normal",
        MetricsLevel::Detailed => "detailed",
    };
    let e = &t.metrics.endpoint;
    let prometheus = map([("host", text(&e.host)), ("port", Value::from(e.port))]);
    let readers = Value::Sequence(vec![map([("pull", map([("exporter", map([("prometheus", prometheus)]))]))])]);
    let logs = map([("level", text(log_level(t.logs.level))), ("encoding", text(log_encoding(t.logs.encoding)))]);
    map([("metrics", map([("level", text(level)), ("readers", readers)])), ("logs", logs)])
}

fn log_level(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    }
}

fn log_encoding(e: LogEncoding) -> &'static str {
    match e {
        LogEncoding::Console => "console",
        LogEncoding::Json => "json",
    }
}

/// Replaces the value of every [`SECRET_KEYS`] key (at any depth) with [`MASK`].
pub fn mask_secrets(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                if k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k)) {
                    mask_all(v);
                } else {
                    mask_secrets(v);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Masks every value under a secret key but an `authenticator`, which names an extension.
fn mask_all(value: &mut Value) {
    match value {
        Value::Mapping(m) => {
            m.iter_mut().filter(|(k, _)| k.as_str() != Some("authenticator")).for_each(|(_, v)| mask_all(v))
        }
        Value::Sequence(items) => items.iter_mut().for_each(mask_all),
        other => *other = text(MASK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let yaml = "exporters:\n  otlp:\n    headers:\n      x-api-key: s3cret\n      other: [a, b]\n    auth: {token: t0k}\n    endpoint: collector:4317\nlist:\n  - password: hunter2\n";
        let mut value: Value = serde_yaml::from_str(yaml).unwrap();
        mask_secrets(&mut value);
        let out = serde_yaml::to_string(&value).unwrap();
        for secret in ["s3cret", "t0k", "hunter2", "- a"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert_eq!(out.matches(MASK).count(), 5, "{out}");
        assert!(out.contains("endpoint: collector:4317"), "{out}");
    }

    #[test]
    fn durations_print_as_go_durations() {
        assert_eq!(duration(Duration::from_secs(5)), text("5s"));
        assert_eq!(duration(Duration::from_millis(1500)), text("1500ms"));
    }
}
