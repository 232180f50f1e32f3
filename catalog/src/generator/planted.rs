//! What the generator plants on purpose, at which rates, and the ground truth it
//! records in `generator.planted` — one row per (anomaly, monitoring rule that
//! should catch it), grouped by `detail.group` when one anomaly should trip two
//! rules.
//!
//! Rates are fractions of the population they are drawn from, following
//! DOMAIN.md (3–5% of units over quota at a snapshot, 1–2% of people with a
//! payroll/roster mismatch, ≤0.5% true ghost cases, about 40,000 over-quota
//! leader posts nationally):
//!
//! | kind | drawn from | rate | rules |
//! |---|---|---|---|
//! | over_quota | staffing pools with ≥ 5 approved | 8% (half still going on at the end) | over_quota |
//! | leader_over_allocation | bodies with leader posts | 3% | over_leader_posts |
//! | extreme_vacancy | pools with ≥ 10 approved | 1.5% | extreme_vacancy |
//! | headcount_jump | non-school pools with ≥ 20 approved | 1% | headcount_jump |
//! | ledger_gap | pools | 1% | ledger_imbalance |
//! | entry_without_notice | entries (入编, 调入) in the frame | 0.5% | entry_without_basis |
//! | ghost_fabricated (冒名饷) | roster people | 0.05% | paid_not_on_roster |
//! | paid_after_death (死人饷) | deaths | 25% | paid_after_exit, paid_not_on_roster |
//! | paid_after_retirement | retirements | 1.5% | paid_after_exit, paid_not_on_roster |
//! | paid_after_exit (离职后仍发薪) | resignations and dismissals | 3% | paid_after_exit, paid_not_on_roster |
//! | double_pay (多头饷) | roster people | 0.1% | multiple_payers, payer_mismatch |
//! | transfer_overlap_pay | transfers | 3% | multiple_payers, payer_mismatch |
//! | wrong_payer | roster people | 0.3% | payer_mismatch |
//! | absent_unpaid (挂名、停薪) | roster people | 0.1% | on_roster_unpaid |
//! | duplicated_duty (职能交叉) | duty clauses of departments | 1.5% | (function overlap report) |
//!
//! Everything else the generator does is built so that these rules stay silent
//! on unplanted data: hires never exceed the approved count, leaders never exceed
//! posts, quota cuts only take vacancies, pay follows the roster (the unit of
//! record on the 15th of a month pays that month), every entry carries a
//! 用编通知, and every ledger movement is reflected in the approved counts.

use chrono::NaiveDate;

/// Rates of the table above.
pub mod rates {
    pub const OVER_QUOTA: f64 = 0.08;
    pub const LEADER_OVER_ALLOCATION: f64 = 0.03;
    pub const EXTREME_VACANCY: f64 = 0.015;
    pub const HEADCOUNT_JUMP: f64 = 0.01;
    pub const LEDGER_GAP: f64 = 0.01;
    pub const ENTRY_WITHOUT_NOTICE: f64 = 0.005;
    pub const GHOST_FABRICATED: f64 = 0.0005;
    pub const PAID_AFTER_DEATH: f64 = 0.25;
    pub const PAID_AFTER_RETIREMENT: f64 = 0.015;
    pub const PAID_AFTER_EXIT: f64 = 0.03;
    pub const DOUBLE_PAY: f64 = 0.001;
    pub const TRANSFER_OVERLAP_PAY: f64 = 0.03;
    pub const WRONG_PAYER: f64 = 0.003;
    pub const ABSENT_UNPAID: f64 = 0.001;
    pub const DUPLICATED_DUTY: f64 = 0.015;
}

/// Monitoring rule codes (see sql/views/): the ground truth names them.
pub mod rule {
    pub const OVER_QUOTA: &str = "over_quota";
    pub const OVER_LEADER_POSTS: &str = "over_leader_posts";
    pub const EXTREME_VACANCY: &str = "extreme_vacancy";
    pub const PAID_NOT_ON_ROSTER: &str = "paid_not_on_roster";
    pub const ON_ROSTER_UNPAID: &str = "on_roster_unpaid";
    pub const MULTIPLE_PAYERS: &str = "multiple_payers";
    pub const PAID_AFTER_EXIT: &str = "paid_after_exit";
    pub const PAYER_MISMATCH: &str = "payer_mismatch";
    pub const HEADCOUNT_JUMP: &str = "headcount_jump";
    pub const ENTRY_WITHOUT_BASIS: &str = "entry_without_basis";
    pub const LEDGER_IMBALANCE: &str = "ledger_imbalance";
}

/// One row of `generator.planted`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedRow {
    pub id: i64,
    pub kind: &'static str,
    pub rule_code: Option<&'static str>,
    pub org_id: Option<i64>,
    pub person_id: Option<i64>,
    pub id_hash: Option<String>,
    pub period_from: Option<NaiveDate>,
    pub period_to: Option<NaiveDate>,
    pub detail: String,
}

/// Collects planted anomalies as they are made.
#[derive(Debug, Default)]
pub struct Planted {
    rows: Vec<PlantedRow>,
    groups: i64,
}

/// What is known about one planted anomaly.
#[derive(Debug, Clone, Default)]
pub struct Plant {
    pub org_id: Option<i64>,
    pub person_id: Option<i64>,
    pub id_hash: Option<String>,
    pub period_from: Option<NaiveDate>,
    pub period_to: Option<NaiveDate>,
    /// Extra JSON fields (without braces), e.g. `"quota_type":"行政"`.
    pub detail: String,
}

impl Planted {
    /// Record one anomaly that each of `rules` should catch.
    pub fn add(&mut self, kind: &'static str, rules: &[&'static str], plant: Plant) {
        self.groups += 1;
        let group = self.groups;
        let detail = if plant.detail.is_empty() {
            format!("{{\"group\":{group}}}")
        } else {
            format!("{{\"group\":{group},{}}}", plant.detail)
        };
        let rules: Vec<Option<&'static str>> = if rules.is_empty() {
            vec![None]
        } else {
            rules.iter().map(|r| Some(*r)).collect()
        };
        for rule_code in rules {
            self.rows.push(PlantedRow {
                id: self.rows.len() as i64 + 1,
                kind,
                rule_code,
                org_id: plant.org_id,
                person_id: plant.person_id,
                id_hash: plant.id_hash.clone(),
                period_from: plant.period_from,
                period_to: plant.period_to,
                detail: detail.clone(),
            });
        }
    }

    pub fn rows(&self) -> &[PlantedRow] {
        &self.rows
    }

    pub fn rows_mut(&mut self) -> &mut [PlantedRow] {
        &mut self.rows
    }

    pub fn count(&self, kind: &str) -> usize {
        let mut groups: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.detail.as_str())
            .collect();
        groups.dedup();
        groups.len()
    }
}

/// Quote a string for JSON.
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
