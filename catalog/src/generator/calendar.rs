//! The generator's time frame: 60 monthly periods, 2020-01 to 2024-12.

use chrono::{Datelike, Duration, NaiveDate};

/// First month generated.
pub const FIRST_YEAR: i32 = 2020;
/// Number of monthly periods.
pub const MONTHS: usize = 60;

/// 1970-01-01, the Arrow Date32 epoch.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// A date as Arrow Date32 (days since 1970-01-01).
pub fn days(date: NaiveDate) -> i32 {
    (date - epoch()).num_days() as i32
}

/// Arrow Date32 back to a date.
pub fn from_days(days: i32) -> NaiveDate {
    epoch() + Duration::days(i64::from(days))
}

/// A date, clamping impossible days to the month's last day.
pub fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    let mut day = day.clamp(1, 31);
    loop {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month.clamp(1, 12), day) {
            return date;
        }
        day -= 1;
    }
}

/// First day of month index `m` (0 = 2020-01).
pub fn month_start(m: usize) -> NaiveDate {
    let total = FIRST_YEAR * 12 + m as i32;
    ymd(total.div_euclid(12), (total.rem_euclid(12) + 1) as u32, 1)
}

/// Last day of month index `m`.
pub fn month_end(m: usize) -> NaiveDate {
    month_start(m + 1) - Duration::days(1)
}

/// Number of days in month index `m`.
pub fn month_days(m: usize) -> i64 {
    (month_start(m + 1) - month_start(m)).num_days()
}

/// The month index containing `date`, or None outside the frame.
pub fn month_of(date: NaiveDate) -> Option<usize> {
    let index = (date.year() - FIRST_YEAR) * 12 + date.month0() as i32;
    (0..MONTHS as i32)
        .contains(&index)
        .then_some(index as usize)
}

/// The first day after the frame.
pub fn frame_end() -> NaiveDate {
    month_start(MONTHS)
}

/// The frame's first day.
pub fn frame_start() -> NaiveDate {
    month_start(0)
}

/// Microseconds since the epoch at 09:00 China time (01:00 UTC) on `date`,
/// plus `minutes`: when an office records something.
pub fn office_timestamp(date: NaiveDate, minutes: i64) -> i64 {
    (i64::from(days(date)) * 86_400 + 3_600 + minutes * 60) * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_line_up() {
        assert_eq!(month_start(0), ymd(2020, 1, 1));
        assert_eq!(month_start(59), ymd(2024, 12, 1));
        assert_eq!(month_end(1), ymd(2020, 2, 29));
        assert_eq!(month_days(1), 29);
        assert_eq!(month_of(ymd(2024, 12, 31)), Some(59));
        assert_eq!(month_of(ymd(2025, 1, 1)), None);
        assert_eq!(month_of(ymd(2019, 12, 31)), None);
        assert_eq!(from_days(days(ymd(2023, 5, 17))), ymd(2023, 5, 17));
        assert_eq!(ymd(2021, 2, 31), ymd(2021, 2, 28));
        assert_eq!(frame_end(), ymd(2025, 1, 1));
    }
}
