//! The command line as an operator uses it: validate, run with SIGTERM, demo.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_otlp-gateway");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_collector_documentation_configs_validate_unchanged() {
    for f in ["gateway-static.yaml", "gateway-dns.yaml", "gateway-dns-service.yaml", "local-static.yaml"] {
        let out = Command::new(BIN).args(["validate", "--config", &fixture(f)]).output().unwrap();
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn validate_reports_every_error_with_its_path_and_exits_64() {
    let out = Command::new(BIN).args(["validate", "--config", &fixture("bad-many-errors.yaml")]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "receivers.otlp.protocols.grpc.endpoint",
        "receivers.otlp.protocols.htttp",
        "exporters.loadbalancing.protocol.otlp.timeout",
        "exporters.loadbalancing.resolver.static.hostnames[1]",
        "service.pipelines.traces.receivers",
        "service.runtime.cores",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    assert!(err.lines().filter(|l| l.starts_with("  ")).count() >= 10, "{err}");
}

#[test]
fn run_refuses_a_bad_config_before_binding() {
    let out = Command::new(BIN).args(["run", "--config", &fixture("bad-many-errors.yaml")]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

/// Stderr lines of `child` as they come, read on a thread.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until the gateway says it listens (signal handlers are in place by then).
fn until_listening(lines: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(15)) {
        let done = line.contains("OTLP/gRPC on");
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("the gateway never said it listens: {seen:?}");
}

/// SIGTERM, then waits (up to 15 s) for the exit; returns the status and every line.
fn terminate(
    child: &mut std::process::Child,
    lines: &std::sync::mpsc::Receiver<String>,
    mut seen: Vec<String>,
) -> (std::process::ExitStatus, String) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "gateway did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    seen.extend(lines.iter());
    (status, seen.join("\n"))
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("otlp-gw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gw.yaml");
    let yaml = std::fs::read_to_string(fixture("local-static.yaml")).unwrap().replace("127.0.0.1:4317", "127.0.0.1:0")
        + "  telemetry:\n    metrics:\n      address: 127.0.0.1:0\n";
    std::fs::write(&cfg, yaml).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap(), "--cores", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let seen = until_listening(&lines);
    assert!(child.try_wait().unwrap().is_none(), "gateway is running");
    let (status, err) = terminate(&mut child, &lines, seen);
    assert!(status.success(), "{err}");
    assert!(err.contains("OTLP/gRPC on 127.0.0.1:") && err.contains("stopped"), "{err}");
}

#[test]
fn demo_passes_its_own_checks() {
    let out = Command::new(BIN).args(["demo", "--duration", "1"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("PASS: every trace landed on exactly one backend"), "{stdout}");
    assert_eq!(stdout.matches("127.0.0.1:1431").count(), 3 + 3, "three backends in config and shares");
}

fn print_config_fixture(name: &str) -> String {
    format!("{}/tests/fixtures/print-config/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn print_config_expands_env_and_fills_defaults_golden() {
    let out = Command::new(BIN)
        .args(["print-config", "--config", &print_config_fixture("env.yaml")])
        .env("OTLP_GW_TEST_LISTEN", "0.0.0.0:4317")
        .env("OTLP_GW_TEST_HOST", "_otlp._tcp.collectors.service.consul")
        .env_remove("OTLP_GW_TEST_UNSET_MIB")
        .env_remove("OTLP_GW_TEST_UNSET_PORT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let golden = std::fs::read_to_string(print_config_fixture("env.golden.yaml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), golden);
}

#[test]
fn unset_environment_variables_are_reported_by_name_and_line() {
    let out = Command::new(BIN)
        .args(["validate", "--config", &print_config_fixture("env.yaml")])
        .env_remove("OTLP_GW_TEST_LISTEN")
        .env_remove("OTLP_GW_TEST_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 6: environment variable `OTLP_GW_TEST_LISTEN` is not set"), "{err}");
    assert!(err.contains("line 20: environment variable `OTLP_GW_TEST_HOST` is not set"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = std::env::temp_dir().join(format!("otlp-gw-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gw.yaml");
    let yaml = std::fs::read_to_string(fixture("local-static.yaml")).unwrap().replace("127.0.0.1:4317", "127.0.0.1:0")
        + "  telemetry:\n    metrics:\n      address: 127.0.0.1:0\n    logs:\n      encoding: json\n";
    std::fs::write(&cfg, yaml).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap(), "--cores", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let seen = until_listening(&lines);
    let (_, err) = terminate(&mut child, &lines, seen);
    let lines: Vec<serde_json::Value> = err.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert!(lines.len() >= 3, "{err}");
    assert!(lines.iter().all(|l| l["level"] == "info" && l["ts"].is_string()), "{err}");
    assert!(
        lines.iter().any(|l| l["msg"].as_str().is_some_and(|m| m.contains("metrics on http://127.0.0.1:"))),
        "{err}"
    );
}

#[test]
fn loadgen_groups_spans_per_trace_and_refuses_zero() {
    use glommio::Placement;
    use otlp_gateway::tools::sink::Sink;
    let sink = Sink::start(&["127.0.0.1:0".parse().unwrap()], Placement::Unbound, true).unwrap();
    let target = sink.addrs[0].to_string();
    let args = ["loadgen", "--target", &target, "--duration", "1", "--rate", "2000", "--connections", "1"];
    let out = Command::new(BIN).args(args).args(["--streams", "1", "--spans-per-trace", "10"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let traces = sink.stats[0].traces();
    let spans: u64 = traces.values().sum();
    assert!(spans >= 100, "loadgen sent {spans} spans");
    assert!(traces.values().all(|&n| n == 10), "spans per trace: {:?}", traces.values().collect::<Vec<_>>());
    let zero = Command::new(BIN).args(args).args(["--spans-per-trace", "0"]).output().unwrap();
    assert_eq!(zero.status.code(), Some(2), "{}", String::from_utf8_lossy(&zero.stderr));
    sink.stop();
}
