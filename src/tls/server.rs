//! Receiver TLS: certificate and key, optional client verification (mTLS), versions, ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use super::files::Reader;
use super::{Built, TlsError, TlsVersion, provider};

/// ALPN of an OTLP/gRPC listener: gRPC is HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN of an OTLP/HTTP listener: HTTP/2 preferred, HTTP/1.1 for the rest.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A receiver's `tls` settings, as the config names them.
#[derive(Debug, Clone, Copy)]
pub struct ServerFiles<'a> {
    pub cert_file: &'a Path,
    pub key_file: &'a Path,
    /// Set: clients must present a certificate issued by one of these CAs.
    pub client_ca_file: Option<&'a Path>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    pub alpn: &'static [&'static [u8]],
}

/// Reads the files and builds the config; every file's error is returned, not just the first.
pub fn server_config(f: &ServerFiles<'_>) -> Result<Built<ServerConfig>, Vec<TlsError>> {
    let mut reader = Reader::default();
    let certs = reader.certs("cert_file", f.cert_file);
    let key = reader.key("key_file", f.key_file);
    let roots = f.client_ca_file.map(|p| reader.roots("client_ca_file", p)).transpose();
    let (certs, key, roots) = match (certs, key, roots) {
        (Ok(c), Ok(k), Ok(r)) => (c, k, r),
        (c, k, r) => return Err([c.err(), k.err(), r.err()].into_iter().flatten().collect()),
    };
    reader.note(&format!("{:?}", (f.min_version, f.max_version, f.alpn)));
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&TlsVersion::range(f.min_version, f.max_version))
        .map_err(|e| vec![e.into()])?;
    let builder = match roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build();
            builder.with_client_cert_verifier(verifier.map_err(|e| vec![e.into()])?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| vec![TlsError::KeyPair(e)])?;
    config.alpn_protocols = f.alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Built::new(config, reader.digest()))
}
