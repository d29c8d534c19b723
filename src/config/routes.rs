//! Checks across sections, made once every section is parsed: what the runtime will build
//! from the pipelines (one route per receiver and signal) must be unambiguous.

use super::errors::Errors;
use super::model::{ComponentId, Config, Exporter, Pipeline, Signal};

/// Where one receiver's data of one signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRoute {
    pub receiver: ComponentId,
    pub signal: Signal,
    pub exporter: ComponentId,
}

impl Config {
    /// Every (receiver, signal) → exporter route, in pipeline order.
    pub fn routes(&self) -> Vec<SignalRoute> {
        let mut routes = Vec::new();
        for p in &self.pipelines {
            let Some(exporter) = p.exporters.first() else { continue };
            for r in &p.receivers {
                let route = SignalRoute { receiver: r.clone(), signal: p.signal, exporter: exporter.clone() };
                if !routes.iter().any(|x: &SignalRoute| x.receiver == *r && x.signal == p.signal) {
                    routes.push(route);
                }
            }
        }
        routes
    }
}

pub(crate) fn check(config: &Config, errs: &mut Errors) {
    for (i, p) in config.pipelines.iter().enumerate() {
        let path = format!("service.pipelines.{}", pipeline_id(p));
        if p.exporters.len() > 1 {
            errs.add(&format!("{path}.exporters"), "list one exporter: fanning out to several is not supported");
        }
        for r in &p.receivers {
            let twice = config.pipelines[..i].iter().any(|q| q.signal == p.signal && q.receivers.contains(r));
            if twice {
                let what = p.signal.name();
                errs.add(&format!("{path}.receivers"), format!("receiver `{r}` already feeds another {what} pipeline"));
            }
        }
        for e in &p.exporters {
            check_key(config, e, p, errs);
        }
    }
}

fn check_key(config: &Config, exporter: &ComponentId, p: &Pipeline, errs: &mut Errors) {
    let Some(Exporter::LoadBalancing(lb)) = config.exporters.get(exporter) else { return };
    let Some(key) = &lb.routing_key else { return };
    if !key.applies_to(p.signal) {
        let message = format!(
            "routing_key `{}` does not apply to {} (pipeline `{}`)",
            key.name(),
            p.signal.name(),
            pipeline_id(p)
        );
        errs.add(&format!("exporters.{exporter}.routing_key"), message);
    }
}

fn pipeline_id(p: &Pipeline) -> String {
    match &p.name {
        Some(n) => format!("{}/{n}", p.signal.name()),
        None => p.signal.name().to_string(),
    }
}
