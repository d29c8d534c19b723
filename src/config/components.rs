//! Component sections (`receivers:`, `exporters:`, ...): entries keyed by `type[/name]` ids.

use std::collections::{BTreeMap, BTreeSet};

use super::errors::Errors;
use super::model::ComponentId;
use super::parse::Field;
use super::values::parse_component_id;

/// What a component section yielded.
#[derive(Debug)]
pub(crate) struct Components<T> {
    /// The components whose configuration is valid.
    pub parsed: BTreeMap<ComponentId, T>,
    /// Every well-formed id, valid body or not: pipelines may reference these without a
    /// second, misleading "not defined" error.
    pub declared: BTreeSet<ComponentId>,
}

impl<T> Default for Components<T> {
    fn default() -> Self {
        Components { parsed: BTreeMap::new(), declared: BTreeSet::new() }
    }
}

/// Reads a section, parsing each entry's id and body with `parse` (which reports its own errors).
pub(crate) fn section<'a, T>(
    section: &Field<'a>,
    errs: &mut Errors,
    mut parse: impl FnMut(&ComponentId, &Field<'a>, &mut Errors) -> Option<T>,
) -> Components<T> {
    let mut out = Components::default();
    for entry in section.fields(errs).into_rest() {
        let Some(id) = entry.fail_on(errs, parse_component_id(&entry.key)) else {
            continue;
        };
        if let Some(body) = parse(&id, &entry, errs) {
            out.parsed.insert(id.clone(), body);
        }
        out.declared.insert(id);
    }
    out
}

/// A section this gateway does not implement (processors, connectors, extensions): empty or
/// null is fine, each entry is reported with `message`.
pub(crate) fn unsupported_section(section: &Field<'_>, errs: &mut Errors, message: &str) {
    if matches!(section.value, serde_yaml::Value::Sequence(s) if s.is_empty()) {
        return;
    }
    for entry in section.fields(errs).into_rest() {
        errs.add(&entry.path, message);
    }
}

impl Field<'_> {
    /// The `Ok` value, or the `Err` message reported at this path.
    pub(crate) fn fail_on<T>(&self, errs: &mut Errors, result: Result<T, String>) -> Option<T> {
        result.map_err(|m| errs.add(&self.path, m)).ok()
    }
}
