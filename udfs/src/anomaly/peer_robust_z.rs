//! `peer_robust_z(x [, leave_one_out])`: modified z-score of each row
//! against its peers, the whole window partition.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{
    ExpressionArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};
use datafusion::physical_expr::PhysicalExpr;
use datafusion_macros::user_doc;

use super::support::{
    boolean_argument, constant_flag, median_and_mad_of_sorted, modified_z, nullable_field,
    series_expression, series_of, signature_with_optional, sort_values,
};
use crate::allocation::support::numeric_as_float64;

const NAME: &str = "peer_robust_z";

/// Fewest values the median and MAD are taken from.
const MIN_PEERS: usize = 3;

#[user_doc(
    doc_section(label = "Anomaly Functions"),
    description = "Window function: the modified z-score `0.6745 × (x − median) / MAD` of each \
row against its peers — the non-NULL values of its `PARTITION BY` group (e.g. units of the \
same tier and sector at one date), as Float64. `MAD = median(|v − median|)`; the middle of an \
even count is the mean of the two middle values.

With `leave_one_out = false` (the default) the median and MAD are those of the whole group, \
the row itself included. With `leave_one_out = true` they exclude the current row, so an \
extreme unit in a small group cannot pull the centre and spread towards itself (each row gets \
its own median and MAD; O(n log n) per partition all the same).

The result is NULL when `x` is NULL, when fewer than 3 values form the median and MAD (with \
`leave_one_out`: fewer than 3 *other* non-NULL rows), or when that MAD is 0 (most peers equal, \
so no scale). NaN and ±Infinity count as NULL. An `ORDER BY` and the window frame are ignored. \
`leave_one_out` must be a boolean literal.",
    syntax_example = "peer_robust_z(x [, leave_one_out]) OVER (PARTITION BY peers)",
    sql_example = r#"```sql
-- unit_staff(unit, tier, staff): tier 'county', staff 10, 12, 11, 13, 40
> SELECT unit, staff,
         peer_robust_z(staff) OVER (PARTITION BY tier) AS z,
         peer_robust_z(staff, true) OVER (PARTITION BY tier) AS z_others
  FROM unit_staff ORDER BY unit;
+------+-------+---------+----------+
| unit | staff | z       | z_others |
+------+-------+---------+----------+
| A    | 10    | -1.349  | -1.68625 |
| B    | 12    | 0.0     | 0.0      |
| C    | 11    | -0.6745 | -0.6745  |
| D    | 13    | 0.6745  | 1.01175  |
| E    | 40    | 18.886  | 19.22325 |
+------+-------+---------+----------+
```"#,
    argument(name = "x", description = "Values of any numeric type."),
    argument(
        name = "leave_one_out",
        description = "Boolean literal: exclude the current row from its own median and MAD. Default false."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PeerRobustZFunc {
    signature: Signature,
}

impl Default for PeerRobustZFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerRobustZFunc {
    pub fn new() -> Self {
        Self {
            signature: signature_with_optional(
                vec![numeric_as_float64()],
                vec![boolean_argument()],
            ),
        }
    }
}

impl WindowUDFImpl for PeerRobustZFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn expressions(&self, expr_args: ExpressionArgs) -> Vec<Arc<dyn PhysicalExpr>> {
        series_expression(expr_args)
    }

    fn partition_evaluator(
        &self,
        partition_evaluator_args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let leave_one_out = constant_flag(
            NAME,
            "leave_one_out",
            partition_evaluator_args.input_exprs(),
            1,
            false,
        )?;
        Ok(Box::new(PeerRobustZEvaluator { leave_one_out }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(nullable_field(&field_args, DataType::Float64))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug)]
struct PeerRobustZEvaluator {
    leave_one_out: bool,
}

impl PartitionEvaluator for PeerRobustZEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        let values = series_of(NAME, values)?;
        Ok(Arc::new(Float64Array::from(peer_robust_z(
            &values,
            self.leave_one_out,
        ))))
    }
}

/// Modified z-score of every row against all non-NULL values of the group,
/// or against all others with `leave_one_out`.
pub(crate) fn peer_robust_z(values: &[Option<f64>], leave_one_out: bool) -> Vec<Option<f64>> {
    let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
    sort_values(&mut sorted);
    if leave_one_out {
        return leave_one_out_scores(values, &sorted);
    }
    let mut deviations = Vec::with_capacity(sorted.len());
    let centre = (sorted.len() >= MIN_PEERS)
        .then(|| median_and_mad_of_sorted(&sorted, &mut deviations))
        .flatten();
    let Some((median, mad)) = centre else {
        return vec![None; values.len()];
    };
    values
        .iter()
        .map(|value| modified_z((*value)?, median, mad))
        .collect()
}

/// Median of sorted values without the one at `removed`; same arithmetic as
/// `median_of_sorted`, so results equal recomputing without the row.
fn median_without(sorted: &[f64], removed: usize) -> Option<f64> {
    let remaining = sorted.len().checked_sub(1).filter(|count| *count > 0)?;
    let at = |index: usize| {
        let index = if index < removed { index } else { index + 1 };
        sorted.get(index).copied()
    };
    let low = at((remaining - 1) / 2)?;
    let high = at(remaining / 2)?;
    Some(low + (high - low) * 0.5)
}

/// Absolute deviations of all sorted values from one median, sorted, and
/// where each value's deviation ended up.
struct DeviationsFrom {
    median: f64,
    sorted: Vec<f64>,
    rank_of_value: Vec<usize>,
}

impl DeviationsFrom {
    fn new(values: &[f64], median: f64) -> Self {
        let mut order: Vec<(f64, usize)> = values
            .iter()
            .enumerate()
            .map(|(index, value)| ((value - median).abs(), index))
            .collect();
        order.sort_unstable_by(|left, right| left.0.total_cmp(&right.0).then(left.1.cmp(&right.1)));
        let mut rank_of_value = vec![0; values.len()];
        for (rank, (_, index)) in order.iter().enumerate() {
            if let Some(slot) = rank_of_value.get_mut(*index) {
                *slot = rank;
            }
        }
        Self {
            median,
            sorted: order.into_iter().map(|(deviation, _)| deviation).collect(),
            rank_of_value,
        }
    }
}

/// Leaving out one value moves the median to one of at most three values
/// (it depends only on which side of the middle the value was), so the
/// deviations are sorted once per such median and each row's MAD is the
/// median of those without its own deviation.
fn leave_one_out_scores(values: &[Option<f64>], sorted: &[f64]) -> Vec<Option<f64>> {
    if sorted.len() < MIN_PEERS + 1 {
        return vec![None; values.len()];
    }
    let mut by_median: Vec<DeviationsFrom> = Vec::with_capacity(3);
    values
        .iter()
        .map(|value| {
            let value = (*value)?;
            // Any position holding an equal value leaves the same multiset.
            let position = sorted.partition_point(|other| *other < value);
            let median = median_without(sorted, position)?;
            let known = by_median
                .iter()
                .position(|deviations| deviations.median.to_bits() == median.to_bits());
            let index = match known {
                Some(index) => index,
                None => {
                    by_median.push(DeviationsFrom::new(sorted, median));
                    by_median.len() - 1
                }
            };
            let deviations = by_median.get(index)?;
            let mad = median_without(&deviations.sorted, *deviations.rank_of_value.get(position)?)?;
            modified_z(value, median, mad)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::support::MODIFIED_Z_SCALE;
    use super::*;

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let Some(actual) = actual else {
            panic!("expected {expected}, got NULL");
        };
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "expected {expected}, got {actual}"
        );
    }

    /// Recomputes median and MAD without each row.
    fn leave_one_out_by_brute_force(values: &[Option<f64>]) -> Vec<Option<f64>> {
        let mut deviations = Vec::new();
        (0..values.len())
            .map(|row| {
                let value = values[row]?;
                let mut others: Vec<f64> = values
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != row)
                    .filter_map(|(_, value)| *value)
                    .collect();
                if others.len() < MIN_PEERS {
                    return None;
                }
                sort_values(&mut others);
                let (median, mad) = median_and_mad_of_sorted(&others, &mut deviations)?;
                modified_z(value, median, mad)
            })
            .collect()
    }

    #[test]
    fn known_answers() {
        // 10 12 11 13 40, sorted 10 11 12 13 40: median 12, deviations
        // 2 0 1 1 28 → sorted 0 1 1 2 28: MAD 1.
        let values = some(&[10.0, 12.0, 11.0, 13.0, 40.0]);
        let scores = peer_robust_z(&values, false);
        assert_close(scores[0], -2.0 * MODIFIED_Z_SCALE);
        assert_eq!(scores[1], Some(0.0));
        assert_close(scores[4], 28.0 * MODIFIED_Z_SCALE);
        // Leave one out: 40 against 10 12 11 13 (median 11.5, deviations
        // 1.5 .5 .5 1.5 → MAD 1): 28.5; 10 against 12 11 13 40 (median 12.5,
        // deviations .5 1.5 .5 27.5 → MAD 1): −2.5.
        let scores = peer_robust_z(&values, true);
        assert_close(scores[4], 28.5 * MODIFIED_Z_SCALE);
        assert_close(scores[0], -2.5 * MODIFIED_Z_SCALE);
    }

    #[test]
    fn leaving_out_the_row_sharpens_a_small_group() {
        // 1 2 3 100 — a single extreme among four: with itself included the
        // median is 2.5 and MAD 1 (deviations 1.5 .5 .5 97.5); without it the
        // others 1 2 3 have median 2 and MAD 1, so 100 scores 98 not 97.5.
        let values = some(&[1.0, 2.0, 3.0, 100.0]);
        assert_close(peer_robust_z(&values, false)[3], 97.5 * MODIFIED_Z_SCALE);
        assert_close(peer_robust_z(&values, true)[3], 98.0 * MODIFIED_Z_SCALE);
    }

    #[test]
    fn leave_one_out_matches_brute_force() {
        // A fixed pseudo-random group with ties and NULLs.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let values: Vec<Option<f64>> = (0..41)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (!state.is_multiple_of(11)).then_some((state % 23) as f64 * 0.5)
            })
            .collect();
        assert_eq!(
            peer_robust_z(&values, true),
            leave_one_out_by_brute_force(&values)
        );
        for size in 0..8 {
            let small = &values[..size];
            assert_eq!(
                peer_robust_z(small, true),
                leave_one_out_by_brute_force(small),
                "{small:?}"
            );
        }
    }

    #[test]
    fn too_few_peers_or_zero_mad_is_null() {
        // Two values: fewer than 3.
        assert_eq!(peer_robust_z(&some(&[1.0, 5.0]), false), vec![None, None]);
        // Three values: enough together, but each has only 2 others.
        let three = some(&[1.0, 2.0, 4.0]);
        assert!(peer_robust_z(&three, false)[2].is_some());
        assert_eq!(peer_robust_z(&three, true), vec![None, None, None]);
        // 5 5 5 9: median 5, deviations 0 0 0 4 → MAD 0.
        let flat = some(&[5.0, 5.0, 5.0, 9.0]);
        assert_eq!(peer_robust_z(&flat, false), vec![None; 4]);
        // NULL rows are NULL and not peers: 1 NULL 2 4 has 3 values.
        let with_null = vec![Some(1.0), None, Some(2.0), Some(4.0)];
        let scores = peer_robust_z(&with_null, false);
        assert_eq!(scores[1], None);
        // median 2, deviations 1 0 2 → MAD 1.
        assert_close(scores[3], 2.0 * MODIFIED_Z_SCALE);
    }
}
