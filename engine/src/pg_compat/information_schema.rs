//! `information_schema` as PostgreSQL shapes it: PostgreSQL type names
//! (`bigint`, `text`, `timestamp with time zone`), YES/NO flags, primary keys.
//! Built from the live catalog at every scan, so views created later appear.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, Session, TableProvider};
use datafusion::common::Constraint;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::pg_types::{datetime_precision, numeric_precision, pg_type_names};

/// Name of the schema.
pub const INFORMATION_SCHEMA: &str = "information_schema";

const TABLES: &[&str] = &[
    "schemata",
    "tables",
    "columns",
    "views",
    "table_constraints",
    "key_column_usage",
    "routines",
];

/// The `information_schema` schema over a catalog list.
#[derive(Debug)]
pub struct InformationSchema {
    catalogs: Arc<dyn CatalogProviderList>,
}

impl InformationSchema {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        InformationSchema { catalogs }
    }
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_ascii_lowercase();
        let Some(&table) = TABLES.iter().find(|t| **t == name) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(InfoTable {
            table,
            schema: schema_of(table),
            catalogs: self.catalogs.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name.to_ascii_lowercase().as_str())
    }
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}

fn schema_of(table: &str) -> SchemaRef {
    let fields = match table {
        "schemata" => vec![
            text("catalog_name"),
            text("schema_name"),
            text("schema_owner"),
        ],
        "tables" => vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("table_type"),
            text("is_insertable_into"),
            text("is_typed"),
        ],
        "columns" => vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("column_name"),
            int("ordinal_position"),
            text("column_default"),
            text("is_nullable"),
            text("data_type"),
            int("character_maximum_length"),
            int("numeric_precision"),
            int("numeric_precision_radix"),
            int("numeric_scale"),
            int("datetime_precision"),
            text("udt_catalog"),
            text("udt_schema"),
            text("udt_name"),
            text("is_identity"),
            text("is_generated"),
            text("is_updatable"),
        ],
        "views" => vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("view_definition"),
            text("check_option"),
            text("is_updatable"),
        ],
        "table_constraints" => vec![
            text("constraint_catalog"),
            text("constraint_schema"),
            text("constraint_name"),
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("constraint_type"),
            text("is_deferrable"),
            text("initially_deferred"),
        ],
        "key_column_usage" => vec![
            text("constraint_catalog"),
            text("constraint_schema"),
            text("constraint_name"),
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("column_name"),
            int("ordinal_position"),
        ],
        _ => vec![
            text("specific_catalog"),
            text("specific_schema"),
            text("specific_name"),
            text("routine_catalog"),
            text("routine_schema"),
            text("routine_name"),
            text("routine_type"),
            text("data_type"),
        ],
    };
    Arc::new(Schema::new(fields))
}

#[derive(Debug)]
struct InfoTable {
    table: &'static str,
    schema: SchemaRef,
    catalogs: Arc<dyn CatalogProviderList>,
}

/// Rows under construction, one vector of optional text or ints per column.
struct Rows {
    columns: Vec<Vec<Cell>>,
}

enum Cell {
    Text(Option<String>),
    Int(Option<i32>),
}

impl Rows {
    fn new(width: usize) -> Self {
        Rows {
            columns: (0..width).map(|_| Vec::new()).collect(),
        }
    }

    fn push(&mut self, row: Vec<Cell>) {
        for (column, cell) in self.columns.iter_mut().zip(row) {
            column.push(cell);
        }
    }

    fn batch(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .into_iter()
            .zip(schema.fields())
            .map(|(cells, field)| -> ArrayRef {
                if field.data_type() == &DataType::Int32 {
                    Arc::new(Int32Array::from_iter(cells.into_iter().map(|c| match c {
                        Cell::Int(v) => v,
                        Cell::Text(_) => None,
                    })))
                } else {
                    Arc::new(StringArray::from_iter(cells.into_iter().map(|c| match c {
                        Cell::Text(v) => v,
                        Cell::Int(v) => v.map(|v| v.to_string()),
                    })))
                }
            })
            .collect();
        Ok(RecordBatch::try_new(schema.clone(), arrays)?)
    }
}

fn t(value: &str) -> Cell {
    Cell::Text(Some(value.to_string()))
}

fn yes_no(flag: bool) -> Cell {
    t(if flag { "YES" } else { "NO" })
}

impl InfoTable {
    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let mut rows = Rows::new(self.schema.fields().len());
        let mut catalog_names = self.catalogs.catalog_names();
        catalog_names.sort();
        for catalog_name in catalog_names {
            let Some(catalog) = self.catalogs.catalog(&catalog_name) else {
                continue;
            };
            let mut schema_names = catalog.schema_names();
            if !schema_names.iter().any(|s| s == INFORMATION_SCHEMA) {
                schema_names.push(INFORMATION_SCHEMA.to_string());
            }
            schema_names.sort();
            for schema_name in schema_names {
                if self.table == "schemata" {
                    rows.push(vec![t(&catalog_name), t(&schema_name), t("postgres")]);
                    continue;
                }
                if self.table == "routines" {
                    continue;
                }
                let schema: Arc<dyn SchemaProvider> = if schema_name == INFORMATION_SCHEMA {
                    Arc::new(InformationSchema::new(self.catalogs.clone()))
                } else {
                    match catalog.schema(&schema_name) {
                        Some(schema) => schema,
                        None => continue,
                    }
                };
                let mut table_names = schema.table_names();
                table_names.sort();
                for table_name in table_names {
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    self.table_rows(
                        &mut rows,
                        &catalog_name,
                        &schema_name,
                        &table_name,
                        table.as_ref(),
                    );
                }
            }
        }
        if self.table == "routines" {
            let mut names: Vec<String> = state.scalar_functions().keys().cloned().collect();
            names.extend(state.aggregate_functions().keys().cloned());
            names.extend(state.window_functions().keys().cloned());
            names.sort();
            names.dedup();
            for name in names {
                rows.push(vec![
                    t("bianzhi"),
                    t("pg_catalog"),
                    t(&name),
                    t("bianzhi"),
                    t("pg_catalog"),
                    t(&name),
                    t("FUNCTION"),
                    Cell::Text(None),
                ]);
            }
        }
        rows.batch(&self.schema)
    }

    fn table_rows(
        &self,
        rows: &mut Rows,
        catalog: &str,
        schema: &str,
        name: &str,
        table: &dyn TableProvider,
    ) {
        let is_view = table.table_type() == TableType::View;
        match self.table {
            "tables" => rows.push(vec![
                t(catalog),
                t(schema),
                t(name),
                t(if is_view { "VIEW" } else { "BASE TABLE" }),
                yes_no(!is_view),
                t("NO"),
            ]),
            "views" if is_view => rows.push(vec![
                t(catalog),
                t(schema),
                t(name),
                Cell::Text(table.get_table_definition().map(str::to_string)),
                t("NONE"),
                t("NO"),
            ]),
            "columns" => {
                for (index, field) in table.schema().fields().iter().enumerate() {
                    let (data_type, udt) = pg_type_names(field.data_type());
                    let (precision, radix, scale) = numeric_precision(field.data_type());
                    rows.push(vec![
                        t(catalog),
                        t(schema),
                        t(name),
                        t(field.name()),
                        Cell::Int(Some(index as i32 + 1)),
                        Cell::Text(None),
                        yes_no(field.is_nullable()),
                        t(&data_type),
                        Cell::Int(None),
                        Cell::Int(precision),
                        Cell::Int(radix),
                        Cell::Int(scale),
                        Cell::Int(datetime_precision(field.data_type())),
                        t(catalog),
                        t("pg_catalog"),
                        t(udt),
                        t("NO"),
                        t("NEVER"),
                        yes_no(!is_view),
                    ]);
                }
            }
            "table_constraints" | "key_column_usage" => {
                let Some(constraints) = table.constraints() else {
                    return;
                };
                for constraint in constraints.iter() {
                    let Constraint::PrimaryKey(indices) = constraint else {
                        continue;
                    };
                    let constraint_name = format!("{name}_pkey");
                    if self.table == "table_constraints" {
                        rows.push(vec![
                            t(catalog),
                            t(schema),
                            t(&constraint_name),
                            t(catalog),
                            t(schema),
                            t(name),
                            t("PRIMARY KEY"),
                            t("NO"),
                            t("NO"),
                        ]);
                    } else {
                        let fields = table.schema();
                        for (position, index) in indices.iter().enumerate() {
                            if let Some(field) = fields.fields().get(*index) {
                                rows.push(vec![
                                    t(catalog),
                                    t(schema),
                                    t(&constraint_name),
                                    t(catalog),
                                    t(schema),
                                    t(name),
                                    t(field.name()),
                                    Cell::Int(Some(position as i32 + 1)),
                                ]);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[async_trait]
impl TableProvider for InfoTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.rows(state).await?;
        let table = MemTable::try_new(self.schema.clone(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
