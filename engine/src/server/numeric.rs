//! `numeric` values from Arrow decimals, encoded as PostgreSQL does: the
//! display scale is kept also for zero (`0.00`), which the decimal type that
//! arrow-pg goes through drops in the binary format.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::pgwire::types::ToSqlText;
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};

/// A decimal as an unscaled integer and a scale (digits after the point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numeric {
    pub unscaled: i128,
    pub scale: i8,
}

impl Numeric {
    /// Sign, integer digits and fraction digits (exactly `scale` of them) in
    /// base 10. A negative scale multiplies by a power of ten.
    fn decimal_parts(self) -> (bool, String, String) {
        let negative = self.unscaled < 0;
        let mut digits = self.unscaled.unsigned_abs().to_string();
        let scale = if self.scale < 0 {
            digits.extend(std::iter::repeat_n('0', self.scale.unsigned_abs() as usize));
            0
        } else {
            self.scale as usize
        };
        if digits.len() <= scale {
            let padding = scale + 1 - digits.len();
            digits.insert_str(0, &"0".repeat(padding));
        }
        let (integer, fraction) = digits.split_at(digits.len() - scale);
        let integer = integer.trim_start_matches('0');
        let integer = if integer.is_empty() { "0" } else { integer };
        let is_zero = self.unscaled == 0;
        (
            negative && !is_zero,
            integer.to_string(),
            fraction.to_string(),
        )
    }

    /// The text form PostgreSQL prints (`-12.50`, `0.00`).
    pub fn to_text(self) -> String {
        let (negative, integer, fraction) = self.decimal_parts();
        let sign = if negative { "-" } else { "" };
        if fraction.is_empty() {
            format!("{sign}{integer}")
        } else {
            format!("{sign}{integer}.{fraction}")
        }
    }

    /// The binary form: ndigits, weight, sign, dscale, then base-10000 digits
    /// with leading and trailing zero groups dropped.
    pub fn write_binary(self, out: &mut BytesMut) {
        let (negative, integer, fraction) = self.decimal_parts();
        let dscale = fraction.len() as i16;
        let integer = if integer == "0" { "" } else { integer.as_str() };
        let integer_pad = (4 - integer.len() % 4) % 4;
        let fraction_pad = (4 - fraction.len() % 4) % 4;
        let padded: String =
            "0".repeat(integer_pad) + integer + &fraction + &"0".repeat(fraction_pad);
        let mut groups: Vec<i16> = padded
            .as_bytes()
            .chunks(4)
            .map(|chunk| {
                chunk
                    .iter()
                    .fold(0i16, |value, digit| value * 10 + i16::from(digit - b'0'))
            })
            .collect();
        let mut weight = ((integer_pad + integer.len()) / 4) as i16 - 1;
        let leading = groups.iter().take_while(|g| **g == 0).count();
        groups.drain(..leading);
        weight -= leading as i16;
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        out.put_i16(groups.len() as i16);
        out.put_i16(weight);
        out.put_u16(if negative { 0x4000 } else { 0 });
        out.put_i16(dscale);
        for group in groups {
            out.put_i16(group);
        }
    }
}

impl ToSql for Numeric {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.write_binary(out);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

impl ToSqlText for Numeric {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.to_text().as_bytes());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(unscaled: i128, scale: i8) -> Vec<i16> {
        let mut out = BytesMut::new();
        Numeric { unscaled, scale }.write_binary(&mut out);
        out.chunks(2)
            .map(|pair| i16::from_be_bytes([pair[0], pair[1]]))
            .collect()
    }

    #[test]
    fn text_keeps_the_scale() {
        let text = |unscaled, scale| Numeric { unscaled, scale }.to_text();
        assert_eq!(text(0, 2), "0.00");
        assert_eq!(text(2500, 2), "25.00");
        assert_eq!(text(-5, 3), "-0.005");
        assert_eq!(text(123, 0), "123");
        assert_eq!(text(12, -2), "1200");
        assert_eq!(text(i128::MIN, 0), i128::MIN.to_string());
    }

    #[test]
    fn binary_matches_postgres() {
        // Expected words from PostgreSQL 15: numeric_send(x) for each value.
        assert_eq!(binary(0, 2), vec![0, 0, 0, 2]);
        assert_eq!(binary(2500, 2), vec![1, 0, 0, 2, 25]);
        assert_eq!(binary(4286, 2), vec![2, 0, 0, 2, 42, 8600]);
        assert_eq!(binary(-5, 3), vec![1, -1, 0x4000, 3, 50]);
        assert_eq!(binary(100_000_000, 0), vec![1, 2, 0, 0, 1]);
        assert_eq!(binary(123_456_789, 4), vec![3, 1, 0, 4, 1, 2345, 6789]);
    }
}
