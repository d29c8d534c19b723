//! `${env:VAR}` expansion in the YAML text, before it is parsed, as the collector does:
//! `${env:VAR}` and `${VAR}` are the variable's value, `${env:VAR:-default}` falls back to
//! `default` when the variable is unset or empty, and `$$` is a literal `$`. A variable that is
//! unset and has no default is an error naming it (and its line), so a typo never turns into an
//! empty endpoint. A `$` before anything else is kept as it is.
//!
//! Values are pasted into the text: one that holds YAML syntax (`: `, `#`, a leading `[`) changes
//! the document's shape, so quote such references (`"${env:HEADER}"`).

use super::errors::{ConfigError, ConfigErrors};

/// Expands every reference in `text`, looking variables up with `lookup`.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigErrors> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        if let Err(message) = expand_line(line, &lookup, &mut out) {
            errors.push(ConfigError { path: String::new(), message: format!("line {}: {message}", i + 1) });
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(ConfigErrors(errors)) }
}

fn expand_line(line: &str, lookup: &impl Fn(&str) -> Option<String>, out: &mut String) -> Result<(), String> {
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        rest = if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            r
        } else if let Some(r) = after.strip_prefix('{') {
            let (reference, r) = r.split_once('}').ok_or_else(|| "`${` without a closing `}`".to_string())?;
            out.push_str(&resolve(reference, lookup)?);
            r
        } else {
            out.push('$');
            after
        };
    }
    out.push_str(rest);
    Ok(())
}

/// The value of one `${...}` reference (without the braces).
fn resolve(reference: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let body = match reference.split_once(':') {
        Some(("env", body)) => body,
        Some((scheme, _)) if is_name(scheme) && !reference.contains(":-") => {
            return Err(format!("`${{{reference}}}`: only the `env` provider is supported, not `{scheme}`"));
        }
        _ => reference,
    };
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_name(name) {
        return Err(format!("`${{{reference}}}`: `{name}` is not a variable name"));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_string()),
        (None, None) => Err(format!("environment variable `{name}` is not set (use `${{env:{name}:-default}}`)")),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "POD_IP" => Some("10.1.2.3".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn expand(text: &str) -> Result<String, String> {
        expand_env(text, env).map_err(|e| e.to_string())
    }

    #[test]
    fn golden_expansions() {
        let cases = [
            ("endpoint: ${env:POD_IP}:4317", "endpoint: 10.1.2.3:4317"),
            ("endpoint: ${POD_IP}:4317", "endpoint: 10.1.2.3:4317"),
            ("port: ${env:PORT:-4317}", "port: 4317"),
            ("port: ${env:EMPTY:-4317}", "port: 4317"),
            ("ip: ${env:POD_IP:-127.0.0.1}", "ip: 10.1.2.3"),
            ("url: ${env:URL:-http://a:1/x}", "url: http://a:1/x"),
            ("price: $$5 and $${env:POD_IP}", "price: $5 and ${env:POD_IP}"),
            ("lone: a$b $ c$", "lone: a$b $ c$"),
            ("  # ${env:NOPE} in a comment\n", "  # ${env:NOPE} in a comment\n"),
            ("two: ${POD_IP}-${POD_IP}\nnext: x\n", "two: 10.1.2.3-10.1.2.3\nnext: x\n"),
        ];
        for (text, want) in cases {
            assert_eq!(expand(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn errors_name_the_variable_and_line() {
        let err = expand("a: 1\nb: ${env:NOPE}\nc: ${file:/x}\nd: ${env:bad-name}\ne: ${env:OPEN").unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(lines[0].starts_with("line 2: environment variable `NOPE` is not set"), "{err}");
        assert!(lines[1].starts_with("line 3:") && lines[1].contains("only the `env` provider"), "{err}");
        assert!(lines[2].starts_with("line 4:") && lines[2].contains("not a variable name"), "{err}");
        assert!(lines[3].starts_with("line 5:") && lines[3].contains("without a closing"), "{err}");
    }
}
