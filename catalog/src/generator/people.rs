//! People: identity (name, sex, birth date, ID number), education, and the
//! competing risks that end a stay in a post (retirement, resignation, dismissal,
//! transfer, death).

use chrono::{Datelike, Duration, NaiveDate};

use super::calendar::{frame_end, ymd};
use super::id_number::{id_hash, id_number, mask_id_number};
use super::names::person_name;
use super::rng::Rng;

/// One person of the 实名制 roster (or a payroll-only person: 编外, ghost).
#[derive(Debug, Clone)]
pub struct Person {
    pub id: i64,
    pub id_hash: String,
    pub id_masked: String,
    pub name: String,
    pub male: bool,
    pub birth: NaiveDate,
    pub education: &'static str,
    pub death: Option<NaiveDate>,
}

/// Where ID numbers' area codes come from: Shenzhen's districts, the rest of
/// Guangdong, and the provinces most migrants to Shenzhen come from.
const AREA_CODES: &[(u32, f64)] = &[
    (440303, 3.0),
    (440304, 3.0),
    (440305, 3.0),
    (440306, 3.0),
    (440307, 3.0),
    (440308, 1.0),
    (440103, 3.0),
    (440582, 3.0),
    (441402, 3.0),
    (445102, 2.0),
    (440981, 2.0),
    (441302, 2.0),
    (430104, 4.0),
    (420106, 3.0),
    (360102, 3.0),
    (450102, 2.0),
    (510104, 2.0),
    (410105, 2.0),
    (350102, 2.0),
    (610103, 1.0),
    (370102, 1.0),
    (220102, 1.0),
    (230102, 1.0),
    (320102, 1.0),
    (330102, 1.0),
    (130102, 1.0),
    (140105, 1.0),
    (500103, 1.0),
    (530102, 1.0),
    (340102, 1.0),
];

/// The kind of staff a post is for; decides sex ratio, education, hazards and pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffKind {
    CivilServant,
    Police,
    Teacher,
    Medical,
    Institution,
    Worker,
}

impl StaffKind {
    pub fn male_share(self) -> f64 {
        match self {
            StaffKind::CivilServant => 0.58,
            StaffKind::Police => 0.82,
            StaffKind::Teacher => 0.32,
            StaffKind::Medical => 0.38,
            StaffKind::Institution => 0.5,
            StaffKind::Worker => 0.7,
        }
    }

    fn education(self, rng: &mut Rng) -> &'static str {
        let weights: [f64; 5] = match self {
            StaffKind::CivilServant => [0.32, 0.62, 0.05, 0.01, 0.0],
            StaffKind::Police => [0.12, 0.70, 0.17, 0.01, 0.0],
            StaffKind::Teacher => [0.35, 0.60, 0.05, 0.0, 0.0],
            StaffKind::Medical => [0.40, 0.45, 0.12, 0.03, 0.0],
            StaffKind::Institution => [0.25, 0.60, 0.12, 0.03, 0.0],
            StaffKind::Worker => [0.0, 0.10, 0.30, 0.30, 0.30],
        };
        ["研究生", "大学本科", "大学专科", "中专", "高中及以下"][rng.weighted(&weights)]
    }

    /// Yearly hazards: (resign, dismissal, transfer out).
    fn hazards(self) -> (f64, f64, f64) {
        match self {
            StaffKind::CivilServant => (0.005, 0.0004, 0.030),
            StaffKind::Police => (0.006, 0.0008, 0.012),
            StaffKind::Teacher => (0.015, 0.0003, 0.010),
            StaffKind::Medical => (0.020, 0.0003, 0.008),
            StaffKind::Institution => (0.012, 0.0003, 0.015),
            StaffKind::Worker => (0.020, 0.0010, 0.005),
        }
    }

    /// Retirement age in 2020–2024 rules: men 60, women cadres 55, women workers 50.
    pub fn retirement_age(self, male: bool) -> i32 {
        match (male, self) {
            (true, _) => 60,
            (false, StaffKind::Worker) => 50,
            (false, _) => 55,
        }
    }
}

/// Why a stay in a post ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Retirement,
    Resignation,
    Dismissal,
    Transfer,
    Death,
    /// Moved by a reform (划转).
    Reform,
    /// Removed to end a planted over-quota episode (a transfer out).
    Cleanup,
}

impl ExitReason {
    /// The dict_code exit_reason code.
    pub fn code(self) -> &'static str {
        match self {
            ExitReason::Retirement => "退休",
            ExitReason::Resignation => "辞职",
            ExitReason::Dismissal => "辞退",
            ExitReason::Transfer | ExitReason::Cleanup => "调动",
            ExitReason::Death => "死亡",
            ExitReason::Reform => "划转",
        }
    }
}

/// A new person of the given kind, aged `age` (years, fractional) on `on`.
/// The age is kept below the statutory retirement age of `kind` for that sex.
#[allow(clippy::too_many_arguments)]
pub fn new_person(
    id: i64,
    seed: u64,
    hash_key: &[u8],
    kind: StaffKind,
    male: bool,
    age: f64,
    on: NaiveDate,
    used_ids: &mut std::collections::HashSet<String>,
) -> Person {
    let mut rng = Rng::new(seed, "person", id as u64);
    let age = age.min(f64::from(kind.retirement_age(male)) - 0.25);
    let birth = on - Duration::days((age * 365.25) as i64);
    let weights: Vec<f64> = AREA_CODES.iter().map(|(_, w)| *w).collect();
    let area = AREA_CODES[rng.weighted(&weights)].0;
    let mut sequence = rng.below(1000) as u32;
    let mut number = id_number(area, birth, sequence, male);
    // ID numbers are unique: on a clash take the next sequence of the same parity.
    while !used_ids.insert(number.clone()) {
        sequence = (sequence + 2) % 1000;
        number = id_number(area, birth, sequence, male);
    }
    Person {
        id,
        id_hash: id_hash(hash_key, &number),
        id_masked: mask_id_number(&number),
        name: person_name(&mut rng, male),
        male,
        birth,
        education: kind.education(&mut rng),
        death: None,
    }
}

/// A payroll-only person (编外 staff or a fabricated ghost): only hash and name.
pub fn payroll_only_identity(
    seed: u64,
    hash_key: &[u8],
    stream: &str,
    index: u64,
) -> (String, String) {
    let mut rng = Rng::new(seed, stream, index);
    let male = rng.chance(0.5);
    let birth = ymd(
        rng.range(1965, 2002) as i32,
        rng.range(1, 12) as u32,
        rng.range(1, 28) as u32,
    );
    let area = AREA_CODES[rng.below(AREA_CODES.len() as u64) as usize].0;
    // Sequence numbers 900–999 are kept for payroll-only people so they never
    // coincide with a roster person's number.
    let number = id_number(area, birth, 900 + rng.below(100) as u32, male);
    (id_hash(hash_key, &number), person_name(&mut rng, male))
}

/// When and why a stay that starts on `start` ends, if it ends before the frame
/// does. Competing risks: retirement at the statutory age, and exponential
/// waiting times for resignation, dismissal, transfer and death.
pub fn plan_exit(
    rng: &mut Rng,
    kind: StaffKind,
    person: &Person,
    start: NaiveDate,
) -> Option<(NaiveDate, ExitReason)> {
    let end = frame_end();
    let retirement = retirement_date(person, kind);
    let (resign, dismiss, transfer) = kind.hazards();
    let age_at_start = (start - person.birth).num_days() as f64 / 365.25;
    // Gompertz-like mortality, about 1.3‰ a year at 55.
    let death_rate = 0.0004 * (0.08 * (age_at_start - 40.0)).exp();
    let mut candidates = vec![(retirement, ExitReason::Retirement)];
    for (rate, reason) in [
        (resign, ExitReason::Resignation),
        (dismiss, ExitReason::Dismissal),
        (transfer, ExitReason::Transfer),
        (death_rate, ExitReason::Death),
    ] {
        let years = rng.exponential(1.0 / rate);
        if years < 30.0 {
            candidates.push((start + Duration::days((years * 365.25) as i64 + 1), reason));
        }
    }
    candidates
        .into_iter()
        .filter(|(date, _)| *date > start)
        .min_by_key(|(date, _)| *date)
        .filter(|(date, _)| *date < end)
}

/// The day a person of `kind` retires: the first of the month after the birthday
/// at the statutory age.
pub fn retirement_date(person: &Person, kind: StaffKind) -> NaiveDate {
    first_of_next_month(ymd(
        person.birth.year() + kind.retirement_age(person.male),
        person.birth.month(),
        person.birth.day(),
    ))
}

/// The first day of the month after `date` (retirement takes effect then).
pub fn first_of_next_month(date: NaiveDate) -> NaiveDate {
    if date.month() == 12 {
        ymd(date.year() + 1, 1, 1)
    } else {
        ymd(date.year(), date.month() + 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::id_number::is_valid_id_number;
    use std::collections::HashSet;

    #[test]
    fn people_are_reproducible_and_have_valid_ids() {
        let mut used = HashSet::new();
        let a = new_person(
            7,
            1,
            b"k",
            StaffKind::Teacher,
            false,
            30.0,
            ymd(2020, 1, 1),
            &mut used,
        );
        let mut used2 = HashSet::new();
        let b = new_person(
            7,
            1,
            b"k",
            StaffKind::Teacher,
            false,
            30.0,
            ymd(2020, 1, 1),
            &mut used2,
        );
        assert_eq!(a.id_hash, b.id_hash);
        assert_eq!(a.name, b.name);
        assert_eq!(used.len(), 1);
        let number = used.iter().next().unwrap();
        assert!(is_valid_id_number(number), "{number}");
        assert_eq!(mask_id_number(number), a.id_masked);
        assert_eq!(&number[6..14], &a.birth.format("%Y%m%d").to_string());
    }

    #[test]
    fn retirement_is_at_the_statutory_age() {
        let mut used = HashSet::new();
        let person = new_person(
            1,
            5,
            b"k",
            StaffKind::CivilServant,
            false,
            59.5,
            ymd(2020, 1, 1),
            &mut used,
        );
        // A woman is never created past her retirement age.
        assert!(person.birth > ymd(1965, 1, 1), "{}", person.birth);
        let mut rng = Rng::new(1, "t", 0);
        // Whatever else happens, the stay ends no later than the retirement date.
        let retire = first_of_next_month(ymd(
            person.birth.year() + StaffKind::CivilServant.retirement_age(person.male),
            person.birth.month(),
            person.birth.day(),
        ));
        if let Some((date, _)) =
            plan_exit(&mut rng, StaffKind::CivilServant, &person, ymd(2020, 1, 1))
        {
            assert!(date <= retire);
        } else {
            assert!(retire >= frame_end());
        }
    }
}
