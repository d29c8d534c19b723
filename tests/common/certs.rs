//! A throwaway PKI for TLS tests, made with rcgen at test time and written as PEM files into a
//! fresh directory: CAs, server certificates for `localhost` and 127.0.0.1, client
//! certificates. Also compiled into the library's config tests (`#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A fresh, empty directory under the system's temp dir, unique to this process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("otlp-gw-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A certificate authority that issues leaf certificates.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key, as PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA cert").pem();
        Ca { pem, issuer: Issuer::new(params, key) }
    }

    /// A server certificate named `cn`, valid for `localhost` and 127.0.0.1.
    pub fn server(&self, cn: &str) -> Leaf {
        self.leaf(cn, &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A server certificate for other names only (for `server_name_override`).
    pub fn server_for(&self, cn: &str, names: &[&str]) -> Leaf {
        self.leaf(cn, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate named `cn`.
    pub fn client(&self, cn: &str) -> Leaf {
        self.leaf(cn, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, cn: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf { cert: cert.pem(), key: key.serialize_pem() }
    }
}

/// Writes `contents` to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write PEM");
    path
}

impl Leaf {
    /// Writes `<name>.pem` and `<name>-key.pem` into `dir`; returns (cert, key) paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (write(dir, &format!("{name}.pem"), &self.cert), write(dir, &format!("{name}-key.pem"), &self.key))
    }
}

/// The usual files in a fresh directory: `ca.pem`; `server.pem`/`server-key.pem` (CN
/// `server-1`, for localhost and 127.0.0.1) and `client.pem`/`client-key.pem` from that CA;
/// `other-ca.pem` and `other-client.pem`/`other-client-key.pem` from an unrelated CA.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: Ca,
    pub other: Ca,
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let (dir, ca, other) = (temp_dir(tag), Ca::new("test CA"), Ca::new("other CA"));
        write(&dir, "ca.pem", &ca.pem);
        write(&dir, "other-ca.pem", &other.pem);
        ca.server("server-1").write(&dir, "server");
        ca.client("client").write(&dir, "client");
        other.client("stranger").write(&dir, "other-client");
        Pki { dir, ca, other }
    }

    /// The path of `name` in the directory, as config text.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A receiver `tls` flow mapping with the server files and `extra` keys (`, key: value`).
    pub fn server_tls(&self, extra: &str) -> String {
        format!("{{cert_file: {}, key_file: {}{extra}}}", self.path("server.pem"), self.path("server-key.pem"))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `yaml` (as `ConfigBuilder` writes it) with `tls` (a flow mapping) on the gRPC receiver.
pub fn with_grpc_tls(yaml: &str, tls: &str) -> String {
    let grpc = "      grpc:\n        endpoint: 127.0.0.1:0\n";
    assert!(yaml.contains(grpc), "unexpected config shape:\n{yaml}");
    yaml.replacen(grpc, &format!("{grpc}        tls: {tls}\n"), 1)
}

/// `yaml` (as `ConfigBuilder` writes it) with every exporter's `tls` replaced by `tls`.
pub fn with_backend_tls(yaml: &str, tls: &str) -> String {
    let insecure = "        tls:\n          insecure: true\n";
    assert!(yaml.contains(insecure), "unexpected config shape:\n{yaml}");
    yaml.replace(insecure, &format!("        tls: {tls}\n"))
}
