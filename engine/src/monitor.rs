//! Monitoring (运行监测): the rules of `sql/views/monitor_*.sql`, evaluated into
//! the `alert` table, and their precision and recall against the generator's
//! planted ground truth.
//!
//! An alert is keyed by (rule, org, person, period). A run evaluates every rule
//! up to the as-of month, appends the keys not seen before, refreshes the open
//! ones, marks open alerts whose condition no longer holds as resolved (已解除)
//! and reopens resolved ones that hold again — all in one Delta commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::prelude::SessionContext;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// One monitoring rule: a view of `sql/views/` with the uniform columns
/// (rule_code, org_id, person_id, period, score, detail).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorRule {
    /// Rule code (also `generator.planted.rule_code`).
    pub code: &'static str,
    /// Chinese name, stored in `alert.rule_name`.
    pub name: &'static str,
    /// The view that evaluates it.
    pub view: &'static str,
    /// Kinds the generator plants for this rule (empty when none).
    pub planted_kinds: &'static [&'static str],
    /// |score| from which an alert is 严重 rather than 预警.
    pub severe_at: f64,
}

/// Every rule, in report order.
pub const MONITOR_RULES: &[MonitorRule] = &[
    MonitorRule {
        code: "over_quota",
        name: "超编",
        view: "monitor_over_quota",
        planted_kinds: &["over_quota"],
        severe_at: 0.1,
    },
    MonitorRule {
        code: "over_leader_posts",
        name: "超职数",
        view: "monitor_over_leader_posts",
        planted_kinds: &["leader_over_allocation"],
        severe_at: 2.0,
    },
    MonitorRule {
        code: "extreme_vacancy",
        name: "空编过多",
        view: "monitor_extreme_vacancy",
        planted_kinds: &["extreme_vacancy"],
        severe_at: 0.7,
    },
    MonitorRule {
        code: "paid_not_on_roster",
        name: "财政发薪但实名制无此人",
        view: "monitor_paid_not_on_roster",
        planted_kinds: &[
            "ghost_fabricated",
            "paid_after_death",
            "paid_after_retirement",
            "paid_after_exit",
        ],
        severe_at: 0.0,
    },
    MonitorRule {
        code: "on_roster_unpaid",
        name: "在编但连续三个月无工资或社保",
        view: "monitor_on_roster_unpaid",
        planted_kinds: &["absent_unpaid"],
        severe_at: 2.0,
    },
    MonitorRule {
        code: "multiple_payers",
        name: "多头领薪",
        view: "monitor_multiple_payers",
        planted_kinds: &["double_pay", "transfer_overlap_pay"],
        severe_at: 3.0,
    },
    MonitorRule {
        code: "paid_after_exit",
        name: "死亡、退休、出编后仍发薪",
        view: "monitor_paid_after_exit",
        planted_kinds: &[
            "paid_after_death",
            "paid_after_retirement",
            "paid_after_exit",
        ],
        severe_at: 3.0,
    },
    MonitorRule {
        code: "payer_mismatch",
        name: "发薪单位与在编单位不一致",
        view: "monitor_payer_mismatch",
        planted_kinds: &["double_pay", "transfer_overlap_pay", "wrong_payer"],
        severe_at: f64::INFINITY,
    },
    MonitorRule {
        code: "headcount_jump",
        name: "在编人数异常突变",
        view: "monitor_headcount_jump",
        planted_kinds: &["headcount_jump"],
        severe_at: 0.25,
    },
    MonitorRule {
        code: "entry_without_basis",
        name: "入编无用编通知或台账依据",
        view: "monitor_entry_without_basis",
        planted_kinds: &["entry_without_notice"],
        severe_at: 1.0,
    },
    MonitorRule {
        code: "ledger_imbalance",
        name: "台账不平",
        view: "monitor_ledger_imbalance",
        planted_kinds: &["ledger_gap"],
        severe_at: 5.0,
    },
];

/// `alert.status` of an alert whose condition holds.
pub const STATUS_OPEN: &str = "未解除";
/// `alert.status` of an alert whose condition no longer holds.
pub const STATUS_RESOLVED: &str = "已解除";

/// What one rule found in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSummary {
    pub code: &'static str,
    pub name: &'static str,
    /// Alerts raised for the first time (or reopened).
    pub new: usize,
    /// Open alerts whose condition still holds.
    pub still_open: usize,
    /// Open alerts whose condition has ended.
    pub resolved: usize,
}

/// What a monitoring run did.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorReport {
    /// The month evaluated up to (inclusive).
    pub as_of: Option<NaiveDate>,
    pub rules: Vec<RuleSummary>,
    /// Rows of `alert` after the run.
    pub total_alerts: usize,
    /// The Delta version written, `None` when nothing changed.
    pub version: Option<u64>,
}

/// One row a rule view returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule_code: String,
    pub org_id: Option<i64>,
    pub person_id: Option<i64>,
    /// Days since 1970-01-01.
    pub period: i32,
    pub score: Option<f64>,
    pub detail: Option<String>,
}

impl Finding {
    /// The alert key: rule, org, person and period.
    pub fn key(&self) -> String {
        alert_key(&self.rule_code, self.org_id, self.person_id, self.period)
    }
}

fn alert_key(rule: &str, org: Option<i64>, person: Option<i64>, period: i32) -> String {
    let id = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    format!("{rule}:{}:{}:{}", id(org), id(person), date_text(period))
}

/// One row of `alert`.
#[derive(Debug, Clone, PartialEq)]
struct AlertRow {
    key: String,
    rule_code: String,
    rule_name: String,
    org_id: Option<i64>,
    person_id: Option<i64>,
    period: i32,
    score: Option<f64>,
    level: String,
    detail: Option<String>,
    status: String,
    first_seen: i64,
    last_seen: i64,
    resolved: Option<i64>,
}

/// The as-of month: `as_of` itself, or the latest month of the payroll feed.
pub async fn resolve_as_of(
    ctx: &SessionContext,
    as_of: Option<NaiveDate>,
) -> Result<Option<NaiveDate>> {
    if as_of.is_some() {
        return Ok(as_of);
    }
    let batches = ctx
        .sql("SELECT max(period) AS period FROM monitor_calendar")
        .await?
        .collect()
        .await?;
    for batch in &batches {
        let column = column_as(batch, 0, &DataType::Date32)?;
        if let Some(days) = column.as_any().downcast_ref::<Date32Array>() {
            if !days.is_empty() && days.is_valid(0) {
                return Ok(date_of(days.value(0)));
            }
        }
    }
    Ok(None)
}

/// Every finding of `rule` with period ≤ `as_of` (all periods when `None`),
/// one per alert key (several rows of one key are merged: the highest score,
/// the details listed).
pub async fn evaluate_rule(
    ctx: &SessionContext,
    rule: &MonitorRule,
    as_of: Option<NaiveDate>,
) -> Result<Vec<Finding>> {
    let filter = match as_of {
        Some(date) => format!(" WHERE period <= DATE '{}'", date.format("%Y-%m-%d")),
        None => String::new(),
    };
    let sql = format!(
        "SELECT rule_code, org_id, person_id, period, score, detail FROM {}{filter}",
        rule.view
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut by_key: BTreeMap<String, (Finding, Vec<String>)> = BTreeMap::new();
    for batch in &batches {
        let rule_code = strings(batch, 0)?;
        let org_id = int64s(batch, 1)?;
        let person_id = int64s(batch, 2)?;
        let period = dates(batch, 3)?;
        let score = float64s(batch, 4)?;
        let detail = strings(batch, 5)?;
        for row in 0..batch.num_rows() {
            if !period.is_valid(row) {
                continue;
            }
            let finding = Finding {
                rule_code: optional_string(&rule_code, row)
                    .unwrap_or_else(|| rule.code.to_string()),
                org_id: optional(&org_id, row),
                person_id: optional(&person_id, row),
                period: period.value(row),
                score: score.is_valid(row).then(|| score.value(row)),
                detail: optional_string(&detail, row),
            };
            let key = finding.key();
            match by_key.get_mut(&key) {
                None => {
                    let details = finding.detail.iter().cloned().collect();
                    by_key.insert(key, (finding, details));
                }
                Some((kept, details)) => {
                    if let Some(detail) = finding.detail {
                        details.push(detail);
                    }
                    kept.score = match (kept.score, finding.score) {
                        (Some(a), Some(b)) => Some(if b.abs() > a.abs() { b } else { a }),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
    }
    Ok(by_key
        .into_values()
        .map(|(mut finding, mut details)| {
            if details.len() > 1 {
                details.sort();
                finding.detail = Some(format!(
                    "{{\"count\":{},\"items\":[{}]}}",
                    details.len(),
                    details.join(",")
                ));
            }
            finding
        })
        .collect())
}

/// Evaluate every rule as of `as_of` (default: the latest payroll month) and
/// bring `alert` up to date in one commit.
pub async fn run_monitor(engine: &Engine, as_of: Option<NaiveDate>) -> Result<MonitorReport> {
    let ctx = engine.session()?;
    let as_of = resolve_as_of(&ctx, as_of).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let mut alerts = read_alerts(&ctx).await?;
    let mut summaries = Vec::new();
    let mut changed = false;
    for rule in MONITOR_RULES {
        let findings = evaluate_rule(&ctx, rule, as_of).await?;
        let mut summary = RuleSummary {
            code: rule.code,
            name: rule.name,
            ..RuleSummary::default()
        };
        let mut seen = BTreeSet::new();
        for finding in findings {
            let key = finding.key();
            let level = level_of(rule, finding.score).to_string();
            match alerts.get_mut(&key) {
                Some(alert) => {
                    if alert.status == STATUS_OPEN {
                        summary.still_open += 1;
                    } else {
                        summary.new += 1;
                        alert.status = STATUS_OPEN.to_string();
                        alert.resolved = None;
                    }
                    alert.score = finding.score;
                    alert.detail = finding.detail;
                    alert.level = level;
                    alert.rule_name = rule.name.to_string();
                    alert.last_seen = now;
                }
                None => {
                    summary.new += 1;
                    alerts.insert(
                        key.clone(),
                        AlertRow {
                            key: key.clone(),
                            rule_code: rule.code.to_string(),
                            rule_name: rule.name.to_string(),
                            org_id: finding.org_id,
                            person_id: finding.person_id,
                            period: finding.period,
                            score: finding.score,
                            level,
                            detail: finding.detail,
                            status: STATUS_OPEN.to_string(),
                            first_seen: now,
                            last_seen: now,
                            resolved: None,
                        },
                    );
                }
            }
            seen.insert(key);
        }
        let as_of_days = as_of.map(days_of);
        for alert in alerts.values_mut() {
            if alert.rule_code == rule.code
                && alert.status == STATUS_OPEN
                && !seen.contains(&alert.key)
                && as_of_days.is_none_or(|d| alert.period <= d)
            {
                alert.status = STATUS_RESOLVED.to_string();
                alert.resolved = Some(now);
                summary.resolved += 1;
            }
        }
        changed |= summary.new > 0 || summary.resolved > 0 || summary.still_open > 0;
        tracing::info!(
            rule = rule.code,
            new = summary.new,
            still_open = summary.still_open,
            resolved = summary.resolved,
            "monitoring rule evaluated"
        );
        summaries.push(summary);
    }
    let total_alerts = alerts.len();
    let version = if changed {
        let batch = alert_batch(engine, alerts.into_values().collect())?;
        Some(replace_table(engine, "alert", batch).await?)
    } else {
        None
    };
    Ok(MonitorReport {
        as_of,
        rules: summaries,
        total_alerts,
        version,
    })
}

/// Run the monitor every `every` until `shutdown`: the first run after one
/// interval; a failed run is logged and the schedule goes on.
pub async fn run_on_schedule(
    engine: Engine,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match run_monitor(&engine, None).await {
            Ok(report) => {
                let new: usize = report.rules.iter().map(|r| r.new).sum();
                let resolved: usize = report.rules.iter().map(|r| r.resolved).sum();
                tracing::info!(
                    new,
                    resolved,
                    total = report.total_alerts,
                    "scheduled monitoring run done"
                );
            }
            Err(e) => tracing::error!(error = %e, "scheduled monitoring run failed"),
        }
    }
}

/// Replace every row of a table by `batch` in one Delta commit (an overwrite):
/// readers see the old rows or the new ones, and a failure leaves the table as
/// it was. Returns the new version.
async fn replace_table(engine: &Engine, table: &str, batch: RecordBatch) -> Result<u64> {
    let delta = engine.data_dir().load(table).await?;
    let written = delta
        .write(vec![batch])
        .with_save_mode(deltalake::protocol::SaveMode::Overwrite)
        .await
        .map_err(|e| bianzhi_catalog::Error::Delta {
            table: table.to_string(),
            source: Box::new(e),
        })?;
    Ok(written.version().unwrap_or(0))
}

/// 严重 when |score| reaches the rule's threshold, 预警 otherwise.
fn level_of(rule: &MonitorRule, score: Option<f64>) -> &'static str {
    match score {
        Some(score) if score.abs() >= rule.severe_at => "严重",
        _ => "预警",
    }
}

async fn read_alerts(ctx: &SessionContext) -> Result<BTreeMap<String, AlertRow>> {
    let batches = ctx
        .sql(
            "SELECT alert_key, rule_code, rule_name, org_id, person_id, period, score, \
             alert_level, detail, status, first_seen_at, last_seen_at, resolved_at FROM alert",
        )
        .await?
        .collect()
        .await?;
    let mut out = BTreeMap::new();
    for batch in &batches {
        let key = strings(batch, 0)?;
        let rule_code = strings(batch, 1)?;
        let rule_name = strings(batch, 2)?;
        let org_id = int64s(batch, 3)?;
        let person_id = int64s(batch, 4)?;
        let period = dates(batch, 5)?;
        let score = float64s(batch, 6)?;
        let level = strings(batch, 7)?;
        let detail = strings(batch, 8)?;
        let status = strings(batch, 9)?;
        let first_seen = timestamps(batch, 10)?;
        let last_seen = timestamps(batch, 11)?;
        let resolved = timestamps(batch, 12)?;
        for row in 0..batch.num_rows() {
            let alert = AlertRow {
                key: optional_string(&key, row).unwrap_or_default(),
                rule_code: optional_string(&rule_code, row).unwrap_or_default(),
                rule_name: optional_string(&rule_name, row).unwrap_or_default(),
                org_id: optional(&org_id, row),
                person_id: optional(&person_id, row),
                period: period.value(row),
                score: score.is_valid(row).then(|| score.value(row)),
                level: optional_string(&level, row).unwrap_or_default(),
                detail: optional_string(&detail, row),
                status: optional_string(&status, row).unwrap_or_default(),
                first_seen: first_seen.value(row),
                last_seen: last_seen.value(row),
                resolved: resolved.is_valid(row).then(|| resolved.value(row)),
            };
            out.insert(alert.key.clone(), alert);
        }
    }
    Ok(out)
}

/// The rows as a batch of `alert`'s schema.
fn alert_batch(engine: &Engine, rows: Vec<AlertRow>) -> Result<RecordBatch> {
    let schema = engine.data_dir().catalog().table("alert")?.arrow_schema();
    let text = |f: &dyn Fn(&AlertRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let time = |f: &dyn Fn(&AlertRow) -> Option<i64>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(f)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.key.clone())),
        text(&|r| Some(r.rule_code.clone())),
        text(&|r| Some(r.rule_name.clone())),
        Arc::new(rows.iter().map(|r| r.org_id).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.person_id).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| Some(r.period)).collect::<Date32Array>()),
        Arc::new(rows.iter().map(|r| r.score).collect::<Float64Array>()),
        text(&|r| Some(r.level.clone())),
        text(&|r| r.detail.clone()),
        text(&|r| Some(r.status.clone())),
        time(&|r| Some(r.first_seen)),
        time(&|r| Some(r.last_seen)),
        time(&|r| r.resolved),
    ];
    // Cast each column to the schema's exact type (e.g. the timestamp's zone).
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(column, field)| cast(&column, field.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Precision and recall of one rule against `generator.planted`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleQuality {
    pub code: &'static str,
    pub name: &'static str,
    pub planted_kinds: &'static [&'static str],
    pub alerts: usize,
    /// Alerts that match a planted anomaly of the rule.
    pub true_alerts: usize,
    /// Planted anomalies (rows of generator.planted) for the rule.
    pub planted: usize,
    /// Planted anomalies matched by at least one alert.
    pub found: usize,
}

impl RuleQuality {
    pub fn precision(&self) -> Option<f64> {
        (self.alerts > 0).then(|| self.true_alerts as f64 / self.alerts as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (self.planted > 0).then(|| self.found as f64 / self.planted as f64)
    }
}

/// One row of generator.planted.
#[derive(Debug, Clone)]
struct PlantedRow {
    rule_code: String,
    org_id: Option<i64>,
    person_id: Option<i64>,
    id_hash: Option<String>,
    period_from: Option<i32>,
    period_to: Option<i32>,
}

impl PlantedRow {
    /// Whether `finding` is this anomaly: the same person (or, for anomalies
    /// without a person, the same body — and no known person for planted
    /// fabricated IDs), in a month of the planted span.
    fn matches(&self, finding: &Finding) -> bool {
        if finding.rule_code != self.rule_code {
            return false;
        }
        let who = match self.person_id {
            Some(person) => finding.person_id == Some(person),
            None => {
                finding.org_id == self.org_id
                    && (self.id_hash.is_none() || finding.person_id.is_none())
            }
        };
        let when = match (self.period_from, self.period_to) {
            (Some(from), Some(to)) => finding.period >= month_start(from) && finding.period <= to,
            (Some(from), None) => finding.period >= month_start(from),
            _ => true,
        };
        who && when
    }
}

/// Precision and recall of every rule as of `as_of` (default: the latest
/// payroll month) against `generator.planted`; writes nothing.
pub async fn evaluate(
    engine: &Engine,
    as_of: Option<NaiveDate>,
) -> Result<(Option<NaiveDate>, Vec<RuleQuality>)> {
    let ctx = engine.session()?;
    let as_of = resolve_as_of(&ctx, as_of).await?;
    let planted = read_planted(&ctx, as_of).await?;
    let mut out = Vec::new();
    for rule in MONITOR_RULES {
        let findings = evaluate_rule(&ctx, rule, as_of).await?;
        let truth: Vec<&PlantedRow> = planted
            .iter()
            .filter(|p| p.rule_code == rule.code)
            .collect();
        let true_alerts = findings
            .iter()
            .filter(|f| truth.iter().any(|t| t.matches(f)))
            .count();
        let found = truth
            .iter()
            .filter(|t| findings.iter().any(|f| t.matches(f)))
            .count();
        out.push(RuleQuality {
            code: rule.code,
            name: rule.name,
            planted_kinds: rule.planted_kinds,
            alerts: findings.len(),
            true_alerts,
            planted: truth.len(),
            found,
        });
    }
    Ok((as_of, out))
}

async fn read_planted(ctx: &SessionContext, as_of: Option<NaiveDate>) -> Result<Vec<PlantedRow>> {
    // An anomaly planted after the as-of month cannot be seen yet.
    let filter = match as_of {
        Some(date) => format!(
            " AND (period_from IS NULL OR period_from <= DATE '{}')",
            date.format("%Y-%m-%d")
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT rule_code, org_id, person_id, id_hash, period_from, period_to \
         FROM generator.planted WHERE rule_code IS NOT NULL{filter}"
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut out = Vec::new();
    for batch in &batches {
        let rule_code = strings(batch, 0)?;
        let org_id = int64s(batch, 1)?;
        let person_id = int64s(batch, 2)?;
        let id_hash = strings(batch, 3)?;
        let from = dates(batch, 4)?;
        let to = dates(batch, 5)?;
        for row in 0..batch.num_rows() {
            out.push(PlantedRow {
                rule_code: optional_string(&rule_code, row).unwrap_or_default(),
                org_id: optional(&org_id, row),
                person_id: optional(&person_id, row),
                id_hash: optional_string(&id_hash, row),
                period_from: from.is_valid(row).then(|| from.value(row)),
                period_to: to.is_valid(row).then(|| to.value(row)),
            });
        }
    }
    Ok(out)
}

/// The quality table as text, one line per rule.
pub fn format_quality(as_of: Option<NaiveDate>, rows: &[RuleQuality]) -> String {
    let ratio = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let mut out = format!(
        "as of {}\n{:<20} {:>7} {:>6} {:>9} {:>8} {:>6} {:>7}  planted kinds\n",
        as_of.map_or_else(|| "-".to_string(), |d| d.to_string()),
        "rule",
        "alerts",
        "true",
        "precision",
        "planted",
        "found",
        "recall"
    );
    for q in rows {
        out.push_str(&format!(
            "{:<20} {:>7} {:>6} {:>9} {:>8} {:>6} {:>7}  {}\n",
            q.code,
            q.alerts,
            q.true_alerts,
            ratio(q.precision()),
            q.planted,
            q.found,
            ratio(q.recall()),
            q.planted_kinds.join(", ")
        ));
    }
    out
}

fn column_as(batch: &RecordBatch, index: usize, to: &DataType) -> Result<ArrayRef> {
    let column = batch.columns().get(index).ok_or_else(|| {
        Error::DataFusion(datafusion::error::DataFusionError::Internal(format!(
            "monitoring: result has no column {index}"
        )))
    })?;
    Ok(cast(column, to)?)
}

fn downcast<T: Clone + 'static>(array: &ArrayRef) -> Result<T> {
    array.as_any().downcast_ref::<T>().cloned().ok_or_else(|| {
        Error::DataFusion(datafusion::error::DataFusionError::Internal(format!(
            "monitoring: unexpected column type {}",
            array.data_type()
        )))
    })
}

fn strings(batch: &RecordBatch, index: usize) -> Result<StringArray> {
    downcast(&column_as(batch, index, &DataType::Utf8)?)
}

fn int64s(batch: &RecordBatch, index: usize) -> Result<Int64Array> {
    downcast(&column_as(batch, index, &DataType::Int64)?)
}

fn float64s(batch: &RecordBatch, index: usize) -> Result<Float64Array> {
    downcast(&column_as(batch, index, &DataType::Float64)?)
}

fn dates(batch: &RecordBatch, index: usize) -> Result<Date32Array> {
    downcast(&column_as(batch, index, &DataType::Date32)?)
}

fn timestamps(batch: &RecordBatch, index: usize) -> Result<TimestampMicrosecondArray> {
    downcast(&column_as(
        batch,
        index,
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?)
}

fn optional(array: &Int64Array, row: usize) -> Option<i64> {
    array.is_valid(row).then(|| array.value(row))
}

fn optional_string(array: &StringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_string())
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date_of(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE)
}

fn days_of(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

fn date_text(days: i32) -> String {
    date_of(days).map_or_else(|| days.to_string(), |d| d.to_string())
}

/// The first day of the month of `days`.
fn month_start(days: i32) -> i32 {
    date_of(days)
        .and_then(|d| d.with_day(1))
        .map_or(days, days_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_view_and_unique_code() {
        let codes: BTreeSet<&str> = MONITOR_RULES.iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), MONITOR_RULES.len());
        for rule in MONITOR_RULES {
            assert!(
                crate::views::VIEWS
                    .iter()
                    .any(|(name, _)| *name == rule.view),
                "{} has no view",
                rule.view
            );
        }
    }

    #[test]
    fn keys_and_matching() {
        let d = |s: &str| days_of(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let finding = Finding {
            rule_code: "entry_without_basis".into(),
            org_id: Some(3),
            person_id: Some(7),
            period: d("2021-05-01"),
            score: Some(1.0),
            detail: None,
        };
        assert_eq!(finding.key(), "entry_without_basis:3:7:2021-05-01");
        let planted = PlantedRow {
            rule_code: "entry_without_basis".into(),
            org_id: Some(3),
            person_id: Some(7),
            id_hash: None,
            period_from: Some(d("2021-05-17")),
            period_to: Some(d("2021-05-17")),
        };
        assert!(planted.matches(&finding));
        let ghost = PlantedRow {
            rule_code: "entry_without_basis".into(),
            org_id: Some(3),
            person_id: None,
            id_hash: Some("ab".into()),
            period_from: Some(d("2021-01-01")),
            period_to: Some(d("2021-04-01")),
        };
        assert!(
            !ghost.matches(&finding),
            "outside the span, and a known person"
        );
        assert_eq!(days_of(date_of(d("2024-12-01")).unwrap()), d("2024-12-01"));
        assert_eq!(month_start(d("2024-02-29")), d("2024-02-01"));
    }
}
