//! A client session: its settings, the PostgreSQL-compatible parsing of its
//! statements, the utility statements DataFusion does not know (SET/SHOW/RESET,
//! transactions, DISCARD, LISTEN …), and guarded execution (statement_timeout,
//! cancellation). The wire server, `bianzhi run` and the test harness all use it,
//! so a statement means the same everywhere.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    visit_relations_mut, CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
    Ident, ObjectName, ObjectType, Query, Statement, Visit, Visitor,
};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Future, FutureExt, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::pg_compat::user_subqueries::protect_user_subqueries;
use crate::pg_compat::SessionIdentity;
use crate::settings::{SettingError, Settings};
use crate::sqlstate::{code, from_datafusion, SqlError};
use crate::text_corpus::{uses_corpus_weights, with_fixed_weights, CorpusWeights};
use datafusion::execution::FunctionRegistry as _;

/// Result type of session operations.
pub type SqlResult<T> = std::result::Result<T, SqlError>;

/// A statement DataFusion does not plan; the session answers it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Utility {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Release,
    RollbackToSavepoint,
    /// `SET name = value`; `None` means DEFAULT.
    Set {
        name: String,
        value: Option<String>,
    },
    /// `RESET name`; `None` means ALL.
    Reset {
        name: Option<String>,
    },
    /// `DISCARD ALL` and friends.
    Discard,
    /// `SHOW name`; `None` means ALL.
    Show {
        name: Option<String>,
    },
    /// Accepted and ignored, answered with this command tag.
    Ignored {
        tag: &'static str,
    },
}

/// What kind of result a planned statement gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryKind {
    /// Rows, with the command tag (SELECT, SHOW, EXPLAIN …).
    Rows,
    /// INSERT/UPDATE/DELETE: a count.
    Dml { tag: &'static str },
    /// CREATE/DROP and other commands that return no rows.
    Command { tag: String },
}

/// Output format of COPY … TO STDOUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub header: bool,
    pub delimiter: Option<char>,
    pub null: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

/// A statement ready to run.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Nothing but whitespace and comments.
    Empty,
    Utility(Utility),
    Query {
        plan: LogicalPlan,
        kind: QueryKind,
    },
    Copy {
        plan: LogicalPlan,
        options: CopyOptions,
    },
    /// `COPY table [(columns)] FROM STDIN`: the client sends the rows next.
    CopyIn {
        /// Qualified as schema.sql names it (`external_roster`, `generator.planted`).
        table: String,
        /// Empty for every column in table order.
        columns: Vec<String>,
        options: CopyOptions,
    },
}

/// The answer to a utility statement.
#[derive(Debug, Clone)]
pub struct UtilityOutcome {
    /// Command tag (SET, BEGIN …), or the column name of a SHOW.
    pub tag: String,
    /// Rows of a SHOW.
    pub rows: Option<RecordBatch>,
    /// Settings clients must be told about (ParameterStatus).
    pub changed: Vec<(String, String)>,
}

/// One client's session.
pub struct Session {
    ctx: SessionContext,
    settings: Settings,
    identity: SessionIdentity,
    parser: Arc<PostgresCompatibilityParser>,
    running: Mutex<CancellationToken>,
    /// Set when the server shuts down: cancellation then reports 57P01.
    terminating: Arc<AtomicBool>,
    /// Where `CREATE TABLE` and `DROP TABLE` of SQL-made tables go.
    user_tables: Arc<crate::user_tables::UserTables>,
    /// `func_similarity`'s weights, counted again before a statement using
    /// them once the corpus tables changed.
    corpus_weights: Arc<CorpusWeights>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.ctx.session_id())
            .field("identity", &self.identity)
            .finish()
    }
}

impl Session {
    /// A new session of `engine` with the given settings and identity.
    pub fn new(
        engine: &Engine,
        settings: Settings,
        identity: SessionIdentity,
    ) -> crate::error::Result<Session> {
        let ctx = engine.session_for(&settings, &identity)?;
        let session = Session {
            ctx,
            settings,
            identity,
            parser: Arc::new(PostgresCompatibilityParser::new()),
            running: Mutex::new(CancellationToken::new()),
            terminating: Arc::new(AtomicBool::new(false)),
            user_tables: engine.user_tables(),
            corpus_weights: engine.corpus_weights(),
        };
        // Startup parameters such as TimeZone or search_path take effect now.
        for name in ["TimeZone", "search_path"] {
            if let Ok(value) = session.settings.get(name) {
                let _ = session.apply_to_datafusion(name, &value);
            }
        }
        Ok(session)
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn identity(&self) -> &SessionIdentity {
        &self.identity
    }

    /// Cancel the statement running now (CancelRequest).
    pub fn cancel(&self) {
        if let Ok(token) = self.running.lock() {
            token.cancel();
        }
    }

    /// Stop for good (server shutdown): the running statement and any later
    /// one fail with 57P01.
    pub fn terminate(&self) {
        self.terminating.store(true, Ordering::SeqCst);
        self.cancel();
    }

    /// Understand one statement (no trailing semicolon needed): a utility
    /// statement, or a DataFusion plan with placeholders still unbound.
    pub async fn prepare(&self, sql: &str) -> SqlResult<Prepared> {
        let text = strip_comments(sql);
        let text = text.trim().trim_end_matches(';').trim();
        if text.is_empty() {
            return Ok(Prepared::Empty);
        }
        if let Some(utility) = recognize_utility(text)? {
            return Ok(Prepared::Utility(utility));
        }
        let text = protect_user_subqueries(text);
        let mut statements = self
            .parser
            .parse(&text)
            .map_err(|e| SqlError::new(code::SYNTAX_ERROR, e.to_string()))?;
        let mut statement = match statements.len() {
            0 => return Ok(Prepared::Empty),
            1 => statements.remove(0),
            _ => {
                return Err(SqlError::new(
                    code::SYNTAX_ERROR,
                    "cannot insert multiple commands into a prepared statement",
                ))
            }
        };
        crate::pg_compat::rewrite::rewrite(&mut statement);
        crate::pg_compat::column_names::name_columns(&mut statement);
        self.qualify_by_search_path(&mut statement);
        if let Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } = &statement
        {
            if !*to && *target == CopyTarget::Stdin {
                return copy_in(source, copy_options(options, legacy_options)?);
            }
            if !*to || *target != CopyTarget::Stdout {
                return Err(SqlError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    "COPY reads only from STDIN and writes only to STDOUT (files are the client's: psql \\copy, or `bianzhi import`)",
                ));
            }
            let query = match source {
                CopySource::Query(query) => query.to_string(),
                CopySource::Table {
                    table_name,
                    columns,
                } => {
                    let columns = if columns.is_empty() {
                        "*".to_string()
                    } else {
                        columns
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    format!("SELECT {columns} FROM {table_name}")
                }
            };
            let plan = self.plan(&query).await?;
            return Ok(Prepared::Copy {
                plan,
                options: copy_options(options, legacy_options)?,
            });
        }
        self.refuse_dropping_domain_tables(&statement)?;
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(|e| from_datafusion(&e))?;
        let kind = query_kind(&plan);
        Ok(Prepared::Query { plan, kind })
    }

    async fn plan(&self, sql: &str) -> SqlResult<LogicalPlan> {
        let sql = protect_user_subqueries(sql);
        let mut statements = self
            .parser
            .parse(&sql)
            .map_err(|e| SqlError::new(code::SYNTAX_ERROR, e.to_string()))?;
        if statements.len() != 1 {
            return Err(SqlError::new(code::SYNTAX_ERROR, "expected one query"));
        }
        self.ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(statements.remove(0))))
            .await
            .map_err(|e| from_datafusion(&e))
    }

    /// With more than one schema on search_path, name each unqualified table by
    /// the first schema that has it (DataFusion itself knows one default schema).
    fn qualify_by_search_path(&self, statement: &mut Statement) {
        let path = self.settings.search_path();
        if path.len() < 2 {
            return;
        }
        let state = self.ctx.state();
        let catalog_name = state.config().options().catalog.default_catalog.clone();
        let Some(catalog) = state.catalog_list().catalog(&catalog_name) else {
            return;
        };
        let ctes = cte_names(statement);
        let _ = visit_relations_mut(statement, |relation| {
            if relation.0.len() == 1 {
                if let Some(name) = relation.0[0].as_ident().map(|i| i.value.clone()) {
                    if !ctes.contains(&name) {
                        let found = path.iter().find(|schema| {
                            catalog.schema(schema).is_some_and(|s| s.table_exist(&name))
                        });
                        if let Some(schema) = found {
                            *relation = ObjectName::from(vec![
                                Ident::new(schema.clone()),
                                Ident::new(name),
                            ]);
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }

    fn refuse_dropping_domain_tables(&self, statement: &Statement) -> SqlResult<()> {
        if let Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } = statement
        {
            let catalog = bianzhi_catalog::Catalog::builtin()
                .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
            for name in names {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
                    .collect();
                let (schema, table) = match parts.as_slice() {
                    [t] => ("public".to_string(), t.clone()),
                    [s, t] | [_, s, t] => (s.clone(), t.clone()),
                    _ => continue,
                };
                if catalog
                    .tables()
                    .iter()
                    .any(|d| d.schema == schema && d.name == table)
                {
                    return Err(SqlError::new(
                        code::INSUFFICIENT_PRIVILEGE,
                        format!("{schema}.{table} is a table of sql/schema.sql stored in the data directory; it cannot be dropped"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Answer a utility statement.
    pub async fn run_utility(&self, utility: &Utility) -> SqlResult<UtilityOutcome> {
        let outcome = |tag: &str| UtilityOutcome {
            tag: tag.to_string(),
            rows: None,
            changed: Vec::new(),
        };
        match utility {
            Utility::Begin => Ok(outcome("BEGIN")),
            Utility::Commit => Ok(outcome("COMMIT")),
            Utility::Rollback | Utility::RollbackToSavepoint => Ok(outcome("ROLLBACK")),
            Utility::Savepoint => Ok(outcome("SAVEPOINT")),
            Utility::Release => Ok(outcome("RELEASE")),
            Utility::Ignored { tag } => Ok(outcome(tag)),
            Utility::Set { name, value } => {
                let mut result = outcome("SET");
                if name.to_ascii_lowercase().starts_with("datafusion.") {
                    let value = value.clone().unwrap_or_default();
                    self.ctx
                        .sql(&format!("SET {name} = '{}'", value.replace('\'', "''")))
                        .await
                        .map_err(|e| from_datafusion(&e))?;
                    return Ok(result);
                }
                let reported = match value {
                    Some(value) => self.settings.set(name, value).map_err(setting_error)?,
                    None => self.settings.reset(name).map_err(setting_error)?,
                };
                let current = self.settings.get(name).map_err(setting_error)?;
                self.apply_to_datafusion(name, &current)?;
                if let Some(reported) = reported {
                    result.changed.push((reported.to_string(), current));
                }
                Ok(result)
            }
            Utility::Reset { name: Some(name) } => {
                let mut result = outcome("RESET");
                if let Some(reported) = self.settings.reset(name).map_err(setting_error)? {
                    let current = self.settings.get(reported).map_err(setting_error)?;
                    result.changed.push((reported.to_string(), current));
                }
                let current = self.settings.get(name).map_err(setting_error)?;
                self.apply_to_datafusion(name, &current)?;
                Ok(result)
            }
            Utility::Reset { name: None } | Utility::Discard => {
                let mut result = outcome(if *utility == Utility::Discard {
                    "DISCARD ALL"
                } else {
                    "RESET"
                });
                for name in self.settings.reset_all() {
                    let current = self.settings.get(name).map_err(setting_error)?;
                    result.changed.push((name.to_string(), current));
                }
                for name in ["TimeZone", "search_path"] {
                    let current = self.settings.get(name).map_err(setting_error)?;
                    self.apply_to_datafusion(name, &current)?;
                }
                Ok(result)
            }
            Utility::Show { name: None } => {
                let all = self.settings.all();
                let schema = Arc::new(Schema::new(vec![
                    Field::new("name", DataType::Utf8, false),
                    Field::new("setting", DataType::Utf8, false),
                ]));
                let batch = RecordBatch::try_new(
                    schema,
                    vec![
                        Arc::new(StringArray::from_iter_values(all.iter().map(|(n, _)| *n))),
                        Arc::new(StringArray::from_iter_values(
                            all.iter().map(|(_, v)| v.as_str()),
                        )),
                    ],
                )
                .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
                Ok(UtilityOutcome {
                    tag: "SHOW".into(),
                    rows: Some(batch),
                    changed: Vec::new(),
                })
            }
            Utility::Show { name: Some(name) } => {
                let (column, value) = if name.to_ascii_lowercase().starts_with("datafusion.") {
                    let options = self.ctx.state().config_options().clone();
                    let value = options
                        .entries()
                        .into_iter()
                        .find(|e| e.key.eq_ignore_ascii_case(name))
                        .map(|e| e.value.unwrap_or_default())
                        .ok_or_else(|| {
                            SqlError::new(
                                code::UNDEFINED_OBJECT,
                                format!("unrecognized configuration parameter \"{name}\""),
                            )
                        })?;
                    (name.clone(), value)
                } else {
                    let canonical = match name.to_ascii_lowercase().as_str() {
                        "transaction isolation level" => "transaction_isolation".to_string(),
                        "time zone" => "TimeZone".to_string(),
                        _ => name.clone(),
                    };
                    (
                        canonical.clone(),
                        self.settings.get(&canonical).map_err(setting_error)?,
                    )
                };
                let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
                    column.to_ascii_lowercase(),
                    DataType::Utf8,
                    false,
                )]));
                let batch =
                    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))])
                        .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
                Ok(UtilityOutcome {
                    tag: "SHOW".into(),
                    rows: Some(batch),
                    changed: Vec::new(),
                })
            }
        }
    }

    /// Settings that DataFusion itself must know about.
    fn apply_to_datafusion(&self, name: &str, value: &str) -> SqlResult<()> {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        match name.to_ascii_lowercase().as_str() {
            "timezone" | "time zone" => {
                state.config_mut().options_mut().execution.time_zone = Some(value.to_string());
                // now() and friends take the zone when built: rebuild them so
                // `now()` is a timestamptz in the session's zone.
                let options = state.config().options().clone();
                let rebuilt: Vec<_> = state
                    .scalar_functions()
                    .values()
                    .filter_map(|udf| udf.inner().with_updated_config(&options).map(Arc::new))
                    .collect();
                for udf in rebuilt {
                    state.register_udf(udf).map_err(|e| from_datafusion(&e))?;
                }
            }
            "search_path" => {
                // The first schema of the path that exists becomes the default.
                let schemas = self.settings.search_path();
                let catalog = state.config().options().catalog.default_catalog.clone();
                let existing = state
                    .catalog_list()
                    .catalog(&catalog)
                    .map(|c| c.schema_names())
                    .unwrap_or_default();
                let first = schemas
                    .into_iter()
                    .find(|s| existing.contains(s))
                    .unwrap_or_else(|| "public".into());
                state.config_mut().options_mut().catalog.default_schema = first;
            }
            _ => {}
        }
        Ok(())
    }

    /// Run a plan (placeholders bound), honouring statement_timeout and
    /// cancellation while planning and while rows stream.
    pub async fn execute(&self, plan: LogicalPlan) -> SqlResult<SendableRecordBatchStream> {
        let token = CancellationToken::new();
        if let Ok(mut running) = self.running.lock() {
            *running = token.clone();
        }
        if self.terminating.load(Ordering::SeqCst) {
            return Err(SqlError::shutting_down());
        }
        let stop = Stop {
            token,
            terminating: self.terminating.clone(),
        };
        let timeout = self.settings.statement_timeout();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let ctx = self.ctx.clone();
        let user_tables = self.user_tables.clone();
        let corpus_weights = self.corpus_weights.clone();
        let planning = async move {
            // Tables made by SQL are Delta tables in the data directory.
            let handled = match &plan {
                LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => {
                    user_tables.create(&ctx, create).await?
                }
                LogicalPlan::Ddl(DdlStatement::DropTable(drop)) => {
                    user_tables.drop_table(&ctx, drop).await?
                }
                _ => false,
            };
            if handled {
                let empty: SendableRecordBatchStream =
                    Box::pin(datafusion::physical_plan::EmptyRecordBatchStream::new(
                        Arc::new(Schema::empty()),
                    ));
                return Ok(empty);
            }
            // Before planning: a constant call is evaluated while optimising.
            let plan = if uses_corpus_weights(&plan) {
                let weights = corpus_weights.refresh().await?;
                with_fixed_weights(plan, weights)?
            } else {
                plan
            };
            let frame = ctx.execute_logical_plan(plan).await?;
            frame.execute_stream().await
        };
        let stream = guard(planning.boxed(), &stop, deadline).await?;
        Ok(Box::pin(GuardedStream::new(stream, stop, deadline)))
    }

    /// Run a whole script's worth of statements for embedded use: every result
    /// collected. Transaction statements are accepted and have no effect.
    pub async fn run(&self, sql: &str) -> SqlResult<Vec<Output>> {
        let mut outputs = Vec::new();
        let statements = crate::script::split(sql).map_err(|e| {
            SqlError::new(
                code::SYNTAX_ERROR,
                format!("line {}: {}", e.line, e.message),
            )
        })?;
        for statement in statements {
            outputs.push(self.run_one(&statement.sql).await?);
        }
        Ok(outputs)
    }

    /// Run one statement and collect its result.
    pub async fn run_one(&self, sql: &str) -> SqlResult<Output> {
        match self.prepare(sql).await? {
            Prepared::Empty => Ok(Output::Command {
                tag: "EMPTY".into(),
            }),
            Prepared::Utility(utility) => {
                let outcome = self.run_utility(&utility).await?;
                match outcome.rows {
                    Some(batch) => Ok(Output::Rows {
                        schema: batch.schema(),
                        batches: vec![batch],
                    }),
                    None => Ok(Output::Command { tag: outcome.tag }),
                }
            }
            Prepared::CopyIn { .. } => Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "COPY FROM STDIN needs a client that sends the data (psql \\copy); in a script use `bianzhi import`",
            )),
            Prepared::Copy { plan, .. } => {
                let schema = plan.schema().inner().clone();
                let batches = collect(self.execute(plan).await?).await?;
                Ok(Output::Rows { schema, batches })
            }
            Prepared::Query { plan, kind } => {
                let schema = plan.schema().inner().clone();
                let batches = collect(self.execute(plan).await?).await?;
                match kind {
                    QueryKind::Rows => Ok(Output::Rows { schema, batches }),
                    QueryKind::Dml { tag } => Ok(Output::Count {
                        tag,
                        rows: count_of(&batches),
                    }),
                    QueryKind::Command { tag } => Ok(Output::Command { tag }),
                }
            }
        }
    }
}

/// A collected result of [`Session::run`].
#[derive(Debug, Clone)]
pub enum Output {
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    Count {
        tag: &'static str,
        rows: u64,
    },
    Command {
        tag: String,
    },
}

async fn collect(mut stream: SendableRecordBatchStream) -> SqlResult<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch.map_err(|e| from_datafusion(&e))?);
    }
    Ok(batches)
}

/// The row count DataFusion returns for DML.
pub fn count_of(batches: &[RecordBatch]) -> u64 {
    batches
        .first()
        .and_then(|b| b.column_by_name("count"))
        .and_then(|c| datafusion::arrow::compute::cast(c, &DataType::UInt64).ok())
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                .map(|a| if a.is_empty() { 0 } else { a.value(0) })
        })
        .unwrap_or(0)
}

fn setting_error(error: SettingError) -> SqlError {
    match error {
        SettingError::Unknown(_) => SqlError::new(code::UNDEFINED_OBJECT, error.to_string()),
        SettingError::ReadOnly(_) => {
            SqlError::new(code::CANT_CHANGE_RUNTIME_PARAM, error.to_string())
        }
        SettingError::InvalidValue { .. } => {
            SqlError::new(code::INVALID_PARAMETER_VALUE, error.to_string())
        }
    }
}

fn query_kind(plan: &LogicalPlan) -> QueryKind {
    match plan {
        LogicalPlan::Dml(dml) => QueryKind::Dml {
            tag: match dml.op {
                WriteOp::Insert(_) => "INSERT",
                WriteOp::Update => "UPDATE",
                WriteOp::Delete => "DELETE",
                _ => "INSERT",
            },
        },
        LogicalPlan::Ddl(ddl) => QueryKind::Command {
            tag: match ddl {
                DdlStatement::CreateExternalTable(_) | DdlStatement::CreateMemoryTable(_) => {
                    "CREATE TABLE"
                }
                DdlStatement::CreateView(_) => "CREATE VIEW",
                DdlStatement::CreateCatalogSchema(_) => "CREATE SCHEMA",
                DdlStatement::CreateCatalog(_) => "CREATE DATABASE",
                DdlStatement::CreateIndex(_) => "CREATE INDEX",
                DdlStatement::DropTable(_) => "DROP TABLE",
                DdlStatement::DropView(_) => "DROP VIEW",
                DdlStatement::DropCatalogSchema(_) => "DROP SCHEMA",
                DdlStatement::CreateFunction(_) => "CREATE FUNCTION",
                DdlStatement::DropFunction(_) => "DROP FUNCTION",
            }
            .to_string(),
        },
        LogicalPlan::Statement(_) => QueryKind::Command { tag: "SET".into() },
        LogicalPlan::Copy(_) => QueryKind::Command { tag: "COPY".into() },
        _ => QueryKind::Rows,
    }
}

/// Checks a `COPY … FROM STDIN` against the catalog: a Delta table of
/// schema.sql (not a view or a catalog table) and its columns.
fn copy_in(source: &CopySource, options: CopyOptions) -> SqlResult<Prepared> {
    let CopySource::Table {
        table_name,
        columns,
    } = source
    else {
        return Err(SqlError::new(
            code::SYNTAX_ERROR,
            "COPY FROM needs a table, not a query",
        ));
    };
    if options.format == CopyFormat::Binary {
        return Err(SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            "COPY FROM in binary format is not supported; use text or csv",
        ));
    }
    let mut parts: Vec<String> = table_name
        .0
        .iter()
        .map(|part| identifier_value(&part.to_string()))
        .collect();
    if parts.len() == 3 && parts[0] == crate::engine::CATALOG_NAME {
        parts.remove(0);
    }
    if parts.len() == 2 && parts[0] == "public" {
        parts.remove(0);
    }
    let qualified = parts.join(".");
    let catalog = bianzhi_catalog::Catalog::builtin()
        .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
    let table = catalog.table(&qualified).map_err(|_| {
        SqlError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{table_name}\" does not exist or is not a table COPY can load"),
        )
    })?;
    let mut names = Vec::new();
    for column in columns {
        let name = identifier_value(&column.to_string());
        if table.column(&name).is_none() {
            return Err(SqlError::new(
                code::UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" of relation \"{}\" does not exist",
                    table.name
                ),
            ));
        }
        names.push(name);
    }
    Ok(Prepared::CopyIn {
        table: table.qualified_name(),
        columns: names,
        options,
    })
}

/// An identifier as SQL means it: quoted as written, unquoted lowercased.
fn identifier_value(written: &str) -> String {
    match written
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => written.to_lowercase(),
    }
}

fn copy_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> SqlResult<CopyOptions> {
    let mut out = CopyOptions {
        format: CopyFormat::Text,
        header: false,
        delimiter: None,
        null: None,
    };
    for option in options {
        match option {
            CopyOption::Format(format) => {
                out.format = match format.value.to_ascii_lowercase().as_str() {
                    "text" => CopyFormat::Text,
                    "csv" => CopyFormat::Csv,
                    "binary" => CopyFormat::Binary,
                    other => {
                        return Err(SqlError::new(
                            code::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ))
                    }
                }
            }
            CopyOption::Header(header) => out.header = *header,
            CopyOption::Delimiter(d) => out.delimiter = Some(*d),
            CopyOption::Null(n) => out.null = Some(n.clone()),
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => {
                return Err(SqlError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    format!("COPY option {other} is not supported"),
                ))
            }
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Binary => out.format = CopyFormat::Binary,
            CopyLegacyOption::Delimiter(d) => out.delimiter = Some(*d),
            CopyLegacyOption::Null(n) => out.null = Some(n.clone()),
            CopyLegacyOption::Csv(csv) => {
                out.format = CopyFormat::Csv;
                for option in csv {
                    if matches!(option, CopyLegacyCsvOption::Header) {
                        out.header = true;
                    }
                }
            }
            other => {
                return Err(SqlError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    format!("COPY option {other} is not supported"),
                ))
            }
        }
    }
    Ok(out)
}

/// What stops a running statement: its cancellation token, and whether the
/// cancellation is the server's shutdown.
#[derive(Clone)]
struct Stop {
    token: CancellationToken,
    terminating: Arc<AtomicBool>,
}

impl Stop {
    fn error(&self) -> SqlError {
        if self.terminating.load(Ordering::SeqCst) {
            SqlError::shutting_down()
        } else {
            SqlError::canceled()
        }
    }
}

/// Await a future unless the statement is cancelled or times out first.
async fn guard<T>(
    future: futures::future::BoxFuture<'static, std::result::Result<T, DataFusionError>>,
    stop: &Stop,
    deadline: Option<tokio::time::Instant>,
) -> SqlResult<T> {
    let sleep = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        result = future => result.map_err(|e| from_datafusion(&e)),
        _ = stop.token.cancelled() => Err(stop.error()),
        _ = sleep => Err(SqlError::timed_out()),
    }
}

/// A record batch stream that stops with 57014 when its statement is cancelled
/// or runs past its deadline, checked while it waits for every batch.
struct GuardedStream {
    inner: SendableRecordBatchStream,
    cancelled: Pin<Box<dyn Future<Output = ()> + Send>>,
    stop: Stop,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl GuardedStream {
    fn new(
        inner: SendableRecordBatchStream,
        stop: Stop,
        deadline: Option<tokio::time::Instant>,
    ) -> RecordBatchStreamAdapter<Self> {
        let schema = inner.schema();
        RecordBatchStreamAdapter::new(
            schema,
            GuardedStream {
                inner,
                cancelled: Box::pin(stop.token.clone().cancelled_owned()),
                stop,
                sleep: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                done: false,
            },
        )
    }
}

impl Stream for GuardedStream {
    type Item = std::result::Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(
                self.stop.error(),
            )))));
        }
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                self.done = true;
                return Poll::Ready(Some(Err(DataFusionError::External(Box::new(
                    SqlError::timed_out(),
                )))));
            }
        }
        self.inner.poll_next_unpin(cx)
    }
}

/// Names introduced by WITH clauses anywhere in a statement.
fn cte_names(statement: &Statement) -> std::collections::HashSet<String> {
    struct Ctes(std::collections::HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.0.insert(cte.alias.name.value.clone());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut ctes = Ctes(Default::default());
    let _ = statement.visit(&mut ctes);
    ctes.0
}

/// Remove -- and /* */ comments outside quotes (so a comment-only statement is empty).
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match (c, chars.get(i + 1)) {
            ('\'' | '"', _) => {
                quote = Some(c);
                out.push(c);
                i += 1;
            }
            ('-', Some('-')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Words of a statement, upper-cased, for recognising utility commands.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

/// Recognise the utility statements by their words. Returns Ok(None) for
/// statements DataFusion should plan.
pub fn recognize_utility(text: &str) -> SqlResult<Option<Utility>> {
    let w = words(text);
    let first = w.first().map(String::as_str).unwrap_or("");
    let second = w.get(1).map(String::as_str).unwrap_or("");
    let utility = match first {
        "BEGIN" | "START" => Utility::Begin,
        "COMMIT" | "END" => Utility::Commit,
        "ABORT" => Utility::Rollback,
        "ROLLBACK" => {
            if w.iter().any(|x| x == "TO") {
                Utility::RollbackToSavepoint
            } else if w.iter().any(|x| x == "PREPARED") {
                return Err(SqlError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    "prepared transactions are not supported",
                ));
            } else {
                Utility::Rollback
            }
        }
        "SAVEPOINT" => Utility::Savepoint,
        "RELEASE" => Utility::Release,
        "DISCARD" => Utility::Discard,
        "LISTEN" => Utility::Ignored { tag: "LISTEN" },
        "UNLISTEN" => Utility::Ignored { tag: "UNLISTEN" },
        "NOTIFY" => Utility::Ignored { tag: "NOTIFY" },
        "DEALLOCATE" => Utility::Ignored { tag: "DEALLOCATE" },
        "CLOSE" => Utility::Ignored {
            tag: "CLOSE CURSOR",
        },
        "CHECKPOINT" => Utility::Ignored { tag: "CHECKPOINT" },
        "RESET" => {
            if second == "ALL" || second.is_empty() {
                Utility::Reset { name: None }
            } else {
                Utility::Reset {
                    name: Some(unquote(text.split_whitespace().nth(1).unwrap_or_default())),
                }
            }
        }
        "SHOW" => {
            let rest: Vec<&str> = text.split_whitespace().skip(1).collect();
            if rest.is_empty() {
                return Err(SqlError::new(
                    code::SYNTAX_ERROR,
                    "syntax error at end of input",
                ));
            }
            if rest.len() == 1 && rest[0].eq_ignore_ascii_case("ALL") {
                Utility::Show { name: None }
            } else {
                Utility::Show {
                    name: Some(unquote(&rest.join(" "))),
                }
            }
        }
        "SET" => return recognize_set(text, &w).map(Some),
        _ => return Ok(None),
    };
    Ok(Some(utility))
}

fn recognize_set(text: &str, w: &[String]) -> SqlResult<Utility> {
    let mut rest: Vec<&str> = text.split_whitespace().skip(1).collect();
    if matches!(w.get(1).map(String::as_str), Some("SESSION" | "LOCAL")) {
        // SET SESSION CHARACTERISTICS AS TRANSACTION …, SET SESSION AUTHORIZATION …
        if matches!(
            w.get(2).map(String::as_str),
            Some("CHARACTERISTICS" | "AUTHORIZATION")
        ) {
            return Ok(Utility::Ignored { tag: "SET" });
        }
        rest.remove(0);
    }
    let upper: Vec<String> = rest.iter().map(|s| s.to_ascii_uppercase()).collect();
    match upper.first().map(String::as_str) {
        None => {
            return Err(SqlError::new(
                code::SYNTAX_ERROR,
                "syntax error at end of input",
            ))
        }
        Some("TRANSACTION") | Some("CONSTRAINTS") | Some("ROLE") => {
            return Ok(Utility::Ignored { tag: "SET" })
        }
        Some("TIME") if upper.get(1).map(String::as_str) == Some("ZONE") => {
            let value = rest[2..].join(" ");
            return Ok(set("TimeZone", &value));
        }
        Some("NAMES") => return Ok(set("client_encoding", &rest[1..].join(" "))),
        Some("SCHEMA") => return Ok(set("search_path", &rest[1..].join(" "))),
        _ => {}
    }
    // name {TO | =} value[, value …], with `name=value` written without spaces too.
    let joined = rest.join(" ");
    let (name, value) = if let Some((name, value)) = joined.split_once('=') {
        (name.trim().to_string(), value.trim().to_string())
    } else if let Some(position) = upper.iter().position(|x| x == "TO") {
        (rest[..position].join(" "), rest[position + 1..].join(" "))
    } else {
        return Err(SqlError::new(
            code::SYNTAX_ERROR,
            format!("syntax error in SET: {text}"),
        ));
    };
    if name.is_empty() || value.is_empty() {
        return Err(SqlError::new(
            code::SYNTAX_ERROR,
            format!("syntax error in SET: {text}"),
        ));
    }
    Ok(set(&unquote(&name), &value))
}

fn set(name: &str, value: &str) -> Utility {
    let value = value.trim();
    if value.eq_ignore_ascii_case("DEFAULT") || value.eq_ignore_ascii_case("LOCAL") {
        return Utility::Set {
            name: name.to_string(),
            value: None,
        };
    }
    // A list (search_path) keeps its commas; every item loses its quotes.
    let items: Vec<String> = value.split(',').map(|v| unquote(v.trim())).collect();
    Utility::Set {
        name: name.to_string(),
        value: Some(items.join(", ")),
    }
}

fn unquote(text: &str) -> String {
    let text = text.trim();
    if text.len() >= 2
        && ((text.starts_with('\'') && text.ends_with('\''))
            || (text.starts_with('"') && text.ends_with('"')))
    {
        text[1..text.len() - 1].replace("''", "'")
    } else {
        text.to_string()
    }
}

/// How long a statement may run, for logs.
pub fn describe_timeout(timeout: Option<Duration>) -> String {
    timeout.map_or_else(|| "none".into(), |t| format!("{} ms", t.as_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utility_statements_are_recognised() {
        let u = |s: &str| recognize_utility(s).unwrap();
        assert_eq!(u("begin"), Some(Utility::Begin));
        assert_eq!(
            u("START TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            Some(Utility::Begin)
        );
        assert_eq!(u("end"), Some(Utility::Commit));
        assert_eq!(
            u("ROLLBACK TO SAVEPOINT a"),
            Some(Utility::RollbackToSavepoint)
        );
        assert_eq!(u("UNLISTEN *"), Some(Utility::Ignored { tag: "UNLISTEN" }));
        assert_eq!(u("DISCARD ALL"), Some(Utility::Discard));
        assert_eq!(u("RESET ALL"), Some(Utility::Reset { name: None }));
        assert_eq!(
            u("reset TimeZone"),
            Some(Utility::Reset {
                name: Some("TimeZone".into())
            })
        );
        assert_eq!(
            u("SHOW TRANSACTION ISOLATION LEVEL"),
            Some(Utility::Show {
                name: Some("TRANSACTION ISOLATION LEVEL".into())
            })
        );
        assert_eq!(
            u("SET search_path TO generator, \"public\""),
            Some(Utility::Set {
                name: "search_path".into(),
                value: Some("generator, public".into())
            })
        );
        assert_eq!(
            u("SET TIME ZONE 'Asia/Shanghai'"),
            Some(Utility::Set {
                name: "TimeZone".into(),
                value: Some("Asia/Shanghai".into())
            })
        );
        assert_eq!(
            u("set extra_float_digits=3"),
            Some(Utility::Set {
                name: "extra_float_digits".into(),
                value: Some("3".into())
            })
        );
        assert_eq!(
            u("SET application_name = 'PostgreSQL JDBC Driver'"),
            Some(Utility::Set {
                name: "application_name".into(),
                value: Some("PostgreSQL JDBC Driver".into())
            })
        );
        assert_eq!(
            u("SET statement_timeout TO DEFAULT"),
            Some(Utility::Set {
                name: "statement_timeout".into(),
                value: None
            })
        );
        assert_eq!(
            u("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"),
            Some(Utility::Ignored { tag: "SET" })
        );
        assert_eq!(u("SELECT 1"), None);
        assert!(recognize_utility("SET").is_err());
    }

    #[test]
    fn comments_are_stripped_outside_quotes() {
        assert_eq!(strip_comments("-- ping").trim(), "");
        assert_eq!(
            strip_comments("SELECT '--x' /* c */ -- t").trim(),
            "SELECT '--x'"
        );
    }
}
