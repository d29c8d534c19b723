//! What `check` prints: one line per setting, with the reason when it is off.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Wrong for the gateway; `apply` fixes it or prints the step.
    Off,
    /// Information or a recommendation left to the operator (boot parameters, NUMA layout).
    Note,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    /// Which setting, e.g. `sysctl net.core.somaxconn` or `irq 24`.
    pub topic: String,
    /// The current state and, when off, the reason.
    pub detail: String,
}

impl Finding {
    pub fn new(status: Status, topic: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding { status, topic: topic.into(), detail: detail.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.status {
            Status::Ok => "[ok]  ",
            Status::Off => "[off] ",
            Status::Note => "[note]",
        };
        write!(f, "{tag} {}: {}", self.topic, self.detail)
    }
}
