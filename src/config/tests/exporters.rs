//! `exporters`: the load balancer, its alias, its resolvers, and the plain `otlp` exporter.

use std::time::Duration;

use super::{errors_of, ok, one_error, with_exporters};
use crate::config::{
    Compression, DnsRecordType, DnsResolver, Exporter, HostPort, OtlpExporter, Resilience, ResilienceMode, Resolver,
    RetryOnFailure, RoutingKey, SendingQueue, Signal,
};

const INSECURE: &str = "    protocol:\n      otlp:\n        tls:\n          insecure: true\n";

fn hp(host: &str, port: u16) -> HostPort {
    HostPort { host: host.into(), port }
}

/// A config with one exporter `name` whose body is `body` (indented 4).
fn exporter_yaml(name: &str, body: &str) -> String {
    with_exporters(&format!("  {name}:\n{body}"), name)
}

fn exporter(name: &str, body: &str) -> Exporter {
    let config = ok(&exporter_yaml(name, body));
    config.traces_route().expect("traces route").1.clone()
}

fn lb_yaml(resolver: &str) -> String {
    exporter_yaml("loadbalancing", &format!("{INSECURE}    resolver:\n{resolver}"))
}

#[test]
fn load_balancing_alias() {
    let body = format!("{INSECURE}    resolver:\n      static:\n        hostnames: [a]");
    let old = exporter("loadbalancing", &body);
    let new = exporter("load_balancing", &body);
    assert_eq!(old, new);
    assert_eq!(new.static_backends(), Some(vec![hp("a", 4317)]));
    let named = exporter("load_balancing/x", &body);
    assert_eq!(named, old);
}

#[test]
fn otlp_exporter() {
    let body = "    endpoint: backend:4317\n    timeout: 250ms\n    compression: none\n    tls:\n      insecure: true";
    let expected = OtlpExporter {
        endpoint: Some(hp("backend", 4317)),
        compression: Compression::None,
        headers: vec![],
        timeout: Duration::from_millis(250),
        tls: None,
    };
    let exporter = exporter("otlp", body);
    assert_eq!(exporter, Exporter::Otlp(expected));
    assert_eq!(exporter.static_backends(), Some(vec![hp("backend", 4317)]));
}

#[test]
fn otlp_exporter_http_scheme_means_plaintext() {
    for endpoint in ["http://[::1]:4317", "http://[::1]:4317/"] {
        let body = format!("    endpoint: \"{endpoint}\"");
        let Exporter::Otlp(otlp) = exporter("otlp", &body) else {
            panic!("expected otlp");
        };
        assert_eq!(otlp.endpoint, Some(hp("::1", 4317)));
        assert!(otlp.tls.is_none());
        assert_eq!(otlp.timeout, Duration::from_secs(5));
    }
}

#[test]
fn otlp_exporter_needs_a_known_scheme_and_a_port() {
    let cases = [
        ("    endpoint: grpc://backend:4317", "exporters.otlp.endpoint", "unsupported scheme"),
        ("    endpoint: http://backend", "exporters.otlp.endpoint", "missing port"),
        ("    endpoint: https://backend", "exporters.otlp.endpoint", "missing port"),
        ("    endpoint: http://:4317", "exporters.otlp.endpoint", "missing host"),
        ("    tls:\n      insecure: true", "exporters.otlp.endpoint", "missing required key"),
    ];
    for (body, path, message) in cases {
        let (got_path, got) = one_error(&exporter_yaml("otlp", body));
        assert_eq!(got_path, path, "{body}");
        assert!(got.contains(message), "{body}: {got}");
    }
}

#[test]
fn compression_and_headers() {
    for (value, want) in [
        ("gzip", Compression::Gzip),
        ("zstd", Compression::Zstd),
        ("snappy", Compression::Snappy),
        ("none", Compression::None),
    ] {
        let body = format!(
            "{INSECURE}        compression: {value}\n        headers:\n          X-Tenant: acme\n          authorization: Bearer t\n    resolver:\n      static:\n        hostnames: [a]"
        );
        let Exporter::LoadBalancing(lb) = exporter("loadbalancing", &body) else { panic!("load balancer") };
        assert_eq!(lb.protocol.compression, want);
        let headers = [("x-tenant".to_string(), "acme".to_string()), ("authorization".into(), "Bearer t".into())];
        assert_eq!(lb.protocol.headers, headers);
    }
}

#[test]
fn protocol_keys() {
    let cases = [
        ("endpoint: a:4317", "endpoint", "not allowed here"),
        ("compression: lz4", "compression", "unknown compression `lz4`; use gzip, zstd, snappy or none"),
        ("headers: {\"bad name\": x}", "headers.bad name", "not a valid HTTP header name"),
        ("headers: {te: x}", "headers.te", "set by the gateway itself"),
        ("headers: {x-ok: \"a\\nb\"}", "headers.x-ok", "not a valid HTTP header value"),
        ("headers: {x-list: [a]}", "headers.x-list", "expected a string"),
        ("timeout: 5", "timeout", "use e.g. `5s`"),
        ("timeout: 0s", "timeout", "greater than zero"),
        ("retry_on_failure: {enabled: false}", "retry_on_failure", "not supported"),
        ("sending_queue: {enabled: false}", "sending_queue", "not supported"),
        ("balancer_name: round_robin", "balancer_name", "not supported"),
    ];
    for (line, key, message) in cases {
        let body = format!("{INSECURE}        {line}\n    resolver:\n      static:\n        hostnames: [a]");
        let (path, got) = one_error(&exporter_yaml("loadbalancing", &body));
        assert_eq!(path, format!("exporters.loadbalancing.protocol.otlp.{key}"), "{line}");
        assert!(got.contains(message), "{line}: {got}");
    }
}

#[test]
fn load_balancer_keys() {
    let resolver = "    resolver:\n      static:\n        hostnames: [a]\n";
    let cases = [
        ("routing_attributes: [a]", "routing_attributes", "applies only to `routing_key: attributes`"),
        ("routing_key: service\n    routing_attributes: [a]", "routing_attributes", "applies only to"),
        ("routing_key: traceid", "routing_key", "unknown routing_key"),
        ("timeout: 1s", "timeout", "not supported"),
        ("retry_on_failure: {enabled: 1}", "retry_on_failure.enabled", "expected `true` or `false`"),
        ("sending_queue: {blocking: true}", "sending_queue.blocking", "not supported"),
        ("protcol: {}", "protcol", "unknown key"),
    ];
    for (line, key, message) in cases {
        let body = format!("    {line}\n{INSECURE}{resolver}");
        let (path, got) = one_error(&exporter_yaml("loadbalancing", &body));
        assert_eq!(path, format!("exporters.loadbalancing.{key}"), "{line}");
        assert!(got.contains(message), "{line}: {got}");
    }
}

#[test]
fn static_resolver() {
    let yaml = lb_yaml(
        "      static:\n        hostnames:\n          - a.example.com\n          - \"[::1]:5317\"\n          - 10.0.0.1:4318",
    );
    let config = ok(&yaml);
    let backends = config.traces_route().and_then(|(_, e)| e.static_backends());
    let expected = vec![hp("a.example.com", 4317), hp("::1", 5317), hp("10.0.0.1", 4318)];
    assert_eq!(backends, Some(expected));
}

#[test]
fn static_resolver_errors() {
    let base = "exporters.loadbalancing.resolver";
    let cases = [
        ("      static:\n        hostnames: []", format!("{base}.static.hostnames")),
        ("      static: {}", format!("{base}.static.hostnames")),
        ("      static:\n        hostnames: [a, b, \":4317\"]", format!("{base}.static.hostnames[2]")),
        ("      static:\n        hostnames: [a, \"a:4317\"]", format!("{base}.static.hostnames[1]")),
        ("      static:\n        hostnames: [\"a:0\"]", format!("{base}.static.hostnames[0]")),
        ("      static:\n        hostnames: a", format!("{base}.static.hostnames")),
        ("      {}", base.to_string()),
        ("      k8s:\n        service: x", format!("{base}.k8s")),
        ("      aws_cloud_map: {}", format!("{base}.aws_cloud_map")),
        ("      static:\n        hostnames: [a]\n      dns:\n        hostname: b", base.to_string()),
    ];
    for (resolver, path) in cases {
        let (got, message) = one_error(&lb_yaml(resolver));
        assert_eq!(got, path, "{resolver}: {message}");
    }
}

#[test]
fn missing_resolver() {
    let (path, message) = one_error(&exporter_yaml("loadbalancing", INSECURE.trim_end()));
    assert_eq!(path, "exporters.loadbalancing.resolver");
    assert_eq!(message, "missing required key");
}

fn dns(resolver: &str) -> DnsResolver {
    let config = ok(&lb_yaml(resolver));
    let Some((_, Exporter::LoadBalancing(lb))) = config.traces_route() else {
        panic!("expected the load balancer");
    };
    let Resolver::Dns(dns) = &lb.resolver else { panic!("expected dns: {:?}", lb.resolver) };
    dns.clone()
}

#[test]
fn dns_resolver() {
    let got = dns(
        "      dns:\n        hostname: collectors\n        port: \"5317\"\n        interval: 1m30s\n        timeout: 250ms",
    );
    let expected = DnsResolver {
        hostname: "collectors".into(),
        port: 5317,
        interval: Duration::from_secs(90),
        timeout: Duration::from_millis(250),
        nameserver: None,
        record_type: DnsRecordType::Ip,
    };
    assert_eq!(got, expected);
}

#[test]
fn dns_resolver_defaults() {
    let got = dns("      dns:\n        hostname: collectors");
    assert_eq!((got.port, got.interval, got.timeout), (4317, Duration::from_secs(5), Duration::from_secs(1)));
    assert_eq!((got.nameserver, got.record_type), (None, DnsRecordType::Ip));
}

#[test]
fn dns_nameserver() {
    let cases = [
        ("127.0.0.1:8600", "127.0.0.1:8600"),
        ("10.0.0.2", "10.0.0.2:53"),
        ("\"[::1]:8600\"", "[::1]:8600"),
        ("\"[fd00::1]\"", "[fd00::1]:53"),
    ];
    for (text, want) in cases {
        let got = dns(&format!("      dns:\n        hostname: a\n        nameserver: {text}"));
        assert_eq!(got.nameserver, Some(want.parse().unwrap()), "{text}");
    }
}

#[test]
fn dns_srv() {
    let got = dns("      dns:\n        hostname: _otlp._tcp.collectors.service.consul\n        record_type: srv");
    assert_eq!(got.record_type, DnsRecordType::Srv);
    assert_eq!(got.hostname, "_otlp._tcp.collectors.service.consul");
    let ip = dns("      dns:\n        hostname: a\n        record_type: ip\n        port: 1");
    assert_eq!((ip.record_type, ip.port), (DnsRecordType::Ip, 1));
}

#[test]
fn dns_resolver_errors() {
    let base = "exporters.loadbalancing.resolver.dns";
    let cases = [
        ("      dns: {}", "hostname"),
        ("      dns:\n        hostname: a:4317", "hostname"),
        ("      dns:\n        hostname: a\n        port: 0", "port"),
        ("      dns:\n        hostname: a\n        port: \"x\"", "port"),
        ("      dns:\n        hostname: a\n        interval: 5", "interval"),
        ("      dns:\n        hostname: a\n        timeout: soon", "timeout"),
        ("      dns:\n        hostname: a\n        quarantine: {}", "quarantine"),
        ("      dns:\n        hostname: a\n        nameserver: consul.local:8600", "nameserver"),
        ("      dns:\n        hostname: a\n        nameserver: 127.0.0.1:0", "nameserver"),
        ("      dns:\n        hostname: a\n        nameserver: 53", "nameserver"),
        ("      dns:\n        hostname: a\n        record_type: AAAA", "record_type"),
        ("      dns:\n        hostname: a\n        record_type: srv\n        port: 4317", "port"),
    ];
    for (resolver, key) in cases {
        let (path, message) = one_error(&lb_yaml(resolver));
        assert_eq!(path, format!("{base}.{key}"), "{resolver}: {message}");
    }
}

#[test]
fn unsupported_exporter_types() {
    let yaml = with_exporters("  otlphttp:\n    endpoint: http://a:4318", "otlphttp");
    let (path, message) = one_error(&yaml);
    assert_eq!(path, "exporters.otlphttp");
    assert!(message.contains("not supported"), "{message}");
}

#[test]
fn several_exporters_and_the_first_traces_route() {
    let yaml = "\
receivers:
  otlp:
    protocols:
      grpc:
  otlp/b:
    protocols:
      http:
exporters:
  otlp:
    endpoint: http://a:1
  loadbalancing:
    protocol: {otlp: {tls: {insecure: true}}}
    resolver: {dns: {hostname: a}}
service:
  pipelines:
    metrics:
      receivers: [otlp/b]
      exporters: [otlp]
    traces/2:
      receivers: [otlp]
      exporters: [loadbalancing]
    traces:
      receivers: [otlp/b]
      exporters: [otlp]
";
    let config = ok(yaml);
    assert_eq!(config.pipelines.len(), 3);
    let (receiver, exporter) = config.traces_route().expect("route");
    assert!(receiver.grpc.is_some());
    assert!(matches!(exporter, Exporter::LoadBalancing(_)));
    assert_eq!(exporter.static_backends(), None);
    assert_eq!(config.pipelines[1].name.as_deref(), Some("2"));
    let no_traces = yaml.replace("traces/2:", "logs:").replace("traces:", "logs/x:");
    assert_eq!(ok(&no_traces).traces_route(), None);
    assert!(errors_of(&yaml.replace("[otlp/b]", "[otlp/c]")).len() == 2);
}

fn lb_pipeline_yaml(lb_body: &str, signal: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
         exporters:\n  loadbalancing:\n{lb_body}    protocol: {{otlp: {{tls: {{insecure: true}}}}}}\n    resolver: {{static: {{hostnames: [a]}}}}\n\
         service:\n  pipelines:\n    {signal}:\n      receivers: [otlp]\n      exporters: [loadbalancing]\n"
    )
}

#[test]
fn every_routing_key_parses_for_the_signals_it_applies_to() {
    let cases: &[(&str, &[&str], RoutingKey)] = &[
        ("traceID", &["traces", "logs"], RoutingKey::TraceId),
        ("service", &["traces", "metrics", "logs"], RoutingKey::Service),
        ("resource", &["traces", "metrics", "logs"], RoutingKey::Resource),
        ("metric", &["metrics"], RoutingKey::Metric),
        ("streamID", &["metrics"], RoutingKey::StreamId),
    ];
    for (key, signals, want) in cases {
        for signal in ["traces", "metrics", "logs"] {
            let yaml = lb_pipeline_yaml(&format!("    routing_key: {key}\n"), signal);
            if signals.contains(&signal) {
                let Exporter::LoadBalancing(lb) = ok(&yaml).exporters.values().next().cloned().unwrap() else {
                    panic!("not a load balancer")
                };
                assert_eq!(lb.routing_key.as_ref(), Some(want), "{key} on {signal}");
            } else {
                let (path, message) = one_error(&yaml);
                assert_eq!(path, "exporters.loadbalancing.routing_key", "{key} on {signal}");
                assert!(message.contains(&format!("does not apply to {signal}")), "{message}");
            }
        }
    }
}

#[test]
fn routing_attributes_go_with_the_attributes_key() {
    let yaml = lb_pipeline_yaml("    routing_key: attributes\n    routing_attributes: [tenant, http.route]\n", "logs");
    let Exporter::LoadBalancing(lb) = ok(&yaml).exporters.values().next().cloned().unwrap() else { panic!() };
    assert_eq!(lb.routing_key, Some(RoutingKey::Attributes(vec!["tenant".into(), "http.route".into()])));
    let (path, message) = one_error(&lb_pipeline_yaml("    routing_key: attributes\n", "traces"));
    assert_eq!(path, "exporters.loadbalancing");
    assert!(message.contains("needs `routing_attributes`"), "{message}");
    let dup = lb_pipeline_yaml("    routing_key: attributes\n    routing_attributes: [a, b, a]\n", "traces");
    assert_eq!(one_error(&dup).0, "exporters.loadbalancing.routing_attributes[2]");
    let empty = lb_pipeline_yaml("    routing_key: attributes\n    routing_attributes: []\n", "traces");
    assert_eq!(one_error(&empty).0, "exporters.loadbalancing.routing_attributes");
}

#[test]
fn default_keys_follow_the_signal() {
    let lb = |signal| {
        let Exporter::LoadBalancing(lb) = ok(&lb_pipeline_yaml("", signal)).exporters.values().next().cloned().unwrap()
        else {
            panic!()
        };
        lb
    };
    assert_eq!(lb("traces").key_for(Signal::Traces), RoutingKey::TraceId);
    assert_eq!(lb("metrics").key_for(Signal::Metrics), RoutingKey::Service);
    assert_eq!(lb("logs").key_for(Signal::Logs), RoutingKey::Service);
}

#[test]
fn fan_out_and_double_feeding_are_refused() {
    let two = lb_pipeline_yaml("", "traces")
        .replace("exporters: [loadbalancing]", "exporters: [loadbalancing, otlp]")
        .replace(
            "exporters:\n  loadbalancing:",
            "exporters:\n  otlp:\n    endpoint: a:1\n    tls: {insecure: true}\n  loadbalancing:",
        );
    let (path, message) = one_error(&two);
    assert_eq!(path, "service.pipelines.traces.exporters");
    assert!(message.contains("list one exporter"), "{message}");
    let twice = format!(
        "{}    traces/b:\n      receivers: [otlp]\n      exporters: [loadbalancing]\n",
        lb_pipeline_yaml("", "traces")
    );
    let (path, message) = one_error(&twice);
    assert_eq!(path, "service.pipelines.traces/b.receivers");
    assert!(message.contains("already feeds another traces pipeline"), "{message}");
}

const STATIC_A: &str = "    resolver:\n      static:\n        hostnames: [a]\n";

fn lb_with(extra: &str) -> crate::config::LoadBalancing {
    match exporter("loadbalancing", &format!("{INSECURE}{STATIC_A}{extra}")) {
        Exporter::LoadBalancing(lb) => lb,
        other => panic!("expected a load balancer, got {other:?}"),
    }
}

#[test]
fn retry_and_queue_default_to_the_collectors_values() {
    let lb = lb_with("");
    assert_eq!(lb.retry, RetryOnFailure::default());
    assert_eq!((lb.retry.initial_interval, lb.retry.max_interval), (Duration::from_secs(5), Duration::from_secs(30)));
    assert_eq!(lb.retry.max_elapsed_time, Duration::from_secs(300));
    assert_eq!((lb.queue.enabled, lb.queue.queue_size, lb.queue.num_consumers), (true, 1000, 10));
}

#[test]
fn retry_and_queue_keys_parse() {
    let extra = "    retry_on_failure:\n      enabled: true\n      initial_interval: 100ms\n      max_interval: 1s\n      \
                 max_elapsed_time: 10s\n      multiplier: 2\n      randomization_factor: 0.1\n    sending_queue:\n      \
                 enabled: false\n      queue_size: 50\n      num_consumers: 2\n      max_size_mib: 8\n";
    let lb = lb_with(extra);
    let retry = RetryOnFailure {
        enabled: true,
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(1),
        max_elapsed_time: Duration::from_secs(10),
        multiplier: 2.0,
        randomization_factor: 0.1,
    };
    assert_eq!(lb.retry, retry);
    assert_eq!(lb.queue, SendingQueue { enabled: false, queue_size: 50, num_consumers: 2, max_bytes: 8 << 20 });
}

#[test]
fn resilience_extension_parses_with_defaults() {
    assert_eq!(lb_with("").resilience, Resilience::default());
    let lb = lb_with("    resilience:\n      mode: hold\n      eject_after: 0\n      probe_interval: 250ms\n");
    let expected =
        Resilience { mode: ResilienceMode::Hold, eject_after: 0, probe_interval: Duration::from_millis(250) };
    assert_eq!(lb.resilience, expected);
    let errors =
        errors_of(&exporter_yaml("loadbalancing", &format!("{INSECURE}{STATIC_A}    resilience: {{mode: drop}}\n")));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "exporters.loadbalancing.resilience.mode");
}

#[test]
fn retry_and_queue_errors_name_their_paths() {
    let extra = "    retry_on_failure:\n      multiplier: 0.5\n      randomization_factor: x\n      max_interval: 5\n      \
                 jitter: 1\n    sending_queue:\n      queue_size: 0\n      storage: file_storage\n";
    let errors = errors_of(&exporter_yaml("loadbalancing", &format!("{INSECURE}{STATIC_A}{extra}")));
    let at = |path: &str| errors.iter().any(|(p, _)| *p == format!("exporters.loadbalancing.{path}"));
    for path in [
        "retry_on_failure.multiplier",
        "retry_on_failure.randomization_factor",
        "retry_on_failure.max_interval",
        "retry_on_failure.jitter",
        "sending_queue.queue_size",
        "sending_queue.storage",
    ] {
        assert!(at(path), "no error at {path}: {errors:?}");
    }
    assert_eq!(errors.len(), 6, "{errors:?}");
}

#[test]
fn coalesce_extension_parses_with_defaults_and_errors_name_their_paths() {
    let defaults = crate::config::CoalesceLimits::default();
    assert_eq!((defaults.max_in_flight, defaults.max_bytes), (4, 1 << 20));
    assert_eq!(lb_with("").coalesce, defaults);
    let lb = lb_with("    coalesce:\n      max_in_flight: 0\n      max_size_mib: 3\n");
    assert_eq!((lb.coalesce.max_in_flight, lb.coalesce.max_bytes), (0, 3 << 20));
    let bad = "    coalesce:\n      max_in_flight: -1\n      max_size_mib: 0\n      batch: 5\n";
    let errors = errors_of(&exporter_yaml("loadbalancing", &format!("{INSECURE}{STATIC_A}{bad}")));
    let paths: Vec<_> = errors.iter().map(|(p, _)| p.as_str()).collect();
    let at = |k: &str| format!("exporters.loadbalancing.coalesce.{k}");
    assert_eq!(paths, [at("max_in_flight"), at("max_size_mib"), at("batch")], "{errors:?}");
    let config = ok(&lb_pipeline_yaml("    coalesce:\n      max_in_flight: 7\n", "traces"));
    let yaml = crate::config::effective_yaml(&config);
    assert!(yaml.contains("max_in_flight: 7") && yaml.contains("max_size_mib: 1"), "{yaml}");
    assert_eq!(ok(&yaml).exporters, config.exporters, "print-config reads back");
}
