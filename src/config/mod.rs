//! Configuration in the OpenTelemetry Collector's YAML shape.

mod model;

pub use model::*;
