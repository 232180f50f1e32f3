//! A DataFusion table over a Delta table that always reads the latest committed
//! version: another process (`bianzhi generate`, `bianzhi monitor`, an import) may
//! commit while a server has the table registered.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Constraints, Statistics};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::DeltaTable;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::schema::TableDef;

/// The latest version of one Delta table, as a DataFusion [`TableProvider`].
#[derive(Debug)]
pub struct LiveDeltaTable {
    name: String,
    schema: SchemaRef,
    constraints: Option<Constraints>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    table: DeltaTable,
    version: Option<u64>,
    provider: Arc<dyn TableProvider>,
}

impl LiveDeltaTable {
    /// Wrap an opened Delta table; `def` supplies the primary key.
    pub async fn try_new(def: &TableDef, table: DeltaTable) -> Result<Self> {
        let name = def.qualified_name();
        let provider = table
            .table_provider()
            .await
            .map_err(|e| Error::datafusion(format!("reading {name}"), e))?;
        let schema = provider.schema();
        let key_indices: Vec<usize> = def
            .primary_key
            .iter()
            .filter_map(|key| schema.index_of(key).ok())
            .collect();
        let constraints = (!key_indices.is_empty()).then(|| {
            Constraints::new_unverified(vec![datafusion::common::Constraint::PrimaryKey(
                key_indices,
            )])
        });
        Ok(Self {
            name,
            schema,
            constraints,
            state: Mutex::new(Loaded {
                version: table.version(),
                table,
                provider,
            }),
        })
    }

    /// The newest committed version (`None` for a table without commits),
    /// reloading if it moved on: a cache over the table's rows can compare it.
    pub async fn version(&self) -> DfResult<Option<u64>> {
        self.current().await?;
        Ok(self.state.lock().await.version)
    }

    /// The newest committed version, pinned: its data files, and its rows
    /// however the table moves on meanwhile.
    pub async fn pinned(&self) -> DfResult<PinnedVersion> {
        // One lock: the version, the files and the rows are of one commit.
        let mut state = self.state.lock().await;
        self.reload(&mut state).await?;
        Ok(PinnedVersion {
            name: self.name.clone(),
            version: state.version,
            table: state.table.clone(),
            provider: state.provider.clone(),
        })
    }

    /// The provider for the newest committed version, reloading if it moved on.
    async fn current(&self) -> DfResult<Arc<dyn TableProvider>> {
        let mut state = self.state.lock().await;
        self.reload(&mut state).await?;
        Ok(state.provider.clone())
    }

    /// Brings `state` (this table's, locked) to the newest committed version.
    async fn reload(&self, state: &mut Loaded) -> DfResult<()> {
        state
            .table
            .update_incremental(None)
            .await
            .map_err(|e| DataFusionError::External(Box::new(Error::delta(&self.name, e))))?;
        if state.table.version() != state.version {
            let provider = state.table.table_provider().await?;
            if provider.schema().fields() != self.schema.fields() {
                return Err(DataFusionError::Execution(format!(
                    "table {} changed its schema on disk while open; restart to pick it up",
                    self.name
                )));
            }
            state.version = state.table.version();
            state.provider = provider;
            tracing::debug!(table = %self.name, version = ?state.version, "reloaded");
        }
        Ok(())
    }
}

#[async_trait]
impl TableProvider for LiveDeltaTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.constraints.as_ref()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.current()
            .await?
            .scan(state, projection, filters, limit)
            .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Only inexact pushdown: the inner provider prunes files, we re-filter rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        None
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.current()
            .await?
            .insert_into(state, input, insert_op)
            .await
    }

    /// `DELETE FROM table [WHERE …]`: one Delta commit rewriting the files
    /// that hold matching rows (none when nothing matches). deltalake plans
    /// the rewrite in its own session (its plans need its planner), so the
    /// predicate can use DataFusion's functions, not bianzhi's.
    async fn delete_from(
        &self,
        _state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = self.latest_table().await?;
        let before = row_total(&table);
        let mut builder = table.delete();
        if let Some(predicate) = predicate_of(filters)? {
            builder = builder.with_predicate(predicate);
        }
        let (after, metrics) = builder.await.map_err(|e| self.delta_error(e))?;
        // Whole-file deletes may not count their rows; the file statistics do.
        let deleted = match metrics.num_deleted_rows {
            Some(rows) => rows as u64,
            None => before.saturating_sub(row_total(&after)),
        };
        tracing::info!(table = %self.name, deleted, version = ?after.version(), "deleted");
        count_plan(deleted)
    }

    /// `UPDATE table SET … [WHERE …]`: one Delta commit rewriting the files
    /// that hold matching rows.
    async fn update(
        &self,
        _state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = self.latest_table().await?;
        let mut builder = table.update();
        if let Some(predicate) = predicate_of(filters)? {
            builder = builder.with_predicate(predicate);
        }
        for (column, value) in assignments {
            // The planner also lists unchanged columns as `column = column`.
            if matches!(&value, Expr::Column(c) if c.name == column) {
                continue;
            }
            builder = builder.with_update(column, unqualified(value)?);
        }
        let (after, metrics) = builder.await.map_err(|e| self.delta_error(e))?;
        tracing::info!(table = %self.name, updated = metrics.num_updated_rows, version = ?after.version(), "updated");
        count_plan(metrics.num_updated_rows as u64)
    }
}

impl LiveDeltaTable {
    /// The Delta table at its newest version, for a write.
    async fn latest_table(&self) -> DfResult<DeltaTable> {
        self.current().await?;
        Ok(self.state.lock().await.table.clone())
    }

    /// A write that lost a race to another commit says so plainly (the
    /// server sends SQLSTATE 40001: run it again); other errors name the
    /// table.
    fn delta_error(&self, error: deltalake::DeltaTableError) -> DataFusionError {
        let text = error.to_string();
        let conflict = [
            "Commit failed: a concurrent",
            "Concurrent transaction failed",
            "Metadata changed since last commit",
        ]
        .iter()
        .any(|marker| text.contains(marker));
        if conflict {
            let reason = text.lines().next().unwrap_or_default().to_string();
            return DataFusionError::Execution(format!(
                "could not serialize access to {} due to a concurrent write: another statement committed first and nothing of this one was written ({reason}); run it again",
                self.name
            ));
        }
        DataFusionError::External(Box::new(Error::delta(&self.name, error)))
    }
}

/// One committed version of a live table, as [`LiveDeltaTable::pinned`]
/// found it: what a cache over the table's rows was built from, and how to
/// bring it up to a later version that only added files.
#[derive(Debug, Clone)]
pub struct PinnedVersion {
    name: String,
    version: Option<u64>,
    table: DeltaTable,
    provider: Arc<dyn TableProvider>,
}

impl PinnedVersion {
    /// The Delta version (`None` for a table without commits).
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The rows of this version.
    pub fn provider(&self) -> Arc<dyn TableProvider> {
        Arc::clone(&self.provider)
    }

    /// Its data files: each file's path, and its deletion vector when it has
    /// one, so that a file some of whose rows were deleted since is a
    /// different file here.
    pub fn files(&self) -> HashSet<String> {
        self.data_files().into_iter().map(|file| file.key).collect()
    }

    /// How this version stands to an earlier one of the same table, whose
    /// version and [`Self::files`] were `earlier_version` and
    /// `earlier_files`: the same version with the same files; a later one
    /// that only added files (appends: `INSERT`, `COPY FROM`, an import),
    /// with the rows of those files; or anything else (an `UPDATE`, a
    /// `DELETE`, an overwrite, a compaction, a version that went back, or a
    /// table made anew up to the same version with other files).
    pub async fn since(
        &self,
        earlier_version: Option<u64>,
        earlier_files: &HashSet<String>,
    ) -> DfResult<Since> {
        let earlier = earlier_files;
        let files = self.data_files();
        if self.version == earlier_version {
            let same = files.len() == earlier.len()
                && files.iter().all(|file| earlier.contains(&file.key));
            return Ok(if same {
                Since::Unchanged
            } else {
                Since::Changed
            });
        }
        // Versions only grow; an older one is a log put back by hand.
        if self.version < earlier_version {
            return Ok(Since::Changed);
        }
        let still_there = files
            .iter()
            .filter(|file| earlier.contains(&file.key))
            .count();
        if still_there < earlier.len() {
            return Ok(Since::Changed);
        }
        let added: Vec<&DataFile> = files
            .iter()
            .filter(|file| !earlier.contains(&file.key))
            .collect();
        // bianzhi's writes add no deletion vectors; a file that came with
        // one is left to a reading of the whole version.
        if added.iter().any(|file| file.has_deletion_vector) {
            return Ok(Since::Changed);
        }
        let provider = self
            .table
            .table_provider()
            .with_file_paths(added.iter().map(|file| file.path.clone()))
            .await
            .map_err(|e| {
                DataFusionError::Context(
                    format!("reading the files added to {}", self.name),
                    Box::new(e),
                )
            })?;
        Ok(Since::Added(provider))
    }

    fn data_files(&self) -> Vec<DataFile> {
        let Ok(snapshot) = self.table.snapshot() else {
            // A table without commits has no files.
            return Vec::new();
        };
        snapshot
            .log_data()
            .into_iter()
            .map(|file| {
                let path = file.path().into_owned();
                match file.deletion_vector_descriptor() {
                    Some(deletion_vector) => DataFile {
                        key: format!("{path}#{deletion_vector:?}"),
                        path,
                        has_deletion_vector: true,
                    },
                    None => DataFile {
                        key: path.clone(),
                        path,
                        has_deletion_vector: false,
                    },
                }
            })
            .collect()
    }
}

/// What [`PinnedVersion::since`] found.
#[derive(Debug)]
pub enum Since {
    /// The same version.
    Unchanged,
    /// A later version that only added files: their rows.
    Added(Arc<dyn TableProvider>),
    /// Files gone or changed: only the whole version tells its rows.
    Changed,
}

/// One data file of a [`PinnedVersion`].
struct DataFile {
    /// What [`PinnedVersion::files`] gives for it.
    key: String,
    path: String,
    has_deletion_vector: bool,
}

/// Rows in the table's files, from the log's statistics.
fn row_total(table: &DeltaTable) -> u64 {
    table.snapshot().map_or(0, |snapshot| {
        snapshot
            .log_data()
            .into_iter()
            .map(|file| file.num_records().unwrap_or(0) as u64)
            .sum()
    })
}

/// The filters as one predicate over unqualified columns (deltalake
/// resolves names against the table alone); `None` for every row.
fn predicate_of(filters: Vec<Expr>) -> DfResult<Option<Expr>> {
    filters
        .into_iter()
        .map(unqualified)
        .collect::<DfResult<Vec<_>>>()
        .map(conjunction)
}

fn unqualified(expr: Expr) -> DfResult<Expr> {
    if expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
        ))
    })? {
        return Err(DataFusionError::NotImplemented(
            "subqueries in the WHERE or SET of DELETE and UPDATE on bianzhi's tables".to_string(),
        ));
    }
    expr.transform(|e| match e {
        Expr::Column(column) if column.relation.is_some() => Ok(Transformed::yes(Expr::Column(
            Column::new_unqualified(column.name),
        ))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// A plan producing one row: the `count` of rows written.
fn count_plan(count: u64) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(UInt64Array::from(vec![count]))],
    )?;
    let plan: Arc<dyn ExecutionPlan> =
        MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?;
    Ok(plan)
}
