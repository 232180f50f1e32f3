//! Staff events (人员变动) derived from the assignments: entries, transfers,
//! reform moves and exits, plus appointments, rank promotions and secondments.
//! Only events inside the frame are kept.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};

use super::calendar::{frame_end, frame_start, office_timestamp};
use super::orgs::Role;
use super::people::ExitReason;
use super::rng::Rng;
use super::shenzhen::DISTRICTS;
use super::staffing::{EntryVia, Staffing};

/// One staff_event row.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub person_id: i64,
    pub org_id: i64,
    pub event_type: &'static str,
    pub reason: Option<&'static str>,
    pub date: NaiveDate,
    pub doc_number: Option<String>,
    pub recorded_at: i64,
}

fn recorded(rng: &mut Rng, date: NaiveDate) -> i64 {
    let days = if rng.chance(0.9) {
        rng.range(0, 7)
    } else {
        rng.range(8, 40)
    };
    office_timestamp(date + Duration::days(days), rng.range(0, 8 * 60))
}

fn prefix(staffing: &Staffing, org: usize) -> &'static str {
    match staffing.orgs[org].district {
        Some(d) if staffing.orgs[org].tier != "市" => DISTRICTS[d].short_name(),
        _ => "深",
    }
}

/// Every event, sorted by date, with ids in that order.
pub fn derive_events(staffing: &Staffing, seed: u64) -> Vec<EventRow> {
    let start = frame_start();
    let end = frame_end();
    let in_frame = |d: NaiveDate| d >= start && d < end;
    let mut next_of: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, a) in staffing.assignments.iter().enumerate() {
        if let Some(previous) = a.previous {
            next_of.insert(previous, index);
        }
    }
    let mut counters: BTreeMap<(String, i32), u32> = BTreeMap::new();
    let mut number = |series: String, year: i32| {
        let n = counters.entry((series.clone(), year)).or_insert(0);
        *n += 1;
        format!("{series}〔{year}〕{n}号")
    };
    let mut events: Vec<(NaiveDate, usize, u8, EventRow)> = Vec::new();
    for (index, a) in staffing.assignments.iter().enumerate() {
        let mut rng = Rng::new(seed, "events", index as u64);
        let person_id = staffing.persons[a.person].id;
        let org_id = staffing.orgs[a.org].id;
        let mut push = |order: u8, event_type, reason, date, doc_number, rng: &mut Rng| {
            events.push((
                date,
                index,
                order,
                EventRow {
                    id: 0,
                    person_id,
                    org_id,
                    event_type,
                    reason,
                    date,
                    doc_number,
                    recorded_at: recorded(rng, date),
                },
            ));
        };
        if in_frame(a.entry) {
            let event_type = match a.entry_via {
                EntryVia::New => Some("入编"),
                EntryVia::Transfer => Some("调入"),
                EntryVia::Reform => Some("划转"),
                EntryVia::Initial => None,
            };
            if let Some(event_type) = event_type {
                push(1, event_type, None, a.entry, a.entry_doc.clone(), &mut rng);
            }
            if staffing.appointed.contains(&index) {
                let doc = number(format!("{}组干", prefix(staffing, a.org)), a.entry.year());
                push(2, "职务任免", None, a.entry, Some(doc), &mut rng);
            }
        }
        if let Some((date, reason)) = a.exit.filter(|(d, _)| in_frame(*d)) {
            match reason {
                ExitReason::Transfer if next_of.contains_key(&index) => {
                    let next = &staffing.assignments[next_of[&index]];
                    push(0, "调出", None, date, next.entry_doc.clone(), &mut rng);
                }
                ExitReason::Reform => {
                    let next = next_of
                        .get(&index)
                        .map(|&n| staffing.assignments[n].entry_doc.clone());
                    push(0, "划转", Some("划转"), date, next.flatten(), &mut rng);
                }
                other => {
                    let doc = number(format!("{}人出", prefix(staffing, a.org)), date.year());
                    push(0, "出编", Some(other.code()), date, Some(doc), &mut rng);
                }
            }
        }
        // Rank promotions of civil servants and 参公 staff, about one in five years.
        if matches!(a.category, "公务员" | "参公人员") {
            let from = a.entry.max(start);
            let to = a.exit.map_or(end, |(d, _)| d.min(end));
            let mut year = from.year();
            while year < to.year() || (year == to.year() && to.month() > 1) {
                if rng.chance(0.18) {
                    let date = super::calendar::ymd(
                        year,
                        rng.range(1, 12) as u32,
                        rng.range(1, 28) as u32,
                    );
                    if date > from && date < to {
                        let doc = number(format!("{}人晋", prefix(staffing, a.org)), year);
                        push(3, "职级晋升", None, date, Some(doc), &mut rng);
                    }
                }
                year += 1;
            }
            // Secondment to another body of the same district: the post stays.
            if rng.chance(0.02) {
                let hosts: Vec<i64> = staffing
                    .orgs
                    .iter()
                    .filter(|o| {
                        o.district == staffing.orgs[a.org].district
                            && o.role == Role::Department
                            && o.id != org_id
                            && o.valid_to.is_none()
                    })
                    .map(|o| o.id)
                    .collect();
                let days = (to - from).num_days();
                if !hosts.is_empty() && days > 60 {
                    let date = from + Duration::days(rng.range(1, days - 1));
                    let host = *rng.pick(&hosts);
                    let doc = number(format!("{}借调", prefix(staffing, a.org)), date.year());
                    events.push((
                        date,
                        index,
                        4,
                        EventRow {
                            id: 0,
                            person_id,
                            org_id: host,
                            event_type: "借调",
                            reason: None,
                            date,
                            doc_number: Some(doc),
                            recorded_at: recorded(&mut rng, date),
                        },
                    ));
                }
            }
        }
    }
    events.sort_by_key(|e| (e.0, e.1, e.2));
    events
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, _, mut row))| {
            row.id = i as i64 + 1;
            row
        })
        .collect()
}
