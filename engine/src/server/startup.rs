//! Connection startup: max_connections, authentication (trust on loopback or
//! SCRAM-SHA-256 against stored verifiers), the session, and the parameters
//! clients read first (server_version 16.x, UTF8, DateStyle ISO …).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion_postgres::pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use datafusion_postgres::pgwire::api::{ClientInfo, PgWireConnectionState};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};

use super::config::Auth;
use super::connection::Connection;
use super::errors::fatal;
use super::scram::{self, Exchange, Verifier};
use crate::pg_compat::SessionIdentity;
use crate::session::Session;
use crate::settings::Settings;
use crate::sqlstate::code;

/// Where an authentication exchange stands.
#[derive(Debug, Default)]
pub enum AuthState {
    #[default]
    Start,
    /// AuthenticationSASL sent; waiting for SASLInitialResponse.
    AwaitingInitial {
        user: String,
    },
    /// server-first sent; waiting for client-final.
    AwaitingFinal {
        user: String,
        exchange: Box<Exchange>,
    },
    Done,
}

/// The ParameterStatus values of a session.
struct Parameters(Vec<(String, String)>);

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.iter().cloned().collect())
    }
}

/// The startup handler of one connection.
pub struct Startup {
    pub conn: Arc<Connection>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if !self.conn.admit() {
                    return Err(fatal(
                        code::TOO_MANY_CONNECTIONS,
                        "sorry, too many clients already",
                    ));
                }
                let user = client.metadata().get("user").cloned().ok_or_else(|| {
                    fatal(
                        code::INVALID_AUTHORIZATION,
                        "no PostgreSQL user name specified in startup packet",
                    )
                })?;
                match &self.conn.server.config.auth {
                    Auth::Trust => self.finish(client, &user).await,
                    Auth::Scram(_) => {
                        *self.conn.auth.lock().await = AuthState::AwaitingInitial { user };
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                                vec!["SCRAM-SHA-256".to_string()],
                            )))
                            .await?;
                        Ok(())
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let state = std::mem::take(&mut *self.conn.auth.lock().await);
                match state {
                    AuthState::AwaitingInitial { user } => {
                        let initial = message.into_sasl_initial_response()?;
                        if initial.auth_method != "SCRAM-SHA-256" {
                            return Err(fatal(
                                code::INVALID_AUTHORIZATION,
                                format!("SASL mechanism {} is not supported", initial.auth_method),
                            ));
                        }
                        let data = initial.data.unwrap_or_default();
                        let client_first = std::str::from_utf8(&data).map_err(|_| {
                            fatal(code::PROTOCOL_VIOLATION, "SCRAM message is not UTF-8")
                        })?;
                        let verifier = self.verifier(&user);
                        let (server_first, exchange) = scram::server_first(client_first, verifier)
                            .map_err(|e| fatal(code::PROTOCOL_VIOLATION, e))?;
                        *self.conn.auth.lock().await = AuthState::AwaitingFinal {
                            user,
                            exchange: Box::new(exchange),
                        };
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(Bytes::from(server_first)),
                            ))
                            .await?;
                        Ok(())
                    }
                    AuthState::AwaitingFinal { user, exchange } => {
                        let response = message.into_sasl_response()?;
                        let client_final = std::str::from_utf8(&response.data).map_err(|_| {
                            fatal(code::PROTOCOL_VIOLATION, "SCRAM message is not UTF-8")
                        })?;
                        match exchange.server_final(client_final) {
                            Ok(server_final) => {
                                client
                                    .feed(PgWireBackendMessage::Authentication(
                                        Authentication::SASLFinal(Bytes::from(server_final)),
                                    ))
                                    .await?;
                                self.finish(client, &user).await
                            }
                            Err(reason) => {
                                tracing::info!(user = %user, peer = %self.conn.peer, %reason, "authentication failed");
                                Err(fatal(
                                    code::INVALID_PASSWORD,
                                    format!("password authentication failed for user \"{user}\""),
                                ))
                            }
                        }
                    }
                    _ => Err(fatal(
                        code::PROTOCOL_VIOLATION,
                        "unexpected password message",
                    )),
                }
            }
            _ => Ok(()),
        }
    }
}

impl Startup {
    /// The user's verifier, or a mock one so unknown users fail like wrong passwords.
    fn verifier(&self, user: &str) -> Verifier {
        match &self.conn.server.config.auth {
            Auth::Scram(users) => users
                .iter()
                .find(|(name, _)| name == user)
                .map(|(_, verifier)| verifier.clone())
                .unwrap_or_else(|| Verifier::mock(user)),
            Auth::Trust => Verifier::mock(user),
        }
    }

    /// Authenticated: make the session, register it for cancellation, and send
    /// AuthenticationOk, the parameters, BackendKeyData and ReadyForQuery.
    async fn finish<C>(&self, client: &mut C, user: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let startup: Vec<(String, String)> = client
            .metadata()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "user" | "database" | "options" | "replication"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let settings = Settings::new(&startup, user);
        if let Some(timeout) = self.conn.server.config.statement_timeout {
            if client.metadata().keys().all(|k| k != "statement_timeout") {
                let _ = settings.set("statement_timeout", &format!("{}ms", timeout.as_millis()));
            }
        }
        let pid = self.conn.next_pid();
        let identity = SessionIdentity {
            user: user.to_string(),
            pid,
        };
        let session = Session::new(&self.conn.server.engine, settings.clone(), identity)
            .map_err(|e| fatal(code::INTERNAL_ERROR, format!("cannot start a session: {e}")))?;
        let session = Arc::new(session);
        let (pid, secret) = self.conn.register(session.clone());
        client.set_pid_and_secret_key(pid, secret);
        *self.conn.auth.lock().await = AuthState::Done;
        let parameters = Parameters(
            settings
                .reported()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
        finish_authentication(client, &parameters).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        tracing::debug!(user, peer = %self.conn.peer, pid, "session started");
        Ok(())
    }
}
