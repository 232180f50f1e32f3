//! The synthetic Shenzhen: a deterministic generator of every table, with planted
//! anomalies whose ground truth goes to `generator.planted`.
//!
//! Same seed and scale → identical tables. `scale` multiplies every count of
//! people and residents (quotas, staff, payroll, population figures); the set of
//! bodies, duties and power items is the same at every scale, so rates such as
//! quota per 10,000 residents or vacancy rates are scale-free. At scale 1 the
//! figures are Shenzhen's (2020 census by district). See docs/generator.md.

pub mod calendar;
pub mod documents;
pub mod events;
pub mod function_texts;
pub mod functions;
pub mod id_number;
pub mod names;
pub mod orgs;
pub mod payroll;
pub mod people;
pub mod planted;
pub mod reforms;
pub mod rng;
pub mod shenzhen;
pub mod staffing;
pub mod tables;
pub mod templates;

use std::time::Instant;

use chrono::{Datelike, Duration};

use crate::data_dir::{DataDir, TableWriter};
use crate::error::{Error, Result};
use calendar::{frame_start, month_start, office_timestamp, ymd, MONTHS};
use documents::Documents;
use planted::Planted;
use rng::Rng;
use shenzhen::{street_weights, CITY_CODE, CITY_NAME, CITY_POPULATION, DISTRICTS};
use tables::{Cell, TableBuilder};

/// Version of the generator's model; changes when the same seed would give other data.
pub const GENERATOR_VERSION: &str = "1";

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    /// 1.0 ≈ Shenzhen (about 2,000 bodies, 300k people, 18M payroll rows).
    pub scale: f64,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    pub tables: Vec<(String, u64)>,
    pub seconds: f64,
}

impl GenerateSummary {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|(_, rows)| rows).sum()
    }
}

/// Receives progress: (step description, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// Tables the generator fills (all but `alert` and `dict_code`).
const GENERATED: &[&str] = &[
    "region",
    "region_stat_year",
    "org",
    "establishment_quota",
    "leadership_quota",
    "person",
    "staff_assignment",
    "staff_event",
    "quota_ledger",
    "document",
    "org_duty",
    "power_item",
    "reform",
    "reform_org_change",
    "external_roster",
    "supervision_case",
    "generator.planted",
    "generator.run_info",
];

/// Generate into `data`, which must not hold generated data yet. All files are
/// written first and every table is committed at the end, so a failure leaves
/// the tables as they were.
pub async fn generate(
    data: &DataDir,
    options: GenerateOptions,
    progress: Progress<'_>,
) -> Result<GenerateSummary> {
    let started = Instant::now();
    if !(options.scale > 0.0 && options.scale <= 10.0) {
        return Err(Error::Generator(format!(
            "scale must be in (0, 10], got {}",
            options.scale
        )));
    }
    for table in GENERATED {
        if data.row_count(table).await? > 0 {
            return Err(Error::Generator(format!(
                "{} already holds data (table {table} is not empty); generate into a new data directory",
                data.location()
            )));
        }
    }
    let seed = options.seed;
    let scale = options.scale;
    let hash_key = format!("bianzhi-generator-{seed}").into_bytes();

    progress("simulating staffing", 0, 4);
    let mut docs = Documents::default();
    let mut planted = Planted::default();
    let orgs = orgs::build_orgs(seed);
    let staffing = staffing::simulate(orgs, seed, scale, &hash_key, &mut docs, &mut planted);
    progress("deriving events and functions", 1, 4);
    let events = events::derive_events(&staffing, seed);
    let functions = functions::build_functions(&staffing, seed, &mut docs, &mut planted);
    tracing::debug!(
        orgs = staffing.orgs.len(),
        persons = staffing.persons.len(),
        assignments = staffing.assignments.len(),
        events = events.len(),
        duties = functions.duties.len(),
        powers = functions.powers.len(),
        "simulated"
    );

    let mut writers: Vec<TableWriter> = Vec::new();
    let mut counts: Vec<(String, u64)> = Vec::new();
    let mut write = |writer: TableWriter| {
        counts.push((writer.name().to_string(), writer.rows()));
        writers.push(writer);
    };

    progress("writing tables", 2, 4);
    write(region_table(data, scale).await?);
    write(region_stat_table(data, scale).await?);
    write(org_table(data, &staffing).await?);
    write(quota_table(data, &staffing).await?);
    write(leadership_table(data, &staffing).await?);
    write(person_table(data, &staffing).await?);
    write(assignment_table(data, &staffing).await?);
    write(event_table(data, &events).await?);
    write(ledger_table(data, &staffing).await?);
    write(document_table(data, &docs).await?);
    write(duty_table(data, &staffing, &functions).await?);
    write(power_table(data, &staffing, &functions).await?);
    let (reforms, changes) = reform_tables(data, &staffing).await?;
    write(reforms);
    write(changes);
    write(supervision_table(data, &staffing, &planted, seed, scale).await?);
    write(planted_table(data, &planted).await?);
    write(run_info_table(data, options).await?);

    // The payroll feeds, streamed in parallel-built batches.
    let mut roster = data.writer("external_roster").await?;
    let batches = payroll::RosterBatches::new(&staffing, seed, &hash_key, scale, roster.schema());
    let total = batches.len();
    let window = rayon::current_num_threads().max(1) * 2;
    let mut next = 0;
    while next < total {
        let end = (next + window).min(total);
        for batch in batches.batches(next..end)? {
            roster.write(batch).await?;
        }
        next = end;
        progress("writing external_roster", next as u64, total as u64);
    }
    counts.push(("external_roster".to_string(), roster.rows()));
    writers.push(roster);

    progress("committing", 3, 4);
    for writer in writers {
        writer.commit().await?;
    }
    progress("done", 4, 4);
    counts.sort_by_key(|(name, _)| {
        GENERATED
            .iter()
            .position(|t| t == name)
            .unwrap_or(usize::MAX)
    });
    Ok(GenerateSummary {
        tables: counts,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn finish(data: &DataDir, name: &str, mut builder: TableBuilder) -> Result<TableWriter> {
    let mut writer = data.writer(name).await?;
    if builder.rows() > 0 {
        writer.write(builder.finish()?).await?;
    }
    Ok(writer)
}

fn builder(data: &DataDir, name: &str) -> Result<TableBuilder> {
    TableBuilder::new(data.catalog().table(name)?)
}

fn scaled(value: f64, scale: f64) -> i64 {
    (value * scale).round() as i64
}

async fn region_table(data: &DataDir, _scale: f64) -> Result<TableWriter> {
    let mut b = builder(data, "region")?;
    let city = format!("{CITY_CODE}000000");
    let city_gb = CITY_CODE.to_string();
    b.push(&[
        Cell::Text(&city),
        Cell::Text(CITY_NAME),
        Cell::Text("市"),
        Cell::Null,
        Cell::Text(&city_gb),
        Cell::Bool(false),
        Cell::Int(1),
    ])?;
    let mut order = 1;
    for district in &DISTRICTS {
        order += 1;
        let code = district.region_code();
        let gb = district.code.to_string();
        b.push(&[
            Cell::Text(&code),
            Cell::Text(district.name),
            Cell::Text("区"),
            Cell::Text(&city),
            if district.has_gb2260 {
                Cell::Text(&gb)
            } else {
                Cell::Null
            },
            Cell::Bool(district.function_area),
            Cell::Int(order),
        ])?;
    }
    for district in &DISTRICTS {
        let parent = district.region_code();
        for (index, street) in district.streets.iter().enumerate() {
            order += 1;
            let code = district.street_code(index);
            let name = format!("{street}{}", district.street_suffix());
            b.push(&[
                Cell::Text(&code),
                Cell::Text(&name),
                Cell::Text(if district.towns { "镇" } else { "街道" }),
                Cell::Text(&parent),
                Cell::Null,
                Cell::Bool(false),
                Cell::Int(order),
            ])?;
        }
    }
    finish(data, "region", b).await
}

/// Per-resident rates of the workload drivers (est.), by district: central
/// districts have more market entities and hospital beds per resident.
fn drivers(district_index: usize) -> (f64, f64, f64) {
    let central = matches!(
        DISTRICTS[district_index].name,
        "福田区" | "罗湖区" | "南山区"
    );
    let students = 0.145 + 0.01 * ((district_index % 3) as f64);
    let beds = if central { 0.0052 } else { 0.0029 };
    let market = if central { 0.34 } else { 0.19 };
    (students, beds, market)
}

async fn region_stat_table(data: &DataDir, scale: f64) -> Result<TableWriter> {
    let mut b = builder(data, "region_stat_year")?;
    let city = format!("{CITY_CODE}000000");
    for (year, _) in CITY_POPULATION {
        let mut totals = [0i64; 5];
        let mut area = 0.0;
        for (index, district) in DISTRICTS.iter().enumerate() {
            let residents = district.population(year) as f64;
            let (students, beds, market) = drivers(index);
            let row = [
                scaled(residents, scale),
                scaled(
                    residents * district.registered_share * (1.0 + 0.02 * f64::from(year - 2020)),
                    scale,
                ),
                scaled(residents * students, scale),
                scaled(residents * beds, scale),
                scaled(
                    residents * market * (1.0 + 0.04 * f64::from(year - 2020)),
                    scale,
                ),
            ];
            for (total, value) in totals.iter_mut().zip(row) {
                *total += value;
            }
            area += district.area_km2;
            let code = district.region_code();
            b.push(&[
                Cell::Text(&code),
                Cell::Int(i64::from(year)),
                Cell::Int(row[0]),
                Cell::Int(row[1]),
                Cell::Real(district.area_km2),
                Cell::Int(row[2]),
                Cell::Int(row[3]),
                Cell::Int(row[4]),
            ])?;
            for (s_index, weight) in street_weights(district).into_iter().enumerate() {
                let code = district.street_code(s_index);
                b.push(&[
                    Cell::Text(&code),
                    Cell::Int(i64::from(year)),
                    Cell::Int((row[0] as f64 * weight).round() as i64),
                    Cell::Int((row[1] as f64 * weight).round() as i64),
                    Cell::Real((district.area_km2 * weight * 100.0).round() / 100.0),
                    Cell::Int((row[2] as f64 * weight).round() as i64),
                    Cell::Int((row[3] as f64 * weight).round() as i64),
                    Cell::Int((row[4] as f64 * weight).round() as i64),
                ])?;
            }
        }
        b.push(&[
            Cell::Text(&city),
            Cell::Int(i64::from(year)),
            Cell::Int(totals[0]),
            Cell::Int(totals[1]),
            Cell::Real((area * 10.0).round() / 10.0),
            Cell::Int(totals[2]),
            Cell::Int(totals[3]),
            Cell::Int(totals[4]),
        ])?;
    }
    finish(data, "region_stat_year", b).await
}

async fn org_table(data: &DataDir, staffing: &staffing::Staffing) -> Result<TableWriter> {
    let mut b = builder(data, "org")?;
    for org in &staffing.orgs {
        b.push(&[
            Cell::Int(org.id),
            Cell::Text(&org.name),
            org.short_name.as_deref().into(),
            org.uscc.as_deref().into(),
            Cell::Text(org.kind),
            Cell::Text(org.system),
            Cell::Text(org.nature),
            Cell::Text(org.rank),
            Cell::Text(org.tier),
            Cell::Text(&org.region_code),
            Cell::Text(org.sector),
            Cell::Text(org.funding),
            org.welfare_class.into(),
            Cell::Text(org.affiliation),
            org.parent.into(),
            Cell::Bool(org.vertical),
            Cell::Date(org.valid_from),
            org.valid_to.into(),
        ])?;
    }
    finish(data, "org", b).await
}

async fn quota_table(data: &DataDir, staffing: &staffing::Staffing) -> Result<TableWriter> {
    let mut b = builder(data, "establishment_quota")?;
    let mut rows: Vec<&staffing::QuotaPeriod> = staffing.quotas.iter().collect();
    rows.sort_by_key(|q| (q.org, q.quota_type, q.from));
    for (index, q) in rows.iter().enumerate() {
        b.push(&[
            Cell::Int(index as i64 + 1),
            Cell::Int(staffing.orgs[q.org].id),
            Cell::Text(q.quota_type),
            Cell::Int(i64::from(q.approved)),
            Cell::Date(q.from),
            q.to.into(),
            q.doc_id.into(),
        ])?;
    }
    finish(data, "establishment_quota", b).await
}

async fn leadership_table(data: &DataDir, staffing: &staffing::Staffing) -> Result<TableWriter> {
    let mut b = builder(data, "leadership_quota")?;
    for (index, q) in staffing.leader_quotas.iter().enumerate() {
        b.push(&[
            Cell::Int(index as i64 + 1),
            Cell::Int(staffing.orgs[q.org].id),
            Cell::Text(q.level),
            Cell::Int(i64::from(q.posts)),
            Cell::Date(q.from),
            staffing.orgs[q.org].valid_to.into(),
            q.doc_id.into(),
        ])?;
    }
    finish(data, "leadership_quota", b).await
}

async fn person_table(data: &DataDir, staffing: &staffing::Staffing) -> Result<TableWriter> {
    let mut writer = data.writer("person").await?;
    let mut b = builder(data, "person")?;
    for p in &staffing.persons {
        b.push(&[
            Cell::Int(p.id),
            Cell::Text(&p.id_hash),
            Cell::Text(&p.id_masked),
            Cell::Text(&p.name),
            Cell::Text(if p.male { "男" } else { "女" }),
            Cell::Date(p.birth),
            Cell::Text(p.education),
            p.death.into(),
        ])?;
        if b.rows() == 65_536 {
            writer.write(b.finish()?).await?;
        }
    }
    if b.rows() > 0 {
        writer.write(b.finish()?).await?;
    }
    Ok(writer)
}

async fn assignment_table(data: &DataDir, staffing: &staffing::Staffing) -> Result<TableWriter> {
    let mut writer = data.writer("staff_assignment").await?;
    let mut b = builder(data, "staff_assignment")?;
    for a in &staffing.assignments {
        b.push(&[
            Cell::Int(a.id),
            Cell::Int(staffing.persons[a.person].id),
            Cell::Int(staffing.orgs[a.org].id),
            Cell::Text(a.quota_type),
            Cell::Text(a.category),
            Cell::Text(&a.post_name),
            a.leader_level.into(),
            a.civil_rank.into(),
            Cell::Date(a.entry),
            a.exit.map(|(d, _)| d).into(),
            a.entry_doc.as_deref().into(),
            a.exit.map(|(_, r)| r.code()).into(),
        ])?;
        if b.rows() == 65_536 {
            writer.write(b.finish()?).await?;
        }
    }
    if b.rows() > 0 {
        writer.write(b.finish()?).await?;
    }
    Ok(writer)
}

async fn event_table(data: &DataDir, events: &[events::EventRow]) -> Result<TableWriter> {
    let mut writer = data.writer("staff_event").await?;
    let mut b = builder(data, "staff_event")?;
    for e in events {
        b.push(&[
            Cell::Int(e.id),
            Cell::Int(e.person_id),
            Cell::Int(e.org_id),
            Cell::Text(e.event_type),
            e.reason.into(),
            Cell::Date(e.date),
            e.doc_number.as_deref().into(),
            Cell::Timestamp(e.recorded_at),
        ])?;
        if b.rows() == 65_536 {
            writer.write(b.finish()?).await?;
        }
    }
    if b.rows() > 0 {
        writer.write(b.finish()?).await?;
    }
    Ok(writer)
}

async fn ledger_table(data: &DataDir, staffing: &staffing::Staffing) -> Result<TableWriter> {
    let mut b = builder(data, "quota_ledger")?;
    let mut rows: Vec<&staffing::LedgerRow> = staffing.ledger.iter().collect();
    rows.sort_by_key(|l| (l.date, l.org, l.quota_type));
    for (index, l) in rows.iter().enumerate() {
        let mut rng = Rng::new(0, "ledger-recorded", index as u64);
        let recorded =
            office_timestamp(l.date - Duration::days(rng.range(0, 10)), rng.range(0, 480));
        b.push(&[
            Cell::Int(index as i64 + 1),
            Cell::Int(staffing.orgs[l.org].id),
            Cell::Text(l.quota_type),
            Cell::Text(l.movement),
            Cell::Int(i64::from(l.delta)),
            Cell::Date(l.date),
            l.counterpart.map(|c| staffing.orgs[c].id).into(),
            l.doc_id.into(),
            l.doc_number.as_deref().into(),
            Cell::Timestamp(recorded),
        ])?;
    }
    finish(data, "quota_ledger", b).await
}

async fn document_table(data: &DataDir, docs: &Documents) -> Result<TableWriter> {
    let mut b = builder(data, "document")?;
    for d in docs.rows() {
        b.push(&[
            Cell::Int(d.id),
            Cell::Text(&d.number),
            Cell::Text(&d.title),
            Cell::Text(&d.issuer),
            Cell::Text(d.doc_type),
            Cell::Date(d.date),
            d.text.as_deref().into(),
        ])?;
    }
    finish(data, "document", b).await
}

async fn duty_table(
    data: &DataDir,
    staffing: &staffing::Staffing,
    f: &functions::Functions,
) -> Result<TableWriter> {
    let mut b = builder(data, "org_duty")?;
    for d in &f.duties {
        b.push(&[
            Cell::Int(d.id),
            Cell::Int(staffing.orgs[d.org].id),
            Cell::Int(i64::from(d.version_year)),
            Cell::Int(i64::from(d.seq)),
            Cell::Text(&d.text),
            d.doc_id.into(),
            Cell::Date(d.valid_from),
            d.valid_to.into(),
        ])?;
    }
    finish(data, "org_duty", b).await
}

async fn power_table(
    data: &DataDir,
    staffing: &staffing::Staffing,
    f: &functions::Functions,
) -> Result<TableWriter> {
    let mut b = builder(data, "power_item")?;
    for p in &f.powers {
        b.push(&[
            Cell::Int(p.id),
            Cell::Int(staffing.orgs[p.org].id),
            Cell::Text(&p.code),
            Cell::Text(p.item_type),
            Cell::Text(&p.name),
            Cell::Text(&p.legal_basis),
            Cell::Text(&p.responsibility),
            Cell::Text(p.level),
            Cell::Text(p.status),
            Cell::Date(p.valid_from),
            p.valid_to.into(),
        ])?;
    }
    finish(data, "power_item", b).await
}

async fn reform_tables(
    data: &DataDir,
    staffing: &staffing::Staffing,
) -> Result<(TableWriter, TableWriter)> {
    let mut reforms = builder(data, "reform")?;
    let mut changes = builder(data, "reform_org_change")?;
    let mut change_id = 0;
    for (index, r) in staffing.reforms.iter().enumerate() {
        let reform_id = index as i64 + 1;
        reforms.push(&[
            Cell::Int(reform_id),
            Cell::Text(&r.name),
            Cell::Date(r.date),
            Cell::Int(r.doc_id),
            Cell::Text(&r.description),
        ])?;
        for c in &r.changes {
            change_id += 1;
            changes.push(&[
                Cell::Int(change_id),
                Cell::Int(reform_id),
                Cell::Text(c.change_type),
                c.source.map(|o| staffing.orgs[o].id).into(),
                c.target.map(|o| staffing.orgs[o].id).into(),
                c.quota_type.into(),
                c.quota_moved.map(i64::from).into(),
                Cell::Text(&c.note),
            ])?;
        }
    }
    Ok((
        finish(data, "reform", reforms).await?,
        finish(data, "reform_org_change", changes).await?,
    ))
}

/// Audit, discipline and inspection findings: part of the planted anomalies are
/// found some months later; a few other findings are added.
async fn supervision_table(
    data: &DataDir,
    staffing: &staffing::Staffing,
    planted: &Planted,
    seed: u64,
    scale: f64,
) -> Result<TableWriter> {
    let mut b = builder(data, "supervision_case")?;
    let last_day = month_start(MONTHS) - Duration::days(1);
    let mut case_id = 0;
    let mut seen_groups = std::collections::HashSet::new();
    for row in planted.rows() {
        if !seen_groups.insert(row.detail.clone()) {
            continue;
        }
        let (source, issue, share) = match row.kind {
            "ghost_fabricated"
            | "paid_after_death"
            | "paid_after_retirement"
            | "paid_after_exit" => ("审计", "吃空饷", 0.35),
            "over_quota" => ("编制核查", "超编进人", 0.25),
            "leader_over_allocation" => ("巡察", "超职数配备", 0.25),
            "double_pay" => ("纪检监察", "吃空饷", 0.3),
            _ => continue,
        };
        let mut rng = Rng::new(seed, "case", row.id as u64);
        if !rng.chance(share) {
            continue;
        }
        let Some(until) = row.period_to else { continue };
        let found = until + Duration::days(rng.range(40, 300));
        if found > last_day {
            continue;
        }
        case_id += 1;
        let months = row
            .period_from
            .map_or(3, |from| ((until - from).num_days() / 30 + 1).max(1));
        let amount = (months as f64 * rng.uniform(12_000.0, 20_000.0) * 100.0).round() as i128;
        let description = match issue {
            "吃空饷" => format!("发现人员不在岗或已不在编仍领取工资{months}个月"),
            "超编进人" => "在编人数超过核定编制数".to_string(),
            _ => "领导职数配备超过核定职数".to_string(),
        };
        let org_id = row.org_id.unwrap_or(1);
        b.push(&[
            Cell::Int(case_id),
            Cell::Int(org_id),
            row.person_id.into(),
            Cell::Text(source),
            Cell::Text(issue),
            Cell::Date(found),
            Cell::Text(&description),
            if issue == "吃空饷" {
                Cell::Cents(amount)
            } else {
                Cell::Null
            },
            Cell::Text(if found < ymd(2024, 6, 1) {
                "已整改"
            } else {
                "整改中"
            }),
        ])?;
    }
    // Other findings, not tied to a planted anomaly.
    let bodies: Vec<i64> = staffing
        .orgs
        .iter()
        .filter(|o| o.uscc.is_some())
        .map(|o| o.id)
        .collect();
    let others = (40.0 * scale.sqrt()).round() as i64 + 5;
    for n in 0..others {
        let mut rng = Rng::new(seed, "other-case", n as u64);
        let (issue, description) = *rng.pick(&[
            ("混编混岗", "行政编制人员在事业单位岗位工作,编制与岗位不符"),
            ("擅自设立机构", "未经机构编制部门批准擅自设立内设机构"),
            ("其他", "机构编制信息公开不及时"),
        ]);
        let found = frame_start() + Duration::days(rng.range(30, 1800));
        let source: &&str = rng.pick(&["巡察", "编制核查", "审计"]);
        case_id += 1;
        b.push(&[
            Cell::Int(case_id),
            Cell::Int(*rng.pick(&bodies)),
            Cell::Null,
            Cell::Text(source),
            Cell::Text(issue),
            Cell::Date(found),
            Cell::Text(description),
            Cell::Null,
            Cell::Text(if found.year() < 2024 {
                "已整改"
            } else {
                "整改中"
            }),
        ])?;
    }
    finish(data, "supervision_case", b).await
}

async fn planted_table(data: &DataDir, planted: &Planted) -> Result<TableWriter> {
    let mut b = builder(data, "generator.planted")?;
    for row in planted.rows() {
        b.push(&[
            Cell::Int(row.id),
            Cell::Text(row.kind),
            row.rule_code.into(),
            row.org_id.into(),
            row.person_id.into(),
            row.id_hash.as_deref().into(),
            row.period_from.into(),
            row.period_to.into(),
            Cell::Text(&row.detail),
        ])?;
    }
    finish(data, "generator.planted", b).await
}

async fn run_info_table(data: &DataDir, options: GenerateOptions) -> Result<TableWriter> {
    let mut b = builder(data, "generator.run_info")?;
    b.push(&[
        Cell::Int(options.seed as i64),
        Cell::Real(options.scale),
        Cell::Text(GENERATOR_VERSION),
        Cell::Date(month_start(0)),
        Cell::Date(month_start(MONTHS - 1)),
    ])?;
    finish(data, "generator.run_info", b).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, AsArray, RecordBatch};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::live_table::LiveDeltaTable;
    use crate::schema::Catalog;

    async fn generated(scale: f64, seed: u64) -> (tempfile::TempDir, SessionContext) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path().to_str().unwrap()).await.unwrap();
        generate(&data, GenerateOptions { scale, seed }, &|_, _, _| {})
            .await
            .unwrap();
        let ctx = SessionContext::new();
        ctx.register_schema_if_needed();
        for def in data.catalog().tables() {
            let table = data.load(&def.qualified_name()).await.unwrap();
            let live = LiveDeltaTable::try_new(def, table).await.unwrap();
            ctx.register_table(def.qualified_name().as_str(), Arc::new(live))
                .unwrap();
        }
        (dir, ctx)
    }

    trait RegisterSchema {
        fn register_schema_if_needed(&self);
    }

    impl RegisterSchema for SessionContext {
        fn register_schema_if_needed(&self) {
            let catalog = self.catalog("datafusion").unwrap();
            catalog
                .register_schema(
                    "generator",
                    Arc::new(datafusion::catalog::MemorySchemaProvider::new()),
                )
                .unwrap();
        }
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> RecordBatch {
        let frame = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.unwrap();
        concat_batches(&schema, &batches).unwrap()
    }

    async fn count(ctx: &SessionContext, sql: &str) -> i64 {
        let batch = rows(ctx, sql).await;
        batch.column(0).as_primitive::<Int64Type>().value(0)
    }

    /// Every table, sorted by all of its columns, as one batch.
    async fn table_contents(ctx: &SessionContext, table: &str) -> RecordBatch {
        let frame = ctx.table(table).await.unwrap();
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| format!("\"{}\"", f.name()))
            .collect();
        rows(
            ctx,
            &format!("SELECT * FROM {table} ORDER BY {}", columns.join(", ")),
        )
        .await
    }

    #[tokio::test]
    async fn same_seed_and_scale_give_identical_tables() {
        let (_a, first) = generated(0.005, 7).await;
        let (_b, second) = generated(0.005, 7).await;
        let (_c, other) = generated(0.005, 8).await;
        for table in GENERATED {
            let x = table_contents(&first, table).await;
            let y = table_contents(&second, table).await;
            assert_eq!(x, y, "table {table} differs between two runs with seed 7");
        }
        let x = table_contents(&first, "person").await;
        let z = table_contents(&other, "person").await;
        assert_ne!(x, z, "another seed gives other people");
    }

    #[tokio::test]
    async fn generated_data_keeps_its_invariants() {
        let (_dir, ctx) = generated(0.01, 3).await;

        // Populations: districts add up to the city, streets to their district.
        let bad = count(
            &ctx,
            "
            SELECT count(*) FROM region_stat_year c JOIN (
                SELECT y.stat_year, sum(y.resident_population) AS total
                FROM region_stat_year y JOIN region r USING (region_code)
                WHERE r.region_level = '区' GROUP BY y.stat_year) d
              ON c.stat_year = d.stat_year
            WHERE c.region_code = '440300000000' AND c.resident_population <> d.total",
        )
        .await;
        assert_eq!(bad, 0, "district populations do not add up to the city");
        let off = count(
            &ctx,
            "
            SELECT count(*) FROM region_stat_year d JOIN (
                SELECT r.parent_code, y.stat_year, sum(y.resident_population) AS total
                FROM region_stat_year y JOIN region r USING (region_code)
                WHERE r.region_level IN ('街道', '镇') GROUP BY 1, 2) s
              ON d.region_code = s.parent_code AND d.stat_year = s.stat_year
            WHERE abs(d.resident_population - s.total) > 10",
        )
        .await;
        assert_eq!(off, 0, "street populations do not add up to their district");

        // The ledger reproduces the approved counts, except where a gap is planted.
        let unbalanced = count(&ctx, "
            WITH ledger AS (
                SELECT org_id, quota_type, sum(delta) AS total FROM quota_ledger
                WHERE movement_type NOT IN ('冻结', '周转借出', '周转归还') GROUP BY 1, 2),
            current AS (
                SELECT org_id, quota_type, approved_count FROM establishment_quota
                WHERE valid_from <= DATE '2024-12-31' AND (valid_to IS NULL OR valid_to > DATE '2024-12-31')),
            gaps AS (SELECT org_id, json_quota FROM (
                SELECT org_id, regexp_match(detail, '\"quota_type\":\"([^\"]+)\"')[1] AS json_quota
                FROM generator.planted WHERE kind = 'ledger_gap'))
            SELECT count(*) FROM ledger l JOIN current c USING (org_id, quota_type)
            WHERE l.total <> c.approved_count
              AND NOT EXISTS (SELECT 1 FROM gaps g WHERE g.org_id = l.org_id AND g.json_quota = l.quota_type)").await;
        assert_eq!(
            unbalanced, 0,
            "ledger and approved counts disagree outside planted gaps"
        );
        let gaps = count(
            &ctx,
            "SELECT count(*) FROM generator.planted WHERE kind = 'ledger_gap'",
        )
        .await;
        assert!(gaps > 0, "no ledger gap was planted");

        // Nobody holds two posts at once.
        let overlaps = count(
            &ctx,
            "
            SELECT count(*) FROM staff_assignment a JOIN staff_assignment b
              ON a.person_id = b.person_id AND a.assignment_id < b.assignment_id
            WHERE a.entry_date < coalesce(b.exit_date, DATE '9999-12-31')
              AND b.entry_date < coalesce(a.exit_date, DATE '9999-12-31')",
        )
        .await;
        assert_eq!(overlaps, 0, "a person holds two posts at once");

        // Nobody is in post past the statutory retirement age (60 men, 55 women).
        let too_old = count(&ctx, "
            SELECT count(*) FROM staff_assignment a JOIN person p USING (person_id)
            WHERE a.exit_date IS NULL
              AND p.birth_date <= CASE p.gender WHEN '男' THEN DATE '1964-12-01' ELSE DATE '1969-12-01' END").await;
        assert_eq!(too_old, 0, "people in post past retirement age");

        // Month-end headcount stays within the approved count unless over-quota is planted.
        let over = count(&ctx, "
            WITH months AS (SELECT unnest(generate_series(DATE '2020-01-31', DATE '2024-12-31', INTERVAL '1 month')) AS m),
            ends AS (SELECT date_trunc('month', m) + INTERVAL '1 month' - INTERVAL '1 day' AS d FROM months),
            heads AS (
                SELECT e.d, a.org_id, a.quota_type, count(*) AS n FROM ends e JOIN staff_assignment a
                  ON a.entry_date <= e.d AND (a.exit_date IS NULL OR a.exit_date > e.d)
                GROUP BY 1, 2, 3)
            SELECT count(*) FROM heads h JOIN establishment_quota q
              ON q.org_id = h.org_id AND q.quota_type = h.quota_type
             AND q.valid_from <= h.d AND (q.valid_to IS NULL OR q.valid_to > h.d)
            WHERE h.n > q.approved_count
              AND h.org_id NOT IN (SELECT org_id FROM generator.planted WHERE kind = 'over_quota')").await;
        assert_eq!(
            over, 0,
            "headcount above quota outside planted over-quota episodes"
        );

        // Every code column holds codes of its code set.
        let catalog = Catalog::builtin().unwrap();
        for table in catalog.tables() {
            for column in &table.columns {
                let Some(set) = &column.code_set else {
                    continue;
                };
                let sql = format!(
                    "SELECT count(*) FROM {} t WHERE t.{} IS NOT NULL AND t.{} NOT IN \
                     (SELECT code FROM dict_code WHERE code_set = '{set}')",
                    table.qualified_name(),
                    column.name,
                    column.name
                );
                assert_eq!(
                    count(&ctx, &sql).await,
                    0,
                    "{}.{} has codes outside {set}",
                    table.name,
                    column.name
                );
            }
        }

        // Masked IDs keep the area code and last four characters only.
        let masked = count(&ctx, "SELECT count(*) FROM person WHERE NOT regexp_like(id_masked, '^[0-9]{6}\\*{8}[0-9]{3}[0-9X]$')").await;
        assert_eq!(masked, 0);

        // Entries in the frame carry a 用编通知 that exists, unless planted otherwise.
        let missing = count(&ctx, "
            SELECT count(*) FROM staff_event e
            WHERE e.event_type IN ('入编', '调入')
              AND (e.doc_number IS NULL OR e.doc_number NOT IN (SELECT doc_number FROM document WHERE doc_type = '用编通知'))").await;
        let planted = count(
            &ctx,
            "SELECT count(*) FROM generator.planted WHERE kind = 'entry_without_notice'",
        )
        .await;
        assert_eq!(
            missing, planted,
            "entries without a notice are exactly the planted ones"
        );

        // Salaries go only to roster people and planted ghosts.
        let strangers = count(
            &ctx,
            "
            SELECT count(DISTINCT r.id_hash) FROM external_roster r
            WHERE r.item = '应发工资' AND r.id_hash NOT IN (SELECT id_hash FROM person)",
        )
        .await;
        let ghosts = count(
            &ctx,
            "SELECT count(*) FROM generator.planted WHERE kind = 'ghost_fabricated'",
        )
        .await;
        assert_eq!(strangers, ghosts);

        // Payroll rows pay someone at most once per body and month.
        let doubles = count(
            &ctx,
            "
            SELECT count(*) FROM (SELECT id_hash, period, org_id FROM external_roster
            WHERE item = '应发工资' GROUP BY 1, 2, 3 HAVING count(*) > 1)",
        )
        .await;
        assert_eq!(doubles, 0);

        // Planted rows name a rule from the list, and the org they name exists.
        let orphans = count(
            &ctx,
            "
            SELECT count(*) FROM generator.planted p WHERE p.org_id IS NOT NULL
              AND p.org_id NOT IN (SELECT org_id FROM org)",
        )
        .await;
        assert_eq!(orphans, 0);
        let kinds = rows(
            &ctx,
            "SELECT DISTINCT kind FROM generator.planted ORDER BY kind",
        )
        .await;
        assert!(
            kinds.column(0).len() >= 10,
            "only {} kinds planted",
            kinds.column(0).len()
        );
    }

    #[tokio::test]
    async fn refuses_a_directory_that_holds_data_and_bad_scales() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path().to_str().unwrap()).await.unwrap();
        let err = generate(
            &data,
            GenerateOptions {
                scale: 0.0,
                seed: 1,
            },
            &|_, _, _| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("scale must be in"), "{err}");
        generate(
            &data,
            GenerateOptions {
                scale: 0.002,
                seed: 1,
            },
            &|_, _, _| {},
        )
        .await
        .unwrap();
        let before = data.row_count("person").await.unwrap();
        let err = generate(
            &data,
            GenerateOptions {
                scale: 0.002,
                seed: 2,
            },
            &|_, _, _| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("already holds data"), "{err}");
        assert_eq!(
            data.row_count("person").await.unwrap(),
            before,
            "nothing changed"
        );
    }
}
