//! The duty-text corpus behind `func_similarity`'s weights: every clause of
//! `org_duty` (duty_text) and every power item (`power_item.item_name`), read
//! when a data directory is opened. Tokens common in this corpus (负责, 全市,
//! 工作 …) weigh little because they are common here, not because a list says so.
//!
//! Counting tokenises every text (seconds at a million), so the counts are
//! saved beside the tables and read back at the next open while the
//! tables' Delta versions and the tokenizer are the ones they were counted
//! from.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use bianzhi_catalog::live_table::LiveDeltaTable;
use bianzhi_udfs::text::{func_similarity_with_weights, SharedTokenWeights, TokenWeights};
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

use crate::export::{AtomicFile, ExportError};

/// The tables the corpus is read from, whose versions key the saved counts.
pub const CORPUS_TABLES: [&str; 2] = ["org_duty", "power_item"];

/// The SQL whose rows are the corpus documents.
pub const CORPUS_SQL: &str =
    "SELECT duty_text AS text FROM org_duty UNION ALL SELECT item_name AS text FROM power_item";

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
    /// The versions the weights in place were counted from; `None` before
    /// the first count. Held while counting, so concurrent statements wait
    /// for one count.
    counted: Mutex<Option<Vec<Option<u64>>>>,
}

impl CorpusWeights {
    /// Weights over `tables` (the engine's live tables of
    /// [`CORPUS_TABLES`]), uniform until [`Self::refresh`] first counts.
    pub fn new(
        tables: [Option<Arc<LiveDeltaTable>>; CORPUS_TABLES.len()],
        root: Url,
        runtime: Arc<RuntimeEnv>,
    ) -> Self {
        Self {
            shared: Arc::default(),
            tables,
            root,
            runtime,
            counted: Mutex::new(None),
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

    /// The weights of the corpus tables' newest versions: the ones in place
    /// if those versions have not changed since they were counted, else read
    /// from the saved counts or counted again, and put in place.
    pub async fn refresh(&self) -> DfResult<Arc<TokenWeights>> {
        let mut counted = self.counted.lock().await;
        let mut versions = Vec::with_capacity(CORPUS_TABLES.len());
        for table in &self.tables {
            versions.push(match table {
                Some(table) => table.version().await?,
                None => None,
            });
        }
        if counted.as_ref() == Some(&versions) {
            return Ok(self.shared.current());
        }
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), self.runtime.clone());
        for (name, table) in CORPUS_TABLES.iter().zip(&self.tables) {
            if let Some(table) = table {
                ctx.register_table(*name, Arc::clone(table) as Arc<dyn TableProvider>)?;
            }
        }
        let weights = corpus_weights(&ctx, &self.root, &versions).await?;
        if counted.is_some() {
            tracing::info!(
                documents = weights.documents(),
                ?versions,
                "corpus tables changed: func_similarity's token weights counted again"
            );
        }
        self.shared.replace(Arc::clone(&weights));
        *counted = Some(versions);
        Ok(weights)
    }
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

/// Document frequencies over the corpus, counted on all cores: each thread
/// counts a share of the texts and the counts are added up (the same numbers
/// as one pass, in any order).
///
/// `versions` are the Delta versions of the corpus tables, read before their
/// rows: saved counts are taken only for the same versions, so counts saved
/// from newer rows than their versions say are counted again, never the
/// other way round. Saving is best effort: a read-only directory only costs
/// the next open a count.
async fn corpus_weights(
    ctx: &SessionContext,
    root: &Url,
    versions: &[Option<u64>],
) -> DfResult<Arc<TokenWeights>> {
    let key = saved_counts_key(versions);
    let path = root
        .to_file_path()
        .ok()
        .map(|dir| dir.join(SAVED_COUNTS_FILE));
    if let Some(path) = &path {
        if let Some(weights) = read_saved_counts(path, &key).await {
            tracing::debug!(path = %path.display(), documents = weights.documents(), "corpus token counts read");
            return Ok(Arc::new(weights));
        }
    }
    let mut texts = Vec::new();
    for batch in ctx.sql(CORPUS_SQL).await?.collect().await? {
        texts.push(cast(batch.column(0), &DataType::Utf8)?);
    }
    let weights = tokio::task::spawn_blocking(move || {
        let weights = count_documents(&texts);
        if let Some(path) = path {
            save_counts(&path, &key, &weights);
        }
        weights
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Arc::new(weights))
}

/// The first line of the saved counts: what they were counted from.
fn saved_counts_key(versions: &[Option<u64>]) -> String {
    let versions: Vec<String> = versions
        .iter()
        .map(|version| version.map_or_else(|| "-".to_string(), |v| v.to_string()))
        .collect();
    format!(
        "tokenizer {:016x} versions {}",
        TokenWeights::tokenizer_fingerprint(),
        versions.join(" ")
    )
}

/// The saved counts, if they are there, whole and of `key`.
async fn read_saved_counts(path: &Path, key: &str) -> Option<TokenWeights> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    let (first, counts) = text.split_once('\n')?;
    if first != key {
        tracing::debug!(path = %path.display(), "saved corpus token counts are of other versions");
        return None;
    }
    match TokenWeights::from_counts_text(counts) {
        Ok(weights) => Some(weights),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "saved corpus token counts unreadable; counting again");
            None
        }
    }
}

/// Saves the counts under `key`, whole or not at all (an [`AtomicFile`]:
/// written aside, then renamed over the old file).
fn save_counts(path: &Path, key: &str, weights: &TokenWeights) {
    let Some(counts) = weights.to_counts_text() else {
        tracing::debug!("a corpus word holds a tab or line break; token counts not saved");
        return;
    };
    let saved = AtomicFile::create(path).and_then(|mut file| {
        file.write_all(format!("{key}\n{counts}").as_bytes())
            .map_err(|source| ExportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        file.commit()
    });
    if let Err(error) = saved {
        tracing::warn!(%error, "could not save the corpus token counts");
    }
}

fn count_documents(columns: &[ArrayRef]) -> TokenWeights {
    // Duty clauses repeat (one template in every district's 三定): each
    // distinct text is tokenised once and counted as often as it occurs.
    let mut occurrences: HashMap<&str, u64> = HashMap::new();
    for column in columns {
        let texts = column.as_string::<i32>();
        for row in (0..texts.len()).filter(|&row| texts.is_valid(row)) {
            *occurrences.entry(texts.value(row)).or_default() += 1;
        }
    }
    let distinct: Vec<(&str, u64)> = occurrences.into_iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
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

    use super::SAVED_COUNTS_FILE;
    use crate::engine::Engine;
    use crate::session::{Output, Prepared, Session};
    use crate::{SessionIdentity, Settings};

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

        // More rows, then a delete: counted again each time.
        let second = ["组织实施全市档案资料收集整理工作", "负责全市档案馆建设"];
        writer.run_one(&insert(&second, 5)).await.unwrap();
        let all: Vec<&str> = first.iter().chain(&second).copied().collect();
        // A statement calling only similar_pairs counts again too.
        let pair_1_4 = "SELECT score FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.1) \
            WHERE left_id = 1 AND right_id = 4";
        assert_eq!(score(&reader, pair_1_4).await, expected(&all).await);
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

    #[tokio::test]
    async fn counts_are_saved_read_back_and_counted_again_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        add_duty(location, 1, "负责全市档案工作").await;
        add_duty(location, 2, "組織實施交通管理").await;
        let counted = Engine::open(location).await.unwrap().text_weights();
        assert_eq!(counted.documents(), 2);
        let saved = dir.path().join(SAVED_COUNTS_FILE);
        let text = std::fs::read_to_string(&saved).unwrap();
        assert_eq!(
            Engine::open(location).await.unwrap().text_weights(),
            counted
        );
        // What the next open takes is the saved file: an edit there shows.
        std::fs::write(&saved, text.replacen("documents\t2", "documents\t7", 1)).unwrap();
        assert_eq!(documents_at_open(location).await, 7);
        // A write makes a new table version: counted again and saved again.
        add_duty(location, 3, "负责全市价格工作").await;
        assert_eq!(documents_at_open(location).await, 3);
        let text = std::fs::read_to_string(&saved).unwrap();
        assert!(text.contains("\ndocuments\t3\n"), "{text}");
        // Unreadable counts are counted again, not an error.
        std::fs::write(&saved, text.replacen("documents\t3", "documents\tthree", 1)).unwrap();
        assert_eq!(documents_at_open(location).await, 3);
        assert!(std::fs::read_to_string(&saved)
            .unwrap()
            .contains("\ndocuments\t3\n"));
    }
}
