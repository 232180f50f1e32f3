//! Turning the text of one imported cell into a value of its column's type.
//!
//! Every cell arrives as text (CSV, a spreadsheet cell, a JSON value or a
//! Parquet value cast to text) and is parsed by the column's Arrow type. A
//! failure says what was expected; the caller adds file, row and column.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// China Standard Time: timestamps written without an offset are read in it
/// (the data is Shenzhen's; China has no daylight saving time).
const CHINA_OFFSET_SECONDS: i32 = 8 * 3600;

/// Builds one column of the imported batch.
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    Text(StringBuilder),
    BigInt(Int64Builder),
    Integer(Int32Builder),
    SmallInt(Int16Builder),
    Double(Float64Builder),
    Boolean(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Decimal(Decimal128Builder, u8, i8),
}

impl ColumnBuilder {
    /// A builder for `data_type`, or what is not supported.
    pub(crate) fn new(data_type: &DataType) -> Result<Self, String> {
        Ok(match data_type {
            DataType::Utf8 => Self::Text(StringBuilder::new()),
            DataType::Int64 => Self::BigInt(Int64Builder::new()),
            DataType::Int32 => Self::Integer(Int32Builder::new()),
            DataType::Int16 => Self::SmallInt(Int16Builder::new()),
            DataType::Float64 => Self::Double(Float64Builder::new()),
            DataType::Boolean => Self::Boolean(BooleanBuilder::new()),
            DataType::Date32 => Self::Date(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, zone) => {
                Self::Timestamp(TimestampMicrosecondBuilder::new(), zone.clone())
            }
            DataType::Decimal128(precision, scale) => {
                Self::Decimal(Decimal128Builder::new(), *precision, *scale)
            }
            other => return Err(format!("columns of type {other} cannot be imported")),
        })
    }

    /// Appends NULL.
    pub(crate) fn append_null(&mut self) {
        match self {
            Self::Text(b) => b.append_null(),
            Self::BigInt(b) => b.append_null(),
            Self::Integer(b) => b.append_null(),
            Self::SmallInt(b) => b.append_null(),
            Self::Double(b) => b.append_null(),
            Self::Boolean(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b, _) => b.append_null(),
            Self::Decimal(b, _, _) => b.append_null(),
        }
    }

    /// Parses `text` (already trimmed, not empty) and appends it; on failure
    /// appends nothing and returns what was expected.
    pub(crate) fn append_text(&mut self, text: &str) -> Result<(), String> {
        match self {
            Self::Text(b) => b.append_value(text),
            Self::BigInt(b) => b.append_value(parse_integer(text, i64::MIN, i64::MAX, "bigint")?),
            Self::Integer(b) => {
                let value = parse_integer(text, i32::MIN.into(), i32::MAX.into(), "integer")?;
                b.append_value(value as i32)
            }
            Self::SmallInt(b) => {
                let value = parse_integer(text, i16::MIN.into(), i16::MAX.into(), "smallint")?;
                b.append_value(value as i16)
            }
            Self::Double(b) => b.append_value(parse_double(text)?),
            Self::Boolean(b) => b.append_value(parse_boolean(text)?),
            Self::Date(b) => b.append_value(days_since_epoch(parse_date(text)?)),
            Self::Timestamp(b, _) => b.append_value(parse_timestamp(text)?),
            Self::Decimal(b, precision, scale) => {
                b.append_value(parse_decimal(text, *precision, *scale)?)
            }
        }
        Ok(())
    }

    /// The finished column.
    pub(crate) fn finish(self) -> Result<ArrayRef, String> {
        Ok(match self {
            Self::Text(mut b) => Arc::new(b.finish()),
            Self::BigInt(mut b) => Arc::new(b.finish()),
            Self::Integer(mut b) => Arc::new(b.finish()),
            Self::SmallInt(mut b) => Arc::new(b.finish()),
            Self::Double(mut b) => Arc::new(b.finish()),
            Self::Boolean(mut b) => Arc::new(b.finish()),
            Self::Date(mut b) => Arc::new(b.finish()),
            Self::Timestamp(mut b, zone) => Arc::new(b.finish().with_timezone_opt(zone)),
            Self::Decimal(mut b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(precision, scale)
                    .map_err(|e| e.to_string())?,
            ),
        })
    }
}

/// Digits with an optional sign; thousands separators (`1,234`) and an
/// integral spreadsheet number (`12.0`) are accepted.
fn parse_integer(text: &str, min: i64, max: i64, type_name: &str) -> Result<i64, String> {
    let expected = || format!("{type_name}: a whole number from {min} to {max}");
    let cleaned = without_thousands_separators(text);
    let integral = match cleaned.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') => {
            whole
        }
        Some(_) => return Err(expected()),
        None => cleaned.as_str(),
    };
    let value: i64 = integral.parse().map_err(|_| expected())?;
    if value < min || value > max {
        return Err(expected());
    }
    Ok(value)
}

fn parse_double(text: &str) -> Result<f64, String> {
    without_thousands_separators(text)
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| "double precision: a number".to_string())
}

/// `1,234,567.5` → `1234567.5`; a comma anywhere else is left to fail.
fn without_thousands_separators(text: &str) -> String {
    let (whole, rest) = match text.find('.') {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let digits = whole.trim_start_matches(['-', '+']);
    let grouped = digits.contains(',')
        && digits
            .split(',')
            .enumerate()
            .all(|(i, group)| (i == 0 && (1..=3).contains(&group.len())) || group.len() == 3);
    if grouped {
        format!("{}{}", whole.replace(',', ""), rest)
    } else {
        text.to_string()
    }
}

fn parse_boolean(text: &str) -> Result<bool, String> {
    match text.to_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "是" | "真" => Ok(true),
        "false" | "f" | "no" | "n" | "0" | "否" | "假" => Ok(false),
        _ => Err("boolean: true/false, t/f, yes/no, 1/0 or 是/否".to_string()),
    }
}

const DATE_FORMS: &str = "a date such as 2024-01-05, 2024/1/5, 2024.1.5, 2024年1月5日 or 20240105";

/// A date written one of the common Chinese ways.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let expected = || format!("date: {DATE_FORMS}");
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(text, "%Y%m%d").map_err(|_| expected());
    }
    // 2024年1月5日 → 2024-1-5; then one separator of -, / or .
    let unified: String = if text.contains('年') {
        let Some(stripped) = text.strip_suffix('日').or_else(|| text.strip_suffix('号')) else {
            return Err(expected());
        };
        stripped.replace(['年', '月'], "-")
    } else {
        text.to_string()
    };
    let separator = ['-', '/', '.']
        .into_iter()
        .find(|s| unified.contains(*s))
        .ok_or_else(expected)?;
    let parts: Vec<&str> = unified.split(separator).collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(expected());
    };
    let number = |part: &str, digits: std::ops::RangeInclusive<usize>| -> Result<u32, String> {
        if digits.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| expected())
        } else {
            Err(expected())
        }
    };
    let (year, month, day) = (
        number(year, 4..=4)?,
        number(month, 1..=2)?,
        number(day, 1..=2)?,
    );
    NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| format!("date: {text} is not a day of the calendar"))
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as i32
}

/// A timestamp: RFC 3339 with an offset, or a date (any form of
/// [`parse_date`]) with an optional `HH:MM[:SS[.ffffff]]`, read in China
/// Standard Time. Returns microseconds since the epoch (UTC).
fn parse_timestamp(text: &str) -> Result<i64, String> {
    let expected = || {
        "timestamp: 2024-01-05 08:30:00 (China Standard Time), 2024-01-05T08:30:00+08:00 or a date"
            .to_string()
    };
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Ok(with_offset.timestamp_micros());
    }
    let (date_part, time_part) = match text.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time.trim())),
        None => (text, None),
    };
    let date = parse_date(date_part).map_err(|_| expected())?;
    let time = match time_part {
        None => NaiveTime::MIN,
        Some(time) => ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
            .iter()
            .find_map(|format| NaiveTime::parse_from_str(time, format).ok())
            .ok_or_else(expected)?,
    };
    let china = FixedOffset::east_opt(CHINA_OFFSET_SECONDS).ok_or_else(expected)?;
    let local = NaiveDateTime::new(date, time);
    china
        .from_local_datetime(&local)
        .single()
        .map(|moment| moment.timestamp_micros())
        .ok_or_else(expected)
}

/// A decimal rounded half away from zero to `scale` digits, as the unscaled
/// integer; more than `precision` digits in all is an error.
fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let expected = || format!("numeric({precision},{scale}): a number");
    let cleaned = without_thousands_separators(text);
    let (negative, unsigned) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only(whole) || !digits_only(fraction) {
        return Err(expected());
    }
    let scale = usize::try_from(scale).map_err(|_| expected())?;
    let mut unscaled: i128 = 0;
    for digit in whole
        .trim_start_matches('0')
        .bytes()
        .chain(fraction.bytes().chain(std::iter::repeat(b'0')).take(scale))
    {
        unscaled = unscaled
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(digit - b'0')))
            .ok_or_else(expected)?;
    }
    if fraction.len() > scale && fraction.as_bytes()[scale] >= b'5' {
        unscaled += 1;
    }
    let limit = 10i128.pow(u32::from(precision));
    if unscaled >= limit {
        return Err(format!(
            "numeric({precision},{scale}): at most {} digits before the decimal point",
            usize::from(precision).saturating_sub(scale)
        ));
    }
    Ok(if negative { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn dates_in_the_common_chinese_forms() {
        for text in [
            "2024-01-05",
            "2024/1/5",
            "2024.1.5",
            "2024年1月5日",
            "2024年01月05号",
            "20240105",
        ] {
            assert_eq!(parse_date(text), Ok(date(2024, 1, 5)), "{text}");
        }
        for bad in [
            "2024-02-30",
            "2024/13/1",
            "24/1/5",
            "2024-1",
            "5 Jan 2024",
            "2024年1月5",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert!(parse_date("2024-02-30").unwrap_err().contains("not a day"));
    }

    #[test]
    fn integers_with_separators_and_range() {
        assert_eq!(
            parse_integer("1,234", i64::MIN, i64::MAX, "bigint"),
            Ok(1234)
        );
        assert_eq!(
            parse_integer("-12.00", i64::MIN, i64::MAX, "bigint"),
            Ok(-12)
        );
        assert!(parse_integer("12.5", i64::MIN, i64::MAX, "bigint").is_err());
        assert!(parse_integer("1,23", i64::MIN, i64::MAX, "bigint").is_err());
        assert!(parse_integer("40000", -32768, 32767, "smallint")
            .unwrap_err()
            .contains("smallint"));
    }

    #[test]
    fn decimals_round_half_away_and_check_precision() {
        assert_eq!(parse_decimal("1234.565", 12, 2), Ok(123457));
        assert_eq!(parse_decimal("-0.5", 12, 0), Ok(-1));
        assert_eq!(parse_decimal("1,000.1", 12, 2), Ok(100010));
        assert_eq!(parse_decimal(".25", 12, 2), Ok(25));
        assert!(parse_decimal("1e3", 12, 2).is_err());
        assert!(parse_decimal("12345678901", 12, 2)
            .unwrap_err()
            .contains("at most 10"));
        assert!(parse_decimal("-", 12, 2).is_err());
    }

    #[test]
    fn timestamps_default_to_china_time() {
        let eight_oclock = parse_timestamp("2024-01-05 08:00:00").unwrap();
        assert_eq!(
            eight_oclock,
            parse_timestamp("2024-01-05T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_timestamp("2024年1月5日 8:00").unwrap(),
            eight_oclock,
            "Chinese date with a short time"
        );
        assert!(parse_timestamp("2024-01-05 25:00").is_err());
    }

    #[test]
    fn booleans_and_builders() {
        assert_eq!(parse_boolean("是"), Ok(true));
        assert_eq!(parse_boolean("F"), Ok(false));
        assert!(parse_boolean("maybe").is_err());
        let mut builder = ColumnBuilder::new(&DataType::Decimal128(12, 2)).unwrap();
        builder.append_text("1.5").unwrap();
        builder.append_null();
        assert!(builder.append_text("x").is_err());
        let array = builder.finish().unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(array.data_type(), &DataType::Decimal128(12, 2));
        assert!(ColumnBuilder::new(&DataType::Binary).is_err());
    }
}
