//! TLS from a certificate and key file. A file that cannot be loaded stops the
//! server from starting: it never falls back to unencrypted connections.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use super::config::TlsFile;

/// A TLS problem, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// Build an acceptor from PEM files.
pub fn acceptor(tls: &TlsFile) -> Result<TlsAcceptor, TlsError> {
    let open = |path: &std::path::Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut open(&tls.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            TlsError(format!(
                "{} is not a PEM certificate: {e}",
                tls.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{} holds no certificate",
            tls.cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut open(&tls.key)?)
        .map_err(|e| {
            TlsError(format!(
                "{} is not a PEM private key: {e}",
                tls.key.display()
            ))
        })?
        .ok_or_else(|| TlsError(format!("{} holds no private key", tls.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("certificate and key do not fit: {e}")))?;
    // Direct TLS (PostgreSQL 17 sslnegotiation=direct) requires this ALPN.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
