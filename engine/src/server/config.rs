//! Server configuration: defaults, then a TOML file, then `BIANZHI_*`
//! environment variables, then command-line flags (flags win). See
//! `config/example.toml` for every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::scram::Verifier;
use crate::settings::parse_duration_ms;

/// Default listen address: 5433, since 5432 is usually a real PostgreSQL.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    /// Write the bound address here once listening (for scripts and tests).
    pub address_file: Option<PathBuf>,
    pub max_connections: Option<usize>,
    #[serde(default)]
    pub auth: AuthFile,
    pub tls: Option<TlsFile>,
    #[serde(default)]
    pub limits: LimitsFile,
    /// Run the monitoring rules on this schedule (`10min`, `1h`).
    pub monitor_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// `scram-sha-256` (default when users are configured) or `trust` (loopback only).
    pub method: Option<String>,
    #[serde(default)]
    pub users: Vec<UserFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    pub name: String,
    /// A SCRAM-SHA-256 verifier (`bianzhi password` makes one), never a password.
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Default statement_timeout of new sessions (`30s`, `5min`; 0 = none).
    pub statement_timeout: Option<String>,
    /// Memory a session's query may use (`512MiB`, `2GiB`).
    pub query_memory: Option<String>,
}

/// Values from the environment and the command line (None = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub address_file: Option<PathBuf>,
    pub max_connections: Option<usize>,
    pub auth: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub statement_timeout: Option<String>,
    pub query_memory: Option<String>,
    pub monitor_every: Option<String>,
}

/// How clients prove who they are.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No password: only allowed when listening on a loopback address.
    Trust,
    /// SCRAM-SHA-256 against the configured verifiers.
    Scram(Vec<(String, Verifier)>),
}

/// The effective server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: String,
    pub address_file: Option<PathBuf>,
    pub max_connections: usize,
    pub auth: Auth,
    pub tls: Option<TlsFile>,
    pub statement_timeout: Option<Duration>,
    pub query_memory_limit: Option<usize>,
    pub monitor_every: Option<Duration>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigFile {
    /// Read and parse a TOML configuration file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// `512MiB`, `2GiB`, `1000000` → bytes.
pub fn parse_bytes(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "kib" | "k" => 1024.0,
        "mb" | "mib" | "m" => 1024.0 * 1024.0,
        "gb" | "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor) as usize)
}

impl ServerConfig {
    /// Combine the file (if any) with overrides; check everything.
    pub fn resolve(file: ConfigFile, overrides: Overrides) -> Result<ServerConfig, ConfigError> {
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            invalid(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:5433 ({e})"),
            )
        })?;
        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| bianzhi_catalog::DEFAULT_DATA_DIR.to_string());
        let mut users = Vec::new();
        for user in &file.auth.users {
            let verifier = Verifier::parse(&user.password)
                .map_err(|e| invalid(&format!("auth.users[{}].password", user.name), e))?;
            users.push((user.name.clone(), verifier));
        }
        let method = overrides.auth.or(file.auth.method).unwrap_or_else(|| {
            if users.is_empty() {
                "trust".into()
            } else {
                "scram-sha-256".into()
            }
        });
        let auth = match method.to_ascii_lowercase().as_str() {
            "trust" => {
                if !listen.ip().is_loopback() {
                    return Err(invalid(
                        "auth.method",
                        format!(
                            "trust (no password) is only allowed on a loopback address, not {listen}; \
                             add [[auth.users]] with `bianzhi password` verifiers"
                        ),
                    ));
                }
                Auth::Trust
            }
            "scram-sha-256" | "scram" => {
                if users.is_empty() {
                    return Err(invalid(
                        "auth.users",
                        "scram-sha-256 needs at least one [[auth.users]] entry",
                    ));
                }
                Auth::Scram(users)
            }
            other => {
                return Err(invalid(
                    "auth.method",
                    format!("unknown method {other:?}; use scram-sha-256 or trust"),
                ))
            }
        };
        let tls = match (overrides.tls_cert, overrides.tls_key, file.tls) {
            (Some(cert), Some(key), _) => Some(TlsFile { cert, key }),
            (None, None, tls) => tls,
            _ => return Err(invalid("tls", "give both a certificate and a key")),
        };
        let statement_timeout = match overrides
            .statement_timeout
            .or(file.limits.statement_timeout)
        {
            Some(text) => {
                let ms = parse_duration_ms(&text).ok_or_else(|| {
                    invalid(
                        "limits.statement_timeout",
                        format!("{text:?} is not a duration like 30s"),
                    )
                })?;
                (ms > 0).then(|| Duration::from_millis(ms))
            }
            None => None,
        };
        let query_memory_limit = match overrides.query_memory.or(file.limits.query_memory) {
            Some(text) => Some(parse_bytes(&text).ok_or_else(|| {
                invalid(
                    "limits.query_memory",
                    format!("{text:?} is not a size like 2GiB"),
                )
            })?),
            None => None,
        };
        let monitor_every = match overrides.monitor_every.or(file.monitor_every) {
            Some(text) => {
                let ms = parse_duration_ms(&text)
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        invalid(
                            "monitor_every",
                            format!("{text:?} is not a duration like 10min"),
                        )
                    })?;
                Some(Duration::from_millis(ms))
            }
            None => None,
        };
        Ok(ServerConfig {
            listen,
            data_dir,
            address_file: overrides.address_file.or(file.address_file),
            max_connections: overrides
                .max_connections
                .or(file.max_connections)
                .unwrap_or(100),
            auth,
            tls,
            statement_timeout,
            query_memory_limit,
            monitor_every,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/example.toml");
        let file = ConfigFile::load(Path::new(path)).unwrap();
        let config = ServerConfig::resolve(file, Overrides::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:5433");
        assert!(matches!(config.auth, Auth::Scram(ref users) if users.len() == 1));
        assert_eq!(config.statement_timeout, Some(Duration::from_secs(300)));
        assert_eq!(config.query_memory_limit, Some(2 * 1024 * 1024 * 1024));
    }

    #[test]
    fn flags_win_and_mistakes_name_the_key() {
        let file = ConfigFile::parse(
            "c.toml",
            "listen = \"127.0.0.1:7000\"\nmax_connections = 5\n",
        )
        .unwrap();
        let config = ServerConfig::resolve(
            file,
            Overrides {
                listen: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.max_connections, 5);
        assert!(matches!(config.auth, Auth::Trust));

        let err = ConfigFile::parse("c.toml", "lissten = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml") && err.contains("lissten"), "{err}");
        let file = ConfigFile::parse("c.toml", "listen = \"0.0.0.0:5433\"").unwrap();
        let err = ServerConfig::resolve(file, Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.method") && err.contains("loopback"),
            "{err}"
        );
        let file = ConfigFile::parse(
            "c.toml",
            "[[auth.users]]\nname = \"a\"\npassword = \"plain\"",
        )
        .unwrap();
        let err = ServerConfig::resolve(file, Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.users[a].password"), "{err}");
        assert_eq!(parse_bytes("512MiB"), Some(512 * 1024 * 1024));
    }
}
