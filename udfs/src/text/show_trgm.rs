//! `show_trgm(text)`: the trigrams pg_trgm extracts from a text.

use std::sync::Arc;

use arrow::array::{ListArray, ListBuilder, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{internal_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion_macros::user_doc;

use super::support::{evaluate, string_argument, utf8_list_type, StringOperand};
use super::trigram::{display_trigram, trigram_set, TrigramBuffers};

#[user_doc(
    doc_section(label = "Text Functions"),
    description = "Returns the distinct trigrams of a text as a list of strings, in the order \
and form of PostgreSQL 15's pg_trgm `show_trgm` in a UTF-8 database: each word lowercased and \
padded with two spaces before and one after; a trigram of ASCII letters, digits and spaces is \
shown as itself, any other (one with a multibyte character) as its 3-byte hash `0x` + six hex \
digits. Sorted by bytes compared as signed char, as PostgreSQL on x86-64 does, which puts \
hashes starting 0x80–0xff first. An empty list for a text without words; NULL gives NULL.",
    syntax_example = "show_trgm(text)",
    sql_example = r#"```sql
> SELECT show_trgm('Hello') AS latin, show_trgm('负责') AS chinese;
+--------------------------------+--------------------------------+
| latin                          | chinese                        |
+--------------------------------+--------------------------------+
| [  h,  he, ell, hel, llo, lo ] | [0xc03893, 0x1c0f44, 0x7db6e7] |
+--------------------------------+--------------------------------+
```"#,
    argument(name = "text", description = "Text to cut into trigrams.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ShowTrgmFunc {
    signature: Signature,
}

impl Default for ShowTrgmFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ShowTrgmFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string_argument()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ShowTrgmFunc {
    fn name(&self) -> &str {
        "show_trgm"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(utf8_list_type())
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text] = args.args.as_slice() else {
            return internal_err!("show_trgm: expected one argument, got {}", args.args.len());
        };
        let text = StringOperand::from_columnar(text)?;
        evaluate(&args.args, args.number_rows, |rows| {
            Ok(Arc::new(show_trgm(&text, rows)))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The displayed trigrams of every row; NULL stays NULL.
pub(crate) fn show_trgm(text: &StringOperand, number_rows: usize) -> ListArray {
    let mut buffers = TrigramBuffers::default();
    let mut builder = ListBuilder::new(StringBuilder::new());
    for row in 0..number_rows {
        let Some(text) = text.get(row) else {
            builder.append_null();
            continue;
        };
        for trigram in trigram_set(text, &mut buffers) {
            builder.values().append_value(display_trigram(&trigram));
        }
        builder.append(true);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, StringArray};

    use super::*;

    /// `show_trgm(t)` from PostgreSQL 15.18 with pg_trgm, UTF8 database,
    /// LC_CTYPE C.UTF-8 (second query of tests/pg_trgm_reference.sql).
    #[test]
    fn same_lists_as_postgres() {
        let texts = StringOperand::Utf8(StringArray::from(vec![
            Some("Hello, World!"),
            Some("负责全市"),
            None,
            Some(""),
        ]));
        let result = show_trgm(&texts, 4);
        let row = |index: usize| -> Vec<String> {
            result
                .value(index)
                .as_string::<i32>()
                .iter()
                .map(|trigram| trigram.unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(
            row(0),
            ["  h", "  w", " he", " wo", "ell", "hel", "ld ", "llo", "lo ", "orl", "rld", "wor"]
        );
        assert_eq!(
            row(1),
            ["0xaeec81", "0xc03893", "0xcf795b", "0x1f0ab1", "0x7db6e7"]
        );
        assert!(result.is_null(2));
        assert!(result.is_valid(3) && row(3).is_empty());
    }
}
