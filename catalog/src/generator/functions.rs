//! 三定 duty clauses (org_duty), 权责清单 items (power_item) and the 三定
//! documents, from the profiles in [`super::function_texts`]; plus the planted
//! duplicated duties (职能交叉) between departments of one district.

use chrono::{Datelike, NaiveDate};

use super::calendar::ymd;
use super::documents::Documents;
use super::function_texts::{profile, ARTICLE_RANGE, COMMON_DUTIES, SYNONYMS};
use super::orgs::{chinese_number, Org, Role};
use super::planted::{rates, Plant, Planted};
use super::rng::Rng;
use super::shenzhen::{CITY_CODE, DISTRICTS};
use super::staffing::Staffing;

/// One org_duty row.
#[derive(Debug, Clone)]
pub struct DutyRow {
    pub id: i64,
    pub org: usize,
    pub version_year: i16,
    pub seq: i32,
    pub text: String,
    pub doc_id: Option<i64>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// One power_item row.
#[derive(Debug, Clone)]
pub struct PowerRow {
    pub id: i64,
    pub org: usize,
    pub code: String,
    pub item_type: &'static str,
    pub name: String,
    pub legal_basis: String,
    pub responsibility: String,
    pub level: &'static str,
    pub status: &'static str,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// Duties and power items of every body.
#[derive(Debug, Default)]
pub struct Functions {
    pub duties: Vec<DutyRow>,
    pub powers: Vec<PowerRow>,
}

fn placeholders(org: &Org) -> (&'static str, &'static str, &'static str) {
    match org.tier {
        "市" if org.role == Role::Branch => ("辖区", "市委、市政府", "市"),
        "市" => ("全市", "市委、市政府", "市"),
        "区" => ("全区", "区委、区政府", "区"),
        _ => ("本街道", "街道党工委、办事处", "街道"),
    }
}

/// Fill placeholders and vary the wording a little.
fn render(template: &str, org: &Org, rng: &mut Rng) -> String {
    let (scope, leadership, level) = placeholders(org);
    let mut text = template
        .replace("{s}", scope)
        .replace("{g}", leadership)
        .replace("{l}", level);
    for (word, alternatives) in SYNONYMS {
        if text.contains(word) && rng.chance(0.3) {
            let replacement = rng.pick(alternatives);
            text = text.replacen(word, replacement, 1);
        }
    }
    text
}

/// A small edit that keeps a copied clause recognisable: a prefix, or one
/// character changed.
fn edit_copy(text: &str, rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("配合有关部门{}", text.trim_start_matches("负责")),
        1 => text.replacen("负责", "协同负责", 1),
        _ => {
            let chars: Vec<char> = text.chars().collect();
            if chars.len() < 10 {
                return text.to_string();
            }
            let at = rng.range(2, chars.len() as i64 - 3) as usize;
            let mut out: String = chars[..at].iter().collect();
            out.push('和');
            out.extend(&chars[at + 1..]);
            out
        }
    }
}

fn type_code(item_type: &str) -> &'static str {
    match item_type {
        "行政许可" => "XK",
        "行政处罚" => "CF",
        "行政强制" => "QZ",
        "行政征收" => "ZS",
        "行政给付" => "JF",
        "行政检查" => "JC",
        "行政确认" => "QR",
        "行政奖励" => "JL",
        "行政裁决" => "CJ",
        "行政指导" => "ZD",
        _ => "QT",
    }
}

fn responsibility(item_type: &str) -> String {
    let steps: &[&str] = match item_type {
        "行政处罚" => &[
            "立案责任:对发现的违法行为依法立案",
            "调查责任:全面、客观、公正地调查取证",
            "审查责任:审查案件事实、证据和法律适用",
            "告知责任:告知当事人拟作出处罚的事实、理由和依据及其陈述申辩权利",
            "决定责任:依法作出处罚决定",
            "执行责任:监督当事人履行处罚决定",
        ],
        "行政许可" => &[
            "受理责任:公示办理条件和材料,一次性告知补正",
            "审查责任:对申请材料进行审查,必要时现场核查",
            "决定责任:依法作出准予或者不予许可的决定",
            "送达责任:制发并送达许可证件",
            "监管责任:对被许可人从事许可事项的活动进行监督检查",
        ],
        "行政检查" => &[
            "检查责任:制定检查计划,依法开展检查",
            "处置责任:对检查发现的问题依法处理",
            "信息公开责任:依法公开检查结果",
        ],
        "行政强制" => &[
            "审批责任:报经负责人批准",
            "实施责任:两名以上执法人员实施并制作现场笔录",
            "处理责任:依法作出处理决定并解除强制措施",
        ],
        _ => &[
            "受理责任:依法受理申请",
            "审核责任:审核相关材料",
            "决定责任:依法作出决定并告知",
            "监管责任:加强事后监管",
        ],
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}.{s}。", i + 1))
        .collect::<Vec<_>>()
        .join("")
}

fn area_code(org: &Org) -> u32 {
    org.district.map(|d| DISTRICTS[d].code).unwrap_or(CITY_CODE)
}

fn doc_prefix(org: &Org) -> &'static str {
    match org.district {
        Some(d) if org.tier != "市" => DISTRICTS[d].short_name(),
        _ => "深",
    }
}

/// Build duties, power items and 三定 documents for every body.
pub fn build_functions(
    staffing: &Staffing,
    seed: u64,
    docs: &mut Documents,
    planted: &mut Planted,
) -> Functions {
    let mut out = Functions::default();
    let orgs = &staffing.orgs;
    // The first version of every body's duties: its 三定 of 2019 (or the reform that made it).
    let mut body_duties: Vec<Vec<usize>> = vec![Vec::new(); orgs.len()];
    for (index, org) in orgs.iter().enumerate() {
        let Some(key) = org.function_key else {
            continue;
        };
        let Some(profile) = profile(key) else {
            continue;
        };
        let mut rng = Rng::new(seed, "duties", org.id as u64);
        let from = org.valid_from.max(ymd(2019, 3, 1));
        let issued = if from.year() == 2019 {
            ymd(2019, rng.range(3, 9) as u32, rng.range(1, 28) as u32)
        } else {
            from
        };
        let with_document = matches!(org.role, Role::Department | Role::Street);
        let doc = with_document.then(|| docs.three_definitions(doc_prefix(org), &org.name, issued));
        let mut clauses: Vec<String> = Vec::new();
        for template in profile.duties {
            // Districts and streets leave out a clause now and then.
            if org.tier == "市" || profile.duties.len() <= 5 || rng.chance(0.9) {
                clauses.push(render(template, org, &mut rng));
            }
        }
        if matches!(org.role, Role::Department | Role::Branch | Role::Street) {
            clauses.extend(COMMON_DUTIES.iter().map(|t| render(t, org, &mut rng)));
        }
        for (seq, text) in clauses.iter().enumerate() {
            out.duties.push(DutyRow {
                id: out.duties.len() as i64 + 1,
                org: index,
                version_year: from.year() as i16,
                seq: seq as i32 + 1,
                text: text.clone(),
                doc_id: doc.as_ref().map(|d| d.0),
                valid_from: from,
                valid_to: org.valid_to,
            });
            body_duties[index].push(out.duties.len() - 1);
        }
        if let Some((doc_id, _)) = doc {
            let body: String = clauses
                .iter()
                .enumerate()
                .map(|(i, c)| format!("({}){c}", chinese_number(i as u32 + 1)))
                .collect();
            docs.set_text(
                doc_id,
                format!(
                    "{}职能配置、内设机构和人员编制规定。主要职责:{body}",
                    org.name
                ),
            );
        }
    }

    // Internal divisions take over the parent's clauses that concern them.
    for (index, org) in orgs.iter().enumerate() {
        if org.role != Role::Division {
            continue;
        }
        let Some(parent) = org
            .parent
            .and_then(|id| orgs.iter().position(|o| o.id == id))
        else {
            continue;
        };
        let division: String = org
            .name
            .trim_start_matches(orgs[parent].name.as_str())
            .to_string();
        let stem: Vec<char> = division
            .trim_end_matches(['处', '室', '科', '局', '部'])
            .chars()
            .collect();
        let mut scored: Vec<(usize, usize)> = body_duties[parent]
            .iter()
            .map(|&d| {
                let text = &out.duties[d].text;
                let hits = stem
                    .windows(2)
                    .filter(|w| text.contains(&w.iter().collect::<String>()))
                    .count();
                (hits, d)
            })
            .filter(|(hits, _)| *hits > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (seq, (_, duty)) in scored.into_iter().take(3).enumerate() {
            let source = out.duties[duty].clone();
            let text = format!(
                "承担{}的具体工作。",
                source
                    .text
                    .trim_end_matches('。')
                    .trim_start_matches("负责")
            );
            out.duties.push(DutyRow {
                id: out.duties.len() as i64 + 1,
                org: index,
                version_year: source.version_year,
                seq: seq as i32 + 1,
                text,
                doc_id: source.doc_id,
                valid_from: source.valid_from,
                valid_to: source.valid_to.or(org.valid_to),
            });
        }
    }

    // Planted: a clause of one department copied into another of the same district.
    let department_duties: Vec<usize> = (0..out.duties.len())
        .filter(|&d| {
            let org = &orgs[out.duties[d].org];
            org.role == Role::Department
                && org.district.is_some()
                && !COMMON_DUTIES
                    .iter()
                    .any(|c| c.contains("交办") && out.duties[d].text.contains("交办"))
                && !out.duties[d].text.starts_with("负责本部门职责范围内")
        })
        .collect();
    for duty in department_duties {
        let mut rng = Rng::new(seed, "duplicated-duty", duty as u64);
        if !rng.chance(rates::DUPLICATED_DUTY) {
            continue;
        }
        let source = out.duties[duty].clone();
        let source_org = &orgs[source.org];
        let targets: Vec<usize> = (0..orgs.len())
            .filter(|&o| {
                orgs[o].role == Role::Department
                    && orgs[o].district == source_org.district
                    && orgs[o].function_key != source_org.function_key
                    && orgs[o].valid_to.is_none()
                    && !body_duties[o].is_empty()
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let target = *rng.pick(&targets);
        let seq = body_duties[target].len() as i32 + 1;
        let text = edit_copy(&source.text, &mut rng);
        let first = &out.duties[body_duties[target][0]];
        let copy = DutyRow {
            id: out.duties.len() as i64 + 1,
            org: target,
            version_year: first.version_year,
            seq,
            text,
            doc_id: first.doc_id,
            valid_from: first.valid_from,
            valid_to: first.valid_to,
        };
        planted.add(
            "duplicated_duty",
            &[],
            Plant {
                org_id: Some(orgs[target].id),
                period_from: Some(copy.valid_from),
                detail: format!(
                    "\"source_org_id\":{},\"source_duty_id\":{},\"copy_duty_id\":{}",
                    source_org.id, source.id, copy.id
                ),
                ..Plant::default()
            },
        );
        out.duties.push(copy);
        body_duties[target].push(out.duties.len() - 1);
    }

    // Reforms: a merged body's duties move into its successor's new version.
    for reform in &staffing.reforms {
        for change in reform.changes.iter().filter(|c| c.change_type == "合并") {
            let (Some(source), Some(target)) = (change.source, change.target) else {
                continue;
            };
            if change.quota_type != Some("行政") {
                continue;
            }
            let date = reform.date;
            let mut texts: Vec<String> = Vec::new();
            for &d in body_duties[target].iter().chain(&body_duties[source]) {
                let row = &mut out.duties[d];
                if row.valid_to.is_none() || row.valid_to == Some(date) {
                    row.valid_to = Some(date);
                    if !texts.contains(&row.text) {
                        texts.push(row.text.clone());
                    }
                }
            }
            let org = &orgs[target];
            let doc = docs.three_definitions(doc_prefix(org), &org.name, date);
            for (seq, text) in texts.into_iter().enumerate() {
                out.duties.push(DutyRow {
                    id: out.duties.len() as i64 + 1,
                    org: target,
                    version_year: date.year() as i16,
                    seq: seq as i32 + 1,
                    text,
                    doc_id: Some(doc.0),
                    valid_from: date,
                    valid_to: None,
                });
            }
        }
    }

    // Power items.
    let list_date = ymd(2019, 6, 1);
    let delegation = ymd(2021, 7, 1);
    let street_names: Vec<&str> = profile("street")
        .map(|p| p.powers.iter().map(|t| t.1).collect())
        .unwrap_or_default();
    for (index, org) in orgs.iter().enumerate() {
        let Some(key) = org.function_key else {
            continue;
        };
        let Some(profile) = profile(key) else {
            continue;
        };
        if !matches!(org.role, Role::Department | Role::Branch | Role::Street) {
            continue;
        }
        let mut rng = Rng::new(seed, "powers", org.id as u64);
        let level = if org.role == Role::Branch {
            "区"
        } else {
            org.tier
        };
        for (seq, &(item_type, name, law)) in profile.powers.iter().enumerate() {
            let article = rng.range(ARTICLE_RANGE.0, ARTICLE_RANGE.1) as u32;
            let mut valid_from = org.valid_from.max(list_date);
            let mut valid_to = org.valid_to;
            let mut status = "有效";
            if org.role == Role::Street {
                valid_from = valid_from.max(delegation);
            } else if org.tier == "区" && key == "urban_management" && street_names.contains(&name)
            {
                status = "已下放";
                valid_to = Some(delegation);
            } else if rng.chance(0.04) {
                status = "已取消";
                valid_to = Some(*rng.pick(&[ymd(2021, 1, 1), ymd(2023, 1, 1)]));
            } else if rng.chance(0.08) {
                valid_from = valid_from.max(*rng.pick(&[ymd(2021, 1, 1), ymd(2023, 1, 1)]));
            }
            if valid_to.is_some_and(|to| to <= valid_from) {
                continue;
            }
            out.powers.push(PowerRow {
                id: out.powers.len() as i64 + 1,
                org: index,
                code: format!(
                    "{}-{}-{:05}",
                    area_code(org),
                    type_code(item_type),
                    org.id * 100 + seq as i64 + 1
                ),
                item_type,
                name: name.to_string(),
                legal_basis: format!("{law}第{}条", chinese_number(article)),
                responsibility: responsibility(item_type),
                level,
                status,
                valid_from,
                valid_to,
            });
        }
    }
    out
}
