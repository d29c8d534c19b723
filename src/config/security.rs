//! Security keys: the `bearertokenauth` extension and a receiver's `auth`, gRPC
//! `keepalive.server_parameters` and HTTP `idle_timeout`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::errors::Errors;
use super::model::{BearerTokenAuth, ComponentId, Config, Keepalive, TokenSource};
use super::parse::{Field, Fields};
use super::values::{parse_component_id, parse_duration};

/// The extension type of bearer-token authentication.
pub const BEARER_TOKEN_AUTH: &str = "bearertokenauth";

/// `extensions.bearertokenauth[/name]`: exactly one of `token`, `tokens` or `filename`.
pub(crate) fn bearer_token_auth(field: &Field<'_>, errs: &mut Errors) -> Option<BearerTokenAuth> {
    let mut fields = field.fields(errs);
    let scheme = fields.take("scheme").and_then(|s| s.string(errs).map(str::to_string));
    let header = fields.take("header").and_then(|h| h.parsed(errs, header_name));
    let sources = [fields.take("token"), fields.take("tokens"), fields.take("filename")];
    fields.finish(errs);
    let tokens = match sources {
        [Some(t), None, None] => TokenSource::Inline(vec![token(&t, errs)?]),
        [None, Some(t), None] => TokenSource::Inline(token_list(&t, errs)?),
        [None, None, Some(f)] => TokenSource::File(f.string(errs)?.into()),
        [None, None, None] => return field.fail(errs, "set one of `token`, `tokens` or `filename`"),
        _ => return field.fail(errs, "set only one of `token`, `tokens` or `filename`"),
    };
    let scheme = scheme.unwrap_or_else(|| "Bearer".into());
    Some(BearerTokenAuth { scheme, header: header.unwrap_or_else(|| "authorization".into()), tokens })
}

fn header_name(s: &str) -> Result<String, String> {
    http::HeaderName::from_bytes(s.as_bytes()).map(|h| h.to_string()).map_err(|_| format!("`{s}` is not a header name"))
}

fn token(field: &Field<'_>, errs: &mut Errors) -> Option<String> {
    let t = field.string(errs)?;
    if t.is_empty() || http::HeaderValue::from_str(t).is_err() {
        return field.fail(errs, "a token must be non-empty visible ASCII");
    }
    Some(t.to_string())
}

fn token_list(field: &Field<'_>, errs: &mut Errors) -> Option<Vec<String>> {
    let items = field.list(errs)?;
    if items.is_empty() {
        return field.fail(errs, "list at least one token");
    }
    items.iter().map(|t| token(t, errs)).collect::<Vec<_>>().into_iter().collect()
}

/// A server's `auth: {authenticator: <id>}`.
pub(crate) fn auth(fields: &mut Fields<'_>, errs: &mut Errors) -> Option<ComponentId> {
    let field = fields.take("auth")?;
    let mut fields = field.fields(errs);
    let id = fields.required("authenticator", errs).and_then(|a| a.parsed(errs, parse_component_id));
    fields.finish(errs);
    id
}

/// A duration where `0s` means never (as gRPC reads these keys).
fn optional_duration(field: Option<Field<'_>>, errs: &mut Errors, default: Option<Duration>) -> Option<Duration> {
    let Some(field) = field else { return default };
    field.parsed(errs, parse_duration).filter(|d| !d.is_zero())
}

/// gRPC `keepalive`: `server_parameters.max_connection_idle`, `max_connection_age` and
/// `max_connection_age_grace`; server pings and `enforcement_policy` are refused by name.
pub(crate) fn keepalive(fields: &mut Fields<'_>, errs: &mut Errors) -> Keepalive {
    let default = Keepalive::default();
    let Some(field) = fields.take("keepalive") else { return default };
    let mut fields = field.fields(errs);
    let server = fields.take_or_null("server_parameters");
    fields.unsupported(&["enforcement_policy"], errs);
    fields.finish(errs);
    let mut fields = server.fields(errs);
    let idle = optional_duration(fields.take("max_connection_idle"), errs, default.max_connection_idle);
    let age = optional_duration(fields.take("max_connection_age"), errs, None);
    let grace = optional_duration(fields.take("max_connection_age_grace"), errs, None);
    fields.unsupported(&["time", "timeout"], errs);
    fields.finish(errs);
    Keepalive { max_connection_idle: idle, max_connection_age: age, max_connection_age_grace: grace }
}

/// Checks that every receiver's authenticator is a `bearertokenauth` extension `declared` in
/// `extensions` and `enabled` in `service.extensions`; returns the enabled ones that parsed.
pub(crate) fn authenticators(
    config: &Config,
    parsed: BTreeMap<ComponentId, BearerTokenAuth>,
    (declared, enabled): (&BTreeSet<ComponentId>, &BTreeSet<ComponentId>),
    errs: &mut Errors,
) -> BTreeMap<ComponentId, BearerTokenAuth> {
    for (id, r) in &config.receivers {
        let grpc = r.grpc.as_ref().and_then(|g| Some(("grpc", g.auth.as_ref()?)));
        let http = r.http.as_ref().and_then(|h| Some(("http", h.auth.as_ref()?)));
        for (protocol, auth) in grpc.into_iter().chain(http) {
            let path = format!("receivers.{id}.protocols.{protocol}.auth.authenticator");
            if auth.kind != BEARER_TOKEN_AUTH || !declared.contains(auth) {
                errs.add(&path, format!("`{auth}` is not a `{BEARER_TOKEN_AUTH}` extension defined in `extensions`"));
            } else if !enabled.contains(auth) {
                errs.add(&path, format!("extension `{auth}` must be listed in `service.extensions`"));
            }
        }
    }
    parsed.into_iter().filter(|(id, _)| enabled.contains(id)).collect()
}
