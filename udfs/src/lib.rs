//! bianzhi-udfs: SQL functions for 机构编制 analysis, on DataFusion alone.
//!
//! Families: `text` (职能分析: similarity of Chinese duty texts, fuzzy search),
//! `allocation` (资源配置: per-capita rates, inequality), `anomaly` (运行监测:
//! robust scores). Everything is registered through [`register_all`], which the
//! engine, the tests and a future cluster executor all call.

pub mod allocation;
pub mod anomaly;
pub mod text;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};

/// Register every scalar, aggregate and window function of this crate; returns
/// how many were registered.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<usize> {
    let mut registered = 0;
    registered += allocation::register(registry)?;
    registered += anomaly::register(registry)?;
    registered += text::register(registry)?;
    Ok(registered)
}

/// Every scalar function [`register_all`] registers (for catalogs and docs).
pub fn all_scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    let mut all = allocation::all_scalar_udfs();
    all.extend(anomaly::all_scalar_udfs());
    all.extend(text::all_scalar_udfs());
    all
}

/// Every aggregate function [`register_all`] registers.
pub fn all_aggregate_udfs() -> Vec<Arc<AggregateUDF>> {
    let mut all = allocation::all_aggregate_udfs();
    all.extend(anomaly::all_aggregate_udfs());
    all
}

/// Every window function [`register_all`] registers.
pub fn all_window_udfs() -> Vec<Arc<WindowUDF>> {
    anomaly::all_window_udfs()
}
