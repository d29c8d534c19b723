//! TLS end to end on loopback, with certificates made at test time: the gRPC and HTTP
//! receivers over TLS 1.2 and 1.3 with ALPN, mutual TLS, TLS to backends (a TLS sink), and
//! certificates reloaded without dropping connections. Clients are plain rustls, configured
//! here, independently of the gateway's own TLS code.

#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use common::certs::{Pki, with_backend_tls, with_grpc_tls};
use common::{ConfigBuilder, export, on_client, sinks, wait_until};
use glommio::Placement;
use otlp_gateway::Gateway;
use otlp_gateway::config::{self, Config};
use otlp_gateway::exporter::{ExportError, call};
use otlp_gateway::grpc::Code;
use otlp_gateway::tls::{ALPN_GRPC, ServerFiles, TlsVersion, server_config};
use otlp_gateway::tools::sink::Sink;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion};

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const ANY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const H2: &[&[u8]] = &[b"h2"];

/// A client trusting `ca` (a file in the PKI), speaking `versions`, offering `alpn`, with the
/// certificate `<identity>.pem` if given.
fn client(pki: &Pki, ca: &str, versions: &[&'static SupportedProtocolVersion], identity: Option<&str>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    CertificateDer::pem_file_iter(pki.dir.join(ca)).unwrap().for_each(|c| roots.add(c.unwrap()).unwrap());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider).with_protocol_versions(versions).unwrap();
    let builder = builder.with_root_certificates(roots);
    let mut config = match identity {
        Some(name) => {
            let certs = CertificateDer::pem_file_iter(pki.dir.join(format!("{name}.pem"))).unwrap();
            let key = PrivateKeyDer::from_pem_file(pki.dir.join(format!("{name}-key.pem"))).unwrap();
            builder.with_client_auth_cert(certs.map(Result::unwrap).collect(), key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = H2.iter().map(|p| p.to_vec()).collect();
    config
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// A blocking TLS connection to `addr` (as `localhost`) with the handshake done.
fn handshake(addr: SocketAddr, config: ClientConfig) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = ClientConnection::new(Arc::new(config), localhost()).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Whether the server speaks HTTP/2 after the handshake: it answers our preface with its
/// SETTINGS. Under TLS 1.3 a refused client certificate shows only here, as an alert.
fn served(addr: SocketAddr, config: ClientConfig) -> Result<(), String> {
    let mut tls = handshake(addr, config).map_err(|e| e.to_string())?;
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    tls.write_all(&hello).map_err(|e| e.to_string())?;
    let mut frame = [0u8; 9];
    tls.read_exact(&mut frame).map_err(|e| e.to_string())?;
    if frame[3] == 4 { Ok(()) } else { Err(format!("first frame has type {}", frame[3])) }
}

/// Whether a plaintext HTTP/2 client gets SETTINGS back within a second.
fn plaintext_served(addr: SocketAddr) -> bool {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").unwrap();
    let mut frame = [0u8; 9];
    tcp.read_exact(&mut frame).is_ok() && frame[3] == 4
}

/// The leaf certificate the server at `addr` presents.
fn served_cert(addr: SocketAddr, pki: &Pki) -> Vec<u8> {
    let tls = handshake(addr, client(pki, "ca.pem", ANY, None)).expect("handshake");
    tls.conn.peer_certificates().expect("a certificate")[0].to_vec()
}

fn cert_on_disk(pki: &Pki, name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(pki.dir.join(name)).unwrap().to_vec()
}

fn request(spans: usize, seed: u64) -> bytes::Bytes {
    grpc_frame(&spangen::request("tls", spans, 1, seed).encode_to_vec())
}

/// One trace export of 10 spans over a new TLS connection made with `config`.
fn export_over(addr: SocketAddr, config: ClientConfig, seed: u64) -> Result<(), String> {
    on_client(move || async move {
        let tls = Some((Arc::new(config), localhost()));
        let send = call::connect_tls(addr, tls, Duration::from_secs(5), || {}).await?;
        export(&send, addr, request(10, seed)).await.map(drop).map_err(|e| e.to_string())
    })
}

fn parse(yaml: &str) -> Config {
    config::parse_str(yaml).unwrap_or_else(|e| panic!("config invalid:\n{e}\n{yaml}"))
}

fn start(yaml: &str) -> Gateway {
    Gateway::start(&parse(yaml), Some(vec![0])).expect("gateway starts")
}

/// A gateway to `sink` (plaintext) with `tls` on its gRPC receiver.
fn tls_gateway(sink: &Sink, tls: &str) -> Gateway {
    start(&with_grpc_tls(&ConfigBuilder::new(&sink.addrs).yaml(), tls))
}

#[test]
fn grpc_receiver_serves_tls_1_2_and_1_3_with_alpn_h2() {
    let (pki, sink) = (Pki::new("tls-versions"), sinks(1));
    let gw = tls_gateway(&sink, &pki.server_tls(""));
    for (versions, want) in [(TLS12, rustls::ProtocolVersion::TLSv1_2), (TLS13, rustls::ProtocolVersion::TLSv1_3)] {
        let tls = handshake(gw.grpc_addr, client(&pki, "ca.pem", versions, None)).expect("handshake");
        assert_eq!(tls.conn.protocol_version(), Some(want));
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
        export_over(gw.grpc_addr, client(&pki, "ca.pem", versions, None), 1).expect("export over TLS");
    }
    assert!(!plaintext_served(gw.grpc_addr), "a plaintext client is not served on a TLS port");
    gw.shutdown();
    assert_eq!(sink.total_spans(), 20);
    sink.stop();
}

#[test]
fn min_version_1_3_refuses_a_tls_1_2_client() {
    let (pki, sink) = (Pki::new("tls-min"), sinks(1));
    let gw = tls_gateway(&sink, &pki.server_tls(", min_version: \"1.3\""));
    let refused = handshake(gw.grpc_addr, client(&pki, "ca.pem", TLS12, None));
    assert!(refused.is_err(), "TLS 1.2 only client: {:?}", refused.map(|t| t.conn.protocol_version()));
    served(gw.grpc_addr, client(&pki, "ca.pem", TLS13, None)).expect("TLS 1.3 client");
    gw.shutdown();
    sink.stop();
}

#[test]
fn mutual_tls_admits_only_clients_with_a_certificate_from_client_ca_file() {
    let (pki, sink) = (Pki::new("tls-mtls"), sinks(1));
    let gw = tls_gateway(&sink, &pki.server_tls(&format!(", client_ca_file: {}", pki.path("ca.pem"))));
    let addr = gw.grpc_addr;
    for versions in [TLS12, TLS13] {
        let none = served(addr, client(&pki, "ca.pem", versions, None));
        assert!(none.is_err(), "a client without a certificate is refused");
        let stranger = served(addr, client(&pki, "ca.pem", versions, Some("other-client")));
        assert!(stranger.is_err(), "a certificate from another CA is refused");
        export_over(addr, client(&pki, "ca.pem", versions, Some("client")), 2).expect("the right certificate");
        assert!(export_over(addr, client(&pki, "ca.pem", versions, None), 3).is_err());
    }
    gw.shutdown();
    assert_eq!(sink.total_spans(), 20, "only the clients with the right certificate were forwarded");
    sink.stop();
}

/// One HTTP/1.1 POST of a trace request over `tls`; the status line of the answer.
fn http1_post(tls: &mut StreamOwned<ClientConnection, TcpStream>) -> String {
    let body = spangen::request("tls", 5, 1, 4).encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&body).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut chunk).expect("answer");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[test]
fn http_receiver_serves_http1_and_h2_over_tls_by_alpn() {
    let (pki, sink) = (Pki::new("tls-http"), sinks(1));
    let yaml = ConfigBuilder::new(&sink.addrs).http().http_setting(&format!("tls: {}", pki.server_tls(""))).yaml();
    let gw = start(&yaml);
    let addr = gw.http_addrs[0].1;
    let mut http1 = client(&pki, "ca.pem", ANY, None);
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut tls = handshake(addr, http1).expect("handshake");
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(http1_post(&mut tls), "HTTP/1.1 200 OK");
    assert_eq!(http1_post(&mut tls), "HTTP/1.1 200 OK", "keep-alive over TLS");
    let mut both = client(&pki, "ca.pem", ANY, None);
    both.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls = handshake(addr, both.clone()).expect("handshake");
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]), "h2 preferred");
    let body = bytes::Bytes::from(spangen::request("tls", 5, 1, 5).encode_to_vec());
    let status = on_client(move || async move {
        let send = call::connect_tls(addr, Some((Arc::new(both), localhost())), Duration::from_secs(5), || {}).await;
        let req = http::Request::post(format!("https://localhost:{}/v1/traces", addr.port()))
            .header("content-type", "application/x-protobuf")
            .body(())
            .unwrap();
        let (response, mut stream) = send.unwrap().ready().await.unwrap().send_request(req, false).unwrap();
        stream.send_data(body, true).unwrap();
        response.await.unwrap().status().as_u16()
    });
    assert_eq!(status, 200);
    gw.shutdown();
    assert_eq!(sink.total_spans(), 15);
    sink.stop();
}

/// A recording sink serving TLS with `<cert>.pem`, requiring client certificates from
/// `client_ca` if given.
fn tls_sink(pki: &Pki, cert: &str, client_ca: Option<&str>) -> Sink {
    let (cert_file, key_file) = (pki.dir.join(format!("{cert}.pem")), pki.dir.join(format!("{cert}-key.pem")));
    let client_ca_file = client_ca.map(|c| pki.dir.join(c));
    let files = ServerFiles {
        cert_file: &cert_file,
        key_file: &key_file,
        client_ca_file: client_ca_file.as_deref(),
        min_version: TlsVersion::V1_2,
        max_version: TlsVersion::V1_3,
        alpn: ALPN_GRPC,
    };
    let config = server_config(&files).expect("sink TLS").config;
    Sink::start_tls(&[SocketAddr::from(([127, 0, 0, 1], 0))], Placement::Unbound, true, Some(config)).expect("sink")
}

/// A plaintext gateway whose exporter dials `sink` with `tls`; one export through it.
fn through_gateway(sink: &Sink, tls: &str) -> Result<(), ExportError> {
    let gw = start(&with_backend_tls(&ConfigBuilder::new(&sink.addrs).no_retry().queue(0).yaml(), tls));
    let addr = gw.grpc_addr;
    let result = on_client(move || async move { export(&common::connect(addr).await, addr, request(10, 6)).await });
    gw.shutdown();
    result.map(drop)
}

#[test]
fn backends_over_tls_verified_by_ca_file_name_override_or_not_at_all() {
    let pki = Pki::new("tls-backend");
    pki.ca.server_for("named", &["collector.internal"]).write(&pki.dir, "named");
    pki.other.server("stranger").write(&pki.dir, "stranger");
    let ca = pki.path("ca.pem");
    let cases = [
        ("server", format!("{{ca_file: {ca}}}")),
        ("named", format!("{{ca_file: {ca}, server_name_override: collector.internal}}")),
        ("stranger", "{insecure_skip_verify: true}".to_string()),
    ];
    for (cert, tls) in cases {
        let sink = tls_sink(&pki, cert, None);
        through_gateway(&sink, &tls).unwrap_or_else(|e| panic!("{tls}: {e}"));
        assert_eq!(sink.total_spans(), 10, "{tls}");
        sink.stop();
    }
    let sink = tls_sink(&pki, "named", None);
    let mismatch = through_gateway(&sink, &format!("{{ca_file: {ca}}}"));
    assert!(mismatch.is_err(), "a certificate for another name is refused without the override");
    sink.stop();
}

#[test]
fn backends_requiring_client_certificates_get_the_exporters() {
    let pki = Pki::new("tls-backend-mtls");
    let sink = tls_sink(&pki, "server", Some("ca.pem"));
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client-key.pem"));
    through_gateway(&sink, &format!("{{ca_file: {ca}, cert_file: {cert}, key_file: {key}}}")).expect("with cert");
    assert!(through_gateway(&sink, &format!("{{ca_file: {ca}}}")).is_err(), "without a client certificate");
    assert_eq!(sink.total_spans(), 10);
    sink.stop();
}

#[test]
fn a_backend_certificate_from_another_ca_is_unavailable_naming_the_backend() {
    let pki = Pki::new("tls-backend-ca");
    let sink = tls_sink(&pki, "server", None);
    let backend = sink.addrs[0].to_string();
    let Err(ExportError::Rejected(status)) =
        through_gateway(&sink, &format!("{{ca_file: {}}}", pki.path("other-ca.pem")))
    else {
        panic!("the export should fail");
    };
    assert_eq!(status.code, Code::Unavailable);
    assert!(status.message.contains(&format!("backend {backend}")), "{}", status.message);
    assert!(status.message.contains("certificate"), "says why: {}", status.message);
    assert_eq!(sink.total_spans(), 0);
    sink.stop();
}

/// On a client executor: one export on a TLS connection, then (after `go`) another on the same
/// connection. Reports `ready` between the two; returns both outcomes.
fn long_lived_client(
    addr: SocketAddr,
    config: ClientConfig,
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> std::thread::JoinHandle<(bool, bool)> {
    std::thread::spawn(move || {
        on_client(move || async move {
            let tls = Some((Arc::new(config), localhost()));
            let send = call::connect_tls(addr, tls, Duration::from_secs(5), || {}).await.expect("connect");
            let before = export(&send, addr, request(10, 7)).await.is_ok();
            ready.send(()).unwrap();
            for _ in 0..1000 {
                if go.try_recv().is_ok() {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            (before, export(&send, addr, request(10, 8)).await.is_ok())
        })
    })
}

#[test]
fn reload_serves_new_certificates_to_new_connections_and_keeps_open_ones() {
    let (pki, sink) = (Pki::new("tls-reload"), sinks(1));
    let yaml = with_grpc_tls(&ConfigBuilder::new(&sink.addrs).yaml(), &pki.server_tls(""));
    let mut gw = start(&yaml);
    let addr = gw.grpc_addr;
    assert_eq!(served_cert(addr, &pki), cert_on_disk(&pki, "server.pem"));
    let ((ready_tx, ready), (go, go_rx)) = (mpsc::channel(), mpsc::channel());
    let open = long_lived_client(addr, client(&pki, "ca.pem", ANY, None), ready_tx, go_rx);
    ready.recv_timeout(Duration::from_secs(10)).expect("the first export");
    pki.ca.server("server-2").write(&pki.dir, "server");
    let rotated = cert_on_disk(&pki, "server.pem");
    gw.reload(&parse(&yaml)).expect("reload");
    assert!(wait_until(Duration::from_secs(5), || served_cert(addr, &pki) == rotated), "new connections: new cert");
    go.send(()).unwrap();
    assert_eq!(open.join().unwrap(), (true, true), "the connection opened before the reload still works");
    common::certs::write(&pki.dir, "server.pem", "not a certificate");
    let errors = config::parse_str(&yaml).expect_err("a bad certificate is a config error");
    assert_eq!(errors.paths(), ["receivers.otlp.protocols.grpc.tls.cert_file"]);
    assert_eq!(served_cert(addr, &pki), rotated, "the running config keeps serving");
    export_over(addr, client(&pki, "ca.pem", ANY, None), 9).expect("still serving");
    gw.shutdown();
    assert_eq!(sink.total_spans(), 30);
    sink.stop();
}
