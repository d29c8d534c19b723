//! Interrupts and receive packet steering off the gateway's CPUs: a data-plane core that takes
//! a NIC interrupt or RPS work stalls every request it owns for that time.

use crate::host::{self, Host};
use crate::plan::Plan;
use crate::report::{Finding, Status};

const IRQBALANCE_FILES: [&str; 2] = ["/etc/default/irqbalance", "/etc/sysconfig/irqbalance"];
const BANNED: &str = "IRQBALANCE_BANNED_CPULIST";

pub fn check(host: &Host, plan: &Plan) -> Vec<Finding> {
    if plan.housekeeping.is_empty() {
        let why = "the gateway uses every online CPU, so interrupts have nowhere else to go; leave at least one CPU (per NUMA node) out of service.runtime.cores";
        return vec![Finding::new(Status::Off, "irq", why)];
    }
    let mut out = vec![check_irqs(host, plan), check_default_affinity(host, plan)];
    out.extend(check_rps(host, plan));
    out.extend(check_irqbalance(host, plan));
    out
}

/// IRQ numbers whose affinity includes a gateway CPU.
fn irqs_on_gateway(host: &Host, plan: &Plan) -> Vec<String> {
    host.list("/proc/irq", "")
        .into_iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| {
            let list = host.read(&format!("/proc/irq/{n}/smp_affinity_list")).unwrap_or_default();
            host::parse_cpulist(&list).is_some_and(|cpus| !host::overlap(&cpus, &plan.gateway).is_empty())
        })
        .collect()
}

fn check_irqs(host: &Host, plan: &Plan) -> Finding {
    let on = irqs_on_gateway(host, plan);
    if on.is_empty() {
        return Finding::new(Status::Ok, "irq affinity", "no interrupt may run on a gateway CPU");
    }
    let why = "an interrupt on a gateway CPU preempts its executor; move them to the housekeeping CPUs";
    Finding::new(Status::Off, "irq affinity", format!("IRQ {} may run on gateway CPUs: {why}", on.join(",")))
}

fn check_default_affinity(host: &Host, plan: &Plan) -> Finding {
    let topic = "irq default_smp_affinity";
    let Some(mask) = host.read("/proc/irq/default_smp_affinity") else {
        return Finding::new(Status::Note, topic, "not present");
    };
    match host::parse_mask(&mask) {
        Some(cpus) if host::overlap(&cpus, &plan.gateway).is_empty() => Finding::new(Status::Ok, topic, mask),
        _ => Finding::new(
            Status::Off,
            topic,
            format!("{mask}: interrupts registered later (a NIC reset) would land on gateway CPUs"),
        ),
    }
}

/// Every `rps_cpus` file of every interface's receive queues.
fn rps_files(host: &Host) -> Vec<String> {
    let mut files = Vec::new();
    for dev in host.list("/sys/class/net", "") {
        for q in host.list(&format!("/sys/class/net/{dev}/queues"), "rx-") {
            files.push(format!("/sys/class/net/{dev}/queues/{q}/rps_cpus"));
        }
    }
    files.into_iter().filter(|f| host.exists(f)).collect()
}

fn rps_on_gateway(host: &Host, plan: &Plan, file: &str) -> Option<Vec<usize>> {
    let cpus = host::parse_mask(&host.read(file)?)?;
    if host::overlap(&cpus, &plan.gateway).is_empty() { None } else { Some(cpus) }
}

fn check_rps(host: &Host, plan: &Plan) -> Vec<Finding> {
    let bad: Vec<String> = rps_files(host).into_iter().filter(|f| rps_on_gateway(host, plan, f).is_some()).collect();
    let rfs = host.read("/proc/sys/net/core/rps_sock_flow_entries").unwrap_or_else(|| "0".into());
    let rfs_note = Finding::new(
        Status::Note,
        "rfs",
        format!("rps_sock_flow_entries = {rfs}; RFS only steers to CPUs in rps_cpus"),
    );
    if bad.is_empty() {
        return vec![Finding::new(Status::Ok, "rps", "no receive queue steers packets to a gateway CPU"), rfs_note];
    }
    let why = "RPS would run protocol processing for other flows on a gateway CPU";
    vec![Finding::new(Status::Off, "rps", format!("{}: {why}", bad.join(" "))), rfs_note]
}

/// The CPUs listed in `IRQBALANCE_BANNED_CPULIST=` in an irqbalance environment file.
fn banned(text: &str) -> Option<Vec<usize>> {
    let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{BANNED}=")))?;
    let value = line.split_once('=')?.1.trim().trim_matches('"');
    host::parse_cpulist(value)
}

fn check_irqbalance(host: &Host, plan: &Plan) -> Vec<Finding> {
    let files: Vec<&str> = IRQBALANCE_FILES.iter().copied().filter(|f| host.exists(f)).collect();
    if files.is_empty() {
        return vec![Finding::new(
            Status::Note,
            "irqbalance",
            "not installed (no /etc/default or /etc/sysconfig file)",
        )];
    }
    files.into_iter().map(|f| irqbalance_finding(host, plan, f)).collect()
}

fn irqbalance_finding(host: &Host, plan: &Plan, file: &str) -> Finding {
    let cur = banned(&host.read(file).unwrap_or_default()).unwrap_or_default();
    let topic = format!("irqbalance {file}");
    if host::without(&plan.gateway, &cur).is_empty() {
        return Finding::new(Status::Ok, topic, format!("{BANNED}={}", host::format_cpulist(&cur)));
    }
    let why = "irqbalance would move interrupts back onto gateway CPUs";
    Finding::new(Status::Off, topic, format!("{BANNED} does not cover {}: {why}", host::format_cpulist(&plan.gateway)))
}

pub fn apply(host: &Host, plan: &Plan) -> Vec<String> {
    if plan.housekeeping.is_empty() {
        return vec!["irq: skipped: the gateway uses every CPU, no CPU is left for interrupts".into()];
    }
    let mut lines = apply_irqs(host, plan);
    lines.extend(apply_rps(host, plan));
    lines.extend(apply_irqbalance(host, plan));
    lines
}

/// Live only: irqbalance (banned list) and the operator's `irqaffinity=` keep it after a reboot.
fn apply_irqs(host: &Host, plan: &Plan) -> Vec<String> {
    let list = host::format_cpulist(&plan.housekeeping);
    let mut lines: Vec<String> = irqs_on_gateway(host, plan)
        .iter()
        .map(|n| match host.set(&format!("/proc/irq/{n}/smp_affinity_list"), &list) {
            Ok(()) => format!("irq: IRQ {n} → CPUs {list}"),
            Err(e) => format!("irq: IRQ {n} stays (the kernel refused: {e:#})"),
        })
        .collect();
    if host.exists("/proc/irq/default_smp_affinity") {
        let mask = host::format_mask(&plan.housekeeping);
        lines.push(outcome("irq: default_smp_affinity", host.set("/proc/irq/default_smp_affinity", &mask)));
    }
    lines
}

fn apply_rps(host: &Host, plan: &Plan) -> Vec<String> {
    rps_files(host)
        .into_iter()
        .filter_map(|f| Some((rps_on_gateway(host, plan, &f)?, f)))
        .map(|(cpus, f)| {
            let mask = host::format_mask(&host::without(&cpus, &plan.gateway));
            outcome(&format!("rps: {f} = {mask}"), host.set(&f, &mask))
        })
        .collect()
}

fn apply_irqbalance(host: &Host, plan: &Plan) -> Vec<String> {
    let list = host::format_cpulist(&plan.gateway);
    IRQBALANCE_FILES
        .iter()
        .filter(|f| host.exists(f))
        .map(|f| {
            let text = with_banned(&host.read(f).unwrap_or_default(), &list);
            let done = outcome(&format!("irqbalance: {BANNED}={list} in {f}"), host.write_file(f, &text));
            format!("{done}; then `systemctl restart irqbalance` (irqbalance >= 1.8 reads this key)")
        })
        .collect()
}

/// The file with its banned-CPU line replaced (or added).
fn with_banned(text: &str, list: &str) -> String {
    let line = format!("{BANNED}=\"{list}\"");
    let mut out: Vec<String> =
        text.lines().filter(|l| !l.trim_start().starts_with(&format!("{BANNED}="))).map(str::to_string).collect();
    out.push(line);
    out.join("\n") + "\n"
}

fn outcome(what: &str, result: anyhow::Result<()>) -> String {
    match result {
        Ok(()) => what.to_string(),
        Err(e) => format!("{what}: FAILED {e:#}"),
    }
}
