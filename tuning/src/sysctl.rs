//! Kernel network settings: accept queues, socket buffers, the ephemeral port range.

use std::collections::BTreeMap;

use crate::host::Host;
use crate::plan::Plan;
use crate::report::{Finding, Status};

/// The file `apply` writes; 60- sorts after the distribution's defaults.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/60-otlp-gateway.conf";

enum Test {
    /// Field `field` (0-based, whitespace-separated) must be at least `min`.
    Min { field: usize, min: u64 },
    /// A `low high` range at least this wide.
    Width(u64),
}

struct Rule {
    key: &'static str,
    test: Test,
    /// What `apply` writes when the test fails.
    value: &'static str,
    why: &'static str,
}

const MIB16: u64 = 16 << 20;

const RULES: [Rule; 7] = [
    Rule {
        key: "net.core.somaxconn",
        test: Test::Min { field: 0, min: 1024 },
        value: "4096",
        why: "each core listens with a backlog of 1024, which the kernel cuts to somaxconn; a reconnect storm overflows a shorter queue",
    },
    Rule {
        key: "net.ipv4.tcp_max_syn_backlog",
        test: Test::Min { field: 0, min: 4096 },
        value: "8192",
        why: "half-open connections during a reconnect storm of many agents",
    },
    Rule {
        key: "net.core.rmem_max",
        test: Test::Min { field: 0, min: MIB16 },
        value: "16777216",
        why: "the gateway's HTTP/2 connection window is 16 MiB; smaller socket buffers cap a connection's throughput on a long link",
    },
    Rule {
        key: "net.core.wmem_max",
        test: Test::Min { field: 0, min: MIB16 },
        value: "16777216",
        why: "as rmem_max, for the sending side toward collectors",
    },
    Rule {
        key: "net.ipv4.tcp_rmem",
        test: Test::Min { field: 2, min: MIB16 },
        value: "4096 131072 16777216",
        why: "TCP autotuning grows receive buffers only up to this maximum (third field)",
    },
    Rule {
        key: "net.ipv4.tcp_wmem",
        test: Test::Min { field: 2, min: MIB16 },
        value: "4096 16384 16777216",
        why: "TCP autotuning grows send buffers only up to this maximum (third field)",
    },
    Rule {
        key: "net.ipv4.ip_local_port_range",
        test: Test::Width(28_000),
        value: "16384 65535",
        why: "outgoing connections to collectors (cores × backends) and any local clients need ephemeral ports",
    },
];

const RESERVED: &str = "net.ipv4.ip_local_reserved_ports";

fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn passes(test: &Test, current: &str) -> bool {
    let nums: Vec<u64> = current.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    match *test {
        Test::Min { field, min } => nums.get(field).is_some_and(|&v| v >= min),
        Test::Width(width) => nums.len() == 2 && nums[1].saturating_sub(nums[0]) >= width,
    }
}

fn check_rule(host: &Host, rule: &Rule) -> Finding {
    let topic = format!("sysctl {}", rule.key);
    // The kernel separates fields with tabs; print them as sysctl.d spells them.
    match host.read(&proc_path(rule.key)).map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")) {
        None => Finding::new(Status::Note, topic, "not present on this kernel"),
        Some(cur) if passes(&rule.test, &cur) => Finding::new(Status::Ok, topic, cur),
        Some(cur) => Finding::new(Status::Off, topic, format!("{cur}, want {}: {}", rule.value, rule.why)),
    }
}

pub fn check(host: &Host, plan: &Plan) -> Vec<Finding> {
    let mut out: Vec<Finding> = RULES.iter().map(|r| check_rule(host, r)).collect();
    out.extend(check_reserved(host, plan));
    out
}

/// The listen port inside the ephemeral range can be taken by an outgoing connection before
/// the gateway binds it; reserving it keeps the kernel from handing it out.
fn check_reserved(host: &Host, plan: &Plan) -> Option<Finding> {
    let port = plan.port?;
    let topic = format!("sysctl {RESERVED}");
    let reserved = host.read(&proc_path(RESERVED))?;
    if !port_in_range(host, port) || ports_contain(&reserved, port) {
        return Some(Finding::new(Status::Ok, topic, format!("port {port} cannot be taken by outgoing connections")));
    }
    let why = format!(
        "port {port} is inside ip_local_port_range: an outgoing connection may hold it when the gateway starts"
    );
    Some(Finding::new(Status::Off, topic, format!("`{reserved}`, want it to include {port}: {why}")))
}

fn port_in_range(host: &Host, port: u16) -> bool {
    let range = host.read(&proc_path("net.ipv4.ip_local_port_range")).unwrap_or_default();
    let nums: Vec<u16> = range.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    nums.len() == 2 && (nums[0]..=nums[1]).contains(&port)
}

/// `list` is the kernel's spelling: `4317,8000-8010`.
fn ports_contain(list: &str, port: u16) -> bool {
    list.split(',').filter(|p| !p.trim().is_empty()).any(|part| {
        let (lo, hi) = part.trim().split_once('-').unwrap_or((part.trim(), part.trim()));
        matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&port))
    })
}

/// The settings to change now: key → value.
fn wanted(host: &Host, plan: &Plan) -> BTreeMap<String, String> {
    let mut want: BTreeMap<String, String> = RULES
        .iter()
        .filter(|r| host.read(&proc_path(r.key)).is_some_and(|cur| !passes(&r.test, &cur)))
        .map(|r| (r.key.to_string(), r.value.to_string()))
        .collect();
    if let (Some(f), Some(port)) = (check_reserved(host, plan), plan.port) {
        if f.status == Status::Off {
            let cur = host.read(&proc_path(RESERVED)).unwrap_or_default();
            want.insert(RESERVED.into(), if cur.is_empty() { port.to_string() } else { format!("{cur},{port}") });
        }
    }
    want
}

/// Sets each off value now and records it in SYSCTL_FILE, keeping what earlier runs wrote there.
pub fn apply(host: &Host, plan: &Plan) -> Vec<String> {
    let want = wanted(host, plan);
    let mut lines: Vec<String> = want.iter().map(|(k, v)| set_live(host, k, v)).collect();
    let mut file = read_file(host);
    file.extend(want);
    if file.is_empty() {
        lines.push("sysctl: nothing to change".into());
        return lines;
    }
    lines.push(match host.write_file(SYSCTL_FILE, &render(&file)) {
        Ok(()) => format!("sysctl: wrote {SYSCTL_FILE} ({} setting(s), applied at boot)", file.len()),
        Err(e) => format!("sysctl: FAILED {e:#}"),
    });
    lines
}

fn set_live(host: &Host, key: &str, value: &str) -> String {
    match host.set(&proc_path(key), value) {
        Ok(()) => format!("sysctl: set {key} = {value}"),
        Err(e) => format!("sysctl: FAILED {key}: {e:#}"),
    }
}

fn read_file(host: &Host) -> BTreeMap<String, String> {
    let text = host.read(SYSCTL_FILE).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn render(settings: &BTreeMap<String, String>) -> String {
    let mut text = String::from("# Written by otlp-gateway-tune apply; see `otlp-gateway-tune check`.\n");
    for (k, v) in settings {
        text.push_str(&format!("{k} = {v}\n"));
    }
    text
}
