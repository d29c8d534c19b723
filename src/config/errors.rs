//! Config errors: every problem found in one pass, each naming the key path it concerns.

use std::fmt;

/// Exit code the CLI uses for configuration errors (`EX_USAGE` from BSD `sysexits.h`).
pub const EXIT_CONFIG: i32 = 64;

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path such as `exporters.loadbalancing.resolver.static.hostnames[2]`; empty for
    /// problems with the file as a whole (unreadable, not YAML).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A single error.
    pub fn single(path: &str, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError { path: path.to_string(), message: message.into() }])
    }

    /// The paths of all errors, in order (handy in tests and logs).
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.path.as_str()).collect()
    }
}

fn lines(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// The collector the walker reports into.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<ConfigError>);

impl Errors {
    pub(crate) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigError { path: path.to_string(), message: message.into() });
    }

    /// `value` if nothing was reported, else every error.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() { Ok(value) } else { Err(ConfigErrors(self.0)) }
    }
}
