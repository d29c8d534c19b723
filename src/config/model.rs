//! Typed configuration: what the YAML becomes once it has been parsed and checked.
//!
//! Every value here is already valid; the data path never re-checks config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::exporter::coalesce::CoalesceLimits;
pub use crate::receiver::limits::ProtocolLimits;
use crate::tls::{BackendTls, Built, ServerConfig, TlsVersion};

/// A component id in the collector's `type[/name]` form, e.g. `otlp` or `loadbalancing/traces`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    pub kind: String,
    pub name: Option<String>,
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.kind, n),
            None => f.write_str(&self.kind),
        }
    }
}

/// `host:port`. The host is kept as text: it may be a name resolved later.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub receivers: BTreeMap<ComponentId, OtlpReceiver>,
    pub exporters: BTreeMap<ComponentId, Exporter>,
    pub pipelines: Vec<Pipeline>,
    pub runtime: RuntimeConfig,
    /// `service.telemetry` and the `health_check` extension.
    pub telemetry: super::telemetry::TelemetryConfig,
    /// `bearertokenauth` extensions listed in `service.extensions`, by id.
    pub authenticators: BTreeMap<ComponentId, BearerTokenAuth>,
}

/// `receivers.otlp[/name]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpReceiver {
    pub grpc: Option<GrpcServer>,
    /// OTLP/HTTP: accepted in config now, served by a later release.
    pub http: Option<HttpServer>,
}

/// `receivers.otlp.protocols.grpc`.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcServer {
    /// Default `localhost:4317`, as in the collector.
    pub endpoint: HostPort,
    /// `max_recv_msg_size_mib`, in bytes. Default 4 MiB. Size it to the largest batch a client
    /// sends; every in-flight request may hold this much memory on a core.
    pub max_recv_msg_size: usize,
    /// `max_concurrent_streams`; default 1024 per connection.
    pub max_concurrent_streams: u32,
    /// `tls`: serve TLS (ALPN `h2`); absent: plaintext h2c.
    pub tls: Option<ReceiverTls>,
    /// `auth.authenticator`: the `bearertokenauth` extension every request must satisfy.
    pub auth: Option<ComponentId>,
    /// `keepalive.server_parameters`.
    pub keepalive: Keepalive,
    /// `handshake_timeout`, `read_timeout` and `http2` (ours).
    pub limits: ProtocolLimits,
}

/// `receivers.otlp.protocols.http`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpServer {
    /// Default `localhost:4318`.
    pub endpoint: HostPort,
    /// `max_request_body_size`, in bytes, applied to the body as sent and again after
    /// decompression. Default 20 MiB, as in the collector. Size it to the largest batch a
    /// client sends; every in-flight request may hold this much memory on a core.
    pub max_request_body_size: usize,
    /// `read_header_timeout`: how long a connection may take to send a request's headers,
    /// counted from when it starts waiting for them, so it also closes idle keep-alive
    /// connections. Default 1m, as in the collector.
    pub read_header_timeout: std::time::Duration,
    /// `auth.authenticator`, as for gRPC.
    pub auth: Option<ComponentId>,
    /// `idle_timeout`: a connection with no request in flight for this long is closed.
    /// Default 1m, as in the collector.
    pub idle_timeout: std::time::Duration,
    /// `tls`: serve TLS (ALPN `h2` and `http/1.1`); absent: plaintext.
    pub tls: Option<ReceiverTls>,
    /// `max_concurrent_streams` (ours): HTTP/2 streams per h2c or TLS `h2` connection, as
    /// for gRPC; default 1024.
    pub max_concurrent_streams: u32,
    /// `handshake_timeout` (TLS only), `read_timeout` (the collector's key, applied to the
    /// body) and `http2` (h2c and TLS `h2`).
    pub limits: ProtocolLimits,
}

/// A receiver's `tls`: the server certificate, and client verification when
/// `client_ca_file` is set. Certificates are re-read on every reload (SIGHUP).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverTls {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, RSA or EC) of the leaf certificate.
    pub key_file: PathBuf,
    /// `client_ca_file`: mutual TLS. Clients must present a certificate issued by one of
    /// these CAs; a client without one fails the handshake.
    pub client_ca_file: Option<PathBuf>,
    /// Default 1.2, as in the collector; 1.3 refuses clients that cannot speak it.
    pub min_version: TlsVersion,
    /// Default 1.3 (the highest).
    pub max_version: TlsVersion,
    /// The rustls config built from the files when the config was loaded.
    pub built: Built<ServerConfig>,
}

/// An exporter's TLS to its backends (`tls.insecure: false`, the collector's default).
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterTls {
    /// CAs that backends' certificates must chain to; absent: the system's CA store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, for backends that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept any backend certificate: encrypted, but not authenticated. For tests only.
    pub insecure_skip_verify: bool,
    /// The name sent as SNI and verified in backends' certificates, instead of each backend's
    /// host. Needed with the DNS resolver, whose backends are IP addresses.
    pub server_name_override: Option<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// The client config (one per exporter, shared by its backends on every core).
    pub backend: BackendTls,
}

/// Which signal a pipeline carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The config spelling (`traces`, `metrics`, `logs`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

/// `service.pipelines.<signal>[/name]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub signal: Signal,
    pub name: Option<String>,
    pub receivers: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

/// An exporter: the load balancer, or a plain single-destination OTLP exporter.
// Built once per config load and never on the data path: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Exporter {
    /// `loadbalancing` or `load_balancing`.
    LoadBalancing(LoadBalancing),
    /// `otlp`: everything goes to one endpoint (a ring of one).
    Otlp(OtlpExporter),
}

/// `exporters.loadbalancing`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancing {
    /// `None`: the default of each pipeline's signal (see `RoutingKey::default_for`).
    pub routing_key: Option<RoutingKey>,
    pub protocol: OtlpExporter,
    pub resolver: Resolver,
    /// `retry_on_failure`: re-sending a failed part to its backend.
    pub retry: super::RetryOnFailure,
    /// `sending_queue`: where failed parts wait for their retries.
    pub queue: super::SendingQueue,
    /// `resilience` (our extension): ejection, probes, failover or hold.
    pub resilience: super::Resilience,
    /// `coalesce` (our extension): parts for one backend sent together under load.
    pub coalesce: CoalesceLimits,
}

impl LoadBalancing {
    /// The key this exporter routes `signal` by.
    pub fn key_for(&self, signal: Signal) -> RoutingKey {
        self.routing_key.clone().unwrap_or_else(|| RoutingKey::default_for(signal))
    }
}

/// What the ring is keyed by: the collector's `routing_key` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingKey {
    /// `traceID`: all spans of a trace (and logs carrying its id) meet on one backend.
    TraceId,
    /// `service`: all data of one `service.name` meets on one backend.
    Service,
    /// `resource`: all data of one resource (its attribute set) meets on one backend.
    Resource,
    /// `metric`: all points of one metric name meet on one backend.
    Metric,
    /// `streamID`: each metric stream (resource, scope, metric, point attributes) has one
    /// writer downstream.
    StreamId,
    /// `attributes` with `routing_attributes`: the listed attributes of the span, log record
    /// or data point, else of its resource.
    Attributes(Vec<String>),
}

impl RoutingKey {
    /// The collector's defaults: `traceID` for traces, `service` for metrics and logs.
    pub fn default_for(signal: Signal) -> RoutingKey {
        match signal {
            Signal::Traces => RoutingKey::TraceId,
            Signal::Metrics | Signal::Logs => RoutingKey::Service,
        }
    }

    /// Whether this key applies to `signal`.
    pub fn applies_to(&self, signal: Signal) -> bool {
        match self {
            RoutingKey::TraceId => signal != Signal::Metrics,
            RoutingKey::Metric | RoutingKey::StreamId => signal == Signal::Metrics,
            RoutingKey::Service | RoutingKey::Resource | RoutingKey::Attributes(_) => true,
        }
    }

    /// The config spelling.
    pub fn name(&self) -> &'static str {
        match self {
            RoutingKey::TraceId => "traceID",
            RoutingKey::Service => "service",
            RoutingKey::Resource => "resource",
            RoutingKey::Metric => "metric",
            RoutingKey::StreamId => "streamID",
            RoutingKey::Attributes(_) => "attributes",
        }
    }
}

/// `protocol.otlp` of the load balancer, or a whole `otlp` exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpExporter {
    /// Only for the plain `otlp` exporter; the load balancer takes endpoints from its resolver.
    pub endpoint: Option<HostPort>,
    /// `compression` of export requests (`grpc-encoding`). Default gzip, as in the collector:
    /// 5-10x fewer bytes for about 1 ms of a core per MB (docs/benchmarks.md); `zstd` halves
    /// that CPU where backends accept it, `none` spends none when the network is free.
    pub compression: Compression,
    /// `headers` sent on every export request (names lowercase), in config order.
    pub headers: Vec<(String, String)>,
    /// Per-request deadline to the backend. Default 5s. Keep it below the client's own deadline
    /// so the client hears our status rather than its own timeout.
    pub timeout: Duration,
    /// `tls`: `None` for plaintext h2c (`tls.insecure: true` or an `http://` endpoint).
    pub tls: Option<ExporterTls>,
}

/// `protocol.otlp.compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Snappy,
}

/// `resolver`: where the backend list comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolver {
    /// `static.hostnames`; a missing port defaults to 4317.
    Static { hostnames: Vec<HostPort> },
    /// `dns`: re-resolved on the control plane by `crate::resolver`.
    Dns(DnsResolver),
}

/// `resolver.dns`: the collector's keys plus our `nameserver` and `record_type`.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsResolver {
    /// The name to resolve, e.g. `collectors.example.com`, or `_otlp._tcp.collectors.example.com`
    /// with `record_type: srv`. Without a trailing dot the system's search domains apply.
    pub hostname: String,
    /// The backends' port for A/AAAA answers. Default 4317. Not used (and not allowed) with SRV,
    /// whose records carry their own ports.
    pub port: u16,
    /// How often to re-resolve. Default 5s. A backend added to DNS takes up to this long (plus
    /// the DNS server's own propagation) to receive traffic; each refresh costs one query per
    /// record type (plus one per SRV target), so 1s is cheap for a local server.
    pub interval: Duration,
    /// Bound on one whole refresh (all of its queries). Default 1s. Keep it below `interval`;
    /// a refresh that times out keeps the last good list.
    pub timeout: Duration,
    /// Extension: query this server (`ip:port`, port default 53) directly instead of the ones in
    /// /etc/resolv.conf, without search domains, e.g. a local Consul agent at `127.0.0.1:8600`.
    /// An IP address, not a name: the server that resolves names cannot itself be found by name.
    pub nameserver: Option<std::net::SocketAddr>,
    /// Extension: which records list the backends. Default `ip` (A and AAAA, at `port`).
    pub record_type: DnsRecordType,
}

/// `resolver.dns.record_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsRecordType {
    /// `ip`: A and AAAA records; every address gets `port`.
    #[default]
    Ip,
    /// `srv`: SRV records; each target's A and AAAA addresses get that record's port. Use it
    /// when backends listen on different ports (e.g. several collectors on one host, or Consul's
    /// `_name._tcp.service.consul`). Priority and weight are ignored: the ring balances by key.
    Srv,
}

/// `service.runtime` (an extension of ours): where the data plane runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// `cores: "0-3"` or `cores: [0, 2]`; `None` = every online core.
    pub cores: Option<Vec<usize>>,
    /// `drain_timeout`, default 10s: on SIGTERM, how long to answer in-flight requests and
    /// empty the retry queues before exiting (what is left is logged with counts). Keep it
    /// below the supervisor's kill timeout (systemd `TimeoutStopSec`, Kubernetes
    /// `terminationGracePeriodSeconds`). Applies from start; a reload does not change it.
    pub drain_timeout: Duration,
    /// `request_memory_mib` (ours), in bytes: request bodies, their split parts and decoded
    /// copies a core holds until answered. Past it, clients get `RESOURCE_EXHAUSTED` / 429.
    /// With the retry queues' `max_size_mib` it bounds a core's data memory under any overload.
    /// Size it to (requests in flight per core) × (typical request size) × 2 (a request and
    /// its parts); it must hold at least two of the largest requests a receiver accepts.
    /// Default (`None`): 256 MiB, or 4 × the largest request if that is more.
    pub request_memory: Option<usize>,
    /// `max_connections_per_core`, default 4096: client connections one core holds over all
    /// receivers; past it, new connections are closed on accept. Size it to clients ÷ cores,
    /// with room for reconnect storms; each connection costs about 100 KiB.
    pub max_connections_per_core: usize,
}

/// Default `service.runtime.drain_timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cores: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            request_memory: None,
            max_connections_per_core: crate::receiver::limits::DEFAULT_MAX_CONNECTIONS_PER_CORE,
        }
    }
}

/// gRPC `keepalive.server_parameters`: when the server sends GOAWAY. `None` is never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// `max_connection_idle`, default 5m (gRPC's is never): no request in flight that long.
    pub max_connection_idle: Option<Duration>,
    /// `max_connection_age`, default never: spreads long-lived clients over cores and gateways.
    pub max_connection_age: Option<Duration>,
    /// `max_connection_age_grace`, default 30s (gRPC's is never): how long requests in flight
    /// after an age or idle GOAWAY may take before the connection is closed; also bounds a
    /// client that never acknowledges the GOAWAY. Size it above the longest request.
    pub max_connection_age_grace: Option<Duration>,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            max_connection_idle: Some(crate::receiver::limits::DEFAULT_MAX_CONNECTION_IDLE),
            max_connection_age: None,
            max_connection_age_grace: None,
        }
    }
}

/// `extensions.bearertokenauth[/name]`, server side: requests must carry
/// `<header>: <scheme> <token>` with one of the tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerTokenAuth {
    /// `scheme`, default `Bearer`; empty: the header holds the bare token.
    pub scheme: String,
    /// `header`, default `authorization`.
    pub header: String,
    pub tokens: TokenSource,
}

/// Where a `bearertokenauth` extension's tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `token` or `tokens`: several are accepted at once, so they can be rotated.
    Inline(Vec<String>),
    /// `filename`: one token per line, read at start and again on every reload (SIGHUP).
    File(std::path::PathBuf),
}
