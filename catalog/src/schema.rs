//! The domain schema, read from `sql/schema.sql` — the one place the tables are defined.
//!
//! The file is plain PostgreSQL DDL: `CREATE SCHEMA`, `CREATE TABLE` with
//! `PRIMARY KEY`, and `COMMENT ON TABLE/COLUMN`. It is parsed with DataFusion's
//! sqlparser and turned into Arrow schemas; a column comment ending in
//! `[代码集 name]` names the code set (see `sql/dict_code.sql`) its values come from.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, CommentObject, ExactNumberInfo, ObjectName, Statement, TableConstraint,
    TimezoneInfo,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// The text of `sql/schema.sql`, compiled in so a binary needs no files beside it.
pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");

/// Schema that holds the domain tables.
pub const PUBLIC_SCHEMA: &str = "public";

/// Arrow field metadata key under which a column's Chinese name is kept.
pub const COMMENT_KEY: &str = "comment";

/// One column of a table as schema.sql defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// PostgreSQL's spelling of the type, as `format_type` prints it (`numeric(12,2)`).
    pub pg_type: String,
    pub data_type: DataType,
    pub nullable: bool,
    /// The Chinese name (中文名) from `COMMENT ON COLUMN`.
    pub comment: Option<String>,
    /// The dict_code set this column's values must come from, if any.
    pub code_set: Option<String>,
}

/// One table as schema.sql defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// `public` for the domain tables, `generator` for the generator's ground truth.
    pub schema: String,
    pub name: String,
    pub comment: Option<String>,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
}

impl TableDef {
    /// `name` for public tables, `schema.name` otherwise.
    pub fn qualified_name(&self) -> String {
        if self.schema == PUBLIC_SCHEMA {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }

    /// The Arrow schema, with each column's comment in its field metadata.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| {
                let field = Field::new(&c.name, c.data_type.clone(), c.nullable);
                match &c.comment {
                    Some(comment) => field.with_metadata(
                        [(COMMENT_KEY.to_string(), comment.clone())]
                            .into_iter()
                            .collect(),
                    ),
                    None => field,
                }
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Every table of schema.sql, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    tables: Vec<TableDef>,
}

impl Catalog {
    /// The catalog of the compiled-in `sql/schema.sql`.
    pub fn builtin() -> Result<&'static Catalog> {
        static BUILTIN: OnceLock<std::result::Result<Catalog, String>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Catalog::parse("sql/schema.sql", SCHEMA_SQL).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|message| Error::SchemaDefinition {
                file: "sql/schema.sql".into(),
                message: message.clone(),
            })
    }

    /// Parse DDL text; `file` only names the source in error messages.
    pub fn parse(file: &str, sql: &str) -> Result<Catalog> {
        let fail = |message: String| Error::SchemaDefinition {
            file: file.to_string(),
            message,
        };
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .map_err(|e| fail(format!("cannot parse: {e}")))?;
        let mut tables: Vec<TableDef> = Vec::new();
        for statement in statements {
            match statement {
                Statement::CreateSchema { .. } => {}
                Statement::CreateTable(create) => {
                    let (schema, name) = split_name(&create.name).map_err(&fail)?;
                    if tables.iter().any(|t| t.schema == schema && t.name == name) {
                        return Err(fail(format!("table {schema}.{name} is defined twice")));
                    }
                    let mut columns = Vec::with_capacity(create.columns.len());
                    for column in &create.columns {
                        columns.push(column_def(column).map_err(|m| {
                            fail(format!("table {name}, column {}: {m}", column.name.value))
                        })?);
                    }
                    let mut primary_key = Vec::new();
                    for constraint in &create.constraints {
                        if let TableConstraint::PrimaryKey(pk) = constraint {
                            for key in &pk.columns {
                                let key_name = key.column.expr.to_string();
                                let Some(column) = columns.iter_mut().find(|c| c.name == key_name)
                                else {
                                    return Err(fail(format!(
                                        "table {name}: primary key column {key_name} is not a column"
                                    )));
                                };
                                column.nullable = false;
                                primary_key.push(key_name);
                            }
                        }
                    }
                    tables.push(TableDef {
                        schema,
                        name,
                        comment: None,
                        columns,
                        primary_key,
                    });
                }
                Statement::Comment {
                    object_type,
                    object_name,
                    comment,
                    ..
                } => {
                    apply_comment(&mut tables, object_type, &object_name, comment).map_err(&fail)?
                }
                other => {
                    return Err(fail(format!(
                    "only CREATE SCHEMA, CREATE TABLE and COMMENT ON are allowed, found: {other}"
                )))
                }
            }
        }
        Ok(Catalog { tables })
    }

    pub fn tables(&self) -> &[TableDef] {
        &self.tables
    }

    /// Look a table up by `name` (public) or `schema.name`.
    pub fn table(&self, qualified_name: &str) -> Result<&TableDef> {
        self.tables
            .iter()
            .find(|t| t.qualified_name() == qualified_name)
            .ok_or_else(|| Error::UnknownTable(qualified_name.to_string()))
    }

    /// The schemas other than `public` that tables live in.
    pub fn extra_schemas(&self) -> Vec<String> {
        let mut schemas: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.schema != PUBLIC_SCHEMA)
            .map(|t| t.schema.clone())
            .collect();
        schemas.dedup();
        schemas
    }
}

fn split_name(name: &ObjectName) -> std::result::Result<(String, String), String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(ident) => Ok(ident.value.clone()),
            None => Err(format!("{name} is not a plain name")),
        })
        .collect::<std::result::Result<_, _>>()?;
    match parts.as_slice() {
        [table] => Ok((PUBLIC_SCHEMA.to_string(), table.clone())),
        [schema, table] => Ok((schema.clone(), table.clone())),
        _ => Err(format!("{name}: expected table or schema.table")),
    }
}

fn column_def(column: &ast::ColumnDef) -> std::result::Result<ColumnDef, String> {
    let (pg_type, data_type) = map_type(&column.data_type)?;
    let mut nullable = true;
    for option in &column.options {
        match option.option {
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Null => nullable = true,
            ref other => return Err(format!("unsupported column option {other}")),
        }
    }
    Ok(ColumnDef {
        name: column.name.value.clone(),
        pg_type,
        data_type,
        nullable,
        comment: None,
        code_set: None,
    })
}

/// PostgreSQL type → (PostgreSQL's canonical spelling, Arrow type).
fn map_type(data_type: &ast::DataType) -> std::result::Result<(String, DataType), String> {
    use ast::DataType as Sql;
    let mapped = match data_type {
        Sql::BigInt(_) | Sql::Int8(_) => ("bigint".to_string(), DataType::Int64),
        Sql::Int(_) | Sql::Integer(_) | Sql::Int4(_) => ("integer".to_string(), DataType::Int32),
        Sql::SmallInt(_) | Sql::Int2(_) => ("smallint".to_string(), DataType::Int16),
        Sql::Text | Sql::Varchar(_) | Sql::CharacterVarying(_) | Sql::String(_) => {
            ("text".to_string(), DataType::Utf8)
        }
        Sql::Boolean | Sql::Bool => ("boolean".to_string(), DataType::Boolean),
        Sql::Date => ("date".to_string(), DataType::Date32),
        Sql::Timestamp(_, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => (
            "timestamp with time zone".to_string(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        Sql::DoublePrecision | Sql::Float8 => ("double precision".to_string(), DataType::Float64),
        Sql::Numeric(ExactNumberInfo::PrecisionAndScale(p, s))
        | Sql::Decimal(ExactNumberInfo::PrecisionAndScale(p, s)) => {
            let precision = u8::try_from(*p)
                .ok()
                .filter(|p| (1..=38).contains(p))
                .ok_or_else(|| format!("numeric precision {p} is outside 1..=38"))?;
            let scale = i8::try_from(*s)
                .ok()
                .filter(|s| *s >= 0 && (*s as u8) <= precision)
                .ok_or_else(|| format!("numeric scale {s} is outside 0..=precision"))?;
            (
                format!("numeric({precision},{scale})"),
                DataType::Decimal128(precision, scale),
            )
        }
        other => {
            return Err(format!(
                "type {other} is not supported; use bigint, integer, smallint, text, boolean, \
                 date, timestamptz, double precision or numeric(p,s)"
            ))
        }
    };
    Ok(mapped)
}

fn apply_comment(
    tables: &mut [TableDef],
    object_type: CommentObject,
    object_name: &ObjectName,
    comment: Option<String>,
) -> std::result::Result<(), String> {
    let parts: Vec<String> = object_name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect();
    let find_table = |tables: &mut [TableDef], schema: &str, table: &str| -> Option<usize> {
        tables
            .iter()
            .position(|t| t.schema == schema && t.name == table)
    };
    match object_type {
        CommentObject::Table => {
            let (schema, table) = match parts.as_slice() {
                [t] => (PUBLIC_SCHEMA, t.as_str()),
                [s, t] => (s.as_str(), t.as_str()),
                _ => return Err(format!("bad table name in COMMENT ON TABLE {object_name}")),
            };
            let index = find_table(tables, schema, table)
                .ok_or_else(|| format!("COMMENT ON TABLE {object_name}: no such table (yet)"))?;
            tables[index].comment = comment;
        }
        CommentObject::Column => {
            let (schema, table, column) = match parts.as_slice() {
                [t, c] => (PUBLIC_SCHEMA, t.as_str(), c.as_str()),
                [s, t, c] => (s.as_str(), t.as_str(), c.as_str()),
                _ => {
                    return Err(format!(
                        "bad column name in COMMENT ON COLUMN {object_name}"
                    ))
                }
            };
            let index = find_table(tables, schema, table)
                .ok_or_else(|| format!("COMMENT ON COLUMN {object_name}: no such table (yet)"))?;
            let column = tables[index]
                .columns
                .iter_mut()
                .find(|c| c.name == column)
                .ok_or_else(|| format!("COMMENT ON COLUMN {object_name}: no such column"))?;
            column.code_set = comment.as_deref().and_then(code_set_of);
            column.comment = comment;
        }
        other => return Err(format!("COMMENT ON {other} is not supported")),
    }
    Ok(())
}

/// `…[代码集 quota_type]` → `quota_type`.
fn code_set_of(comment: &str) -> Option<String> {
    let start = comment.rfind("[代码集 ")?;
    let rest = &comment[start + "[代码集 ".len()..];
    let end = rest.find(']')?;
    Some(rest[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schema_has_every_design_table() {
        let catalog = Catalog::builtin().unwrap();
        for name in [
            "region",
            "region_stat_year",
            "org",
            "establishment_quota",
            "leadership_quota",
            "person",
            "staff_assignment",
            "staff_event",
            "quota_ledger",
            "document",
            "org_duty",
            "power_item",
            "reform",
            "reform_org_change",
            "external_roster",
            "supervision_case",
            "alert",
            "dict_code",
            "generator.planted",
        ] {
            let table = catalog.table(name).unwrap();
            assert!(table.comment.is_some(), "{name} has no comment");
            for column in &table.columns {
                assert!(
                    column.comment.is_some(),
                    "{name}.{} has no comment",
                    column.name
                );
            }
        }
    }

    #[test]
    fn types_keys_and_code_sets_are_read() {
        let catalog = Catalog::builtin().unwrap();
        let quota = catalog.table("establishment_quota").unwrap();
        assert_eq!(quota.primary_key, vec!["quota_id"]);
        let count = quota.column("approved_count").unwrap();
        assert_eq!(count.data_type, DataType::Int32);
        assert!(!count.nullable);
        assert_eq!(
            quota.column("quota_type").unwrap().code_set.as_deref(),
            Some("quota_type")
        );
        let roster = catalog.table("external_roster").unwrap();
        let amount = roster.column("amount").unwrap();
        assert_eq!(amount.data_type, DataType::Decimal128(12, 2));
        assert_eq!(amount.pg_type, "numeric(12,2)");
        let planted = catalog.table("generator.planted").unwrap();
        assert_eq!(planted.schema, "generator");
        assert_eq!(catalog.extra_schemas(), vec!["generator".to_string()]);
        let schema = roster.arrow_schema();
        assert_eq!(
            schema
                .field(0)
                .metadata()
                .get(COMMENT_KEY)
                .map(String::as_str),
            Some("数据来源[代码集 roster_source]")
        );
    }

    #[test]
    fn bad_definitions_name_the_problem() {
        let err = Catalog::parse("t.sql", "CREATE TABLE t (a money);").unwrap_err();
        assert!(
            err.to_string().contains("t.sql: table t, column a: type"),
            "{err}"
        );
        let err = Catalog::parse("t.sql", "COMMENT ON COLUMN t.a IS 'x';").unwrap_err();
        assert!(err.to_string().contains("no such table"), "{err}");
        let err =
            Catalog::parse("t.sql", "CREATE TABLE t (a int); CREATE TABLE t (b int);").unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
        let err = Catalog::parse("t.sql", "CREATE TABLE t (a int, PRIMARY KEY (b));").unwrap_err();
        assert!(err.to_string().contains("primary key column b"), "{err}");
        let err = Catalog::parse("t.sql", "DROP TABLE t;").unwrap_err();
        assert!(err.to_string().contains("only CREATE SCHEMA"), "{err}");
    }

    #[test]
    fn code_set_is_taken_from_the_comment_suffix() {
        assert_eq!(
            code_set_of("编制类型[代码集 quota_type]").as_deref(),
            Some("quota_type")
        );
        assert_eq!(code_set_of("核定数"), None);
    }
}
