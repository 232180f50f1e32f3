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
//! index; other changes build it again. The index is saved beside the
//! tables (`SAVED_INDEX_FILE`) and read by the next engine's first search
//! (a server reads it ahead as it starts), which brings it up to date the
//! same way.

use std::path::{Path, PathBuf};
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

use crate::checked_file::{checked_contents, save_checked};
use crate::saved_versions::TableVersions;

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

/// The file the index is saved in, in a local data directory's root.
pub const SAVED_INDEX_FILE: &str = ".bianzhi_search_index";

/// The first line of [`SAVED_INDEX_FILE`]; the saved tables' versions and
/// files follow, then the documents and the index.
const SAVED_INDEX_MAGIC: &str = "bianzhi func_search index 1\n";

/// Appends since the index was last saved are saved with it once they are
/// this fraction (1/n) of its documents.
const SAVE_AFTER_APPENDED: usize = 10;

/// `func_search`, registered in every session of an engine; all share one index.
#[derive(Debug, Clone)]
pub struct FuncSearchFunction {
    index: Arc<LazyIndex>,
}

impl FuncSearchFunction {
    /// Over the live tables of [`SOURCE_TABLES`], in that order, with the
    /// index saved in the directory `saved_in` (the data directory's root,
    /// when local) as [`SAVED_INDEX_FILE`].
    pub fn new(tables: Vec<Arc<LiveDeltaTable>>, saved_in: Option<&Path>) -> Self {
        Self {
            index: Arc::new(LazyIndex {
                tables,
                saved: saved_in.map(|dir| dir.join(SAVED_INDEX_FILE)),
                built: Mutex::new(None),
                read_ahead: Mutex::new(None),
            }),
        }
    }

    /// Reads the saved index now, if no search has made one yet, for the
    /// first search to take in place of reading the file (and to check
    /// against the tables then, as it checks a file it reads). A server
    /// does this as it starts, so that its first search answers as fast
    /// as later ones, at the price of holding the index from the start.
    pub async fn read_saved_ahead(&self) {
        let built = self.index.built.lock().await;
        if built.is_some() {
            return;
        }
        if let Some(path) = &self.index.saved {
            *self.index.read_ahead.lock().await = read_saved_index(path).await;
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
    from: TableVersions,
    corpus: Arc<SearchCorpus>,
    /// Documents tokenised to make it: all of them, only those added, or
    /// none (read from the saved index, or kept).
    tokenised: usize,
    /// Documents tokenised since the index was last saved (or read).
    unsaved: usize,
}

/// The index, built at the first search (or read from where it was saved).
#[derive(Debug)]
struct LazyIndex {
    tables: Vec<Arc<LiveDeltaTable>>,
    /// Where the index is saved beside the tables (a local data directory).
    saved: Option<PathBuf>,
    built: Mutex<Option<Built>>,
    /// The saved index as [`FuncSearchFunction::read_saved_ahead`] read it.
    read_ahead: Mutex<Option<Built>>,
}

impl LazyIndex {
    /// Each table's newest version, pinned (the index holds exactly the
    /// rows of the versions it records), and what the index records of
    /// them.
    async fn pinned(&self) -> Result<(Vec<PinnedVersion>, TableVersions)> {
        let mut pinned = Vec::with_capacity(self.tables.len());
        for table in &self.tables {
            pinned.push(table.pinned().await?);
        }
        let versions = TableVersions {
            versions: pinned.iter().map(PinnedVersion::version).collect(),
            files: Some(pinned.iter().map(PinnedVersion::files).collect()),
        };
        Ok((pinned, versions))
    }

    /// The index of the tables' current versions, built or brought up to
    /// date if needed: when `org` is unchanged and `org_duty` and
    /// `power_item` only gained files since (appends), only the rows of the
    /// added files are tokenised and added; otherwise it is built again.
    /// Before an engine's first build, the index saved beside the tables is
    /// read and taken as the one built. Concurrent first searches wait for
    /// one build.
    async fn corpus(&self, state: &dyn Session) -> Result<Arc<SearchCorpus>> {
        let mut versions = Vec::with_capacity(self.tables.len());
        for table in &self.tables {
            versions.push(table.version().await?);
        }
        let mut built = self.built.lock().await;
        if let Some(built) = built.as_ref() {
            if built.from.versions == versions {
                return Ok(built.corpus.clone());
            }
        }
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("func_search needs a DataFusion SessionState");
        };
        let (pinned, now) = self.pinned().await?;
        if built.is_none() {
            *built = self.read_ahead.lock().await.take();
            if let (None, Some(path)) = (built.as_ref(), &self.saved) {
                *built = read_saved_index(path).await;
            }
            if let Some(saved) = built.as_ref() {
                if saved.from.same_rows(&now) {
                    return Ok(saved.corpus.clone());
                }
            }
        }
        let added = match built.as_ref() {
            Some(built) => rows_added(&pinned, built).await?,
            None => None,
        };
        let started = std::time::Instant::now();
        let (sources, earlier) = match (added, built.as_ref()) {
            (Some(added), Some(built)) => (added, Some(built)),
            _ => (pinned.iter().map(PinnedVersion::provider).collect(), None),
        };
        let batches = search_documents(state, sources).await?;
        let tokenised: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let unsaved = tokenised + earlier.map_or(0, |earlier| earlier.unsaved);
        let whole = earlier.is_none();
        // The index brought up to date is taken out: if no search holds it
        // any more, it is added to in place rather than copied. (Should
        // adding fail, the next search builds it whole.)
        let earlier = if whole {
            None
        } else {
            built.take().map(|built| built.corpus)
        };
        let corpus = Arc::new(index_documents(earlier, batches).await?);
        let built_in = started.elapsed().as_secs_f64();
        // Saved after a whole build, and after appends once they are a
        // tenth of the index: a new engine reads it and adds what was
        // appended since, so saving after every append would only rewrite
        // the whole file for a few rows.
        let due = whole || unsaved.saturating_mul(SAVE_AFTER_APPENDED) >= corpus.len();
        let saved = match &self.saved {
            Some(path) if due => {
                let (path, header, corpus) = (path.clone(), now.header(), corpus.clone());
                tokio::task::spawn_blocking(move || save_index(&path, &header, &corpus))
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?
            }
            _ => false,
        };
        let made = built.insert(Built {
            from: now,
            corpus: corpus.clone(),
            tokenised,
            unsaved: if saved { 0 } else { unsaved },
        });
        tracing::info!(
            documents = made.corpus.len(),
            tokenised = made.tokenised,
            terms = made.corpus.index().distinct_terms(),
            seconds = built_in,
            saved,
            saving_seconds = started.elapsed().as_secs_f64() - built_in,
            "built the func_search index"
        );
        Ok(corpus)
    }
}

/// The documents of `sources` (the tables as pinned, or only their added
/// rows), read in a context with the searching session's settings and
/// memory.
async fn search_documents(
    state: &SessionState,
    sources: Vec<Arc<dyn TableProvider>>,
) -> Result<Vec<RecordBatch>> {
    let config = state
        .config()
        .clone()
        .with_create_default_catalog_and_schema(true)
        .with_default_catalog_and_schema("datafusion", "public");
    let ctx = SessionContext::new_with_config_rt(config, state.runtime_env().clone());
    for (name, provider) in SOURCE_TABLES.iter().zip(sources) {
        ctx.register_table(*name, provider)?;
    }
    ctx.sql(SEARCH_DOCUMENTS_SQL).await?.collect().await
}

/// `batches` indexed on a blocking thread: added to `earlier` (in place
/// when no search holds it any more), or a whole index.
async fn index_documents(
    earlier: Option<Arc<SearchCorpus>>,
    batches: Vec<RecordBatch>,
) -> Result<SearchCorpus> {
    tokio::task::spawn_blocking(move || match earlier {
        Some(earlier) => match Arc::try_unwrap(earlier) {
            Ok(earlier) => earlier.into_added(&batches),
            Err(shared) => shared.with_added(&batches),
        },
        None => SearchCorpus::from_batches(&batches),
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?
}

/// The index saved at `path`, as built, if it is there, readable, of this
/// tokenizer and names the files it was made from (it is then brought up to
/// date like any index built before, or built again).
async fn read_saved_index(path: &Path) -> Option<Built> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let started = std::time::Instant::now();
    let (from, corpus) = tokio::task::spawn_blocking(move || -> std::result::Result<_, String> {
        let bytes = checked_contents(bytes).map_err(|error| error.to_string())?;
        let Some(rest) = bytes.strip_prefix(SAVED_INDEX_MAGIC.as_bytes()) else {
            return Err("not a saved func_search index".to_string());
        };
        let Some((from, rest)) = TableVersions::parse(rest, SOURCE_TABLES.len())? else {
            return Ok(None);
        };
        let corpus = SearchCorpus::read_saved(rest).map_err(|error| error.to_string())?;
        Ok(Some((from, corpus)))
    })
    .await
    .map_err(|error| error.to_string())
    .and_then(|read| read)
    .unwrap_or_else(|error| {
        tracing::warn!(path = %path.display(), %error, "saved func_search index unreadable; building it again");
        None
    })?;
    from.files.as_ref()?;
    tracing::debug!(
        documents = corpus.len(),
        seconds = started.elapsed().as_secs_f64(),
        "read the saved func_search index"
    );
    Some(Built {
        from,
        corpus: Arc::new(corpus),
        tokenised: 0,
        unsaved: 0,
    })
}

/// Saves `corpus` under `header` at `path`, whole or not at all (an
/// `AtomicFile`) and with a checksum (`checked_file`); whether it was saved. Best effort: a directory that
/// cannot be written to only costs the next engine a build.
fn save_index(path: &Path, header: &str, corpus: &SearchCorpus) -> bool {
    let saved = save_checked(path, |file| {
        file.write_all(SAVED_INDEX_MAGIC.as_bytes())?;
        file.write_all(header.as_bytes())?;
        file.write_all(b"\n")?;
        corpus
            .write_saved(&mut &mut *file)
            .map_err(std::io::Error::other)
    });
    match saved {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "could not save the func_search index");
            false
        }
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
    let tables: Vec<Option<&PinnedVersion>> = pinned.iter().map(Some).collect();
    let Some(since) = built.from.since(&tables).await? else {
        return Ok(None);
    };
    let mut added: Vec<Arc<dyn TableProvider>> = Vec::with_capacity(pinned.len());
    for ((name, table), since) in SOURCE_TABLES.iter().zip(pinned).zip(since) {
        let is_org = *name == "org";
        match since {
            Some(Since::Unchanged) if is_org => added.push(table.provider()),
            Some(Since::Unchanged) => added.push(Arc::new(MemTable::try_new(
                table.provider().schema(),
                vec![vec![]],
            )?)),
            Some(Since::Added(rows)) if !is_org => added.push(rows),
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
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use super::{FuncSearchFunction, SAVED_INDEX_FILE, SOURCE_TABLES};
    use crate::engine::Engine;
    use crate::session::{Output, Session};
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

    /// The organisations and three duty clauses, two of which tie.
    async fn insert_first_rows(session: &Session) {
        session.run_one(ORG).await.unwrap();
        session
            .run_one(&duties(&[
                (10, 1, "负责全市食品安全监督管理综合协调。"),
                (30, 2, "负责全市生态环境监督管理工作。"),
                (20, 1, "负责全市食品安全监督管理工作。"),
            ]))
            .await
            .unwrap();
    }

    /// What `sql` returns, as a table.
    async fn search_rows(session: &Session, sql: &str) -> String {
        let Output::Rows { batches, .. } = session.run_one(sql).await.unwrap() else {
            panic!("{sql}: rows expected");
        };
        pretty_format_batches(&batches).unwrap().to_string()
    }

    async fn tokenised(index: &FuncSearchFunction) -> Option<usize> {
        index.index.built.lock().await.as_ref().map(|b| b.tokenised)
    }

    /// A `func_search` index of `engine`'s tables, not saved.
    fn search_index(engine: &Engine) -> FuncSearchFunction {
        FuncSearchFunction::new(
            SOURCE_TABLES
                .iter()
                .filter_map(|name| engine.live_table(name).cloned())
                .collect(),
            None,
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
        insert_first_rows(&session).await;
        searches(&index, &session).await;
        assert_eq!(tokenised(&index).await, Some(3));

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
        assert_eq!(tokenised(&index).await, Some(3));
        let at_once = search_index(&engine);
        assert_eq!(searches(&at_once, &session).await, appended);
        assert_eq!(tokenised(&at_once).await, Some(6));
        let rows: usize = appended.iter().map(RecordBatch::num_rows).sum();
        assert!(rows > 20, "{rows}");

        // A delete (a file rewritten) builds the index again.
        session
            .run_one("DELETE FROM org_duty WHERE duty_id = 15")
            .await
            .unwrap();
        let after_delete = searches(&index, &session).await;
        assert_eq!(tokenised(&index).await, Some(5));
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
        assert_eq!(tokenised(&index).await, Some(5));
        session
            .run_one(&duties(&[(40, 2, "负责全市噪声污染防治。")]))
            .await
            .unwrap();
        searches(&index, &session).await;
        assert_eq!(tokenised(&index).await, Some(1));
    }

    /// An engine on `location`, a session of it, and a `func_search` index
    /// of its tables saved in `location`.
    async fn open_saving(location: &str) -> (Engine, Session, FuncSearchFunction) {
        let engine = Engine::open(location).await.unwrap();
        let session =
            Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        let index = FuncSearchFunction::new(
            SOURCE_TABLES
                .iter()
                .filter_map(|name| engine.live_table(name).cloned())
                .collect(),
            Some(std::path::Path::new(location)),
        );
        (engine, session, index)
    }

    #[tokio::test]
    async fn the_saved_index_is_read_by_the_next_engine() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let saved = dir.path().join(SAVED_INDEX_FILE);
        let (_engine, session, index) = open_saving(location).await;
        insert_first_rows(&session).await;
        let first = searches(&index, &session).await;
        assert_eq!(tokenised(&index).await, Some(3));
        assert!(saved.is_file());

        // The next engine reads it: nothing tokenised, the same results.
        let (_engine, session, index) = open_saving(location).await;
        assert_eq!(searches(&index, &session).await, first);
        assert_eq!(tokenised(&index).await, Some(0));

        // Read ahead, as a server does at its start: the first search takes
        // it, even with the file gone since (an index built whole would be
        // saved again), and answers as the file's reader does.
        const SEARCH: &str = "SELECT source, item_id, score FROM func_search('食品安全监管')";
        let expected = search_rows(&session, SEARCH).await;
        assert!(expected.contains("10"), "{expected}");
        let (engine, session, _) = open_saving(location).await;
        engine.read_saved_search_index().await;
        let bytes = std::fs::read(&saved).unwrap();
        std::fs::remove_file(&saved).unwrap();
        assert_eq!(search_rows(&session, SEARCH).await, expected);
        assert!(!saved.exists());
        std::fs::write(&saved, bytes).unwrap();

        // Rows appended after it was saved: the next engine reads it and
        // tokenises only those, giving what a build at once gives.
        session
            .run_one(&duties(&[
                (5, 2, "负责全市生态环境监督管理工作。"),
                (15, 1, "負責全市食品安全監督管理工作。"),
            ]))
            .await
            .unwrap();
        let (engine, session, index) = open_saving(location).await;
        let appended = searches(&index, &session).await;
        assert_eq!(tokenised(&index).await, Some(2));
        assert_eq!(searches(&search_index(&engine), &session).await, appended);
        // Two rows of five are more than a tenth: saved again with them.
        let (_engine, session, index) = open_saving(location).await;
        assert_eq!(searches(&index, &session).await, appended);
        assert_eq!(tokenised(&index).await, Some(0));

        // A damaged file, or one of another tokenizer: built again, whole,
        // and saved again.
        let bytes = std::fs::read(&saved).unwrap();
        std::fs::write(&saved, &bytes[..bytes.len() / 2]).unwrap();
        let (_engine, session, index) = open_saving(location).await;
        assert_eq!(searches(&index, &session).await, appended);
        assert_eq!(tokenised(&index).await, Some(5));
        assert_eq!(std::fs::read(&saved).unwrap().len(), bytes.len());
        // One bit flipped in the middle: not used, built again.
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x10;
        std::fs::write(&saved, &flipped).unwrap();
        let (_engine, session, index) = open_saving(location).await;
        assert_eq!(searches(&index, &session).await, appended);
        assert_eq!(tokenised(&index).await, Some(5));
        let rebuilt = std::fs::read(&saved).unwrap();
        assert_eq!(rebuilt.len(), bytes.len());
        assert!(crate::checked_file::checked_contents(rebuilt).is_ok());
        // Another tokenizer's, with its checksum right.
        let contents = crate::checked_file::checked_contents(bytes.clone()).unwrap();
        let at = contents
            .windows(10)
            .position(|w| w == b"tokenizer ")
            .unwrap()
            + 10;
        let mut other = contents.clone();
        other[at..at + 16].copy_from_slice(b"0000000000000000");
        std::fs::write(&saved, crate::checked_file::with_trailer(&other)).unwrap();
        let (_engine, session, index) = open_saving(location).await;
        assert_eq!(searches(&index, &session).await, appended);
        assert_eq!(tokenised(&index).await, Some(5));

        // org_duty made anew, up to the version saved (created, then two
        // appends) but with other rows: the saved index is not taken.
        drop((_engine, session, index));
        std::fs::remove_dir_all(dir.path().join("org_duty")).unwrap();
        let (_engine, session, _) = open_saving(location).await;
        session
            .run_one(&duties(&[(7, 1, "负责全市噪声污染防治。")]))
            .await
            .unwrap();
        session
            .run_one(&duties(&[(8, 2, "负责全市档案监督管理。")]))
            .await
            .unwrap();
        let (engine, session, index) = open_saving(location).await;
        let made_anew = searches(&index, &session).await;
        assert_eq!(tokenised(&index).await, Some(2));
        assert_eq!(searches(&search_index(&engine), &session).await, made_anew);
    }
}
