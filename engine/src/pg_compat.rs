//! PostgreSQL compatibility shared by every session: `pg_catalog` (from
//! datafusion-pg-catalog, with bianzhi's comments in `pg_description`), a
//! PostgreSQL-shaped `information_schema`, and the functions clients call.

pub mod bianzhi_functions;
pub mod column_names;
pub mod fn_udf;
pub mod functions;
pub mod information_schema;
pub mod pg_catalog;
pub mod pg_types;
pub mod rewrite;
pub mod user_subqueries;

use std::collections::HashMap;
use std::sync::Arc;

use bianzhi_catalog::Catalog;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::catalog::{CatalogProvider, CatalogProviderList};
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{
    self as pgc, array_bounds_udf, format_type, generate_series_arg_coercion, has_privilege_udf,
    pg_get_expr_udf, quote_ident_udf, PgCatalogSchemaProvider, PgCatalogStaticTables,
};

use crate::error::{Error, Result};
use crate::settings::Settings;
use functions::{Descriptions, PG_CLASS};
use information_schema::{InformationSchema, INFORMATION_SCHEMA};

type SharedPgCatalog = pg_catalog::PgCatalog<Arc<dyn CatalogProviderList>, EmptyContextProvider>;

/// Comments on the schemas bianzhi adds.
const SCHEMA_COMMENTS: &[(&str, &str)] = &[
    ("public", "机构编制数据"),
    ("generator", "生成器真值"),
    ("meta", "表与列的中文名"),
];

/// Comments on tables that are not in schema.sql.
const TABLE_COMMENTS: &[(&str, &str, &str)] = &[
    ("meta", "tables", "表的中文名、主键"),
    ("meta", "columns", "列的中文名、类型、代码集"),
];

/// Who a session belongs to, for `session_user` and `pg_backend_pid`.
#[derive(Debug, Clone)]
pub struct SessionIdentity {
    pub user: String,
    pub pid: i32,
}

impl Default for SessionIdentity {
    fn default() -> Self {
        SessionIdentity {
            user: "bianzhi".to_string(),
            pid: std::process::id() as i32,
        }
    }
}

/// The compatibility layer of one engine.
#[derive(Debug)]
pub struct PgCompat {
    catalog_name: String,
    pg_catalog: Arc<SharedPgCatalog>,
    static_tables: Arc<PgCatalogStaticTables>,
    descriptions: std::sync::RwLock<Arc<Descriptions>>,
    /// `schema.relation` → pg_class oid, for `regclass` casts of parameters.
    relations: std::sync::RwLock<Arc<HashMap<String, i64>>>,
    type_oids: Arc<HashMap<String, i32>>,
    /// Function oid → (result type, argument list), for `\df`.
    signatures: Arc<HashMap<i64, (String, String)>>,
    started_micros: i64,
}

impl PgCompat {
    /// Build pg_catalog and information_schema and register them in `catalog`.
    pub fn install(
        catalogs: Arc<dyn CatalogProviderList>,
        catalog: &Arc<dyn CatalogProvider>,
        catalog_name: &str,
    ) -> Result<PgCompat> {
        let static_tables = Arc::new(
            PgCatalogStaticTables::try_new().map_err(|e| Error::DataFusion(*Box::new(e)))?,
        );
        let inner = PgCatalogSchemaProvider::try_new(
            catalogs.clone(),
            static_tables.clone(),
            EmptyContextProvider,
        )?;
        let pg_catalog = Arc::new(pg_catalog::PgCatalog::new(inner, static_tables.clone()));
        catalog.register_schema("pg_catalog", pg_catalog.clone())?;
        catalog.register_schema(
            INFORMATION_SCHEMA,
            Arc::new(InformationSchema::new(catalogs)),
        )?;
        let type_oids = Arc::new(type_oids(&static_tables));
        let signatures = Arc::new(
            bianzhi_functions::function_rows()
                .into_iter()
                .map(|f| (f.oid, (f.result, f.arguments)))
                .collect::<HashMap<_, _>>(),
        );
        let started_micros = chrono::Utc::now().timestamp_micros();
        Ok(PgCompat {
            catalog_name: catalog_name.to_string(),
            pg_catalog,
            static_tables,
            descriptions: std::sync::RwLock::new(Arc::new(Descriptions::new())),
            relations: std::sync::RwLock::new(Arc::new(HashMap::new())),
            type_oids,
            signatures,
            started_micros,
        })
    }

    /// Give the schema.sql tables and columns their comments, now that
    /// pg_catalog has assigned OIDs (`ctx` is any session of the engine).
    pub async fn load_descriptions(&self, ctx: &SessionContext, catalog: &Catalog) -> Result<()> {
        let mut descriptions = Descriptions::new();
        // bianzhi's functions, for `\df+` and obj_description(oid, 'pg_proc').
        for function in bianzhi_functions::function_rows() {
            if let Some(text) = function.description {
                descriptions.insert((function.oid, functions::PG_PROC, 0), text);
            }
        }
        let mut relations = HashMap::new();
        // The static descriptions of built-in functions and types.
        for batch in self.static_tables.pg_description.data() {
            let oids = cast(batch.column(0), &DataType::Int64)?;
            let classes = cast(batch.column(1), &DataType::Int64)?;
            let subs = cast(batch.column(2), &DataType::Int64)?;
            let texts = cast(batch.column(3), &DataType::Utf8)?;
            let (oids, classes, subs, texts) = (
                oids.as_primitive::<Int64Type>(),
                classes.as_primitive::<Int64Type>(),
                subs.as_primitive::<Int64Type>(),
                texts.as_string::<i32>(),
            );
            for row in 0..batch.num_rows() {
                if texts.is_valid(row) {
                    descriptions.insert(
                        (oids.value(row), classes.value(row), subs.value(row) as i32),
                        texts.value(row).to_string(),
                    );
                }
            }
        }
        let frame = ctx
            .sql(
                "SELECT c.oid::bigint, n.nspname, c.relname, n.oid::bigint \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
            )
            .await?;
        for batch in frame.collect().await? {
            let oids = cast(batch.column(0), &DataType::Int64)?;
            let namespaces = cast(batch.column(1), &DataType::Utf8)?;
            let names = cast(batch.column(2), &DataType::Utf8)?;
            let namespace_oids = cast(batch.column(3), &DataType::Int64)?;
            for row in 0..batch.num_rows() {
                let oid = oids.as_primitive::<Int64Type>().value(row);
                let namespace = namespaces.as_string::<i32>().value(row);
                let name = names.as_string::<i32>().value(row);
                let namespace_oid = namespace_oids.as_primitive::<Int64Type>().value(row);
                relations.insert(format!("{namespace}.{name}"), oid);
                if namespace == "public" {
                    self.pg_catalog.set_public_namespace(namespace_oid);
                }
                if let Some((_, comment)) = SCHEMA_COMMENTS.iter().find(|(s, _)| *s == namespace) {
                    descriptions.insert((namespace_oid, 2615, 0), comment.to_string());
                }
                if let Some((_, _, comment)) = TABLE_COMMENTS
                    .iter()
                    .find(|(s, t, _)| *s == namespace && *t == name)
                {
                    descriptions.insert((oid, PG_CLASS, 0), comment.to_string());
                }
                let Some(def) = catalog
                    .tables()
                    .iter()
                    .find(|t| t.schema == namespace && t.name == name)
                else {
                    continue;
                };
                if let Some(comment) = &def.comment {
                    descriptions.insert((oid, PG_CLASS, 0), comment.clone());
                }
                for (index, column) in def.columns.iter().enumerate() {
                    if let Some(comment) = &column.comment {
                        descriptions.insert((oid, PG_CLASS, index as i32 + 1), comment.clone());
                    }
                }
            }
        }
        let descriptions = Arc::new(descriptions);
        self.pg_catalog.set_descriptions(descriptions.clone());
        if let Ok(mut current) = self.descriptions.write() {
            *current = descriptions;
        }
        if let Ok(mut current) = self.relations.write() {
            *current = Arc::new(relations);
        }
        Ok(())
    }

    /// Register the PostgreSQL functions in one session.
    pub fn register_functions(
        &self,
        ctx: &SessionContext,
        settings: &Settings,
        identity: &SessionIdentity,
    ) {
        let descriptions = self
            .descriptions
            .read()
            .map(|d| d.clone())
            .unwrap_or_default();
        ctx.register_udf(pgc::create_current_database_udf(&self.catalog_name));
        ctx.register_udf(pgc::create_current_schema_udf());
        ctx.register_udf(pgc::create_current_schemas_udf());
        ctx.register_udf(pgc::create_pg_get_userbyid_udf());
        for name in [
            "has_table_privilege",
            "has_schema_privilege",
            "has_database_privilege",
            "has_any_column_privilege",
        ] {
            ctx.register_udf(has_privilege_udf::create_has_privilege_udf(name));
        }
        ctx.register_udf(pgc::create_pg_table_is_visible());
        ctx.register_udf(format_type::create_format_type_udf());
        ctx.register_udtf(
            "pg_get_keywords",
            self.static_tables.pg_get_keywords.clone(),
        );
        ctx.register_udf(pg_get_expr_udf::create_pg_get_expr_udf());
        ctx.register_udf(pgc::create_pg_get_partkeydef_udf());
        ctx.register_udf(pgc::create_pg_relation_is_publishable_udf());
        ctx.register_udf(pgc::create_pg_get_statisticsobjdef_columns_udf());
        ctx.register_udf(pgc::create_pg_encoding_to_char_udf());
        ctx.register_udf(pgc::create_pg_relation_size_udf());
        ctx.register_udf(pgc::create_pg_total_relation_size_udf());
        ctx.register_udf(pgc::create_pg_stat_get_numscans());
        ctx.register_udf(pgc::create_pg_get_constraintdef());
        ctx.register_udf(pgc::create_pg_get_partition_ancestors_udf());
        ctx.register_udf(quote_ident_udf::create_quote_ident_udf());
        ctx.register_udf(quote_ident_udf::create_parse_ident_udf());
        ctx.register_udf(array_bounds_udf::create_array_upper_udf());
        ctx.register_udf(array_bounds_udf::create_array_lower_udf());
        // bianzhi's own, some replacing the stubs above.
        ctx.register_udf(functions::version());
        ctx.register_udf(functions::current_setting(settings.clone()));
        ctx.register_udf(functions::obj_description(descriptions.clone()));
        ctx.register_udf(functions::col_description(descriptions));
        ctx.register_udf(functions::shobj_description());
        ctx.register_udf(functions::to_regtype(self.type_oids.clone()));
        let relations = self.relations.read().map(|r| r.clone()).unwrap_or_default();
        ctx.register_udf(functions::regclass_oid(relations));
        ctx.register_udf(functions::pg_get_serial_sequence());
        ctx.register_udf(functions::pg_is_in_recovery());
        ctx.register_udf(functions::pg_postmaster_start_time(self.started_micros));
        ctx.register_udf(functions::pg_advisory_unlock_all());
        ctx.register_udf(functions::session_user(identity.user.clone()));
        ctx.register_udf(functions::pg_backend_pid(identity.pid));
        ctx.register_udf(functions::null_text("inet_server_addr"));
        ctx.register_udf(functions::null_text("inet_client_addr"));
        ctx.register_udf(functions::always_visible("pg_function_is_visible"));
        ctx.register_udf(functions::always_visible("pg_type_is_visible"));
        ctx.register_udf(functions::pg_size_pretty());
        ctx.register_udf(functions::always_visible("pg_collation_is_visible"));
        ctx.register_udf(functions::always_visible("pg_conversion_is_visible"));
        ctx.register_udf(functions::json_build_object());
        ctx.register_udf(functions::pg_typeof());
        ctx.register_udf(functions::null_text_of_oid("pg_get_function_sqlbody"));
        for name in ["pg_table_size", "pg_indexes_size"] {
            ctx.register_udf(functions::zero_of_oid(name));
        }
        ctx.register_udf(functions::function_signature(
            "pg_get_function_result",
            self.signatures.clone(),
            true,
        ));
        ctx.register_udf(functions::function_signature(
            "pg_get_function_arguments",
            self.signatures.clone(),
            false,
        ));
        ctx.register_udf(functions::function_signature(
            "pg_get_function_identity_arguments",
            self.signatures.clone(),
            false,
        ));
        generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(ctx);
    }
}

/// pg_type's typname → oid, for `to_regtype`.
fn type_oids(static_tables: &PgCatalogStaticTables) -> HashMap<String, i32> {
    let mut out = HashMap::new();
    for batch in static_tables.pg_type.data() {
        let (Some(oid), Some(name)) =
            (batch.column_by_name("oid"), batch.column_by_name("typname"))
        else {
            continue;
        };
        let (Ok(oid), Ok(name)) = (cast(oid, &DataType::Int64), cast(name, &DataType::Utf8)) else {
            continue;
        };
        let (oid, name) = (oid.as_primitive::<Int64Type>(), name.as_string::<i32>());
        for row in 0..batch.num_rows() {
            if oid.is_valid(row) && name.is_valid(row) {
                out.insert(name.value(row).to_string(), oid.value(row) as i32);
            }
        }
    }
    out
}
