//! check and apply against a fake root: a 4-CPU host with stock kernel defaults.

use std::fs;
use std::path::PathBuf;

use crate::host::{self, Host};
use crate::plan::Plan;
use crate::report::{Finding, Status};
use crate::{apply, check};

/// A throwaway root directory, removed on drop.
struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new(name: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!("otlp-tune-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Fake { dir }
    }

    fn file(&self, rel: &str, text: &str) -> &Fake {
        self.host().write_file(rel, &format!("{text}\n")).expect("fake file");
        self
    }

    fn host(&self) -> Host {
        Host::new(&self.dir)
    }

    fn read(&self, rel: &str) -> String {
        self.host().read(rel).unwrap_or_else(|| panic!("{rel} missing"))
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Stock kernel values, IRQ 24 on every CPU, IRQ 25 on CPU 0, eth0 with 2 queues and RPS on.
fn stock(name: &str) -> Fake {
    let f = Fake::new(name);
    f.file("/sys/devices/system/cpu/online", "0-3")
        .file("/sys/devices/system/node/node0/cpulist", "0-3")
        .file("/proc/sys/net/core/somaxconn", "128")
        .file("/proc/sys/net/ipv4/tcp_max_syn_backlog", "512")
        .file("/proc/sys/net/core/rmem_max", "212992")
        .file("/proc/sys/net/core/wmem_max", "212992")
        .file("/proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456")
        .file("/proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304")
        .file("/proc/sys/net/ipv4/ip_local_port_range", "32768\t60999")
        .file("/proc/sys/net/ipv4/ip_local_reserved_ports", "")
        .file("/proc/irq/24/smp_affinity_list", "0-3")
        .file("/proc/irq/25/smp_affinity_list", "0")
        .file("/proc/irq/default_smp_affinity", "f")
        .file("/sys/class/net/eth0/device/vendor", "0x8086")
        .file("/sys/class/net/eth0/queues/rx-0/rps_cpus", "0000000e")
        .file("/sys/class/net/eth0/queues/rx-1/rps_cpus", "00000000")
        .file("/sys/class/net/lo/queues/rx-0/rps_cpus", "00000000")
        .file("/etc/default/irqbalance", "#IRQBALANCE_BANNED_CPULIST=\nIRQBALANCE_ONESHOT=0")
        .file("/usr/lib/systemd/system/otlp-gateway.service", "[Service]\nLimitMEMLOCK=infinity")
        .file("/proc/cmdline", "root=/dev/vda1 ro");
    f
}

fn plan(gateway: &[usize], port: Option<u16>) -> Plan {
    Plan::new(vec![0, 1, 2, 3], gateway.to_vec(), port)
}

fn status_of(findings: &[Finding], topic: &str) -> Status {
    findings.iter().find(|f| f.topic == topic).unwrap_or_else(|| panic!("no finding {topic}: {findings:#?}")).status
}

fn off_topics(findings: &[Finding]) -> Vec<String> {
    findings.iter().filter(|f| f.status == Status::Off).map(|f| f.topic.clone()).collect()
}

#[test]
fn check_reports_stock_kernel_settings_off() {
    let f = stock("stock");
    let found = check(&f.host(), &plan(&[1, 2, 3], Some(4317)));
    for key in ["net.core.somaxconn", "net.core.rmem_max", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"] {
        assert_eq!(status_of(&found, &format!("sysctl {key}")), Status::Off, "{key}");
    }
    assert_eq!(status_of(&found, "sysctl net.ipv4.ip_local_port_range"), Status::Ok);
    let irq = found.iter().find(|x| x.topic == "irq affinity").expect("irq finding");
    assert!(irq.detail.starts_with("IRQ 24 may run"), "{}", irq.detail);
    for topic in ["rps", "irqbalance /etc/default/irqbalance", "irq default_smp_affinity", "nic eth0"] {
        assert_eq!(status_of(&found, topic), Status::Off, "{topic}");
    }
    assert_eq!(status_of(&found, "memlock otlp-gateway.service"), Status::Ok);
    assert!(found.iter().all(|x| x.topic != "nic lo"), "lo has no device and no queue advice");
}

#[test]
fn check_changes_nothing() {
    let f = stock("readonly");
    check(&f.host(), &plan(&[1, 2, 3], Some(4317)));
    assert_eq!(f.read("/proc/sys/net/core/somaxconn"), "128");
    assert!(!f.host().exists("/etc/sysctl.d/60-otlp-gateway.conf"));
}

#[test]
fn apply_fixes_everything_but_the_operators_steps() {
    let f = stock("apply");
    let p = plan(&[1, 2, 3], Some(4317));
    let lines = apply(&f.host(), &p);
    assert!(lines.iter().any(|l| l.contains("ethtool -L eth0 combined 1")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("nohz_full=1-3")), "{lines:#?}");
    assert_eq!(off_topics(&check(&f.host(), &p)), vec!["nic eth0".to_string()]);
}

#[test]
fn apply_writes_live_values_and_files() {
    let f = stock("files");
    apply(&f.host(), &plan(&[1, 2, 3], Some(4317)));
    assert_eq!(f.read("/proc/sys/net/core/somaxconn"), "4096");
    let conf = f.read("/etc/sysctl.d/60-otlp-gateway.conf");
    assert!(conf.contains("net.ipv4.tcp_rmem = 4096 131072 16777216"), "{conf}");
    assert!(!conf.contains("ip_local_port_range"), "a passing setting is not written: {conf}");
    assert_eq!(f.read("/proc/irq/24/smp_affinity_list"), "0");
    assert_eq!(f.read("/proc/irq/default_smp_affinity"), "00000001");
    assert_eq!(f.read("/sys/class/net/eth0/queues/rx-0/rps_cpus"), "00000000");
    let irqb = f.read("/etc/default/irqbalance");
    assert!(irqb.contains("IRQBALANCE_BANNED_CPULIST=\"1-3\"") && irqb.contains("IRQBALANCE_ONESHOT=0"), "{irqb}");
    assert!(f.read("/etc/security/limits.d/90-otlp-gateway.conf").contains("otlp-gateway - memlock unlimited"));
}

#[test]
fn apply_keeps_larger_values_and_earlier_entries() {
    let f = stock("keep");
    f.file("/proc/sys/net/core/rmem_max", "67108864")
        .file("/etc/sysctl.d/60-otlp-gateway.conf", "net.core.netdev_max_backlog = 5000");
    apply(&f.host(), &plan(&[1, 2, 3], None));
    assert_eq!(f.read("/proc/sys/net/core/rmem_max"), "67108864");
    let conf = f.read("/etc/sysctl.d/60-otlp-gateway.conf");
    assert!(!conf.contains("rmem_max") && conf.contains("netdev_max_backlog = 5000"), "{conf}");
}

#[test]
fn listen_port_inside_the_ephemeral_range_is_reserved() {
    let f = stock("port");
    f.file("/proc/sys/net/ipv4/ip_local_reserved_ports", "8080");
    let p = plan(&[1, 2, 3], Some(40000));
    assert_eq!(status_of(&check(&f.host(), &p), "sysctl net.ipv4.ip_local_reserved_ports"), Status::Off);
    apply(&f.host(), &p);
    assert_eq!(f.read("/proc/sys/net/ipv4/ip_local_reserved_ports"), "8080,40000");
    assert_eq!(status_of(&check(&f.host(), &p), "sysctl net.ipv4.ip_local_reserved_ports"), Status::Ok);
}

#[test]
fn gateway_on_every_cpu_is_off_and_irqs_stay() {
    let f = stock("allcpus");
    let p = plan(&[0, 1, 2, 3], None);
    assert_eq!(status_of(&check(&f.host(), &p), "irq"), Status::Off);
    apply(&f.host(), &p);
    assert_eq!(f.read("/proc/irq/24/smp_affinity_list"), "0-3");
}

#[test]
fn memlock_below_infinity_in_a_dropin_is_off() {
    let f = stock("memlock");
    f.file("/etc/systemd/system/otlp-gateway.service.d/override.conf", "[Service]\nLimitMEMLOCK=64K");
    let found = check(&f.host(), &plan(&[1, 2, 3], None));
    assert_eq!(status_of(&found, "memlock otlp-gateway.service"), Status::Off);
}

#[test]
fn numa_recommends_a_list_per_node_and_flags_a_span() {
    let f = stock("numa");
    f.file("/sys/devices/system/node/node0/cpulist", "0-1").file("/sys/devices/system/node/node1/cpulist", "2-3");
    let found = check(&f.host(), &plan(&[1, 2], None));
    let node1 = found.iter().find(|x| x.topic == "numa node1").expect("node1");
    assert!(node1.detail.ends_with("\"3\""), "{}", node1.detail);
    assert_eq!(status_of(&found, "numa"), Status::Off);
    assert_eq!(status_of(&check(&f.host(), &plan(&[3], None)), "numa"), Status::Ok);
}

#[test]
fn plan_reads_cores_and_port_from_the_config() {
    let f = stock("config");
    let yaml = include_str!("../../packaging/config.yaml")
        .replace("# runtime:", "runtime:")
        .replace("#   cores: \"1-7\"", "  cores: \"2-3\"");
    f.file("/etc/otlp-gateway/config.yaml", &yaml);
    let p = Plan::load(&f.host(), None, None).expect("plan");
    assert_eq!((p.gateway.clone(), p.housekeeping.clone(), p.port), (vec![2, 3], vec![0, 1], Some(4317)));
    let p = Plan::load(&f.host(), None, Some("1")).expect("plan with --cores");
    assert_eq!(p.gateway, vec![1]);
}

#[test]
fn plan_without_config_needs_cores() {
    let f = stock("noconfig");
    assert!(Plan::load(&f.host(), None, None).is_err());
    assert_eq!(Plan::load(&f.host(), None, Some("3")).expect("plan").housekeeping, vec![0, 1, 2]);
}

#[test]
fn masks_and_lists_round_trip() {
    assert_eq!(host::parse_mask("00000000,00000003"), Some(vec![0, 1]));
    assert_eq!(host::format_mask(&[0, 33]), "00000002,00000001");
    assert_eq!(host::format_mask(&[]), "00000000");
    assert_eq!(host::parse_mask("xyz"), None);
    assert_eq!(host::format_cpulist(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert_eq!(host::parse_cpulist(""), Some(vec![]));
}

#[test]
fn apply_reports_what_it_could_not_write() {
    let f = stock("readonly-etc");
    fs::remove_dir_all(f.dir.join("etc")).expect("remove etc");
    fs::write(f.dir.join("etc"), "not a directory").expect("etc as a file");
    let lines = apply(&f.host(), &plan(&[1, 2, 3], None));
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failed.len(), 2, "sysctl.d and limits.d: {lines:#?}");
    assert_eq!(f.read("/proc/sys/net/core/somaxconn"), "4096", "live values are still set");
}
