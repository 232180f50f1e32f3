//! Keep the scalar subqueries users write in a SELECT list.
//!
//! datafusion-pg-catalog's parser replaces every correlated scalar subquery
//! that is a whole SELECT item with NULL (and stamps `LIMIT 1` on the others):
//! that lets psql's catalog queries plan, but silently turns a user's
//! `SELECT o.org_id, (SELECT count(*) FROM org c WHERE c.parent_org_id =
//! o.org_id) FROM org o` into NULLs. Its rule only matches a bare subquery, so
//! before that parser runs we put the subqueries that read no catalog in
//! parentheses; DataFusion plans them as they are.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, SelectItem, SetExpr, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// `sql` with user scalar subqueries in SELECT lists protected; the text is
/// returned untouched when nothing needed protecting or it does not parse.
pub fn protect_user_subqueries(sql: &str) -> Cow<'_, str> {
    let Ok(mut statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return Cow::Borrowed(sql);
    };
    let mut protector = Protector { changed: false };
    for statement in &mut statements {
        let _ = statement.visit(&mut protector);
    }
    if !protector.changed {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";\n"),
    )
}

struct Protector {
    changed: bool,
}

impl VisitorMut for Protector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                let expr = match item {
                    SelectItem::UnnamedExpr(expr) => expr,
                    SelectItem::ExprWithAlias { expr, .. } => expr,
                    _ => continue,
                };
                if let Expr::Subquery(subquery) = expr {
                    if !reads_catalog(subquery) {
                        *expr = Expr::Nested(Box::new(expr.clone()));
                        self.changed = true;
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether a query reads a system catalog (pg_* or information_schema).
pub(crate) fn reads_catalog(query: &Query) -> bool {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            let is_catalog = relation.0.iter().any(|part| {
                let name = part.to_string().trim_matches('"').to_ascii_lowercase();
                name.starts_with("pg_") || name == "information_schema"
            });
            if is_catalog {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = query.visit(&mut finder);
    finder.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_subqueries_are_parenthesised() {
        assert_eq!(
            protect_user_subqueries(
                "SELECT o.org_id, (SELECT count(*) FROM org c WHERE c.parent_org_id = o.org_id) AS n FROM org o"
            ),
            "SELECT o.org_id, ((SELECT count(*) FROM org c WHERE c.parent_org_id = o.org_id)) AS n FROM org o"
        );
    }

    #[test]
    fn catalog_subqueries_and_other_text_are_left_alone() {
        let psql = "SELECT c.relname, (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace) FROM pg_catalog.pg_class c";
        assert!(matches!(protect_user_subqueries(psql), Cow::Borrowed(_)));
        let plain = "select   1 -- no subquery";
        assert!(matches!(protect_user_subqueries(plain), Cow::Borrowed(_)));
        assert!(matches!(
            protect_user_subqueries("not sql at all"),
            Cow::Borrowed(_)
        ));
    }
}
