//! Time travel over the stored tables, for audits:
//!
//! - `table_at('staff_assignment', 3)` reads the table as of Delta version 3;
//!   `table_at('staff_assignment', '2025-05-01 12:00:00+08:00')`
//!   as of the newest commit made at or before that time;
//! - `table_history('staff_assignment')` lists the table's commits.
//!
//! A table name is a string, as in `similar_pairs`: `'org'`,
//! `'public.org'`, `'generator.planted'`. The result's columns are known from
//! sql/schema.sql when the query is planned; the version is resolved and
//! loaded when the scan is planned (reading a Delta log needs I/O, and a
//! table function is called synchronously), so errors about versions and
//! times come from physical planning.

pub mod history;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bianzhi_catalog::live_table::LiveDeltaTable;
use bianzhi_catalog::schema::PUBLIC_SCHEMA;
use bianzhi_catalog::{DataDir, TableDef};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_datafusion_err, plan_err, ScalarValue, TableReference};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::TryStreamExt;

use crate::engine::CATALOG_NAME;
use history::{list_commits, read_history, Commit};

/// `table_at` and `table_history` over the stored tables of `data`, for
/// `register_udtf`.
pub fn table_functions(
    data: Arc<DataDir>,
    tables: &[(TableDef, Arc<LiveDeltaTable>)],
) -> Vec<(String, Arc<dyn TableFunctionImpl>)> {
    let stored = Arc::new(StoredTables {
        data,
        tables: tables
            .iter()
            .map(|(def, live)| (def.clone(), live.schema()))
            .collect(),
    });
    vec![
        (
            "table_at".to_string(),
            Arc::new(TableAtFunction {
                stored: stored.clone(),
            }) as Arc<dyn TableFunctionImpl>,
        ),
        (
            "table_history".to_string(),
            Arc::new(TableHistoryFunction { stored }) as Arc<dyn TableFunctionImpl>,
        ),
    ]
}

/// The data directory and its tables with the schemas their scans have.
#[derive(Debug)]
struct StoredTables {
    data: Arc<DataDir>,
    tables: Vec<(TableDef, SchemaRef)>,
}

/// One table a call names.
#[derive(Debug, Clone)]
struct Target {
    def: TableDef,
    schema: SchemaRef,
    data: Arc<DataDir>,
}

impl Target {
    fn name(&self) -> String {
        self.def.qualified_name()
    }

    /// The table, not loaded: enough to list and read its log.
    fn unloaded(&self) -> Result<DeltaTable> {
        let url = self
            .data
            .table_url(&self.def)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        DeltaTableBuilder::from_url(url)
            .and_then(|builder| builder.build())
            .map_err(|e| self.delta_error(e))
    }

    fn delta_error(&self, error: deltalake::DeltaTableError) -> DataFusionError {
        DataFusionError::Execution(format!("Delta table {}: {error}", self.name()))
    }

    async fn history(&self) -> Result<Vec<Commit>> {
        read_history(&self.unloaded()?)
            .await
            .map_err(|e| self.delta_error(e))
    }
}

impl StoredTables {
    /// The stored table a string argument names.
    fn target(&self, function: &str, name: &str) -> Result<Target> {
        let reference = TableReference::from(name);
        let (schema, table) = match &reference {
            TableReference::Bare { table } => (PUBLIC_SCHEMA, table.as_ref()),
            TableReference::Partial { schema, table } => (schema.as_ref(), table.as_ref()),
            TableReference::Full {
                catalog,
                schema,
                table,
            } if catalog.as_ref() == CATALOG_NAME => (schema.as_ref(), table.as_ref()),
            TableReference::Full { .. } => {
                return plan_err!(
                    "{function}: relation \"{name}\" doesn't exist: the database is {CATALOG_NAME}"
                )
            }
        };
        match self
            .tables
            .iter()
            .find(|(def, _)| def.schema == schema && def.name == table)
        {
            Some((def, table_schema)) => Ok(Target {
                def: def.clone(),
                schema: table_schema.clone(),
                data: self.data.clone(),
            }),
            None => plan_err!(
                "{function}: relation \"{name}\" doesn't exist among the stored tables \
                 (time travel reads the tables of sql/schema.sql, listed in meta.tables)"
            ),
        }
    }
}

/// `table_at(table, version | timestamp)`.
#[derive(Debug)]
struct TableAtFunction {
    stored: Arc<StoredTables>,
}

impl TableFunctionImpl for TableAtFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 2 {
            return plan_err!(
                "table_at(table, version | timestamp) takes 2 arguments, got {}",
                exprs.len()
            );
        }
        let name = table_name("table_at", &exprs[0])?;
        let target = self.stored.target("table_at", &name)?;
        let point = Point::from_argument(&exprs[1])?;
        // Registered through `DistinctScans`, which names each call's scan.
        Ok(Arc::new(TableAt { target, point }))
    }
}

/// `table_history(table)`.
#[derive(Debug)]
struct TableHistoryFunction {
    stored: Arc<StoredTables>,
}

impl TableFunctionImpl for TableHistoryFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 1 {
            return plan_err!("table_history(table) takes 1 argument, got {}", exprs.len());
        }
        let name = table_name("table_history", &exprs[0])?;
        let target = self.stored.target("table_history", &name)?;
        Ok(Arc::new(TableHistory { target }))
    }
}

/// The literal value of an argument (DataFusion has folded constant
/// expressions such as `now() - INTERVAL '1 day'` before the call).
fn literal(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(value, _) => value.cast_to(c.field.data_type()).ok(),
            _ => None,
        },
        _ => None,
    }
}

fn table_name(function: &str, expr: &Expr) -> Result<String> {
    match literal(expr).map(|v| v.cast_to(&DataType::Utf8)) {
        Some(Ok(ScalarValue::Utf8(Some(name)))) => Ok(name),
        Some(Ok(ScalarValue::Utf8(None))) => {
            plan_err!("{function}: the table name must not be NULL")
        }
        _ => plan_err!(
            "{function}: the table must be named by a string constant such as 'staff_assignment', got {expr}"
        ),
    }
}

/// Which state of a table `table_at` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    Version(u64),
    /// Microseconds since the epoch, UTC.
    Time(i64),
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Point::Version(version) => write!(f, "{version}"),
            Point::Time(micros) => {
                f.write_str(&show_time(DateTime::from_timestamp_micros(*micros)))
            }
        }
    }
}

impl Point {
    /// An integer is a version; a timestamp (a TIMESTAMP without zone is read
    /// as UTC), a date (its midnight, UTC) or a string that parses as a
    /// timestamp is a time.
    fn from_argument(expr: &Expr) -> Result<Point> {
        let Some(value) = literal(expr) else {
            return plan_err!("table_at: the version or timestamp must be a constant, got {expr}");
        };
        if value.is_null() {
            return plan_err!("table_at: the version or timestamp must not be NULL");
        }
        let data_type = value.data_type();
        if data_type.is_integer() {
            return match value.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(version)) if version >= 0 => {
                    Ok(Point::Version(version as u64))
                }
                _ => plan_err!("table_at: versions start at 0, got {value}"),
            };
        }
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let text = matches!(
            data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        if text
            || matches!(
                data_type,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            )
        {
            return match value.cast_to(&utc) {
                Ok(ScalarValue::TimestampMicrosecond(Some(micros), _)) => Ok(Point::Time(micros)),
                _ if text => plan_err!(
                    "table_at: '{value}' is neither a version number nor a timestamp \
                     (write e.g. '2025-05-01 12:00:00+08:00')"
                ),
                _ => plan_err!("table_at: {value} is out of the range of timestamps"),
            };
        }
        plan_err!(
            "table_at: the second argument must be a version (an integer) or a timestamp, got {data_type}"
        )
    }
}

/// A time in messages: `2025-05-01 04:00:00.000 UTC`.
fn show_time(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "an unrepresentable time".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
    )
}

/// "versions 0..7", or "version 0" when there is one.
fn version_range(first: u64, last: u64) -> String {
    if first == last {
        format!("version {first}")
    } else {
        format!("versions {first}..{last}")
    }
}

/// One call of `table_at`: the table as of a version or time.
#[derive(Debug)]
struct TableAt {
    target: Target,
    point: Point,
}

impl TableAt {
    /// The version `point` means; errors name the versions there are.
    async fn version(&self) -> Result<u64> {
        let name = self.target.name();
        match self.point {
            Point::Version(version) => {
                let table = self.target.unloaded()?;
                let commits = list_commits(&table)
                    .await
                    .map_err(|e| self.target.delta_error(e))?;
                let (Some((first, _)), Some((last, _))) = (commits.first(), commits.last()) else {
                    return plan_err!("table_at: table {name} has no commits");
                };
                if version > *last {
                    return plan_err!(
                        "table_at: table {name} has {}; there is no version {version}",
                        version_range(*first, *last)
                    );
                }
                if version < *first {
                    return plan_err!(
                        "table_at: table {name} has {}; version {version} is no longer in its log",
                        version_range(*first, *last)
                    );
                }
                Ok(version)
            }
            Point::Time(micros) => {
                let history = self.target.history().await?;
                let at = DateTime::from_timestamp_micros(micros);
                let at_ms = micros.div_euclid(1000);
                // A commit at 12:00:00.123 is "at or before" 12:00:00.123456.
                let found = history
                    .iter()
                    .filter(|commit| commit.committed_at_ms <= at_ms)
                    .map(|commit| commit.version)
                    .max();
                match (found, history.first()) {
                    (Some(version), _) => Ok(version),
                    (None, Some(first)) => plan_err!(
                        "table_at: table {name} has no version at or before {}; \
                         its first commit (version {}) was made at {}",
                        show_time(at),
                        first.version,
                        show_time(first.committed_at())
                    ),
                    (None, None) => plan_err!("table_at: table {name} has no commits"),
                }
            }
        }
    }

    /// A provider over the table as of the version `point` means.
    async fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        let version = self.version().await?;
        let mut table = self.target.unloaded()?;
        table
            .load_version(version)
            .await
            .map_err(|e| self.target.delta_error(e))?;
        self.check_files(&table, version).await?;
        let provider = table.table_provider().await?;
        if provider.schema().fields() != self.target.schema.fields() {
            return plan_err!(
                "table_at: table {} had other columns at version {version} than sql/schema.sql \
                 defines now; read that version with another Delta reader",
                self.target.name()
            );
        }
        Ok(provider)
    }

    /// Every data file of the version is still there: a vacuum deletes the
    /// files only old versions need, and reading one would otherwise fail
    /// half-way with a bare "not found".
    async fn check_files(&self, table: &DeltaTable, version: u64) -> Result<()> {
        let present: HashSet<deltalake::Path> = table
            .object_store()
            .list(None)
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| self.target.delta_error(e.into()))?;
        let snapshot = table.snapshot().map_err(|e| self.target.delta_error(e))?;
        let files = snapshot
            .snapshot()
            .try_log_data()
            .map_err(|e| self.target.delta_error(e))?;
        let missing: Vec<String> = files
            .into_iter()
            .map(|file| file.object_store_path())
            .filter(|path| !present.contains(path))
            .map(|path| path.to_string())
            .collect();
        match missing.first() {
            None => Ok(()),
            Some(first) => plan_err!(
                "table_at: version {version} of table {} can no longer be read: {} of its data \
                 files ({first}{}) are gone from the table's directory, as a vacuum removes \
                 the files only old versions need",
                self.target.name(),
                missing.len(),
                if missing.len() > 1 { ", …" } else { "" }
            ),
        }
    }
}

#[async_trait]
impl TableProvider for TableAt {
    fn schema(&self) -> SchemaRef {
        self.target.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.provider()
            .await?
            .scan(state, projection, filters, limit)
            .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // As for the live tables: the Delta scan prunes files, rows are re-filtered.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

/// The columns of `table_history`.
pub fn history_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new(
            "committed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("operation", DataType::Utf8, true),
        Field::new("parameters", DataType::Utf8, true),
        Field::new("metrics", DataType::Utf8, true),
        Field::new("files_added", DataType::Int64, false),
        Field::new("files_removed", DataType::Int64, false),
        Field::new("rows_added", DataType::Int64, true),
        Field::new("rows_removed", DataType::Int64, true),
        Field::new("row_count", DataType::Int64, true),
    ]))
}

/// One call of `table_history`.
#[derive(Debug)]
struct TableHistory {
    target: Target,
}

#[async_trait]
impl TableProvider for TableHistory {
    fn schema(&self) -> SchemaRef {
        history_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = history_batch(&self.target.history().await?)?;
        let plan: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            history_schema(),
            projection.cloned(),
        )?;
        Ok(plan)
    }
}

fn history_batch(history: &[Commit]) -> Result<RecordBatch> {
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|c| count(c.version)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                history
                    .iter()
                    .map(|c| c.committed_at_ms.saturating_mul(1000)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(
            history.iter().map(|c| c.operation.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            history.iter().map(|c| c.parameters.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            history.iter().map(|c| c.metrics.as_deref()),
        )),
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|c| count(c.files_added)),
        )),
        Arc::new(Int64Array::from_iter_values(
            history.iter().map(|c| count(c.files_removed)),
        )),
        Arc::new(Int64Array::from_iter(
            history.iter().map(|c| c.rows_added.map(count)),
        )),
        Arc::new(Int64Array::from_iter(
            history.iter().map(|c| c.rows_removed.map(count)),
        )),
        Arc::new(Int64Array::from_iter(
            history.iter().map(|c| c.row_count.map(count)),
        )),
    ];
    RecordBatch::try_new(history_schema(), columns).map_err(|e| plan_datafusion_err!("{e}"))
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::lit;

    use super::*;

    #[test]
    fn integers_are_versions_and_times_are_times() {
        assert_eq!(Point::from_argument(&lit(3i64)).unwrap(), Point::Version(3));
        assert_eq!(Point::from_argument(&lit(0i32)).unwrap(), Point::Version(0));
        let err = Point::from_argument(&lit(-1i64)).unwrap_err().to_string();
        assert!(err.contains("versions start at 0, got -1"), "{err}");
        let naive = ScalarValue::TimestampMicrosecond(Some(1_000_000), None);
        assert_eq!(
            Point::from_argument(&lit(naive)).unwrap(),
            Point::Time(1_000_000)
        );
        let zoned = ScalarValue::TimestampSecond(Some(60), Some("+08:00".into()));
        assert_eq!(
            Point::from_argument(&lit(zoned)).unwrap(),
            Point::Time(60_000_000)
        );
        // 12:00 in Shenzhen is 04:00 UTC.
        let text = Point::from_argument(&lit("2025-05-01 12:00:00+08:00")).unwrap();
        let expected = DateTime::parse_from_rfc3339("2025-05-01T04:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(text, Point::Time(expected));
        let date = ScalarValue::Date32(Some(1));
        assert_eq!(
            Point::from_argument(&lit(date)).unwrap(),
            Point::Time(86_400_000_000)
        );
        let err = Point::from_argument(&lit("yesterday-ish"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("neither a version number nor a timestamp"),
            "{err}"
        );
        let err = Point::from_argument(&lit(ScalarValue::Int64(None)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be NULL"), "{err}");
        let err = Point::from_argument(&lit(1.5f64)).unwrap_err().to_string();
        assert!(
            err.contains("must be a version (an integer) or a timestamp"),
            "{err}"
        );
    }

    #[test]
    fn ranges_read_naturally() {
        assert_eq!(version_range(0, 0), "version 0");
        assert_eq!(version_range(0, 4), "versions 0..4");
    }
}
