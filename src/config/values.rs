//! Scalar syntaxes: component ids, Go durations, `host:port` endpoints, core lists.

use std::net::Ipv6Addr;
use std::time::Duration;

use super::model::{ComponentId, HostPort};

/// The highest core id `parse_cores` accepts (Linux's largest `NR_CPUS` is 8192).
pub const MAX_CORE: usize = 8191;

/// Parses a collector component id, `type` or `type/name`.
pub fn parse_component_id(id: &str) -> Result<ComponentId, String> {
    let (kind, name) = match id.split_once('/') {
        Some((kind, name)) => (kind, Some(name)),
        None => (id, None),
    };
    check_type(kind).map_err(|why| format!("invalid id `{id}`: {why}"))?;
    if let Some(name) = name {
        check_name(name).map_err(|why| format!("invalid id `{id}`: {why}"))?;
    }
    let name = name.map(str::to_string);
    Ok(ComponentId { kind: kind.to_string(), name })
}

fn check_type(kind: &str) -> Result<(), &'static str> {
    let mut chars = kind.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && kind.len() <= 63 {
        Ok(())
    } else {
        Err("the type must start with a letter and hold only letters, digits and `_`")
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name after `/` must not be empty");
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '/';
    if name.chars().any(bad) || name.len() > 1024 {
        return Err("the name after `/` must not hold spaces, control characters or `/`");
    }
    Ok(())
}

/// Parses a Go duration: `5s`, `100ms`, `1m30s`, `1.5h`, `500us`/`µs`, `10ns`.
/// A bare number is an error: there is no default unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration `{text}`: {why}");
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return Err(invalid("must not be negative"));
    }
    if body.is_empty() {
        return Err(invalid("empty; use e.g. `5s` or `100ms`"));
    }
    let mut rest = body;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (term, tail) = duration_term(rest).map_err(|why| invalid(&why))?;
        nanos = nanos.saturating_add(term);
        rest = tail;
    }
    let nanos = u64::try_from(nanos).map_err(|_| invalid("too long"))?;
    Ok(Duration::from_nanos(nanos))
}

/// One `<number><unit>` term: its length in nanoseconds and what follows it.
fn duration_term(text: &str) -> Result<(u128, &str), String> {
    let is_num = |c: char| c.is_ascii_digit() || c == '.';
    let num_len = text.find(|c: char| !is_num(c)).unwrap_or(text.len());
    let (number, rest) = text.split_at(num_len);
    let unit_len = rest.find(is_num).unwrap_or(rest.len());
    let (unit, tail) = rest.split_at(unit_len);
    let scale = unit_nanos(unit)?;
    Ok((scaled(number, scale)?, tail))
}

fn unit_nanos(unit: &str) -> Result<u128, String> {
    Ok(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => return Err("missing unit; use e.g. `5s` or `100ms`".into()),
        _ => return Err(format!("unknown unit `{unit}` (use ns, us, ms, s, m or h)")),
    })
}

/// `number` (decimal, maybe with a fraction) times `scale`, in whole nanoseconds.
fn scaled(number: &str, scale: u128) -> Result<u128, String> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.len() <= 18 && d.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(format!("`{number}` is not a number"));
    }
    let value = |d: &str| d.parse::<u128>().unwrap_or(0);
    let frac_scale = 10u128.pow(u32::try_from(frac.len()).unwrap_or(0));
    Ok(value(whole) * scale + value(frac) * scale / frac_scale)
}

/// How an endpoint is checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndpointRules {
    /// A listening address: `:4317` means all interfaces, and port 0 (any free port) is allowed.
    pub listen: bool,
    /// The port used when none is given; `None` makes the port required.
    pub default_port: Option<u16>,
}

/// Receiver endpoints: `:4317` and port 0 allowed, port required.
pub(crate) const LISTEN: EndpointRules = EndpointRules { listen: true, default_port: None };

/// Parses `host:port`, `[v6]:port` or (with a default port) a bare host.
pub(crate) fn parse_endpoint(text: &str, rules: EndpointRules) -> Result<HostPort, String> {
    let invalid = |why: &str| format!("invalid endpoint `{text}`: {why}");
    let (host, port) = split_host_port(text).map_err(|why| invalid(&why))?;
    let host = check_host(host, rules.listen).map_err(|why| invalid(&why))?;
    let port = match port {
        Some(port) => check_port(port, rules.listen).map_err(|why| invalid(&why))?,
        None => rules.default_port.ok_or_else(|| invalid("missing port"))?,
    };
    Ok(HostPort { host, port })
}

fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("missing `]`")?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or_else(|| format!("unexpected `{after}` after `]`")),
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err("an IPv6 address must be in brackets, e.g. `[::1]:4317`".into()),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

fn check_host(host: &str, listen: bool) -> Result<String, String> {
    if host.is_empty() {
        return if listen { Ok("0.0.0.0".into()) } else { Err("missing host".into()) };
    }
    if host.contains(':') {
        return host
            .parse::<Ipv6Addr>()
            .map(|_| host.to_string())
            .map_err(|_| format!("`{host}` is not an IPv6 address"));
    }
    check_host_name(host).map(|()| host.to_string())
}

/// A DNS name or IPv4 address: letters, digits, `-`, `.` and `_`.
pub(crate) fn check_host_name(host: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if host.is_empty() || host.len() > 253 || !host.chars().all(ok) {
        return Err(format!("`{host}` is not a valid host name or address"));
    }
    Ok(())
}

fn check_port(port: &str, listen: bool) -> Result<u16, String> {
    if port.is_empty() {
        return Err("missing port".into());
    }
    let low = if listen { 0 } else { 1 };
    match port.parse::<u16>() {
        Ok(p) if p >= low && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("port must be a number from {low} to 65535")),
    }
}

/// Parses a core list: `"1"`, `"0-3"`, `"0,2-3"`. Sorted and deduplicated.
pub fn parse_cores(text: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in text.split(',') {
        let (first, last) = core_range(part.trim()).map_err(|why| format!("invalid core list `{text}`: {why}"))?;
        cores.extend(first..=last);
    }
    cores.sort_unstable();
    cores.dedup();
    Ok(cores)
}

fn core_range(part: &str) -> Result<(usize, usize), String> {
    let (first, last) = part.split_once('-').unwrap_or((part, part));
    let (first, last) = (core_id(first.trim())?, core_id(last.trim())?);
    if first > last {
        return Err(format!("range `{part}` runs backwards"));
    }
    Ok((first, last))
}

fn core_id(text: &str) -> Result<usize, String> {
    if text.is_empty() {
        return Err("expected a core number or range such as `0-3`".into());
    }
    match text.parse::<usize>() {
        Ok(core) if core <= MAX_CORE && text.bytes().all(|b| b.is_ascii_digit()) => Ok(core),
        Ok(_) => Err(format!("core {text} is above the maximum {MAX_CORE}")),
        Err(_) => Err(format!("`{text}` is not a core number")),
    }
}
