//! Compact running sums behind `theil_t`, `theil_l` and `theil_decompose`.
//!
//! Theil T of amounts `vᵢ` over populations `wᵢ` is
//! `Σ sᵢ ln(sᵢ / pᵢ) = (1/V) Σ vᵢ ln(vᵢ / wᵢ) − ln(V / W)` with `V = Σ v`,
//! `W = Σ w`; Theil L is the same divergence with the roles of `v` and `w`
//! swapped. So three sums (and two counters) are a complete partial state.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{internal_err, Result};
use datafusion::logical_expr::utils::format_state_name;

use super::compact::CompactState;
use super::support::{
    check_non_negative, check_weight, float64_state_values, uint64_state_values, CompensatedSum,
};

/// Sums for the divergence `Σ (aᵢ/A) ln((aᵢ/A) / (bᵢ/B))`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct DivergenceSums {
    /// `A = Σ a`.
    pub(crate) numerator_total: CompensatedSum,
    /// `B = Σ b`.
    pub(crate) reference_total: CompensatedSum,
    /// `Σ a ln(a / b)` over rows with `a > 0` and `b > 0`; rows with `a = 0`
    /// contribute 0 (the limit of `a ln a`).
    pub(crate) log_ratio_sum: CompensatedSum,
    /// Rows with `a > 0` and `b = 0`: their term is infinite.
    pub(crate) unbounded_rows: u64,
}

impl DivergenceSums {
    /// Adds one checked row (`a ≥ 0`, `b ≥ 0`, both finite).
    pub(crate) fn add(&mut self, numerator: f64, reference: f64) {
        self.numerator_total.add(numerator);
        self.reference_total.add(reference);
        if numerator > 0.0 {
            if reference > 0.0 {
                self.log_ratio_sum
                    .add(numerator * (numerator / reference).ln());
            } else {
                self.unbounded_rows += 1;
            }
        }
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.numerator_total.add(other.numerator_total.value());
        self.reference_total.add(other.reference_total.value());
        self.log_ratio_sum.add(other.log_ratio_sum.value());
        self.unbounded_rows += other.unbounded_rows;
    }

    /// The divergence, or `None` when a total is 0 or a term is infinite.
    /// Clamped at 0: it is ≥ 0 exactly (Gibbs' inequality), rounding aside.
    pub(crate) fn divergence(&self) -> Option<f64> {
        let numerator_total = self.numerator_total.value();
        let reference_total = self.reference_total.value();
        if self.unbounded_rows > 0 || numerator_total <= 0.0 || reference_total <= 0.0 {
            return None;
        }
        let divergence =
            self.log_ratio_sum.value() / numerator_total - (numerator_total / reference_total).ln();
        Some(divergence.max(0.0))
    }
}

/// Which Theil index a state computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TheilKind {
    /// Amount shares against population shares.
    T,
    /// Population shares against amount shares.
    L,
}

/// State of `theil_t(value, weight)` / `theil_l(value, weight)` for one group.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct TheilState {
    rows: u64,
    sums: DivergenceSums,
}

const STATE_FIELDS: [(&str, DataType); 5] = [
    ("rows", DataType::UInt64),
    ("numerator_total", DataType::Float64),
    ("reference_total", DataType::Float64),
    ("log_ratio_sum", DataType::Float64),
    ("unbounded_rows", DataType::UInt64),
];

impl CompactState for TheilState {
    type Settings = TheilKind;

    fn function_name(kind: TheilKind) -> &'static str {
        match kind {
            TheilKind::T => "theil_t",
            TheilKind::L => "theil_l",
        }
    }

    fn add_row(&mut self, kind: TheilKind, row: &[f64]) -> Result<()> {
        let function = Self::function_name(kind);
        let [value, weight] = row else {
            return internal_err!("{function}: expected 2 arguments, got {}", row.len());
        };
        let value = check_non_negative(function, "value", *value)?;
        let weight = check_weight(function, *weight)?;
        self.rows += 1;
        match kind {
            TheilKind::T => self.sums.add(value, weight),
            TheilKind::L => self.sums.add(weight, value),
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) {
        self.rows += other.rows;
        self.sums.merge(&other.sums);
    }

    /// `None` with fewer than 2 rows; otherwise the divergence.
    fn result(&self) -> Option<f64> {
        if self.rows < 2 {
            return None;
        }
        self.sums.divergence()
    }

    fn state_fields(aggregate: &str) -> Vec<FieldRef> {
        STATE_FIELDS
            .iter()
            .map(|(name, data_type)| {
                Arc::new(Field::new(
                    format_state_name(aggregate, name),
                    data_type.clone(),
                    true,
                ))
            })
            .collect()
    }

    fn to_state_arrays(states: &[Self]) -> Vec<ArrayRef> {
        let rows: UInt64Array = states.iter().map(|state| Some(state.rows)).collect();
        let float_column = |read: fn(&DivergenceSums) -> f64| -> ArrayRef {
            Arc::new(
                states
                    .iter()
                    .map(|state| Some(read(&state.sums)))
                    .collect::<Float64Array>(),
            )
        };
        let unbounded_rows: UInt64Array = states
            .iter()
            .map(|state| Some(state.sums.unbounded_rows))
            .collect();
        vec![
            Arc::new(rows),
            float_column(|sums| sums.numerator_total.value()),
            float_column(|sums| sums.reference_total.value()),
            float_column(|sums| sums.log_ratio_sum.value()),
            Arc::new(unbounded_rows),
        ]
    }

    fn from_state_arrays(function: &str, arrays: &[ArrayRef]) -> Result<Vec<Option<Self>>> {
        let [rows, numerator_totals, reference_totals, log_ratio_sums, unbounded_rows] = arrays
        else {
            return internal_err!(
                "{function}: expected {} state columns, got {}",
                STATE_FIELDS.len(),
                arrays.len()
            );
        };
        let rows = uint64_state_values(function, rows)?;
        let numerator_totals = float64_state_values(function, numerator_totals)?;
        let reference_totals = float64_state_values(function, reference_totals)?;
        let log_ratio_sums = float64_state_values(function, log_ratio_sums)?;
        let unbounded_rows = uint64_state_values(function, unbounded_rows)?;
        Ok((0..rows.len())
            .map(|index| {
                rows.is_valid(index).then(|| {
                    let mut sums = DivergenceSums::default();
                    sums.numerator_total.add(numerator_totals.value(index));
                    sums.reference_total.add(reference_totals.value(index));
                    sums.log_ratio_sum.add(log_ratio_sums.value(index));
                    sums.unbounded_rows = unbounded_rows.value(index);
                    Self {
                        rows: rows.value(index),
                        sums,
                    }
                })
            })
            .collect())
    }
}
