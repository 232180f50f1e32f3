//! `similar_pairs(...)`: the all-pairs similarity join of duty texts, a table
//! function returning every pair whose `func_similarity` reaches a threshold,
//! found with prefix and length filtering instead of comparing every pair
//! (the kernel is [`all_pairs`]).

mod all_pairs;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{exec_datafusion_err, plan_err, Result, ScalarValue, TableReference};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Documentation, Expr, TableType};
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion_macros::user_doc;

pub use all_pairs::{
    similar_pairs, similar_pairs_with_memo, JoinOptions, PairRow, PairTokenMemo, SavedPairTokens,
    SavedTokensError, ScoredPair,
};

use super::token_weights::SharedTokenWeights;

const USAGE: &str = "similar_pairs(table, id_column, text_column, threshold [, 'top_k => k'] \
[, 'partition_by => column']) or similar_pairs(left_table, left_id, left_text, right_table, \
right_id, right_text, threshold [, 'top_k => k'] [, 'partition_by => left_column[, right_column]'])";

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Table function: every pair of duty texts whose `func_similarity` is at least \
`threshold`, as rows (left_id Int64, right_id Int64, score Float64). Exact — the same pairs and \
bit-for-bit the same scores as comparing every pair with `func_similarity` (with the same corpus \
weights) — but it does not compare every pair: tokens are put in one order (rarest first), each \
text is indexed under the few leading tokens whose weight could still reach the threshold \
(prefix filter), only texts of compatible norms are compared (length filter), and the candidates \
are scored exactly; on all cores. \
Self-join form: `similar_pairs(table, id_column, text_column, threshold)` gives each pair of rows \
once, with left_id < right_id (rows with equal ids are not paired). Two-table form: \
`similar_pairs(left_table, left_id, left_text, right_table, right_id, right_text, threshold)` \
gives every (left row, right row) pair. Options follow as string arguments in any order: \
`'top_k => k'` keeps the k best matches of each left id (ties by smaller right id); in the \
self-join it gives each row's k best neighbours, so a pair may appear in both orientations. \
`'partition_by => column'` pairs only rows with equal values of that column (NULL pairs with \
nothing); the two-table form takes `'partition_by => left_column, right_column'` or one name for \
both. Table and column names are string literals: table names as in SQL (unquoted parts \
lowercased, `'public.org_duty'`), column names exactly. Ids are cast to Int64; rows with a NULL \
id or text are skipped. The tables are read when the query runs. Rows come ordered by left_id, \
then by decreasing score with top_k, then by right_id.",
    syntax_example = "similar_pairs('org_duty', 'duty_id', 'duty_text', 0.8, 'top_k => 5')",
    sql_example = r#"```sql
> SELECT p.left_id, p.right_id, round(p.score, 3) AS score
  FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.8, 'partition_by => org_id') p;
```"#,
    argument(
        name = "table",
        description = "Table (or view) to read, as a string: `'org_duty'`."
    ),
    argument(
        name = "id_column",
        description = "Column identifying a row, cast to Int64."
    ),
    argument(name = "text_column", description = "Column holding the text."),
    argument(
        name = "threshold",
        description = "Least `func_similarity` of a returned pair, a number in (0, 1]."
    ),
    argument(
        name = "options",
        description = "Optional strings `'top_k => k'` (k ≥ 1) and `'partition_by => column'`."
    )
)]
#[derive(Debug)]
pub struct SimilarPairsFunc {
    weights: Arc<SharedTokenWeights>,
    memo: Arc<PairTokenMemo>,
}

/// The `similar_pairs` table function scoring with the weights `weights`
/// holds when a call is scanned (the corpus weights `func_similarity` is
/// registered with), keeping tokenised texts in `memo` for later calls
/// (share one memo among an engine's sessions), for `register_udtf`.
pub fn similar_pairs_function(
    weights: Arc<SharedTokenWeights>,
    memo: Arc<PairTokenMemo>,
) -> Arc<dyn TableFunctionImpl> {
    Arc::new(SimilarPairsFunc::new(weights, memo))
}

impl SimilarPairsFunc {
    pub fn new(weights: Arc<SharedTokenWeights>, memo: Arc<PairTokenMemo>) -> Self {
        Self { weights, memo }
    }

    pub fn name(&self) -> &str {
        "similar_pairs"
    }

    pub fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

impl TableFunctionImpl for SimilarPairsFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let spec = PairSpec::parse(args.exprs())?;
        Ok(Arc::new(SimilarPairsTable {
            spec,
            weights: Arc::clone(&self.weights),
            memo: Arc::clone(&self.memo),
            schema: pairs_schema(),
        }))
    }
}

/// (left_id, right_id, score).
fn pairs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("left_id", DataType::Int64, false),
        Field::new("right_id", DataType::Int64, false),
        Field::new("score", DataType::Float64, false),
    ]))
}

/// Where one side's rows come from.
#[derive(Debug, Clone, PartialEq)]
struct SideSpec {
    table: TableReference,
    id: String,
    text: String,
    partition: Option<String>,
}

impl SideSpec {
    /// The query reading this side: the columns as they are, cast in Rust.
    fn sql(&self) -> String {
        let mut columns = vec![quote_identifier(&self.id), quote_identifier(&self.text)];
        if let Some(partition) = &self.partition {
            columns.push(quote_identifier(partition));
        }
        format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            self.table.to_quoted_string()
        )
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A validated call.
#[derive(Debug, Clone, PartialEq)]
struct PairSpec {
    left: SideSpec,
    right: Option<SideSpec>,
    threshold: f64,
    top_k: Option<usize>,
}

impl PairSpec {
    fn parse(exprs: &[Expr]) -> Result<Self> {
        let is_number = |index: usize| exprs.get(index).is_some_and(|e| number(e).is_some());
        let (names, threshold_index) = if is_number(3) {
            (&exprs[..3], 3)
        } else if is_number(6) {
            (&exprs[..6], 6)
        } else {
            return plan_err!("similar_pairs: expected {USAGE}");
        };
        let names = names
            .iter()
            .map(|expr| match string(expr) {
                Some(name) if !name.trim().is_empty() => Ok(name),
                _ => plan_err!(
                    "similar_pairs: table and column names must be string literals, got {expr}"
                ),
            })
            .collect::<Result<Vec<String>>>()?;
        let threshold = number(&exprs[threshold_index]).unwrap_or(f64::NAN);
        if !(threshold > 0.0 && threshold <= 1.0) {
            return plan_err!("similar_pairs: threshold must be in (0, 1], got {threshold}");
        }
        let mut top_k = None;
        let mut partition: Option<Vec<String>> = None;
        for expr in &exprs[threshold_index + 1..] {
            let option = string(expr).unwrap_or_default();
            let Some((key, value)) = option.split_once("=>") else {
                return plan_err!(
                    "similar_pairs: options are strings 'top_k => k' or 'partition_by => column', got {expr}"
                );
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "top_k" if top_k.is_none() => match value.trim().parse::<usize>() {
                    Ok(k) if k >= 1 => top_k = Some(k),
                    _ => {
                        return plan_err!(
                            "similar_pairs: top_k must be a positive integer, got '{}'",
                            value.trim()
                        )
                    }
                },
                "partition_by" if partition.is_none() => {
                    let columns: Vec<String> =
                        value.split(',').map(|c| c.trim().to_string()).collect();
                    let expected = if threshold_index == 3 { 1..=1 } else { 1..=2 };
                    if !expected.contains(&columns.len()) || columns.iter().any(String::is_empty)
                    {
                        return plan_err!(
                            "similar_pairs: partition_by takes {} column name(s), got '{}'",
                            if threshold_index == 3 { "one" } else { "one or two" },
                            value.trim()
                        );
                    }
                    partition = Some(columns);
                }
                other => {
                    return plan_err!(
                        "similar_pairs: unknown or repeated option '{other}'; options are top_k, partition_by"
                    )
                }
            }
        }
        let left_partition = partition.as_ref().map(|p| p[0].clone());
        let right_partition = partition.as_ref().map(|p| p[p.len() - 1].clone());
        let side = |names: &[String], partition: Option<String>| SideSpec {
            table: TableReference::parse_str(&names[0]),
            id: names[1].clone(),
            text: names[2].clone(),
            partition,
        };
        Ok(Self {
            left: side(&names[..3], left_partition),
            right: (names.len() == 6).then(|| side(&names[3..], right_partition)),
            threshold,
            top_k,
        })
    }
}

/// The value of a string literal (possibly cast, as `'org_duty'::text`).
fn string(expr: &Expr) -> Option<String> {
    match literal(expr)? {
        ScalarValue::Utf8(Some(value))
        | ScalarValue::LargeUtf8(Some(value))
        | ScalarValue::Utf8View(Some(value)) => Some(value),
        _ => None,
    }
}

/// The value of a numeric literal (integer, decimal or float).
fn number(expr: &Expr) -> Option<f64> {
    let value = literal(expr)?;
    if value.is_null() || !value.data_type().is_numeric() {
        return None;
    }
    match value.cast_to(&DataType::Float64).ok()? {
        ScalarValue::Float64(value) => value,
        _ => None,
    }
}

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

/// The result of one `similar_pairs` call: computed when scanned.
#[derive(Debug)]
struct SimilarPairsTable {
    spec: PairSpec,
    weights: Arc<SharedTokenWeights>,
    memo: Arc<PairTokenMemo>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for SimilarPairsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = session
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| exec_datafusion_err!("similar_pairs needs a SessionState session"))?;
        let left = read_side(state, &self.spec.left).await?;
        let right = match &self.spec.right {
            Some(side) => Some(read_side(state, side).await?),
            None => None,
        };
        let weights = self.weights.current();
        let options = JoinOptions {
            threshold: self.spec.threshold,
            top_k: self.spec.top_k,
            threads: state.config().target_partitions(),
        };
        let memo = Arc::clone(&self.memo);
        let pairs = SpawnedTask::spawn_blocking(move || {
            let mut groups = HashMap::new();
            let left_rows = left.rows(&mut groups);
            let right_rows = right.as_ref().map(|right| right.rows(&mut groups));
            similar_pairs_with_memo(&left_rows, right_rows.as_deref(), &weights, &options, &memo)
        })
        .join_unwind()
        .await
        .map_err(|e| exec_datafusion_err!("similar_pairs: {e}"))?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                pairs.iter().map(|p| p.left_id),
            )),
            Arc::new(Int64Array::from_iter_values(
                pairs.iter().map(|p| p.right_id),
            )),
            Arc::new(Float64Array::from_iter_values(
                pairs.iter().map(|p| p.score),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}

/// One side's rows: ids, texts and partition values as arrays.
struct SideRows {
    ids: Vec<Int64Array>,
    texts: Vec<ArrayRef>,
    partitions: Vec<Option<ArrayRef>>,
}

impl SideRows {
    /// The rows with an id, a text and (when partitioned) a partition value;
    /// partition values numbered through `groups`, shared by both sides.
    fn rows<'a>(&'a self, groups: &mut HashMap<String, u32>) -> Vec<PairRow<'a>> {
        let mut rows = Vec::new();
        for ((ids, texts), partitions) in self.ids.iter().zip(&self.texts).zip(&self.partitions) {
            let texts = texts.as_string::<i32>();
            let partitions = partitions.as_ref().map(|p| p.as_string::<i32>());
            for row in 0..ids.len() {
                if ids.is_null(row) || texts.is_null(row) {
                    continue;
                }
                let group = match partitions {
                    None => 0,
                    Some(values) if values.is_null(row) => continue,
                    Some(values) => {
                        let next = groups.len() as u32;
                        *groups.entry(values.value(row).to_string()).or_insert(next)
                    }
                };
                rows.push(PairRow {
                    id: ids.value(row),
                    group,
                    text: texts.value(row),
                });
            }
        }
        rows
    }
}

/// Runs the side's query through the calling session.
async fn read_side(state: &SessionState, side: &SideSpec) -> Result<SideRows> {
    let plan = state.create_logical_plan(&side.sql()).await?;
    let plan = state.create_physical_plan(&plan).await?;
    let batches = collect(plan, state.task_ctx()).await?;
    let mut rows = SideRows {
        ids: Vec::new(),
        texts: Vec::new(),
        partitions: Vec::new(),
    };
    for batch in batches {
        let ids = cast(batch.column(0), &DataType::Int64)?;
        rows.ids.push(ids.as_primitive::<Int64Type>().clone());
        rows.texts.push(cast(batch.column(1), &DataType::Utf8)?);
        rows.partitions.push(match side.partition {
            Some(_) => Some(cast(batch.column(2), &DataType::Utf8)?),
            None => None,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::lit;

    fn parse(args: Vec<Expr>) -> Result<PairSpec> {
        PairSpec::parse(&args)
    }

    #[test]
    fn self_join_arguments() -> Result<()> {
        let spec = parse(vec![
            lit("org_duty"),
            lit("duty_id"),
            lit("duty_text"),
            lit(0.5),
            lit("partition_by => org_id"),
            lit("TOP_K=>3"),
        ])?;
        assert_eq!(spec.left.table, TableReference::bare("org_duty"));
        assert_eq!(spec.left.partition.as_deref(), Some("org_id"));
        assert_eq!(spec.right, None);
        assert_eq!(spec.threshold, 0.5);
        assert_eq!(spec.top_k, Some(3));
        assert_eq!(
            spec.left.sql(),
            r#"SELECT "duty_id", "duty_text", "org_id" FROM org_duty"#
        );
        Ok(())
    }

    #[test]
    fn two_table_arguments() -> Result<()> {
        let spec = parse(vec![
            lit("public.org_duty"),
            lit("duty_id"),
            lit("duty_text"),
            lit("power_item"),
            lit("item_id"),
            lit("item_name"),
            lit(1),
            lit("partition_by => org_id, owner_id"),
        ])?;
        assert_eq!(
            spec.left.table,
            TableReference::partial("public", "org_duty")
        );
        let right = spec.right.expect("two tables");
        assert_eq!(right.text, "item_name");
        assert_eq!(right.partition.as_deref(), Some("owner_id"));
        assert_eq!(spec.left.partition.as_deref(), Some("org_id"));
        assert_eq!(spec.threshold, 1.0);
        Ok(())
    }

    #[test]
    fn bad_arguments_are_plan_errors() {
        let base = || vec![lit("t"), lit("id"), lit("text")];
        let with = |extra: Vec<Expr>| {
            let mut args = base();
            args.extend(extra);
            parse(args).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(with(vec![])
            .unwrap_err()
            .contains("expected similar_pairs("));
        assert!(with(vec![lit(0.0)]).unwrap_err().contains("(0, 1]"));
        assert!(with(vec![lit(1.5)]).unwrap_err().contains("(0, 1]"));
        assert!(with(vec![lit(0.5), lit("top_k => 0")])
            .unwrap_err()
            .contains("positive"));
        assert!(with(vec![lit(0.5), lit("limit => 3")])
            .unwrap_err()
            .contains("unknown"));
        assert!(with(vec![lit(0.5), lit("partition_by => a, b")])
            .unwrap_err()
            .contains("one column"));
        assert!(with(vec![lit(0.5), lit(3)])
            .unwrap_err()
            .contains("options"));
        let mut args = vec![lit(1), lit("id"), lit("text"), lit(0.5)];
        assert!(parse(args.clone())
            .unwrap_err()
            .to_string()
            .contains("string literals"));
        args[0] = lit("t");
        assert!(parse(args).is_ok());
    }

    #[test]
    fn documented() {
        let function = SimilarPairsFunc::new(Arc::default(), Arc::default());
        assert_eq!(function.name(), "similar_pairs");
        assert!(function.documentation().is_some());
    }
}
