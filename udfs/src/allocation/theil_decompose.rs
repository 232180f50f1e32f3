//! `theil_decompose(value, weight, group)`: Theil T split into between-group
//! and within-group parts.

use std::collections::HashMap;
use std::mem::size_of_val;
use std::sync::Arc;

use arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, Float64Array, StructArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, UInt64Type};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{internal_err, not_impl_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Coercion, Documentation, Signature, TypeSignature,
    TypeSignatureClass, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{
    check_non_negative, check_weight, extend_from_float64_lists, float64_argument,
    float64_list_scalar, float64_list_type, numeric_as_float64, uint64_state_values,
    CompensatedSum,
};
use super::theil_sums::DivergenceSums;

const NAME: &str = "theil_decompose";

#[user_doc(
    doc_section(label = "Allocation Functions"),
    description = "Decomposes the Theil T index of an allocation by groups (e.g. districts by \
province). Returns a struct `{total, between, within}` of Float64.

Each row is one unit with the `value` allocated to it (an amount, e.g. quota), its `weight` \
(population) and the `group` it belongs to. With `S_g` the group's share of the total value, \
`P_g` its share of the total weight and `T_g` the Theil T of the units inside the group: \
`between = Σ_g S_g ln(S_g / P_g)` (inequality between group averages), \
`within = Σ_g S_g T_g` (inequality inside groups, weighted by value share), and \
`total = between + within`, which equals `theil_t(value, weight)` over all rows. Groups with \
value 0 contribute 0 to both parts. `between / total` is the share of inequality explained by \
the grouping.

Rows where any argument (including `group`) is NULL are skipped. The whole struct is NULL with \
fewer than 2 such rows, when the total value or total weight is 0, or when some unit has \
weight 0 and a positive value (T is infinite). A negative or non-finite `value` or `weight` is \
an execution error. The partial state holds three compensated sums per group. Read a part \
with `theil_decompose(...)['between']`.",
    syntax_example = "theil_decompose(value, weight, group)",
    sql_example = r#"```sql
-- district_quota(district, province, quota, population):
-- ('A','north',30,120000), ('B','north',12,80000), ('C','south',9,45000),
-- ('D','south',40,200000), ('E','south',2,5000)
> SELECT d['total'] AS total, d['between'] AS between, d['within'] AS within
  FROM (SELECT theil_decompose(quota, population, province) AS d
        FROM district_quota);
+----------------------+------------------------+----------------------+
| total                | between                | within               |
+----------------------+------------------------+----------------------+
| 0.016978091490178954 | 0.00010395015788333944 | 0.016874141332295613 |
+----------------------+------------------------+----------------------+
```"#,
    argument(
        name = "value",
        description = "Amount allocated to the unit, ≥ 0, e.g. staffing quota (not a rate)."
    ),
    argument(name = "weight", description = "Population of the unit, ≥ 0."),
    argument(
        name = "group",
        description = "Group of the unit, any type (e.g. a province code)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TheilDecomposeFunc {
    signature: Signature,
}

impl Default for TheilDecomposeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl TheilDecomposeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Coercible(vec![
                    numeric_as_float64(),
                    numeric_as_float64(),
                    Coercion::new_exact(TypeSignatureClass::Any),
                ])],
                Volatility::Immutable,
            ),
        }
    }
}

/// Fields of the result struct.
fn parts_fields() -> Fields {
    Fields::from(vec![
        Field::new("total", DataType::Float64, true),
        Field::new("between", DataType::Float64, true),
        Field::new("within", DataType::Float64, true),
    ])
}

/// Dictionary-encoded groups are keyed by their values.
fn group_key_type(group_type: &DataType) -> DataType {
    match group_type {
        DataType::Dictionary(_, value_type) => value_type.as_ref().clone(),
        other => other.clone(),
    }
}

fn list_of(item_type: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item_type, true)))
}

impl AggregateUDFImpl for TheilDecomposeFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(parts_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some(group_field) = args.input_fields.get(2) else {
            return internal_err!("{NAME}: expected 3 arguments");
        };
        let key_type = group_key_type(group_field.data_type());
        let field = |name: &str, data_type: DataType| {
            Arc::new(Field::new(
                format_state_name(args.name, name),
                data_type,
                true,
            ))
        };
        Ok(vec![
            field("rows", DataType::UInt64),
            field("groups", list_of(key_type)),
            field("value_totals", float64_list_type()),
            field("weight_totals", float64_list_type()),
            field("log_ratio_sums", float64_list_type()),
            field("unbounded_rows", list_of(DataType::UInt64)),
        ])
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{NAME}(DISTINCT ...) is not supported");
        }
        let Some(group_field) = acc_args.expr_fields.get(2) else {
            return internal_err!("{NAME}: expected 3 arguments");
        };
        Ok(Box::new(TheilDecomposeAccumulator::new(group_key_type(
            group_field.data_type(),
        ))))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Theil T parts; `total = between + within`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TheilParts {
    pub(crate) total: f64,
    pub(crate) between: f64,
    pub(crate) within: f64,
}

/// Per-group sums of value, weight and value·ln(value/weight).
#[derive(Debug)]
pub(crate) struct TheilDecomposeAccumulator {
    key_type: DataType,
    rows: u64,
    groups: HashMap<ScalarValue, DivergenceSums>,
}

impl TheilDecomposeAccumulator {
    pub(crate) fn new(key_type: DataType) -> Self {
        Self {
            key_type,
            rows: 0,
            groups: HashMap::new(),
        }
    }

    pub(crate) fn parts(&self) -> Option<TheilParts> {
        if self.rows < 2 {
            return None;
        }
        decompose(self.groups.values().copied().collect())
    }

    fn keys_scalar(&self, keys: Vec<ScalarValue>) -> Result<ScalarValue> {
        let array = if keys.is_empty() {
            new_empty_array(&self.key_type)
        } else {
            ScalarValue::iter_to_array(keys)?
        };
        Ok(SingleRowListArrayBuilder::new(array).build_list_scalar())
    }
}

impl Accumulator for TheilDecomposeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [amounts, weights, groups] = values else {
            return internal_err!("{NAME}: expected 3 arguments, got {}", values.len());
        };
        let amounts = float64_argument(amounts)?;
        let weights = float64_argument(weights)?;
        let groups = if groups.data_type() == &self.key_type {
            Arc::clone(groups)
        } else {
            cast(groups, &self.key_type)?
        };
        for row in 0..amounts.len() {
            if amounts.is_null(row) || weights.is_null(row) || groups.is_null(row) {
                continue;
            }
            let amount = check_non_negative(NAME, "value", amounts.value(row))?;
            let weight = check_weight(NAME, weights.value(row))?;
            let key = ScalarValue::try_from_array(&groups, row)?;
            self.groups.entry(key).or_default().add(amount, weight);
            self.rows += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(parts) = self.parts() else {
            return ScalarValue::try_from(&DataType::Struct(parts_fields()));
        };
        let columns: Vec<ArrayRef> = [parts.total, parts.between, parts.within]
            .into_iter()
            .map(|value| Arc::new(Float64Array::from(vec![value])) as ArrayRef)
            .collect();
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(
            parts_fields(),
            columns,
            None,
        )?)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.groups.capacity() * (size_of::<ScalarValue>() + size_of::<DivergenceSums>())
            + self.groups.keys().map(ScalarValue::size).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let count = self.groups.len();
        let mut keys = Vec::with_capacity(count);
        let mut value_totals = Vec::with_capacity(count);
        let mut weight_totals = Vec::with_capacity(count);
        let mut log_ratio_sums = Vec::with_capacity(count);
        let mut unbounded_rows = Vec::with_capacity(count);
        for (key, sums) in &self.groups {
            keys.push(key.clone());
            value_totals.push(sums.numerator_total.value());
            weight_totals.push(sums.reference_total.value());
            log_ratio_sums.push(sums.log_ratio_sum.value());
            unbounded_rows.push(sums.unbounded_rows);
        }
        let unbounded_rows: ArrayRef = Arc::new(UInt64Array::from(unbounded_rows));
        Ok(vec![
            ScalarValue::UInt64(Some(self.rows)),
            self.keys_scalar(keys)?,
            float64_list_scalar(&value_totals),
            float64_list_scalar(&weight_totals),
            float64_list_scalar(&log_ratio_sums),
            SingleRowListArrayBuilder::new(unbounded_rows).build_list_scalar(),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [rows, keys, value_totals, weight_totals, log_ratio_sums, unbounded_rows] = states
        else {
            return internal_err!("{NAME}: expected 6 state columns, got {}", states.len());
        };
        let rows = uint64_state_values(NAME, rows)?;
        let (Some(keys), Some(unbounded_rows)) = (
            keys.as_list_opt::<i32>(),
            unbounded_rows.as_list_opt::<i32>(),
        ) else {
            return internal_err!("{NAME}: group state columns should be lists");
        };
        for state_row in 0..rows.len() {
            if rows.is_null(state_row) || keys.is_null(state_row) {
                continue;
            }
            self.rows += rows.value(state_row);
            let row_keys = keys.value(state_row);
            let row_unbounded = unbounded_rows.value(state_row);
            let Some(row_unbounded) = row_unbounded.as_primitive_opt::<UInt64Type>() else {
                return internal_err!("{NAME}: unbounded-row state should hold UInt64");
            };
            // Each state row's lists are parallel: one entry per group key.
            let mut row_values = Vec::new();
            let mut row_weights = Vec::new();
            let mut row_log_ratios = Vec::new();
            extend_from_float64_lists(NAME, &value_totals.slice(state_row, 1), &mut row_values)?;
            extend_from_float64_lists(NAME, &weight_totals.slice(state_row, 1), &mut row_weights)?;
            extend_from_float64_lists(
                NAME,
                &log_ratio_sums.slice(state_row, 1),
                &mut row_log_ratios,
            )?;
            let count = row_keys.len();
            if [
                row_values.len(),
                row_weights.len(),
                row_log_ratios.len(),
                row_unbounded.len(),
            ]
            .iter()
            .any(|length| *length != count)
            {
                return internal_err!("{NAME}: partial state lists differ in length");
            }
            for index in 0..count {
                let key = ScalarValue::try_from_array(&row_keys, index)?;
                let mut partial = DivergenceSums::default();
                partial.numerator_total.add(row_values[index]);
                partial.reference_total.add(row_weights[index]);
                partial.log_ratio_sum.add(row_log_ratios[index]);
                partial.unbounded_rows = row_unbounded.value(index);
                self.groups.entry(key).or_default().merge(&partial);
            }
        }
        Ok(())
    }
}

/// Between and within parts from per-group sums; `None` when T is undefined.
/// Groups are summed in a fixed order (by their sums) so that the result does
/// not depend on hash order.
pub(crate) fn decompose(mut groups: Vec<DivergenceSums>) -> Option<TheilParts> {
    groups.sort_unstable_by(|left, right| {
        let key = |sums: &DivergenceSums| {
            (
                sums.numerator_total.value(),
                sums.reference_total.value(),
                sums.log_ratio_sum.value(),
            )
        };
        let (left, right) = (key(left), key(right));
        left.0
            .total_cmp(&right.0)
            .then_with(|| left.1.total_cmp(&right.1))
            .then_with(|| left.2.total_cmp(&right.2))
    });
    let mut overall = DivergenceSums::default();
    for group in &groups {
        overall.merge(group);
    }
    // Checks totals and infinite terms for the whole allocation.
    overall.divergence()?;
    let value_total = overall.numerator_total.value();
    let weight_total = overall.reference_total.value();
    let mut between = CompensatedSum::default();
    let mut within = CompensatedSum::default();
    for group in &groups {
        let value_share = group.numerator_total.value() / value_total;
        if value_share <= 0.0 {
            continue;
        }
        let weight_share = group.reference_total.value() / weight_total;
        between.add(value_share * (value_share / weight_share).ln());
        within.add(value_share * group.divergence()?);
    }
    let between = between.value().max(0.0);
    let within = within.value();
    Some(TheilParts {
        total: between + within,
        between,
        within,
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray};

    use super::super::compact::CompactAccumulator;
    use super::super::theil_sums::{TheilKind, TheilState};
    use super::*;

    fn float_column(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn group_column(groups: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(groups.to_vec()))
    }

    fn decompose_rows(
        values: &[f64],
        weights: &[f64],
        groups: &[&str],
    ) -> Result<Option<TheilParts>> {
        let mut accumulator = TheilDecomposeAccumulator::new(DataType::Utf8);
        accumulator.update_batch(&[
            float_column(values),
            float_column(weights),
            group_column(groups),
        ])?;
        Ok(accumulator.parts())
    }

    fn theil_t(values: &[f64], weights: &[f64]) -> Result<f64> {
        let mut accumulator = CompactAccumulator::<TheilState>::new(TheilKind::T);
        accumulator.update_batch(&[float_column(values), float_column(weights)])?;
        Ok(accumulator.result().unwrap_or(f64::NAN))
    }

    const VALUES: [f64; 7] = [30.0, 12.0, 9.0, 40.0, 2.0, 0.0, 17.0];
    const WEIGHTS: [f64; 7] = [12.0, 8.0, 4.5, 20.0, 0.5, 3.0, 6.0];
    const GROUPS: [&str; 7] = ["north", "north", "south", "south", "south", "east", "east"];

    #[test]
    fn total_equals_theil_t_over_all_rows() -> Result<()> {
        let Some(parts) = decompose_rows(&VALUES, &WEIGHTS, &GROUPS)? else {
            panic!("expected a decomposition");
        };
        assert!((parts.total - theil_t(&VALUES, &WEIGHTS)?).abs() < 1e-12);
        assert!((parts.between + parts.within - parts.total).abs() < 1e-15);
        assert!(parts.between > 0.0 && parts.within > 0.0);
        Ok(())
    }

    // See `known_answer` for how these were computed.
    const BETWEEN: f64 = 0.0006274781676414868;
    const WITHIN: f64 = 0.07692910892492995;

    #[test]
    fn known_answer() -> Result<()> {
        // Reference: Python with math.fsum/math.log, from the definitions:
        //   per group g: S_g = Σv_g/Σv, P_g = Σw_g/Σw, T_g = theil_t inside g;
        //   between = fsum(S_g*log(S_g/P_g)), within = fsum(S_g*T_g) over S_g > 0.
        let Some(parts) = decompose_rows(&VALUES, &WEIGHTS, &GROUPS)? else {
            panic!("expected a decomposition");
        };
        assert!((parts.between - BETWEEN).abs() < 1e-12, "{parts:?}");
        assert!((parts.within - WITHIN).abs() < 1e-12, "{parts:?}");
        Ok(())
    }

    #[test]
    fn equal_per_capita_gives_zero_parts() -> Result<()> {
        let parts = decompose_rows(
            &[10.0, 30.0, 5.0, 8.0],
            &[100.0, 300.0, 50.0, 80.0],
            &["a", "a", "b", "c"],
        )?;
        let Some(parts) = parts else {
            panic!("expected a decomposition");
        };
        assert!(
            parts.total.abs() < 1e-12 && parts.between.abs() < 1e-12 && parts.within.abs() < 1e-12
        );
        Ok(())
    }

    #[test]
    fn single_group_is_all_within_and_singletons_all_between() -> Result<()> {
        let one_group = ["all"; 7];
        let Some(parts) = decompose_rows(&VALUES, &WEIGHTS, &one_group)? else {
            panic!("expected a decomposition");
        };
        assert!(parts.between.abs() < 1e-12);
        let singletons = ["a", "b", "c", "d", "e", "f", "g"];
        let Some(parts) = decompose_rows(&VALUES, &WEIGHTS, &singletons)? else {
            panic!("expected a decomposition");
        };
        assert!(parts.within.abs() < 1e-12);
        assert!((parts.between - theil_t(&VALUES, &WEIGHTS)?).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn undefined_cases_are_null() -> Result<()> {
        assert_eq!(decompose_rows(&[1.0], &[1.0], &["a"])?, None);
        assert_eq!(decompose_rows(&[1.0, 2.0], &[1.0, 0.0], &["a", "b"])?, None);
        assert_eq!(decompose_rows(&[0.0, 0.0], &[1.0, 1.0], &["a", "b"])?, None);
        let mut accumulator = TheilDecomposeAccumulator::new(DataType::Utf8);
        assert!(accumulator.evaluate()?.is_null());
        Ok(())
    }

    #[test]
    fn null_groups_are_skipped_and_negative_values_fail() -> Result<()> {
        let mut accumulator = TheilDecomposeAccumulator::new(DataType::Int32);
        let groups: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(2)]));
        accumulator.update_batch(&[
            float_column(&[1.0, 5.0, 3.0]),
            float_column(&[1.0, 1.0, 1.0]),
            groups,
        ])?;
        assert_eq!(accumulator.rows, 2);
        let groups: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        let error =
            accumulator.update_batch(&[float_column(&[-1.0]), float_column(&[1.0]), groups]);
        assert!(error.is_err_and(|error| error.to_string().contains(NAME)));
        Ok(())
    }

    #[test]
    fn merged_partial_states_match_one_pass() -> Result<()> {
        let whole = decompose_rows(&VALUES, &WEIGHTS, &GROUPS)?;
        let mut merged = TheilDecomposeAccumulator::new(DataType::Utf8);
        for range in [4..7, 0..4] {
            let mut partial = TheilDecomposeAccumulator::new(DataType::Utf8);
            partial.update_batch(&[
                float_column(&VALUES[range.clone()]),
                float_column(&WEIGHTS[range.clone()]),
                group_column(&GROUPS[range]),
            ])?;
            let state = partial
                .state()?
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            merged.merge_batch(&state)?;
        }
        let (Some(whole), Some(merged)) = (whole, merged.parts()) else {
            panic!("expected decompositions");
        };
        assert!((whole.total - merged.total).abs() < 1e-12);
        assert!((whole.between - merged.between).abs() < 1e-12);
        assert!((whole.within - merged.within).abs() < 1e-12);
        Ok(())
    }
}
