//! TLS for both ends of the gateway, with rustls (ring provider): server configs for the
//! receivers, client configs for backends, both built from files when the config is loaded
//! (so a reload re-reads them), and the stream that is either plaintext or TLS.
//!
//! Everything here runs on the control plane except [`stream`], which wraps one connection
//! on a core: a handshake per connection, then one record encryption/decryption per
//! 16 KiB of data.

mod client;
mod files;
mod server;
mod stream;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use client::{ClientFiles, client_config};
pub use rustls::pki_types::ServerName;
pub use rustls::{ClientConfig, ServerConfig};
pub use server::{ALPN_GRPC, ALPN_HTTP, ServerFiles, server_config};
pub use stream::{MaybeTls, accept, accept_within, connect};

/// A TLS protocol version rustls speaks (the collector's `min_version`/`max_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

impl TlsVersion {
    /// Parses the collector's spelling: `"1.2"` or `"1.3"` (1.0 and 1.1 are refused: rustls
    /// does not speak them, and they are broken).
    pub fn parse(text: &str) -> Result<TlsVersion, String> {
        match text {
            "1.2" => Ok(TlsVersion::V1_2),
            "1.3" => Ok(TlsVersion::V1_3),
            "1.0" | "1.1" => Err(format!("TLS {text} is not supported (insecure); use 1.2 or 1.3")),
            _ => Err(format!("unknown TLS version `{text}`; use 1.2 or 1.3")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }

    /// The rustls versions from `min` to `max`, both included.
    fn range(min: TlsVersion, max: TlsVersion) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let all = [(TlsVersion::V1_2, &rustls::version::TLS12), (TlsVersion::V1_3, &rustls::version::TLS13)];
        all.into_iter().filter(|(v, _)| (min..=max).contains(v)).map(|(_, r)| r).collect()
    }
}

/// Why TLS settings could not be turned into a working config. `key` names the config key at
/// fault, so the config loader reports the error at its path.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read `{path}`: {source}")]
    Read { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("`{path}` is not PEM {what}: {reason}")]
    Pem { key: &'static str, path: PathBuf, what: &'static str, reason: String },
    #[error("`{path}` holds no {what}")]
    Empty { key: &'static str, path: PathBuf, what: &'static str },
    #[error("the key does not fit the certificate: {0}")]
    KeyPair(rustls::Error),
    #[error("no system CA certificates were found; set `ca_file`")]
    NoSystemRoots,
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

impl TlsError {
    /// The config key at fault (`""`: the `tls` section as a whole).
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::Pem { key, .. } | TlsError::Empty { key, .. } => key,
            TlsError::KeyPair(_) => "key_file",
            TlsError::NoSystemRoots => "ca_file",
            TlsError::Rustls(_) | TlsError::Verifier(_) => "",
        }
    }
}

/// A rustls config built from files, comparable by what it was built from: equal when the
/// settings and every file's bytes were the same (a reload that changed nothing keeps the
/// backends' connections; one that rotated a certificate replaces them).
#[derive(Clone)]
pub struct Built<T> {
    pub config: Arc<T>,
    digest: u64,
}

impl<T> Built<T> {
    fn new(config: T, digest: u64) -> Self {
        Built { config: Arc::new(config), digest }
    }
}

impl<T> PartialEq for Built<T> {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl<T> fmt::Debug for Built<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Built({:016x})", self.digest)
    }
}

/// What backends dial with: one client config per exporter, shared by its backends on every
/// core, and the name to verify them by (`server_name_override`, else each backend's host).
#[derive(Clone, Debug, PartialEq)]
pub struct BackendTls {
    pub config: Built<ClientConfig>,
    pub server_name: Option<ServerName<'static>>,
}

impl BackendTls {
    /// The name sent as SNI and verified against `host`'s certificate: the override, else the
    /// host itself (an IP address is verified as one).
    pub fn server_name(&self, host: &str) -> Option<ServerName<'static>> {
        match &self.server_name {
            Some(name) => Some(name.clone()),
            None => ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).ok(),
        }
    }
}

/// The ring provider, which every config here uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
