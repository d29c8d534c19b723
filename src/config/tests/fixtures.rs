//! The fixtures under `tests/fixtures/config/`, including the three examples of the collector's
//! gateway deployment documentation, which must load unchanged.

use std::path::Path;
use std::time::Duration;

use super::{errors_of, ok};
use crate::config::{
    ComponentId, Compression, DnsRecordType, DnsResolver, Exporter, HostPort, LoadBalancing, Resolver, RoutingKey,
    Signal, load_file,
};

const STATIC: &str = include_str!("../../../tests/fixtures/config/gateway-static.yaml");
const DNS: &str = include_str!("../../../tests/fixtures/config/gateway-dns.yaml");
const DNS_SERVICE: &str = include_str!("../../../tests/fixtures/config/gateway-dns-service.yaml");
const LOCAL: &str = include_str!("../../../tests/fixtures/config/local-static.yaml");
const BAD: &str = include_str!("../../../tests/fixtures/config/bad-many-errors.yaml");

fn hp(host: &str, port: u16) -> HostPort {
    HostPort { host: host.into(), port }
}

fn id(kind: &str) -> ComponentId {
    ComponentId { kind: kind.into(), name: None }
}

/// The one load balancer of a config whose traces route ends in one.
fn lb(yaml: &str) -> LoadBalancing {
    let config = ok(yaml);
    match config.traces_route() {
        Some((_, Exporter::LoadBalancing(lb))) => lb.clone(),
        other => panic!("expected a load balancer route, got {other:?}"),
    }
}

/// What all three documentation examples share.
fn check_doc_common(yaml: &str, exporter: &str) {
    let config = ok(yaml);
    let receiver = &config.receivers[&id("otlp")];
    let grpc = receiver.grpc.as_ref().expect("grpc server");
    assert_eq!(grpc.endpoint, hp("0.0.0.0", 4317));
    assert_eq!(grpc.max_recv_msg_size, 4 * 1024 * 1024);
    assert_eq!(grpc.max_concurrent_streams, 1024);
    assert_eq!(receiver.http, None);
    assert_eq!(config.pipelines.len(), 1);
    let pipeline = &config.pipelines[0];
    assert_eq!((pipeline.signal, pipeline.name.as_deref()), (Signal::Traces, None));
    assert_eq!(pipeline.receivers, vec![id("otlp")]);
    assert_eq!(pipeline.exporters, vec![id(exporter)]);
    assert_eq!(config.runtime.cores, None);
    let lb = lb(yaml);
    assert_eq!(lb.protocol.endpoint, None);
    assert_eq!(lb.protocol.compression, Compression::Gzip, "the collector's default");
    assert_eq!(lb.protocol.timeout, Duration::from_secs(5));
    assert!(lb.protocol.tls.is_none());
}

#[test]
fn doc_static_example() {
    check_doc_common(STATIC, "loadbalancing");
    let lb = lb(STATIC);
    assert_eq!(lb.key_for(Signal::Traces), RoutingKey::TraceId);
    let expected = vec![
        hp("collector-1.example.com", 4317),
        hp("collector-2.example.com", 5317),
        hp("collector-3.example.com", 4317),
    ];
    assert_eq!(lb.resolver, Resolver::Static { hostnames: expected.clone() });
    let config = ok(STATIC);
    let backends = config.traces_route().and_then(|(_, e)| e.static_backends());
    assert_eq!(backends, Some(expected));
}

#[test]
fn doc_dns_example() {
    check_doc_common(DNS, "loadbalancing");
    let lb = lb(DNS);
    assert_eq!(lb.key_for(Signal::Traces), RoutingKey::TraceId);
    let expected = Resolver::Dns(DnsResolver {
        hostname: "collectors.example.com".into(),
        port: 4317,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        nameserver: None,
        record_type: DnsRecordType::Ip,
    });
    assert_eq!(lb.resolver, expected);
    assert_eq!(Exporter::LoadBalancing(lb).static_backends(), None);
}

#[test]
fn doc_dns_service_example() {
    check_doc_common(DNS_SERVICE, "loadbalancing");
    let lb = lb(DNS_SERVICE);
    assert_eq!(lb.routing_key, Some(RoutingKey::Service));
    let expected = Resolver::Dns(DnsResolver {
        hostname: "collectors.example.com".into(),
        port: 5317,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        nameserver: None,
        record_type: DnsRecordType::Ip,
    });
    assert_eq!(lb.resolver, expected);
}

#[test]
fn dns_consul_srv_example() {
    let lb = lb(include_str!("../../../tests/fixtures/config/gateway-dns-consul.yaml"));
    let expected = Resolver::Dns(DnsResolver {
        hostname: "_otlp._tcp.collectors.service.consul".into(),
        port: 4317,
        interval: Duration::from_secs(2),
        timeout: Duration::from_millis(500),
        nameserver: Some("127.0.0.1:8600".parse().unwrap()),
        record_type: DnsRecordType::Srv,
    });
    assert_eq!(lb.resolver, expected);
}

#[test]
fn doc_examples_with_load_balancing_alias_are_equivalent() {
    let pairs = [
        (STATIC, include_str!("../../../tests/fixtures/config/gateway-static-load_balancing.yaml")),
        (DNS, include_str!("../../../tests/fixtures/config/gateway-dns-load_balancing.yaml")),
        (DNS_SERVICE, include_str!("../../../tests/fixtures/config/gateway-dns-service-load_balancing.yaml")),
    ];
    for (old, new) in pairs {
        check_doc_common(new, "load_balancing");
        let (old, new) = (ok(old), ok(new));
        assert_eq!(old.exporters[&id("loadbalancing")], new.exporters[&id("load_balancing")]);
    }
}

#[test]
fn local_static_fixture() {
    let config = ok(LOCAL);
    let (receiver, exporter) = config.traces_route().expect("traces route");
    let grpc = receiver.grpc.as_ref().expect("grpc server");
    assert_eq!(grpc.endpoint, hp("127.0.0.1", 4317));
    let backends = exporter.static_backends().expect("static backends");
    let expected = [14317, 14318, 14319].map(|p| hp("127.0.0.1", p));
    assert_eq!(backends, expected.to_vec());
    let Exporter::LoadBalancing(lb) = exporter else {
        panic!("expected the load balancer");
    };
    assert_eq!(lb.protocol.timeout, Duration::from_secs(2));
}

#[test]
fn bad_fixture_reports_every_error_at_once() {
    let errors = errors_of(BAD);
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "receivers.otlp.protocols.grpc.endpoint",
            "receivers.otlp.protocols.grpc.max_recv_msg_size_mib",
            "receivers.otlp.protocols.grpc.tls.key_file",
            "receivers.otlp.protocols.htttp",
            "exporters.loadbalancing.routing_key",
            "exporters.loadbalancing.protocol.otlp.endpoint",
            "exporters.loadbalancing.protocol.otlp.compression",
            "exporters.loadbalancing.protocol.otlp.timeout",
            "exporters.loadbalancing.protocol.otlp.tls.ca_file",
            "exporters.loadbalancing.resolver.static.hostnames[1]",
            "exporters.loadbalancing.resolver.static.hostnames[2]",
            "exporters.otlp/",
            "processors.batch",
            "service.pipelines.traces.receivers[1]",
            "service.pipelines.traces.processors[0]",
            "service.runtime.cores",
        ]
    );
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config").join(name)
}

#[test]
fn load_file_reads_fixtures() {
    let names = [
        "gateway-static.yaml",
        "gateway-dns.yaml",
        "gateway-dns-service.yaml",
        "gateway-static-load_balancing.yaml",
        "gateway-dns-load_balancing.yaml",
        "gateway-dns-service-load_balancing.yaml",
        "local-static.yaml",
        "gateway-dns-consul.yaml",
    ];
    for name in names {
        if let Err(errors) = load_file(&fixture_path(name)) {
            panic!("{name} did not load:\n{errors}");
        }
    }
    assert!(load_file(&fixture_path("bad-many-errors.yaml")).is_err());
}

#[test]
fn load_file_io_error_is_one_error_without_path() {
    let errors = load_file(&fixture_path("does-not-exist.yaml")).expect_err("missing file");
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].path, "");
    assert!(errors.0[0].message.contains("does-not-exist.yaml"), "{errors}");
}
