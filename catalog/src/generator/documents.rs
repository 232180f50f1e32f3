//! Documents (文件): 三定规定, 编委 documents behind quota movements, 用编通知
//! behind entries, and reform plans, numbered as such documents are
//! (深编〔2022〕17号: issuer's prefix, year, running number).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

/// One document row.
#[derive(Debug, Clone)]
pub struct DocRow {
    pub id: i64,
    pub number: String,
    pub title: String,
    pub issuer: String,
    pub doc_type: &'static str,
    pub date: NaiveDate,
    pub text: Option<String>,
}

/// All documents made so far, with running numbers per issuer and year.
#[derive(Debug, Default)]
pub struct Documents {
    rows: Vec<DocRow>,
    counters: BTreeMap<(String, i32), u32>,
}

/// The issuing body of an area prefix: 深 → 深圳市, 福田 → 深圳市福田区.
fn area_name(prefix: &str) -> String {
    if prefix == "深" {
        "深圳市".to_string()
    } else {
        super::shenzhen::DISTRICTS
            .iter()
            .find(|d| d.short_name() == prefix)
            .map(|d| format!("深圳市{}", d.name))
            .unwrap_or_else(|| format!("深圳市{prefix}"))
    }
}

impl Documents {
    fn next_number(&mut self, series: &str, year: i32) -> String {
        let counter = self.counters.entry((series.to_string(), year)).or_insert(0);
        *counter += 1;
        format!("{series}〔{year}〕{counter}号")
    }

    fn push(
        &mut self,
        number: String,
        title: String,
        issuer: String,
        doc_type: &'static str,
        date: NaiveDate,
    ) -> (i64, String) {
        let id = self.rows.len() as i64 + 1;
        self.rows.push(DocRow {
            id,
            number: number.clone(),
            title,
            issuer,
            doc_type,
            date,
            text: None,
        });
        (id, number)
    }

    /// An 编委 document behind a quota movement (`action`: 核定, 核增, 收回, 调剂 …).
    pub fn quota_document(
        &mut self,
        prefix: &str,
        org_name: &str,
        date: NaiveDate,
        action: &str,
    ) -> (i64, String) {
        let number = self.next_number(&format!("{prefix}编"), date.year());
        let title = match action {
            "核定" => format!("关于核定{org_name}机构编制的通知"),
            "核增" => format!("关于为{org_name}核增编制的批复"),
            "收回" => format!("关于收回{org_name}空余编制的通知"),
            "调剂" => format!("关于调剂{org_name}编制的通知"),
            other => format!("关于{org_name}编制{other}的通知"),
        };
        let issuer = format!("{}机构编制委员会", area_name(prefix));
        self.push(number, title, issuer, "编委文件", date)
    }

    /// A 用编通知 allowing `count` entries.
    pub fn entry_notice(
        &mut self,
        prefix: &str,
        org_name: &str,
        date: NaiveDate,
        count: i32,
    ) -> (i64, String) {
        let number = self.next_number(&format!("{prefix}编用"), date.year());
        let title = format!("关于同意{org_name}使用编制{count}名的通知");
        let issuer = format!("中共{}委机构编制委员会办公室", area_name(prefix));
        self.push(number, title, issuer, "用编通知", date)
    }

    /// The number of a 用编通知 from before the frame (not kept as a document).
    pub fn historic_entry_number(&mut self, prefix: &str, date: NaiveDate) -> String {
        self.next_number(&format!("{prefix}编用"), date.year())
    }

    /// A body's 三定规定.
    pub fn three_definitions(
        &mut self,
        prefix: &str,
        org_name: &str,
        date: NaiveDate,
    ) -> (i64, String) {
        let number = self.next_number(&format!("{prefix}办"), date.year());
        let title = format!("{org_name}职能配置、内设机构和人员编制规定");
        let issuer = format!("中共{}委办公厅", area_name(prefix));
        self.push(number, title, issuer, "三定规定", date)
    }

    /// A reform plan.
    pub fn reform_plan(&mut self, prefix: &str, title: &str, date: NaiveDate) -> (i64, String) {
        let number = self.next_number(&format!("{prefix}发"), date.year());
        let issuer = format!("中共{}委", area_name(prefix));
        self.push(number, title.to_string(), issuer, "改革方案", date)
    }

    pub fn set_text(&mut self, id: i64, text: String) {
        if let Some(row) = self.rows.get_mut((id - 1) as usize) {
            row.text = Some(text);
        }
    }

    pub fn rows(&self) -> &[DocRow] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::calendar::ymd;

    #[test]
    fn numbers_run_per_issuer_and_year() {
        let mut docs = Documents::default();
        let a = docs.quota_document("深", "深圳市教育局", ymd(2022, 3, 1), "核增");
        let b = docs.quota_document("深", "深圳市财政局", ymd(2022, 5, 1), "收回");
        let c = docs.quota_document("福田", "深圳市福田区教育局", ymd(2022, 5, 1), "核增");
        let d = docs.quota_document("深", "深圳市财政局", ymd(2023, 1, 5), "收回");
        assert_eq!(a.1, "深编〔2022〕1号");
        assert_eq!(b.1, "深编〔2022〕2号");
        assert_eq!(c.1, "福田编〔2022〕1号");
        assert_eq!(d.1, "深编〔2023〕1号");
        assert_eq!(docs.rows()[2].issuer, "深圳市福田区机构编制委员会");
        let notice = docs.entry_notice("深", "深圳市教育局", ymd(2022, 3, 1), 3);
        assert_eq!(notice.1, "深编用〔2022〕1号");
        assert_eq!(docs.rows().len(), 5);
    }
}
