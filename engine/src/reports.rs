//! The example reports of `sql/reports/`, compiled in so `bianzhi demo` runs
//! them without the source tree.

/// (file name, SQL text) of every report, in the order the demo shows them.
pub const REPORTS: &[(&str, &str)] = &[
    (
        "over_quota.sql",
        include_str!("../../sql/reports/over_quota.sql"),
    ),
    (
        "vacancy_by_district.sql",
        include_str!("../../sql/reports/vacancy_by_district.sql"),
    ),
    (
        "headcount_by_type.sql",
        include_str!("../../sql/reports/headcount_by_type.sql"),
    ),
    (
        "allocation_by_district.sql",
        include_str!("../../sql/reports/allocation_by_district.sql"),
    ),
    (
        "allocation_inequality.sql",
        include_str!("../../sql/reports/allocation_inequality.sql"),
    ),
    (
        "streets_lowest_quota.sql",
        include_str!("../../sql/reports/streets_lowest_quota.sql"),
    ),
    (
        "quota_population_elasticity.sql",
        include_str!("../../sql/reports/quota_population_elasticity.sql"),
    ),
    (
        "sector_location_quotient.sql",
        include_str!("../../sql/reports/sector_location_quotient.sql"),
    ),
    (
        "function_overlap.sql",
        include_str!("../../sql/reports/function_overlap.sql"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_file_is_compiled_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/reports");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let mut listed: Vec<String> = REPORTS.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed, "sql/reports and REPORTS disagree");
    }
}
