//! Backend TLS: trust anchors (`ca_file`, else the system's), an optional client certificate,
//! versions, ALPN `h2`, and `insecure_skip_verify`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::files::Reader;
use super::{Built, TlsError, TlsVersion, provider};

/// An exporter's `tls` settings, as the config names them.
#[derive(Debug, Clone, Copy)]
pub struct ClientFiles<'a> {
    /// CAs that backends' certificates must chain to; `None`: the system's CA store.
    pub ca_file: Option<&'a Path>,
    /// A client certificate and its key (both or neither), for backends that require mTLS.
    pub identity: Option<(&'a Path, &'a Path)>,
    /// Accept any backend certificate (encryption without authentication).
    pub insecure_skip_verify: bool,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// Reads the files and builds the config; every file's error is returned, not just the first.
pub fn client_config(f: &ClientFiles<'_>) -> Result<Built<ClientConfig>, Vec<TlsError>> {
    let mut reader = Reader::default();
    let roots = roots(&mut reader, f);
    let identity = f.identity.map(|(c, k)| (reader.certs("cert_file", c), reader.key("key_file", k)));
    let (roots, identity) = match (roots, identity) {
        (Ok(r), None) => (r, None),
        (Ok(r), Some((Ok(c), Ok(k)))) => (r, Some((c, k))),
        (r, id) => {
            let id = id.map(|(c, k)| [c.err(), k.err()]).unwrap_or_default();
            return Err([r.err()].into_iter().chain(id).flatten().collect());
        }
    };
    reader.note(&format!("{:?}", (f.min_version, f.max_version, f.insecure_skip_verify)));
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&TlsVersion::range(f.min_version, f.max_version))
        .map_err(|e| vec![e.into()])?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| vec![TlsError::KeyPair(e)])?,
        None => builder.with_no_client_auth(),
    };
    if f.insecure_skip_verify {
        config.dangerous().set_certificate_verifier(Arc::new(AnyCertificate(provider)));
    }
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Built::new(config, reader.digest()))
}

/// `ca_file`, or (unless verification is off) the system's CA certificates.
fn roots(reader: &mut Reader, f: &ClientFiles<'_>) -> Result<RootCertStore, TlsError> {
    if let Some(path) = f.ca_file {
        return reader.roots("ca_file", path);
    }
    if f.insecure_skip_verify {
        return Ok(RootCertStore::empty());
    }
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    reader.note(&format!("system roots: {added}"));
    if added == 0 { Err(TlsError::NoSystemRoots) } else { Ok(store) }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake's signatures are
/// still checked (the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
