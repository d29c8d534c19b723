//! The live status page at `/` on the metrics address: self-contained HTML (no scripts, no
//! external assets) that reloads itself every 2 s. It shows readiness, each backend with its
//! health and share of the key space, spans/s per backend and per core, and recent errors.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use super::CoreSnapshot;
use super::health::{Verdict, httpdate_rfc3339};
use super::prometheus::{Names, Totals};

/// A sample: when, spans sent per backend, spans accepted per CPU.
type Sample = (Instant, BTreeMap<String, u64>, BTreeMap<usize, u64>);

/// Span rates between two page loads (at least 0.5 s apart; closer loads keep the last rates).
#[derive(Debug, Default)]
pub struct Rates {
    last: Option<Sample>,
    /// Spans/s sent per backend.
    pub backends: BTreeMap<String, f64>,
    /// Spans/s accepted per core (CPU).
    pub cores: BTreeMap<usize, f64>,
}

impl Rates {
    /// Takes a new sample.
    pub fn update(&mut self, totals: &Totals, cores: &[CoreSnapshot]) {
        let now = Instant::now();
        let backends: BTreeMap<String, u64> = totals.backends.iter().map(|(n, b)| (n.clone(), b.items.ok[0])).collect();
        let per_core: BTreeMap<usize, u64> =
            cores.iter().map(|c| (c.cpu, c.counters.receivers.iter().map(|r| r.ok[0]).sum())).collect();
        if let Some((at, b0, c0)) = &self.last {
            let secs = now.duration_since(*at).as_secs_f64();
            if secs < 0.5 {
                return;
            }
            self.backends = rates(&backends, b0, secs);
            self.cores = rates(&per_core, c0, secs);
        }
        self.last = Some((now, backends, per_core));
    }
}

fn rates<K: Ord + Clone>(now: &BTreeMap<K, u64>, before: &BTreeMap<K, u64>, secs: f64) -> BTreeMap<K, f64> {
    let rate = |(k, v): (&K, &u64)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0)) as f64 / secs);
    now.iter().map(rate).collect()
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}\
td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}th{background:#eee}td.l{text-align:left}\
.ok{color:#070}.bad{color:#b00;font-weight:bold}";

/// The page.
pub fn render(
    verdict: Verdict,
    totals: &Totals,
    cores: &[CoreSnapshot],
    rates: &Rates,
    names: Option<&Names>,
) -> String {
    let mut h = String::new();
    let class = if verdict.is_ready() { "ok" } else { "bad" };
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\
         <title>otlp-gateway status</title><style>{STYLE}</style></head><body>\
         <h1>otlp-gateway</h1><p>Health: <span id=\"health\" class=\"{class}\">{}</span></p>",
        verdict.describe()
    );
    backends(&mut h, totals, cores, rates, names);
    core_table(&mut h, totals, rates);
    errors(&mut h, cores);
    h.push_str("</body></html>\n");
    h
}

fn backends(h: &mut String, totals: &Totals, cores: &[CoreSnapshot], rates: &Rates, names: Option<&Names>) {
    let rings = cores.first().map(|c| c.rings.as_slice()).unwrap_or_default();
    for (i, ring) in rings.iter().enumerate() {
        let exporter = names.and_then(|n| n.exporters.get(i)).map_or_else(|| format!("exporter {i}"), |e| e.clone());
        let _ = write!(
            h,
            "<h2>Exporter {}</h2><table id=\"backends\"><tr><th>backend</th><th>health</th>\
            <th>key share</th><th>spans/s</th><th>calls ok</th><th>calls failed</th></tr>",
            esc(&exporter)
        );
        for (b, share) in ring.iter().flat_map(|r| r.backends.iter().zip(&r.shares)) {
            backend_row(h, b, *share, totals, rates);
        }
        h.push_str("</table>");
    }
}

fn backend_row(h: &mut String, b: &str, share: f64, totals: &Totals, rates: &Rates) {
    let stats = totals.backends.get(b).cloned().unwrap_or_default();
    let (class, health) = if stats.reachable() { ("ok", "reachable") } else { ("bad", "unreachable") };
    let rate = rates.backends.get(b).copied().unwrap_or(0.0);
    let _ = write!(
        h,
        "<tr class=\"backend\"><td class=\"l\">{}</td><td class=\"{class}\">{health}</td>\
        <td>{:.1}%</td><td class=\"rate\">{rate:.0}</td><td>{}</td><td>{}</td></tr>",
        esc(b),
        share * 100.0,
        stats.calls_ok,
        stats.calls_failed
    );
}

fn core_table(h: &mut String, totals: &Totals, rates: &Rates) {
    h.push_str(
        "<h2>Cores</h2><table id=\"cores\"><tr><th>CPU</th><th>spans/s</th><th>connections</th>\
        <th>streams</th><th>queue depth</th><th>bytes in flight</th><th>peak bytes</th></tr>",
    );
    for [cpu, conns, streams, depth, bytes, peak] in &totals.cores {
        let rate = rates.cores.get(&(*cpu as usize)).copied().unwrap_or(0.0);
        let _ = write!(
            h,
            "<tr class=\"core\"><td>{cpu}</td><td class=\"rate\">{rate:.0}</td><td>{conns}</td>\
            <td>{streams}</td><td>{depth}</td><td>{bytes}</td><td>{peak}</td></tr>"
        );
    }
    h.push_str("</table>");
}

fn errors(h: &mut String, cores: &[CoreSnapshot]) {
    let mut all: Vec<_> = cores.iter().flat_map(|c| c.counters.errors.iter().map(move |e| (c.cpu, e))).collect();
    all.sort_by_key(|(_, e)| std::cmp::Reverse(e.at));
    h.push_str("<h2>Recent errors</h2><ul id=\"errors\">");
    if all.is_empty() {
        h.push_str("<li>none</li>");
    }
    for (cpu, e) in all.iter().take(20) {
        let _ = write!(h, "<li>{} core {cpu}: {}</li>", httpdate_rfc3339(e.at), esc(&e.message));
    }
    h.push_str("</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::RingView;
    use crate::telemetry::counters::{BackendStats, ItemCounts, RecentError};

    #[test]
    fn shows_backends_shares_rates_and_errors() {
        let rings = vec![Some(RingView { backends: vec!["b<1>".into()], shares: vec![1.0] })];
        let mut core = CoreSnapshot { rings, ..Default::default() };
        core.counters.errors = vec![RecentError { at: std::time::SystemTime::now(), message: "boom".into() }];
        let mut totals = Totals::default();
        let stats = BackendStats { items: ItemCounts { ok: [100, 0, 0], failed: [0; 3] }, ..Default::default() };
        totals.backends.insert("b<1>".into(), stats);
        totals.cores.push([0, 1, 2, 3, 4, 5]);
        let mut rates = Rates::default();
        rates.backends.insert("b<1>".into(), 42.0);
        let page = render(Verdict::Ready, &totals, &[core], &rates, None);
        for needle in ["b&lt;1&gt;", "100.0%", ">42<", "boom", ">ready<", "reachable"] {
            assert!(page.contains(needle), "no `{needle}` in {page}");
        }
    }

    #[test]
    fn rates_are_deltas_over_time() {
        let mut r = Rates::default();
        let mut totals = Totals::default();
        r.update(&totals, &[]);
        let stats = BackendStats { items: ItemCounts { ok: [50, 0, 0], failed: [0; 3] }, ..Default::default() };
        totals.backends.insert("b".into(), stats);
        if let Some((at, _, _)) = &mut r.last {
            *at = at.checked_sub(std::time::Duration::from_secs(1)).unwrap();
        }
        r.update(&totals, &[]);
        let rate = r.backends["b"];
        assert!((45.0..=50.0).contains(&rate), "{rate}");
    }
}
