//! `tls` sections: a receiver's server TLS and an exporter's client TLS, in the collector's
//! keys. The files are read and the rustls config built here, so a bad file is a config error
//! at its key path (at start, `validate` and every reload), and the data path gets a ready
//! config.

use std::path::PathBuf;

use super::errors::Errors;
use super::model::{ExporterTls, ReceiverTls};
use super::parse::{Field, Fields, join};
use crate::tls::{self, BackendTls, ClientFiles, ServerFiles, ServerName, TlsError, TlsVersion};

/// Collector server TLS keys that are not implemented.
const SERVER_UNSUPPORTED: &[&str] = &[
    "ca_pem",
    "cert_pem",
    "key_pem",
    "cipher_suites",
    "curve_preferences",
    "include_system_ca_certs_pool",
    "client_ca_file_reload",
];

/// Collector client TLS keys that are not implemented.
const CLIENT_UNSUPPORTED: &[&str] =
    &["ca_pem", "cert_pem", "key_pem", "cipher_suites", "curve_preferences", "include_system_ca_certs_pool"];

const RELOAD_INTERVAL: &str =
    "`reload_interval` is not supported: certificates are re-read on SIGHUP (reload after rotating them)";

/// What the endpoint's scheme says about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `host:port`, or the load balancer (no endpoint): `tls.insecure` decides.
    Unsaid,
    /// `http://`: plaintext.
    Http,
    /// `https://`: TLS.
    Https,
}

/// A receiver's `tls` (absent: plaintext). `alpn` is the listener's protocols.
pub(crate) fn receiver_tls(
    field: &Field<'_>,
    errs: &mut Errors,
    alpn: &'static [&'static [u8]],
) -> Option<ReceiverTls> {
    let mut fields = field.fields(errs);
    let cert_file = fields.required("cert_file", errs).and_then(|f| path(&f, errs));
    let key_file = fields.required("key_file", errs).and_then(|f| path(&f, errs));
    let client_ca_file = fields.take("client_ca_file").and_then(|f| path(&f, errs));
    let versions = versions(&mut fields, errs);
    fields.reject(&["reload_interval"], errs, |_| RELOAD_INTERVAL.into());
    fields.reject(&["ca_file"], errs, |_| "has no effect on a receiver; use `client_ca_file` to verify clients".into());
    fields.unsupported(SERVER_UNSUPPORTED, errs);
    fields.finish(errs);
    let (cert_file, key_file, (min_version, max_version)) = (cert_file?, key_file?, versions?);
    let files = ServerFiles {
        cert_file: &cert_file,
        key_file: &key_file,
        client_ca_file: client_ca_file.as_deref(),
        min_version,
        max_version,
        alpn,
    };
    let built = tls::server_config(&files).map_err(|e| report(field, errs, e)).ok()?;
    Some(ReceiverTls { cert_file, key_file, client_ca_file, min_version, max_version, built })
}

/// An exporter's `tls`: `None` for plaintext (h2c), as `insecure` and the scheme say.
pub(crate) fn exporter_tls(field: &Field<'_>, errs: &mut Errors, scheme: Scheme) -> Option<ExporterTls> {
    let mut fields = field.fields(errs);
    let insecure = fields.take("insecure");
    let settings = client_settings(&mut fields, errs);
    fields.reject(&["reload_interval"], errs, |_| RELOAD_INTERVAL.into());
    fields.unsupported(CLIENT_UNSUPPORTED, errs);
    fields.finish(errs);
    let plaintext = is_plaintext(scheme, insecure.as_ref(), errs)?;
    if plaintext {
        let why = if scheme == Scheme::Http { "the endpoint's `http://`" } else { "`insecure: true`" };
        settings.present.iter().for_each(|f| f.report(errs, format!("has no effect: {why} means plaintext")));
        return None;
    }
    settings.build(field, errs)
}

/// Whether `insecure` and the endpoint's scheme say plaintext; `None` if they contradict each
/// other or `insecure` is not a boolean (reported).
fn is_plaintext(scheme: Scheme, insecure: Option<&Field<'_>>, errs: &mut Errors) -> Option<bool> {
    let value = match insecure {
        Some(i) => Some(i.boolean(errs)?),
        None => None,
    };
    match (scheme, value) {
        (Scheme::Http, Some(false)) => insecure?.fail(errs, "contradicts the endpoint's `http://`"),
        (Scheme::Https, Some(true)) => insecure?.fail(errs, "contradicts the endpoint's `https://`"),
        (Scheme::Http, _) => Some(true),
        (Scheme::Https, _) => Some(false),
        (Scheme::Unsaid, value) => Some(value.unwrap_or(false)),
    }
}

/// The client keys besides `insecure`, as given.
struct ClientSettings<'a> {
    present: Vec<Field<'a>>,
    ca_file: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
    skip_verify: bool,
    server_name: Option<ServerName<'static>>,
    versions: Option<(TlsVersion, TlsVersion)>,
}

fn client_settings<'a>(fields: &mut Fields<'a>, errs: &mut Errors) -> ClientSettings<'a> {
    let [ca, cert, key, skip, name] =
        ["ca_file", "cert_file", "key_file", "insecure_skip_verify", "server_name_override"].map(|k| fields.take(k));
    let versions = versions(fields, errs);
    let identity = match (&cert, &key) {
        (Some(c), Some(k)) => path(c, errs).zip(path(k, errs)),
        (Some(c), None) => c.fail(errs, "needs `key_file` too"),
        (None, Some(k)) => k.fail(errs, "needs `cert_file` too"),
        (None, None) => None,
    };
    ClientSettings {
        ca_file: ca.as_ref().and_then(|f| path(f, errs)),
        identity,
        skip_verify: skip.as_ref().and_then(|f| f.boolean(errs)).unwrap_or(false),
        server_name: name.as_ref().and_then(|f| f.parsed(errs, server_name)),
        versions,
        present: [ca, cert, key, skip, name].into_iter().flatten().collect(),
    }
}

impl ClientSettings<'_> {
    fn build(self, field: &Field<'_>, errs: &mut Errors) -> Option<ExporterTls> {
        let (min_version, max_version) = self.versions?;
        let identity = self.identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        let skip = self.skip_verify;
        let files = ClientFiles {
            ca_file: self.ca_file.as_deref(),
            identity,
            insecure_skip_verify: skip,
            min_version,
            max_version,
        };
        let config = tls::client_config(&files).map_err(|e| report(field, errs, e)).ok()?;
        let backend = BackendTls { config, server_name: self.server_name.clone() };
        let (cert_file, key_file) = self.identity.unzip();
        Some(ExporterTls {
            ca_file: self.ca_file,
            cert_file,
            key_file,
            insecure_skip_verify: skip,
            server_name_override: self.server_name.map(|n| n.to_str().into_owned()),
            min_version,
            max_version,
            backend,
        })
    }
}

/// `min_version` (default 1.2) and `max_version` (default 1.3), min not above max.
fn versions(fields: &mut Fields<'_>, errs: &mut Errors) -> Option<(TlsVersion, TlsVersion)> {
    let min = fields.take("min_version").map(|f| f.parsed(errs, TlsVersion::parse));
    let max = fields.take("max_version");
    let max_value = max.as_ref().map(|f| f.parsed(errs, TlsVersion::parse));
    let (min, max_value) = (min.unwrap_or(Some(TlsVersion::V1_2))?, max_value.unwrap_or(Some(TlsVersion::V1_3))?);
    if min > max_value {
        let message = format!("is below `min_version` ({})", min.name());
        return max.and_then(|m| m.fail(errs, message));
    }
    Some((min, max_value))
}

/// A file path: a non-empty string (relative paths are from the working directory).
fn path(field: &Field<'_>, errs: &mut Errors) -> Option<PathBuf> {
    field.parsed(errs, |s| if s.is_empty() { Err("must not be empty".into()) } else { Ok(PathBuf::from(s)) })
}

/// A DNS name or IP address to verify backends by.
fn server_name(text: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(text.to_string()).map_err(|_| format!("`{text}` is not a valid DNS name or IP address"))
}

/// Reports each build error at the key it names (the `tls` section for the rest).
fn report(field: &Field<'_>, errs: &mut Errors, errors: Vec<TlsError>) {
    for e in errors {
        let path = if e.key().is_empty() { field.path.clone() } else { join(&field.path, e.key()) };
        errs.add(&path, e.to_string());
    }
}
