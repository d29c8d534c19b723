//! The processes of a run: sinks, the gateway, nginx, the Collector. Each is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child process, killed (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: &Path) -> Result<Proc> {
        let out = std::fs::File::create(log)?;
        let child = die_with_parent(cmd).stdout(out.try_clone()?).stderr(out).stdin(Stdio::null()).spawn();
        Ok(Proc { child: child.with_context(|| format!("starting {cmd:?}"))? })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the kernel kill the child (SIGKILL) if the harness dies first, so nothing outlives
/// it even when it is killed itself.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Restricts the child and all its threads to `cpus` (as `taskset -c` would), so threads
/// besides the pinned executors stay on the same CPUs too.
pub fn pin<'a>(cmd: &'a mut Command, cpus: &[usize]) -> &'a mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET only writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    cpus.iter().for_each(|&c| unsafe { libc::CPU_SET(c, &mut set) });
    // SAFETY: sched_setaffinity is async-signal-safe and `set` is a copy owned by the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, size_of_val(&set), &set) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
}

/// `0`, `0,1`, `0-3` → the CPUs.
pub fn cpu_list(text: &str) -> Vec<usize> {
    let range = |part: &str| -> Vec<usize> {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        (a.trim().parse().unwrap_or(0)..=b.trim().parse().unwrap_or(0)).collect()
    };
    text.split(',').flat_map(range).collect()
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something listens on `port`.
pub fn wait_listening(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// Three sinks (one process, one listener each) pinned to `cpu`.
pub struct Sinks {
    pub ports: [u16; 3],
    _proc: Proc,
}

impl Sinks {
    pub fn start(bin: &Path, work: &Path, cpu: usize, delay_ms: u64) -> Result<Sinks> {
        let ports = [free_port()?, free_port()?, free_port()?];
        let listen = ports.map(|p| format!("127.0.0.1:{p}")).join(",");
        let mut cmd = Command::new(bin);
        pin(&mut cmd, &[cpu]).args([
            "sink",
            "--listen",
            &listen,
            "--cpu",
            &cpu.to_string(),
            "--delay-ms",
            &delay_ms.to_string(),
        ]);
        let proc = Proc::spawn(&mut cmd, &work.join(format!("sink-{}.log", ports[0])))?;
        ports.iter().try_for_each(|&p| wait_listening(p))?;
        Ok(Sinks { ports, _proc: proc })
    }
}

/// The gateway: OTLP/gRPC and OTLP/HTTP receivers, trace-ID routing to the sinks.
pub struct Gateway {
    pub grpc: u16,
    pub http: u16,
    pub metrics: u16,
    pub proc: Proc,
}

impl Gateway {
    pub fn start(bin: &Path, work: &Path, sinks: &Sinks, cores: &str, export: &str) -> Result<Gateway> {
        Gateway::start_with(bin, work, sinks, cores, export, "")
    }

    /// [`Gateway::start`] with `extra` (YAML lines indented 4) in the load balancer's section.
    pub fn start_with(
        bin: &Path,
        work: &Path,
        sinks: &Sinks,
        cores: &str,
        export: &str,
        extra: &str,
    ) -> Result<Gateway> {
        Gateway::launch(work, sinks, export, extra, |config| {
            let mut cmd = Command::new(bin);
            pin(&mut cmd, &cpu_list(cores)).arg("run").arg("--config").arg(config).args(["--cores", cores]);
            Ok(cmd)
        })
    }

    /// The gateway library hosted by this bench binary (`host.rs`): one executor per entry of
    /// `executors`, where CPUs may repeat.
    pub fn hosted(work: &Path, sinks: &Sinks, executors: &[usize]) -> Result<Gateway> {
        let list = executors.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        Gateway::launch(work, sinks, "none", "", |config| {
            let mut cmd = Command::new(std::env::current_exe()?);
            pin(&mut cmd, executors).arg(crate::host::FLAG).arg(config).arg(&list);
            Ok(cmd)
        })
    }

    /// Writes the config, starts `command(config)` and waits until it listens.
    fn launch(
        work: &Path,
        sinks: &Sinks,
        export: &str,
        extra: &str,
        command: impl FnOnce(&Path) -> Result<Command>,
    ) -> Result<Gateway> {
        let (grpc, http, metrics) = (free_port()?, free_port()?, free_port()?);
        let config = work.join(format!("gateway-{grpc}.yaml"));
        std::fs::write(&config, gateway_yaml(grpc, http, metrics, &sinks.ports, export, extra))?;
        let proc = Proc::spawn(&mut command(&config)?, &config.with_extension("log"))?;
        wait_listening(grpc)?;
        Ok(Gateway { grpc, http, metrics, proc })
    }
}

/// The gateway's config: the Collector gateway docs' static resolver example, with the
/// export compression given (`none` to compare with nginx, which forwards bytes as they came).
fn gateway_yaml(grpc: u16, http: u16, metrics: u16, sinks: &[u16; 3], export: &str, extra: &str) -> String {
    let telemetry = format!("    metrics:\n      address: 127.0.0.1:{metrics}\n    logs:\n      level: warn\n");
    balancer_yaml(grpc, Some(http), sinks, export, extra, &telemetry)
}

/// An OTLP receiver (gRPC, and HTTP when given) and a `loadbalancing` exporter to the sinks, in
/// the Collector's YAML: the gateway and the Collector peer read the same file but for
/// `service.telemetry` (`telemetry`: lines indented 4). `export` is the text after
/// `compression: ` (further `protocol.otlp` lines may follow it, indented 8).
fn balancer_yaml(grpc: u16, http: Option<u16>, sinks: &[u16; 3], export: &str, extra: &str, telemetry: &str) -> String {
    let hosts = sinks.map(|p| format!("127.0.0.1:{p}")).join(", ");
    let http = http.map_or(String::new(), |p| format!("      http:\n        endpoint: 127.0.0.1:{p}\n"));
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{grpc}\n{http}\
         exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        compression: {export}\n        tls:\n          insecure: true\n\
         \x20   resolver:\n      static:\n        hostnames: [{hosts}]\n{extra}\
         service:\n  telemetry:\n{telemetry}\
         \x20 pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [loadbalancing]\n"
    )
}

/// The OpenTelemetry Collector with the OTLP receiver and the `loadbalancing` exporter (what
/// users run instead of otlp-gateway), on one CPU (`GOMAXPROCS=1`), with the gateway's exporter
/// settings and the sending queue off: like the gateway, it answers the client once the sinks
/// have every part. With its default queue it answers once a part is queued, and under full
/// load refuses most requests ("sending queue is full"; docs/benchmarks.md has by-hand figures).
pub struct Collector {
    pub port: u16,
    pub proc: Proc,
}

impl Collector {
    pub fn start(bin: &Path, work: &Path, sinks: &Sinks, cpu: usize) -> Result<Collector> {
        if !bin.exists() {
            bail!("{} is missing (build it with benches/otelcol/build.sh)", bin.display());
        }
        let port = free_port()?;
        let config = work.join(format!("collector-{port}.yaml"));
        let telemetry = "    metrics:\n      level: none\n    logs:\n      level: warn\n";
        let export = "none\n        sending_queue:\n          enabled: false";
        std::fs::write(&config, balancer_yaml(port, None, &sinks.ports, export, "", telemetry))?;
        let mut cmd = Command::new(bin);
        pin(&mut cmd, &[cpu]).env("GOMAXPROCS", "1").arg("--config").arg(&config);
        let proc = Proc::spawn(&mut cmd, &config.with_extension("log"))?;
        wait_listening(port)?;
        Ok(Collector { port, proc })
    }
}

/// nginx's gRPC proxy as the Collector gateway docs configure it: an upstream of the
/// collectors and `grpc_pass`, one worker pinned to `cpu`.
pub struct Nginx {
    pub port: u16,
    pub worker: u32,
    _proc: Proc,
}

impl Nginx {
    pub fn start(nginx: &Path, work: &Path, sinks: &Sinks, cpu: usize) -> Result<Nginx> {
        let port = free_port()?;
        let conf = work.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(work, port, &sinks.ports, cpu))?;
        let mut cmd = Command::new(nginx);
        pin(&mut cmd, &[cpu]).arg("-p").arg(work).arg("-c").arg(&conf).arg("-e").arg(work.join("nginx-error.log"));
        let proc = Proc::spawn(&mut cmd, &work.join("nginx.log"))?;
        wait_listening(port)?;
        let worker = first_child(proc.pid()).context("nginx started no worker")?;
        Ok(Nginx { port, worker, _proc: proc })
    }
}

fn nginx_conf(work: &Path, port: u16, sinks: &[u16; 3], cpu: usize) -> String {
    let servers: String = sinks.iter().map(|p| format!("    server 127.0.0.1:{p};\n")).collect();
    let (pid, err) = (work.join("nginx.pid"), work.join("nginx-error.log"));
    format!(
        "worker_processes 1;\nworker_cpu_affinity {mask:b};\ndaemon off;\npid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_max_body_size 64m;\n  client_body_temp_path {tmp};\n\
         \x20 upstream collector4317 {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{port} http2;\n\
         \x20   location / {{ grpc_pass grpc://collector4317; }}\n  }}\n}}\n",
        mask = 1u64 << cpu,
        pid = pid.display(),
        err = err.display(),
        tmp = work.join("nginx-body").display(),
    )
}

/// A child of `pid`, waiting up to 5 s for one to appear.
fn first_child(pid: u32) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = children(pid).into_iter().next();
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let ppid = |p: &u32| crate::measure::stat_field(*p, 4) == Some(u64::from(pid));
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(ppid).collect()
}

/// A fresh scratch directory for configs and logs, removed when dropped unless `keep` is set
/// (the logs explain a failed run).
pub struct Workdir {
    pub path: PathBuf,
    pub keep: bool,
}

impl Workdir {
    pub fn new() -> Result<Workdir> {
        let path = std::env::temp_dir().join(format!("otlp-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Workdir { path, keep: true })
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("e2e: logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
