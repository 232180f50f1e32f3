//! One client connection: the pgwire handlers for the simple and extended
//! protocols, cancellation, and the mapping of each statement's outcome to a
//! PostgreSQL response (rows streamed as the client reads them).

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::LogicalPlan;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use datafusion_postgres::pgwire::api::cancel::CancelHandler;
use datafusion_postgres::pgwire::api::copy::{
    send_copy_in_response, send_copy_out_response, CopyHandler,
};
use datafusion_postgres::pgwire::api::portal::{Format, Portal, PortalExecutionState};
use datafusion_postgres::pgwire::api::query::{
    send_execution_response, send_query_response, send_ready_for_query, ExtendedQueryHandler,
    SimpleQueryHandler,
};
use datafusion_postgres::pgwire::api::results::{CopyResponse, FieldInfo, Response, Tag};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::{Entry, PortalStore};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ErrorHandler, PgWireConnectionState, PgWireServerHandlers, Type,
    DEFAULT_NAME,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::cancel::CancelRequest;
use datafusion_postgres::pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use datafusion_postgres::pgwire::messages::extendedquery::Execute;
use datafusion_postgres::pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use datafusion_postgres::pgwire::messages::simplequery::Query;
use datafusion_postgres::pgwire::messages::startup::{ParameterStatus, SecretKey};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::types::format::FormatOptions;
use futures::{Sink, SinkExt, StreamExt};

use super::encode::{batch_response, copy_response, present_schema, query_response};
use super::errors::to_pgwire;
use super::registry::Admission;
use super::startup::{AuthState, Startup};
use super::ServerState;
use crate::session::{CopyFormat, CopyOptions, Prepared, QueryKind, Session, Utility};
use crate::sqlstate::{code, SqlError};

/// State shared by the handlers of one connection.
pub struct Connection {
    pub server: Arc<ServerState>,
    pub peer: SocketAddr,
    pub auth: tokio::sync::Mutex<AuthState>,
    session: OnceLock<Arc<Session>>,
    admission: Mutex<Option<Admission>>,
    /// The `COPY … FROM STDIN` in progress and the data received so far.
    copy_in: Mutex<Option<PendingCopy>>,
}

/// A `COPY … FROM STDIN` waiting for the client's data: the rows are
/// gathered, then checked and committed at once when the client is done.
struct PendingCopy {
    table: String,
    columns: Vec<String>,
    options: CopyOptions,
    data: Vec<u8>,
}

impl Connection {
    pub fn new(server: Arc<ServerState>, peer: SocketAddr) -> Self {
        Connection {
            server,
            peer,
            auth: tokio::sync::Mutex::new(AuthState::Start),
            session: OnceLock::new(),
            admission: Mutex::new(None),
            copy_in: Mutex::new(None),
        }
    }

    /// Take a connection slot; false when max_connections are in use.
    pub fn admit(&self) -> bool {
        match self.server.registry.admit() {
            Some(admission) => {
                if let Ok(mut slot) = self.admission.lock() {
                    *slot = Some(admission);
                }
                true
            }
            None => false,
        }
    }

    pub fn next_pid(&self) -> i32 {
        self.admission
            .lock()
            .ok()
            .and_then(|a| a.as_ref().map(Admission::next_pid))
            .unwrap_or(0)
    }

    /// Attach the authenticated session; returns its pid and secret key.
    pub fn register(&self, session: Arc<Session>) -> (i32, SecretKey) {
        let registered = self
            .admission
            .lock()
            .ok()
            .and_then(|mut a| a.as_mut().map(|a| a.register(&session)));
        let _ = self.session.set(session);
        registered.unwrap_or((0, SecretKey::I32(0)))
    }

    fn session(&self) -> PgWireResult<&Arc<Session>> {
        self.session
            .get()
            .ok_or_else(|| to_pgwire(SqlError::new(code::PROTOCOL_VIOLATION, "not authenticated")))
    }

    /// Text formats of this session (DateStyle, extra_float_digits …).
    fn format_options(&self) -> Arc<FormatOptions> {
        let mut options = FormatOptions::default();
        if let Some(session) = self.session.get() {
            let settings = session.settings();
            if let Ok(style) = settings.get("DateStyle") {
                options.date_style = style;
            }
            if let Ok(digits) = settings.get("extra_float_digits") {
                options.extra_float_digits = digits.parse().unwrap_or(1);
            }
            if let Ok(zone) = settings.get("TimeZone") {
                options.time_zone = zone;
            }
            if let Ok(style) = settings.get("IntervalStyle") {
                options.interval_style = style;
            }
        }
        Arc::new(options)
    }

    fn time_zone(&self) -> String {
        self.session
            .get()
            .and_then(|s| s.settings().get("TimeZone").ok())
            .unwrap_or_else(|| "UTC".into())
    }

    /// The response to one prepared statement.
    ///
    /// `status` is the transaction status before the statement: within a simple
    /// query, earlier statements of the same query may have changed it.
    async fn respond<C>(
        &self,
        client: &mut C,
        status: TransactionStatus,
        prepared: &Prepared,
        plan: Option<LogicalPlan>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session()?.clone();
        let ends_block = matches!(
            prepared,
            Prepared::Utility(Utility::Rollback | Utility::Commit | Utility::RollbackToSavepoint)
        );
        if status == TransactionStatus::Error && !ends_block {
            return Err(to_pgwire(SqlError::new(
                code::IN_FAILED_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )));
        }
        match prepared {
            Prepared::Empty => Ok(Response::EmptyQuery),
            Prepared::Utility(utility) => {
                let in_block = status != TransactionStatus::Idle;
                match utility {
                    Utility::Begin if in_block => Ok(Response::Execution(Tag::new("BEGIN"))),
                    Utility::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
                    Utility::Commit if status == TransactionStatus::Error => {
                        Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
                    }
                    Utility::Commit => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
                    Utility::Rollback => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
                    Utility::Savepoint | Utility::Release | Utility::RollbackToSavepoint
                        if !in_block =>
                    {
                        Err(to_pgwire(SqlError::new(
                            code::NO_ACTIVE_TRANSACTION,
                            "SAVEPOINT can only be used in transaction blocks",
                        )))
                    }
                    Utility::RollbackToSavepoint => {
                        Ok(Response::TransactionStart(Tag::new("ROLLBACK")))
                    }
                    _ => {
                        let outcome = session.run_utility(utility).await.map_err(to_pgwire)?;
                        for (name, value) in outcome.changed {
                            client
                                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                                    name, value,
                                )))
                                .await?;
                        }
                        match outcome.rows {
                            Some(batch) => Ok(Response::Query(batch_response(
                                batch,
                                format,
                                self.format_options(),
                            )?)),
                            None => Ok(Response::Execution(Tag::new(&outcome.tag))),
                        }
                    }
                }
            }
            Prepared::CopyIn {
                table,
                columns,
                options,
            } => {
                let column_count = if columns.is_empty() {
                    self.server
                        .engine
                        .data_dir()
                        .catalog()
                        .table(table)
                        .map_or(0, |def| def.columns.len())
                } else {
                    columns.len()
                };
                let pending = PendingCopy {
                    table: table.clone(),
                    columns: columns.clone(),
                    options: options.clone(),
                    data: Vec::new(),
                };
                match self.copy_in.lock() {
                    Ok(mut slot) => *slot = Some(pending),
                    Err(_) => {
                        return Err(to_pgwire(SqlError::new(
                            code::INTERNAL_ERROR,
                            "COPY state is unavailable",
                        )))
                    }
                }
                Ok(Response::CopyIn(CopyResponse::new(
                    0,
                    column_count,
                    futures::stream::empty(),
                )))
            }
            Prepared::Copy {
                plan: copy_plan,
                options,
            } => {
                let plan = plan.unwrap_or_else(|| copy_plan.clone());
                let stream = session.execute(plan).await.map_err(to_pgwire)?;
                Ok(Response::CopyOut(copy_response(
                    stream,
                    options,
                    &self.time_zone(),
                )?))
            }
            Prepared::Query { plan: stored, kind } => {
                let plan = plan.unwrap_or_else(|| stored.clone());
                let mut stream = session.execute(plan).await.map_err(to_pgwire)?;
                match kind {
                    QueryKind::Rows => Ok(Response::Query(query_response(
                        stream,
                        format,
                        self.format_options(),
                        &self.time_zone(),
                    )?)),
                    QueryKind::Dml { tag } => {
                        let mut batches = Vec::new();
                        while let Some(batch) = stream.next().await {
                            batches
                                .push(batch.map_err(|e| {
                                    to_pgwire(crate::sqlstate::from_datafusion(&e))
                                })?);
                        }
                        let rows = crate::session::count_of(&batches) as usize;
                        let tag = if *tag == "INSERT" {
                            Tag::new(tag).with_oid(0)
                        } else {
                            Tag::new(tag)
                        };
                        Ok(Response::Execution(tag.with_rows(rows)))
                    }
                    QueryKind::Command { tag } => {
                        while let Some(batch) = stream.next().await {
                            batch.map_err(|e| to_pgwire(crate::sqlstate::from_datafusion(&e)))?;
                        }
                        Ok(Response::Execution(Tag::new(tag)))
                    }
                }
            }
        }
    }
}

/// The handlers pgwire asks for, once per connection.
pub struct ConnectionHandlers {
    pub conn: Arc<Connection>,
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(Queries {
            conn: self.conn.clone(),
        })
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(Queries {
            conn: self.conn.clone(),
        })
    }

    fn startup_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::auth::StartupHandler> {
        Arc::new(Startup {
            conn: self.conn.clone(),
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors {
            peer: self.conn.peer,
        })
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Cancel {
            conn: self.conn.clone(),
        })
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::new(CopyIn {
            conn: self.conn.clone(),
        })
    }
}

/// Receives `COPY … FROM STDIN` data and loads it when the client is done.
struct CopyIn {
    conn: Arc<Connection>,
}

impl CopyIn {
    fn take(&self) -> Option<PendingCopy> {
        self.conn
            .copy_in
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }
}

#[async_trait]
impl CopyHandler for CopyIn {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut slot = self.conn.copy_in.lock().map_err(|_| {
            to_pgwire(SqlError::new(
                code::INTERNAL_ERROR,
                "COPY state is unavailable",
            ))
        })?;
        match slot.as_mut() {
            Some(pending) => {
                pending.data.extend_from_slice(&copy_data.data);
                Ok(())
            }
            None => Err(to_pgwire(SqlError::new(
                code::PROTOCOL_VIOLATION,
                "COPY data without a COPY FROM STDIN",
            ))),
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(pending) = self.take() else {
            return Err(to_pgwire(SqlError::new(
                code::PROTOCOL_VIOLATION,
                "COPY done without a COPY FROM STDIN",
            )));
        };
        let layout = crate::import::CopyLayout {
            csv: pending.options.format == CopyFormat::Csv,
            header: pending.options.header,
            delimiter: pending.options.delimiter,
            null: pending.options.null.clone(),
        };
        let loaded = crate::import::copy_in(
            &self.conn.server.engine,
            &pending.table,
            &pending.columns,
            &layout,
            pending.data,
        )
        .await;
        match loaded {
            Ok(rows) => {
                send_execution_response(client, Tag::new("COPY").with_rows(rows as usize)).await
            }
            Err(e) => {
                tracing::debug!(peer = %self.conn.peer, error = %e, "COPY FROM STDIN rejected");
                let mut error = SqlError::new(e.sqlstate(), e.to_string());
                if let crate::import::ImportError::Rejected {
                    table, rejected, ..
                } = &e
                {
                    if let Some(first) = rejected.first() {
                        // PostgreSQL's wording: the first bad value, with its
                        // line; every rejected value in the detail.
                        error.message = format!(
                            "COPY {table}, line {}, column {}: {}",
                            first.row,
                            first.column,
                            first.problem()
                        );
                        error.detail = Some(e.to_string());
                    }
                }
                Err(to_pgwire(error))
            }
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.take();
        to_pgwire(SqlError::new(
            code::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}

struct LogErrors {
    peer: SocketAddr,
}

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        tracing::debug!(peer = %self.peer, %error, "error sent to client");
    }
}

struct Cancel {
    conn: Arc<Connection>,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let found = self
            .conn
            .server
            .registry
            .cancel(request.pid, &request.secret_key);
        tracing::debug!(pid = request.pid, found, "cancel request");
    }
}

/// A statement prepared for the extended protocol.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: String,
    pub prepared: Prepared,
}

/// Both query protocols of one connection.
pub struct Queries {
    conn: Arc<Connection>,
}

/// The transaction status after a response.
fn status_after(
    status: TransactionStatus,
    prepared: &Prepared,
    response: &Response,
) -> TransactionStatus {
    match response {
        Response::TransactionStart(_)
            if matches!(prepared, Prepared::Utility(Utility::RollbackToSavepoint)) =>
        {
            // ROLLBACK TO SAVEPOINT leaves an aborted block usable again.
            TransactionStatus::Transaction
        }
        Response::TransactionStart(_) => match status {
            TransactionStatus::Idle => TransactionStatus::Transaction,
            other => other,
        },
        Response::TransactionEnd(_) => TransactionStatus::Idle,
        _ => status,
    }
}

/// The aborted-block state an error leaves (none outside a block).
fn status_after_error(status: TransactionStatus) -> TransactionStatus {
    match status {
        TransactionStatus::Idle => TransactionStatus::Idle,
        _ => TransactionStatus::Error,
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    /// Each statement of the query string runs after the previous one's rows
    /// have been sent; the first error ends the string, as in PostgreSQL.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut status = client.transaction_status();
        let session = self.conn.session()?.clone();
        match crate::script::split(&query.query) {
            Err(e) => {
                let error = SqlError::new(
                    code::SYNTAX_ERROR,
                    format!("{} (line {})", e.message, e.line),
                );
                send_error(client, error).await?;
                status = status_after_error(status);
            }
            Ok(statements) if statements.is_empty() => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            Ok(statements) => {
                for statement in statements {
                    let outcome = match session.prepare(&statement.sql).await {
                        Ok(prepared) => self
                            .conn
                            .respond(client, status, &prepared, None, &Format::UnifiedText)
                            .await
                            .map(|response| (prepared, response)),
                        Err(e) => Err(to_pgwire(e)),
                    };
                    let sent = match outcome {
                        Ok((prepared, response)) => {
                            let next = status_after(status, &prepared, &response);
                            send_response(client, response).await.map(|()| next)
                        }
                        Err(e) => Err(e),
                    };
                    match sent {
                        Ok(next) => {
                            status = next;
                            // The client sends the COPY data next; statements
                            // after a COPY FROM STDIN in the same string are
                            // not run.
                            if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
                                break;
                            }
                        }
                        Err(PgWireError::UserError(info)) => {
                            client
                                .feed(PgWireBackendMessage::ErrorResponse((*info).into()))
                                .await?;
                            status = status_after_error(status);
                            break;
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(status);
            send_ready_for_query(client, status).await?;
        }
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` above runs and sends each statement itself.
        Err(to_pgwire(SqlError::new(
            code::INTERNAL_ERROR,
            "simple queries are handled by on_query",
        )))
    }
}

async fn send_error<C>(client: &mut C, error: SqlError) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let info = super::errors::error_info(error, "ERROR");
    client
        .feed(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    Ok(())
}

/// Send one statement's response of a simple query.
async fn send_response<C>(client: &mut C, response: Response) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match response {
        Response::EmptyQuery => {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        }
        Response::Query(rows) => send_query_response(client, rows, true).await?,
        Response::Execution(tag)
        | Response::TransactionStart(tag)
        | Response::TransactionEnd(tag) => send_execution_response(client, tag).await?,
        Response::Error(info) => return Err(PgWireError::UserError(info)),
        Response::CopyOut(copy) => send_copy_out_response(client, copy).await?,
        Response::CopyIn(copy) => {
            send_copy_in_response(client, copy).await?;
            client.set_state(PgWireConnectionState::CopyInProgress(false));
        }
        Response::CopyBoth(_) => {
            return Err(to_pgwire(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "COPY BOTH is not supported",
            )))
        }
    }
    Ok(())
}

#[async_trait]
impl QueryParser for Queries {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.conn.session()?;
        let prepared = session.prepare(sql).await.map_err(to_pgwire)?;
        if matches!(prepared, Prepared::Empty) {
            return Ok(None);
        }
        Ok(Some(Statement {
            sql: sql.to_string(),
            prepared,
        }))
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        let Some(plan) = plan_of(&statement.prepared) else {
            return Ok(Vec::new());
        };
        parameter_types(plan)?
            .into_iter()
            .map(|t| match t {
                Some(data_type) => into_pg_type(&data_type),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.unwrap_or(&Format::UnifiedText);
        match &statement.prepared {
            Prepared::Query {
                plan,
                kind: QueryKind::Rows,
            } => {
                let schema = present_schema(plan.schema().inner(), &self.conn.time_zone());
                arrow_schema_to_pg_fields(&schema, format, Some(self.conn.format_options()))
            }
            Prepared::Utility(Utility::Show { name }) => Ok(match name {
                Some(name) => vec![FieldInfo::new(
                    name.to_ascii_lowercase(),
                    None,
                    None,
                    Type::TEXT,
                    format.format_for(0),
                )],
                None => vec![
                    FieldInfo::new("name".into(), None, None, Type::TEXT, format.format_for(0)),
                    FieldInfo::new(
                        "setting".into(),
                        None,
                        None,
                        Type::TEXT,
                        format.format_for(1),
                    ),
                ],
            }),
            _ => Ok(Vec::new()),
        }
    }
}

fn plan_of(prepared: &Prepared) -> Option<&LogicalPlan> {
    match prepared {
        Prepared::Query { plan, .. } | Prepared::Copy { plan, .. } => Some(plan),
        _ => None,
    }
}

/// Types given to placeholders by a cast (`$1::bigint`), which DataFusion's
/// own inference leaves open but PostgreSQL uses.
fn cast_parameter_types(plan: &LogicalPlan) -> std::collections::HashMap<String, DataType> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Cast, Expr, TryCast};
    let mut found = std::collections::HashMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                let (inner, data_type) = match e {
                    Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
                        (expr.as_ref(), field.data_type())
                    }
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                if let Expr::Placeholder(placeholder) = inner {
                    found
                        .entry(placeholder.id.clone())
                        .or_insert_with(|| data_type.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}

/// Placeholder types in $1, $2 … order.
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let mut types = plan
        .get_parameter_types()
        .map_err(|e| to_pgwire(crate::sqlstate::from_datafusion(&e)))?;
    for (id, data_type) in cast_parameter_types(plan) {
        let slot = types.entry(id).or_insert(None);
        if slot.is_none() {
            *slot = Some(data_type);
        }
    }
    let mut numbered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, data_type)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, data_type))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    let count = numbered.last().map_or(0, |(n, _)| *n);
    let mut out = vec![None; count];
    for (n, data_type) in numbered {
        if n >= 1 {
            out[n - 1] = data_type;
        }
    }
    Ok(out)
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Statement;
    type QueryParser = Queries;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(Queries {
            conn: self.conn.clone(),
        })
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = &portal.statement.statement;
        let bound = match plan_of(&statement.prepared) {
            Some(plan) => {
                let inferred = parameter_types(plan)?;
                if inferred.is_empty() && portal.parameters.is_empty() {
                    None
                } else {
                    let values = super::params::bind(portal, &inferred).map_err(to_pgwire)?;
                    Some(
                        plan.clone()
                            .replace_params_with_values(&values)
                            .map_err(|e| to_pgwire(crate::sqlstate::from_datafusion(&e)))?,
                    )
                }
            }
            None => None,
        };
        let status = client.transaction_status();
        self.conn
            .respond(
                client,
                status,
                &statement.prepared,
                bound,
                &portal.result_column_format,
            )
            .await
    }

    /// Rows of an unlimited Execute are streamed to the client as they are
    /// produced instead of being gathered first; everything else (fetch sizes,
    /// utility statements) goes through pgwire's own path.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_string());
        let portal = match client.portal_store().get_portal(&name) {
            Some(Entry::Value(portal)) => portal,
            _ => return self._on_execute(client, message).await,
        };
        let streamable = message.max_rows == 0
            && matches!(
                portal.statement.statement.prepared,
                Prepared::Query {
                    kind: QueryKind::Rows,
                    ..
                }
            )
            && matches!(*portal.state().lock().await, PortalExecutionState::Initial)
            && matches!(client.state(), PgWireConnectionState::ReadyForQuery);
        if !streamable {
            let rollback_to = matches!(
                portal.statement.statement.prepared,
                Prepared::Utility(Utility::RollbackToSavepoint)
            );
            self._on_execute(client, message).await?;
            if rollback_to && client.transaction_status() != TransactionStatus::Idle {
                client.set_transaction_status(TransactionStatus::Transaction);
            }
            return Ok(());
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let response = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0).await;
        let result = match response {
            Ok(Response::Query(rows)) => send_query_response(client, rows, false).await,
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        *portal.state().lock().await = PortalExecutionState::Finished;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        result
    }
}
