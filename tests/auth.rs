//! Bearer-token authentication (`bearertokenauth`) on both receivers: every configured token
//! is accepted, a missing or wrong one gets UNAUTHENTICATED or 401 and nothing of its request
//! reaches a backend, and a token file is re-read on reload.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http1::Http1;
use common::{ConfigBuilder, connect, on_client, sinks};
use http::HeaderMap;
use otlp_gateway::exporter::{ExportError, call};
use otlp_gateway::grpc::{Code, TRACE_EXPORT};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

const AUTH: &str = "auth:\n          authenticator: bearertokenauth/clients";

/// One trace export with `authorization: <value>` (none when `None`); the gRPC code.
fn export_with(addr: SocketAddr, value: Option<&'static str>, spans: usize) -> Code {
    on_client(move || async move {
        let send = connect(addr).await;
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert("authorization", v.parse().unwrap());
        }
        let framed = grpc_frame(&spangen::request("svc", spans, 1, 7).encode_to_vec());
        let uri = format!("http://{addr}{TRACE_EXPORT}").parse().unwrap();
        match call::unary_with(send, uri, framed, Duration::from_secs(10), &headers).await {
            Ok(_) => Code::Ok,
            Err(ExportError::Rejected(status)) => status.code,
            Err(e) => panic!("{e}"),
        }
    })
}

#[test]
fn grpc_accepts_every_token_and_forwards_nothing_unauthenticated() {
    let sink = sinks(1);
    let ext = "    tokens: [\"old-token\", \"new-token\"]\n";
    let gw = ConfigBuilder::new(&sink.addrs).extension("bearertokenauth/clients", ext).grpc_setting(AUTH).start();
    let codes = [
        export_with(gw.grpc_addr, Some("Bearer old-token"), 3),
        export_with(gw.grpc_addr, Some("Bearer new-token"), 4),
        export_with(gw.grpc_addr, None, 100),
        export_with(gw.grpc_addr, Some("Bearer wrong"), 100),
        export_with(gw.grpc_addr, Some("new-token"), 100),
        export_with(gw.grpc_addr, Some("Basic new-token"), 100),
    ];
    let counted = common::refused(&gw, "unauthenticated");
    gw.shutdown();
    assert_eq!(counted, 4, "each refusal counted");
    assert_eq!(codes[..2], [Code::Ok, Code::Ok]);
    assert!(codes[2..].iter().all(|c| *c == Code::Unauthenticated), "{codes:?}");
    assert_eq!(sink.total_spans(), 7, "only the authenticated requests' spans arrive");
    sink.stop();
}

#[test]
fn http_answers_401_with_a_status_and_keeps_the_connection() {
    let sink = sinks(1);
    let ext = "    token: s3cret\n";
    let gw =
        ConfigBuilder::new(&sink.addrs).http().http_setting(AUTH).extension("bearertokenauth/clients", ext).start();
    let body = spangen::request("svc", 5, 1, 3).encode_to_vec();
    let mut c = Http1::connect(gw.http_addrs[0].1);
    let proto = "Content-Type: application/x-protobuf";
    let missing = c.post("/v1/traces", &[proto], &body);
    let wrong = c.post("/v1/traces", &[proto, "Authorization: Bearer nope"], &body);
    let right = c.post("/v1/traces", &[proto, "Authorization: Bearer s3cret"], &body);
    gw.shutdown();
    for r in [&missing, &wrong] {
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(&r.body[..2], &[0x08, Code::Unauthenticated as u8], "google.rpc.Status code 16");
    }
    assert_eq!(right.status, 200, "{right:?}");
    assert_eq!(sink.total_spans(), 5);
    sink.stop();
}

#[test]
fn token_files_are_read_again_on_reload() {
    let dir = std::env::temp_dir().join(format!("otlp-gateway-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(&file, "first\n").unwrap();
    let sink = sinks(1);
    let ext = format!("    filename: {}\n", file.display());
    let builder = ConfigBuilder::new(&sink.addrs).extension("bearertokenauth/clients", &ext).grpc_setting(AUTH);
    let mut gw = builder.start();
    assert_eq!(export_with(gw.grpc_addr, Some("Bearer first"), 1), Code::Ok);
    std::fs::write(&file, "second\nthird\n").unwrap();
    gw.reload(&builder.build()).unwrap();
    // The cores apply a reload between requests: until then, "first" still passes.
    let mut passed_before = 0;
    let applied = common::wait_until(Duration::from_secs(5), || {
        let code = export_with(gw.grpc_addr, Some("Bearer first"), 1);
        passed_before += u64::from(code == Code::Ok);
        code == Code::Unauthenticated
    });
    assert!(applied, "the old token is refused once the reload is applied");
    let after =
        [export_with(gw.grpc_addr, Some("Bearer second"), 1), export_with(gw.grpc_addr, Some("Bearer third"), 1)];
    std::fs::remove_file(&file).unwrap();
    assert!(gw.reload(&builder.build()).is_err(), "a missing token file refuses the reload");
    let kept = export_with(gw.grpc_addr, Some("Bearer third"), 1);
    gw.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(after, [Code::Ok, Code::Ok]);
    assert_eq!(kept, Code::Ok, "the running tokens stay when a reload fails");
    assert_eq!(sink.total_spans(), 4 + passed_before);
    sink.stop();
}
