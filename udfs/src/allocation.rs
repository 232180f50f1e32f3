//! 资源配置 (allocation) functions: per-capita rates and inequality of an
//! allocation (e.g. staffing quota over districts) against population.
//!
//! Argument roles, the same throughout: an *amount* is what a unit was
//! allocated (quota), a *population* (or `weight`) is how many people it
//! serves, a *rate* is amount per head (`per_10k(amount, population)`).
//! `lorenz`, `theil_t`, `theil_l`, `theil_decompose` and `hoover` take
//! (amount, population); `gini` and `cv` take a value or, weighted, a
//! (rate, population).
//!
//! A location quotient needs no function of its own:
//! `relative_index(count, population, SUM(count) OVER (PARTITION BY region),
//! SUM(population) OVER (PARTITION BY region))`.

mod compact;
mod cv;
mod gini;
mod hoover;
mod lorenz;
mod per_10k;
mod relative_index;
pub(crate) mod support;
mod theil_decompose;
mod theil_l;
mod theil_sums;
mod theil_t;

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

pub use cv::CoefficientOfVariationFunc;
pub use gini::GiniFunc;
pub use hoover::HooverFunc;
pub use lorenz::LorenzFunc;
pub use per_10k::PerTenThousandFunc;
pub use relative_index::RelativeIndexFunc;
pub use theil_decompose::TheilDecomposeFunc;
pub use theil_l::TheilLFunc;
pub use theil_t::TheilTFunc;

/// Every scalar function of this family.
pub fn all_scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(PerTenThousandFunc::new())),
        Arc::new(ScalarUDF::from(RelativeIndexFunc::new())),
    ]
}

/// Every aggregate function of this family.
pub fn all_aggregate_udfs() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::from(GiniFunc::new())),
        Arc::new(AggregateUDF::from(LorenzFunc::new())),
        Arc::new(AggregateUDF::from(TheilTFunc::new())),
        Arc::new(AggregateUDF::from(TheilLFunc::new())),
        Arc::new(AggregateUDF::from(TheilDecomposeFunc::new())),
        Arc::new(AggregateUDF::from(CoefficientOfVariationFunc::new())),
        Arc::new(AggregateUDF::from(HooverFunc::new())),
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
    Ok(registered)
}

#[cfg(test)]
mod tests;
