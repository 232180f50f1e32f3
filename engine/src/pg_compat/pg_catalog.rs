//! `pg_catalog` for tools: datafusion-pg-catalog's tables, with `pg_description`
//! carrying the Chinese names of schema.sql's tables and columns.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{
    PgCatalogSchemaProvider, PgCatalogStaticTables,
};

use super::bianzhi_functions::{function_rows, pg_proc_batch};
use super::functions::{Descriptions, PG_CLASS, PG_PROC};

/// The pg_catalog schema: everything from the inner provider except
/// `pg_description`, which adds bianzhi's comments to the static rows.
#[derive(Debug)]
pub struct PgCatalog<C, P> {
    inner: Arc<PgCatalogSchemaProvider<C, P>>,
    static_tables: Arc<PgCatalogStaticTables>,
    descriptions: RwLock<Arc<Descriptions>>,
    /// pg_namespace.oid of `public`, where bianzhi's functions are listed.
    public_namespace: AtomicI64,
}

impl<C, P> PgCatalog<C, P>
where
    C: datafusion_postgres::datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo,
    P: datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::PgCatalogContextProvider,
{
    pub fn new(
        inner: PgCatalogSchemaProvider<C, P>,
        static_tables: Arc<PgCatalogStaticTables>,
    ) -> Self {
        PgCatalog {
            inner: Arc::new(inner),
            static_tables,
            descriptions: RwLock::new(Arc::new(Descriptions::new())),
            public_namespace: AtomicI64::new(2200),
        }
    }

    /// Record the OID pg_namespace gives `public`.
    pub fn set_public_namespace(&self, oid: i64) {
        self.public_namespace.store(oid, Ordering::Relaxed);
    }

    /// Replace bianzhi's object comments (built once the tables have OIDs).
    pub fn set_descriptions(&self, descriptions: Arc<Descriptions>) {
        if let Ok(mut current) = self.descriptions.write() {
            *current = descriptions;
        }
    }

    fn description_table(&self) -> Result<Arc<dyn TableProvider>> {
        let table = &self.static_tables.pg_description;
        let schema = table.schema();
        let mut batches: Vec<RecordBatch> = table.data().to_vec();
        let ours = self
            .descriptions
            .read()
            .map(|d| d.clone())
            .unwrap_or_default();
        let mut rows: Vec<(&(i64, i64, i32), &String)> = ours
            .iter()
            .filter(|((_, class, _), _)| *class == PG_CLASS || *class == 2615 || *class == PG_PROC)
            .collect();
        rows.sort();
        if !rows.is_empty() {
            // Same column types as the static table: objoid and classoid int32
            // (with the oid alias metadata), objsubid int32, description text.
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|((oid, _, _), _)| *oid as i32),
                )),
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|((_, class, _), _)| *class as i32),
                )),
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|((_, _, sub), _)| *sub),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(_, text)| text.as_str()),
                )),
            ];
            let columns = columns
                .into_iter()
                .zip(schema.fields())
                .map(|(array, field)| datafusion::arrow::compute::cast(&array, field.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }
}

impl<C, P> PgCatalog<C, P> {
    /// PostgreSQL's built-in functions and bianzhi's own.
    fn proc_table(&self) -> Result<Arc<dyn TableProvider>> {
        let table = &self.static_tables.pg_proc;
        let schema = table.schema();
        let mut batches: Vec<RecordBatch> = table.data().to_vec();
        let namespace = self.public_namespace.load(Ordering::Relaxed);
        batches.push(pg_proc_batch(&schema, &function_rows(), namespace)?);
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }
}

#[async_trait]
impl<C, P> SchemaProvider for PgCatalog<C, P>
where
    C: datafusion_postgres::datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo,
    P: datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::PgCatalogContextProvider,
{
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("pg_description") {
            return Ok(Some(self.description_table()?));
        }
        if name.eq_ignore_ascii_case("pg_proc") {
            return Ok(Some(self.proc_table()?));
        }
        self.inner.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}
