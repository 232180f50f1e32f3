//! Staffing over 60 months: approved quotas and their ledger, the people who fill
//! them (实名制), leaders against leader posts, hiring, exits and transfers, two
//! reforms, and the planted staffing anomalies.
//!
//! The simulation runs month by month over every staffing pool (one body × one
//! quota type). Each month: quota movements take effect on the 1st, planned
//! exits happen on their dates, then vacancies are refilled — by transfers from
//! other bodies or by new entries, each with a 用编通知 — dated after the
//! pool's last exit of the month, so the approved count is never exceeded on any
//! day unless an over-quota episode is planted.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate};

use super::calendar::{frame_start, month_end, month_of, month_start, MONTHS};
use super::documents::Documents;
use super::orgs::{reform_2019, Org, Role};
use super::people::{
    new_person, payroll_only_identity, plan_exit, retirement_date, ExitReason, Person, StaffKind,
};
use super::planted::{json_str, rates, rule, Plant, Planted};
use super::rng::Rng;
use super::shenzhen::DISTRICTS;

/// How an assignment began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryVia {
    /// Already in post when the frame starts.
    Initial,
    /// New entry from outside (入编).
    New,
    /// Transfer from another body (调入).
    Transfer,
    /// Moved by a reform (划转).
    Reform,
}

/// One stay of one person in one body on one quota type (a 实名制 record).
#[derive(Debug, Clone)]
pub struct Assignment {
    pub id: i64,
    pub person: usize,
    pub org: usize,
    pub quota_type: &'static str,
    pub kind: StaffKind,
    pub category: &'static str,
    pub post_name: String,
    pub leader_level: Option<&'static str>,
    pub civil_rank: Option<&'static str>,
    pub entry: NaiveDate,
    pub entry_via: EntryVia,
    pub entry_doc: Option<String>,
    pub exit: Option<(NaiveDate, ExitReason)>,
    /// The previous assignment of the same person, for transfers and reforms.
    pub previous: Option<usize>,
}

/// A period of constant approved count (one establishment_quota row).
#[derive(Debug, Clone)]
pub struct QuotaPeriod {
    pub org: usize,
    pub quota_type: &'static str,
    pub approved: i32,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
    pub doc_id: Option<i64>,
}

/// One quota_ledger row.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub org: usize,
    pub quota_type: &'static str,
    pub movement: &'static str,
    pub delta: i32,
    pub date: NaiveDate,
    pub counterpart: Option<usize>,
    pub doc_id: Option<i64>,
    pub doc_number: Option<String>,
}

/// One leadership_quota row.
#[derive(Debug, Clone)]
pub struct LeaderQuota {
    pub org: usize,
    pub level: &'static str,
    pub posts: u32,
    pub from: NaiveDate,
    pub doc_id: Option<i64>,
}

/// A reform and the lineage it created.
#[derive(Debug, Clone)]
pub struct Reform {
    pub name: String,
    pub date: NaiveDate,
    pub doc_id: i64,
    pub description: String,
    pub changes: Vec<ReformChange>,
}

#[derive(Debug, Clone)]
pub struct ReformChange {
    pub change_type: &'static str,
    pub source: Option<usize>,
    pub target: Option<usize>,
    pub quota_type: Option<&'static str>,
    pub quota_moved: Option<i32>,
    pub note: String,
}

/// Changes to pay the planted payroll anomalies need (applied by the payroll writer).
#[derive(Debug, Clone)]
pub enum PayMod {
    /// The body keeps paying `months` months after the assignment ended.
    ExtendAfterExit { assignment: usize, months: usize },
    /// A second body also pays, months [from, to].
    Duplicate {
        payer: usize,
        from: usize,
        to: usize,
    },
    /// Another body pays instead of the body of record, months [from, to].
    WrongPayer {
        payer: usize,
        from: usize,
        to: usize,
    },
    /// No pay and/or no social insurance, months [from, to].
    Withheld {
        from: usize,
        to: usize,
        pay: bool,
        insurance: bool,
    },
}

/// A fabricated payee: paid, never on the roster.
#[derive(Debug, Clone)]
pub struct Ghost {
    pub index: u64,
    pub payer: usize,
    pub from: usize,
    pub to: usize,
}

/// Everything the staffing simulation produces.
#[derive(Debug)]
pub struct Staffing {
    pub orgs: Vec<Org>,
    pub persons: Vec<Person>,
    pub assignments: Vec<Assignment>,
    pub quotas: Vec<QuotaPeriod>,
    pub ledger: Vec<LedgerRow>,
    pub leader_quotas: Vec<LeaderQuota>,
    pub reforms: Vec<Reform>,
    pub pay_mods: BTreeMap<usize, Vec<PayMod>>,
    pub ghosts: Vec<Ghost>,
    /// Assignments that were appointed to a leader post during the frame.
    pub appointed: HashSet<usize>,
}

/// One body × one quota type.
#[derive(Debug, Clone)]
struct Pool {
    org: usize,
    quota_type: &'static str,
    kind: StaffKind,
    approved: i32,
    fill: f64,
    active: Vec<usize>,
    leader_pool: bool,
    seasonal: bool,
    period_start: NaiveDate,
    period_doc: Option<i64>,
    /// Planted: month of the one-off hiring jump.
    jump_month: Option<usize>,
    /// Planted: over-quota episode (start month, end month, extra people).
    over_quota: Option<(usize, usize, i32)>,
}

/// Leader posts of one body at one level.
#[derive(Debug, Clone)]
struct LeaderSlots {
    org: usize,
    level: &'static str,
    posts: i32,
    filled: i32,
}

struct Sim<'a> {
    seed: u64,
    scale: f64,
    hash_key: &'a [u8],
    orgs: Vec<Org>,
    pools: Vec<Pool>,
    slots: Vec<LeaderSlots>,
    persons: Vec<Person>,
    assignments: Vec<Assignment>,
    quotas: Vec<QuotaPeriod>,
    ledger: Vec<LedgerRow>,
    leader_quotas: Vec<LeaderQuota>,
    reforms: Vec<Reform>,
    docs: &'a mut Documents,
    planted: &'a mut Planted,
    used_ids: HashSet<String>,
    /// People who left by transfer and may be taken in elsewhere: (assignment, month).
    transfer_pool: Vec<(usize, usize)>,
    appointed: HashSet<usize>,
    /// Planted leader over-allocation: (org, level, month).
    extra_leaders: Vec<(usize, &'static str, usize)>,
    /// Month-end headcount per pool and leaders per slot, for the ground truth.
    headcount_history: Vec<Vec<i32>>,
    approved_history: Vec<Vec<i32>>,
    leader_history: Vec<Vec<i32>>,
}

/// The staff kind of a pool.
fn staff_kind(org: &Org, quota_type: &str) -> StaffKind {
    match quota_type {
        "行政" => StaffKind::CivilServant,
        "政法专项" => StaffKind::Police,
        "工勤" => StaffKind::Worker,
        _ => match org.role {
            Role::School | Role::University => StaffKind::Teacher,
            Role::Hospital => StaffKind::Medical,
            _ if org.civil_service_like => StaffKind::CivilServant,
            _ => StaffKind::Institution,
        },
    }
}

fn category(rng: &mut Rng, org: &Org, quota_type: &str, kind: StaffKind) -> &'static str {
    match quota_type {
        "行政" | "政法专项" => "公务员",
        "工勤" => "工勤人员",
        _ if org.civil_service_like => "参公人员",
        _ => match kind {
            StaffKind::Teacher | StaffKind::Medical => {
                ["专业技术人员", "事业管理人员", "工勤人员"][rng.weighted(&[0.85, 0.12, 0.03])]
            }
            _ => ["事业管理人员", "专业技术人员", "工勤人员"][rng.weighted(&[0.5, 0.45, 0.05])],
        },
    }
}

fn post_name(
    rng: &mut Rng,
    org: &Org,
    kind: StaffKind,
    category: &str,
    leader: Option<&str>,
) -> String {
    if let Some(level) = leader {
        let principal = level.ends_with("正职");
        let title = match level {
            "县处级正职" | "县处级副职" if org.rank == "正厅级" => "处长",
            "乡科级正职" | "乡科级副职" => "科长",
            _ => {
                let name = org.name.as_str();
                if name.ends_with("检察院") {
                    "检察长"
                } else if name.ends_with("法院") {
                    "院长"
                } else if name.ends_with("人民政府") {
                    "镇长"
                } else if name.ends_with("部") {
                    "部长"
                } else if name.ends_with("局") || name.ends_with("署") {
                    "局长"
                } else {
                    "主任"
                }
            }
        };
        return if principal {
            title.to_string()
        } else {
            format!("副{title}")
        };
    }
    match (kind, category) {
        (_, "工勤人员") => "工勤技能岗".to_string(),
        (StaffKind::Teacher, "专业技术人员") => "教师".to_string(),
        (StaffKind::Medical, "专业技术人员") => {
            ["医师", "护士", "药师", "技师"][rng.weighted(&[0.4, 0.45, 0.07, 0.08])].to_string()
        }
        (_, "专业技术人员") => "专业技术岗".to_string(),
        (_, "事业管理人员") => "管理岗".to_string(),
        _ => "工作人员".to_string(),
    }
}

/// The 2019 civil-service rank that fits an age and leader level.
fn civil_rank(rng: &mut Rng, age: f64, leader: Option<&str>) -> &'static str {
    match leader {
        Some("厅局级正职") => "一级巡视员",
        Some("厅局级副职") => "二级巡视员",
        Some("县处级正职") => "一级调研员",
        Some("县处级副职") => ["二级调研员", "三级调研员"][rng.below(2) as usize],
        Some(_) => ["四级调研员", "一级主任科员"][rng.below(2) as usize],
        None => match age {
            a if a < 27.0 => "二级科员",
            a if a < 30.0 => "一级科员",
            a if a < 34.0 => "四级主任科员",
            a if a < 38.0 => "三级主任科员",
            a if a < 43.0 => ["二级主任科员", "一级主任科员"][rng.below(2) as usize],
            a if a < 50.0 => ["一级主任科员", "四级调研员"][rng.below(2) as usize],
            _ => ["四级调研员", "三级调研员"][rng.below(2) as usize],
        },
    }
}

fn leader_age_range(level: &str) -> (f64, f64) {
    match level {
        "厅局级正职" => (48.0, 58.0),
        "厅局级副职" => (43.0, 57.0),
        "县处级正职" => (38.0, 56.0),
        "县处级副职" => (34.0, 55.0),
        _ => (30.0, 54.0),
    }
}

/// Age of a staff member at the start of the frame: a working-age pyramid.
fn initial_age(rng: &mut Rng, kind: StaffKind, male: bool) -> f64 {
    let retire = f64::from(kind.retirement_age(male));
    let low = 23.0;
    // Slightly more young than old staff, as in a growing city.
    let u = rng.unit().powf(1.15);
    low + (retire - low - 0.1) * u
}

impl<'a> Sim<'a> {
    fn pools_of_org(&self, org: usize) -> impl Iterator<Item = usize> + '_ {
        self.pools
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.org == org)
            .map(|(i, _)| i)
    }

    /// Create a new person of `kind` and sex, aged `age` on `on`.
    fn new_person(&mut self, kind: StaffKind, male: bool, age: f64, on: NaiveDate) -> usize {
        let id = self.persons.len() as i64 + 1;
        let person = new_person(
            id,
            self.seed,
            self.hash_key,
            kind,
            male,
            age,
            on,
            &mut self.used_ids,
        );
        self.persons.push(person);
        self.persons.len() - 1
    }

    /// Start an assignment of `person` in pool `pool_index` on `entry`.
    #[allow(clippy::too_many_arguments)]
    fn start_assignment(
        &mut self,
        pool_index: usize,
        person: usize,
        entry: NaiveDate,
        via: EntryVia,
        doc: Option<String>,
        leader: Option<&'static str>,
        previous: Option<usize>,
    ) -> usize {
        let id = self.assignments.len() as i64 + 1;
        let mut rng = Rng::new(self.seed, "assignment", id as u64);
        let pool = &self.pools[pool_index];
        let org = &self.orgs[pool.org];
        let kind = pool.kind;
        let quota_type = pool.quota_type;
        let category = match previous {
            Some(prev) if self.assignments[prev].quota_type == quota_type => {
                self.assignments[prev].category
            }
            _ => category(&mut rng, org, quota_type, kind),
        };
        let post = post_name(&mut rng, org, kind, category, leader);
        let age = (entry - self.persons[person].birth).num_days() as f64 / 365.25;
        let rank =
            matches!(category, "公务员" | "参公人员").then(|| civil_rank(&mut rng, age, leader));
        let planned = plan_exit(
            &mut rng,
            kind,
            &self.persons[person],
            entry.max(frame_start()),
        );
        let assignment = Assignment {
            id,
            person,
            org: pool.org,
            quota_type,
            kind,
            category,
            post_name: post,
            leader_level: leader,
            civil_rank: rank,
            entry,
            entry_via: via,
            entry_doc: doc,
            exit: planned,
            previous,
        };
        self.assignments.push(assignment);
        let index = self.assignments.len() - 1;
        self.pools[pool_index].active.push(index);
        if let Some(level) = leader {
            if let Some(slot) = self
                .slots
                .iter_mut()
                .find(|s| s.org == self.pools[pool_index].org && s.level == level)
            {
                slot.filled += 1;
            }
        }
        index
    }

    fn ledger_prefix(&self, org: usize) -> String {
        match self.orgs[org].district {
            Some(d) if self.orgs[org].tier != "市" => DISTRICTS[d].short_name().to_string(),
            _ => "深".to_string(),
        }
    }

    /// Record a new approved count for a pool from `date` (closing the open period).
    fn set_approved(
        &mut self,
        pool_index: usize,
        approved: i32,
        date: NaiveDate,
        doc_id: Option<i64>,
    ) {
        let pool = &mut self.pools[pool_index];
        if date > pool.period_start {
            self.quotas.push(QuotaPeriod {
                org: pool.org,
                quota_type: pool.quota_type,
                approved: pool.approved,
                from: pool.period_start,
                to: Some(date),
                doc_id: pool.period_doc,
            });
        }
        pool.approved = approved;
        pool.period_start = date;
        pool.period_doc = doc_id;
    }

    /// Initial quotas, ledger openings, leader posts and staff at the frame start.
    fn initialise(&mut self) {
        let start = frame_start();
        let mut pools = Vec::new();
        for (org_index, org) in self.orgs.iter().enumerate() {
            let mut rng = Rng::new(self.seed, "pool-init", org.id as u64);
            for (position, (quota_type, base)) in org.quotas.iter().enumerate() {
                // At small scales a minor quota type may round to nothing; the
                // body's main type always keeps at least one post.
                let approved = rng.round_stochastic(base * self.scale) as i32;
                let approved = if position == 0 {
                    approved.max(1)
                } else {
                    approved
                };
                if approved == 0 {
                    continue;
                }
                let kind = staff_kind(org, quota_type);
                // Fill targets: 机关 vacancy averages about 8%, institutions a little more.
                let fill = match org.role {
                    Role::Department | Role::Branch | Role::OtherOrgan | Role::Street => {
                        rng.uniform(0.86, 0.98)
                    }
                    _ => rng.uniform(0.80, 0.97),
                };
                pools.push(Pool {
                    org: org_index,
                    quota_type,
                    kind,
                    approved,
                    fill,
                    active: Vec::new(),
                    leader_pool: position == 0 && !org.leader_posts.is_empty(),
                    seasonal: matches!(org.role, Role::School | Role::University),
                    period_start: start,
                    period_doc: None,
                    jump_month: None,
                    over_quota: None,
                });
            }
        }
        self.pools = pools;
        self.plant_pool_anomalies();

        for pool_index in 0..self.pools.len() {
            let org_index = self.pools[pool_index].org;
            let org = self.orgs[org_index].clone();
            // The opening balance, documented by the body's 三定 or an earlier 编委 document.
            let doc = self.docs.quota_document(
                &self.ledger_prefix(org_index),
                &org.name,
                reform_2019() - Duration::days(20),
                "核定",
            );
            self.pools[pool_index].period_doc = Some(doc.0);
            self.ledger.push(LedgerRow {
                org: org_index,
                quota_type: self.pools[pool_index].quota_type,
                movement: "期初",
                delta: self.pools[pool_index].approved,
                date: start,
                counterpart: None,
                doc_id: Some(doc.0),
                doc_number: Some(doc.1.clone()),
            });
            if self.pools[pool_index].leader_pool {
                for &(level, posts) in &org.leader_posts {
                    self.slots.push(LeaderSlots {
                        org: org_index,
                        level,
                        posts: posts as i32,
                        filled: 0,
                    });
                    self.leader_quotas.push(LeaderQuota {
                        org: org_index,
                        level,
                        posts,
                        from: reform_2019(),
                        doc_id: Some(doc.0),
                    });
                }
            }
            self.fill_initial(pool_index);
        }
    }

    fn fill_initial(&mut self, pool_index: usize) {
        let start = frame_start();
        let pool = self.pools[pool_index].clone();
        let org = self.orgs[pool.org].clone();
        let mut rng = Rng::new(self.seed, "initial-staff", pool_index as u64);
        let target =
            ((f64::from(pool.approved) * pool.fill).round() as i32).clamp(0, pool.approved);
        let mut hired = 0;
        if pool.leader_pool {
            let cap = (f64::from(target) * 0.35).floor() as i32;
            let levels: Vec<(&'static str, u32)> = org.leader_posts.clone();
            for (level, posts) in levels {
                for _ in 0..posts {
                    if hired >= cap || !rng.chance(0.9) {
                        continue;
                    }
                    let (low, high) = leader_age_range(level);
                    let male = rng.chance(pool.kind.male_share());
                    let person = self.new_person(pool.kind, male, rng.uniform(low, high), start);
                    let entry = self.historic_entry(&mut rng, person);
                    let doc = self
                        .docs
                        .historic_entry_number(&self.ledger_prefix(pool.org), entry);
                    self.start_assignment(
                        pool_index,
                        person,
                        entry,
                        EntryVia::Initial,
                        Some(doc),
                        Some(level),
                        None,
                    );
                    hired += 1;
                }
            }
        }
        while hired < target {
            let male = rng.chance(pool.kind.male_share());
            let age = initial_age(&mut rng, pool.kind, male);
            let person = self.new_person(pool.kind, male, age, start);
            let entry = self.historic_entry(&mut rng, person);
            let doc = self
                .docs
                .historic_entry_number(&self.ledger_prefix(pool.org), entry);
            self.start_assignment(
                pool_index,
                person,
                entry,
                EntryVia::Initial,
                Some(doc),
                None,
                None,
            );
            hired += 1;
        }
    }

    /// An entry date before the frame for someone in post at its start.
    fn historic_entry(&self, rng: &mut Rng, person: usize) -> NaiveDate {
        let birth = self.persons[person].birth;
        let earliest = birth + Duration::days((22.5 * 365.25) as i64);
        let latest = frame_start() - Duration::days(15);
        if earliest >= latest {
            return latest;
        }
        let span = (latest - earliest).num_days();
        // Most people have been in their current post for years, not decades.
        let back = (rng.exponential(6.0 * 365.25) as i64).min(span);
        latest - Duration::days(back)
    }

    /// Choose the pools and bodies that get planted staffing anomalies.
    fn plant_pool_anomalies(&mut self) {
        for pool_index in 0..self.pools.len() {
            let mut rng = Rng::new(self.seed, "plant-pool", pool_index as u64);
            let approved = self.pools[pool_index].approved;
            let role = self.orgs[self.pools[pool_index].org].role;
            let eligible_jump =
                approved >= 20 && !self.pools[pool_index].seasonal && role != Role::Division;
            if approved >= 10 && rng.chance(rates::EXTREME_VACANCY) {
                self.pools[pool_index].fill = rng.uniform(0.30, 0.45);
            } else if eligible_jump
                && rng.chance(rates::HEADCOUNT_JUMP / (1.0 - rates::EXTREME_VACANCY))
            {
                // Kept at about 70% until one month fills it in one go.
                self.pools[pool_index].fill = rng.uniform(0.68, 0.74);
                self.pools[pool_index].jump_month = Some(rng.range(14, 54) as usize);
            } else if approved >= 5 && rng.chance(rates::OVER_QUOTA) {
                let start = rng.range(6, 54) as usize;
                // Half the episodes are still going on when the frame ends
                // (`MONTHS` never comes); the others last 3–18 months.
                let end = if rng.chance(0.5) {
                    MONTHS
                } else {
                    (start + rng.range(3, 18) as usize).min(MONTHS - 1)
                };
                let extra = 1 + (f64::from(approved) * rng.uniform(0.02, 0.06)).round() as i32;
                self.pools[pool_index].over_quota = Some((start, end, extra));
            }
        }
        // Leader over-allocation: bodies with leader posts.
        let mut orgs_with_posts: Vec<usize> = self
            .pools
            .iter()
            .filter(|p| p.leader_pool)
            .map(|p| p.org)
            .collect();
        orgs_with_posts.dedup();
        for org in orgs_with_posts {
            let mut rng = Rng::new(self.seed, "plant-leaders", org as u64);
            if rng.chance(rates::LEADER_OVER_ALLOCATION) {
                let posts = &self.orgs[org].leader_posts;
                let deputies: Vec<&'static str> = posts
                    .iter()
                    .filter(|(level, _)| level.ends_with("副职"))
                    .map(|(level, _)| *level)
                    .collect();
                if let Some(level) = deputies.last() {
                    self.extra_leaders
                        .push((org, level, rng.range(6, 50) as usize));
                }
            }
        }
    }

    /// Close assignments whose planned exit falls in month `m`; returns the last exit day per pool.
    // Pools are addressed by index throughout: they mutate each other.
    #[allow(clippy::needless_range_loop)]
    fn process_exits(&mut self, m: usize) -> Vec<Option<NaiveDate>> {
        let start = month_start(m);
        let end = month_end(m);
        let mut last_exit = vec![None; self.pools.len()];
        for pool_index in 0..self.pools.len() {
            let mut remaining = Vec::with_capacity(self.pools[pool_index].active.len());
            let active = std::mem::take(&mut self.pools[pool_index].active);
            for assignment in active {
                match self.assignments[assignment].exit {
                    Some((date, reason)) if date >= start && date <= end => {
                        last_exit[pool_index] =
                            Some(last_exit[pool_index].map_or(date, |d: NaiveDate| d.max(date)));
                        if let Some(level) = self.assignments[assignment].leader_level {
                            let org = self.assignments[assignment].org;
                            if let Some(slot) = self
                                .slots
                                .iter_mut()
                                .find(|s| s.org == org && s.level == level)
                            {
                                slot.filled -= 1;
                            }
                        }
                        match reason {
                            ExitReason::Death => {
                                let person = self.assignments[assignment].person;
                                self.persons[person].death = Some(date);
                            }
                            ExitReason::Transfer => self.transfer_pool.push((assignment, m)),
                            _ => {}
                        }
                    }
                    _ => remaining.push(assignment),
                }
            }
            self.pools[pool_index].active = remaining;
        }
        last_exit
    }

    /// Quota movements effective on the 1st of month `m` (m ≥ 1).
    fn quota_movements(&mut self, m: usize) {
        let date = month_start(m);
        for pool_index in 0..self.pools.len() {
            let mut rng = Rng::new(self.seed, "movement", (pool_index * MONTHS + m) as u64);
            let special = {
                let pool = &self.pools[pool_index];
                pool.over_quota.is_some() || pool.jump_month.is_some() || pool.fill < 0.5
            };
            if !rng.chance(1.0 / 48.0)
                || special
                || self.orgs[self.pools[pool_index].org].valid_to.is_some()
            {
                continue;
            }
            let org_index = self.pools[pool_index].org;
            let approved = self.pools[pool_index].approved;
            let headcount = self.pools[pool_index].active.len() as i32;
            let vacancy = approved - headcount;
            let org = &self.orgs[org_index];
            let growing = matches!(org.sector, "教育" | "卫生健康")
                || org
                    .district
                    .map(|d| DISTRICTS[d].growth > 1.009)
                    .unwrap_or(false);
            let prefix = self.ledger_prefix(org_index);
            let org_name = org.name.clone();
            let quota_type = self.pools[pool_index].quota_type;
            if rng.chance(if growing { 0.7 } else { 0.4 }) {
                let delta = ((f64::from(approved) * rng.uniform(0.03, 0.10)).round() as i32).max(1);
                let doc = self.docs.quota_document(
                    &prefix,
                    &org_name,
                    date - Duration::days(rng.range(10, 40)),
                    "核增",
                );
                self.ledger.push(LedgerRow {
                    org: org_index,
                    quota_type,
                    movement: "核增",
                    delta,
                    date,
                    counterpart: None,
                    doc_id: Some(doc.0),
                    doc_number: Some(doc.1),
                });
                self.set_approved(pool_index, approved + delta, date, Some(doc.0));
            } else if vacancy >= 1 {
                let wanted =
                    ((f64::from(approved) * rng.uniform(0.02, 0.06)).round() as i32).max(1);
                let delta = wanted.min(vacancy);
                // Half of the cuts go to another body of the same district and type (调剂).
                let partner = if rng.chance(0.5) {
                    let candidates: Vec<usize> = (0..self.pools.len())
                        .filter(|&p| {
                            p != pool_index
                                && self.pools[p].quota_type == quota_type
                                && self.orgs[self.pools[p].org].district
                                    == self.orgs[org_index].district
                                && self.orgs[self.pools[p].org].tier == self.orgs[org_index].tier
                                && self.pools[p].over_quota.is_none()
                                && self.pools[p].jump_month.is_none()
                                && self.pools[p].fill >= 0.5
                                && self.orgs[self.pools[p].org].valid_to.is_none()
                        })
                        .collect();
                    (!candidates.is_empty()).then(|| *rng.pick(&candidates))
                } else {
                    None
                };
                let kind = if partner.is_some() {
                    "调剂"
                } else {
                    "收回"
                };
                let doc = self.docs.quota_document(
                    &prefix,
                    &org_name,
                    date - Duration::days(rng.range(10, 40)),
                    kind,
                );
                self.ledger.push(LedgerRow {
                    org: org_index,
                    quota_type,
                    movement: kind,
                    delta: -delta,
                    date,
                    counterpart: partner.map(|p| self.pools[p].org),
                    doc_id: Some(doc.0),
                    doc_number: Some(doc.1.clone()),
                });
                self.set_approved(pool_index, approved - delta, date, Some(doc.0));
                if let Some(partner) = partner {
                    let partner_org = self.pools[partner].org;
                    self.ledger.push(LedgerRow {
                        org: partner_org,
                        quota_type,
                        movement: "调剂",
                        delta,
                        date,
                        counterpart: Some(org_index),
                        doc_id: Some(doc.0),
                        doc_number: Some(doc.1),
                    });
                    let partner_approved = self.pools[partner].approved;
                    self.set_approved(partner, partner_approved + delta, date, Some(doc.0));
                }
            }
        }
    }

    /// Hire into every pool for month `m`, after its exits.
    // Pools are addressed by index throughout: they mutate each other.
    #[allow(clippy::needless_range_loop)]
    fn hire(&mut self, m: usize, last_exit: &[Option<NaiveDate>]) {
        let start = month_start(m);
        let end = month_end(m);
        for pool_index in 0..self.pools.len() {
            if self.orgs[self.pools[pool_index].org]
                .valid_to
                .is_some_and(|to| to <= end)
            {
                continue;
            }
            let mut rng = Rng::new(self.seed, "hire", (pool_index * MONTHS + m) as u64);
            let pool = &self.pools[pool_index];
            let headcount = pool.active.len() as i32;
            let mut fill = pool.fill;
            if pool.jump_month.is_some_and(|jump| m >= jump) {
                fill = 0.97;
            }
            let mut target = ((f64::from(pool.approved) * fill).round() as i32).min(pool.approved);
            // A planted over-quota body keeps hiring beyond its quota until the episode ends.
            if let Some((from, to, extra)) = pool.over_quota {
                if m > from && m < to {
                    target = pool.approved + extra;
                }
            }
            let gap = target - headcount;
            if gap <= 0 {
                continue;
            }
            let month = start.month();
            let count = if pool.jump_month == Some(m) {
                gap
            } else if pool.seasonal {
                match month {
                    8 => (f64::from(gap) * 0.4).ceil() as i32,
                    9 => gap,
                    _ => i32::from(rng.chance(0.08)),
                }
            } else {
                let share = rng.uniform(0.3, 0.7);
                (f64::from(gap) * share).round() as i32
            };
            if count <= 0 {
                continue;
            }
            let earliest = last_exit[pool_index].unwrap_or(start).max(start);
            self.hire_batch(pool_index, m, count, earliest, end, &mut rng, None);
        }
    }

    /// Hire `count` people into a pool between `earliest` and `latest`, all under one 用编通知.
    #[allow(clippy::too_many_arguments)]
    fn hire_batch(
        &mut self,
        pool_index: usize,
        m: usize,
        count: i32,
        earliest: NaiveDate,
        latest: NaiveDate,
        rng: &mut Rng,
        force_leader: Option<&'static str>,
    ) -> Vec<usize> {
        let org_index = self.pools[pool_index].org;
        let kind = self.pools[pool_index].kind;
        let quota_type = self.pools[pool_index].quota_type;
        let span = (latest - earliest).num_days().max(0);
        let mut dates: Vec<NaiveDate> = (0..count)
            .map(|_| earliest + Duration::days(rng.range(0, span)))
            .collect();
        dates.sort();
        let Some(first) = dates.first().copied() else {
            return Vec::new();
        };
        let prefix = self.ledger_prefix(org_index);
        let org_name = self.orgs[org_index].name.clone();
        let notice = self.docs.entry_notice(
            &prefix,
            &org_name,
            first - Duration::days(rng.range(3, 25)),
            count,
        );
        let mut started = Vec::new();
        for (n, date) in dates.into_iter().enumerate() {
            // A vacant leader post is filled by the first hires, usually by transfer.
            let mut leader = if n == 0 { force_leader } else { None };
            if leader.is_none() && self.pools[pool_index].leader_pool {
                let vacant: Vec<&'static str> = self
                    .slots
                    .iter()
                    .filter(|s| s.org == org_index && s.filled < s.posts)
                    .map(|s| s.level)
                    .collect();
                if let Some(level) = vacant.first() {
                    if rng.chance(0.6) {
                        leader = Some(level);
                    }
                }
            }
            // Take a transfer candidate of the same quota type when there is one.
            let candidate = if rng.chance(if leader.is_some() { 0.9 } else { 0.35 }) {
                self.transfer_pool.iter().position(|&(a, month)| {
                    let previous = &self.assignments[a];
                    previous.quota_type == quota_type
                        && previous.org != org_index
                        && month + 1 >= m
                        && previous.exit.is_some_and(|(d, _)| d <= date)
                        && retirement_date(&self.persons[previous.person], kind) > date
                })
            } else {
                None
            };
            let doc = self.entry_doc(&notice.1, org_index, date, rng);
            let index = if let Some(position) = candidate {
                let (previous, _) = self.transfer_pool.remove(position);
                let person = self.assignments[previous].person;
                self.start_assignment(
                    pool_index,
                    person,
                    date,
                    EntryVia::Transfer,
                    doc,
                    leader,
                    Some(previous),
                )
            } else {
                let age = match leader {
                    Some(level) => {
                        let (low, high) = leader_age_range(level);
                        rng.uniform(low, high)
                    }
                    None => 22.0 + rng.exponential(3.5).min(20.0),
                };
                let male = rng.chance(kind.male_share());
                let person = self.new_person(kind, male, age, date);
                self.start_assignment(pool_index, person, date, EntryVia::New, doc, leader, None)
            };
            if leader.is_some() {
                self.appointed.insert(index);
            }
            started.push(index);
        }
        started
    }

    /// The 用编通知 number an entry carries — or, for planted entries, none or a bogus one.
    fn entry_doc(
        &mut self,
        notice: &str,
        org: usize,
        date: NaiveDate,
        rng: &mut Rng,
    ) -> Option<String> {
        if rng.chance(rates::ENTRY_WITHOUT_NOTICE) {
            let bogus = rng.chance(0.4);
            let doc = bogus.then(|| {
                format!(
                    "{}编用〔{}〕{}号",
                    self.ledger_prefix(org),
                    date.year(),
                    9000 + rng.below(999)
                )
            });
            self.planted.add(
                "entry_without_notice",
                &[rule::ENTRY_WITHOUT_BASIS],
                Plant {
                    org_id: Some(self.orgs[org].id),
                    // The person is filled in when events are written (the assignment id is known).
                    person_id: Some(-(self.assignments.len() as i64 + 1)),
                    period_from: Some(date),
                    period_to: Some(date),
                    detail: format!(
                        "\"doc_number\":{}",
                        doc.as_deref()
                            .map(json_str)
                            .unwrap_or_else(|| "null".into())
                    ),
                    ..Plant::default()
                },
            );
            return doc;
        }
        Some(notice.to_string())
    }

    /// Planted over-quota hires, leader over-allocation and episode ends in month `m`.
    // Pools are addressed by index throughout: they mutate each other.
    #[allow(clippy::needless_range_loop)]
    fn planted_staffing(&mut self, m: usize, last_exit: &[Option<NaiveDate>]) {
        let start = month_start(m);
        let end = month_end(m);
        for pool_index in 0..self.pools.len() {
            let Some((from, to, extra)) = self.pools[pool_index].over_quota else {
                continue;
            };
            let mut rng = Rng::new(self.seed, "over-quota", (pool_index * MONTHS + m) as u64);
            if m == from {
                let headcount = self.pools[pool_index].active.len() as i32;
                let count = self.pools[pool_index].approved - headcount + extra;
                let earliest = last_exit[pool_index].unwrap_or(start).max(start);
                self.hire_batch(pool_index, m, count, earliest, end, &mut rng, None);
            } else if m == to {
                // The episode ends: the most recent entrants beyond the quota are
                // transferred out on the 1st.
                let excess = (self.pools[pool_index].active.len() as i32
                    - self.pools[pool_index].approved)
                    .max(0);
                let mut recent = self.pools[pool_index].active.clone();
                recent.sort_by_key(|&a| std::cmp::Reverse((self.assignments[a].entry, a)));
                for assignment in recent.into_iter().take(excess as usize) {
                    if self.assignments[assignment]
                        .exit
                        .is_none_or(|(d, _)| d > start)
                    {
                        self.assignments[assignment].exit = Some((start, ExitReason::Cleanup));
                        self.pools[pool_index].active.retain(|&a| a != assignment);
                        if let Some(level) = self.assignments[assignment].leader_level {
                            let org = self.assignments[assignment].org;
                            if let Some(slot) = self
                                .slots
                                .iter_mut()
                                .find(|s| s.org == org && s.level == level)
                            {
                                slot.filled -= 1;
                            }
                        }
                    }
                }
            }
        }
        let extra_leaders: Vec<(usize, &'static str, usize)> = self
            .extra_leaders
            .iter()
            .copied()
            .filter(|&(_, _, month)| month == m)
            .collect();
        for (org, level, _) in extra_leaders {
            let Some(pool_index) = self.pools_of_org(org).find(|&p| self.pools[p].leader_pool)
            else {
                continue;
            };
            let Some(slot) = self
                .slots
                .iter()
                .position(|s| s.org == org && s.level == level)
            else {
                continue;
            };
            let vacancy =
                self.pools[pool_index].approved - self.pools[pool_index].active.len() as i32;
            let posts_full = self.slots[slot].filled >= self.slots[slot].posts;
            if vacancy < 1 || !posts_full || self.pools[pool_index].over_quota.is_some() {
                // Not possible this month: try the next one.
                if m + 1 < MONTHS - 2 {
                    if let Some(entry) = self
                        .extra_leaders
                        .iter_mut()
                        .find(|e| e.0 == org && e.2 == m)
                    {
                        entry.2 = m + 1;
                    }
                }
                continue;
            }
            let mut rng = Rng::new(self.seed, "extra-leader", (org * MONTHS + m) as u64);
            let earliest = last_exit[pool_index].unwrap_or(start).max(start);
            self.hire_batch(pool_index, m, 1, earliest, end, &mut rng, Some(level));
        }
    }

    fn record_month(&mut self, m: usize) {
        let end = month_end(m);
        let counts: Vec<i32> = self
            .pools
            .iter()
            .map(|p| {
                p.active
                    .iter()
                    .filter(|&&a| {
                        self.assignments[a].entry <= end
                            && self.assignments[a].exit.is_none_or(|(d, _)| d > end)
                    })
                    .count() as i32
            })
            .collect();
        self.headcount_history.push(counts);
        self.approved_history
            .push(self.pools.iter().map(|p| p.approved).collect());
        self.leader_history
            .push(self.slots.iter().map(|s| s.filled).collect());
    }

    /// The ground truth of pool-level anomalies, read off the month-end history.
    fn record_pool_truth(&mut self) {
        for (pool_index, pool) in self.pools.iter().enumerate() {
            let org = &self.orgs[pool.org];
            let months_where = |predicate: &dyn Fn(usize) -> bool| -> Option<(usize, usize)> {
                let hits: Vec<usize> = (0..MONTHS).filter(|&m| predicate(m)).collect();
                Some((*hits.first()?, *hits.last()?))
            };
            if pool.over_quota.is_some() {
                if let Some((from, to)) = months_where(&|m| {
                    self.headcount_history[m][pool_index] > self.approved_history[m][pool_index]
                }) {
                    self.planted.add(
                        "over_quota",
                        &[rule::OVER_QUOTA],
                        Plant {
                            org_id: Some(org.id),
                            period_from: Some(month_start(from)),
                            period_to: Some(month_start(to)),
                            detail: format!("\"quota_type\":{}", json_str(pool.quota_type)),
                            ..Plant::default()
                        },
                    );
                }
            }
            if pool.fill < 0.5 {
                if let Some((from, to)) = months_where(&|m| {
                    let approved = self.approved_history[m][pool_index];
                    approved >= 10
                        && f64::from(approved - self.headcount_history[m][pool_index])
                            > 0.5 * f64::from(approved)
                }) {
                    self.planted.add(
                        "extreme_vacancy",
                        &[rule::EXTREME_VACANCY],
                        Plant {
                            org_id: Some(org.id),
                            period_from: Some(month_start(from)),
                            period_to: Some(month_start(to)),
                            detail: format!("\"quota_type\":{}", json_str(pool.quota_type)),
                            ..Plant::default()
                        },
                    );
                }
            }
            if let Some(jump) = pool.jump_month {
                self.planted.add(
                    "headcount_jump",
                    &[rule::HEADCOUNT_JUMP],
                    Plant {
                        org_id: Some(org.id),
                        period_from: Some(month_start(jump)),
                        period_to: Some(month_start(jump)),
                        detail: format!(
                            "\"quota_type\":{},\"before\":{},\"after\":{}",
                            json_str(pool.quota_type),
                            if jump > 0 {
                                self.headcount_history[jump - 1][pool_index]
                            } else {
                                0
                            },
                            self.headcount_history[jump][pool_index]
                        ),
                        ..Plant::default()
                    },
                );
            }
        }
        for (slot_index, slot) in self.slots.iter().enumerate() {
            let hits: Vec<usize> = (0..MONTHS)
                .filter(|&m| self.leader_history[m][slot_index] > slot.posts)
                .collect();
            if let (Some(&from), Some(&to)) = (hits.first(), hits.last()) {
                self.planted.add(
                    "leader_over_allocation",
                    &[rule::OVER_LEADER_POSTS],
                    Plant {
                        org_id: Some(self.orgs[slot.org].id),
                        period_from: Some(month_start(from)),
                        period_to: Some(month_start(to)),
                        detail: format!(
                            "\"leader_level\":{},\"posts\":{}",
                            json_str(slot.level),
                            slot.posts
                        ),
                        ..Plant::default()
                    },
                );
            }
        }
    }
}

/// Run the staffing simulation for all bodies.
pub fn simulate(
    orgs: Vec<Org>,
    seed: u64,
    scale: f64,
    hash_key: &[u8],
    docs: &mut Documents,
    planted: &mut Planted,
) -> Staffing {
    let mut sim = Sim {
        seed,
        scale,
        hash_key,
        orgs,
        pools: Vec::new(),
        slots: Vec::new(),
        persons: Vec::new(),
        assignments: Vec::new(),
        quotas: Vec::new(),
        ledger: Vec::new(),
        leader_quotas: Vec::new(),
        reforms: Vec::new(),
        docs,
        planted,
        used_ids: HashSet::new(),
        transfer_pool: Vec::new(),
        appointed: HashSet::new(),
        extra_leaders: Vec::new(),
        headcount_history: Vec::new(),
        approved_history: Vec::new(),
        leader_history: Vec::new(),
    };
    sim.initialise();
    for m in 0..MONTHS {
        if m > 0 {
            sim.quota_movements(m);
        }
        super::reforms::apply_reforms(&mut ReformContext { sim: &mut sim }, m);
        let last_exit = sim.process_exits(m);
        sim.planted_staffing(m, &last_exit);
        sim.hire(m, &last_exit);
        // Candidates not taken within a month have left the city's system.
        sim.transfer_pool.retain(|&(_, month)| month + 1 > m);
        sim.record_month(m);
    }
    sim.record_pool_truth();
    // Close the open quota periods.
    for pool_index in 0..sim.pools.len() {
        let pool = sim.pools[pool_index].clone();
        let to = sim.orgs[pool.org].valid_to;
        if to == Some(pool.period_start) {
            continue;
        }
        sim.quotas.push(QuotaPeriod {
            org: pool.org,
            quota_type: pool.quota_type,
            approved: pool.approved,
            from: pool.period_start,
            to,
            doc_id: pool.period_doc,
        });
    }
    // Assignments planned to end after the frame are still open.
    let end = super::calendar::frame_end();
    for assignment in &mut sim.assignments {
        if assignment.exit.is_some_and(|(d, _)| d >= end) {
            assignment.exit = None;
        }
    }
    // Deaths after the frame are not known yet.
    for person in &mut sim.persons {
        if person.death.is_some_and(|d| d >= end) {
            person.death = None;
        }
    }
    let mut staffing = Staffing {
        orgs: sim.orgs,
        persons: sim.persons,
        assignments: sim.assignments,
        quotas: sim.quotas,
        ledger: sim.ledger,
        leader_quotas: sim.leader_quotas,
        reforms: sim.reforms,
        pay_mods: BTreeMap::new(),
        ghosts: Vec::new(),
        appointed: sim.appointed,
    };
    plant_payroll_anomalies(&mut staffing, seed, hash_key, planted);
    resolve_entry_plants(&staffing, planted);
    plant_ledger_gaps(&mut staffing, seed, planted);
    staffing
}

/// Access to the simulation for the reforms module.
pub struct ReformContext<'s, 'a> {
    sim: &'s mut Sim<'a>,
}

impl ReformContext<'_, '_> {
    pub fn orgs(&self) -> &[Org] {
        &self.sim.orgs
    }

    pub fn seed(&self) -> u64 {
        self.sim.seed
    }

    pub fn documents(&mut self) -> &mut Documents {
        self.sim.docs
    }

    /// Add a body created by a reform; returns its index.
    pub fn add_org(&mut self, mut org: Org) -> usize {
        org.id = self.sim.orgs.len() as i64 + 1;
        self.sim.orgs.push(org);
        self.sim.orgs.len() - 1
    }

    /// A new staffing pool for `org` with `approved` from `date`, opened by `doc`.
    pub fn add_pool(
        &mut self,
        org: usize,
        quota_type: &'static str,
        date: NaiveDate,
        doc: (i64, String),
    ) -> usize {
        let kind = staff_kind(&self.sim.orgs[org], quota_type);
        let leader_pool = self.sim.pools.iter().all(|p| p.org != org)
            && !self.sim.orgs[org].leader_posts.is_empty();
        self.sim.pools.push(Pool {
            org,
            quota_type,
            kind,
            approved: 0,
            fill: 0.95,
            active: Vec::new(),
            leader_pool,
            seasonal: false,
            period_start: date,
            period_doc: Some(doc.0),
            jump_month: None,
            over_quota: None,
        });
        let index = self.sim.pools.len() - 1;
        if leader_pool {
            for &(level, posts) in &self.sim.orgs[org].leader_posts.clone() {
                self.sim.slots.push(LeaderSlots {
                    org,
                    level,
                    posts: posts as i32,
                    filled: 0,
                });
                self.sim.leader_quotas.push(LeaderQuota {
                    org,
                    level,
                    posts,
                    from: date,
                    doc_id: Some(doc.0),
                });
                for history in &mut self.sim.leader_history {
                    history.push(0);
                }
            }
        }
        for history in self
            .sim
            .headcount_history
            .iter_mut()
            .chain(self.sim.approved_history.iter_mut())
        {
            history.push(0);
        }
        index
    }

    /// The pool of `org` with `quota_type`, if any.
    pub fn pool(&self, org: usize, quota_type: &str) -> Option<usize> {
        self.sim
            .pools
            .iter()
            .position(|p| p.org == org && p.quota_type == quota_type)
    }

    pub fn pool_state(&self, pool: usize) -> (i32, i32) {
        (
            self.sim.pools[pool].approved,
            self.sim.pools[pool].active.len() as i32,
        )
    }

    /// Move `quota` approved posts and `people` people (non-leaders first) from one
    /// pool to another on `date` under the reform document `doc`.
    pub fn transfer(
        &mut self,
        from_pool: usize,
        to_pool: usize,
        quota: i32,
        people: i32,
        date: NaiveDate,
        doc: &(i64, String),
    ) {
        let from_org = self.sim.pools[from_pool].org;
        let to_org = self.sim.pools[to_pool].org;
        let quota_type = self.sim.pools[from_pool].quota_type;
        for (org, counterpart, delta, movement) in [
            (from_org, to_org, -quota, "划出"),
            (to_org, from_org, quota, "划入"),
        ] {
            self.sim.ledger.push(LedgerRow {
                org,
                quota_type,
                movement,
                delta,
                date,
                counterpart: Some(counterpart),
                doc_id: Some(doc.0),
                doc_number: Some(doc.1.clone()),
            });
        }
        let from_approved = self.sim.pools[from_pool].approved - quota;
        let to_approved = self.sim.pools[to_pool].approved + quota;
        self.sim
            .set_approved(from_pool, from_approved, date, Some(doc.0));
        self.sim
            .set_approved(to_pool, to_approved, date, Some(doc.0));
        let mut movers: Vec<usize> = self.sim.pools[from_pool]
            .active
            .iter()
            .copied()
            .filter(|&a| self.sim.assignments[a].exit.is_none_or(|(d, _)| d > date))
            .collect();
        // Non-leaders move first; a closed body moves everyone.
        movers.sort_by_key(|&a| {
            (
                self.sim.assignments[a].leader_level.is_some(),
                self.sim.assignments[a].id,
            )
        });
        for assignment in movers.into_iter().take(people.max(0) as usize) {
            if let Some(level) = self.sim.assignments[assignment].leader_level {
                if let Some(slot) = self
                    .sim
                    .slots
                    .iter_mut()
                    .find(|s| s.org == from_org && s.level == level)
                {
                    slot.filled -= 1;
                }
            }
            self.sim.assignments[assignment].exit = Some((date, ExitReason::Reform));
            self.sim.pools[from_pool]
                .active
                .retain(|&a| a != assignment);
            let person = self.sim.assignments[assignment].person;
            self.sim.start_assignment(
                to_pool,
                person,
                date,
                EntryVia::Reform,
                Some(doc.1.clone()),
                None,
                Some(assignment),
            );
        }
    }

    /// Close a body on `date`.
    pub fn close_org(&mut self, org: usize, date: NaiveDate) {
        self.sim.orgs[org].valid_to = Some(date);
    }

    pub fn add_reform(&mut self, reform: Reform) {
        self.sim.reforms.push(reform);
    }
}

/// Choose people whose pay goes wrong, and fabricate ghost payees.
fn plant_payroll_anomalies(
    staffing: &mut Staffing,
    seed: u64,
    hash_key: &[u8],
    planted: &mut Planted,
) {
    let last_month = MONTHS - 1;
    let month = |date: NaiveDate| month_of(date).unwrap_or(last_month);
    let mut next_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut last_of_person: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, assignment) in staffing.assignments.iter().enumerate() {
        if let Some(previous) = assignment.previous {
            next_of.insert(previous, index);
        }
        last_of_person.insert(assignment.person, index);
    }
    let mut used_people: HashSet<usize> = HashSet::new();

    // Pay after an assignment ended: death, retirement, leaving, or a transfer
    // whose old body keeps paying.
    for (index, assignment) in staffing.assignments.iter().enumerate() {
        let Some((exit, reason)) = assignment.exit else {
            continue;
        };
        let mut rng = Rng::new(seed, "plant-pay-exit", index as u64);
        let person = assignment.person;
        let exit_month = month(exit);
        if used_people.contains(&person) || exit_month + 2 >= MONTHS {
            continue;
        }
        let (kind, rate, rules): (&'static str, f64, &[&'static str]) = match reason {
            ExitReason::Death => (
                "paid_after_death",
                rates::PAID_AFTER_DEATH,
                &[rule::PAID_AFTER_EXIT, rule::PAID_NOT_ON_ROSTER],
            ),
            ExitReason::Retirement => (
                "paid_after_retirement",
                rates::PAID_AFTER_RETIREMENT,
                &[rule::PAID_AFTER_EXIT, rule::PAID_NOT_ON_ROSTER],
            ),
            ExitReason::Resignation | ExitReason::Dismissal => (
                "paid_after_exit",
                rates::PAID_AFTER_EXIT,
                &[rule::PAID_AFTER_EXIT, rule::PAID_NOT_ON_ROSTER],
            ),
            ExitReason::Transfer if next_of.contains_key(&index) => (
                "transfer_overlap_pay",
                rates::TRANSFER_OVERLAP_PAY,
                &[rule::MULTIPLE_PAYERS, rule::PAYER_MISMATCH],
            ),
            _ => continue,
        };
        if !rng.chance(rate) {
            continue;
        }
        let months_after = rng.range(2, 8) as usize;
        let last = (exit_month + months_after).min(last_month);
        let person_id = staffing.persons[person].id;
        let id_hash = staffing.persons[person].id_hash.clone();
        let org_id = staffing.orgs[assignment.org].id;
        if kind == "transfer_overlap_pay" {
            let Some(&next) = next_of.get(&index) else {
                continue;
            };
            let next_assignment = &staffing.assignments[next];
            let from = month(next_assignment.entry) + 1;
            // The new post must last through the overlap, so only the two payers differ.
            if from > last
                || next_assignment
                    .exit
                    .is_some_and(|(d, _)| month(d) <= last + 1)
            {
                continue;
            }
            staffing
                .pay_mods
                .entry(person)
                .or_default()
                .push(PayMod::Duplicate {
                    payer: assignment.org,
                    from,
                    to: last,
                });
            planted.add(
                kind,
                rules,
                Plant {
                    org_id: Some(org_id),
                    person_id: Some(person_id),
                    id_hash: Some(id_hash),
                    period_from: Some(month_start(from)),
                    period_to: Some(month_start(last)),
                    detail: format!(
                        "\"registered_org_id\":{}",
                        staffing.orgs[next_assignment.org].id
                    ),
                },
            );
        } else {
            // Nobody else may have this person on a roster while the pay goes on.
            if next_of.contains_key(&index) {
                continue;
            }
            staffing
                .pay_mods
                .entry(person)
                .or_default()
                .push(PayMod::ExtendAfterExit {
                    assignment: index,
                    months: last - exit_month,
                });
            planted.add(
                kind,
                rules,
                Plant {
                    org_id: Some(org_id),
                    person_id: Some(person_id),
                    id_hash: Some(id_hash),
                    period_from: Some(month_start(exit_month + 1)),
                    period_to: Some(month_start(last)),
                    detail: format!(
                        "\"exit_date\":\"{exit}\",\"exit_reason\":{}",
                        json_str(reason.code())
                    ),
                },
            );
        }
        used_people.insert(person);
    }

    // People in post at the end: paid twice, paid by the wrong body, or unpaid.
    let open_people: Vec<(usize, usize)> = last_of_person
        .iter()
        .filter(|(_, &a)| staffing.assignments[a].exit.is_none())
        .map(|(&p, &a)| (p, a))
        .collect();
    for (person, index) in open_people {
        if used_people.contains(&person) {
            continue;
        }
        let mut rng = Rng::new(seed, "plant-pay-open", person as u64);
        let assignment = &staffing.assignments[index];
        let from_floor = month_of(assignment.entry).map_or(1, |m| m + 2);
        if from_floor + 8 >= MONTHS {
            continue;
        }
        let roll = rng.unit();
        let from = rng.range(from_floor as i64, (MONTHS - 8) as i64) as usize;
        let org = assignment.org;
        let org_id = staffing.orgs[org].id;
        let person_id = staffing.persons[person].id;
        let id_hash = staffing.persons[person].id_hash.clone();
        let kind = if roll < rates::DOUBLE_PAY {
            "double_pay"
        } else if roll < rates::DOUBLE_PAY + rates::WRONG_PAYER {
            "wrong_payer"
        } else if roll < rates::DOUBLE_PAY + rates::WRONG_PAYER + rates::ABSENT_UNPAID {
            "absent_unpaid"
        } else {
            continue;
        };
        let to = (from + rng.range(3, 7) as usize - 1).min(last_month);
        if kind == "absent_unpaid" {
            let (pay, insurance) = match rng.below(3) {
                0 => (true, false),
                1 => (false, true),
                _ => (true, true),
            };
            staffing
                .pay_mods
                .entry(person)
                .or_default()
                .push(PayMod::Withheld {
                    from,
                    to,
                    pay,
                    insurance,
                });
            planted.add(
                kind,
                &[rule::ON_ROSTER_UNPAID],
                Plant {
                    org_id: Some(org_id),
                    person_id: Some(person_id),
                    id_hash: Some(id_hash),
                    period_from: Some(month_start(from)),
                    period_to: Some(month_start(to)),
                    detail: format!("\"pay_missing\":{pay},\"insurance_missing\":{insurance}"),
                },
            );
            used_people.insert(person);
            continue;
        }
        // Another body of the same district pays.
        let candidates: Vec<usize> = staffing
            .orgs
            .iter()
            .enumerate()
            .filter(|(i, o)| {
                *i != org
                    && o.district == staffing.orgs[org].district
                    && o.role != Role::Division
                    && o.valid_to.is_none()
            })
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let payer = *rng.pick(&candidates);
        let (modification, rules): (PayMod, &[&'static str]) = if kind == "double_pay" {
            (
                PayMod::Duplicate { payer, from, to },
                &[rule::MULTIPLE_PAYERS, rule::PAYER_MISMATCH],
            )
        } else {
            (
                PayMod::WrongPayer { payer, from, to },
                &[rule::PAYER_MISMATCH],
            )
        };
        staffing
            .pay_mods
            .entry(person)
            .or_default()
            .push(modification);
        planted.add(
            kind,
            rules,
            Plant {
                org_id: Some(staffing.orgs[payer].id),
                person_id: Some(person_id),
                id_hash: Some(id_hash),
                period_from: Some(month_start(from)),
                period_to: Some(month_start(to)),
                detail: format!("\"registered_org_id\":{org_id}"),
            },
        );
        used_people.insert(person);
    }

    // Fabricated payees (冒名饷): paid by a real body, never on any roster.
    let ghosts = ((staffing.persons.len() as f64) * rates::GHOST_FABRICATED)
        .round()
        .max(1.0) as u64;
    let payers: Vec<usize> = staffing
        .orgs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.role != Role::Division && o.valid_to.is_none())
        .map(|(i, _)| i)
        .collect();
    for index in 0..ghosts {
        let mut rng = Rng::new(seed, "ghost", index);
        let payer = *rng.pick(&payers);
        let from = rng.range(0, (MONTHS - 4) as i64) as usize;
        let to = (from + rng.range(3, 24) as usize).min(last_month);
        let (id_hash, _) = payroll_only_identity(seed, hash_key, "ghost", index);
        staffing.ghosts.push(Ghost {
            index,
            payer,
            from,
            to,
        });
        planted.add(
            "ghost_fabricated",
            &[rule::PAID_NOT_ON_ROSTER],
            Plant {
                org_id: Some(staffing.orgs[payer].id),
                id_hash: Some(id_hash),
                period_from: Some(month_start(from)),
                period_to: Some(month_start(to)),
                detail: format!("\"ghost\":{index}"),
                ..Plant::default()
            },
        );
    }
}

/// Entries planted without a 用编通知 were recorded before their assignment
/// existed; point them at the person now.
fn resolve_entry_plants(staffing: &Staffing, planted: &mut Planted) {
    for row in planted.rows_mut() {
        if row.kind != "entry_without_notice" {
            continue;
        }
        if let Some(placeholder) = row.person_id.filter(|id| *id < 0) {
            let assignment = (-placeholder - 1) as usize;
            row.person_id = staffing
                .assignments
                .get(assignment)
                .map(|a| staffing.persons[a.person].id);
        }
    }
}

/// Break the ledger of a few pools: drop a movement or record one twice.
fn plant_ledger_gaps(staffing: &mut Staffing, seed: u64, planted: &mut Planted) {
    let mut pools: Vec<(usize, &'static str)> = staffing
        .ledger
        .iter()
        .map(|l| (l.org, l.quota_type))
        .collect();
    pools.sort();
    pools.dedup();
    let mut remove = Vec::new();
    let mut duplicate = Vec::new();
    for (index, (org, quota_type)) in pools.iter().enumerate() {
        let mut rng = Rng::new(seed, "ledger-gap", index as u64);
        if !rng.chance(rates::LEDGER_GAP) {
            continue;
        }
        let movements: Vec<usize> = staffing
            .ledger
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.org == *org
                    && l.quota_type == *quota_type
                    && l.movement != "期初"
                    && l.movement != "划出"
                    && l.movement != "划入"
            })
            .map(|(i, _)| i)
            .collect();
        let missing = !movements.is_empty() && rng.chance(0.6);
        if missing {
            remove.push(*rng.pick(&movements));
        } else {
            let opening = staffing
                .ledger
                .iter()
                .position(|l| l.org == *org && l.quota_type == *quota_type && l.movement == "期初");
            let Some(source) = movements.first().copied().or(opening) else {
                continue;
            };
            duplicate.push(source);
        }
        planted.add(
            "ledger_gap",
            &[rule::LEDGER_IMBALANCE],
            Plant {
                org_id: Some(staffing.orgs[*org].id),
                detail: format!(
                    "\"quota_type\":{},\"how\":{}",
                    json_str(quota_type),
                    json_str(if missing {
                        "movement missing"
                    } else {
                        "movement recorded twice"
                    })
                ),
                ..Plant::default()
            },
        );
    }
    for source in duplicate {
        let mut row = staffing.ledger[source].clone();
        if row.movement == "期初" {
            row.movement = "核增";
            row.delta = (row.delta / 10).max(1);
        }
        row.date += Duration::days(35);
        staffing.ledger.push(row);
    }
    remove.sort_unstable();
    for index in remove.into_iter().rev() {
        staffing.ledger.remove(index);
    }
}
