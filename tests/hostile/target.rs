//! The gateway under test: in this process, or, when `OTLP_GATEWAY_BIN` names a built
//! gateway (`cargo build --release --bin otlp-gateway`), a child process (on CPU 0 unless a test asks for more) whose memory
//! is the gateway's alone.
#![allow(dead_code)] // tests/hostile.rs and tests/memory.rs each use part of it

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use otlp_gateway::Gateway;

use crate::common::{ConfigBuilder, wait_until};

enum Process {
    Here(Box<Gateway>),
    Child(Reaped),
}

/// A gateway child that a failing test does not leave running: killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            drop(self.0.kill());
            drop(self.0.wait());
        }
    }
}

pub struct Target {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub metrics: SocketAddr,
    /// For `/proc/<pid>/status`: `self` when in this process.
    pub pid: String,
    process: Process,
}

impl Target {
    pub fn start(config: &ConfigBuilder) -> Target {
        match std::env::var("OTLP_GATEWAY_BIN") {
            Ok(bin) => child(&bin, config, "0"),
            Err(_) => here(config),
        }
    }

    /// Always a child process: `OTLP_GATEWAY_BIN`, or the gateway cargo built with the tests.
    pub fn start_child(config: &ConfigBuilder) -> Target {
        Target::start_child_on(config, "0")
    }

    /// [`Target::start_child`] on `cores` (`--cores`).
    pub fn start_child_on(config: &ConfigBuilder, cores: &str) -> Target {
        let built = env!("CARGO_BIN_EXE_otlp-gateway").to_string();
        child(&std::env::var("OTLP_GATEWAY_BIN").unwrap_or(built), config, cores)
    }

    pub fn is_child(&self) -> bool {
        matches!(self.process, Process::Child(_))
    }

    /// Stops the gateway: shutdown, or SIGTERM and a bounded wait for the child's exit.
    pub fn stop(self) {
        match self.process {
            Process::Here(gw) => gw.shutdown(),
            Process::Child(mut reaped) => {
                let child = &mut reaped.0;
                Command::new("kill").args(["-TERM", &self.pid]).status().unwrap();
                let exited = wait_until(Duration::from_secs(15), || child.try_wait().unwrap().is_some());
                assert!(exited, "the gateway child did not stop on SIGTERM");
            }
        }
    }
}

fn here(config: &ConfigBuilder) -> Target {
    let gw = config.start();
    let (grpc, http, metrics) = (gw.grpc_addr, gw.http_addrs[0].1, gw.metrics_addr.unwrap());
    Target { grpc, http, metrics, pid: "self".into(), process: Process::Here(Box::new(gw)) }
}

/// The config's gRPC, HTTP and metrics listeners (`127.0.0.1:0`, in that order) get free ports.
fn child(bin: &str, config: &ConfigBuilder, cores: &str) -> Target {
    let [grpc, http, metrics] = [free_port(), free_port(), free_port()];
    let mut yaml = config.yaml();
    for addr in [grpc, http, metrics] {
        yaml = yaml.replacen("127.0.0.1:0\n", &format!("{addr}\n"), 1);
    }
    let file = std::env::temp_dir().join(format!("otlp-gw-hostile-{}-{}.yaml", std::process::id(), grpc.port()));
    std::fs::write(&file, yaml).unwrap();
    let log = file.with_extension("log");
    let args = ["run", "--config", file.to_str().unwrap(), "--cores", cores];
    let stderr = std::fs::File::create(&log).unwrap();
    let mut child = Reaped(Command::new(bin).args(args).stdout(Stdio::null()).stderr(stderr).spawn().unwrap());
    let up =
        wait_until(Duration::from_secs(15), || [grpc, http, metrics].iter().all(|a| TcpStream::connect(a).is_ok()));
    std::fs::remove_file(&file).unwrap();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::remove_file(&log).unwrap();
    assert!(up, "the gateway child listens (exit status {:?}; it said: {said})", child.0.try_wait());
    Target { grpc, http, metrics, pid: child.0.id().to_string(), process: Process::Child(child) }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}
