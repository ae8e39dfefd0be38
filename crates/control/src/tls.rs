//! HTTPS: the server's certificate chain and key from PEM files, on rustls with the ring
//! provider (the one ureq already brings: no second crypto library in the binary).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ControlError;

/// The PEM files the control API serves HTTPS with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key of the first certificate.
    pub key: PathBuf,
}

fn tls_err(path: &Path, problem: impl Into<String>) -> ControlError {
    ControlError::Tls {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Builds the server's TLS settings from the PEM files.
pub(crate) fn server_config(files: &TlsFiles) -> Result<ServerConfig, ControlError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| {
            tls_err(
                &files.cert,
                format!("cannot read a PEM certificate chain: {e}"),
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(&files.cert, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(&files.cert, "holds no CERTIFICATE block"));
    }
    // A private key is a secret: only its owner may read the file.
    let meta = std::fs::metadata(&files.key)
        .map_err(|e| tls_err(&files.key, format!("cannot read: {e}")))?;
    if let Some(problem) = vigil_config::private_file_problem(&files.key, &meta) {
        return Err(tls_err(&files.key, problem));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_err(&files.key, format!("cannot read a PEM private key: {e}")))?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&files.cert, format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_err(
                &files.key,
                format!("does not go with {}: {e}", files.cert.display()),
            )
        })
}
