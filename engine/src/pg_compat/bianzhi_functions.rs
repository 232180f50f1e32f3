//! bianzhi's own SQL functions as `pg_proc` rows, so psql `\df` lists them
//! (with `\df+` showing their documentation) and tools can discover them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::WindowUDFFieldArgs;
use datafusion::logical_expr::Documentation;

use super::functions::postgres_type_name;

/// OIDs of bianzhi's functions start here, above PostgreSQL's own.
const FIRST_OID: i64 = 900_000;

/// One function as the catalog shows it.
#[derive(Debug, Clone)]
pub struct FunctionRow {
    pub oid: i64,
    pub name: String,
    /// `f` scalar, `a` aggregate, `w` window.
    pub kind: &'static str,
    pub arguments: String,
    pub result: String,
    pub argument_count: i64,
    pub description: Option<String>,
}

/// Every function of `bianzhi_udfs::register_all`, sorted by name (so OIDs are
/// stable while the set of functions is).
pub fn function_rows() -> Vec<FunctionRow> {
    let mut rows = Vec::new();
    for udf in bianzhi_udfs::all_scalar_udfs() {
        let doc = udf.documentation();
        let result = probe(doc, |types| udf.return_type(types).ok());
        rows.push(row(udf.name(), "f", doc, result));
    }
    for udaf in bianzhi_udfs::all_aggregate_udfs() {
        let doc = udaf.documentation();
        let result = probe(doc, |types| udaf.return_type(types).ok());
        rows.push(row(udaf.name(), "a", doc, result));
    }
    for udwf in bianzhi_udfs::all_window_udfs() {
        let doc = udwf.documentation();
        let result = probe(doc, |types| {
            let fields: Vec<FieldRef> = types
                .iter()
                .map(|t| Arc::new(Field::new("x", t.clone(), true)))
                .collect();
            udwf.field(WindowUDFFieldArgs::new(&fields, udwf.name()))
                .ok()
                .map(|f| f.data_type().clone())
        });
        rows.push(row(udwf.name(), "w", doc, result));
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(b.kind)));
    for (index, function) in rows.iter_mut().enumerate() {
        function.oid = FIRST_OID + index as i64;
    }
    rows
}

fn row(
    name: &str,
    kind: &'static str,
    doc: Option<&Documentation>,
    result: Option<DataType>,
) -> FunctionRow {
    let arguments = doc
        .and_then(|d| argument_list(&d.syntax_example))
        .unwrap_or_default();
    let argument_count = doc
        .and_then(|d| d.arguments.as_ref())
        .map(|a| a.len() as i64)
        .unwrap_or(0);
    let description = doc.map(|d| {
        // The first sentence: psql shows descriptions on one line.
        let text = d.description.replace('\n', " ");
        match text.find(". ") {
            Some(end) => text[..=end].trim().to_string(),
            None => text.trim().to_string(),
        }
    });
    FunctionRow {
        oid: 0,
        name: name.to_string(),
        kind,
        arguments,
        result: result
            .map(|t| postgres_type_name(&t))
            .unwrap_or_else(|| "unknown".to_string()),
        argument_count,
        description,
    }
}

/// What stands between the first parenthesis of a syntax example and its
/// matching one: `robust_z(x [, lookback]) OVER (…)` → `x [, lookback]`.
fn argument_list(syntax: &str) -> Option<String> {
    let open = syntax.find('(')?;
    let mut depth = 0usize;
    for (index, character) in syntax[open..].char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(syntax[open + 1..open + index].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// The result type for the first argument list the function accepts among
/// numbers and texts of the documented arity.
fn probe(
    doc: Option<&Documentation>,
    result_for: impl Fn(&[DataType]) -> Option<DataType>,
) -> Option<DataType> {
    let documented = doc
        .and_then(|d| d.arguments.as_ref())
        .map(|a| a.len())
        .unwrap_or(1);
    for arity in (1..=documented.max(1)).rev() {
        for argument in [
            DataType::Float64,
            DataType::Utf8,
            DataType::Int64,
            DataType::Boolean,
        ] {
            if let Some(result) = result_for(&vec![argument; arity]) {
                return Some(result);
            }
        }
    }
    None
}

/// `rows` as a batch of `schema` (pg_proc's), filling the columns tools read
/// and giving the others neutral values.
/// `namespace` is the OID of `public`, where users look for functions that are
/// not built in.
pub fn pg_proc_batch(
    schema: &SchemaRef,
    rows: &[FunctionRow],
    namespace: i64,
) -> Result<RecordBatch> {
    let count = rows.len();
    let text = |f: &dyn Fn(&FunctionRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let number = |f: &dyn Fn(&FunctionRow) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    let flag = |value: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![value; count])) };
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let array: ArrayRef = match field.name().as_str() {
                "oid" => number(&|r| r.oid),
                "proname" => text(&|r| r.name.clone()),
                "pronamespace" => number(&|_| namespace),
                "proowner" => number(&|_| 10),
                "prolang" => number(&|_| 12), // internal
                "procost" => number(&|_| 1),
                "prorows" | "provariadic" | "pronargdefaults" | "prorettype" => number(&|_| 0),
                "prosupport" => text(&|_| "-".to_string()),
                "prokind" => text(&|r| r.kind.to_string()),
                "prosecdef" | "proleakproof" | "proretset" => flag(false),
                "proisstrict" => flag(true),
                "provolatile" => text(&|_| "i".to_string()),
                "proparallel" => text(&|_| "s".to_string()),
                "pronargs" => number(&|r| r.argument_count),
                "proargtypes" => text(&|_| String::new()),
                "prosrc" => text(&|r| r.name.clone()),
                _ => datafusion::arrow::array::new_null_array(field.data_type(), count),
            };
            if array.data_type() == field.data_type() {
                Ok(array)
            } else {
                Ok(cast(&array, field.data_type())?)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_row_with_its_signature() {
        let rows = function_rows();
        let gini = rows.iter().find(|r| r.name == "gini").unwrap();
        assert_eq!(gini.kind, "a");
        assert_eq!(gini.arguments, "x [, weight]");
        assert_eq!(gini.result, "double precision");
        assert!(gini.description.as_deref().unwrap().contains("Gini"));
        let per_10k = rows.iter().find(|r| r.name == "per_10k").unwrap();
        assert_eq!(
            (per_10k.kind, per_10k.result.as_str()),
            ("f", "double precision")
        );
        let robust_z = rows.iter().find(|r| r.name == "robust_z").unwrap();
        assert_eq!(robust_z.kind, "w");
        assert!(
            !robust_z.arguments.contains("OVER"),
            "{}",
            robust_z.arguments
        );
        assert_eq!(
            argument_list("f(a, (b)) OVER (c)").as_deref(),
            Some("a, (b)")
        );
        let mut oids: Vec<i64> = rows.iter().map(|r| r.oid).collect();
        oids.dedup();
        assert_eq!(oids.len(), rows.len(), "OIDs are unique");
        assert_eq!(
            rows.len(),
            bianzhi_udfs::all_scalar_udfs().len()
                + bianzhi_udfs::all_aggregate_udfs().len()
                + bianzhi_udfs::all_window_udfs().len()
        );
    }
}
