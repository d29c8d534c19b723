//! Logs: the `log` facade, written to stderr as text (`console`) or one JSON object per line
//! (`json`), at `service.telemetry.logs.level`. Nothing logs per request; failures seen on the
//! hot path go through [`limited`], which lets one line per key through every
//! [`LIMIT_WINDOW`] on each core and counts the rest.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::{LogEncoding, LogLevel, LogsConfig};

/// How often one key (e.g. one backend's failures) may log on one core.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(10);

struct Logger {
    json: bool,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = if self.json { json_line(record) } else { console_line(record) };
        // A closed stderr is no reason to stop the gateway.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger (once per process; later calls only change the level).
pub fn init(cfg: &LogsConfig) {
    let _ = log::set_boxed_logger(Box::new(Logger { json: cfg.encoding == LogEncoding::Json }));
    log::set_max_level(filter(cfg.level));
}

fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
    }
}

fn timestamp() -> String {
    let now = SystemTime::now();
    let millis = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_millis();
    let secs = super::health::httpdate_rfc3339(now);
    format!("{}.{millis:03}Z", secs.trim_end_matches('Z'))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "debug",
    }
}

/// `2026-12-02T01:31:29.123Z\tinfo\ttarget\tmessage`, the collector's console layout.
fn console_line(record: &Record<'_>) -> String {
    format!("{}\t{}\t{}\t{}\n", timestamp(), level_name(record.level()), record.target(), record.args())
}

/// `{"ts":...,"level":...,"caller":target,"msg":...}`, the collector's JSON keys.
fn json_line(record: &Record<'_>) -> String {
    let value = crate::receiver::http_json::object([
        ("ts", timestamp().into()),
        ("level", level_name(record.level()).into()),
        ("caller", record.target().into()),
        ("msg", record.args().to_string().into()),
    ]);
    format!("{value}\n")
}

thread_local! {
    /// Per key: when it last logged, and how many lines were held back since.
    static LIMITS: RefCell<HashMap<String, (Instant, u64)>> = RefCell::new(HashMap::new());
}

/// Logs `message()` at `level` unless `key` logged on this core within [`LIMIT_WINDOW`];
/// a line that gets through says how many were held back. Returns whether it logged.
pub fn limited(level: Level, key: &str, message: impl FnOnce() -> String) -> bool {
    if level > log::max_level() {
        return false;
    }
    let now = Instant::now();
    let suppressed = LIMITS.with(|l| admit(&mut l.borrow_mut(), key, now));
    let Some(suppressed) = suppressed else { return false };
    match suppressed {
        0 => log::log!(level, "{}", message()),
        n => log::log!(level, "{} ({n} similar lines suppressed)", message()),
    }
    true
}

/// `Some(held back)` when `key` may log now, else counts one more held back.
fn admit(limits: &mut HashMap<String, (Instant, u64)>, key: &str, now: Instant) -> Option<u64> {
    match limits.get_mut(key) {
        Some((last, held)) if now.duration_since(*last) < LIMIT_WINDOW => {
            *held += 1;
            None
        }
        Some((last, held)) => {
            *last = now;
            Some(std::mem::take(held))
        }
        None => {
            limits.insert(key.to_string(), (now, 0));
            Some(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_lets_one_line_through_per_window_and_counts_the_rest() {
        let mut limits = HashMap::new();
        let t0 = Instant::now();
        assert_eq!(admit(&mut limits, "b", t0), Some(0));
        assert_eq!(admit(&mut limits, "b", t0 + Duration::from_secs(1)), None);
        assert_eq!(admit(&mut limits, "b", t0 + Duration::from_secs(2)), None);
        assert_eq!(admit(&mut limits, "other", t0), Some(0));
        assert_eq!(admit(&mut limits, "b", t0 + LIMIT_WINDOW), Some(2));
    }

    #[test]
    fn json_lines_are_one_object_with_the_collectors_keys() {
        let args = format_args!("backend \"x\" failed");
        let record = Record::builder().args(args).level(Level::Warn).target("otlp_gateway::exporter").build();
        let line = json_line(&record);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "backend \"x\" failed");
        assert_eq!(v["caller"], "otlp_gateway::exporter");
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        let text = console_line(&record);
        assert!(text.contains("\twarn\totlp_gateway::exporter\tbackend"), "{text}");
    }
}
