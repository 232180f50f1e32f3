//! The table function `func_search(query [, top_k])`: BM25 search over the
//! duty clauses (`org_duty`) and power items (`power_item`) in force, with
//! the names of their organisations (`org`). See
//! `bianzhi_udfs::text::FuncSearchFunc` for what it returns.
//!
//! The index is built lazily, at the first search of a data directory, by a
//! query with the searching session's settings, and kept until one of the
//! three tables has a new Delta version: opening stays fast however many
//! items there are, and rows inserted after opening (as the SQL tests do)
//! are found. Rows appended since (new data files only) are added to the
//! index; other changes build it again.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bianzhi_catalog::live_table::{LiveDeltaTable, PinnedVersion, Since};
use bianzhi_udfs::text::{func_search_schema, SearchCorpus, DEFAULT_TOP_K};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, ScalarValue};
use datafusion::datasource::memory::{MemTable, MemorySourceConfig};
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

/// An index and what it was built from: the Delta versions of
/// [`SOURCE_TABLES`] and their data files.
#[derive(Debug)]
struct Built {
    versions: Vec<Option<u64>>,
    files: Vec<HashSet<String>>,
    corpus: Arc<SearchCorpus>,
    /// Documents tokenised to make it: all of them, or only those added.
    tokenised: usize,
}

/// The index, built at the first search.
#[derive(Debug)]
struct LazyIndex {
    tables: Vec<Arc<LiveDeltaTable>>,
    built: Mutex<Option<Built>>,
}

impl LazyIndex {
    /// The index of the tables' current versions, built or brought up to
    /// date if needed: when `org` is unchanged and `org_duty` and
    /// `power_item` only gained files since (appends), only the rows of the
    /// added files are tokenised and added; otherwise it is built again.
    /// Concurrent first searches wait for one build.
    async fn corpus(&self, state: &dyn Session) -> Result<Arc<SearchCorpus>> {
        let mut versions = Vec::with_capacity(self.tables.len());
        for table in &self.tables {
            versions.push(table.version().await?);
        }
        let mut built = self.built.lock().await;
        if let Some(built) = built.as_ref() {
            if built.versions == versions {
                return Ok(built.corpus.clone());
            }
        }
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("func_search needs a DataFusion SessionState");
        };
        // Each table's newest version, pinned: the index holds exactly the
        // rows of the versions it records.
        let mut pinned = Vec::with_capacity(self.tables.len());
        for table in &self.tables {
            pinned.push(table.pinned().await?);
        }
        let added = match built.as_ref() {
            Some(built) => rows_added(&pinned, built).await?,
            None => None,
        };
        let started = std::time::Instant::now();
        let (sources, earlier) = match (added, built.as_ref()) {
            (Some(added), Some(built)) => (added, Some(built.corpus.clone())),
            _ => (pinned.iter().map(PinnedVersion::provider).collect(), None),
        };
        // A context of the tables as pinned (or only their added rows), with
        // the searching session's settings and memory.
        let config = state
            .config()
            .clone()
            .with_create_default_catalog_and_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        let ctx = SessionContext::new_with_config_rt(config, state.runtime_env().clone());
        for (name, provider) in SOURCE_TABLES.iter().zip(sources) {
            ctx.register_table(*name, provider)?;
        }
        let batches = ctx.sql(SEARCH_DOCUMENTS_SQL).await?.collect().await?;
        let tokenised: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let corpus = tokio::task::spawn_blocking(move || match earlier {
            Some(earlier) => earlier.with_added(&batches),
            None => SearchCorpus::from_batches(&batches),
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
        let corpus = Arc::new(corpus);
        let made = built.insert(Built {
            versions: pinned.iter().map(PinnedVersion::version).collect(),
            files: pinned.iter().map(PinnedVersion::files).collect(),
            corpus: corpus.clone(),
            tokenised,
        });
        tracing::info!(
            documents = made.corpus.len(),
            tokenised = made.tokenised,
            terms = made.corpus.index().distinct_terms(),
            seconds = started.elapsed().as_secs_f64(),
            "built the func_search index"
        );
        Ok(corpus)
    }
}

/// Providers of the rows the pinned [`SOURCE_TABLES`] hold beyond what
/// `built` was built from (none for a table unchanged), when `org` is
/// unchanged (its names are joined to every document) and the others only
/// gained files; `None` otherwise.
async fn rows_added(
    pinned: &[PinnedVersion],
    built: &Built,
) -> Result<Option<Vec<Arc<dyn TableProvider>>>> {
    let mut added: Vec<Arc<dyn TableProvider>> = Vec::with_capacity(pinned.len());
    for (index, table) in pinned.iter().enumerate() {
        let (Some(version), Some(files)) = (built.versions.get(index), built.files.get(index))
        else {
            return Ok(None);
        };
        let is_org = SOURCE_TABLES.get(index) == Some(&"org");
        match table.since(*version, files).await? {
            Since::Unchanged if is_org => added.push(table.provider()),
            Since::Unchanged => added.push(Arc::new(MemTable::try_new(
                table.provider().schema(),
                vec![vec![]],
            )?)),
            Since::Added(rows) if !is_org => added.push(rows),
            _ => return Ok(None),
        }
    }
    Ok(Some(added))
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::RecordBatch;

    use super::{FuncSearchFunction, SOURCE_TABLES};
    use crate::engine::Engine;
    use crate::session::Session;
    use crate::{SessionIdentity, Settings};

    const ORG: &str = "INSERT INTO org VALUES \
        (1, '深圳市市场监督管理局', '市市场监管局', NULL, '政府组成部门', '政府', '国家机关', '正厅级', '市', '440300000000', '市场监管', '全额拨款', NULL, '40', NULL, false, DATE '2019-03-01', NULL), \
        (2, '深圳市生态环境局', '市生态环境局', NULL, '政府组成部门', '政府', '国家机关', '正厅级', '市', '440300000000', '生态环境', '全额拨款', NULL, '40', NULL, false, DATE '2019-03-01', NULL)";

    fn duties(rows: &[(i64, i64, &str)]) -> String {
        let values: Vec<String> = rows
            .iter()
            .map(|(id, org, text)| {
                format!("({id}, {org}, 2019, {id}, '{text}', NULL, DATE '2019-03-01', NULL)")
            })
            .collect();
        format!("INSERT INTO org_duty VALUES {}", values.join(", "))
    }

    /// The searches compared, each as its rows.
    async fn searches(index: &FuncSearchFunction, session: &Session) -> Vec<RecordBatch> {
        let corpus = index
            .index
            .corpus(&session.context().state())
            .await
            .unwrap();
        ["食品安全", "监督管理", "环境", "負責全市"]
            .iter()
            .flat_map(|query| [1, 3, 20].map(|top_k| corpus.search(query, top_k).unwrap()))
            .collect()
    }

    fn search_index(engine: &Engine) -> FuncSearchFunction {
        FuncSearchFunction::new(
            SOURCE_TABLES
                .iter()
                .filter_map(|name| engine.live_table(name).cloned())
                .collect(),
        )
    }

    #[tokio::test]
    async fn appended_rows_are_added_to_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let engine = Engine::open(location).await.unwrap();
        let session =
            Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        let index = search_index(&engine);
        session.run_one(ORG).await.unwrap();
        session
            .run_one(&duties(&[
                (10, 1, "负责全市食品安全监督管理综合协调。"),
                (30, 2, "负责全市生态环境监督管理工作。"),
                (20, 1, "负责全市食品安全监督管理工作。"),
            ]))
            .await
            .unwrap();
        searches(&index, &session).await;
        let tokenised = || async { index.index.built.lock().await.as_ref().map(|b| b.tokenised) };
        assert_eq!(tokenised().await, Some(3));

        // Appends, with ids before and between the earlier ones and texts
        // that tie with them: only the new rows are tokenised, and every
        // search equals one over an index built at once.
        session
            .run_one(&duties(&[
                (5, 2, "负责全市生态环境监督管理工作。"),
                (15, 1, "负责全市食品安全监督管理工作。"),
            ]))
            .await
            .unwrap();
        session
            .run_one(&duties(&[(25, 1, "負責全市食品安全監督管理工作。")]))
            .await
            .unwrap();
        let appended = searches(&index, &session).await;
        assert_eq!(tokenised().await, Some(3));
        let at_once = search_index(&engine);
        assert_eq!(searches(&at_once, &session).await, appended);
        assert_eq!(
            at_once
                .index
                .built
                .lock()
                .await
                .as_ref()
                .map(|b| b.tokenised),
            Some(6)
        );
        let rows: usize = appended.iter().map(RecordBatch::num_rows).sum();
        assert!(rows > 20, "{rows}");

        // A delete (a file rewritten) builds the index again.
        session
            .run_one("DELETE FROM org_duty WHERE duty_id = 15")
            .await
            .unwrap();
        let after_delete = searches(&index, &session).await;
        assert_eq!(tokenised().await, Some(5));
        assert_eq!(
            searches(&search_index(&engine), &session).await,
            after_delete
        );
        // And a change to org (whose names every document carries) too.
        session
            .run_one("UPDATE org SET org_name = '深圳市生态环境局（新）' WHERE org_id = 2")
            .await
            .unwrap();
        searches(&index, &session).await;
        assert_eq!(tokenised().await, Some(5));
        session
            .run_one(&duties(&[(40, 2, "负责全市噪声污染防治。")]))
            .await
            .unwrap();
        searches(&index, &session).await;
        assert_eq!(tokenised().await, Some(1));
    }
}
