//! `tls` on receivers and exporters: files read at load, errors at their key paths.

use super::{errors_of, ok, with_exporters, with_protocols};
use crate::config::{Exporter, effective_yaml};
use crate::tls::TlsVersion;

#[path = "../../../tests/common/certs.rs"]
mod certs;

fn pki() -> certs::Pki {
    certs::Pki::new("config-tls")
}

fn p(pki: &certs::Pki, name: &str) -> String {
    pki.path(name)
}

/// `grpc` and `http` servers with `tls` (YAML flow mapping) on both.
fn receivers_with(tls: &str) -> String {
    with_protocols(&format!("      grpc:\n        tls: {tls}\n      http:\n        tls: {tls}"))
}

fn server_tls(pki: &certs::Pki, extra: &str) -> String {
    pki.server_tls(extra)
}

/// The load balancer with `tls` (YAML flow mapping) on its `protocol.otlp`.
fn lb_with(tls: &str) -> String {
    let body = format!(
        "  loadbalancing:\n    protocol: {{otlp: {{tls: {tls}}}}}\n    resolver: {{static: {{hostnames: [localhost:1]}}}}"
    );
    with_exporters(&body, "loadbalancing")
}

fn lb_tls(yaml: &str) -> Option<crate::config::ExporterTls> {
    match ok(yaml).exporters.into_values().next() {
        Some(Exporter::LoadBalancing(lb)) => lb.protocol.tls,
        other => panic!("expected the load balancer, got {other:?}"),
    }
}

fn paths(errors: &[(String, String)]) -> Vec<&str> {
    errors.iter().map(|(p, _)| p.as_str()).collect()
}

#[test]
fn receivers_serve_tls_with_alpn_per_protocol() {
    let dir = pki();
    let config = ok(&receivers_with(&server_tls(&dir, "")));
    let receiver = config.receivers.values().next().expect("receiver");
    let grpc = receiver.grpc.as_ref().and_then(|g| g.tls.as_ref()).expect("grpc tls");
    assert_eq!((grpc.min_version, grpc.max_version), (TlsVersion::V1_2, TlsVersion::V1_3));
    assert_eq!(grpc.built.config.alpn_protocols, vec![b"h2".to_vec()]);
    let http = receiver.http.as_ref().and_then(|h| h.tls.as_ref()).expect("http tls");
    assert_eq!(http.built.config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(grpc.client_ca_file, None);
}

#[test]
fn receiver_mtls_and_versions() {
    let dir = pki();
    let extra = format!(", client_ca_file: {}, min_version: \"1.3\", max_version: \"1.3\"", p(&dir, "ca.pem"));
    let config = ok(&receivers_with(&server_tls(&dir, &extra)));
    let receiver = config.receivers.values().next().expect("receiver");
    let tls = receiver.grpc.as_ref().and_then(|g| g.tls.as_ref()).expect("grpc tls");
    assert_eq!(tls.client_ca_file.as_deref(), Some(dir.dir.join("ca.pem").as_path()));
    assert_eq!((tls.min_version, tls.max_version), (TlsVersion::V1_3, TlsVersion::V1_3));
}

#[test]
fn receiver_tls_errors_name_their_keys_all_at_once() {
    let dir = pki();
    certs::write(&dir.dir, "garbage.pem", "not a certificate");
    let cases = [
        ("{}".to_string(), vec!["tls.cert_file", "tls.key_file"], "missing required key"),
        (server_tls(&dir, ", min_version: \"1.1\""), vec!["tls.min_version"], "not supported"),
        (server_tls(&dir, ", max_version: \"2\""), vec!["tls.max_version"], "unknown TLS version"),
        (server_tls(&dir, ", min_version: \"1.3\", max_version: \"1.2\""), vec!["tls.max_version"], "below"),
        (server_tls(&dir, ", reload_interval: 1h"), vec!["tls.reload_interval"], "SIGHUP"),
        (server_tls(&dir, ", ca_file: /ca.pem"), vec!["tls.ca_file"], "client_ca_file"),
        (server_tls(&dir, ", cert_pem: x"), vec!["tls.cert_pem"], "not supported"),
        (server_tls(&dir, ", client_ca_file: /nonexistent.pem"), vec!["tls.client_ca_file"], "cannot read"),
        (
            format!("{{cert_file: /nonexistent.pem, key_file: {}}}", p(&dir, "garbage.pem")),
            vec!["tls.cert_file", "tls.key_file"],
            "",
        ),
        (
            format!("{{cert_file: {}, key_file: {}}}", p(&dir, "garbage.pem"), p(&dir, "server-key.pem")),
            vec!["tls.cert_file"],
            "no PEM certificate",
        ),
        (
            format!("{{cert_file: {}, key_file: {}}}", p(&dir, "server.pem"), p(&dir, "client-key.pem")),
            vec!["tls.key_file"],
            "does not fit",
        ),
    ];
    for (tls, keys, message) in cases {
        let errors = errors_of(&receivers_with(&tls));
        let mut want: Vec<String> = keys.iter().map(|k| format!("receivers.otlp.protocols.grpc.{k}")).collect();
        want.extend(keys.iter().map(|k| format!("receivers.otlp.protocols.http.{k}")));
        assert_eq!(paths(&errors), want, "{tls}: {errors:#?}");
        assert!(errors.iter().all(|(_, m)| m.contains(message)), "{tls}: {errors:#?}");
    }
}

#[test]
fn exporter_tls_with_ca_client_cert_and_name() {
    let dir = pki();
    let tls = format!(
        "{{ca_file: {}, cert_file: {}, key_file: {}, server_name_override: collector.internal, min_version: \"1.3\"}}",
        p(&dir, "ca.pem"),
        p(&dir, "client.pem"),
        p(&dir, "client-key.pem")
    );
    let got = lb_tls(&lb_with(&tls)).expect("TLS");
    assert_eq!(got.server_name_override.as_deref(), Some("collector.internal"));
    assert_eq!(
        got.backend.server_name("10.0.0.1").map(|n| n.to_str().into_owned()).as_deref(),
        Some("collector.internal")
    );
    assert!(got.cert_file.is_some() && got.key_file.is_some() && !got.insecure_skip_verify);
    assert_eq!(got.min_version, TlsVersion::V1_3);
    assert_eq!(got.backend.config.config.alpn_protocols, vec![b"h2".to_vec()]);
    let skip = lb_tls(&lb_with("{insecure_skip_verify: true}")).expect("TLS without verification");
    assert!(skip.insecure_skip_verify);
}

#[test]
fn exporter_plaintext_and_schemes() {
    assert!(lb_tls(&lb_with("{insecure: true}")).is_none());
    let otlp = |endpoint: &str, tls: &str| {
        let body = format!("  otlp:\n    endpoint: {endpoint}\n    tls: {tls}");
        crate::config::parse_str(&with_exporters(&body, "otlp"))
            .map_err(|e| e.0.into_iter().map(|e| (e.path, e.message)).collect::<Vec<_>>())
    };
    let tls_of = |c: crate::config::Config| match c.exporters.into_values().next() {
        Some(Exporter::Otlp(o)) => o.tls,
        _ => None,
    };
    assert!(tls_of(otlp("https://localhost:4317", "{insecure_skip_verify: true}").expect("https")).is_some());
    assert!(tls_of(otlp("http://localhost:4317", "{}").expect("http")).is_none());
    let refused = [
        ("https://localhost:4317", "{insecure: true}", "exporters.otlp.tls.insecure", "contradicts"),
        ("http://localhost:4317", "{insecure: false}", "exporters.otlp.tls.insecure", "contradicts"),
        ("http://localhost:4317", "{ca_file: /ca.pem}", "exporters.otlp.tls.ca_file", "`http://` means plaintext"),
        (
            "localhost:4317",
            "{insecure: true, insecure_skip_verify: true}",
            "exporters.otlp.tls.insecure_skip_verify",
            "no effect",
        ),
        ("localhost:4317", "{cert_file: /c.pem}", "exporters.otlp.tls.cert_file", "needs `key_file`"),
        ("localhost:4317", "{key_file: /k.pem}", "exporters.otlp.tls.key_file", "needs `cert_file`"),
        ("localhost:4317", "{server_name_override: \"a b\"}", "exporters.otlp.tls.server_name_override", "not a valid"),
        ("localhost:4317", "{ca_file: /nonexistent/ca.pem}", "exporters.otlp.tls.ca_file", "cannot read"),
        ("localhost:4317", "{reload_interval: 1h}", "exporters.otlp.tls.reload_interval", "SIGHUP"),
        ("localhost:4317", "{ca_pem: x}", "exporters.otlp.tls.ca_pem", "not supported"),
    ];
    for (endpoint, tls, path, message) in refused {
        let errors = otlp(endpoint, tls).expect_err(tls);
        assert_eq!(paths(&errors), [path], "{endpoint} {tls}: {errors:#?}");
        assert!(errors[0].1.contains(message), "{endpoint} {tls}: {errors:#?}");
    }
}

#[test]
fn tls_is_the_default_for_backends_with_the_system_roots() {
    let has_roots = !rustls_native_certs::load_native_certs().certs.is_empty();
    let yaml = lb_with("{}");
    if has_roots {
        let tls = lb_tls(&yaml).expect("TLS by default, as in the collector");
        assert_eq!(tls.ca_file, None);
    } else {
        assert_eq!(paths(&errors_of(&yaml)), ["exporters.loadbalancing.protocol.otlp.tls.ca_file"]);
    }
}

#[test]
fn configs_equal_until_a_file_changes() {
    let dir = pki();
    let yaml = receivers_with(&server_tls(&dir, ""));
    assert_eq!(ok(&yaml), ok(&yaml), "same files: same config (a reload keeps connections)");
    let before = ok(&yaml);
    certs::Ca::new("other CA").server("rotated").write(&dir.dir, "server");
    assert_ne!(before, ok(&yaml), "a rotated certificate is a change");
}

#[test]
fn print_config_shows_tls_keys() {
    let dir = pki();
    let text = effective_yaml(&ok(&receivers_with(&server_tls(&dir, ""))));
    assert!(text.contains("cert_file") && text.contains("min_version: '1.2'"), "{text}");
    let text = effective_yaml(&ok(&lb_with(&format!("{{ca_file: {}}}", p(&dir, "ca.pem")))));
    assert!(text.contains("insecure: false") && text.contains("ca.pem"), "{text}");
}
