//! The bodies (机构) of the synthetic city: Party and government departments at
//! city and district tier with their internal divisions, vertically managed
//! branches, the legislature, courts, parties and mass organisations, streets,
//! and the public institutions (schools, hospitals, centres).
//!
//! The set of bodies does not depend on the scale or the seed: only their
//! quotas (and so their people) scale, and the seed only jitters sizes.

use chrono::NaiveDate;

use super::calendar::ymd;
use super::id_number::uscc;
use super::rng::Rng;
use super::shenzhen::{street_weights, District, CITY_CODE, CITY_NAME, DISTRICTS};
use super::templates::{
    FunctionKey, BRANCHES, CITY_HEALTH, CITY_INSTITUTIONS, CITY_SCHOOLS, DEPARTMENTS,
    DISTRICT_INSTITUTIONS, OTHER_BODIES, PARTIES, SCHOOL_STEMS, STREET_DIVISIONS,
    STREET_INSTITUTIONS, UNIVERSITIES,
};

/// What part a body plays; decides its staff mix and how it hires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Party or government department (三定 duties, power items, leaders).
    Department,
    /// Vertically managed branch of a city department in a district.
    Branch,
    /// Legislature, consultative body, court, procuratorate, party or mass organisation.
    OtherOrgan,
    /// Street office or town government.
    Street,
    /// Internal division: no quota of its own.
    Division,
    School,
    Hospital,
    University,
    /// Other public institution; `true` in [`Org::civil_service_like`] when 参公.
    Institution,
}

/// One body with what the generator needs to staff it.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: i64,
    pub name: String,
    pub short_name: Option<String>,
    pub uscc: Option<String>,
    pub kind: &'static str,
    pub system: &'static str,
    pub nature: &'static str,
    pub rank: &'static str,
    pub tier: &'static str,
    pub region_code: String,
    pub sector: &'static str,
    pub funding: &'static str,
    pub welfare_class: Option<&'static str>,
    pub affiliation: &'static str,
    pub parent: Option<i64>,
    pub vertical: bool,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub role: Role,
    /// Index into DISTRICTS (None for city-wide bodies).
    pub district: Option<usize>,
    /// Which duty and power-item texts it gets.
    pub function_key: Option<FunctionKey>,
    /// Quota types and approved counts at scale 1 (before scaling).
    pub quotas: Vec<(&'static str, f64)>,
    /// 参照公务员法管理 (事业 quota, civil-service-like staff).
    pub civil_service_like: bool,
    /// Approved leader posts by level.
    pub leader_posts: Vec<(&'static str, u32)>,
}

/// The date the 2019 reform's arrangements took effect; bodies existing at the
/// start of the frame are dated from here (or earlier for old institutions).
pub fn reform_2019() -> NaiveDate {
    ymd(2019, 3, 1)
}

struct Builder<'a> {
    orgs: Vec<Org>,
    rng: &'a mut Rng,
}

impl Builder<'_> {
    fn next_id(&self) -> i64 {
        self.orgs.len() as i64 + 1
    }

    fn jitter(&mut self, size: f64) -> f64 {
        size * self.rng.uniform(0.8, 1.2)
    }

    fn push(&mut self, mut org: Org) -> i64 {
        let id = self.next_id();
        org.id = id;
        if org.role != Role::Division {
            let kind = match org.nature {
                "事业单位" => '2',
                "社会团体" => '3',
                "其他" => '9',
                _ => '1',
            };
            let area = org.district.map(|d| DISTRICTS[d].code).unwrap_or(CITY_CODE);
            // A deterministic organisation-code body: 7-digit prefix by tier, then the id.
            let body = 10_000_000 + (id as u32 % 1_000_000) * 7 + u32::from(org.tier == "区");
            org.uscc = Some(uscc(kind, area, body));
        }
        self.orgs.push(org);
        id
    }
}

fn base(name: String, role: Role) -> Org {
    Org {
        id: 0,
        name,
        short_name: None,
        uscc: None,
        kind: "事业单位",
        system: "其他",
        nature: "事业单位",
        rank: "正处级",
        tier: "市",
        region_code: format!("{CITY_CODE}000000"),
        sector: "综合管理",
        funding: "全额拨款",
        welfare_class: None,
        affiliation: "40",
        parent: None,
        vertical: false,
        valid_from: reform_2019(),
        valid_to: None,
        role,
        district: None,
        function_key: None,
        quotas: Vec::new(),
        civil_service_like: false,
        leader_posts: Vec::new(),
    }
}

/// Residents of a district relative to the average district (2020).
fn district_size(district: &District) -> f64 {
    let average =
        DISTRICTS.iter().map(|d| d.census_2020 as f64).sum::<f64>() / DISTRICTS.len() as f64;
    district.census_2020 as f64 / average
}

fn city_leader_posts(size: f64, divisions: usize) -> Vec<(&'static str, u32)> {
    let deputies = 3 + u32::from(size > 150.0) + u32::from(size > 300.0);
    vec![
        ("厅局级正职", 1),
        ("厅局级副职", deputies),
        ("县处级正职", divisions.max(2) as u32),
        (
            "县处级副职",
            ((divisions.max(2) as f64) * 1.3).ceil() as u32,
        ),
    ]
}

fn district_leader_posts(size: f64) -> Vec<(&'static str, u32)> {
    vec![
        ("县处级正职", 1),
        (
            "县处级副职",
            2 + u32::from(size > 40.0) + u32::from(size > 100.0),
        ),
        ("乡科级正职", (4.0 + size / 20.0).min(10.0) as u32),
        ("乡科级副职", (3.0 + size / 30.0).min(8.0) as u32),
    ]
}

/// Build every body. `seed` only jitters sizes.
pub fn build_orgs(seed: u64) -> Vec<Org> {
    let mut rng = Rng::new(seed, "orgs", 0);
    let mut b = Builder {
        orgs: Vec::new(),
        rng: &mut rng,
    };

    // City-tier Party and government departments, with internal divisions.
    let mut city_dept_ids: Vec<(FunctionKey, i64)> = Vec::new();
    for t in DEPARTMENTS {
        let Some(suffix) = t.city_name else { continue };
        // Party bodies carry 中共 (中共深圳市委组织部, 中共深圳市纪律检查委员会).
        let name = if t.system == "党委" {
            format!("中共{CITY_NAME}{suffix}")
        } else {
            format!("{CITY_NAME}{suffix}")
        };
        let mut org = base(name, Role::Department);
        org.short_name = Some(format!("市{}", suffix.trim_start_matches('委')));
        org.kind = t.city_kind;
        org.system = t.system;
        org.nature = t.nature;
        org.rank = "正厅级";
        org.sector = t.sector;
        org.function_key = Some(t.key);
        let admin = b.jitter(f64::from(t.city_admin));
        if t.city_admin > 0 {
            org.quotas.push(("行政", admin));
        }
        if t.city_legal > 0 {
            org.quotas
                .push(("政法专项", b.jitter(f64::from(t.city_legal))));
        }
        org.quotas
            .push(("工勤", b.jitter(4.0 + f64::from(t.city_admin) / 40.0)));
        let size = admin + f64::from(t.city_legal) / 10.0;
        org.leader_posts = city_leader_posts(size, t.divisions.len());
        let org_name = org.name.clone();
        let id = b.push(org);
        city_dept_ids.push((t.key, id));
        for division in t.divisions {
            let mut div = base(format!("{org_name}{division}"), Role::Division);
            div.kind = "内设机构";
            div.system = t.system;
            div.nature = t.nature;
            div.sector = t.sector;
            div.parent = Some(id);
            div.funding = "全额拨款";
            b.push(div);
        }
    }
    let city_dept = |key: &str| {
        city_dept_ids
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, id)| *id)
    };

    // City legislature, courts, parties and mass organisations.
    for &(suffix, kind, system, nature, sector, quota, city_size, _) in OTHER_BODIES {
        if city_size == 0 {
            continue;
        }
        let name = if system == "群团" && suffix.starts_with("共青团") {
            format!("共青团{CITY_NAME}委员会")
        } else {
            format!("{CITY_NAME}{suffix}")
        };
        let mut org = base(name, Role::OtherOrgan);
        org.kind = kind;
        org.system = system;
        org.nature = nature;
        org.sector = sector;
        org.rank = "正厅级";
        org.function_key = Some(other_function_key(system));
        org.quotas.push((quota, b.jitter(f64::from(city_size))));
        org.leader_posts = vec![
            ("厅局级正职", 1),
            ("厅局级副职", 3),
            ("县处级正职", 4),
            ("县处级副职", 5),
        ];
        b.push(org);
    }
    for party in PARTIES {
        let mut org = base((*party).to_string(), Role::OtherOrgan);
        org.kind = "民主党派";
        org.system = "民主党派";
        org.nature = "社会团体";
        org.sector = "人大政协群团";
        org.rank = "正处级";
        org.function_key = Some("parties");
        org.quotas.push(("行政", b.jitter(12.0)));
        org.leader_posts = vec![("县处级正职", 1), ("县处级副职", 2)];
        b.push(org);
    }

    // City public institutions.
    for &(name, size) in UNIVERSITIES {
        let mut org = base(name.to_string(), Role::University);
        org.rank = "正厅级";
        org.sector = "教育";
        org.welfare_class = Some("公益二类");
        org.funding = "差额补贴";
        org.parent = city_dept("education");
        org.quotas.push(("事业", b.jitter(f64::from(size))));
        b.push(org);
    }
    for &(name, size) in CITY_HEALTH {
        let mut org = base(name.to_string(), Role::Hospital);
        org.sector = "卫生健康";
        let hospital = name.contains("医院");
        org.welfare_class = Some(if hospital {
            "公益二类"
        } else {
            "公益一类"
        });
        org.funding = if hospital {
            "差额补贴"
        } else {
            "全额拨款"
        };
        org.parent = city_dept("health");
        org.quotas.push(("事业", b.jitter(f64::from(size))));
        b.push(org);
    }
    let mut school_names: Vec<String> = CITY_SCHOOLS.iter().map(|s| s.to_string()).collect();
    for n in 2..=19 {
        school_names.push(format!("{CITY_NAME}第{}高级中学", chinese_number(n)));
    }
    for name in school_names {
        let mut org = base(name, Role::School);
        org.sector = "教育";
        org.welfare_class = Some("公益一类");
        org.parent = city_dept("education");
        let size = b.rng.uniform(260.0, 480.0);
        org.quotas.push(("事业", size));
        b.push(org);
    }
    for &(key, name, size, civil) in CITY_INSTITUTIONS {
        let mut org = base(name.to_string(), Role::Institution);
        org.parent = city_dept(key);
        org.sector = DEPARTMENTS
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.sector)
            .unwrap_or("综合管理");
        org.welfare_class = Some(if civil {
            "行政职能类"
        } else {
            "公益一类"
        });
        org.civil_service_like = civil;
        org.quotas.push(("事业", b.jitter(f64::from(size))));
        b.push(org);
    }

    // Districts.
    for (d_index, district) in DISTRICTS.iter().enumerate() {
        let factor = district_size(district).powf(0.35);
        let prefix = format!("{CITY_NAME}{}", district.name);
        let region = district.region_code();
        let with_district = |mut org: Org| {
            org.district = Some(d_index);
            org.region_code = region.clone();
            org.tier = "区";
            org.affiliation = "50";
            org
        };
        let mut district_dept_ids: Vec<(FunctionKey, i64)> = Vec::new();
        for t in DEPARTMENTS {
            let Some(suffix) = t.district_name else {
                continue;
            };
            if district.function_area && !t.in_function_area {
                continue;
            }
            let name = if t.system == "党委" {
                format!("中共{prefix}{suffix}")
            } else {
                format!("{prefix}{suffix}")
            };
            let mut org = with_district(base(name, Role::Department));
            org.short_name = Some(format!(
                "{}区{}",
                district.short_name(),
                suffix.trim_start_matches('委')
            ));
            org.kind = t.district_kind;
            org.system = t.system;
            org.nature = t.nature;
            org.rank = "正处级";
            org.sector = t.sector;
            org.function_key = Some(t.key);
            let admin = b.jitter(f64::from(t.district_admin) * factor);
            org.quotas.push(("行政", admin));
            if t.district_legal > 0 {
                org.quotas
                    .push(("政法专项", b.jitter(f64::from(t.district_legal) * factor)));
            }
            org.quotas
                .push(("工勤", b.jitter(1.0 + f64::from(t.district_admin) / 25.0)));
            org.leader_posts = district_leader_posts(admin);
            let id = b.push(org);
            district_dept_ids.push((t.key, id));
        }
        let district_dept = |key: &str| {
            district_dept_ids
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, id)| *id)
        };

        // Vertically managed branches: city tier, located in the district.
        for branch in BRANCHES {
            let name = branch.name.replace("{d}", district.short_name());
            let mut org = base(name, Role::Branch);
            org.district = Some(d_index);
            org.region_code = region.clone();
            org.vertical = true;
            org.parent = city_dept(branch.parent_key);
            org.kind = "派出机构";
            org.system = "政府";
            org.nature = if branch.quota_type == "政法专项" {
                "政法机关"
            } else {
                "国家机关"
            };
            org.sector = DEPARTMENTS
                .iter()
                .find(|t| t.key == branch.parent_key)
                .map(|t| t.sector)
                .unwrap_or("综合管理");
            org.function_key = Some(branch.parent_key);
            let size = b.jitter(f64::from(branch.size) * district_size(district).powf(0.6));
            org.quotas.push((branch.quota_type, size));
            org.leader_posts = district_leader_posts(size.min(150.0));
            b.push(org);
        }

        // Legislature, courts and mass organisations of the district.
        if !district.function_area {
            for &(suffix, kind, system, nature, sector, quota, _, district_size_base) in
                OTHER_BODIES
            {
                if district_size_base == 0 {
                    continue;
                }
                let suffix = match suffix {
                    "人大常委会办公厅" => "人大常委会办公室",
                    "政协办公厅" => "政协办公室",
                    other => other,
                };
                let name = if suffix.starts_with("共青团") {
                    format!("共青团{prefix}委员会")
                } else {
                    format!("{prefix}{suffix}")
                };
                let mut org = with_district(base(name, Role::OtherOrgan));
                org.kind = kind;
                org.system = system;
                org.nature = nature;
                org.sector = sector;
                org.function_key = Some(other_function_key(system));
                let size = b.jitter(f64::from(district_size_base) * factor);
                org.quotas.push((quota, size));
                org.leader_posts = vec![
                    ("县处级正职", 1),
                    ("县处级副职", 3),
                    ("乡科级正职", 5),
                    ("乡科级副职", 4),
                ];
                b.push(org);
            }
        }

        // District public institutions: health, others, schools.
        for &(suffix, kind, size) in DISTRICT_INSTITUTIONS {
            if district.function_area && kind == 'o' && size < 60 {
                continue;
            }
            let mut org = with_district(base(
                format!("{prefix}{suffix}"),
                if kind == 'h' {
                    Role::Hospital
                } else {
                    Role::Institution
                },
            ));
            org.rank = "正科级";
            if kind == 'h' {
                org.sector = "卫生健康";
                org.parent = district_dept("health");
                let hospital = suffix.contains("医院")
                    || suffix.contains("保健院")
                    || suffix.contains("防治院");
                org.welfare_class = Some(if hospital {
                    "公益二类"
                } else {
                    "公益一类"
                });
                org.funding = if hospital {
                    "差额补贴"
                } else {
                    "全额拨款"
                };
            } else {
                org.sector = "综合管理";
                org.welfare_class = Some("公益一类");
            }
            let health = if kind == 'h' { 1.3 } else { 1.0 };
            org.quotas.push((
                "事业",
                b.jitter(f64::from(size) * health * district_size(district).powf(0.7)),
            ));
            b.push(org);
        }
        // Roughly one public school per 80,000 residents, as bodies of their own.
        let schools = 6 + (district.census_2020 as f64 / 80_000.0).round() as usize;
        for index in 0..schools {
            let place = district.streets[index % district.streets.len()];
            // Per street, successive schools take successive stems, so names never repeat.
            let stem = SCHOOL_STEMS[(index / district.streets.len()
                + index % district.streets.len())
                % SCHOOL_STEMS.len()];
            let name = format!("{prefix}{place}{stem}");
            let mut org = with_district(base(name, Role::School));
            org.rank = "正科级";
            org.sector = "教育";
            org.welfare_class = Some("公益一类");
            org.parent = district_dept("education");
            let size = b.rng.uniform(220.0, 420.0);
            org.quotas.push(("事业", size));
            b.push(org);
        }

        // Streets (or towns) with their divisions and institutions.
        let weights = street_weights(district);
        let average_street = 17_560_061.0 / 78.0;
        for (s_index, street) in district.streets.iter().enumerate() {
            let street_population = district.census_2020 as f64 * weights[s_index];
            let street_factor = (street_population / average_street).powf(0.4);
            let street_region = district.street_code(s_index);
            let suffix = district.street_suffix();
            let office = if district.towns {
                "人民政府"
            } else {
                "办事处"
            };
            let mut org = base(format!("{prefix}{street}{suffix}{office}"), Role::Street);
            org.district = Some(d_index);
            org.region_code = street_region.clone();
            org.tier = "街道";
            org.affiliation = if district.towns { "62" } else { "61" };
            org.short_name = Some(format!("{street}{suffix}"));
            org.kind = if district.towns {
                "乡镇人民政府"
            } else {
                "派出机构"
            };
            org.system = "政府";
            org.nature = "国家机关";
            org.sector = "基层治理";
            org.function_key = Some("street");
            let admin = b.jitter(90.0 * street_factor);
            org.quotas.push(("行政", admin));
            org.quotas.push(("工勤", b.jitter(3.0)));
            org.leader_posts = vec![
                ("县处级正职", 2),
                ("县处级副职", 6),
                ("乡科级正职", STREET_DIVISIONS.len() as u32 + 2),
                ("乡科级副职", 6),
            ];
            org.parent = district_dept("gov_office");
            let street_name = org.name.clone();
            let street_id = b.push(org);
            for division in STREET_DIVISIONS {
                let mut div = base(format!("{street_name}{division}"), Role::Division);
                div.district = Some(d_index);
                div.region_code = street_region.clone();
                div.tier = "街道";
                div.affiliation = if district.towns { "62" } else { "61" };
                div.kind = "内设机构";
                div.system = "政府";
                div.nature = "国家机关";
                div.sector = "基层治理";
                div.rank = "正科级";
                div.parent = Some(street_id);
                b.push(div);
            }
            for &(institution, civil, size) in STREET_INSTITUTIONS {
                let name = format!("{}{street}{suffix}{institution}", district.name);
                let mut org = base(name, Role::Institution);
                org.district = Some(d_index);
                org.region_code = street_region.clone();
                org.tier = "街道";
                org.affiliation = if district.towns { "62" } else { "61" };
                org.rank = "正科级";
                org.sector = "基层治理";
                org.welfare_class = Some(if civil {
                    "行政职能类"
                } else {
                    "公益一类"
                });
                org.civil_service_like = civil;
                org.parent = Some(street_id);
                org.quotas
                    .push(("事业", b.jitter(f64::from(size) * street_factor)));
                b.push(org);
            }
        }
    }
    b.orgs
}

fn other_function_key(system: &str) -> FunctionKey {
    match system {
        "人大" => "congress",
        "政协" => "cppcc",
        "法院" => "court",
        "检察院" => "procuratorate",
        _ => "mass_org",
    }
}

/// 2 → 二, 12 → 十二, 19 → 十九, 105 → 一百零五, 122 → 一百二十二 (0–999).
pub fn chinese_number(n: u32) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    let below_hundred = |n: u32, in_hundreds: bool| -> String {
        match n {
            0 => String::new(),
            1..=9 if in_hundreds => format!("零{}", DIGITS[n as usize]),
            1..=9 => DIGITS[n as usize].to_string(),
            10..=19 if !in_hundreds => format!(
                "十{}",
                if n == 10 {
                    ""
                } else {
                    DIGITS[(n % 10) as usize]
                }
            ),
            _ => {
                let units = if n.is_multiple_of(10) {
                    ""
                } else {
                    DIGITS[(n % 10) as usize]
                };
                format!("{}十{units}", DIGITS[(n / 10) as usize])
            }
        }
    };
    match n {
        0 => DIGITS[0].to_string(),
        1..=99 => below_hundred(n, false),
        _ => format!(
            "{}百{}",
            DIGITS[(n / 100 % 10) as usize],
            below_hundred(n % 100, true)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_city_has_about_two_thousand_bodies_of_every_tier() {
        let orgs = build_orgs(1);
        assert!((1900..=2300).contains(&orgs.len()), "{} bodies", orgs.len());
        let city_party_gov = orgs
            .iter()
            .filter(|o| o.role == Role::Department && o.tier == "市")
            .count();
        assert_eq!(city_party_gov, 53);
        for (d, district) in DISTRICTS.iter().enumerate() {
            let n = orgs
                .iter()
                .filter(|o| o.role == Role::Department && o.district == Some(d))
                .count();
            if district.function_area {
                assert!((12..=20).contains(&n), "{}: {n}", district.name);
            } else {
                assert_eq!(n, 31, "{}", district.name);
            }
            let streets = orgs
                .iter()
                .filter(|o| o.role == Role::Street && o.district == Some(d))
                .count();
            assert_eq!(streets, district.streets.len());
        }
        let names: HashSet<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names.len(), orgs.len(), "names are unique");
        assert!(names.contains("深圳市市场监督管理局"));
        assert!(names.contains("中共深圳市福田区委组织部"));
        assert!(names.contains("深圳市宝安区新安街道办事处"));
        assert!(names.contains("深圳市深汕特别合作区鹅埠镇人民政府"));
        assert!(names.contains("深圳市公安局龙岗分局"));
    }

    #[test]
    fn ids_parents_and_codes_are_consistent() {
        let orgs = build_orgs(1);
        for (index, org) in orgs.iter().enumerate() {
            assert_eq!(org.id, index as i64 + 1);
            if let Some(parent) = org.parent {
                assert!(parent < org.id, "{} parent after child", org.name);
            }
            if org.role == Role::Division {
                assert!(org.quotas.is_empty());
                assert!(org.uscc.is_none());
            } else {
                let uscc = org.uscc.as_deref().unwrap();
                assert_eq!(
                    super::super::id_number::uscc_check_char(&uscc[..17]),
                    uscc.chars().last()
                );
                assert!(!org.quotas.is_empty(), "{} has no quota", org.name);
            }
        }
    }

    #[test]
    fn the_seed_only_jitters_sizes() {
        let a = build_orgs(1);
        let b = build_orgs(2);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.name == y.name));
        assert!(a.iter().zip(&b).any(|(x, y)| x.quotas != y.quotas));
        assert_eq!(chinese_number(19), "十九");
        assert_eq!(chinese_number(2), "二");
        assert_eq!(chinese_number(10), "十");
        assert_eq!(chinese_number(40), "四十");
        assert_eq!(chinese_number(105), "一百零五");
        assert_eq!(chinese_number(110), "一百一十");
        assert_eq!(chinese_number(122), "一百二十二");
    }
}
