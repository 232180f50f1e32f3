//! The built-in views of `sql/views/` (created in schema `public` when a data
//! directory is opened) and the table function `region_allocation(year [,
//! quota_type])`, which is the view of that name filtered.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::logical_expr::{cast, col, lit, Expr, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;

/// Every view of `sql/views/`, in creation order (a view may use earlier ones).
pub const VIEWS: &[(&str, &str)] = &[
    (
        "region_allocation",
        include_str!("../../sql/views/region_allocation.sql"),
    ),
    (
        "region_allocation_summary",
        include_str!("../../sql/views/region_allocation_summary.sql"),
    ),
    // Monitoring: helpers first, then one view per rule (see monitor.rs).
    (
        "monitor_calendar",
        include_str!("../../sql/views/monitor_calendar.sql"),
    ),
    (
        "monitor_roster_month",
        include_str!("../../sql/views/monitor_roster_month.sql"),
    ),
    (
        "monitor_pool_month",
        include_str!("../../sql/views/monitor_pool_month.sql"),
    ),
    (
        "monitor_pay_month",
        include_str!("../../sql/views/monitor_pay_month.sql"),
    ),
    (
        "monitor_over_quota",
        include_str!("../../sql/views/monitor_over_quota.sql"),
    ),
    (
        "monitor_over_leader_posts",
        include_str!("../../sql/views/monitor_over_leader_posts.sql"),
    ),
    (
        "monitor_extreme_vacancy",
        include_str!("../../sql/views/monitor_extreme_vacancy.sql"),
    ),
    (
        "monitor_paid_not_on_roster",
        include_str!("../../sql/views/monitor_paid_not_on_roster.sql"),
    ),
    (
        "monitor_on_roster_unpaid",
        include_str!("../../sql/views/monitor_on_roster_unpaid.sql"),
    ),
    (
        "monitor_multiple_payers",
        include_str!("../../sql/views/monitor_multiple_payers.sql"),
    ),
    (
        "monitor_paid_after_exit",
        include_str!("../../sql/views/monitor_paid_after_exit.sql"),
    ),
    (
        "monitor_payer_mismatch",
        include_str!("../../sql/views/monitor_payer_mismatch.sql"),
    ),
    (
        "monitor_headcount_jump",
        include_str!("../../sql/views/monitor_headcount_jump.sql"),
    ),
    (
        "monitor_entry_without_basis",
        include_str!("../../sql/views/monitor_entry_without_basis.sql"),
    ),
    (
        "monitor_ledger_imbalance",
        include_str!("../../sql/views/monitor_ledger_imbalance.sql"),
    ),
];

/// The quota type `region_allocation(year)` means: all types summed.
pub const ALL_QUOTA_TYPES: &str = "全部";

/// Create the views in `ctx`'s default schema and return the table functions
/// built on them.
pub async fn create_all(ctx: &SessionContext) -> Result<Vec<(String, Arc<dyn TableFunctionImpl>)>> {
    for (_, sql) in VIEWS {
        ctx.sql(sql).await?;
    }
    let region_allocation = ctx.table_provider("region_allocation").await?;
    Ok(vec![(
        "region_allocation".to_string(),
        Arc::new(RegionAllocationFunction {
            view: region_allocation,
        }) as Arc<dyn TableFunctionImpl>,
    )])
}

/// `region_allocation(year [, quota_type])`: the rows of the view for one
/// year and one quota type (default [`ALL_QUOTA_TYPES`]).
#[derive(Debug)]
struct RegionAllocationFunction {
    view: Arc<dyn TableProvider>,
}

impl TableFunctionImpl for RegionAllocationFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 2 {
            return plan_err!(
                "region_allocation(year [, quota_type]) takes 1 or 2 arguments, got {}",
                exprs.len()
            );
        }
        let year = match constant(&exprs[0], &DataType::Int64, "year")? {
            Some(ScalarValue::Int64(Some(year))) => year,
            _ => return plan_err!("region_allocation: year must not be NULL"),
        };
        let quota_type = match exprs.get(1) {
            None => ALL_QUOTA_TYPES.to_string(),
            Some(expr) => match constant(expr, &DataType::Utf8, "quota_type")? {
                Some(ScalarValue::Utf8(Some(quota_type))) => quota_type,
                _ => return plan_err!("region_allocation: quota_type must not be NULL"),
            },
        };
        let plan = LogicalPlanBuilder::scan(
            "region_allocation",
            provider_as_source(self.view.clone()),
            None,
        )?
        .filter(
            cast(col("stat_year"), DataType::Int64)
                .eq(lit(year))
                .and(col("quota_type").eq(lit(quota_type))),
        )?
        .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// A literal argument (possibly cast, as `'行政'::text`) as `target`.
fn constant(expr: &Expr, target: &DataType, name: &str) -> Result<Option<ScalarValue>> {
    let value = match expr {
        Expr::Literal(value, _) => value.clone(),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(value, _) => value.clone(),
            _ => return plan_err!("region_allocation: {name} must be a constant, got {expr}"),
        },
        _ => return plan_err!("region_allocation: {name} must be a constant, got {expr}"),
    };
    if value.is_null() {
        return Ok(None);
    }
    match value.cast_to(target) {
        Ok(value) => Ok(Some(value)),
        Err(_) => plan_err!("region_allocation: {name} must be {target}, got {value}"),
    }
}
