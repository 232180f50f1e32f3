//! 运行监测 (anomaly) functions: robust scores that flag unusual values in
//! monthly establishment series (a unit's staff count over months) and
//! among peers (units of one tier and sector at one date).
//!
//! Window functions take the series in the window's `ORDER BY` and compare
//! each row with a baseline that never contains the row itself:
//! `robust_z`, `mom_jump_z` (trailing look-back), `ewma`, `ewma_flag`
//! (calibration period at the start); or with its `PARTITION BY` peers:
//! `peer_robust_z`, `tukey_score`. Aggregates `mad`, `iqr` and
//! `tukey_fences` give the same statistics per group, and `anomaly_level`
//! turns a score into 'normal' / 'warn' / 'alert'.
//!
//! Throughout: thresholds and look-backs are arguments (optional ones must
//! be literals), arguments of any numeric type are cast to Float64, NULL,
//! NaN and ±Infinity are missing values, and a scale of 0 (MAD, σ) gives
//! NULL rather than an infinite score. Quartiles and medians interpolate
//! linearly (PostgreSQL `percentile_cont`).

mod anomaly_level;
mod ewma;
mod ewma_flag;
mod iqr;
mod mad;
mod mom_jump_z;
mod peer_robust_z;
mod robust_z;
mod support;
mod tukey_fences;
mod tukey_score;

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};

pub use anomaly_level::AnomalyLevelFunc;
pub use ewma::EwmaFunc;
pub use ewma_flag::EwmaFlagFunc;
pub use iqr::InterquartileRangeFunc;
pub use mad::MedianAbsoluteDeviationFunc;
pub use mom_jump_z::MomJumpZFunc;
pub use peer_robust_z::PeerRobustZFunc;
pub use robust_z::RobustZFunc;
pub use tukey_fences::TukeyFencesFunc;
pub use tukey_score::TukeyScoreFunc;

/// Every scalar function of this family.
pub fn all_scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::from(AnomalyLevelFunc::new()))]
}

/// Every aggregate function of this family.
pub fn all_aggregate_udfs() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::from(MedianAbsoluteDeviationFunc::new())),
        Arc::new(AggregateUDF::from(InterquartileRangeFunc::new())),
        Arc::new(AggregateUDF::from(TukeyFencesFunc::new())),
    ]
}

/// Every window function of this family.
pub fn all_window_udfs() -> Vec<Arc<WindowUDF>> {
    vec![
        Arc::new(WindowUDF::from(RobustZFunc::new())),
        Arc::new(WindowUDF::from(MomJumpZFunc::new())),
        Arc::new(WindowUDF::from(EwmaFunc::new())),
        Arc::new(WindowUDF::from(EwmaFlagFunc::new())),
        Arc::new(WindowUDF::from(TukeyScoreFunc::new())),
        Arc::new(WindowUDF::from(PeerRobustZFunc::new())),
    ]
}

/// Registers the family; returns how many functions were registered.
pub fn register(registry: &mut dyn FunctionRegistry) -> Result<usize> {
    let mut registered = 0;
    for function in all_scalar_udfs() {
        registry.register_udf(function)?;
        registered += 1;
    }
    for function in all_aggregate_udfs() {
        registry.register_udaf(function)?;
        registered += 1;
    }
    for function in all_window_udfs() {
        registry.register_udwf(function)?;
        registered += 1;
    }
    Ok(registered)
}

#[cfg(test)]
mod tests;
