//! Result column names and literal types as PostgreSQL gives them.
//!
//! Clients read columns by name: `SELECT count(*) FROM org` is a column
//! `count` in PostgreSQL (DataFusion would call it `count(*)`), `SELECT 1` is
//! an `int4` named `?column?`. Every SELECT list item without an alias gets
//! the name PostgreSQL would choose, unless two items would then share a name
//! (DataFusion needs unique names; those keep DataFusion's). A bare integer
//! literal that fits in 32 bits becomes an `integer`, as PostgreSQL types it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, Ident, Query, SelectItem, SetExpr, Statement, Value, ValueWithSpan,
    VisitMut, VisitorMut,
};

/// Name the columns of every SELECT list in the statement.
pub fn name_columns(statement: &mut Statement) {
    let _ = statement.visit(&mut Namer);
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_set_expr(query.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => name_items(&mut select.projection),
        SetExpr::SetOperation { left, .. } => name_set_expr(left),
        _ => {}
    }
}

fn name_items(items: &mut [SelectItem]) {
    let output_names: Vec<Option<String>> = items.iter().map(output_name).collect();
    let proposed: Vec<Option<String>> = items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(expr) if !is_column(expr) => Some(figure_name(expr)),
            _ => None,
        })
        .collect();
    for (index, item) in items.iter_mut().enumerate() {
        if let SelectItem::ExprWithAlias { expr, .. } = item {
            *expr = int4_literal(expr.clone());
        }
        let Some(name) = &proposed[index] else {
            continue;
        };
        let taken = output_names
            .iter()
            .enumerate()
            .any(|(other, n)| other != index && n.as_deref() == Some(name.as_str()));
        if taken {
            continue;
        }
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        let expr = int4_literal(expr.clone());
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name.clone()),
        };
    }
}

/// The name an item will have in the result, where it can be known here.
fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(expr) => Some(figure_name(expr)),
        SelectItem::ExprWithAlias { alias, .. } => Some(identifier_name(alias)),
        _ => None,
    }
}

fn is_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// An unquoted identifier is folded to lower case, as PostgreSQL does.
fn identifier_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// PostgreSQL's FigureColname: what a SELECT item is called without an alias.
fn figure_name(expr: &Expr) -> String {
    const UNNAMED: &str = "?column?";
    match expr {
        Expr::Identifier(ident) => identifier_name(ident),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map(identifier_name)
            .unwrap_or_else(|| UNNAMED.into()),
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(identifier_name)
            .unwrap_or_else(|| UNNAMED.into()),
        Expr::Cast {
            expr, data_type, ..
        } => {
            let inner = figure_name(expr);
            if inner == UNNAMED {
                type_name(data_type)
            } else {
                inner
            }
        }
        Expr::Nested(inner) => figure_name(inner),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select) => select
                .projection
                .first()
                .and_then(output_name)
                .unwrap_or_else(|| UNNAMED.into()),
            _ => UNNAMED.into(),
        },
        Expr::TypedString(typed) => type_name(&typed.data_type),
        Expr::Substring { .. } => "substring".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Overlay { .. } => "overlay".into(),
        _ => UNNAMED.into(),
    }
}

/// PostgreSQL's name of a type, as a cast column is called (`1::int` → int4).
fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4".into(),
        DataType::BigInt(_) | DataType::Int8(_) => "int8".into(),
        DataType::SmallInt(_) | DataType::Int2(_) => "int2".into(),
        DataType::Real | DataType::Float4 => "float4".into(),
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => "float8".into(),
        DataType::Boolean | DataType::Bool => "bool".into(),
        DataType::Numeric(_) | DataType::Decimal(_) => "numeric".into(),
        DataType::Varchar(_) | DataType::CharacterVarying(_) => "varchar".into(),
        DataType::Timestamp(_, datafusion::sql::sqlparser::ast::TimezoneInfo::WithTimeZone)
        | DataType::Timestamp(_, datafusion::sql::sqlparser::ast::TimezoneInfo::Tz) => {
            "timestamptz".into()
        }
        other => other.to_string().to_lowercase(),
    }
}

/// `1` → `1::integer` when it fits, so `SELECT 1` is an int4 as in PostgreSQL.
fn int4_literal(expr: Expr) -> Expr {
    let fits = |text: &str| text.parse::<i32>().is_ok();
    let is_int4 = match &expr {
        Expr::Value(ValueWithSpan {
            value: Value::Number(text, _),
            ..
        }) => fits(text),
        Expr::UnaryOp { op, expr: inner } if op.to_string() == "-" => matches!(
            inner.as_ref(),
            Expr::Value(ValueWithSpan { value: Value::Number(text, _), .. }) if fits(&format!("-{text}"))
        ),
        _ => false,
    };
    if !is_int4 {
        return expr;
    }
    Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(expr),
        data_type: DataType::Integer(None),
        array: false,
        format: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn named(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        name_columns(&mut statements[0]);
        statements[0].to_string()
    }

    #[test]
    fn items_get_postgresql_names() {
        assert_eq!(
            named("SELECT count(*), tier, o.org_id, 1, 'a'::text, x::int, CASE WHEN a THEN 1 END FROM org o"),
            "SELECT count(*) AS \"count\", tier, o.org_id, 1::INTEGER AS \"?column?\", 'a'::TEXT AS \"text\", \
             x::INT AS \"x\", CASE WHEN a THEN 1 END AS \"case\" FROM org o"
        );
    }

    #[test]
    fn aliased_literals_are_integers_too() {
        assert_eq!(
            named("SELECT 1 AS i, 1.5 AS n, 3000000000 AS big"),
            "SELECT 1::INTEGER AS i, 1.5 AS n, 3000000000 AS big"
        );
    }

    #[test]
    fn clashing_names_keep_datafusion_names() {
        assert_eq!(
            named("SELECT count(*), count(x), 1, 2, max(a) AS max, max(b) FROM t"),
            "SELECT count(*), count(x), 1, 2, max(a) AS max, max(b) FROM t"
        );
    }

    #[test]
    fn subqueries_and_ctes_are_named_too() {
        assert_eq!(
            named("WITH c AS (SELECT count(*) FROM t) SELECT (SELECT max(n) FROM u), -5, 3000000000 FROM c"),
            "WITH c AS (SELECT count(*) AS \"count\" FROM t) SELECT (SELECT max(n) AS \"max\" FROM u) AS \"max\", \
             -5, 3000000000 FROM c"
        );
    }
}
