//! The table function `func_search(query [, top_k])`: BM25 search over the
//! duty clauses (`org_duty`) and power items (`power_item`) in force, with
//! the names of their organisations (`org`). See
//! `bianzhi_udfs::text::FuncSearchFunc` for what it returns.
//!
//! The index is built lazily, at the first search of a data directory, by a
//! query through the searching session, and kept until one of the three
//! tables has a new Delta version: opening stays fast however many items
//! there are, and rows inserted after opening (as the SQL tests do) are
//! found.

use std::sync::Arc;

use async_trait::async_trait;
use bianzhi_catalog::live_table::LiveDeltaTable;
use bianzhi_udfs::text::{func_search_schema, SearchCorpus, DEFAULT_TOP_K};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use tokio::sync::Mutex;

/// The tables the documents come from; a new version of any rebuilds the index.
pub const SOURCE_TABLES: [&str; 3] = ["org_duty", "power_item", "org"];

/// The documents, in the column order of `search_document_schema`, ordered so
/// that equal scores rank in (source, item_id) order.
pub const SEARCH_DOCUMENTS_SQL: &str = "\
SELECT 'duty' AS source, d.org_id, o.org_name, d.duty_id AS item_id, d.duty_text AS text \
FROM org_duty d LEFT JOIN org o ON o.org_id = d.org_id WHERE d.valid_to IS NULL \
UNION ALL \
SELECT 'power_item' AS source, p.org_id, o.org_name, p.item_id, p.item_name AS text \
FROM power_item p LEFT JOIN org o ON o.org_id = p.org_id WHERE p.valid_to IS NULL \
ORDER BY source, item_id";

/// `func_search`, registered in every session of an engine; all share one index.
#[derive(Debug, Clone)]
pub struct FuncSearchFunction {
    index: Arc<LazyIndex>,
}

impl FuncSearchFunction {
    /// Over the live tables of [`SOURCE_TABLES`], in that order.
    pub fn new(tables: Vec<Arc<LiveDeltaTable>>) -> Self {
        Self {
            index: Arc::new(LazyIndex {
                tables,
                built: Mutex::new(None),
            }),
        }
    }
}

impl TableFunctionImpl for FuncSearchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 2 {
            return plan_err!(
                "func_search(query [, top_k]) takes 1 or 2 arguments, got {}",
                exprs.len()
            );
        }
        let query = match constant(&exprs[0], &DataType::Utf8, "query")? {
            Some(ScalarValue::Utf8(query)) => query,
            _ => None,
        };
        let top_k = match exprs.get(1) {
            None => DEFAULT_TOP_K,
            Some(expr) => match constant(expr, &DataType::Int64, "top_k")? {
                Some(ScalarValue::Int64(Some(top_k))) if top_k >= 0 => {
                    usize::try_from(top_k).unwrap_or(usize::MAX)
                }
                Some(ScalarValue::Int64(Some(top_k))) => {
                    return plan_err!("func_search: top_k must not be negative, got {top_k}")
                }
                _ => return plan_err!("func_search: top_k must not be NULL"),
            },
        };
        Ok(Arc::new(FuncSearchTable {
            query,
            top_k,
            index: self.index.clone(),
        }))
    }
}

/// One call's result, computed when scanned.
#[derive(Debug)]
struct FuncSearchTable {
    query: Option<String>,
    top_k: usize,
    index: Arc<LazyIndex>,
}

#[async_trait]
impl TableProvider for FuncSearchTable {
    fn schema(&self) -> SchemaRef {
        func_search_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = match &self.query {
            Some(query) if self.top_k > 0 => {
                self.index.corpus(state).await?.search(query, self.top_k)?
            }
            _ => RecordBatch::new_empty(func_search_schema()),
        };
        let plan: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            func_search_schema(),
            projection.cloned(),
        )?;
        Ok(plan)
    }
}

/// The Delta versions of [`SOURCE_TABLES`] an index was built from.
type TableVersions = Vec<Option<u64>>;

/// The index and the table versions it was built from.
#[derive(Debug)]
struct LazyIndex {
    tables: Vec<Arc<LiveDeltaTable>>,
    built: Mutex<Option<(TableVersions, Arc<SearchCorpus>)>>,
}

impl LazyIndex {
    /// The index of the tables' current versions, built or rebuilt if needed.
    /// Concurrent first searches wait for one build.
    async fn corpus(&self, state: &dyn Session) -> Result<Arc<SearchCorpus>> {
        let mut versions = Vec::with_capacity(self.tables.len());
        for table in &self.tables {
            versions.push(table.version().await?);
        }
        let mut built = self.built.lock().await;
        if let Some((built_versions, corpus)) = built.as_ref() {
            if *built_versions == versions {
                return Ok(corpus.clone());
            }
        }
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("func_search needs a DataFusion SessionState");
        };
        let ctx = SessionContext::new_with_state(state.clone());
        let batches = ctx.sql(SEARCH_DOCUMENTS_SQL).await?.collect().await?;
        let started = std::time::Instant::now();
        let corpus = tokio::task::spawn_blocking(move || SearchCorpus::from_batches(&batches))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        tracing::info!(
            documents = corpus.len(),
            terms = corpus.index().distinct_terms(),
            seconds = started.elapsed().as_secs_f64(),
            "built the func_search index"
        );
        let corpus = Arc::new(corpus);
        *built = Some((versions, corpus.clone()));
        Ok(corpus)
    }
}

/// A literal argument (possibly cast, as `'交通'::text`) as `target`.
fn constant(expr: &Expr, target: &DataType, name: &str) -> Result<Option<ScalarValue>> {
    let value = match expr {
        Expr::Literal(value, _) => value.clone(),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(value, _) => value.clone(),
            _ => return plan_err!("func_search: {name} must be a constant, got {expr}"),
        },
        _ => return plan_err!("func_search: {name} must be a constant, got {expr}"),
    };
    if value.is_null() {
        return Ok(None);
    }
    match value.cast_to(target) {
        Ok(value) => Ok(Some(value)),
        Err(_) => plan_err!("func_search: {name} must be {target}, got {value}"),
    }
}
