//! The markdown section: tables with ratios against the peers of the same run, and the
//! issue's targets checked. It replaces the text between the markers in benchmarks.md.

use std::fmt::Write;
use std::process::Command;

use anyhow::Result;

use crate::measure::Run;
use crate::opts::Opts;
use crate::phases::{Path, Results, samples};

const BEGIN: &str = "<!-- e2e:begin (written by `cargo bench --bench e2e`) -->";
const END: &str = "<!-- e2e:end -->";

pub fn render(o: &Opts, r: &Results) -> String {
    let mut s = String::new();
    s.push_str(&header(o, r));
    s.push_str(&full_table(r));
    s.push_str(&fixed_table(o, r));
    s.push_str(&sweep_table(r));
    s.push_str(&variant_table(o, r));
    s.push_str(&core_table(r));
    s.push_str(&memory_table(r));
    s.push_str(&targets(o, r));
    format!("{BEGIN}\n{s}{END}\n")
}

/// Replaces the section in `benchmarks.md` (appends it the first time).
pub fn write(o: &Opts, section: &str) -> Result<()> {
    std::fs::create_dir_all(&o.out)?;
    let old = std::fs::read_to_string(o.doc()).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &old[..b], &old[e + END.len()..].trim_start_matches('\n'))
        }
        _ => format!("{}\n{section}", old.trim_end_matches('\n').to_owned() + "\n"),
    };
    Ok(std::fs::write(o.doc(), new)?)
}

pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output();
    out.map(|o| String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout }).trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1));
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: u64 = mem.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    let model = model.unwrap_or("?").trim();
    let gib = (kib + (1 << 19)) >> 20;
    format!("nproc {}, {model}, {gib} GiB RAM, Linux {}", sh("nproc", &[]), sh("uname", &["-r"]))
}

/// The line every figure carries: command, machine, date.
pub fn stamp(o: &Opts, r: &Results) -> String {
    format!("command: {} · {} · {}", o.command(), machine(), r.started)
}

fn header(o: &Opts, r: &Results) -> String {
    format!(
        "#### Latest run\n\n\
         Command: `{}`. Date: {} (load average at the start: {}). Machine: {}; {}.\n\
         {} s per run; full-load, half-load and fixed-rate rows are the median of {} interleaved rounds\n\
         (every sample in brackets). The proxy under test runs on CPU {}; {}. Requests: 100 spans (~350 B each, 36.7 KB), distinct trace ids, trace-ID routing to 3\n\
         sinks; full load is closed-loop with 4 connections × 16 streams. CPU is the proxy process's\n\
         utime+stime from /proc/PID/stat over the run (nginx: its worker); \"CPUs busy\" is each CPU's\n\
         non-idle share from /proc/stat over the run, any other process included; latency is loadgen's. The\n\
         gateway exports with `compression: none` (nginx forwards bytes as they came) unless a row says\n\
         otherwise. The Collector peer (`benches/otelcol/build.sh`: OTLP receiver and `loadbalancing`\n\
         exporter, v0.161.0, `GOMAXPROCS=1`) has the same exporter settings, with its sending queue\n\
         off so that, like the gateway, it answers once the sinks have every part. Plots: [throughput](bench/throughput.svg), [latency](bench/latency.svg),\n\
         [CPU per span](bench/cpu.svg).\n\n",
        o.command(),
        r.started,
        r.load_avg,
        machine(),
        sh(o.nginx.to_str().unwrap_or("nginx"), &["-v"]),
        o.secs,
        o.reps,
        o.proxy_cpu,
        harness_cpus(o),
    )
}

/// Where loadgen and the sinks run.
fn harness_cpus(o: &Opts) -> String {
    match o.sink_cpu.filter(|&c| c != o.load_cpu) {
        Some(sinks) => format!("loadgen runs on CPU {}, the 3 sinks on CPU {sinks}", o.load_cpu),
        None => format!("loadgen and the 3 sinks share\nCPU {}", o.load_cpu),
    }
}

/// `a / b / c` of `key` over every sample.
fn all(runs: Option<&[Run]>, key: impl Fn(&Run) -> String) -> String {
    runs.map_or(String::new(), |v| format!(" [{}]", v.iter().map(key).collect::<Vec<_>>().join(" / ")))
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.filter(|b| *b > 0.0).map_or("–".into(), |b| format!("{:.2}", a / b))
}

fn us(run: &Run) -> String {
    run.us_per_span().map_or("–".into(), |u| format!("{u:.3}"))
}

/// `0: 97%, 1: 100%` (CPU number: busy fraction over the run).
fn busy(run: &Run) -> String {
    let each = run.cpu_busy.iter().enumerate().map(|(i, b)| format!("{i}: {:.0}%", b * 100.0));
    each.collect::<Vec<_>>().join(", ")
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn full_table(r: &Results) -> String {
    let direct = r.full_of(Path::Direct).map(|d| d.spans_per_s);
    let nginx = r.full_of(Path::Nginx).map(|d| d.spans_per_s);
    let collector = r.full_of(Path::Collector).map(|d| d.spans_per_s);
    let mut s = String::from(
        "#### Full load (closed loop)\n\n| path | spans/s (median [all]) | vs direct | vs nginx | vs Collector | p50 | p99 | proxy CPU µs/span | proxy RSS halfway | CPUs busy | failed requests |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in Path::ALL {
        let Some(run) = r.full_of(p) else { continue };
        let samples = all(samples(&r.full, p), |x| format!("{:.0}", x.spans_per_s));
        let _ = writeln!(
            s,
            "| {} | {:.0}{samples} | {} | {} | {} | {:.2} ms | {:.2} ms | {} | {} | {} | {} |",
            p.label(),
            run.spans_per_s,
            ratio(run.spans_per_s, direct),
            ratio(run.spans_per_s, nginx),
            ratio(run.spans_per_s, collector),
            run.p50_ms,
            run.p99_ms,
            us(run),
            mib(run.proxy_rss_kib),
            busy(run),
            run.failed
        );
    }
    s + "\n" + &failures(r)
}

/// Why requests failed in the full-load runs (failed requests count in no figure).
fn failures(r: &Results) -> String {
    let runs = r.full.iter().flat_map(|(p, v)| v.iter().map(move |run| (p, run)));
    let mut reasons: Vec<String> =
        runs.flat_map(|(p, run)| run.errors.iter().map(move |e| format!("{}: {e}", p.short()))).collect();
    reasons.dedup();
    if reasons.is_empty() {
        return String::new();
    }
    format!("Failed requests in these runs (loadgen's reasons, `xN` = count): {}.\n\n", reasons.join("; "))
}

fn fixed_table(o: &Opts, r: &Results) -> String {
    let nginx = r.fixed_of(Path::Nginx).and_then(Run::us_per_span);
    let mut s = format!(
        "#### CPU per span at a fixed {} spans/s\n\n| path | spans/s reached | proxy CPU µs/span (median [all]) | vs nginx | p99 |\n|---|---|---|---|---|\n",
        o.rate
    );
    for p in Path::PROXIES {
        let Some(run) = r.fixed_of(p) else { continue };
        let rel = run.us_per_span().map_or("–".into(), |u| ratio(u, nginx));
        let samples = all(samples(&r.fixed, p), us);
        let _ = writeln!(
            s,
            "| {} | {:.0} | {}{samples} | {rel} | {:.2} ms |",
            p.label(),
            run.spans_per_s,
            us(run),
            run.p99_ms
        );
    }
    s + "\n"
}

fn sweep_table(r: &Results) -> String {
    let mut s = String::from("#### Latency versus load (open loop)\n\n| offered spans/s |");
    for p in Path::ALL {
        let _ = write!(s, " {} spans/s · p50 / p99 |", p.short());
    }
    s.push_str(&format!("\n|---|{}\n", "---|".repeat(Path::ALL.len())));
    let mut rates: Vec<u64> = r.sweep.iter().map(|(_, rate, _)| *rate).collect();
    rates.dedup();
    for rate in rates {
        let _ = write!(s, "| {rate} |");
        for p in Path::ALL {
            let cell = r.sweep.iter().find(|(q, x, _)| *q == p && *x == rate).map(|(_, _, run)| run);
            let cell =
                cell.map_or("–".into(), |x| format!("{:.0} · {:.2} / {:.2} ms", x.spans_per_s, x.p50_ms, x.p99_ms));
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s + "\n" + &half_line(r)
}

/// p99 added by the gateway at half its full load (the target's operating point).
fn half_line(r: &Results) -> String {
    let (Some(d), Some(g)) = (r.half_of(Path::Direct), r.half_of(Path::Gateway)) else { return String::new() };
    let p99s = |p| all(samples(&r.half, p), |x| format!("{:.2}", x.p99_ms));
    format!(
        "At half the gateway's full load ({:.0} spans/s), medians: p99 direct {:.2} ms{}, through the gateway {:.2} ms{}, added **{:.2} ms** (p50 added {:.2} ms). CPUs busy: direct {}; through the gateway {}.\n\n",
        g.spans_per_s,
        d.p99_ms,
        p99s(Path::Direct),
        g.p99_ms,
        p99s(Path::Gateway),
        g.p99_ms - d.p99_ms,
        g.p50_ms - d.p50_ms,
        busy(d),
        busy(g)
    )
}

/// Bytes of a span as plain protobuf (from the gRPC protobuf run's bytes sent).
fn protobuf_bytes_per_span(r: &Results) -> f64 {
    r.full_of(Path::Gateway).map_or(367.0, |g| g.bytes_ok as f64 / g.spans_ok.max(1) as f64)
}

/// MB of request bodies as sent, and MB of the same spans as plain protobuf, per CPU-second.
fn mb_per_cpu_s(run: &Run, pb_per_span: f64) -> Option<(f64, f64)> {
    let cpu = run.proxy_cpu_s?.max(1e-9);
    Some((run.bytes_ok as f64 / 1e6 / cpu, run.spans_ok as f64 * pb_per_span / 1e6 / cpu))
}

fn variant_table(o: &Opts, r: &Results) -> String {
    let base = r.full_of(Path::Gateway);
    let pb = protobuf_bytes_per_span(r);
    let mut s = format!(
        "#### Gateway variants (same gateway core)\n\n| variant | full load spans/s | vs gRPC protobuf | request MB/s as sent | CPU µs/span at full load | MB as sent per CPU-second | MB as protobuf per CPU-second | CPU µs/span at {} spans/s |\n|---|---|---|---|---|---|---|---|\n",
        o.rate
    );
    let fixed = r.fixed_of(Path::Gateway).cloned().unwrap_or_default();
    let rows = base.map(|b| ("gRPC protobuf (the median rows above)", b.clone(), fixed));
    let rows = rows.into_iter().chain(r.variants.iter().map(|v| (v.name, v.full.clone(), v.fixed.clone())));
    for (name, f, fixed) in rows {
        let mb = f.bytes_ok as f64 / 1e6;
        let (sent, proto) =
            mb_per_cpu_s(&f, pb).map_or(("–".into(), "–".into()), |(a, b)| (format!("{a:.0}"), format!("{b:.0}")));
        let (rel, rate) = (ratio(f.spans_per_s, base.map(|b| b.spans_per_s)), mb / f.secs.max(1e-9));
        let _ = writeln!(
            s,
            "| {name} | {:.0} | {rel} | {rate:.0} | {} | {sent} | {proto} | {} |",
            f.spans_per_s,
            us(&f),
            us(&fixed)
        );
    }
    s + "\n"
}

fn core_table(r: &Results) -> String {
    let mut s = String::from(
        "#### 1 vs 2 gateway cores (loadgen and sinks share the second CPU)\n\n| gateway | client connections | spans/s | p99 | connections per core (gauge, halfway) |\n|---|---|---|---|---|\n",
    );
    for c in &r.cores {
        let spread: Vec<String> = c.per_core.iter().map(|(core, n)| format!("CPU {core}: {n}")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} ms | {} |",
            c.cores,
            c.connections,
            c.run.spans_per_s,
            c.run.p99_ms,
            spread.join(", ")
        );
    }
    s + "\n"
}

fn memory_table(r: &Results) -> String {
    let mut s = String::from("#### Memory\n\n| state | resident |\n|---|---|\n");
    for (what, kib) in &r.memory {
        let _ = writeln!(s, "| {what} | {} |", mib(Some(*kib)));
    }
    for n in &r.notes {
        let _ = writeln!(s, "\nNote: {n}");
    }
    s + "\n"
}

/// A caveat when the load CPU was nearly saturated during `run`: loadgen and the sinks then
/// queue behind each other, and their own waiting is part of the latency measured.
fn saturated_load_cpu(o: &Opts, run: &Run) -> String {
    let busiest =
        [o.load_cpu, o.sinks_cpu()].iter().filter_map(|&c| run.cpu_busy.get(c)).fold(0.0, |a: f64, &b| a.max(b));
    if busiest < 0.9 {
        return String::new();
    }
    format!(
        " (the load CPU was {:.0}% busy through the gateway: loadgen's and the sinks' own queueing is part of this figure)",
        busiest * 100.0
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn targets(o: &Opts, r: &Results) -> String {
    let mut s = String::from("#### Targets (issues 2 and 8)\n\n");
    let us_of = |p| r.fixed_of(p).and_then(Run::us_per_span);
    if let (Some(g), Some(n)) = (us_of(Path::Gateway), us_of(Path::Nginx)) {
        let _ = writeln!(
            s,
            "- CPU per span at {} spans/s ≤ ¼ of nginx's (issue 8): {:.3} vs {:.3} µs = {:.2}× — {}; ≤ ½ (issue 2): {}",
            o.rate,
            g,
            n,
            g / n,
            verdict(g <= n / 4.0),
            verdict(g <= n / 2.0)
        );
    }
    if let (Some(g), Some(d)) = (r.full_of(Path::Gateway), r.full_of(Path::Direct)) {
        let f = g.spans_per_s / d.spans_per_s;
        let _ = writeln!(s, "- full load ≥ 95% of direct: {:.0}% — {}", f * 100.0, verdict(f >= 0.95));
    }
    if let (Some(d), Some(g)) = (r.half_of(Path::Direct), r.half_of(Path::Gateway)) {
        let added = g.p99_ms - d.p99_ms;
        let _ = writeln!(
            s,
            "- p99 added ≤ 1 ms at half load: {added:.2} ms — {}{}",
            verdict(added <= 1.0),
            saturated_load_cpu(o, g)
        );
    }
    if let Some(kib) = r.gateway_peak_kib {
        let _ = writeln!(
            s,
            "- RSS ≤ 64 MiB (peak VmHWM of the 1-core gateway over every run above): {} — {}",
            mib(Some(kib)),
            verdict(kib <= 64 << 10)
        );
    }
    if let Some(v) = r.variants.iter().find(|v| v.name.contains("gzip request")) {
        let (sent, proto) = mb_per_cpu_s(&v.full, protobuf_bytes_per_span(r)).unwrap_or((0.0, 0.0));
        let _ = writeln!(
            s,
            "- gzip receive ≥ 400 MB/s of compressed input per core: {sent:.0} MB compressed ({proto:.0} MB as protobuf) per CPU-second — {}",
            verdict(sent >= 400.0)
        );
    }
    s + "\n"
}
