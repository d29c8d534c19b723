//! NUMA layout, NIC queue counts and boot parameters: recommendations the operator carries out.

use crate::host::{self, Host};
use crate::plan::Plan;
use crate::report::{Finding, Status};

/// `(node number, its CPUs)`; one node 0 with every online CPU when the kernel has no NUMA.
pub fn nodes(host: &Host, plan: &Plan) -> Vec<(usize, Vec<usize>)> {
    let dir = "/sys/devices/system/node";
    let found: Vec<(usize, Vec<usize>)> = host
        .list(dir, "node")
        .iter()
        .filter_map(|n| {
            let id = n.strip_prefix("node")?.parse().ok()?;
            Some((id, host::parse_cpulist(&host.read(&format!("{dir}/{n}/cpulist"))?)?))
        })
        .filter(|(_, cpus)| !cpus.is_empty())
        .collect();
    if found.is_empty() { vec![(0, plan.online.clone())] } else { found }
}

/// A node's CPUs less its first, which stays for interrupts, the control thread and the OS.
pub fn recommended(cpus: &[usize]) -> Vec<usize> {
    cpus.iter().copied().skip(1).collect()
}

pub fn check(host: &Host, plan: &Plan) -> Vec<Finding> {
    let nodes = nodes(host, plan);
    let mut out: Vec<Finding> = nodes.iter().map(|(id, cpus)| node_note(*id, cpus)).collect();
    out.push(check_span(&nodes, plan));
    out.extend(nics(host).iter().map(|nic| check_queues(host, plan, nic)));
    out.push(check_boot(host, plan));
    out
}

fn node_note(id: usize, cpus: &[usize]) -> Finding {
    let rec = host::format_cpulist(&recommended(cpus));
    let detail = format!("CPUs {}; recommended service.runtime.cores \"{}\"", host::format_cpulist(cpus), rec);
    Finding::new(Status::Note, format!("numa node{id}"), detail)
}

/// One gateway should stay on one node: its NIC's interrupts and memory are there.
fn check_span(nodes: &[(usize, Vec<usize>)], plan: &Plan) -> Finding {
    let used: Vec<String> = nodes
        .iter()
        .filter(|(_, cpus)| !host::overlap(cpus, &plan.gateway).is_empty())
        .map(|(id, _)| id.to_string())
        .collect();
    if used.len() <= 1 {
        return Finding::new(Status::Ok, "numa", format!("gateway CPUs are on node {}", used.join("")));
    }
    let why = "traffic arrives on one NIC, on one node; run one gateway per node (each with its own NIC and port) or use the NIC's node";
    Finding::new(Status::Off, "numa", format!("gateway CPUs span nodes {}: {why}", used.join(",")))
}

/// Network interfaces backed by a device (not lo, bridges or veths).
fn nics(host: &Host) -> Vec<String> {
    host.list("/sys/class/net", "").into_iter().filter(|d| host.exists(&format!("/sys/class/net/{d}/device"))).collect()
}

fn queue_count(host: &Host, nic: &str) -> usize {
    host.list(&format!("/sys/class/net/{nic}/queues"), "rx-").len()
}

/// Queue interrupts go to the housekeeping CPUs: one queue per such CPU spreads them without
/// stacking several queues' interrupts on one CPU.
fn check_queues(host: &Host, plan: &Plan, nic: &str) -> Finding {
    let (queues, want) = (queue_count(host, nic), plan.housekeeping.len().max(1));
    let topic = format!("nic {nic}");
    if queues == want {
        return Finding::new(Status::Ok, topic, format!("{queues} rx queue(s), one per housekeeping CPU"));
    }
    let why =
        "each queue's interrupt goes to a housekeeping CPU; more queues stack on the same CPUs, fewer leave CPUs idle";
    Finding::new(
        Status::Off,
        topic,
        format!("{queues} rx queue(s), want {want} (`ethtool -L {nic} combined {want}`): {why}"),
    )
}

/// Kernel command line that takes the gateway's CPUs away from the scheduler's housekeeping.
pub fn boot_params(plan: &Plan) -> String {
    let (gw, hk) = (host::format_cpulist(&plan.gateway), host::format_cpulist(&plan.housekeeping));
    format!("isolcpus=managed_irq,domain,{gw} nohz_full={gw} rcu_nocbs={gw} irqaffinity={hk}")
}

fn check_boot(host: &Host, plan: &Plan) -> Finding {
    let cmdline = host.read("/proc/cmdline").unwrap_or_default();
    let missing: Vec<&str> = ["isolcpus=", "nohz_full=", "rcu_nocbs=", "irqaffinity="]
        .into_iter()
        .filter(|p| !cmdline.split_whitespace().any(|w| w.starts_with(p)))
        .collect();
    if plan.housekeeping.is_empty() {
        return Finding::new(Status::Note, "boot", "no CPU is left for the OS, so no isolation to recommend");
    }
    if missing.is_empty() {
        return Finding::new(Status::Ok, "boot", "isolcpus, nohz_full, rcu_nocbs and irqaffinity are set");
    }
    let detail = format!("optional, yours to add to the boot loader (needs a reboot): {}", boot_params(plan));
    Finding::new(Status::Note, "boot", detail)
}

/// What `apply` leaves to the operator, printed after its own actions.
pub fn operator_steps(host: &Host, plan: &Plan) -> Vec<String> {
    let mut lines = vec!["operator: steps this tool does not take:".to_string()];
    for nic in nics(host) {
        if check_queues(host, plan, &nic).status == Status::Off {
            let want = plan.housekeeping.len().max(1);
            lines.push(format!("  ethtool -L {nic} combined {want}   # NIC queues, one per housekeeping CPU"));
        }
    }
    if !plan.housekeeping.is_empty() {
        lines.push(format!("  kernel command line (reboot): {}", boot_params(plan)));
    }
    lines.push("  systemctl restart otlp-gateway   # if service.runtime.cores changed".into());
    lines
}
