//! Reading PEM files: certificate chains, private keys (PKCS#8, PKCS#1 RSA, SEC1 EC) and CA
//! bundles. Every file read is fed to a hasher, so a config knows what it was built from.

use std::hash::{DefaultHasher, Hasher};
use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Reads files for one config and remembers their bytes' digest.
#[derive(Default)]
pub(super) struct Reader {
    hasher: DefaultHasher,
}

impl Reader {
    fn read(&mut self, key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
        let bytes = std::fs::read(path).map_err(|source| TlsError::Read { key, path: path.into(), source })?;
        self.hasher.write(&bytes);
        Ok(bytes)
    }

    /// Hashes a setting that is not a file (versions, names), so it counts in the digest.
    pub fn note(&mut self, setting: &str) {
        self.hasher.write(setting.as_bytes());
    }

    pub fn digest(&self) -> u64 {
        self.hasher.finish()
    }

    /// Every certificate in the file, in order (leaf first for a chain).
    pub fn certs(&mut self, key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.read(key, path)?;
        let pem = |e: rustls::pki_types::pem::Error| TlsError::Pem {
            key,
            path: path.into(),
            what: "certificates",
            reason: e.to_string(),
        };
        let certs = CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(pem)?;
        if certs.is_empty() {
            return Err(TlsError::Empty { key, path: path.into(), what: "PEM certificate" });
        }
        Ok(certs)
    }

    /// The first private key in the file.
    pub fn key(&mut self, key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.read(key, path)?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                TlsError::Empty { key, path: path.into(), what: "PEM private key (PKCS#8, RSA or EC)" }
            }
            e => TlsError::Pem { key, path: path.into(), what: "a private key", reason: e.to_string() },
        })
    }

    /// A CA bundle as trust anchors; every certificate in it must parse.
    pub fn roots(&mut self, key: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
        let mut store = RootCertStore::empty();
        for cert in self.certs(key, path)? {
            store.add(cert).map_err(|e| TlsError::Pem {
                key,
                path: path.into(),
                what: "CA certificates",
                reason: e.to_string(),
            })?;
        }
        Ok(store)
    }
}
