//! Locked-memory limits. glommio refuses to start below 512 KiB and registers its io_uring
//! buffers against RLIMIT_MEMLOCK; the packaged unit sets LimitMEMLOCK=infinity, and limits.d
//! covers runs outside systemd (a shell as the otlp-gateway user, a benchmark).

use crate::host::Host;
use crate::report::{Finding, Status};

pub const LIMITS_FILE: &str = "/etc/security/limits.d/90-otlp-gateway.conf";
const UNIT_DIRS: [&str; 3] = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
const UNIT: &str = "otlp-gateway.service";

pub fn check(host: &Host) -> Vec<Finding> {
    vec![check_unit(host), check_limits_d(host)]
}

/// The effective LimitMEMLOCK: the unit's, overridden by drop-ins in name order.
fn unit_memlock(host: &Host) -> Option<Option<String>> {
    let unit = UNIT_DIRS.iter().find_map(|d| host.read(&format!("{d}/{UNIT}")))?;
    let dropins = format!("/etc/systemd/system/{UNIT}.d");
    let names = host.list(&dropins, "");
    let texts = names.iter().filter(|n| n.ends_with(".conf")).filter_map(|n| host.read(&format!("{dropins}/{n}")));
    Some(std::iter::once(unit).chain(texts).fold(None, |last, text| memlock_line(&text).or(last)))
}

fn memlock_line(text: &str) -> Option<String> {
    text.lines().rev().find_map(|l| l.trim().strip_prefix("LimitMEMLOCK=").map(|v| v.trim().to_string()))
}

fn check_unit(host: &Host) -> Finding {
    let topic = format!("memlock {UNIT}");
    match unit_memlock(host) {
        None => Finding::new(Status::Note, topic, "unit not installed"),
        Some(Some(v)) if v == "infinity" => Finding::new(Status::Ok, topic, "LimitMEMLOCK=infinity"),
        Some(v) => {
            let cur = v.unwrap_or_else(|| "unset (systemd's default, often 8 MiB)".into());
            let why = "glommio registers its io_uring buffers against this limit; restore the packaged unit or set it in a drop-in";
            Finding::new(Status::Off, topic, format!("LimitMEMLOCK={cur}, want infinity: {why}"))
        }
    }
}

/// `otlp-gateway <type> memlock unlimited` lines cover both soft and hard limits.
fn limits_d_ok(text: &str) -> bool {
    let covered = |kind: &str| {
        text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 4
                && f[0] == "otlp-gateway"
                && (f[1] == kind || f[1] == "-")
                && f[2] == "memlock"
                && f[3] == "unlimited"
        })
    };
    covered("soft") && covered("hard")
}

fn check_limits_d(host: &Host) -> Finding {
    let topic = format!("memlock {LIMITS_FILE}");
    if host.read(LIMITS_FILE).is_some_and(|t| limits_d_ok(&t)) {
        return Finding::new(Status::Ok, topic, "otlp-gateway - memlock unlimited");
    }
    let why = "runs outside systemd (a login shell as otlp-gateway) get the PAM default, often 8 MiB or less";
    Finding::new(Status::Off, topic, format!("missing: {why}"))
}

pub fn apply(host: &Host) -> Vec<String> {
    if check_limits_d(host).status == Status::Ok {
        return vec![format!("memlock: {LIMITS_FILE} already set")];
    }
    let text = "# Written by otlp-gateway-tune apply: glommio needs locked memory for io_uring.\notlp-gateway - memlock unlimited\n";
    match host.write_file(LIMITS_FILE, text) {
        Ok(()) => vec![format!("memlock: wrote {LIMITS_FILE} (new login sessions)")],
        Err(e) => vec![format!("memlock: FAILED {e:#}")],
    }
}
