//! A DataFusion table over a Delta table that always reads the latest committed
//! version: another process (`bianzhi generate`, `bianzhi monitor`, an import) may
//! commit while a server has the table registered.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::dml::InsertOp;
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

    /// The provider for the newest committed version, reloading if it moved on.
    async fn current(&self) -> DfResult<Arc<dyn TableProvider>> {
        let mut state = self.state.lock().await;
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
        Ok(state.provider.clone())
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
}
