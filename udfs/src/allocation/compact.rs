//! Accumulators for aggregates whose partial state is a few numbers
//! (`theil_t`, `theil_l`, `cv`): one [`Accumulator`] and one
//! [`GroupsAccumulator`] over a [`CompactState`], so the state encoding and
//! the row checks are written once per aggregate.

use std::fmt::Debug;
use std::mem::size_of_val;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array};
use arrow::datatypes::FieldRef;
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

use super::support::{float64_argument, for_each_complete_row};

/// The running state of one group of a compact aggregate.
pub(crate) trait CompactState: Debug + Default + Clone + Send + Sync + 'static {
    /// What distinguishes aggregates sharing this state (e.g. Theil T or L).
    type Settings: Debug + Copy + Send + Sync + 'static;

    /// SQL name, for error messages.
    fn function_name(settings: Self::Settings) -> &'static str;

    /// Checks one input row without NULLs (arguments in call order) and adds it.
    fn add_row(&mut self, settings: Self::Settings, row: &[f64]) -> Result<()>;

    fn merge(&mut self, other: &Self);

    /// The aggregate's value; `None` is SQL NULL.
    fn result(&self) -> Option<f64>;

    /// Partial-state fields, named after the aggregate instance.
    fn state_fields(aggregate: &str) -> Vec<FieldRef>;

    /// One array per state field, one row per state.
    fn to_state_arrays(states: &[Self]) -> Vec<ArrayRef>;

    /// Inverse of [`Self::to_state_arrays`]; `None` for a NULL state row.
    fn from_state_arrays(function: &str, arrays: &[ArrayRef]) -> Result<Vec<Option<Self>>>;
}

fn float64_columns(values: &[ArrayRef]) -> Result<Vec<Float64Array>> {
    values.iter().map(float64_argument).collect()
}

/// One group: used without GROUP BY and for window frames.
#[derive(Debug)]
pub(crate) struct CompactAccumulator<S: CompactState> {
    settings: S::Settings,
    state: S,
}

impl<S: CompactState> CompactAccumulator<S> {
    pub(crate) fn new(settings: S::Settings) -> Self {
        Self {
            settings,
            state: S::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn result(&self) -> Option<f64> {
        self.state.result()
    }
}

impl<S: CompactState> Accumulator for CompactAccumulator<S> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let columns = float64_columns(values)?;
        for_each_complete_row(&columns, |row| self.state.add_row(self.settings, row))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.state.result()))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        S::to_state_arrays(std::slice::from_ref(&self.state))
            .iter()
            .map(|array| ScalarValue::try_from_array(array, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let function = S::function_name(self.settings);
        for partial in S::from_state_arrays(function, states)?
            .into_iter()
            .flatten()
        {
            self.state.merge(&partial);
        }
        Ok(())
    }
}

/// Many groups at once, for GROUP BY.
#[derive(Debug)]
pub(crate) struct CompactGroupsAccumulator<S: CompactState> {
    settings: S::Settings,
    states: Vec<S>,
}

impl<S: CompactState> CompactGroupsAccumulator<S> {
    pub(crate) fn new(settings: S::Settings) -> Self {
        Self {
            settings,
            states: Vec::new(),
        }
    }

    fn ensure_groups(&mut self, total_num_groups: usize) {
        if self.states.len() < total_num_groups {
            self.states.resize(total_num_groups, S::default());
        }
    }
}

/// Calls `visit(row index, argument values)` for rows the filter keeps and
/// that have no NULL argument.
fn for_each_kept_row(
    columns: &[Float64Array],
    opt_filter: Option<&BooleanArray>,
    mut visit: impl FnMut(usize, &[f64]) -> Result<()>,
) -> Result<()> {
    let Some(first) = columns.first() else {
        return Ok(());
    };
    let mut row = vec![0.0; columns.len()];
    for index in 0..first.len() {
        let kept = opt_filter.is_none_or(|filter| filter.is_valid(index) && filter.value(index));
        let complete = columns.iter().all(|column| column.is_valid(index));
        if kept && complete {
            for (slot, column) in row.iter_mut().zip(columns) {
                *slot = column.value(index);
            }
            visit(index, &row)?;
        }
    }
    Ok(())
}

impl<S: CompactState> GroupsAccumulator for CompactGroupsAccumulator<S> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure_groups(total_num_groups);
        let columns = float64_columns(values)?;
        let settings = self.settings;
        let states = &mut self.states;
        for_each_kept_row(&columns, opt_filter, |index, row| {
            let Some(state) = group_indices
                .get(index)
                .and_then(|group| states.get_mut(*group))
            else {
                return internal_err!("{}: group index out of range", S::function_name(settings));
            };
            state.add_row(settings, row)
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let states = emit_to.take_needed(&mut self.states);
        let results: Float64Array = states.iter().map(CompactState::result).collect();
        Ok(std::sync::Arc::new(results))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let states = emit_to.take_needed(&mut self.states);
        Ok(S::to_state_arrays(&states))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure_groups(total_num_groups);
        let function = S::function_name(self.settings);
        let partials = S::from_state_arrays(function, values)?;
        if partials.len() != group_indices.len() {
            return internal_err!("{function}: state rows and group indices differ in length");
        }
        for (partial, group) in partials.iter().zip(group_indices) {
            let (Some(partial), Some(state)) = (partial, self.states.get_mut(*group)) else {
                continue;
            };
            state.merge(partial);
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Each input row becomes its own state (rows filtered out or with a
        // NULL argument become an empty state).
        let columns = float64_columns(values)?;
        let rows = columns.first().map_or(0, Array::len);
        let mut states = vec![S::default(); rows];
        for_each_kept_row(&columns, opt_filter, |index, row| {
            match states.get_mut(index) {
                Some(state) => state.add_row(self.settings, row),
                None => internal_err!(
                    "{}: row index out of range",
                    S::function_name(self.settings)
                ),
            }
        })?;
        Ok(S::to_state_arrays(&states))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.states.capacity() * size_of::<S>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;

    use super::super::theil_sums::{TheilKind, TheilState};
    use super::*;

    const VALUES: [f64; 8] = [30.0, 12.0, 9.0, 40.0, 2.0, 0.0, 17.0, 5.0];
    const WEIGHTS: [f64; 8] = [12.0, 8.0, 4.5, 20.0, 0.5, 3.0, 6.0, 1.0];
    const GROUPS: [usize; 8] = [0, 1, 0, 1, 0, 2, 1, 2];

    fn columns(values: &[f64], weights: &[f64]) -> Vec<ArrayRef> {
        vec![
            Arc::new(Float64Array::from(values.to_vec())),
            Arc::new(Float64Array::from(weights.to_vec())),
        ]
    }

    /// Theil T of each group, one accumulator per group.
    fn per_group_reference(keep: impl Fn(usize) -> bool) -> Result<Vec<Option<f64>>> {
        (0..3)
            .map(|group| {
                let rows: Vec<usize> = (0..VALUES.len())
                    .filter(|row| GROUPS[*row] == group && keep(*row))
                    .collect();
                let values: Vec<f64> = rows.iter().map(|row| VALUES[*row]).collect();
                let weights: Vec<f64> = rows.iter().map(|row| WEIGHTS[*row]).collect();
                let mut accumulator = CompactAccumulator::<TheilState>::new(TheilKind::T);
                accumulator.update_batch(&columns(&values, &weights))?;
                Ok(accumulator.result())
            })
            .collect()
    }

    fn results(array: &ArrayRef) -> Vec<Option<f64>> {
        let array = array.as_primitive::<Float64Type>();
        (0..array.len())
            .map(|index| array.is_valid(index).then(|| array.value(index)))
            .collect()
    }

    fn assert_all_close(actual: &[Option<f64>], expected: &[Option<f64>]) {
        assert_eq!(actual.len(), expected.len());
        for (actual, expected) in actual.iter().zip(expected) {
            match (actual, expected) {
                (Some(actual), Some(expected)) => assert!((actual - expected).abs() < 1e-12),
                (None, None) => {}
                _ => panic!("{actual:?} vs {expected:?}"),
            }
        }
    }

    #[test]
    fn groups_match_one_accumulator_per_group() -> Result<()> {
        let mut groups = CompactGroupsAccumulator::<TheilState>::new(TheilKind::T);
        groups.update_batch(&columns(&VALUES, &WEIGHTS), &GROUPS, None, 3)?;
        let evaluated = groups.evaluate(EmitTo::All)?;
        assert_all_close(&results(&evaluated), &per_group_reference(|_| true)?);
        Ok(())
    }

    #[test]
    fn filter_drops_rows() -> Result<()> {
        let filter = BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
        ]);
        let mut groups = CompactGroupsAccumulator::<TheilState>::new(TheilKind::T);
        groups.update_batch(&columns(&VALUES, &WEIGHTS), &GROUPS, Some(&filter), 3)?;
        let evaluated = groups.evaluate(EmitTo::All)?;
        assert_all_close(
            &results(&evaluated),
            &per_group_reference(|row| row != 1 && row != 2)?,
        );
        Ok(())
    }

    #[test]
    fn partial_states_and_converted_rows_merge_to_the_same_result() -> Result<()> {
        // Rows 0..4 aggregated, rows 4..8 converted row by row to states.
        let mut first = CompactGroupsAccumulator::<TheilState>::new(TheilKind::T);
        first.update_batch(&columns(&VALUES[..4], &WEIGHTS[..4]), &GROUPS[..4], None, 2)?;
        let first_state = first.state(EmitTo::All)?;
        let second = CompactGroupsAccumulator::<TheilState>::new(TheilKind::T);
        let second_state = second.convert_to_state(&columns(&VALUES[4..], &WEIGHTS[4..]), None)?;

        let mut merged = CompactGroupsAccumulator::<TheilState>::new(TheilKind::T);
        merged.merge_batch(&second_state, &GROUPS[4..], 3)?;
        merged.merge_batch(&first_state, &[0, 1], 3)?;
        // Emit the first group alone, then the rest.
        let head = results(&merged.evaluate(EmitTo::First(1))?);
        let tail = results(&merged.evaluate(EmitTo::All)?);
        let combined: Vec<Option<f64>> = head.into_iter().chain(tail).collect();
        assert_all_close(&combined, &per_group_reference(|_| true)?);
        Ok(())
    }

    #[test]
    fn bad_rows_are_errors_in_groups_too() {
        let mut groups = CompactGroupsAccumulator::<TheilState>::new(TheilKind::L);
        let error = groups.update_batch(&columns(&[1.0, 2.0], &[1.0, -2.0]), &[0, 1], None, 2);
        assert!(error.is_err_and(|error| error.to_string().contains("theil_l")));
    }
}
