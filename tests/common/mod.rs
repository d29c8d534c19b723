//! Shared helpers for integration tests: one in-process sink, one config builder, one
//! client. Everything binds 127.0.0.1:0 and stops by itself.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use h2::client::SendRequest;
use otlp_gateway::Gateway;
use otlp_gateway::config::{self, Config};
use otlp_gateway::exporter::{ExportError, call};
use otlp_gateway::grpc::TRACE_EXPORT;
use otlp_gateway::tools::sink::Sink;

/// `n` sink listeners on loopback, recording trace ids.
pub fn sinks(n: usize) -> Sink {
    let listen = vec![SocketAddr::from(([127, 0, 0, 1], 0)); n];
    Sink::start(&listen, Placement::Unbound, true).expect("sinks start")
}

/// Builds a gateway config in the collector's YAML shape.
pub struct ConfigBuilder {
    backends: Vec<String>,
    routing_key: &'static str,
    max_recv_mib: Option<u32>,
    timeout: &'static str,
}

impl ConfigBuilder {
    pub fn new(backends: &[SocketAddr]) -> Self {
        ConfigBuilder {
            backends: backends.iter().map(|a| a.to_string()).collect(),
            routing_key: "traceID",
            max_recv_mib: None,
            timeout: "5s",
        }
    }

    pub fn backend_names(mut self, names: &[&str]) -> Self {
        self.backends = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn routing_key(mut self, key: &'static str) -> Self {
        self.routing_key = key;
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

    pub fn yaml(&self) -> String {
        let max = self.max_recv_mib.map(|m| format!("\n        max_recv_msg_size_mib: {m}")).unwrap_or_default();
        let hosts: String = self.backends.iter().map(|b| format!("\n          - {b}")).collect();
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0{max}\n\
             exporters:\n  loadbalancing:\n    routing_key: {}\n    protocol:\n      otlp:\n        timeout: {}\n        tls:\n          insecure: true\n\
             \x20   resolver:\n      static:\n        hostnames:{hosts}\n\
             service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [loadbalancing]\n",
            self.routing_key, self.timeout
        )
    }

    pub fn build(&self) -> Config {
        config::parse_str(&self.yaml()).unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{}", self.yaml()))
    }

    /// Starts a gateway on CPU 0 with this config.
    pub fn start(&self) -> Gateway {
        Gateway::start(&self.build(), Some(vec![0])).expect("gateway starts")
    }
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
