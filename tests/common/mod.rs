//! Shared helpers for integration tests: one in-process sink, one config builder, one
//! client. Everything binds 127.0.0.1:0 and stops by itself.
#![allow(dead_code)]

pub mod attack;
pub mod certs;
pub mod http1;
pub mod traces;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use h2::client::SendRequest;
use otlp_gateway::Gateway;
use otlp_gateway::config::{self, Config};
use otlp_gateway::exporter::{ExportError, call};
use otlp_gateway::grpc::{Code, TRACE_EXPORT};
use otlp_gateway::tools::sink::Sink;

/// `n` sink listeners on loopback, recording trace ids.
pub fn sinks(n: usize) -> Sink {
    let listen = vec![SocketAddr::from(([127, 0, 0, 1], 0)); n];
    Sink::start(&listen, Placement::Unbound, true).expect("sinks start")
}

/// Builds a gateway config in the collector's YAML shape: one pipeline per signal, each with
/// its own `loadbalancing/<signal>` exporter over the same backends.
pub struct ConfigBuilder {
    backends: Vec<String>,
    /// (signal, routing_key) per pipeline; `None` keeps the signal's default key.
    pipelines: Vec<(&'static str, Option<String>)>,
    max_recv_mib: Option<u32>,
    timeout: &'static str,
    /// (nameserver, hostname, interval) for the DNS resolver instead of a static list.
    dns: Option<(SocketAddr, String, &'static str)>,
    /// `service.telemetry` body (indented 4); by default metrics on 127.0.0.1:0.
    telemetry: String,
    /// Enables the health check extension on 127.0.0.1:0.
    health_check: bool,
    /// Extra keys of every exporter (YAML indented by 4), e.g. `retry_on_failure`.
    exporter_extra: String,
    /// `service.runtime` keys, indented 4.
    runtime: String,
    /// Adds an OTLP/HTTP server on 127.0.0.1:0 with this `max_request_body_size` (or the default).
    http: Option<Option<u64>>,
    /// Extra `protocols.http` lines, indented 8.
    http_extra: String,
    /// Extra `protocol.otlp` lines (e.g. `headers: {...}`), indented 8.
    otlp_extra: String,
    /// Extra `protocols.grpc` lines, indented 8.
    grpc_extra: String,
    /// Extra extensions: (id, body indented 4), each listed in `service.extensions`.
    extensions: Vec<(String, String)>,
    /// `protocol.otlp.compression`; `None` leaves the gateway's default (gzip). Tests default to
    /// `none`: load tests run debug builds, where gzip costs many times what it does in release.
    compression: Option<&'static str>,
}

impl ConfigBuilder {
    pub fn new(backends: &[SocketAddr]) -> Self {
        ConfigBuilder {
            backends: backends.iter().map(|a| a.to_string()).collect(),
            pipelines: vec![("traces", Some("traceID".into()))],
            max_recv_mib: None,
            timeout: "5s",
            dns: None,
            telemetry: "    metrics:\n      address: 127.0.0.1:0\n".into(),
            health_check: false,
            exporter_extra: String::new(),
            runtime: String::new(),
            http: None,
            http_extra: String::new(),
            otlp_extra: String::new(),
            grpc_extra: String::new(),
            extensions: Vec::new(),
            compression: Some("none"),
        }
    }

    /// Replaces the `service.telemetry` body (YAML indented by 4 spaces).
    pub fn telemetry(mut self, body: &str) -> Self {
        self.telemetry = body.to_string();
        self
    }

    /// Enables the `health_check` extension on 127.0.0.1:0.
    pub fn health_check(mut self) -> Self {
        self.health_check = true;
        self
    }

    /// Sets `service.runtime.drain_timeout`.
    pub fn drain_timeout(mut self, d: &'static str) -> Self {
        self.runtime += &format!("    drain_timeout: {d}\n");
        self
    }

    /// Sets `service.runtime.request_memory_mib`.
    pub fn request_memory_mib(mut self, mib: u64) -> Self {
        self.runtime += &format!("    request_memory_mib: {mib}\n");
        self
    }

    /// Adds keys to every exporter (YAML indented by 4 spaces).
    pub fn exporter_extra(mut self, yaml: &str) -> Self {
        self.exporter_extra.push_str(yaml);
        self
    }

    /// `retry_on_failure: {enabled: false}`: a failed part fails its request at once.
    pub fn no_retry(self) -> Self {
        self.exporter_extra("    retry_on_failure:\n      enabled: false\n")
    }

    /// `resilience: {eject_after: 0}`: failing backends stay in routing.
    pub fn never_eject(self) -> Self {
        self.exporter_extra("    resilience:\n      eject_after: 0\n")
    }

    /// Retries every `initial` (doubling up to 4 × `initial`) for up to `max_elapsed`.
    pub fn retry(self, initial: &str, max_elapsed: &str) -> Self {
        let max = format!("{}ms", crate_ms(initial) * 4);
        self.exporter_extra(&format!(
            "    retry_on_failure:\n      initial_interval: {initial}\n      max_interval: {max}\n      max_elapsed_time: {max_elapsed}\n      multiplier: 2\n"
        ))
    }

    /// `sending_queue` with `queue_size` parts per backend per core (`0`: disabled).
    pub fn queue(self, parts: usize) -> Self {
        match parts {
            0 => self.exporter_extra("    sending_queue:\n      enabled: false\n"),
            n => self.exporter_extra(&format!("    sending_queue:\n      queue_size: {n}\n")),
        }
    }

    pub fn backend_names(mut self, names: &[&str]) -> Self {
        self.backends = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets the traces pipeline's key (the only pipeline unless `pipelines` is called).
    pub fn routing_key(mut self, key: &'static str) -> Self {
        self.pipelines = vec![("traces", Some(key.into()))];
        self
    }

    /// One pipeline per `(signal, routing_key)`; a key of `""` keeps the signal's default.
    pub fn pipelines(mut self, pipelines: &[(&'static str, &str)]) -> Self {
        let key = |k: &str| (!k.is_empty()).then(|| k.to_string());
        self.pipelines = pipelines.iter().map(|(s, k)| (*s, key(k))).collect();
        self
    }

    /// Resolve backends by asking `nameserver` for the SRV records of `hostname` every
    /// `interval` (SRV, because loopback sinks differ only by port).
    pub fn dns(mut self, nameserver: SocketAddr, hostname: &str, interval: &'static str) -> Self {
        self.dns = Some((nameserver, hostname.to_string(), interval));
        self
    }

    /// Adds the receiver's OTLP/HTTP server on 127.0.0.1:0.
    pub fn http(mut self) -> Self {
        self.http = Some(None);
        self
    }

    /// Adds `line` (YAML, one key) to the OTLP/HTTP server's settings.
    pub fn http_setting(mut self, line: &str) -> Self {
        self.http_extra.push_str(&format!("        {line}\n"));
        self
    }

    /// Adds `line` (YAML, one key, indented from 8) to the OTLP/gRPC server's settings.
    pub fn grpc_setting(mut self, line: &str) -> Self {
        self.grpc_extra.push_str(&format!("        {line}\n"));
        self
    }

    /// Adds extension `id` with `body` (YAML lines indented 4) and enables it.
    pub fn extension(mut self, id: &str, body: &str) -> Self {
        self.extensions.push((id.to_string(), body.to_string()));
        self
    }

    /// Adds `line` (YAML, one key) to `service.runtime`.
    pub fn runtime_setting(mut self, line: &str) -> Self {
        self.runtime.push_str(&format!("    {line}\n"));
        self
    }

    /// Adds the OTLP/HTTP server with `max_request_body_size: bytes`.
    pub fn http_max_body(mut self, bytes: u64) -> Self {
        self.http = Some(Some(bytes));
        self
    }

    /// Sets every exporter's `compression`.
    pub fn compression(mut self, c: &'static str) -> Self {
        self.compression = Some(c);
        self
    }

    /// Leaves `compression` unset, so the gateway's default (gzip) applies.
    pub fn default_compression(mut self) -> Self {
        self.compression = None;
        self
    }

    /// Adds `line` (YAML, one key) to every exporter's `protocol.otlp`.
    pub fn otlp(mut self, line: &str) -> Self {
        self.otlp_extra.push_str(&format!("        {line}\n"));
        self
    }

    pub fn max_recv_mib(mut self, mib: u32) -> Self {
        self.max_recv_mib = Some(mib);
        self
    }

    pub fn timeout(mut self, t: &'static str) -> Self {
        self.timeout = t;
        self
    }

    fn resolver(&self) -> String {
        match &self.dns {
            Some((ns, host, interval)) => {
                format!(
                    "      dns:\n        hostname: {host}\n        record_type: srv\n        nameserver: {ns}\n        interval: {interval}\n        timeout: 500ms\n"
                )
            }
            None => {
                let hosts: String = self.backends.iter().map(|b| format!("\n          - {b}")).collect();
                format!("      static:\n        hostnames:{hosts}\n")
            }
        }
    }

    fn exporter(&self, signal: &str, key: &Option<String>) -> String {
        let key = key.as_ref().map(|k| format!("    routing_key: {k}\n")).unwrap_or_default();
        format!(
            "  loadbalancing/{signal}:\n{key}    protocol:\n      otlp:\n        timeout: {}\n{}        tls:\n          insecure: true\n    resolver:\n{}{}",
            self.timeout,
            self.otlp_lines(),
            self.resolver(),
            self.exporter_extra
        )
    }

    fn otlp_lines(&self) -> String {
        let compression = self.compression.map(|c| format!("        compression: {c}\n")).unwrap_or_default();
        compression + &self.otlp_extra
    }

    pub fn yaml(&self) -> String {
        let max = self.max_recv_mib.map(|m| format!("\n        max_recv_msg_size_mib: {m}")).unwrap_or_default();
        let http = match self.http {
            None => String::new(),
            Some(None) => "      http:\n        endpoint: 127.0.0.1:0\n".into(),
            Some(Some(b)) => {
                format!("      http:\n        endpoint: 127.0.0.1:0\n        max_request_body_size: {b}\n")
            }
        } + &self.http_extra;
        let exporters: String = self.pipelines.iter().map(|(s, k)| self.exporter(s, k)).collect();
        let pipelines: String = self
            .pipelines
            .iter()
            .map(|(s, _)| format!("    {s}:\n      receivers: [otlp]\n      exporters: [loadbalancing/{s}]\n"))
            .collect();
        let runtime = if self.runtime.is_empty() { String::new() } else { format!("  runtime:\n{}", self.runtime) };
        let (extensions, enabled) = self.extensions_yaml();
        let grpc = &self.grpc_extra;
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0{max}\n{grpc}{http}\
             exporters:\n{exporters}{extensions}service:\n  pipelines:\n{pipelines}{enabled}  telemetry:\n{}{runtime}",
            self.telemetry
        )
    }

    /// The `extensions` section and the `service.extensions` line.
    fn extensions_yaml(&self) -> (String, String) {
        let mut all = self.extensions.clone();
        if self.health_check {
            all.insert(0, ("health_check".into(), "    endpoint: 127.0.0.1:0\n".into()));
        }
        if all.is_empty() {
            return (String::new(), String::new());
        }
        let section: String = all.iter().map(|(id, body)| format!("  {id}:\n{body}")).collect();
        let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
        (format!("extensions:\n{section}"), format!("  extensions: [{}]\n", ids.join(", ")))
    }

    pub fn build(&self) -> Config {
        config::parse_str(&self.yaml()).unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{}", self.yaml()))
    }

    /// Starts a gateway on CPU 0 with this config.
    pub fn start(&self) -> Gateway {
        Gateway::start(&self.build(), Some(vec![0])).expect("gateway starts")
    }
}

/// Milliseconds of a `<n>ms` test duration.
fn crate_ms(d: &str) -> u64 {
    d.strip_suffix("ms").and_then(|n| n.parse().ok()).expect("durations in tests are `<n>ms`")
}

/// Runs `f` on a fresh executor thread (a client that is not on the gateway's core).
pub fn on_client<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let handle = LocalExecutorBuilder::new(Placement::Unbound).spawn(f).expect("client executor");
    handle.join().expect("client executor ran")
}

/// One HTTP/2 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> SendRequest<Bytes> {
    call::connect(addr, Duration::from_secs(2), || {}).await.expect("connect")
}

/// A unary call on `path` with a bounded wait.
pub async fn unary_on(
    send: &SendRequest<Bytes>,
    addr: SocketAddr,
    path: &str,
    framed: Bytes,
) -> Result<Bytes, ExportError> {
    let uri = format!("http://{addr}{path}").parse().expect("uri");
    call::unary(send.clone(), uri, framed, Duration::from_secs(10)).await
}

/// A trace export call.
pub async fn export(send: &SendRequest<Bytes>, addr: SocketAddr, framed: Bytes) -> Result<Bytes, ExportError> {
    unary_on(send, addr, TRACE_EXPORT, framed).await
}

/// Sends each `(headers, frame)` in turn as a trace export on one connection to `addr`; the
/// gRPC codes in order (`None`: no status).
pub fn grpc_codes(addr: SocketAddr, calls: Vec<(http::HeaderMap, Bytes)>) -> Vec<Option<Code>> {
    on_client(move || async move {
        let send = connect(addr).await;
        let uri: http::Uri = format!("http://{addr}{TRACE_EXPORT}").parse().expect("uri");
        let mut codes = Vec::new();
        for (headers, frame) in calls {
            let r = call::unary_with(send.clone(), uri.clone(), frame, Duration::from_secs(10), &headers).await;
            codes.push(match r {
                Ok(_) => Some(Code::Ok),
                Err(ExportError::Rejected(s)) => Some(s.code),
                Err(_) => None,
            });
        }
        codes
    })
}

/// A metrics export call.
pub async fn export_metrics(send: &SendRequest<Bytes>, addr: SocketAddr, framed: Bytes) -> Result<Bytes, ExportError> {
    unary_on(send, addr, otlp_gateway::grpc::METRICS_EXPORT, framed).await
}

/// A logs export call.
pub async fn export_logs(send: &SendRequest<Bytes>, addr: SocketAddr, framed: Bytes) -> Result<Bytes, ExportError> {
    unary_on(send, addr, otlp_gateway::grpc::LOGS_EXPORT, framed).await
}

/// Polls `done` every 10 ms for up to `limit`; true once it holds.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// The text of the `/metrics` endpoint at `addr`.
pub fn scrape(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text
}

/// One series' value from the gateway's `/metrics` scrape (`name{labels}` as printed).
pub fn metric(gw: &otlp_gateway::Gateway, series: &str) -> Option<u64> {
    let text = scrape(gw.metrics_addr.expect("metrics endpoint"));
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `otlp_gateway_receiver_refused_total{reason="<reason>"}` from the gateway's /metrics.
pub fn refused(gw: &Gateway, reason: &str) -> u64 {
    refused_at(gw.metrics_addr.expect("metrics enabled"), reason)
}

/// [`refused`] from the /metrics endpoint at `addr`.
pub fn refused_at(addr: SocketAddr, reason: &str) -> u64 {
    let series = format!("otlp_gateway_receiver_refused_total{{reason=\"{reason}\"}} ");
    scrape(addr).lines().find_map(|l| l.strip_prefix(&series)?.trim().parse().ok()).expect("the refused series")
}
