//! The host's files under a root directory, so tests run against a fake /proc, /sys and /etc.
//! Also the kernel's two CPU-set spellings: lists (`0-3,8`) and hex masks (`00000000,0000000f`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: &Path) -> Host {
        Host { root: root.to_path_buf() }
    }

    /// `rel` is an absolute host path (`/proc/sys/...`), taken relative to the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// The file's text without surrounding whitespace; `None` when it cannot be read.
    pub fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.path(rel)).ok().map(|s| s.trim().to_string())
    }

    /// Writes a file that must already exist (kernel knobs under /proc and /sys).
    pub fn set(&self, rel: &str, value: &str) -> anyhow::Result<()> {
        let path = self.path(rel);
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{value}\n").as_bytes()))
            .with_context(|| format!("writing {value} to {rel}"))
    }

    /// Writes a configuration file, creating its directory.
    pub fn write_file(&self, rel: &str, text: &str) -> anyhow::Result<()> {
        let path = self.path(rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("writing {rel}"))
    }

    /// Names in a directory that start with `prefix`, sorted; empty when it cannot be read.
    pub fn list(&self, rel: &str, prefix: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.path(rel)) else { return Vec::new() };
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect();
        names.sort_by_key(|n| natural_key(n));
        names
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }
}

/// Sorts `irq/10` after `irq/9` and `rx-10` after `rx-9`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = &name[..name.len() - digits.len()];
    (prefix.to_string(), digits.parse().unwrap_or(u64::MAX))
}

/// A CPU list such as `0-3,8`; `None` when malformed. An empty text is the empty set.
pub fn parse_cpulist(text: &str) -> Option<Vec<usize>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    otlp_gateway::config::parse_cores(text).ok()
}

/// The shortest CPU list for a sorted set: `[0, 1, 2, 5]` → `0-2,5`.
pub fn format_cpulist(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = i;
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if start == i { cpus[i].to_string() } else { format!("{}-{}", cpus[start], cpus[i]) });
        i += 1;
    }
    parts.join(",")
}

/// A hex CPU mask, comma-separated in 32-bit groups; `None` when malformed.
pub fn parse_mask(text: &str) -> Option<Vec<usize>> {
    let digits: Vec<char> = text.trim().chars().filter(|&c| c != ',').collect();
    let mut cpus = Vec::new();
    for (i, c) in digits.iter().rev().enumerate() {
        let nibble = c.to_digit(16)? as usize;
        cpus.extend((0..4).filter(|b| nibble & (1 << b) != 0).map(|b| i * 4 + b));
    }
    cpus.sort_unstable();
    Some(cpus)
}

/// The kernel's mask spelling: 8 hex digits per 32 CPUs, comma-separated, at least one group.
pub fn format_mask(cpus: &[usize]) -> String {
    let groups = cpus.iter().max().map_or(1, |&m| m / 32 + 1);
    let words: Vec<String> = (0..groups)
        .rev()
        .map(|g| {
            let word = cpus.iter().filter(|&&c| c / 32 == g).fold(0u32, |w, &c| w | (1 << (c % 32)));
            format!("{word:08x}")
        })
        .collect();
    words.join(",")
}

/// CPUs in both sets.
pub fn overlap(a: &[usize], b: &[usize]) -> Vec<usize> {
    a.iter().copied().filter(|c| b.contains(c)).collect()
}

/// CPUs of `a` not in `b`.
pub fn without(a: &[usize], b: &[usize]) -> Vec<usize> {
    a.iter().copied().filter(|c| !b.contains(c)).collect()
}
