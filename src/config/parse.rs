//! Walker helpers over `serde_yaml::Value`: typed reads that report problems with their key path
//! and carry on, so one pass finds every error.

use std::time::Duration;

use serde_yaml::Value;

use super::errors::Errors;
use super::values::parse_duration;

/// Stands in for an absent key, so "missing" and "null" take the same road (defaults).
static NULL: Value = Value::Null;

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

/// "a string", "a list", ...: what a value is, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// One value in the document and where it sits.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    /// The key (or `""` for list items and the root).
    pub key: String,
    pub path: String,
    pub value: &'a Value,
}

impl<'a> Field<'a> {
    pub(crate) fn root(value: &'a Value) -> Self {
        Field { key: String::new(), path: String::new(), value }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.value.is_null()
    }

    /// Reports `message` at this path.
    pub(crate) fn report(&self, errs: &mut Errors, message: impl Into<String>) {
        errs.add(&self.path, message);
    }

    /// Reports `message` at this path; returns `None` so callers can `return f.fail(..)`.
    pub(crate) fn fail<T>(&self, errs: &mut Errors, message: impl Into<String>) -> Option<T> {
        self.report(errs, message);
        None
    }

    fn mismatch<T>(&self, errs: &mut Errors, expected: &str) -> Option<T> {
        let found = kind(self.value);
        self.fail(errs, format!("expected {expected}, found {found}"))
    }

    pub(crate) fn string(&self, errs: &mut Errors) -> Option<&'a str> {
        match self.value {
            Value::String(s) => Some(s),
            _ => self.mismatch(errs, "a string"),
        }
    }

    /// A string run through `parse`; its error message is reported here.
    pub(crate) fn parsed<T>(&self, errs: &mut Errors, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let text = self.string(errs)?;
        parse(text).map_err(|m| errs.add(&self.path, m)).ok()
    }

    pub(crate) fn boolean(&self, errs: &mut Errors) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(*b),
            _ => self.mismatch(errs, "`true` or `false`"),
        }
    }

    /// A whole number in `min..=max`.
    pub(crate) fn uint(&self, errs: &mut Errors, min: u64, max: u64) -> Option<u64> {
        let expected = format!("a whole number from {min} to {max}");
        match self.value {
            Value::Number(n) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ => self.fail(errs, format!("expected {expected}, found {n}")),
            },
            _ => self.mismatch(errs, &expected),
        }
    }

    /// A TCP port 1..=65535, as a number or a numeric string (the collector's DNS port is a string).
    pub(crate) fn port(&self, errs: &mut Errors) -> Option<u16> {
        let port = match self.value {
            Value::String(s) => s.parse::<u16>().ok().filter(|p| *p > 0),
            Value::Number(_) => return self.uint(errs, 1, 65535).and_then(|p| p.try_into().ok()),
            _ => None,
        };
        port.or_else(|| self.fail(errs, "expected a port from 1 to 65535"))
    }

    /// A Go-syntax duration greater than zero, such as `5s`.
    pub(crate) fn duration(&self, errs: &mut Errors) -> Option<Duration> {
        if let Value::Number(n) = self.value {
            let hint = format!("a duration needs a unit: use e.g. `{n}s` or `{n}ms`");
            return self.fail(errs, hint);
        }
        let d = self.parsed(errs, parse_duration)?;
        if d.is_zero() {
            return self.fail(errs, "must be greater than zero");
        }
        Some(d)
    }

    /// The items of a list (`null` is an empty list); `None` if this is not a list.
    pub(crate) fn list(&self, errs: &mut Errors) -> Option<Vec<Field<'a>>> {
        match self.value {
            Value::Null => Some(Vec::new()),
            Value::Sequence(items) => Some(self.items(items)),
            _ => self.mismatch(errs, "a list"),
        }
    }

    fn items(&self, items: &'a [Value]) -> Vec<Field<'a>> {
        let item = |(i, value)| Field { key: String::new(), path: format!("{}[{i}]", self.path), value };
        items.iter().enumerate().map(item).collect()
    }

    /// The keys of a mapping (`null` is an empty mapping).
    pub(crate) fn fields(&self, errs: &mut Errors) -> Fields<'a> {
        Fields::of(self, errs)
    }
}

/// The keys of one mapping. Take the keys you know; `finish` reports the rest as unknown.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    path: String,
    rest: Vec<Field<'a>>,
    known: Vec<String>,
}

impl<'a> Fields<'a> {
    fn of(field: &Field<'a>, errs: &mut Errors) -> Self {
        let mut fields = Fields { path: field.path.clone(), rest: Vec::new(), known: Vec::new() };
        match field.value {
            Value::Null => {}
            Value::Mapping(map) => map.iter().for_each(|(k, v)| fields.push(k, v, errs)),
            other => field.report(errs, format!("expected a mapping, found {}", kind(other))),
        }
        fields
    }

    fn push(&mut self, key: &Value, value: &'a Value, errs: &mut Errors) {
        let Value::String(key) = key else {
            let shown = serde_yaml::to_string(key).unwrap_or_default();
            errs.add(&join(&self.path, shown.trim()), "keys must be strings");
            return;
        };
        let path = join(&self.path, key);
        let key = key.clone();
        self.rest.push(Field { key, path, value });
    }

    /// Takes `key` if present (and remembers it as a valid key for hints).
    pub(crate) fn take(&mut self, key: &str) -> Option<Field<'a>> {
        self.known.push(key.to_string());
        let at = self.rest.iter().position(|f| f.key == key)?;
        Some(self.rest.remove(at))
    }

    /// Takes `key`; an absent key reads as `null` (so defaults apply) at the key's path.
    pub(crate) fn take_or_null(&mut self, key: &str) -> Field<'a> {
        self.take(key).unwrap_or_else(|| Field { key: key.to_string(), path: join(&self.path, key), value: &NULL })
    }

    /// Takes `key`, reporting "missing required key" at its path when absent.
    pub(crate) fn required(&mut self, key: &str, errs: &mut Errors) -> Option<Field<'a>> {
        let field = self.take_or_null(key);
        if field.is_null() {
            return field.fail(errs, "missing required key");
        }
        Some(field)
    }

    /// Reports each of `keys` that is present with `why(key)`; returns how many were.
    pub(crate) fn reject(&mut self, keys: &[&str], errs: &mut Errors, why: impl Fn(&str) -> String) -> usize {
        let mut count = 0;
        for key in keys {
            if let Some(at) = self.rest.iter().position(|f| f.key == *key) {
                let field = self.rest.remove(at);
                errs.add(&field.path, why(key));
                count += 1;
            }
        }
        count
    }

    /// Reports each of `keys` that is present as not supported by this version.
    pub(crate) fn unsupported(&mut self, keys: &[&str], errs: &mut Errors) -> usize {
        self.reject(keys, errs, not_supported)
    }

    /// Every key not taken yet, in document order (for sections keyed by component id).
    pub(crate) fn into_rest(self) -> Vec<Field<'a>> {
        self.rest
    }

    /// Reports every key not taken as unknown, naming the keys that are valid here.
    pub(crate) fn finish(self, errs: &mut Errors) {
        let hint = self.hint();
        for field in &self.rest {
            errs.add(&field.path, format!("unknown key{hint}"));
        }
    }

    fn hint(&self) -> String {
        if self.known.is_empty() {
            return String::new();
        }
        let keys: Vec<String> = self.known.iter().map(|k| format!("`{k}`")).collect();
        format!(" (valid keys here: {})", keys.join(", "))
    }
}

/// The message for a collector key we recognise but do not implement.
pub(crate) fn not_supported(key: &str) -> String {
    format!("`{key}` is not supported by this version of otlp-gateway")
}
