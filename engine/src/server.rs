//! `bianzhi serve`: the PostgreSQL wire protocol server.
//!
//! Bind first (port 0 works and the bound address is reported), accept in a
//! loop that also watches for shutdown, one task per connection; on shutdown
//! running statements are cancelled and connections closed.

pub mod config;
pub mod connection;
pub mod encode;
pub mod errors;
mod numeric;
pub mod params;
pub mod registry;
pub mod scram;
pub mod startup;
pub mod tls;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::{process_socket, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::export::{AtomicFile, ExportError};
use config::{Auth, ServerConfig};
use connection::{Connection, ConnectionHandlers};
use registry::Registry;

/// How long a connection stays open after shutdown starts, so that a
/// statement it was running can report 57P01 to its client.
const SHUTDOWN_REPORT_GRACE: Duration = Duration::from_secs(1);

/// What every connection shares.
pub struct ServerState {
    pub engine: Engine,
    pub config: ServerConfig,
    pub registry: Arc<Registry>,
    tls: Option<TlsAcceptor>,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<ServerState>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("writing the address file {path}: {source}")]
    AddressFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `address` to `path` whole, through a temporary file synced and
/// renamed into place: whoever polls for the file never reads half an
/// address, and a failed write leaves nothing behind.
fn write_address_file(path: &Path, address: SocketAddr) -> std::io::Result<()> {
    let as_io = |error: ExportError| match error {
        ExportError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    };
    let mut file = AtomicFile::create(path).map_err(as_io)?;
    writeln!(file, "{address}")?;
    file.commit().map_err(as_io)
}

impl Server {
    /// Bind the listener and prepare TLS; fails (never degrades) if TLS cannot load.
    pub async fn bind(engine: Engine, config: ServerConfig) -> Result<Server, ServerError> {
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    address: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: config.listen,
            source,
        })?;
        if let Some(path) = &config.address_file {
            write_address_file(path, local_addr).map_err(|source| ServerError::AddressFile {
                path: path.display().to_string(),
                source,
            })?;
        }
        if matches!(config.auth, Auth::Trust) {
            tracing::warn!(
                "authentication is OFF (trust): any local user can connect without a password"
            );
        }
        let state = Arc::new(ServerState {
            engine,
            registry: Arc::new(Registry::new(config.max_connections)),
            config,
            tls,
        });
        Ok(Server {
            listener,
            local_addr,
            state,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether clients must negotiate TLS to be encrypted.
    pub fn tls_enabled(&self) -> bool {
        self.state.tls.is_some()
    }

    /// The shared state (engine, registry).
    pub fn state(&self) -> Arc<ServerState> {
        self.state.clone()
    }

    /// Serve until `shutdown` is cancelled; then cancel running statements and
    /// close every connection.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut connections = JoinSet::new();
        tracing::info!(address = %self.local_addr, tls = self.state.tls.is_some(), "listening");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => {
                    let (socket, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: back off a little.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = socket.set_nodelay(true);
                    let state = self.state.clone();
                    let closing = shutdown.clone();
                    connections.spawn(async move {
                        let conn = Arc::new(Connection::new(state.clone(), peer));
                        let handlers = Arc::new(ConnectionHandlers { conn });
                        tokio::select! {
                            result = process_socket(socket, state.tls.clone(), handlers) => {
                                if let Err(e) = result {
                                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                                }
                            }
                            // A running statement gets a moment to send its
                            // 57P01 before the socket closes.
                            _ = async {
                                closing.cancelled().await;
                                tokio::time::sleep(SHUTDOWN_REPORT_GRACE).await;
                            } => {}
                        }
                    });
                }
                // Reap finished connection tasks (a panic in one stays in it).
                Some(finished) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = finished {
                        if e.is_panic() {
                            tracing::error!("a connection task panicked; the server keeps serving");
                        }
                    }
                }
            }
        }
        tracing::info!("shutting down: cancelling running statements");
        self.state.registry.terminate_all();
        let grace = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = &mut grace => break,
                next = connections.join_next() => if next.is_none() { break },
            }
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        tracing::info!("stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address_file: std::path::PathBuf) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: String::new(),
            address_file: Some(address_file),
            max_connections: 4,
            auth: Auth::Trust,
            tls: None,
            statement_timeout: None,
            query_memory_limit: None,
            monitor_every: None,
        }
    }

    #[tokio::test]
    async fn address_file_holds_the_bound_address_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let engine = Engine::open(data.to_str().unwrap()).await.unwrap();
        let path = dir.path().join("address");
        let server = Server::bind(engine, config(path.clone())).await.unwrap();
        let written: SocketAddr = std::fs::read_to_string(&path)
            .unwrap()
            .trim_end()
            .parse()
            .unwrap();
        assert_eq!(written, server.local_addr());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["address", "data"]);

        let engine = Engine::open(data.to_str().unwrap()).await.unwrap();
        let missing = dir.path().join("no such directory").join("address");
        let error = Server::bind(engine, config(missing)).await.err().unwrap();
        let message = error.to_string();
        assert!(
            matches!(error, ServerError::AddressFile { .. })
                && message.contains("no such directory"),
            "{message}"
        );
    }
}
