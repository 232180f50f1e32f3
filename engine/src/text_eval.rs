//! `bianzhi eval-text`: how well the text functions do on a labelled set of
//! real duty texts (the layout of `/work/shared/eval`, see its README):
//! `duties.tsv` (the items), `pairs.tsv` (item pairs labelled 0 unrelated, 1
//! related, 2 the same function) and `queries.tsv` (search queries with the
//! items that must be in the top 10 and others also relevant).
//!
//! Pair measures — `func_similarity`, `text_sim(a, b, 'bigram_jaccard')` and
//! pg_trgm's `similarity` — are computed through SQL, as users call them;
//! `func_similarity` weighs tokens by document frequency over `duties.tsv`
//! alone (the labels measure, they do not train). For each measure and for
//! two readings of the labels (label ≥ 1 positive; label = 2 positive) the
//! report gives precision, recall and F1 at the threshold with the best F1
//! and the average precision (area under the precision-recall curve, the
//! step-wise sum Σ (Rₙ − Rₙ₋₁) Pₙ over descending thresholds).
//!
//! `func_search` is evaluated on an index of `duties.tsv`: recall@10 of the
//! must-find items and nDCG@10 with gain 2 for a must-find item and 1 for an
//! also-relevant one, averaged over the queries.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bianzhi_udfs::text::{func_similarity_with_weights, SearchIndex, TokenWeights};
use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// The measures compared on the pairs: (name in the report, SQL expression
/// over columns `a` and `b`).
pub const PAIR_MEASURES: &[(&str, &str)] = &[
    ("func_similarity", "func_similarity(a, b)"),
    (
        "text_sim bigram_jaccard",
        "text_sim(a, b, 'bigram_jaccard')",
    ),
    ("similarity (pg_trgm)", "CAST(similarity(a, b) AS DOUBLE)"),
];

/// Rank cut-off of the search metrics.
pub const SEARCH_CUTOFF: usize = 10;

/// One measure under one reading of the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct PairMetrics {
    pub measure: String,
    /// "label ≥ 1" or "label = 2".
    pub positives: &'static str,
    pub positive_pairs: usize,
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub average_precision: f64,
}

/// One search query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryMetrics {
    pub query_id: String,
    pub query: String,
    pub recall: f64,
    pub ndcg: f64,
}

/// Everything `bianzhi eval-text` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub eval_dir: PathBuf,
    pub duties: usize,
    pub pairs: usize,
    pub pair_metrics: Vec<PairMetrics>,
    pub queries: Vec<QueryMetrics>,
}

impl EvalReport {
    pub fn mean_recall(&self) -> f64 {
        mean(self.queries.iter().map(|query| query.recall))
    }

    pub fn mean_ndcg(&self) -> f64 {
        mean(self.queries.iter().map(|query| query.ndcg))
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

/// Runs the whole evaluation over the files in `eval_dir`.
pub async fn evaluate(eval_dir: &Path) -> Result<EvalReport> {
    let duties = read_tsv(&eval_dir.join("duties.tsv"))?;
    let pairs = read_tsv(&eval_dir.join("pairs.tsv"))?;
    let queries = read_tsv(&eval_dir.join("queries.tsv"))?;

    let mut ids = Vec::with_capacity(duties.rows.len());
    let mut texts = Vec::with_capacity(duties.rows.len());
    for row in 0..duties.rows.len() {
        ids.push(format!(
            "{}:{}",
            duties.get(row, "dept_id")?,
            duties.get(row, "seq")?
        ));
        texts.push(duties.get(row, "duty_text")?.to_string());
    }
    let text_of: HashMap<&str, &str> = ids
        .iter()
        .map(String::as_str)
        .zip(texts.iter().map(String::as_str))
        .collect();

    // Pairs → (a, b, label).
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut labels = Vec::new();
    for row in 0..pairs.rows.len() {
        let left_id = format!(
            "{}:{}",
            pairs.get(row, "left_dept")?,
            pairs.get(row, "left_seq")?
        );
        let right_id = format!(
            "{}:{}",
            pairs.get(row, "right_dept")?,
            pairs.get(row, "right_seq")?
        );
        let (Some(a), Some(b)) = (
            text_of.get(left_id.as_str()),
            text_of.get(right_id.as_str()),
        ) else {
            return Err(Error::Eval(format!(
                "pairs.tsv row {}: {left_id} or {right_id} is not in duties.tsv",
                row + 2
            )));
        };
        let label: i64 = pairs
            .get(row, "label")?
            .parse()
            .map_err(|_| Error::Eval(format!("pairs.tsv row {}: bad label", row + 2)))?;
        left.push(a.to_string());
        right.push(b.to_string());
        labels.push(label);
    }

    let weights = Arc::new(TokenWeights::from_texts(&texts));
    let scores = score_pairs(weights, left, right, &labels).await?;
    let mut pair_metrics = Vec::new();
    for (measure, values) in PAIR_MEASURES.iter().zip(&scores) {
        for (positives, is_positive) in [
            ("label ≥ 1", (|label: i64| label >= 1) as fn(i64) -> bool),
            ("label = 2", |label: i64| label == 2),
        ] {
            let truth: Vec<bool> = labels.iter().map(|&label| is_positive(label)).collect();
            let curve = PrCurve::new(values, &truth);
            pair_metrics.push(PairMetrics {
                measure: measure.0.to_string(),
                positives,
                positive_pairs: truth.iter().filter(|&&t| t).count(),
                threshold: curve.best.threshold,
                precision: curve.best.precision,
                recall: curve.best.recall,
                f1: curve.best.f1,
                average_precision: curve.average_precision,
            });
        }
    }

    let index = SearchIndex::from_texts(&texts);
    let mut query_metrics = Vec::new();
    for row in 0..queries.rows.len() {
        let query = queries.get(row, "query")?;
        let must = id_list(queries.get(row, "must_top10")?);
        let also = id_list(queries.get(row, "also_relevant")?);
        let ranked: Vec<&str> = index
            .search(query, SEARCH_CUTOFF)
            .iter()
            .map(|hit| ids[hit.document].as_str())
            .collect();
        query_metrics.push(QueryMetrics {
            query_id: queries.get(row, "query_id")?.to_string(),
            query: query.to_string(),
            recall: recall_at(&ranked, &must, SEARCH_CUTOFF),
            ndcg: ndcg_at(&ranked, &must, &also, SEARCH_CUTOFF),
        });
    }

    Ok(EvalReport {
        eval_dir: eval_dir.to_path_buf(),
        duties: texts.len(),
        pairs: labels.len(),
        pair_metrics,
        queries: query_metrics,
    })
}

/// The measures of [`PAIR_MEASURES`] for every pair, through SQL.
async fn score_pairs(
    weights: Arc<TokenWeights>,
    left: Vec<String>,
    right: Vec<String>,
    labels: &[i64],
) -> Result<Vec<Vec<f64>>> {
    let mut ctx = SessionContext::new();
    bianzhi_udfs::register_all(&mut ctx)?;
    ctx.register_udf(func_similarity_with_weights(weights));
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("a", DataType::Utf8, false),
        Field::new("b", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..labels.len() as i64)),
            Arc::new(StringArray::from(left)),
            Arc::new(StringArray::from(right)),
        ],
    )?;
    ctx.register_table(
        "pairs",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let expressions: Vec<&str> = PAIR_MEASURES.iter().map(|(_, sql)| *sql).collect();
    let sql = format!("SELECT {} FROM pairs ORDER BY n", expressions.join(", "));
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut scores = vec![Vec::with_capacity(labels.len()); PAIR_MEASURES.len()];
    for batch in batches {
        for (column, values) in batch.columns().iter().zip(scores.iter_mut()) {
            let column = cast(column, &DataType::Float64)?;
            let column = column.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            for row in 0..column.len() {
                values.push(if column.is_valid(row) {
                    column.value(row)
                } else {
                    0.0
                });
            }
        }
    }
    Ok(scores)
}

/// Precision, recall and F1 when `score ≥ threshold` is called positive.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OperatingPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The precision-recall curve of scores against binary truth, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// The threshold with the best F1 (the highest such threshold on ties).
    pub best: OperatingPoint,
    /// Σ (Rₙ − Rₙ₋₁) Pₙ over the distinct thresholds, descending.
    pub average_precision: f64,
}

impl PrCurve {
    pub fn new(scores: &[f64], truth: &[bool]) -> Self {
        let positives = truth.iter().filter(|&&t| t).count();
        let mut order: Vec<usize> = (0..scores.len().min(truth.len())).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut best = OperatingPoint::default();
        let mut average_precision = 0.0;
        let (mut true_positives, mut called, mut previous_recall) = (0usize, 0usize, 0.0);
        let mut position = 0;
        while position < order.len() {
            // Every pair tied at this score is called positive together.
            let threshold = scores[order[position]];
            while position < order.len() && scores[order[position]] == threshold {
                called += 1;
                if truth[order[position]] {
                    true_positives += 1;
                }
                position += 1;
            }
            if positives == 0 {
                continue;
            }
            let precision = true_positives as f64 / called as f64;
            let recall = true_positives as f64 / positives as f64;
            let f1 = if true_positives == 0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            average_precision += (recall - previous_recall) * precision;
            previous_recall = recall;
            if f1 > best.f1 {
                best = OperatingPoint {
                    threshold,
                    precision,
                    recall,
                    f1,
                };
            }
        }
        Self {
            best,
            average_precision,
        }
    }
}

/// Share of `must` found among the first `cutoff` of `ranked`.
pub fn recall_at(ranked: &[&str], must: &[String], cutoff: usize) -> f64 {
    if must.is_empty() {
        return 1.0;
    }
    let top: HashSet<&str> = ranked.iter().take(cutoff).copied().collect();
    must.iter().filter(|id| top.contains(id.as_str())).count() as f64 / must.len() as f64
}

/// nDCG at `cutoff`, gain 2 for an item of `must`, 1 for one of `also`,
/// discount log2(rank + 1).
pub fn ndcg_at(ranked: &[&str], must: &[String], also: &[String], cutoff: usize) -> f64 {
    let gain = |id: &str| {
        if must.iter().any(|m| m == id) {
            2.0
        } else if also.iter().any(|a| a == id) {
            1.0
        } else {
            0.0
        }
    };
    let discount = |rank: usize| ((rank + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(cutoff)
        .enumerate()
        .map(|(rank, id)| gain(id) / discount(rank))
        .sum();
    let mut ideal: Vec<f64> = must
        .iter()
        .map(|_| 2.0)
        .chain(also.iter().map(|_| 1.0))
        .collect();
    ideal.truncate(cutoff);
    let ideal_dcg: f64 = ideal
        .iter()
        .enumerate()
        .map(|(rank, g)| g / discount(rank))
        .sum();
    if ideal_dcg == 0.0 {
        0.0
    } else {
        dcg / ideal_dcg
    }
}

fn id_list(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

/// A tab-separated file with a header line.
struct Tsv {
    path: PathBuf,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Tsv {
    fn get(&self, row: usize, column: &str) -> Result<&str> {
        let index = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| {
                Error::Eval(format!("{} has no column {column}", self.path.display()))
            })?;
        Ok(self.rows[row].get(index).map_or("", String::as_str))
    }
}

fn read_tsv(path: &Path) -> Result<Tsv> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Eval(format!("reading {}: {e}", path.display())))?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let columns = lines
        .next()
        .map(|header| header.split('\t').map(str::to_string).collect())
        .unwrap_or_default();
    let rows = lines
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect();
    Ok(Tsv {
        path: path.to_path_buf(),
        columns,
        rows,
    })
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Evaluation set {}: {} duty items, {} labelled pairs, {} queries",
            self.eval_dir.display(),
            self.duties,
            self.pairs,
            self.queries.len()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| measure | positives | best threshold | precision | recall | F1 | PR-AUC (AP) |"
        )?;
        writeln!(f, "|---|---|---:|---:|---:|---:|---:|")?;
        for m in &self.pair_metrics {
            writeln!(
                f,
                "| {} | {} ({}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                m.measure,
                m.positives,
                m.positive_pairs,
                m.threshold,
                m.precision,
                m.recall,
                m.f1,
                m.average_precision
            )?;
        }
        writeln!(f)?;
        writeln!(f, "| query | text | recall@10 | nDCG@10 |")?;
        writeln!(f, "|---|---|---:|---:|")?;
        for q in &self.queries {
            writeln!(
                f,
                "| {} | {} | {:.3} | {:.3} |",
                q.query_id, q.query, q.recall, q.ndcg
            )?;
        }
        writeln!(
            f,
            "| mean | | {:.3} | {:.3} |",
            self.mean_recall(),
            self.mean_ndcg()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_curve_of_a_perfect_and_a_mixed_ranking() {
        let perfect = PrCurve::new(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]);
        assert_eq!(perfect.average_precision, 1.0);
        assert_eq!(perfect.best.f1, 1.0);
        assert_eq!(perfect.best.threshold, 0.8);
        // Ranked: +, -, +, -: AP = 0.5·1 + 0.5·(2/3).
        let mixed = PrCurve::new(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]);
        assert!((mixed.average_precision - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // Best F1: threshold 0.7, P = 2/3, R = 1, F1 = 0.8.
        assert!((mixed.best.f1 - 0.8).abs() < 1e-12);
        assert_eq!(mixed.best.threshold, 0.7);
        // Ties are called together: all at 0.5 → P = 0.5, R = 1.
        let tied = PrCurve::new(&[0.5, 0.5], &[true, false]);
        assert_eq!(tied.average_precision, 0.5);
    }

    #[test]
    fn recall_and_ndcg() {
        let must = vec!["A".to_string(), "B".to_string()];
        let also = vec!["C".to_string()];
        assert_eq!(recall_at(&["A", "X", "B"], &must, 10), 1.0);
        assert_eq!(recall_at(&["A", "X", "B"], &must, 2), 0.5);
        assert_eq!(ndcg_at(&["A", "B", "C"], &must, &also, 10), 1.0);
        let swapped = ndcg_at(&["C", "B", "A"], &must, &also, 10);
        assert!(swapped < 1.0 && swapped > 0.5, "{swapped}");
        assert_eq!(ndcg_at(&["X"], &must, &also, 10), 0.0);
    }

    #[tokio::test]
    async fn evaluates_a_small_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("duties.tsv"),
            "dept_id\tdept_name\tlevel\tsource_url\tseq\tduty_text\n\
             A\t甲\tcity\tu\t1\t负责全市道路交通安全管理工作。\n\
             A\t甲\tcity\tu\t2\t负责全市档案监督管理工作。\n\
             B\t乙\tcity\tu\t1\t負責全區道路交通安全管理。\n\
             B\t乙\tcity\tu\t2\t负责全区价格监督管理工作。\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("pairs.tsv"),
            "left_dept\tleft_seq\tright_dept\tright_seq\tlabel\treason\n\
             A\t1\tB\t1\t2\tsame\n\
             A\t2\tB\t2\t0\tdifferent object\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("queries.tsv"),
            "query_id\tquery\tmust_top10\talso_relevant\tnote\n\
             Q1\t道路交通\tA:1,B:1\t\t\n",
        )
        .unwrap();
        let report = evaluate(dir.path()).await.unwrap();
        assert_eq!((report.duties, report.pairs), (4, 2));
        assert_eq!(report.pair_metrics.len(), 2 * PAIR_MEASURES.len());
        let func = &report.pair_metrics[0];
        assert_eq!(func.measure, "func_similarity");
        assert_eq!(func.average_precision, 1.0);
        assert_eq!(report.mean_recall(), 1.0);
        assert_eq!(report.mean_ndcg(), 1.0);
        let printed = report.to_string();
        assert!(
            printed.contains("| func_similarity | label ≥ 1 (1) |"),
            "{printed}"
        );
    }
}
