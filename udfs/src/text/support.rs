//! Pieces shared by the text functions: argument coercions, operands that are
//! either a literal or a column, and evaluation of all-literal calls.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, LargeStringArray, PrimitiveArray, StringArray,
    StringViewArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use datafusion::common::types::{logical_float64, logical_int64, logical_string, NativeType};
use datafusion::common::{internal_err, HashMap, Result, ScalarValue};
use datafusion::logical_expr::{Coercion, ColumnarValue, TypeSignatureClass};

/// Any string argument (Utf8, LargeUtf8, Utf8View, dictionary of those, NULL).
pub(crate) fn string_argument() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// Any numeric argument, cast to Float64 (thresholds).
pub(crate) fn float64_argument() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_float64()),
        vec![TypeSignatureClass::Numeric],
        NativeType::Float64,
    )
}

/// Any integer argument, cast to Int64 (bounds).
pub(crate) fn int64_argument() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_int64()),
        vec![TypeSignatureClass::Integer],
        NativeType::Int64,
    )
}

/// `List<Utf8>` with nullable items, the shape `ListBuilder<StringBuilder>` builds.
pub(crate) fn utf8_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// A string argument of one call: a literal broadcast to every row, or a
/// column. Columns keep their own encoding (no copy into Utf8).
pub(crate) enum StringOperand {
    Literal(Option<String>),
    Utf8(StringArray),
    LargeUtf8(LargeStringArray),
    Utf8View(StringViewArray),
}

impl StringOperand {
    pub(crate) fn from_columnar(value: &ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Scalar(scalar) => Ok(Self::Literal(string_scalar(scalar)?)),
            ColumnarValue::Array(array) => Self::from_array(array),
        }
    }

    pub(crate) fn from_array(array: &ArrayRef) -> Result<Self> {
        match array.data_type() {
            DataType::Utf8 => Ok(Self::Utf8(array.as_string::<i32>().clone())),
            DataType::LargeUtf8 => Ok(Self::LargeUtf8(array.as_string::<i64>().clone())),
            DataType::Utf8View => Ok(Self::Utf8View(array.as_string_view().clone())),
            // Dictionary-encoded or NULL-typed columns: planning normally casts them.
            _ => Ok(Self::Utf8(
                cast(array, &DataType::Utf8)?.as_string::<i32>().clone(),
            )),
        }
    }

    /// The value of `row`; NULL is `None`.
    pub(crate) fn get(&self, row: usize) -> Option<&str> {
        match self {
            Self::Literal(value) => value.as_deref(),
            Self::Utf8(array) => array.is_valid(row).then(|| array.value(row)),
            Self::LargeUtf8(array) => array.is_valid(row).then(|| array.value(row)),
            Self::Utf8View(array) => array.is_valid(row).then(|| array.value(row)),
        }
    }

    /// `Some(value)` when the operand is a literal (whose value may be NULL).
    pub(crate) fn literal(&self) -> Option<Option<&str>> {
        match self {
            Self::Literal(value) => Some(value.as_deref()),
            _ => None,
        }
    }
}

fn string_scalar(scalar: &ScalarValue) -> Result<Option<String>> {
    match scalar {
        ScalarValue::Utf8(value) | ScalarValue::LargeUtf8(value) | ScalarValue::Utf8View(value) => {
            Ok(value.clone())
        }
        ScalarValue::Dictionary(_, inner) => string_scalar(inner),
        other if other.is_null() => Ok(None),
        other => match other.cast_to(&DataType::Utf8)? {
            ScalarValue::Utf8(value) => Ok(value),
            casted => internal_err!("cast to Utf8 gave {}", casted.data_type()),
        },
    }
}

/// A numeric argument of one call, cast to `T`.
pub(crate) enum PrimitiveOperand<T: ArrowPrimitiveType> {
    Literal(Option<T::Native>),
    Column(PrimitiveArray<T>),
}

pub(crate) type Float64Operand = PrimitiveOperand<Float64Type>;
pub(crate) type Int64Operand = PrimitiveOperand<Int64Type>;

impl<T: ArrowPrimitiveType> PrimitiveOperand<T> {
    pub(crate) fn from_columnar(value: &ColumnarValue) -> Result<Self> {
        match value {
            ColumnarValue::Array(array) => {
                let casted = if array.data_type() == &T::DATA_TYPE {
                    Arc::clone(array)
                } else {
                    cast(array, &T::DATA_TYPE)?
                };
                match casted.as_primitive_opt::<T>() {
                    Some(column) => Ok(Self::Column(column.clone())),
                    None => internal_err!("cast to {} gave {}", T::DATA_TYPE, casted.data_type()),
                }
            }
            ColumnarValue::Scalar(scalar) => {
                let array = scalar.cast_to(&T::DATA_TYPE)?.to_array()?;
                match array.as_primitive_opt::<T>() {
                    Some(column) => Ok(Self::Literal(column.is_valid(0).then(|| column.value(0)))),
                    None => internal_err!("cast to {} gave {}", T::DATA_TYPE, array.data_type()),
                }
            }
        }
    }

    pub(crate) fn get(&self, row: usize) -> Option<T::Native> {
        match self {
            Self::Literal(value) => *value,
            Self::Column(column) => column.is_valid(row).then(|| column.value(row)),
        }
    }
}

/// Runs `kernel` over the call's rows. A call whose arguments are all
/// literals is evaluated for one row and gives a literal, as the planner's
/// constant folding expects.
pub(crate) fn evaluate(
    arguments: &[ColumnarValue],
    number_rows: usize,
    kernel: impl FnOnce(usize) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let all_literal = arguments
        .iter()
        .all(|argument| matches!(argument, ColumnarValue::Scalar(_)));
    if all_literal {
        let array = kernel(1)?;
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            array.as_ref(),
            0,
        )?));
    }
    Ok(ColumnarValue::Array(kernel(number_rows)?))
}

/// The two string arguments of a binary text function.
pub(crate) fn string_pair(
    function: &str,
    arguments: &[ColumnarValue],
) -> Result<(StringOperand, StringOperand)> {
    let [left, right, ..] = arguments else {
        return internal_err!(
            "{function}: expected two arguments, got {}",
            arguments.len()
        );
    };
    Ok((
        StringOperand::from_columnar(left)?,
        StringOperand::from_columnar(right)?,
    ))
}

/// Applies `combine` to every row where both strings are present (a NULL
/// side gives `None`). Each side goes through `prepare` first; a literal
/// side is prepared once for the whole batch, not once per row.
pub(crate) fn map_string_pairs<P, T>(
    left: &StringOperand,
    right: &StringOperand,
    number_rows: usize,
    mut prepare: impl FnMut(&str) -> P,
    mut combine: impl FnMut(&P, &P) -> T,
) -> Vec<Option<T>> {
    if left.literal() == Some(None) || right.literal() == Some(None) {
        return (0..number_rows).map(|_| None).collect();
    }
    let left_literal = left.literal().map(|value| value.map(&mut prepare));
    let right_literal = right.literal().map(|value| value.map(&mut prepare));
    let mut results = Vec::with_capacity(number_rows);
    for row in 0..number_rows {
        let left_row;
        let left_value = match &left_literal {
            Some(prepared) => prepared.as_ref(),
            None => {
                left_row = left.get(row).map(&mut prepare);
                left_row.as_ref()
            }
        };
        let Some(left_value) = left_value else {
            results.push(None);
            continue;
        };
        let right_row;
        let right_value = match &right_literal {
            Some(prepared) => prepared.as_ref(),
            None => {
                right_row = right.get(row).map(&mut prepare);
                right_row.as_ref()
            }
        };
        results.push(right_value.map(|right_value| combine(left_value, right_value)));
    }
    results
}

/// How many prepared texts `map_string_pairs_once_per_text` keeps at
/// most: both sides of a default batch (8,192 rows), so that such a batch
/// is never cleared, while a larger one (an in-memory table's) holds about
/// 20 MB of a duty text's tokens at most.
const PREPARED_TEXTS_KEPT: usize = 2 * 8192;

/// `map_string_pairs` for a costly `prepare` (segmenting a text): each
/// distinct text of the batch is prepared once, however many rows hold it,
/// as the rows of a join or of a cross product of clauses do. Looking a
/// text up costs a hash of it, little beside segmenting it. Past
/// [`PREPARED_TEXTS_KEPT`] prepared texts, those kept are dropped and the
/// rows go on.
pub(crate) fn map_string_pairs_once_per_text<P, T>(
    left: &StringOperand,
    right: &StringOperand,
    number_rows: usize,
    prepare: impl FnMut(&str) -> P,
    combine: impl FnMut(&P, &P) -> T,
) -> Vec<Option<T>> {
    map_string_pairs_keeping(
        left,
        right,
        number_rows,
        PREPARED_TEXTS_KEPT,
        prepare,
        combine,
    )
}

/// `map_string_pairs_once_per_text` keeping at most `kept` prepared texts.
fn map_string_pairs_keeping<P, T>(
    left: &StringOperand,
    right: &StringOperand,
    number_rows: usize,
    kept: usize,
    mut prepare: impl FnMut(&str) -> P,
    mut combine: impl FnMut(&P, &P) -> T,
) -> Vec<Option<T>> {
    if left.literal() == Some(None) || right.literal() == Some(None) {
        return (0..number_rows).map(|_| None).collect();
    }
    let mut prepared: Vec<P> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut results = Vec::with_capacity(number_rows);
    for row in 0..number_rows {
        let (Some(left_text), Some(right_text)) = (left.get(row), right.get(row)) else {
            results.push(None);
            continue;
        };
        if prepared.len() + 2 > kept.max(2) {
            prepared.clear();
            seen.clear();
        }
        let mut index_of = |text| {
            *seen.entry(text).or_insert_with(|| {
                prepared.push(prepare(text));
                prepared.len() - 1
            })
        };
        let (left_index, right_index) = (index_of(left_text), index_of(right_text));
        results.push(Some(combine(&prepared[left_index], &prepared[right_index])));
    }
    results
}

#[cfg(test)]
mod tests {
    use arrow::array::Int32Array;

    use super::*;

    #[test]
    fn each_distinct_text_is_prepared_once() {
        let left = StringOperand::Utf8(StringArray::from(vec![
            Some("ab"),
            Some("ab"),
            None,
            Some("xyz"),
            Some("ab"),
        ]));
        let right = StringOperand::Utf8(StringArray::from(vec![
            Some("xyz"),
            Some("ab"),
            Some("ab"),
            None,
            Some("q"),
        ]));
        // Which texts each run prepares, in order.
        let run = |kept: usize| {
            let mut prepared = Vec::new();
            let results = map_string_pairs_keeping(
                &left,
                &right,
                5,
                kept,
                |text| {
                    prepared.push(text.to_owned());
                    text.len()
                },
                |left, right| left * 10 + right,
            );
            (results, prepared)
        };
        let (results, prepared) = run(PREPARED_TEXTS_KEPT);
        assert_eq!(results, vec![Some(23), Some(22), None, None, Some(21)]);
        assert_eq!(prepared, vec!["ab", "xyz", "q"]);
        // A literal side is one text too.
        let literal = StringOperand::Literal(Some("ab".to_owned()));
        let mut calls = 0;
        let results = map_string_pairs_once_per_text(
            &literal,
            &right,
            5,
            |text| {
                calls += 1;
                text.len()
            },
            |left, right| left + right,
        );
        assert_eq!(results, vec![Some(5), Some(4), Some(4), None, Some(3)]);
        assert_eq!(calls, 3);
        // Keeping at most two prepared texts: the same results, with texts
        // prepared again after each clearing.
        let (results, prepared) = run(2);
        assert_eq!(results, vec![Some(23), Some(22), None, None, Some(21)]);
        assert_eq!(prepared, vec!["ab", "xyz", "ab", "ab", "q"]);
    }

    #[test]
    fn literal_side_is_prepared_once() {
        let left = StringOperand::Literal(Some("ab".to_string()));
        let right = StringOperand::Utf8(StringArray::from(vec![Some("a"), None, Some("abc")]));
        let mut prepared = 0;
        let results = map_string_pairs(
            &left,
            &right,
            3,
            |text| {
                prepared += 1;
                text.len()
            },
            |left, right| left + right,
        );
        assert_eq!(results, vec![Some(3), None, Some(5)]);
        // The literal once, the two non-NULL rows once each.
        assert_eq!(prepared, 3);
    }

    #[test]
    fn other_encodings_are_read_as_strings() -> Result<()> {
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![Some("负责"), None]));
        let operand = StringOperand::from_array(&view)?;
        assert_eq!(operand.get(0), Some("负责"));
        assert_eq!(operand.get(1), None);
        let literal = StringOperand::from_columnar(&ColumnarValue::Scalar(ScalarValue::Null))?;
        assert_eq!(literal.literal(), Some(None));
        Ok(())
    }

    #[test]
    fn all_literal_calls_give_a_literal() -> Result<()> {
        let arguments = vec![ColumnarValue::Scalar(ScalarValue::Int32(Some(1)))];
        let result = evaluate(&arguments, 5, |rows| {
            assert_eq!(rows, 1);
            Ok(Arc::new(Int32Array::from(vec![7])))
        })?;
        let ColumnarValue::Scalar(result) = result else {
            unreachable!("literal arguments give a literal");
        };
        assert_eq!(result, ScalarValue::Int32(Some(7)));
        Ok(())
    }
}
