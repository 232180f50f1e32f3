//! Tables made by SQL (`CREATE TABLE …`, `CREATE TABLE … AS SELECT …`) are
//! Delta tables in the data directory, like the tables of schema.sql: they
//! survive a restart, every later `INSERT`, `UPDATE` or `DELETE` on them is a
//! commit, and a crash never leaves half of one.
//!
//! They live under `<data dir>/_user/<schema>/<table>/`. Creating one is a
//! single Delta commit (version 0 holds the schema and every row), so a
//! process killed while creating leaves either the whole table or no table
//! (a directory without a commit is not a table and is skipped on open).
//! `DROP TABLE` first renames the directory into `_user/.dropped/` — one
//! atomic step — and then deletes it; leftovers there are deleted on open.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{CreateMemoryTable, DropTable};
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};
use tokio::sync::Mutex;
use url::Url;

use bianzhi_catalog::live_table::LiveDeltaTable;
use bianzhi_catalog::TableDef;

/// The directory, under the data directory, that holds the tables SQL made.
pub const USER_TABLES_DIR: &str = "_user";
const DROPPED_DIR: &str = ".dropped";

/// The tables SQL made in one data directory; shared by every session.
#[derive(Debug)]
pub struct UserTables {
    /// `<data dir>/_user/` on the local file system; `None` for a data
    /// directory that is not local, where SQL-made tables stay in memory.
    root: Option<PathBuf>,
    /// (schema, table) of every SQL-made Delta table; the lock also makes
    /// creating and dropping one at a time.
    known: Mutex<BTreeSet<(String, String)>>,
}

/// One SQL-made table found on open.
pub struct FoundTable {
    pub schema: String,
    pub name: String,
    pub table: Arc<LiveDeltaTable>,
}

impl UserTables {
    /// The SQL-made tables of the data directory at `root` (its URL); tables
    /// that cannot be opened are skipped with a warning, never a failure.
    pub async fn open(root: &Url) -> (UserTables, Vec<FoundTable>) {
        let Ok(data_root) = root.to_file_path() else {
            return (
                UserTables {
                    root: None,
                    known: Mutex::new(BTreeSet::new()),
                },
                Vec::new(),
            );
        };
        let dir = data_root.join(USER_TABLES_DIR);
        let _ = std::fs::remove_dir_all(dir.join(DROPPED_DIR));
        let mut found = Vec::new();
        for (schema, name, path) in table_directories(&dir) {
            if !path.join("_delta_log").is_dir() {
                continue;
            }
            match open_table(&schema, &name, &path).await {
                Ok(table) => found.push(FoundTable {
                    schema,
                    name,
                    table,
                }),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping a table made by SQL that cannot be opened")
                }
            }
        }
        let known = found
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        (
            UserTables {
                root: Some(dir),
                known: Mutex::new(known),
            },
            found,
        )
    }

    /// Run `CREATE TABLE [IF NOT EXISTS | OR REPLACE] name … [AS query]` as
    /// one Delta commit and register the table. `Ok(false)` means this is not
    /// for a Delta table (a temporary table, or a data directory that is not
    /// local) and DataFusion should create it in memory.
    pub async fn create(
        self: &Arc<Self>,
        ctx: &SessionContext,
        command: &CreateMemoryTable,
    ) -> DfResult<bool> {
        if self.root.is_none() || command.temporary {
            return Ok(false);
        }
        let (schema_name, table_name, schema) = resolve(ctx, &command.name)?;
        check_name("schema", &schema_name)?;
        check_name("table", &table_name)?;
        let key = (schema_name.clone(), table_name.clone());
        let decision = {
            let known = self.known.lock().await;
            decide(
                schema.table_exist(&table_name),
                known.contains(&key),
                command,
                &key,
            )?
        };
        if decision == Decision::Keep {
            return Ok(true);
        }
        let plan = ctx.state().optimize(command.input.as_ref())?;
        let frame = DataFrame::new(ctx.state(), plan);
        let (storage_schema, batches) = storable(frame.collect().await?, command)?;
        // From here on the statement runs to its end even when cancelled:
        // a commit is never left unregistered.
        let this = Arc::clone(self);
        let command = command.clone();
        tokio::spawn(async move {
            this.commit(schema, key, &command, storage_schema, batches)
                .await
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("CREATE TABLE was interrupted: {e}")))??;
        Ok(true)
    }

    /// Writes the rows as the table's one commit (a new table, or an
    /// overwrite of one SQL made) and registers it.
    async fn commit(
        &self,
        schema: Arc<dyn SchemaProvider>,
        key: (String, String),
        command: &CreateMemoryTable,
        storage_schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> DfResult<()> {
        let Some(root) = &self.root else {
            return Err(DataFusionError::Execution(
                "the data directory is not local".into(),
            ));
        };
        let mut known = self.known.lock().await;
        let (schema_name, table_name) = (&key.0, &key.1);
        // Checked again: another session may have created it meanwhile.
        let made_by_sql = known.contains(&key);
        let decision = decide(schema.table_exist(table_name), made_by_sql, command, &key)?;
        if decision == Decision::Keep {
            return Ok(());
        }
        let path = root.join(schema_name).join(table_name);
        std::fs::create_dir_all(&path).map_err(|e| io_error(&path, e))?;
        let url = Url::from_directory_path(&path).map_err(|()| {
            DataFusionError::Execution(format!("{} is not an absolute path", path.display()))
        })?;
        let batches = if batches.is_empty() {
            vec![RecordBatch::new_empty(storage_schema)]
        } else {
            batches
        };
        // An existing table is loaded to be overwritten; a new one is built
        // unloaded (a directory left by a killed CREATE has no log).
        let delta = if made_by_sql {
            DeltaTable::try_from_url(url).await
        } else {
            DeltaTableBuilder::from_url(url).and_then(|builder| builder.build())
        }
        .map_err(delta_error(table_name))?;
        let mut write = delta.write(batches).with_save_mode(if made_by_sql {
            SaveMode::Overwrite
        } else {
            SaveMode::ErrorIfExists
        });
        if made_by_sql {
            write = write.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
        }
        write.await.map_err(delta_error(table_name))?;
        let table = open_table(schema_name, table_name, &path).await?;
        if made_by_sql {
            schema.deregister_table(table_name)?;
        }
        schema.register_table(table_name.clone(), table as Arc<dyn TableProvider>)?;
        known.insert(key.clone());
        tracing::info!(table = %format!("{schema_name}.{table_name}"), "created a Delta table");
        Ok(())
    }

    /// Run `DROP TABLE` on a table SQL made: unregister it and delete its
    /// directory. `Ok(false)` means it is not such a table.
    pub async fn drop_table(&self, ctx: &SessionContext, command: &DropTable) -> DfResult<bool> {
        let Some(root) = &self.root else {
            return Ok(false);
        };
        let mut known = self.known.lock().await;
        let Ok((schema_name, table_name, schema)) = resolve(ctx, &command.name) else {
            return Ok(false);
        };
        if check_name("schema", &schema_name).is_err() || check_name("table", &table_name).is_err()
        {
            return Ok(false);
        }
        let key = (schema_name.clone(), table_name.clone());
        if !known.contains(&key) {
            return Ok(false);
        }
        let path = root.join(&schema_name).join(&table_name);
        let dropped = root.join(DROPPED_DIR);
        std::fs::create_dir_all(&dropped).map_err(|e| io_error(&dropped, e))?;
        let grave = dropped.join(format!("{schema_name}.{table_name}.{}", std::process::id()));
        std::fs::rename(&path, &grave).map_err(|e| io_error(&path, e))?;
        schema.deregister_table(&table_name)?;
        known.remove(&key);
        if let Err(e) = std::fs::remove_dir_all(&grave) {
            tracing::warn!(path = %grave.display(), error = %e, "a dropped table's files remain; they are deleted on the next open");
        }
        tracing::info!(table = %format!("{schema_name}.{table_name}"), "dropped a Delta table");
        Ok(true)
    }
}

/// What a `CREATE TABLE` does with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// `IF NOT EXISTS` of an existing table: nothing.
    Keep,
    /// Create it, or overwrite the SQL-made table of that name.
    Write,
}

fn decide(
    exists: bool,
    made_by_sql: bool,
    command: &CreateMemoryTable,
    (schema_name, table_name): &(String, String),
) -> DfResult<Decision> {
    match (exists, command.if_not_exists, command.or_replace) {
        (false, _, _) => Ok(Decision::Write),
        (true, true, true) => Err(DataFusionError::Plan(
            "IF NOT EXISTS and OR REPLACE cannot be used together".into(),
        )),
        (true, true, false) => Ok(Decision::Keep),
        (true, false, false) => Err(DataFusionError::Plan(format!(
            "relation \"{table_name}\" already exists"
        ))),
        (true, false, true) if made_by_sql => Ok(Decision::Write),
        (true, false, true) => {
            let domain = bianzhi_catalog::Catalog::builtin()
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .tables()
                .iter()
                .any(|t| &t.schema == schema_name && &t.name == table_name);
            Err(DataFusionError::Plan(if domain {
                format!("{schema_name}.{table_name} is a table of sql/schema.sql stored in the data directory; it cannot be dropped or replaced")
            } else {
                format!("{schema_name}.{table_name} is not a table made by CREATE TABLE (a view?); it cannot be replaced")
            }))
        }
    }
}

/// A schema or table name SQL may store: it names a directory under
/// `_user/`, so it cannot hold a path separator or start with a dot.
fn check_name(kind: &str, name: &str) -> DfResult<()> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        return Err(DataFusionError::Plan(format!(
            "invalid {kind} name \"{name}\": a table made by CREATE TABLE is stored as a directory, so the name cannot be empty, start with '.' or hold '/', '\\' or NUL"
        )));
    }
    Ok(())
}

/// Every `<schema>/<table>` directory under `dir`.
fn table_directories(dir: &std::path::Path) -> Vec<(String, String, PathBuf)> {
    let names = |path: &std::path::Path| -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(path) else {
            return Vec::new();
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().is_dir())
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_string();
                (!name.starts_with('.')).then(|| (name, entry.path()))
            })
            .collect();
        names.sort();
        names
    };
    names(dir)
        .into_iter()
        .flat_map(|(schema, path)| {
            names(&path)
                .into_iter()
                .map(move |(table, path)| (schema.clone(), table, path))
        })
        .collect()
}

async fn open_table(
    schema: &str,
    name: &str,
    path: &std::path::Path,
) -> DfResult<Arc<LiveDeltaTable>> {
    let url = Url::from_directory_path(path).map_err(|()| {
        DataFusionError::Execution(format!("{} is not an absolute path", path.display()))
    })?;
    let delta = deltalake::open_table(url)
        .await
        .map_err(delta_error(name))?;
    let def = TableDef {
        schema: schema.to_string(),
        name: name.to_string(),
        comment: None,
        columns: Vec::new(),
        primary_key: Vec::new(),
    };
    let table = LiveDeltaTable::try_new(&def, delta)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Arc::new(table))
}

/// The schema and table a name means, and the schema's provider.
fn resolve(
    ctx: &SessionContext,
    name: &TableReference,
) -> DfResult<(String, String, Arc<dyn SchemaProvider>)> {
    let state = ctx.state();
    let defaults = &state.config().options().catalog;
    let resolved = name
        .clone()
        .resolve(&defaults.default_catalog, &defaults.default_schema);
    let schema = state
        .catalog_list()
        .catalog(&resolved.catalog)
        .and_then(|catalog| catalog.schema(&resolved.schema))
        .ok_or_else(|| {
            DataFusionError::Plan(format!("schema \"{}\" does not exist", resolved.schema))
        })?;
    Ok((
        resolved.schema.to_string(),
        resolved.table.to_string(),
        schema,
    ))
}

/// The rows in types a Delta table stores: strings as `Utf8`, unsigned
/// integers as the next wider signed type, timestamps in microseconds
/// (with a zone, in UTC), untyped NULL columns as text. Columns of a type
/// Delta cannot store are named in the error.
fn storable(
    batches: Vec<RecordBatch>,
    command: &CreateMemoryTable,
) -> DfResult<(SchemaRef, Vec<RecordBatch>)> {
    let input_schema = command.input.schema().inner().clone();
    let mut names = BTreeSet::new();
    let mut fields = Vec::new();
    for field in input_schema.fields() {
        if !names.insert(field.name().to_lowercase()) {
            return Err(DataFusionError::Plan(format!(
                "column \"{}\" specified more than once",
                field.name()
            )));
        }
        let data_type = storage_type(field.data_type()).ok_or_else(|| {
            DataFusionError::NotImplemented(format!(
                "column \"{}\" is of type {}, which a table cannot store; cast it (to text, bigint, double, numeric, date or timestamp)",
                field.name(),
                field.data_type()
            ))
        })?;
        fields.push(Field::new(field.name(), data_type, field.is_nullable()));
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let batches = batches
        .into_iter()
        .filter(|batch| batch.num_rows() > 0)
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(column, field)| {
                    // An unsigned value too large for bigint is an error, not NULL.
                    cast_with_options(
                        column,
                        field.data_type(),
                        &CastOptions {
                            safe: false,
                            ..Default::default()
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(schema.clone(), columns)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

fn storage_type(data_type: &DataType) -> Option<DataType> {
    Some(match data_type {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
            DataType::Utf8
        }
        DataType::Binary | DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32
        | DataType::Decimal128(_, _) => data_type.clone(),
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        DataType::Dictionary(_, value) => storage_type(value)?,
        _ => return None,
    })
}

fn io_error(path: &std::path::Path, error: std::io::Error) -> DataFusionError {
    DataFusionError::Execution(format!("{}: {error}", path.display()))
}

fn delta_error(table: &str) -> impl Fn(deltalake::DeltaTableError) -> DataFusionError + '_ {
    move |error| DataFusionError::Execution(format!("writing table {table}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_widened_to_what_delta_stores() {
        assert_eq!(storage_type(&DataType::Utf8View), Some(DataType::Utf8));
        assert_eq!(storage_type(&DataType::UInt32), Some(DataType::Int64));
        assert_eq!(
            storage_type(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("+08:00".into())
            )),
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
        assert_eq!(
            storage_type(&DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8)
            )),
            Some(DataType::Utf8)
        );
        assert_eq!(
            storage_type(&DataType::Interval(
                datafusion::arrow::datatypes::IntervalUnit::MonthDayNano
            )),
            None
        );
    }
}
