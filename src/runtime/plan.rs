//! From config to what every core runs: one listener per OTLP/gRPC receiver, one pipeline per
//! (signal, exporter), one backend pool per exporter; static backends resolved once here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::core::{BackendSet, CoreSpec, ExporterSpec, ListenerKind, ListenerSpec, PipelineSpec};
use super::gateway::StartError;
use crate::compression::Encoding;
use crate::config::{
    ComponentId, Compression, Config, DnsResolver, Exporter, HostPort, LoadBalancing, OtlpReceiver, ReceiverTls,
    ResilienceMode, Resolver, RoutingKey, Signal,
};
use crate::exporter::BackendSettings;
use crate::exporter::call::CallOptions;
use crate::exporter::retry::{QueueLimits, RetryPolicy};
use crate::receiver::auth::BearerAuth;
use crate::receiver::limits::{ConnTimeouts, ProtocolLimits};
use crate::routing::Ring;
use http::{HeaderMap, HeaderName, HeaderValue};

/// What the cores will run, derived from the config's routes.
pub(super) struct Plan {
    pub spec: CoreSpec,
    /// Receiver ids, indexed by `ListenerSpec::receiver`.
    pub ids: Vec<ComponentId>,
    /// The listeners as configured (before port 0 is bound).
    pub listeners: Vec<ListenerSpec>,
    /// Exporter ids, indexed like `spec.exporters`.
    pub exporters: Vec<ComponentId>,
    /// Exporters whose backends come from DNS, by index into `spec.exporters`.
    pub dns: Vec<(usize, DnsResolver)>,
}

/// The plan for `cfg`. Exporters listed in `previous` (a running plan's `exporters`) keep their
/// indexes, so that counters and messages indexed by exporter keep their meaning across a
/// reload; one no longer used stays as an empty slot.
pub(super) fn plan(cfg: &Config, previous: &[ComponentId]) -> Result<Plan, StartError> {
    let (request_memory, max_connections) = (cfg.request_memory(), cfg.runtime.max_connections_per_core);
    let mut spec = CoreSpec {
        listeners: Vec::new(),
        max_connections,
        exporters: Vec::new(),
        pipelines: Vec::new(),
        request_memory,
    };
    spec.exporters = previous
        .iter()
        .map(|id| ExporterSpec { id: id.clone(), used: false, backends: None, settings: Default::default() })
        .collect();
    let (mut exporter_ids, mut ids) = (previous.to_vec(), Vec::new());
    let mut built = vec![false; previous.len()];
    for route in cfg.routes() {
        let (Some(receiver), Some(exporter)) = (cfg.receivers.get(&route.receiver), cfg.exporters.get(&route.exporter))
        else {
            continue;
        };
        let build = || exporter_spec(&route.exporter, exporter);
        let e = index_of(&mut exporter_ids, &route.exporter, build, &mut spec.exporters)?;
        if !built.get(e).copied().unwrap_or(true) {
            spec.exporters[e] = exporter_spec(&route.exporter, exporter)?;
            built[e] = true;
        }
        let pipeline = PipelineSpec { signal: route.signal, key: routing_key(exporter, route.signal), exporter: e };
        let p =
            position_or_push(&mut spec.pipelines, pipeline, |a, b| a.signal == b.signal && a.exporter == b.exporter);
        let r = position_or_push(&mut ids, route.receiver.clone(), |a, b| a == b);
        for listener in listener_specs(cfg, receiver, r)? {
            let l =
                position_or_push(&mut spec.listeners, listener, |a, b| (a.receiver, a.kind) == (b.receiver, b.kind));
            spec.listeners[l].routes[route.signal as usize] = Some(p);
        }
    }
    if spec.listeners.is_empty() {
        return Err(StartError::NoGrpcReceiver);
    }
    let listeners = spec.listeners.clone();
    let used = |i: usize| spec.exporters.get(i).is_some_and(|e| e.used);
    let dns_at = |(i, id): (usize, &ComponentId)| Some((i, dns_of(cfg.exporters.get(id)?)?)).filter(|_| used(i));
    let dns = exporter_ids.iter().enumerate().filter_map(dns_at).collect();
    Ok(Plan { spec, ids, listeners, exporters: exporter_ids, dns })
}

/// The index of `id` in `ids`, building and pushing its value on first sight.
fn index_of<T>(
    ids: &mut Vec<ComponentId>,
    id: &ComponentId,
    build: impl FnOnce() -> Result<T, StartError>,
    values: &mut Vec<T>,
) -> Result<usize, StartError> {
    if let Some(i) = ids.iter().position(|x| x == id) {
        return Ok(i);
    }
    values.push(build()?);
    ids.push(id.clone());
    Ok(ids.len() - 1)
}

fn position_or_push<T>(values: &mut Vec<T>, value: T, same: impl Fn(&T, &T) -> bool) -> usize {
    values.iter().position(|v| same(v, &value)).unwrap_or_else(|| {
        values.push(value);
        values.len() - 1
    })
}

/// The receiver's listeners: its gRPC server, then its HTTP server, as configured.
fn listener_specs(cfg: &Config, receiver: &OtlpReceiver, index: usize) -> Result<Vec<ListenerSpec>, StartError> {
    let mut specs = Vec::new();
    if let Some(g) = &receiver.grpc {
        let limits = (g.max_recv_msg_size, g.max_concurrent_streams, Duration::ZERO);
        let mut spec = listener(ListenerKind::Grpc, index, &g.endpoint, limits)?;
        let k = g.keepalive;
        spec.timeouts = ConnTimeouts {
            idle: k.max_connection_idle,
            max_age: k.max_connection_age,
            age_grace: k.max_connection_age_grace,
        };
        spec.limits = g.limits;
        spec.auth = authenticator(cfg, g.auth.as_ref())?;
        spec.tls = server_tls(&g.tls);
        specs.push(spec);
    }
    if let Some(h) = &receiver.http {
        let limits = (h.max_request_body_size, h.max_concurrent_streams, h.read_header_timeout);
        let mut spec = listener(ListenerKind::Http, index, &h.endpoint, limits)?;
        spec.timeouts = ConnTimeouts { idle: Some(h.idle_timeout), ..Default::default() };
        spec.limits = h.limits;
        spec.auth = authenticator(cfg, h.auth.as_ref())?;
        spec.tls = server_tls(&h.tls);
        specs.push(spec);
    }
    Ok(specs)
}

fn server_tls(tls: &Option<ReceiverTls>) -> Option<Arc<crate::tls::ServerConfig>> {
    tls.as_ref().map(|t| t.built.config.clone())
}

/// The authenticator `id` names, its token file read now (at start, and on every reload).
fn authenticator(cfg: &Config, id: Option<&ComponentId>) -> Result<Option<Arc<BearerAuth>>, StartError> {
    let Some(ext) = id.and_then(|id| cfg.authenticators.get(id)) else { return Ok(None) };
    Ok(Some(Arc::new(BearerAuth::from_config(ext)?)))
}

/// One listener; `limits` are (max_recv, max_streams, header_timeout).
fn listener(
    kind: ListenerKind,
    receiver: usize,
    endpoint: &HostPort,
    (max_recv, max_streams, header_timeout): (usize, u32, Duration),
) -> Result<ListenerSpec, StartError> {
    let addr = resolve_one("receiver endpoint", endpoint)?;
    let (timeouts, auth) = (ConnTimeouts::default(), None);
    let (routes, limits) = ([None; 3], ProtocolLimits::default());
    Ok(ListenerSpec {
        kind,
        receiver,
        addr,
        max_recv,
        max_streams,
        header_timeout,
        timeouts,
        limits,
        auth,
        routes,
        tls: None,
    })
}

fn exporter_spec(id: &ComponentId, exporter: &Exporter) -> Result<ExporterSpec, StartError> {
    let settings = match exporter {
        Exporter::LoadBalancing(lb) => BackendSettings {
            timeout: lb.protocol.timeout,
            retry: RetryPolicy::from_config(&lb.retry),
            queue: lb.queue.enabled.then(|| QueueLimits::from_config(&lb.queue)),
            eject_after: lb.resilience.eject_after,
            probe_interval: lb.resilience.probe_interval,
            failover: lb.resilience.mode == ResilienceMode::Failover,
            coalesce: lb.coalesce,
            ..Default::default()
        },
        Exporter::Otlp(otlp) => BackendSettings { timeout: otlp.timeout, ..Default::default() },
    };
    let protocol = match exporter {
        Exporter::LoadBalancing(lb) => &lb.protocol,
        Exporter::Otlp(otlp) => otlp,
    };
    let call = CallOptions::new(encoding(protocol.compression), header_map(&protocol.headers));
    let tls = protocol.tls.as_ref().map(|t| t.backend.clone());
    let settings = BackendSettings { call, tls, ..settings };
    Ok(ExporterSpec { id: id.clone(), used: true, backends: backend_set(exporter)?, settings })
}

fn encoding(c: Compression) -> Encoding {
    match c {
        Compression::None => Encoding::Identity,
        Compression::Gzip => Encoding::Gzip,
        Compression::Zstd => Encoding::Zstd,
        Compression::Snappy => Encoding::Snappy,
    }
}

/// The configured headers (names and values were checked when the config was parsed).
fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let parse =
        |(k, v): &(String, String)| Some((HeaderName::from_bytes(k.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?));
    headers.iter().filter_map(parse).collect()
}

fn routing_key(exporter: &Exporter, signal: Signal) -> RoutingKey {
    match exporter {
        Exporter::LoadBalancing(lb) => lb.key_for(signal),
        Exporter::Otlp(_) => RoutingKey::default_for(signal),
    }
}

fn dns_of(exporter: &Exporter) -> Option<DnsResolver> {
    match exporter {
        Exporter::LoadBalancing(LoadBalancing { resolver: Resolver::Dns(dns), .. }) => Some(dns.clone()),
        _ => None,
    }
}

/// The ring and addresses for a static backend list, resolved once here on the control plane;
/// `None` for DNS (the resolver sends sets later) or an empty list.
fn backend_set(exporter: &Exporter) -> Result<Option<Arc<BackendSet>>, StartError> {
    let Some(hosts) = exporter.static_backends() else { return Ok(None) };
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let Ok(ring) = Ring::new(&names) else {
        return Ok(None);
    };
    let addrs = ring.backends().iter().map(|name| resolve_name("backend", name)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Arc::new(BackendSet { ring, addrs })))
}

pub(super) fn resolve_one(what: &'static str, hp: &HostPort) -> Result<SocketAddr, StartError> {
    let host = if hp.host.is_empty() { "0.0.0.0" } else { hp.host.as_str() };
    resolve_name(what, &HostPort { host: host.to_string(), port: hp.port }.to_string())
}

fn resolve_name(what: &'static str, name: &str) -> Result<SocketAddr, StartError> {
    let err = |reason: String| StartError::Resolve { what, addr: name.to_string(), reason };
    let mut addrs = name.to_socket_addrs().map_err(|e| err(e.to_string()))?;
    addrs.next().ok_or_else(|| err("no addresses".into()))
}
