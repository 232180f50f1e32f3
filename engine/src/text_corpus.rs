//! The duty-text corpus behind `func_similarity`'s weights: every clause of
//! `org_duty` (duty_text) and every power item (`power_item.item_name`), read
//! when a data directory is opened. Tokens common in this corpus (负责, 全市,
//! 工作 …) weigh little because they are common here, not because a list says so.
//!
//! Counting tokenises every text (seconds at a million), so the counts are
//! saved beside the tables and read back at the next open while the
//! tables' Delta versions and the tokenizer are the ones they were counted
//! from; and after commits that only added data files (appends), only the
//! added files' rows are counted and added to them. Texts are tokenised
//! through `similar_pairs`' token memo: those it holds are not segmented
//! again, and the others are kept for a later join over them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bianzhi_catalog::live_table::{LiveDeltaTable, PinnedVersion, Since};
use bianzhi_udfs::text::{
    func_similarity_with_weights, PairTokenMemo, SharedTokenWeights, TokenWeights,
};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::HashMap;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use tokio::sync::Mutex;
use url::Url;

use crate::checked_file::{checked_contents, save_checked};
use crate::saved_versions::TableVersions;

/// The tables the corpus is read from, whose versions key the saved counts.
pub const CORPUS_TABLES: [&str; 2] = ["org_duty", "power_item"];

/// The text column of each of [`CORPUS_TABLES`]: its rows are the corpus
/// documents.
pub const CORPUS_COLUMNS: [&str; 2] = ["duty_text", "item_name"];

/// The file the counts are saved in, in a local data directory's root: a
/// file, so never taken for a table.
pub const SAVED_COUNTS_FILE: &str = ".bianzhi_token_counts";

/// `func_similarity`'s and `similar_pairs`' weights for one engine: counted
/// when it opens, and counted again before a statement that scores with
/// them once a corpus table has a new Delta version (a write through any
/// session, or another process's import). Every session's functions read
/// the one [`SharedTokenWeights`], so new counts reach sessions already open.
#[derive(Debug)]
pub struct CorpusWeights {
    shared: Arc<SharedTokenWeights>,
    /// The live tables of [`CORPUS_TABLES`], in that order, where they exist.
    tables: [Option<Arc<LiveDeltaTable>>; CORPUS_TABLES.len()],
    root: Url,
    runtime: Arc<RuntimeEnv>,
    /// `similar_pairs`' tokenised texts: counting tokenises through it, so
    /// that the corpus's texts are not segmented again by a later join
    /// over them, nor the texts it holds by the count.
    pair_tokens: Arc<PairTokenMemo>,
    /// What the weights in place were counted from; `None` before the
    /// first count. Held while counting, so concurrent statements wait for
    /// one count.
    counted: Mutex<Option<Counted>>,
    /// How the last refresh that changed the weights made them.
    last_count: std::sync::Mutex<Option<CountKind>>,
}

/// Weights, and the corpus tables' versions and data files they were
/// counted from, per table of [`CORPUS_TABLES`] (`None` and no files for a
/// table that does not exist).
#[derive(Debug)]
struct Counted {
    from: TableVersions,
    weights: Arc<TokenWeights>,
}

/// How a refresh made the weights it put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountKind {
    /// Read from the counts saved beside the tables (or kept: the tables
    /// were found unchanged).
    Saved,
    /// Every text of the corpus tables counted.
    Whole,
    /// The tables only gained files since the last count (appends): the
    /// texts of those counted and added to the weights in place.
    Added { documents: u64 },
}

impl CorpusWeights {
    /// Weights over `tables` (the engine's live tables of
    /// [`CORPUS_TABLES`]), uniform until [`Self::refresh`] first counts.
    pub fn new(
        tables: [Option<Arc<LiveDeltaTable>>; CORPUS_TABLES.len()],
        root: Url,
        runtime: Arc<RuntimeEnv>,
        pair_tokens: Arc<PairTokenMemo>,
    ) -> Self {
        Self {
            shared: Arc::default(),
            tables,
            root,
            runtime,
            pair_tokens,
            counted: Mutex::new(None),
            last_count: std::sync::Mutex::new(None),
        }
    }

    /// The cell every session's `func_similarity` and `similar_pairs` read.
    pub fn shared(&self) -> Arc<SharedTokenWeights> {
        Arc::clone(&self.shared)
    }

    /// The weights in place now.
    pub fn current(&self) -> Arc<TokenWeights> {
        self.shared.current()
    }

    /// How the weights in place were made (`None` before the first count).
    pub fn last_count(&self) -> Option<CountKind> {
        self.last_count.lock().map_or(None, |kind| *kind)
    }

    /// The weights of the corpus tables' newest versions: the ones in place
    /// if those versions have not changed since they were counted; else, if
    /// the tables only gained files since (appends), the ones in place with
    /// the new files' texts added; else read from the saved counts or
    /// counted again. Put in place and saved.
    pub async fn refresh(&self) -> DfResult<Arc<TokenWeights>> {
        let mut counted = self.counted.lock().await;
        let mut versions = Vec::with_capacity(CORPUS_TABLES.len());
        for table in &self.tables {
            versions.push(match table {
                Some(table) => table.version().await?,
                None => None,
            });
        }
        if counted.as_ref().map(|counted| &counted.from.versions) == Some(&versions) {
            return Ok(self.shared.current());
        }
        // Each table's newest version, pinned: the rows counted are exactly
        // those of the versions recorded, whatever is committed meanwhile.
        let mut pinned = Vec::with_capacity(CORPUS_TABLES.len());
        for table in &self.tables {
            pinned.push(match table {
                Some(table) => Some(table.pinned().await?),
                None => None,
            });
        }
        let now = TableVersions {
            versions: pinned
                .iter()
                .map(|table| table.as_ref().and_then(PinnedVersion::version))
                .collect(),
            files: Some(
                pinned
                    .iter()
                    .map(|table| table.as_ref().map(PinnedVersion::files).unwrap_or_default())
                    .collect(),
            ),
        };
        // What the weights were counted from last: in this engine, else (at
        // open) as saved beside the tables by this or another process.
        let path = self.saved_counts_path();
        let saved = match (counted.as_ref(), &path) {
            (None, Some(path)) => read_saved_counts(path).await,
            _ => None,
        };
        let earlier = counted.as_ref().or(saved.as_ref());
        let (weights, kind) = match earlier {
            Some(earlier) if earlier.from.same_rows(&now) => {
                (Arc::clone(&earlier.weights), CountKind::Saved)
            }
            _ => {
                let ctx =
                    SessionContext::new_with_config_rt(SessionConfig::new(), self.runtime.clone());
                let added = match earlier {
                    Some(earlier) => rows_added(&pinned, earlier).await?,
                    None => None,
                };
                let (texts, earlier_weights) = match (added, earlier) {
                    (Some(added), Some(earlier)) => (
                        corpus_texts(&ctx, &added).await?,
                        Some(Arc::clone(&earlier.weights)),
                    ),
                    _ => {
                        let whole: Vec<Option<Arc<dyn TableProvider>>> = pinned
                            .iter()
                            .map(|table| table.as_ref().map(PinnedVersion::provider))
                            .collect();
                        (corpus_texts(&ctx, &whole).await?, None)
                    }
                };
                let header = now.header();
                let pair_tokens = Arc::clone(&self.pair_tokens);
                tokio::task::spawn_blocking(move || {
                    count_and_save(
                        &texts,
                        earlier_weights.as_deref(),
                        path,
                        &header,
                        &pair_tokens,
                    )
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
            }
        };
        if counted.is_some() {
            tracing::info!(
                documents = weights.documents(),
                versions = ?now.versions,
                how = ?kind,
                "corpus tables changed: func_similarity's token weights counted again"
            );
        } else {
            tracing::debug!(documents = weights.documents(), how = ?kind, "corpus token counts");
        }
        self.shared.replace(Arc::clone(&weights));
        if let Ok(mut last) = self.last_count.lock() {
            *last = Some(kind);
        }
        *counted = Some(Counted {
            from: now,
            weights: Arc::clone(&weights),
        });
        Ok(weights)
    }

    /// Where the counts are saved: in a local data directory's root.
    fn saved_counts_path(&self) -> Option<PathBuf> {
        self.root
            .to_file_path()
            .ok()
            .map(|dir| dir.join(SAVED_COUNTS_FILE))
    }
}

/// The rows each pinned table holds beyond what was `earlier` counted
/// (`None` for a table unchanged or missing), when every table only gained
/// files since; `None` when one lost or changed a file.
async fn rows_added(
    pinned: &[Option<PinnedVersion>],
    earlier: &Counted,
) -> DfResult<Option<Vec<Option<Arc<dyn TableProvider>>>>> {
    let tables: Vec<Option<&PinnedVersion>> = pinned.iter().map(Option::as_ref).collect();
    let Some(since) = earlier.from.since(&tables).await? else {
        return Ok(None);
    };
    let mut added = Vec::with_capacity(since.len());
    for table in since {
        match table {
            None | Some(Since::Unchanged) => added.push(None),
            Some(Since::Added(rows)) => added.push(Some(rows)),
            Some(Since::Changed) => return Ok(None),
        }
    }
    Ok(Some(added))
}

/// Whether `plan` scores with the corpus weights: it calls `func_similarity`
/// or `similar_pairs`, itself, in a subquery or in a view it reads
/// (DataFusion puts a view's plan in place of its scan while planning).
pub fn uses_corpus_weights(plan: &LogicalPlan) -> bool {
    let mut found = false;
    // The closures never fail: `apply` only returns what they return.
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            // A table function's scan is named after the call: `similar_pairs()`
            // by DataFusion, `similar_pairs('t', …)` by `DistinctScans`.
            let table = scan.table_name.table();
            found = table == "similar_pairs" || table.starts_with("similar_pairs(");
        }
        if !found {
            node.apply_expressions(|expr| {
                expr.apply(|expr| {
                    if matches!(expr, Expr::ScalarFunction(call) if call.name() == "func_similarity")
                    {
                        found = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })?;
        }
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// `plan` with every `func_similarity` call scoring with `weights`, fixed,
/// instead of reading the engine's shared weights batch by batch: a count
/// finishing while the statement runs (after another session's write)
/// cannot change its scores halfway. (`similar_pairs` reads the shared
/// weights once, when the statement is planned.)
pub fn with_fixed_weights(plan: LogicalPlan, weights: Arc<TokenWeights>) -> DfResult<LogicalPlan> {
    let function = Arc::new(func_similarity_with_weights(weights));
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|expr| match expr {
                Expr::ScalarFunction(call) if call.name() == "func_similarity" => {
                    Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(Arc::clone(&function), call.args),
                    )))
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|transformed| transformed.data)
}

/// The texts of the corpus: the text column of each of [`CORPUS_TABLES`]
/// in `tables` (read through the providers given, `None` for none).
async fn corpus_texts(
    ctx: &SessionContext,
    tables: &[Option<Arc<dyn TableProvider>>],
) -> DfResult<Vec<ArrayRef>> {
    let mut texts = Vec::new();
    for (table, column) in tables.iter().zip(CORPUS_COLUMNS) {
        let Some(table) = table else {
            continue;
        };
        let rows = ctx
            .read_table(Arc::clone(table))?
            .select_columns(&[column])?;
        for batch in rows.collect().await? {
            texts.push(cast(batch.column(0), &DataType::Utf8)?);
        }
    }
    Ok(texts)
}

/// The document frequencies of `texts` (tokenised through `pair_tokens`
/// on all cores, but see `count_documents`), added to `earlier`'s when
/// given, and saved at `path`
/// under `header`. Saving is best effort: a read-only directory only costs
/// the next open a count.
fn count_and_save(
    texts: &[ArrayRef],
    earlier: Option<&TokenWeights>,
    path: Option<PathBuf>,
    header: &str,
    pair_tokens: &PairTokenMemo,
) -> (Arc<TokenWeights>, CountKind) {
    let counted = count_documents(texts, earlier.is_some(), pair_tokens);
    let (weights, kind) = match earlier {
        Some(earlier) => {
            let mut weights = earlier.clone();
            weights.merge(&counted);
            let documents = counted.documents();
            (weights, CountKind::Added { documents })
        }
        None => (counted, CountKind::Whole),
    };
    if let Some(path) = path {
        save_counts(&path, header, &weights);
    }
    (Arc::new(weights), kind)
}

impl Counted {
    /// Counts saved under [`TableVersions::header`] (or, without the files,
    /// by an earlier version of bianzhi): `None` if they are of another
    /// tokenizer, an error naming what is wrong if they cannot be read.
    fn from_saved(text: &str) -> Result<Option<Counted>, String> {
        let Some((from, rest)) = TableVersions::parse(text.as_bytes(), CORPUS_TABLES.len())? else {
            return Ok(None);
        };
        // `rest` starts after a line break, so on a character boundary.
        let rest = &text[text.len() - rest.len()..];
        let weights = TokenWeights::from_counts_text(rest).map_err(|error| error.to_string())?;
        Ok(Some(Counted {
            from,
            weights: Arc::new(weights),
        }))
    }
}

/// The counts saved at `path` and what they were counted from, if they are
/// there, readable and of this tokenizer.
async fn read_saved_counts(path: &Path) -> Option<Counted> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let text = match checked_contents(bytes).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(error)) => {
            tracing::warn!(path = %path.display(), %error, "saved corpus token counts unreadable; counting again");
            return None;
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "saved corpus token counts damaged; counting again");
            return None;
        }
    };
    match Counted::from_saved(&text) {
        Ok(Some(counted)) => Some(counted),
        Ok(None) => {
            tracing::debug!(path = %path.display(), "saved corpus token counts are of another tokenizer");
            None
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "saved corpus token counts unreadable; counting again");
            None
        }
    }
}

/// Saves the counts under `header`, whole or not at all (an `AtomicFile`:
/// written aside, then renamed over the old file), with a checksum
/// (`checked_file`).
fn save_counts(path: &Path, header: &str, weights: &TokenWeights) {
    let Some(counts) = weights.to_counts_text() else {
        tracing::debug!("a corpus word holds a tab or line break; token counts not saved");
        return;
    };
    let saved = save_checked(path, |file| {
        file.write_all(format!("{header}\n{counts}").as_bytes())
    });
    if let Err(error) = saved {
        tracing::warn!(%error, "could not save the corpus token counts");
    }
}

/// The document frequencies of `columns`' texts; `appended` when they are
/// only rows added since the counts in place.
fn count_documents(
    columns: &[ArrayRef],
    appended: bool,
    pair_tokens: &PairTokenMemo,
) -> TokenWeights {
    // Duty clauses repeat (one template in every district's 三定): each
    // distinct text is tokenised once and counted as often as it occurs.
    // In the order first met, so that the tokens are kept (and saved) in
    // the same order from one count to the next.
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<(&str, u64)> = Vec::new();
    for column in columns {
        let texts = column.as_string::<i32>();
        for row in (0..texts.len()).filter(|&row| texts.is_valid(row)) {
            let text = texts.value(row);
            let position = *positions.entry(text).or_insert_with(|| {
                distinct.push((text, 0));
                distinct.len() - 1
            });
            distinct[position].1 += 1;
        }
    }
    // An append's texts are few beside the saved tokens, which a new
    // process has not read yet (344 MB at a million texts: 1.1 s to count
    // one appended row): those are counted on their own. Once the memo has
    // read them (a server, a join, a whole count), counting goes through it.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if appended && !pair_tokens.saved_read() {
        return count_on_threads(&distinct, threads);
    }
    pair_tokens.count_documents(&distinct, threads)
}

/// The document frequencies of `distinct` texts (each with how often it
/// occurs), counted in shares on `threads` threads.
fn count_on_threads(distinct: &[(&str, u64)], threads: usize) -> TokenWeights {
    let chunk = distinct.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let counters: Vec<_> = distinct
            .chunks(chunk)
            .map(|share| {
                scope.spawn(move || TokenWeights::from_distinct_texts(share.iter().copied()))
            })
            .collect();
        let mut weights = TokenWeights::uniform();
        for counter in counters {
            match counter.join() {
                Ok(counted) => weights.merge(&counted),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        weights
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bianzhi_udfs::text::{func_similarity_with_weights, TokenWeights};
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    use datafusion::prelude::SessionContext;

    use super::{CountKind, SAVED_COUNTS_FILE};
    use crate::engine::Engine;
    use crate::session::{Output, Prepared, Session};
    use crate::{SessionIdentity, Settings};

    /// The saved counts' text, checksum checked and taken off.
    fn read_saved_text(path: &std::path::Path) -> String {
        let bytes = crate::checked_file::checked_contents(std::fs::read(path).unwrap()).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// Saves `text` as the counts, with a right checksum: an edit the
    /// readers' own checks see.
    fn write_saved_text(path: &std::path::Path, text: &str) {
        std::fs::write(path, crate::checked_file::with_trailer(text.as_bytes())).unwrap();
    }

    const PAIR: &str =
        "SELECT func_similarity('负责全市档案监督管理工作', '负责全市价格监督管理工作')";

    /// The one Float64 a statement returns.
    async fn score(session: &Session, sql: &str) -> f64 {
        match session.run_one(sql).await.unwrap() {
            Output::Rows { batches, .. } => {
                batches[0].column(0).as_primitive::<Float64Type>().value(0)
            }
            other => panic!("{sql}: expected rows, got {other:?}"),
        }
    }

    /// The one Float64 of a plan prepared earlier.
    async fn execute_prepared(
        session: &Session,
        plan: datafusion::logical_expr::LogicalPlan,
    ) -> f64 {
        let stream = session.execute(plan).await.unwrap();
        let batches = datafusion::physical_plan::common::collect(stream)
            .await
            .unwrap();
        batches[0].column(0).as_primitive::<Float64Type>().value(0)
    }

    /// `PAIR` scored with the weights of `texts`, outside any engine.
    async fn expected(texts: &[&str]) -> f64 {
        let ctx = SessionContext::new();
        ctx.register_udf(func_similarity_with_weights(Arc::new(
            TokenWeights::from_texts(texts),
        )));
        let batches = ctx.sql(PAIR).await.unwrap().collect().await.unwrap();
        batches[0].column(0).as_primitive::<Float64Type>().value(0)
    }

    fn insert(texts: &[&str], first_id: usize) -> String {
        let rows: Vec<String> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let id = first_id + i;
                format!("({id}, 1, 2024, {id}, '{text}', DATE '2024-01-01')")
            })
            .collect();
        format!(
            "INSERT INTO org_duty (duty_id, org_id, version_year, seq, duty_text, valid_from) VALUES {}",
            rows.join(", ")
        )
    }

    #[tokio::test]
    async fn weights_follow_writes_while_the_engine_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        let new_session =
            || Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        let (writer, reader) = (new_session(), new_session());
        let uniform = score(&reader, PAIR).await;
        assert_eq!(uniform, expected(&[]).await);
        writer
            .run_one("CREATE VIEW pair_score AS SELECT func_similarity('负责全市档案监督管理工作', '负责全市价格监督管理工作') AS score")
            .await
            .unwrap();
        // Prepared before the write, run after it.
        let Prepared::Query { plan: prepared, .. } = reader.prepare(PAIR).await.unwrap() else {
            panic!("a query");
        };

        // Boilerplate in every text: 负责全市…监督管理工作 weighs little now.
        let first = [
            "负责全市档案监督管理工作",
            "负责全市药品监督管理工作",
            "负责全市环境监督管理工作",
            "负责全市价格监督管理工作",
        ];
        writer.run_one(&insert(&first, 1)).await.unwrap();
        // Statements not scoring texts do not count.
        let rows = score(&reader, "SELECT count(*)::DOUBLE FROM org_duty").await;
        assert_eq!(rows, 4.0);
        assert_eq!(engine.text_weights().documents(), 0);
        // The first statement after the write that scores only reads a view
        // calling the function: that is enough to count again.
        let counted = score(&reader, "SELECT score FROM pair_score").await;
        assert_eq!(counted, expected(&first).await);
        assert!(counted < uniform, "{counted} < {uniform}");
        assert_eq!(engine.text_weights().documents(), 4);
        assert_eq!(score(&reader, PAIR).await, counted);
        assert_eq!(execute_prepared(&reader, prepared).await, counted);

        // similar_pairs scores with the same weights: its pairs are the
        // cross join's, score for score.
        let differing = "SELECT count(*)::DOUBLE FROM ( \
            SELECT left_id, right_id, score FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.1) \
            EXCEPT SELECT a.duty_id, b.duty_id, func_similarity(a.duty_text, b.duty_text) \
            FROM org_duty a JOIN org_duty b ON a.duty_id < b.duty_id \
            WHERE func_similarity(a.duty_text, b.duty_text) >= 0.1)";
        assert_eq!(score(&reader, differing).await, 0.0);
        let pairs =
            "SELECT count(*)::DOUBLE FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.1)";
        assert_eq!(score(&reader, pairs).await, 6.0);
        // Their texts stay tokenised for later calls, in any session.
        assert_eq!(engine.similar_pairs_texts_held(), 4);

        // More rows, then a delete: counted again each time.
        let second = ["组织实施全市档案资料收集整理工作", "负责全市档案馆建设"];
        writer.run_one(&insert(&second, 5)).await.unwrap();
        let all: Vec<&str> = first.iter().chain(&second).copied().collect();
        // A statement calling only similar_pairs counts again too.
        let pair_1_4 = "SELECT score FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.1) \
            WHERE left_id = 1 AND right_id = 4";
        assert_eq!(score(&reader, pair_1_4).await, expected(&all).await);
        // Only the two new texts were tokenised, and the pair's score is
        // still the cross join's under the weights counted anew.
        assert_eq!(engine.similar_pairs_texts_held(), 6);
        assert_eq!(score(&reader, PAIR).await, expected(&all).await);
        let Prepared::Query { plan: prepared, .. } = reader.prepare(PAIR).await.unwrap() else {
            panic!("a query");
        };
        writer
            .run_one("DELETE FROM org_duty WHERE duty_id IN (2, 3)")
            .await
            .unwrap();
        // The first statement after the delete was prepared before it.
        let kept = [first[0], first[3], second[0], second[1]];
        let expected_kept = expected(&kept).await;
        assert_eq!(execute_prepared(&reader, prepared).await, expected_kept);
        assert_eq!(score(&reader, PAIR).await, expected_kept);
        assert_eq!(engine.text_weights().documents(), 4);
    }

    #[tokio::test]
    async fn appends_are_counted_alone_and_give_the_whole_count() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let engine = Engine::open(location).await.unwrap();
        let session =
            Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        let corpus = engine.corpus_weights();
        assert_eq!(corpus.last_count(), Some(CountKind::Whole));

        let duties = ["负责全市档案监督管理工作", "負責全市藥品監督管理工作"];
        session.run_one(&insert(&duties, 1)).await.unwrap();
        session
            .run_one(
                "INSERT INTO power_item (item_id, org_id, item_code, item_type, item_name, \
                 exercise_level, status, valid_from) VALUES \
                 (1, 1, 'X1', '行政许可', '档案利用审批', '市级', '在用', DATE '2024-01-01'), \
                 (2, 1, 'X2', '行政处罚', '对违反档案管理规定的处罚', '市级', '在用', DATE '2024-01-01')",
            )
            .await
            .unwrap();
        let more = [
            "组织实施全市档案资料收集整理工作",
            "负责全市档案监督管理工作",
        ];
        session.run_one(&insert(&more, 3)).await.unwrap();
        let mut texts: Vec<&str> = duties.iter().chain(&more).copied().collect();
        texts.extend(["档案利用审批", "对违反档案管理规定的处罚"]);

        // Three commits since the count at open, all appends: only their
        // texts are counted, and the weights are a whole count's.
        let weights = engine.refresh_text_weights().await.unwrap();
        assert_eq!(corpus.last_count(), Some(CountKind::Added { documents: 6 }));
        assert_eq!(*weights, TokenWeights::from_texts(&texts));
        // Saved as they are: the next open reads them back.
        drop(session);
        drop(engine);
        let engine = Engine::open(location).await.unwrap();
        assert_eq!(engine.corpus_weights().last_count(), Some(CountKind::Saved));
        assert_eq!(*engine.text_weights(), TokenWeights::from_texts(&texts));

        // An update rewrites a file: the whole corpus is counted.
        let session =
            Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        session
            .run_one("UPDATE org_duty SET duty_text = '负责全市价格监督管理工作' WHERE duty_id = 3")
            .await
            .unwrap();
        texts[2] = "负责全市价格监督管理工作";
        let weights = engine.refresh_text_weights().await.unwrap();
        assert_eq!(engine.corpus_weights().last_count(), Some(CountKind::Whole));
        assert_eq!(*weights, TokenWeights::from_texts(&texts));
        // And appends after it are counted alone again, from there.
        session
            .run_one(&insert(&["负责全市档案馆建设"], 5))
            .await
            .unwrap();
        texts.push("负责全市档案馆建设");
        let weights = engine.refresh_text_weights().await.unwrap();
        assert_eq!(
            engine.corpus_weights().last_count(),
            Some(CountKind::Added { documents: 1 })
        );
        assert_eq!(*weights, TokenWeights::from_texts(&texts));
    }

    #[tokio::test]
    async fn a_statement_keeps_the_weights_it_started_with() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        let session =
            Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        let Prepared::Query { plan, .. } = session.prepare(PAIR).await.unwrap() else {
            panic!("a query");
        };
        let texts = ["负责全市档案监督管理工作", "负责全市药品监督管理工作"];
        let plan =
            super::with_fixed_weights(plan, Arc::new(TokenWeights::from_texts(texts))).unwrap();
        // New shared weights (as a count after another session's write
        // would put in place) do not reach the fixed plan.
        engine
            .corpus_weights()
            .shared()
            .replace(Arc::new(TokenWeights::from_texts([
                "负责全市价格监督管理工作",
            ])));
        let batches = session
            .context()
            .execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let fixed = batches[0].column(0).as_primitive::<Float64Type>().value(0);
        assert_eq!(fixed, expected(&texts).await);
        assert_ne!(fixed, expected(&["负责全市价格监督管理工作"]).await);
    }

    async fn add_duty(location: &str, duty_id: i64, text: &str) {
        let engine = Engine::open(location).await.unwrap();
        let sql = format!(
            "INSERT INTO org_duty (duty_id, org_id, version_year, seq, duty_text, valid_from) \
             VALUES ({duty_id}, 1, 2024, {duty_id}, '{text}', DATE '2024-01-01')"
        );
        engine
            .session()
            .unwrap()
            .sql(&sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
    }

    async fn documents_at_open(location: &str) -> u64 {
        Engine::open(location)
            .await
            .unwrap()
            .text_weights()
            .documents()
    }

    /// How an engine opening `location` made its weights, and the weights.
    async fn counted_at_open(location: &str) -> (Option<CountKind>, TokenWeights) {
        let engine = Engine::open(location).await.unwrap();
        let kind = engine.corpus_weights().last_count();
        (kind, TokenWeights::clone(&engine.text_weights()))
    }

    #[tokio::test]
    async fn a_table_made_anew_at_the_counted_version_is_counted_whole() {
        // org_duty made anew elsewhere up to the same version (created, two
        // inserts) with other rows, and put in place of the counted one.
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        add_duty(location, 1, "负责全市档案监督管理工作").await;
        add_duty(location, 2, "负责全市药品监督管理工作").await;
        counted_at_open(location).await;
        let elsewhere = tempfile::tempdir().unwrap();
        let other = elsewhere.path().to_str().unwrap();
        let texts = ["负责全市价格监督管理工作", "组织实施住房公积金管理"];
        add_duty(other, 3, texts[0]).await;
        add_duty(other, 4, texts[1]).await;
        std::fs::remove_dir_all(dir.path().join("org_duty")).unwrap();
        std::fs::rename(
            elsewhere.path().join("org_duty"),
            dir.path().join("org_duty"),
        )
        .unwrap();
        let (kind, weights) = counted_at_open(location).await;
        assert_eq!(kind, Some(CountKind::Whole));
        assert_eq!(weights, TokenWeights::from_texts(texts));
    }

    #[tokio::test]
    async fn appends_between_opens_are_counted_alone() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let texts = ["负责全市档案工作", "組織實施交通管理", "负责全市价格工作"];
        // Each `add_duty` opens the directory (reading or counting) and
        // appends a row, as `bianzhi import` or a script run would.
        add_duty(location, 1, texts[0]).await;
        add_duty(location, 2, texts[1]).await;
        assert_eq!(
            counted_at_open(location).await,
            (
                Some(CountKind::Added { documents: 1 }),
                TokenWeights::from_texts(&texts[..2])
            )
        );
        let saved = dir.path().join(SAVED_COUNTS_FILE);
        let text = read_saved_text(&saved);
        assert!(text.contains("\nfiles\t2\nfile\t0\t"), "{text}");
        assert_eq!(
            counted_at_open(location).await,
            (
                Some(CountKind::Saved),
                TokenWeights::from_texts(&texts[..2])
            )
        );

        // Counts saved without their files (by an earlier bianzhi) are read
        // at the same versions, and counted whole after a write, never added
        // to blindly.
        let start = text.find("\nfiles\t").unwrap();
        let end = text.find("\nbianzhi token counts").unwrap();
        write_saved_text(&saved, &format!("{}{}", &text[..start], &text[end..]));
        assert_eq!(
            counted_at_open(location).await,
            (
                Some(CountKind::Saved),
                TokenWeights::from_texts(&texts[..2])
            )
        );
        write_saved_text(&saved, &format!("{}{}", &text[..start], &text[end..]));
        add_duty(location, 3, texts[2]).await;
        assert_eq!(
            counted_at_open(location).await,
            (Some(CountKind::Whole), TokenWeights::from_texts(texts))
        );

        // Counts claiming a later version than the table has (its log put
        // back by hand) are not added to either.
        let text = read_saved_text(&saved);
        let (first, rest) = text.split_once('\n').unwrap();
        let (tokenizer, versions) = first.split_once(" versions ").unwrap();
        let (_, power_item) = versions.split_once(' ').unwrap();
        write_saved_text(
            &saved,
            &format!("{tokenizer} versions 99 {power_item}\n{rest}"),
        );
        assert_eq!(
            counted_at_open(location).await,
            (Some(CountKind::Whole), TokenWeights::from_texts(texts))
        );
    }

    #[tokio::test]
    async fn counts_are_saved_read_back_and_counted_again_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        add_duty(location, 1, "负责全市档案工作").await;
        add_duty(location, 2, "組織實施交通管理").await;
        let counted = Engine::open(location).await.unwrap().text_weights();
        assert_eq!(counted.documents(), 2);
        let saved = dir.path().join(SAVED_COUNTS_FILE);
        let text = read_saved_text(&saved);
        assert_eq!(
            Engine::open(location).await.unwrap().text_weights(),
            counted
        );
        // What the next open takes is the saved file: an edit there shows.
        write_saved_text(&saved, &text.replacen("documents\t2", "documents\t7", 1));
        assert_eq!(documents_at_open(location).await, 7);
        // A write (an append) makes a new table version: its row is counted
        // and added to the saved counts, edit included, and saved again.
        add_duty(location, 3, "负责全市价格工作").await;
        assert_eq!(documents_at_open(location).await, 8);
        let text = read_saved_text(&saved);
        assert!(text.contains("\ndocuments\t8\n"), "{text}");
        // Unreadable counts are counted again, whole, not an error.
        write_saved_text(
            &saved,
            &text.replacen("documents\t8", "documents\tthree", 1),
        );
        assert_eq!(documents_at_open(location).await, 3);
        assert!(read_saved_text(&saved).contains("\ndocuments\t3\n"));
        // So are counts edited without their checksum (a flipped digit, as
        // a damaged disk would give, reads as well as the right one).
        let at = read_saved_text(&saved).find("documents\t3").unwrap() + "documents\t".len();
        let mut bytes = std::fs::read(&saved).unwrap();
        bytes[at] = b'7';
        std::fs::write(&saved, bytes).unwrap();
        assert_eq!(documents_at_open(location).await, 3);
        assert!(read_saved_text(&saved).contains("\ndocuments\t3\n"));
    }

    /// The data files `table`'s log holds live, their `add` actions in
    /// the order added.
    fn live_files(table: &std::path::Path) -> Vec<serde_json::Value> {
        let mut commits: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        commits.sort();
        let mut live: Vec<serde_json::Value> = Vec::new();
        for commit in commits {
            for line in std::fs::read_to_string(commit).unwrap().lines() {
                let action: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(removed) = action.get("remove") {
                    live.retain(|add| add["path"] != removed["path"]);
                }
                if let Some(added) = action.get("add") {
                    live.retain(|add| add["path"] != added["path"]);
                    live.push(added.clone());
                }
            }
        }
        live
    }

    /// Hides `rows` (positions in the file) of `table`'s data file `add`
    /// behind an inline deletion vector, as Spark or Databricks delete rows
    /// (bianzhi's own writes never add one), in a commit written by hand
    /// that also raises the protocol to deletion vectors. In place, the
    /// file's `add` is replaced by one carrying the vector; otherwise a
    /// copy of the file is added under a new name carrying it.
    fn commit_deletion_vector(
        table: &std::path::Path,
        add: &serde_json::Value,
        rows: &[u64],
        in_place: bool,
    ) {
        let mut deleted = roaring::RoaringTreemap::new();
        deleted.extend(rows.iter().copied());
        // The Delta protocol's inline form: the portable RoaringBitmap
        // magic, the bitmap, Z85-encoded (whole 4-byte groups).
        let mut vector = 1_681_511_377u32.to_le_bytes().to_vec();
        deleted.serialize_into(&mut vector).unwrap();
        assert_eq!(vector.len() % 4, 0, "an even number of rows");
        let mut added = add.clone();
        added["deletionVector"] = serde_json::json!({
            "storageType": "i",
            "pathOrInlineDv": z85::encode(&vector),
            "sizeInBytes": vector.len(),
            "cardinality": rows.len(),
        });
        added["dataChange"] = true.into();
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions = vec![serde_json::json!({"protocol": {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": ["deletionVectors"],
            "writerFeatures": ["deletionVectors"],
        }})];
        if in_place {
            actions.push(serde_json::json!({"remove": {
                "path": add["path"],
                "deletionTimestamp": now,
                "dataChange": true,
                "extendedFileMetadata": true,
                "partitionValues": add["partitionValues"],
                "size": add["size"],
            }}));
        } else {
            let copy = format!("copy-{}", add["path"].as_str().unwrap());
            std::fs::copy(table.join(add["path"].as_str().unwrap()), table.join(&copy)).unwrap();
            added["path"] = copy.into();
        }
        actions.push(serde_json::json!({"add": added}));
        actions.push(serde_json::json!({"commitInfo": {"timestamp": now, "operation": "DELETE"}}));
        let log = table.join("_delta_log");
        let version = std::fs::read_dir(&log)
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".json")?.parse::<u64>().ok()
            })
            .max()
            .unwrap()
            + 1;
        let lines: Vec<String> = actions.iter().map(|action| action.to_string()).collect();
        std::fs::write(
            log.join(format!("{version:020}.json")),
            lines.join("\n") + "\n",
        )
        .unwrap();
    }

    #[tokio::test]
    async fn files_given_or_added_with_deletion_vectors_are_counted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let texts = ["负责全市档案工作", "組織實施交通管理", "负责全市价格工作"];
        add_duty(location, 1, "承办市政府交办的其他事项").await;
        let engine = Engine::open(location).await.unwrap();
        let session =
            Session::new(&engine, Settings::default(), SessionIdentity::default()).unwrap();
        session.run_one(&insert(&texts, 2)).await.unwrap();
        drop((session, engine));
        let table = dir.path().join("org_duty");
        let files = live_files(&table);
        assert_eq!(files.len(), 2);
        let inserted = &files[1];
        assert_eq!(
            counted_at_open(location).await.0,
            Some(CountKind::Added { documents: 3 })
        );
        assert_eq!(counted_at_open(location).await.0, Some(CountKind::Saved));

        // Two of the three inserted rows deleted by a deletion vector: the
        // file's key changes, so the corpus is counted whole, and reading
        // the table applies the vector.
        commit_deletion_vector(&table, inserted, &[0, 2], true);
        let visible = ["承办市政府交办的其他事项", texts[1]];
        assert_eq!(
            counted_at_open(location).await,
            (Some(CountKind::Whole), TokenWeights::from_texts(visible))
        );

        // A new file that comes with a deletion vector is not taken as an
        // append (its rows are not what the file holds).
        commit_deletion_vector(&table, &live_files(&table)[1], &[0, 1], false);
        let visible = ["承办市政府交办的其他事项", texts[1], texts[2]];
        assert_eq!(
            counted_at_open(location).await,
            (Some(CountKind::Whole), TokenWeights::from_texts(visible))
        );
        assert_eq!(documents_at_open(location).await, 3);
    }
}
