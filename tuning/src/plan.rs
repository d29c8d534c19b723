//! Which CPUs the gateway runs on (from `--cores` or the config) and which are left for the OS.

use std::path::Path;

use anyhow::{Context, anyhow};

use crate::host::{self, Host};

pub const DEFAULT_CONFIG: &str = "/etc/otlp-gateway/config.yaml";

pub struct Plan {
    pub online: Vec<usize>,
    /// The gateway's executors, one per CPU.
    pub gateway: Vec<usize>,
    /// Online CPUs the gateway does not use: IRQs, RPS, irqbalance and the OS go here.
    pub housekeeping: Vec<usize>,
    /// The OTLP/gRPC listen port, when a config was read.
    pub port: Option<u16>,
}

impl Plan {
    pub fn load(host: &Host, config: Option<&Path>, cores: Option<&str>) -> anyhow::Result<Plan> {
        let online = online_cpus(host)?;
        let path = config.map_or_else(|| host.path(DEFAULT_CONFIG), Path::to_path_buf);
        let (cfg_cores, port) = read_config(&path, config.is_some() || cores.is_none())?;
        let gateway = match cores {
            Some(text) => otlp_gateway::config::parse_cores(text).map_err(|e| anyhow!("--cores: {e}"))?,
            None => cfg_cores.unwrap_or_else(|| online.clone()),
        };
        Ok(Plan::new(online, gateway, port))
    }

    pub fn new(online: Vec<usize>, gateway: Vec<usize>, port: Option<u16>) -> Plan {
        let housekeeping = host::without(&online, &gateway);
        Plan { online, gateway, housekeeping, port }
    }

    pub fn describe(&self) -> String {
        format!(
            "gateway CPUs {} (of online {}); left for IRQs and the OS: {}; OTLP/gRPC port {}",
            host::format_cpulist(&self.gateway),
            host::format_cpulist(&self.online),
            none_if_empty(&host::format_cpulist(&self.housekeeping)),
            self.port.map_or("unknown".into(), |p| p.to_string()),
        )
    }
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

fn online_cpus(host: &Host) -> anyhow::Result<Vec<usize>> {
    let text = host.read("/sys/devices/system/cpu/online").context("reading /sys/devices/system/cpu/online")?;
    host::parse_cpulist(&text).ok_or_else(|| anyhow!("unreadable CPU list `{text}` in /sys/devices/system/cpu/online"))
}

/// The config's cores and listen port. A missing default config is fine when `--cores` is given.
fn read_config(path: &Path, required: bool) -> anyhow::Result<(Option<Vec<usize>>, Option<u16>)> {
    if !required && !path.exists() {
        return Ok((None, None));
    }
    let cfg = otlp_gateway::config::load_file(path).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("  {e}")).collect();
        anyhow!("{}: configuration error(s):\n{}", path.display(), lines.join("\n"))
    })?;
    let port = cfg.traces_route().and_then(|(r, _)| r.grpc.as_ref()).map(|g| g.endpoint.port);
    Ok((cfg.runtime.cores.clone(), port))
}
