//! Exporter: per-core backend connections and the fan-out of one request's parts.

pub mod backend;
pub mod backoff;
pub mod call;
pub mod coalesce;
pub mod deliver;
pub mod error;
pub mod fanout;
pub mod health;
mod merge;
pub mod retry;
pub mod single_flight;

pub use backend::{Backend, BackendSettings};
pub use error::ExportError;
