//! Table functions whose calls scan under names of their own.
//!
//! DataFusion names the scan of every table function call after the function
//! alone and compares scans by name and schema, not by provider. Two calls
//! with different arguments in one query — `(SELECT count(*) FROM
//! similar_pairs(…, 0.3))` next to the same at 0.9 — could then be taken for
//! one and both answered by the first. Wrapping each call's table in a view
//! over a scan named after the call with its arguments keeps them apart.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlanBuilder;

/// `inner`, registered as `name`, with one scan name per distinct call.
#[derive(Debug)]
pub struct DistinctScans {
    name: String,
    inner: Arc<dyn TableFunctionImpl>,
}

impl DistinctScans {
    pub fn wrap(name: &str, inner: Arc<dyn TableFunctionImpl>) -> Arc<dyn TableFunctionImpl> {
        Arc::new(Self {
            name: name.to_string(),
            inner,
        })
    }
}

impl TableFunctionImpl for DistinctScans {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let arguments: Vec<String> = args.exprs().iter().map(ToString::to_string).collect();
        let scan = format!("{}({})", self.name, arguments.join(", "));
        let provider = self.inner.call_with_args(args)?;
        named_scan(scan, provider)
    }
}

/// `provider` as a view over a scan named `name`.
fn named_scan(name: String, provider: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let plan = LogicalPlanBuilder::scan(
        TableReference::bare(name),
        provider_as_source(provider),
        None,
    )?
    .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
