//! Rewrites of client statements DataFusion cannot plan as PostgreSQL would,
//! applied after datafusion-pg-catalog's own rules. Each rule says which
//! client needs it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, DataType, Expr, FunctionArguments, Statement, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::tokenizer::Span;

/// Apply every rule to a statement.
pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        array_subquery_to_null(expr);
        missing_catalog_columns_to_null(expr);
        acl_array_to_string(expr);
        ControlFlow::<()>::Continue(())
    });
}

fn null_text_array() -> Expr {
    Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(Expr::Value(ValueWithSpan {
            value: Value::Null,
            span: Span::empty(),
        })),
        data_type: DataType::Array(
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                Box::new(DataType::Text),
                None,
            ),
        ),
        array: false,
        format: None,
    }
}

/// `array_to_string(x.relacl, …)` and other ACL columns (psql `\dn+`, `\dp`):
/// pg_catalog keeps ACLs as text already, so the text is shown as it is.
fn acl_array_to_string(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    if name != "array_to_string" && name != "pg_catalog.array_to_string" {
        return;
    }
    let FunctionArguments::List(list) = &function.args else {
        return;
    };
    let Some(datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
        datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(first),
    )) = list.args.first()
    else {
        return;
    };
    let column = match first {
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_ascii_lowercase()),
        Expr::Identifier(ident) => Some(ident.value.to_ascii_lowercase()),
        _ => None,
    };
    if column.is_some_and(|c| c.ends_with("acl")) {
        *expr = first.clone();
    }
}

/// Catalog columns pg_catalog does not have (`pg_class.reloptions`, read by
/// psql `\d+`): storage options do not exist here, so they are NULL arrays.
fn missing_catalog_columns_to_null(expr: &mut Expr) {
    let name = match expr {
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_ascii_lowercase()),
        Expr::Identifier(ident) => Some(ident.value.to_ascii_lowercase()),
        _ => None,
    };
    if name.as_deref() == Some("reloptions") {
        *expr = null_text_array();
    }
}

/// `ARRAY(SELECT …)` (psql `\d+` builds reloptions with it): there are no
/// storage options to list, so it becomes a NULL text array.
fn array_subquery_to_null(expr: &mut Expr) {
    if let Expr::Function(function) = expr {
        let is_array = function.name.to_string().eq_ignore_ascii_case("array");
        if is_array && matches!(function.args, FunctionArguments::Subquery(_)) {
            *expr = null_text_array();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn array_subqueries_become_null_arrays() {
        let mut statements = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT array(select 'toast.' || x from unnest(y) x) FROM t",
        )
        .unwrap();
        rewrite(&mut statements[0]);
        assert_eq!(statements[0].to_string(), "SELECT NULL::TEXT[] FROM t");
    }
}
