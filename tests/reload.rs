//! Reloading the config (SIGHUP): backend lists, keys and pipelines change without dropping
//! client connections; a config that does not load, or changes what needs a restart, is
//! refused and the running one stays.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{ConfigBuilder, connect, export, on_client, sinks, wait_until};
use otlp_gateway::Gateway;
use otlp_gateway::runtime::gateway::ReloadError;
use otlp_gateway::tools::sink::Sink;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

fn request(seed: u64) -> Bytes {
    grpc_frame(&spangen::request("svc", 10, 10, seed).encode_to_vec())
}

/// Sends `n` requests on one connection, then reloads to `next` (from the client's thread, on
/// the same connection), waits until `sink.stats[to]` sees traffic, and sends `n` more.
fn send_reload_send(
    mut gw: Gateway,
    next: otlp_gateway::config::Config,
    sink: &Sink,
    to: usize,
    n: u64,
) -> (Gateway, u64) {
    let (addr, target) = (gw.grpc_addr, sink.stats[to].clone());
    on_client(move || async move {
        let conn = connect(addr).await;
        let mut sent = 0;
        for i in 0..n {
            export(&conn, addr, request(i)).await.expect("before reload");
            sent += 10;
        }
        gw.reload(&next).expect("reload applies");
        for i in 0..200 {
            export(&conn, addr, request(1000 + i)).await.expect("same connection during reload");
            sent += 10;
            if target.spans() > 0 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        for i in 0..n {
            export(&conn, addr, request(5000 + i)).await.expect("after reload");
            sent += 10;
        }
        (gw, sent)
    })
}

#[test]
fn a_new_backend_list_takes_over_without_dropping_the_connection() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs[..1]).start();
    let next = ConfigBuilder::new(&sink.addrs[1..]).build();
    let (gw, sent) = send_reload_send(gw, next, &sink, 1, 20);
    gw.shutdown();
    assert_eq!(sink.total_spans(), sent, "nothing lost or doubled across the reload");
    assert!(sink.stats[0].spans() >= 200, "the old backend had the first requests");
    assert!(sink.stats[1].spans() >= 200, "the new backend has every request after the switch");
    sink.stop();
}

#[test]
fn routing_key_and_pipelines_change_on_reload() {
    let sink = sinks(3);
    let gw = ConfigBuilder::new(&sink.addrs[..1]).start();
    let next = ConfigBuilder::new(&sink.addrs[1..]).pipelines(&[("traces", "service"), ("logs", "")]).build();
    let (gw, _) = send_reload_send(gw, next, &sink, 1, 5);
    let addr = gw.grpc_addr;
    let logs = grpc_frame(&otlp_gateway::tools::signalgen::logs_request("svc", 4, 1).encode_to_vec());
    let logs_ok = on_client(move || async move { common::export_logs(&connect(addr).await, addr, logs).await.is_ok() });
    gw.shutdown();
    assert!(logs_ok, "the logs pipeline added by the reload serves");
    let after: Vec<u64> = sink.stats[1..].iter().map(|s| s.spans()).collect();
    assert_eq!(after.iter().filter(|&&n| n > 0).count(), 1, "by service, one backend has every span: {after:?}");
    sink.stop();
}

#[test]
fn a_reload_that_changes_a_receiver_is_refused_and_nothing_changes() {
    let sink = sinks(2);
    let mut gw = ConfigBuilder::new(&sink.addrs[..1]).start();
    let yaml = ConfigBuilder::new(&sink.addrs[1..]).yaml().replace("127.0.0.1:0", "127.0.0.1:1");
    let moved = otlp_gateway::config::parse_str(&yaml).unwrap();
    let err = gw.reload(&moved).expect_err("an endpoint change needs a restart");
    assert!(matches!(err, ReloadError::NeedsRestart(_)), "{err}");
    let slower = ConfigBuilder::new(&sink.addrs[1..]).grpc_setting("read_timeout: 5s").build();
    let err = gw.reload(&slower).expect_err("a protocol limit change needs a restart");
    assert!(matches!(err, ReloadError::NeedsRestart(_)), "{err}");
    let addr = gw.grpc_addr;
    on_client(move || async move { export(&connect(addr).await, addr, request(1)).await.expect("still serving") });
    gw.shutdown();
    assert_eq!((sink.stats[0].spans(), sink.stats[1].spans()), (10, 0), "the old backend list is still in force");
    sink.stop();
}

fn write(path: &std::path::Path, yaml: &str) {
    std::fs::write(path, yaml).unwrap();
}

/// The listening address from the gateway's first line of output.
fn listening(stderr: &mut impl Read) -> SocketAddr {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stderr.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let at = line.find("on ").expect("address in first line") + 3;
    line[at..].split_whitespace().next().unwrap().parse().unwrap()
}

fn hup(pid: u32) {
    Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
}

#[test]
fn sighup_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one() {
    let sink = sinks(2);
    let dir = std::env::temp_dir().join(format!("otlp-gw-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gw.yaml");
    write(&cfg, &ConfigBuilder::new(&sink.addrs[..1]).yaml());
    let mut child = Command::new(env!("CARGO_BIN_EXE_otlp-gateway"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--cores", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let addr = listening(&mut stderr);
    let send =
        move |seed| on_client(move || async move { export(&connect(addr).await, addr, request(seed)).await.is_ok() });
    assert!(send(1), "serving the first config");
    write(&cfg, "receivers: [this is not a config");
    hup(child.id());
    std::thread::sleep(Duration::from_millis(300));
    assert!(send(2), "a bad config leaves the old one running");
    write(&cfg, &ConfigBuilder::new(&sink.addrs[1..]).yaml());
    hup(child.id());
    assert!(wait_until(Duration::from_secs(5), || send(3) && sink.stats[1].spans() > 0), "the new backend takes over");
    let old = sink.stats[0].spans();
    assert!(send(4) && send(5), "serving after the reload");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("reload refused, the config has errors") && err.contains("reloaded"), "{err}");
    assert!(old >= 20, "the requests before the reload went to the first backend");
    assert_eq!(sink.stats[0].spans(), old, "nothing goes to the first backend after the reload");
    sink.stop();
}
