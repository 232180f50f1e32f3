//! Rewrites of client statements DataFusion cannot plan as PostgreSQL would,
//! applied after datafusion-pg-catalog's own rules. Each rule says which
//! client needs it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, DataType, Expr, FunctionArguments, Statement, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::tokenizer::Span;

use super::user_subqueries::reads_catalog;

/// Apply every rule to a statement.
pub fn rewrite(statement: &mut Statement) {
    // First, while catalog column names are still there to be recognised.
    let _ = visit_expressions_mut(statement, |expr| {
        array_subquery_to_null(expr);
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(statement, |expr| {
        missing_catalog_columns_to_null(expr);
        acl_array_to_string(expr);
        serial_sequence_to_null(expr);
        regclass_lookup(expr);
        null_comparison_subquery_to_null(expr);
        aggregate_scalar_subquery(expr);
        hoist_outer_conditions(expr);
        ControlFlow::<()>::Continue(())
    });
}

fn null_of(data_type: DataType) -> Expr {
    Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(Expr::Value(ValueWithSpan {
            value: Value::Null,
            span: Span::empty(),
        })),
        data_type,
        array: false,
        format: None,
    }
}

/// `pg_get_serial_sequence(table, column)` (SQLAlchemy's identity-column
/// query): there are no sequences, so it is NULL. Folding it before planning
/// matters because the call correlates a subquery through a function of
/// outer columns, which DataFusion cannot decorrelate.
fn serial_sequence_to_null(expr: &mut Expr) {
    if let Expr::Function(function) = expr {
        let name = function.name.to_string().to_ascii_lowercase();
        if name == "pg_get_serial_sequence" || name == "pg_catalog.pg_get_serial_sequence" {
            *expr = null_of(DataType::Text);
        }
    }
}

fn null_text_array() -> Expr {
    null_of(DataType::Array(
        datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
            Box::new(DataType::Text),
            None,
        ),
    ))
}

/// A scalar subquery over catalog rows (SQLAlchemy's and psql's column
/// queries: `(SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE …)`)
/// yields at most one row by construction, but DataFusion only plans
/// correlated scalar subqueries that aggregate; `max()` of a single value is
/// that value.
fn aggregate_scalar_subquery(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    let Expr::Subquery(query) = expr else { return };
    // Only catalog rows are known to give one row; a user's subquery that
    // gives several must fail as in PostgreSQL, not become their max().
    if !reads_catalog(query) {
        return;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let grouped = !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if select.projection.len() != 1
        || grouped
        || select.having.is_some()
        || query.limit_clause.is_some()
    {
        return;
    }
    let inner = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(inner) | SelectItem::ExprWithAlias { expr: inner, .. } => inner,
        _ => return,
    };
    if contains_aggregate(inner) {
        return;
    }
    let wrapped = call("max", inner.clone());
    *inner = wrapped;
}

/// A scalar subquery whose WHERE has conditions on outer columns only
/// (SQLAlchemy: `(SELECT … FROM pg_attrdef WHERE pg_attribute.atthasdef AND
/// …)` inside a CASE branch) is one DataFusion cannot decorrelate. Such a
/// condition decides whether the subquery can yield a row at all, so it
/// moves out: `(SELECT x FROM t WHERE p AND q)` becomes `CASE WHEN p THEN
/// (SELECT x FROM t WHERE q) END`, the same value for every p.
fn hoist_outer_conditions(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
    use datafusion::sql::sqlparser::ast::{CaseWhen, SetExpr};
    let Expr::Subquery(query) = expr else { return };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let Some(local) = local_relation_names(&select.from) else {
        return;
    };
    let Some(selection) = select.selection.take() else {
        return;
    };
    let (outer, inner): (Vec<Expr>, Vec<Expr>) = split_conjunction(selection)
        .into_iter()
        .partition(|conjunct| refers_to_outer_only(conjunct, &local));
    select.selection = conjoin(inner);
    let Some(condition) = conjoin(outer) else {
        return;
    };
    let subquery = std::mem::replace(
        expr,
        Expr::Value(ValueWithSpan {
            value: Value::Null,
            span: Span::empty(),
        }),
    );
    *expr = Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: subquery,
        }],
        else_result: None,
    };
}

/// `'pg_class'::regclass`, `$1::regclass` (JDBC's and SQLAlchemy's
/// `pg_description.classoid` filters): datafusion-pg-catalog turns the cast
/// into a lookup of the name in pg_class under `current_schema()`, which
/// misses unqualified system catalogs, gives this catalog's own OID for
/// `pg_class` while `pg_description.classoid` holds PostgreSQL's fixed
/// ones, and names every such column alike. `regclass_oid` resolves names
/// as PostgreSQL does, so the lookup becomes a call of it; casts of
/// parameters it leaves alone (`CAST($1::VARCHAR AS REGCLASS)`) become one
/// too.
fn regclass_lookup(expr: &mut Expr) {
    let argument = match expr {
        Expr::Subquery(query) => {
            let text = query.to_string();
            if !text.starts_with("SELECT c.oid FROM pg_catalog.pg_class c") {
                return;
            }
            let Some(argument) = text
                .split_once("parse_ident(")
                .and_then(|(_, rest)| rest.split_once("::TEXT)"))
                .map(|(argument, _)| argument.to_string())
            else {
                return;
            };
            if let Some(placeholder) = argument.strip_prefix('$') {
                Expr::Value(ValueWithSpan {
                    value: Value::Placeholder(format!("${placeholder}")),
                    span: Span::empty(),
                })
            } else if let Some(name) = argument
                .strip_prefix('\'')
                .and_then(|a| a.strip_suffix('\''))
            {
                Expr::Value(ValueWithSpan {
                    value: Value::SingleQuotedString(name.replace("''", "'")),
                    span: Span::empty(),
                })
            } else {
                return;
            }
        }
        Expr::Cast {
            expr: operand,
            data_type,
            ..
        } => {
            let type_name = data_type.to_string().to_ascii_lowercase();
            if type_name != "regclass" && type_name != "pg_catalog.regclass" {
                return;
            }
            let mut inner = operand.as_ref();
            while let Expr::Cast { expr, .. } = inner {
                inner = expr;
            }
            if !matches!(
                inner,
                Expr::Value(ValueWithSpan {
                    value: Value::Placeholder(_),
                    ..
                })
            ) {
                return;
            }
            inner.clone()
        }
        _ => return,
    };
    *expr = call("regclass_oid", cast_to_text(argument));
}

fn cast_to_text(expr: Expr) -> Expr {
    Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(expr),
        data_type: DataType::Text,
        array: false,
        format: None,
    }
}

/// A call of a function of one argument.
fn call(name: &str, argument: Expr) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, Ident, ObjectName,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// A scalar subquery filtered by a comparison with NULL yields no row, so it
/// is NULL. This is what the identity-column subquery becomes once
/// `pg_get_serial_sequence` is folded, and planning it would still fail on
/// its outer columns in the SELECT list.
fn null_comparison_subquery_to_null(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, SetExpr};
    let Expr::Subquery(query) = expr else { return };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return;
    };
    let Some(selection) = &select.selection else {
        return;
    };
    let never = split_conjunction(selection.clone())
        .iter()
        .any(|conjunct| match conjunct {
            Expr::BinaryOp { left, op, right } => {
                matches!(
                    op,
                    BinaryOperator::Eq
                        | BinaryOperator::NotEq
                        | BinaryOperator::Lt
                        | BinaryOperator::LtEq
                        | BinaryOperator::Gt
                        | BinaryOperator::GtEq
                ) && (is_null_literal(left) || is_null_literal(right))
            }
            _ => false,
        });
    if never {
        *expr = Expr::Value(ValueWithSpan {
            value: Value::Null,
            span: Span::empty(),
        });
    }
}

fn is_null_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::Null, ..
        }) => true,
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_null_literal(expr),
        _ => false,
    }
}

/// Names a column qualifier may use for the relations of a FROM list
/// (`pg_catalog.pg_attrdef`, `pg_attrdef`, an alias), or None when the list
/// holds something whose names this rule does not follow.
fn local_relation_names(
    from: &[datafusion::sql::sqlparser::ast::TableWithJoins],
) -> Option<Vec<String>> {
    use datafusion::sql::sqlparser::ast::TableFactor;
    let mut names = Vec::new();
    let factors = from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let full = name.to_string().to_ascii_lowercase();
                if let Some(last) = full.rsplit('.').next() {
                    names.push(last.to_string());
                }
                names.push(full);
                if let Some(alias) = alias {
                    names.push(alias.name.value.to_ascii_lowercase());
                }
            }
            TableFactor::Derived {
                alias: Some(alias), ..
            } => names.push(alias.name.value.to_ascii_lowercase()),
            _ => return None,
        }
    }
    (!names.is_empty()).then_some(names)
}

/// True when every column of `expr` is qualified by a relation that is not
/// local, and there is at least one: unqualified names may be local, so
/// they keep the condition where it is.
fn refers_to_outer_only(expr: &Expr, local: &[String]) -> bool {
    use datafusion::sql::sqlparser::ast::visit_expressions;
    let mut outer_columns = 0;
    let verdict = visit_expressions(expr, |e| match e {
        Expr::Identifier(_) | Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            ControlFlow::Break(())
        }
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let qualifier = parts[..parts.len() - 1]
                .iter()
                .map(|p| p.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            if local.contains(&qualifier) {
                ControlFlow::Break(())
            } else {
                outer_columns += 1;
                ControlFlow::Continue(())
            }
        }
        _ => ControlFlow::Continue(()),
    });
    verdict.is_continue() && outer_columns > 0
}

fn split_conjunction(expr: Expr) -> Vec<Expr> {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut parts = split_conjunction(*left);
            parts.extend(split_conjunction(*right));
            parts
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_conjunction(*inner)
        }
        other => vec![other],
    }
}

fn conjoin(parts: Vec<Expr>) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    parts.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

fn contains_aggregate(expr: &Expr) -> bool {
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "string_agg",
        "array_agg",
        "bool_and",
        "bool_or",
        "json_agg",
        "every",
    ];
    let text = expr.to_string().to_ascii_lowercase();
    AGGREGATES.iter().any(|a| text.contains(&format!("{a}(")))
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
        // psql's is `array(select … from unnest(c.reloptions) x)`: it reads a
        // catalog column rather than a catalog table.
        let over_catalog = matches!(&function.args, FunctionArguments::Subquery(query)
            if reads_catalog(query) || query.to_string().contains("reloptions"));
        if is_array && over_catalog {
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
    fn scalar_subqueries_are_aggregated_unless_they_already_are() {
        let mut statements = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT (SELECT a FROM pg_attrdef t WHERE t.k = u.k), (SELECT count(*) FROM pg_attrdef), \
             (SELECT a FROM org t WHERE t.k = u.k) FROM u",
        )
        .unwrap();
        rewrite(&mut statements[0]);
        assert_eq!(
            statements[0].to_string(),
            "SELECT (SELECT max(a) FROM pg_attrdef t WHERE t.k = u.k), (SELECT count(*) FROM pg_attrdef), \
             (SELECT a FROM org t WHERE t.k = u.k) FROM u",
            "only catalog subqueries are aggregated"
        );
    }

    #[test]
    fn array_subqueries_become_null_arrays() {
        let mut statements = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT array(select 'toast.' || x from unnest(tc.reloptions) x), array(select a from org) FROM t",
        )
        .unwrap();
        rewrite(&mut statements[0]);
        assert_eq!(
            statements[0].to_string(),
            "SELECT NULL::TEXT[], array(SELECT a FROM org) FROM t"
        );
    }

    #[test]
    fn serial_sequences_fold_to_null() {
        let mut statements = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT (SELECT s.seqstart FROM pg_sequence s WHERE s.seqrelid = pg_catalog.pg_get_serial_sequence(a.t, a.c)::regclass) FROM a",
        )
        .unwrap();
        rewrite(&mut statements[0]);
        assert_eq!(statements[0].to_string(), "SELECT NULL FROM a");
    }

    #[test]
    fn outer_only_conditions_leave_scalar_subqueries() {
        let mut statements = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
             WHERE pg_catalog.pg_attribute.atthasdef AND d.adrelid = pg_catalog.pg_attribute.attrelid) \
             FROM pg_catalog.pg_attribute",
        )
        .unwrap();
        rewrite(&mut statements[0]);
        assert_eq!(
            statements[0].to_string(),
            "SELECT CASE WHEN pg_catalog.pg_attribute.atthasdef THEN (SELECT max(pg_get_expr(d.adbin, d.adrelid)) \
             FROM pg_catalog.pg_attrdef d WHERE d.adrelid = pg_catalog.pg_attribute.attrelid) END \
             FROM pg_catalog.pg_attribute"
        );
    }

    #[test]
    fn unqualified_or_local_conditions_stay() {
        let sql = "SELECT (SELECT max(x) FROM t WHERE flag AND t.k = u.k) FROM u";
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rewrite(&mut statements[0]);
        assert_eq!(statements[0].to_string(), sql);
    }

    #[test]
    fn regclass_casts_resolve_through_regclass_oid() {
        let parser =
            datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
        for (sql, expected) in [
            (
                "SELECT 1 FROM d WHERE d.classoid = 'pg_class'::regclass",
                "SELECT 1 FROM d WHERE d.classoid = regclass_oid('pg_class'::TEXT)",
            ),
            (
                "SELECT CAST('pg_catalog.pg_class' AS REGCLASS), 'public.org'::regclass",
                "SELECT regclass_oid('pg_catalog.pg_class'::TEXT), regclass_oid('public.org'::TEXT)",
            ),
            (
                "SELECT 1 FROM d WHERE d.classoid = CAST($1 AS REGCLASS)",
                "SELECT 1 FROM d WHERE d.classoid = regclass_oid($1::TEXT)",
            ),
            ("SELECT CAST($2::VARCHAR AS REGCLASS)", "SELECT regclass_oid($2::TEXT)"),
        ] {
            let mut statements = parser.parse(sql).unwrap();
            rewrite(&mut statements[0]);
            assert_eq!(statements[0].to_string(), expected, "{sql}");
        }
    }
}
