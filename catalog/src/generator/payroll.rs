//! The monthly external feeds (外部比对数据): finance payroll (财政统发工资),
//! social insurance (社会保险), retirement approvals (人力资源社会保障) and death
//! registrations (公安户籍), streamed in batches so memory stays bounded.
//!
//! Pay follows the roster: the body of record on the 15th of a month pays that
//! month's salary and pension contribution. 编外 staff (雇员、聘员、劳务派遣)
//! appear only as payroll (编外人员劳务费). Planted anomalies bend these rules
//! as [`super::staffing::PayMod`] says.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use rayon::prelude::*;

use super::calendar::{days, month_of, month_start, MONTHS};
use super::orgs::Role;
use super::people::{payroll_only_identity, ExitReason, StaffKind};
use super::rng::Rng;
use super::staffing::{Assignment, PayMod, Staffing};
use crate::error::{Error, Result};

/// Persons per batch.
const PERSONS_PER_BATCH: usize = 1024;

/// One roster row before it goes into Arrow.
struct Row<'a> {
    source: &'static str,
    period: i32,
    id_hash: &'a str,
    name: &'a str,
    org_id: Option<i64>,
    item: &'static str,
    cents: Option<i128>,
    event_date: Option<i32>,
}

struct Columns {
    source: StringBuilder,
    period: Date32Builder,
    id_hash: StringBuilder,
    name: StringBuilder,
    org_id: Int64Builder,
    item: StringBuilder,
    amount: Decimal128Builder,
    event_date: Date32Builder,
}

impl Columns {
    fn new(capacity: usize) -> Self {
        Columns {
            source: StringBuilder::with_capacity(capacity, capacity * 12),
            period: Date32Builder::with_capacity(capacity),
            id_hash: StringBuilder::with_capacity(capacity, capacity * 32),
            name: StringBuilder::with_capacity(capacity, capacity * 9),
            org_id: Int64Builder::with_capacity(capacity),
            item: StringBuilder::with_capacity(capacity, capacity * 12),
            amount: Decimal128Builder::with_capacity(capacity),
            event_date: Date32Builder::with_capacity(capacity),
        }
    }

    fn push(&mut self, row: Row<'_>) {
        self.source.append_value(row.source);
        self.period.append_value(row.period);
        self.id_hash.append_value(row.id_hash);
        self.name.append_value(row.name);
        self.org_id.append_option(row.org_id);
        self.item.append_value(row.item);
        self.amount.append_option(row.cents);
        self.event_date.append_option(row.event_date);
    }

    fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let amount = self
            .amount
            .finish()
            .with_precision_and_scale(12, 2)
            .map_err(|e| Error::datafusion("building external_roster", e))?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.period.finish()),
            Arc::new(self.id_hash.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.org_id.finish()),
            Arc::new(self.item.finish()),
            Arc::new(amount),
            Arc::new(self.event_date.finish()),
        ];
        RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::datafusion("building external_roster", e))
    }
}

/// Monthly salary in yuan of one assignment in month `m`, before noise.
fn base_salary(a: &Assignment, m: usize) -> f64 {
    let years = (month_start(m) - a.entry).num_days() as f64 / 365.25;
    let seniority = years.clamp(0.0, 35.0);
    let rank_bonus = match a.civil_rank {
        Some("一级巡视员") => 16_000.0,
        Some("二级巡视员") => 13_000.0,
        Some("一级调研员") => 10_000.0,
        Some("二级调研员") => 8_500.0,
        Some("三级调研员") => 7_000.0,
        Some("四级调研员") => 6_000.0,
        Some("一级主任科员") => 4_800.0,
        Some("二级主任科员") => 3_800.0,
        Some("三级主任科员") => 2_800.0,
        Some("四级主任科员") => 2_000.0,
        Some("一级科员") => 1_000.0,
        _ => 0.0,
    };
    match a.category {
        "公务员" => 13_500.0 + rank_bonus + 150.0 * seniority,
        "参公人员" => 12_800.0 + rank_bonus * 0.95 + 140.0 * seniority,
        "工勤人员" => 8_200.0 + 90.0 * seniority,
        "专业技术人员" => match a.kind {
            StaffKind::Medical => 15_500.0 + 420.0 * seniority,
            StaffKind::Teacher => 14_500.0 + 330.0 * seniority,
            _ => 12_500.0 + 300.0 * seniority,
        },
        _ => 12_000.0 + 260.0 * seniority,
    }
}

fn cents(yuan: f64) -> i128 {
    (yuan * 100.0).round() as i128
}

/// The pension contribution (unit 16% + individual 8%) on a capped base.
fn insurance(base: f64) -> f64 {
    base.min(35_000.0) * 0.24
}

/// What one month of one person looks like: who pays, how much.
struct Month {
    payer: Option<usize>,
    assignment: Option<usize>,
    pay: bool,
    insurance: bool,
    extra_payer: Option<usize>,
}

/// All roster batches, in a fixed order: roster people, 编外 staff, ghosts, then
/// the retirement and death feeds.
pub struct RosterBatches<'a> {
    staffing: &'a Staffing,
    seed: u64,
    hash_key: &'a [u8],
    schema: SchemaRef,
    by_person: Vec<Vec<usize>>,
    outside: Vec<(usize, usize)>,
}

impl<'a> RosterBatches<'a> {
    pub fn new(
        staffing: &'a Staffing,
        seed: u64,
        hash_key: &'a [u8],
        scale: f64,
        schema: SchemaRef,
    ) -> Self {
        let mut by_person = vec![Vec::new(); staffing.persons.len()];
        for (index, a) in staffing.assignments.iter().enumerate() {
            by_person[a.person].push(index);
        }
        // 编外 posts per body: many at streets, some at hospitals and departments.
        let mut outside = Vec::new();
        for (org_index, org) in staffing.orgs.iter().enumerate() {
            if org.role == Role::Division {
                continue;
            }
            let share = match org.role {
                Role::Street => 0.6,
                Role::Hospital => 0.25,
                Role::Department | Role::Branch => 0.10,
                _ => 0.05,
            };
            let quota: f64 = org.quotas.iter().map(|(_, q)| q * scale).sum();
            let mut rng = Rng::new(seed, "outside-posts", org.id as u64);
            let posts = rng.round_stochastic(quota * share) as usize;
            if posts > 0 {
                outside.push((org_index, posts));
            }
        }
        RosterBatches {
            staffing,
            seed,
            hash_key,
            schema,
            by_person,
            outside,
        }
    }

    /// Number of batches [`Self::batch`] accepts.
    pub fn len(&self) -> usize {
        self.person_batches() + self.outside.len().div_ceil(64) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn person_batches(&self) -> usize {
        self.staffing.persons.len().div_ceil(PERSONS_PER_BATCH)
    }

    /// Build batch `index` (independent of every other batch, so they can be
    /// built in parallel and written in order).
    pub fn batch(&self, index: usize) -> Result<RecordBatch> {
        let person_batches = self.person_batches();
        if index < person_batches {
            let from = index * PERSONS_PER_BATCH;
            let to = (from + PERSONS_PER_BATCH).min(self.staffing.persons.len());
            let mut columns = Columns::new((to - from) * 110);
            for person in from..to {
                self.person_rows(person, &mut columns);
            }
            return columns.finish(&self.schema);
        }
        let outside_index = index - person_batches;
        let outside_batches = self.outside.len().div_ceil(64);
        if outside_index < outside_batches {
            let from = outside_index * 64;
            let to = (from + 64).min(self.outside.len());
            let mut columns = Columns::new(64 * 600);
            for &(org, posts) in &self.outside[from..to] {
                self.outside_rows(org, posts, &mut columns);
            }
            return columns.finish(&self.schema);
        }
        let mut columns = Columns::new(4096);
        self.ghost_rows(&mut columns);
        self.feed_rows(&mut columns);
        columns.finish(&self.schema)
    }

    /// Build batches `range` in parallel.
    pub fn batches(&self, range: std::ops::Range<usize>) -> Result<Vec<RecordBatch>> {
        range.into_par_iter().map(|i| self.batch(i)).collect()
    }

    fn months_of(&self, person: usize) -> Vec<Month> {
        let assignments = &self.by_person[person];
        let mut months: Vec<Month> = (0..MONTHS)
            .map(|m| {
                let day15 = month_start(m) + Duration::days(14);
                let assignment = assignments.iter().copied().find(|&a| {
                    let a = &self.staffing.assignments[a];
                    a.entry <= day15 && a.exit.is_none_or(|(d, _)| d > day15)
                });
                Month {
                    payer: assignment.map(|a| self.staffing.assignments[a].org),
                    assignment,
                    pay: assignment.is_some(),
                    insurance: assignment.is_some(),
                    extra_payer: None,
                }
            })
            .collect();
        if let Some(mods) = self.staffing.pay_mods.get(&person) {
            for modification in mods {
                match *modification {
                    PayMod::ExtendAfterExit {
                        assignment,
                        months: extra,
                    } => {
                        let a = &self.staffing.assignments[assignment];
                        let Some(exit_month) = a.exit.and_then(|(d, _)| month_of(d)) else {
                            continue;
                        };
                        let last = (exit_month + extra).min(MONTHS - 1);
                        for month in months.iter_mut().take(last + 1).skip(exit_month + 1) {
                            if month.assignment.is_none() {
                                *month = Month {
                                    payer: Some(a.org),
                                    assignment: Some(assignment),
                                    pay: true,
                                    insurance: true,
                                    extra_payer: None,
                                };
                            }
                        }
                    }
                    PayMod::Duplicate { payer, from, to } => {
                        for month in &mut months[from..=to.min(MONTHS - 1)] {
                            if month.pay {
                                month.extra_payer = Some(payer);
                            }
                        }
                    }
                    PayMod::WrongPayer { payer, from, to } => {
                        for month in &mut months[from..=to.min(MONTHS - 1)] {
                            if month.payer.is_some() {
                                month.payer = Some(payer);
                            }
                        }
                    }
                    PayMod::Withheld {
                        from,
                        to,
                        pay,
                        insurance,
                    } => {
                        for month in &mut months[from..=to.min(MONTHS - 1)] {
                            if pay {
                                month.pay = false;
                            }
                            if insurance {
                                month.insurance = false;
                            }
                        }
                    }
                }
            }
        }
        months
    }

    fn person_rows(&self, person: usize, columns: &mut Columns) {
        let p = &self.staffing.persons[person];
        let mut rng = Rng::new(self.seed, "payroll", p.id as u64);
        for (m, month) in self.months_of(person).into_iter().enumerate() {
            let (Some(payer), Some(assignment)) = (month.payer, month.assignment) else {
                continue;
            };
            let a = &self.staffing.assignments[assignment];
            let base = base_salary(a, m);
            let noise = rng.uniform(0.97, 1.03);
            // December carries the year-end bonus (年终一次性奖金).
            let salary = if month_start(m).month() == 12 {
                base * 2.1
            } else {
                base
            } * noise;
            let period = days(month_start(m));
            let org_id = |org: usize| Some(self.staffing.orgs[org].id);
            if month.pay {
                columns.push(Row {
                    source: "财政统发工资",
                    period,
                    id_hash: &p.id_hash,
                    name: &p.name,
                    org_id: org_id(payer),
                    item: "应发工资",
                    cents: Some(cents(salary)),
                    event_date: None,
                });
                if let Some(extra) = month.extra_payer {
                    columns.push(Row {
                        source: "财政统发工资",
                        period,
                        id_hash: &p.id_hash,
                        name: &p.name,
                        org_id: org_id(extra),
                        item: "应发工资",
                        cents: Some(cents(base * rng.uniform(0.9, 1.0))),
                        event_date: None,
                    });
                }
            }
            if month.insurance {
                columns.push(Row {
                    source: "社会保险",
                    period,
                    id_hash: &p.id_hash,
                    name: &p.name,
                    org_id: org_id(payer),
                    item: "养老保险缴费",
                    cents: Some(cents(insurance(base))),
                    event_date: None,
                });
            }
        }
    }

    fn outside_rows(&self, org: usize, posts: usize, columns: &mut Columns) {
        let org_id = self.staffing.orgs[org].id;
        let valid_to = self.staffing.orgs[org].valid_to;
        let valid_from = self.staffing.orgs[org].valid_from;
        for post in 0..posts {
            let mut rng = Rng::new(self.seed, "outside", (org_id as u64) << 16 | post as u64);
            let mut m = 0usize;
            let mut holder = 0u64;
            // Posts are held by a sequence of people with about 2½ years' tenure.
            while m < MONTHS {
                let tenure = 1 + rng.exponential(30.0) as usize;
                let (id_hash, name) = payroll_only_identity(
                    self.seed,
                    self.hash_key,
                    "outside-person",
                    (org_id as u64) << 24 | (post as u64) << 8 | holder,
                );
                let monthly = rng.uniform(6_000.0, 11_000.0);
                for month in m..(m + tenure).min(MONTHS) {
                    let start = month_start(month);
                    if start < valid_from || valid_to.is_some_and(|to| start >= to) {
                        continue;
                    }
                    columns.push(Row {
                        source: "财政统发工资",
                        period: days(start),
                        id_hash: &id_hash,
                        name: &name,
                        org_id: Some(org_id),
                        item: "编外人员劳务费",
                        cents: Some(cents(monthly * rng.uniform(0.98, 1.02))),
                        event_date: None,
                    });
                }
                m += tenure + rng.below(2) as usize;
                holder += 1;
            }
        }
    }

    fn ghost_rows(&self, columns: &mut Columns) {
        for ghost in &self.staffing.ghosts {
            let (id_hash, name) =
                payroll_only_identity(self.seed, self.hash_key, "ghost", ghost.index);
            let mut rng = Rng::new(self.seed, "ghost-pay", ghost.index);
            let monthly = rng.uniform(12_000.0, 20_000.0);
            for m in ghost.from..=ghost.to {
                columns.push(Row {
                    source: "财政统发工资",
                    period: days(month_start(m)),
                    id_hash: &id_hash,
                    name: &name,
                    org_id: Some(self.staffing.orgs[ghost.payer].id),
                    item: "应发工资",
                    cents: Some(cents(monthly)),
                    event_date: None,
                });
            }
        }
    }

    /// Retirement approvals and death registrations, in date order.
    fn feed_rows(&self, columns: &mut Columns) {
        let mut feed: BTreeMap<(NaiveDate, usize, u8), (usize, Option<usize>)> = BTreeMap::new();
        for (index, a) in self.staffing.assignments.iter().enumerate() {
            if let Some((date, ExitReason::Retirement)) = a.exit {
                if month_of(date).is_some() {
                    feed.insert((date, a.person, 0), (a.person, Some(a.org)));
                }
            }
            let _ = index;
        }
        for (person, p) in self.staffing.persons.iter().enumerate() {
            if let Some(death) = p.death.filter(|d| month_of(*d).is_some()) {
                feed.insert((death, person, 1), (person, None));
            }
        }
        for ((date, _, kind), (person, org)) in feed {
            let p = &self.staffing.persons[person];
            let Some(m) = month_of(date) else { continue };
            columns.push(Row {
                source: if kind == 0 {
                    "人力资源社会保障"
                } else {
                    "公安户籍"
                },
                period: days(month_start(m)),
                id_hash: &p.id_hash,
                name: &p.name,
                org_id: org.map(|o| self.staffing.orgs[o].id),
                item: if kind == 0 {
                    "退休审批"
                } else {
                    "死亡注销"
                },
                cents: None,
                event_date: Some(days(date)),
            });
        }
    }
}
