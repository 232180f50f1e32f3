//! A schema whose schema.sql tables cannot be dropped or replaced by SQL:
//! they are the data directory's Delta tables, shared by every session.
//! Views and in-memory tables that sessions create live beside them.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};

#[derive(Debug)]
pub struct DomainSchema {
    name: String,
    inner: MemorySchemaProvider,
    protected: BTreeSet<String>,
}

impl DomainSchema {
    pub fn new(name: &str) -> Self {
        DomainSchema {
            name: name.to_string(),
            inner: MemorySchemaProvider::new(),
            protected: BTreeSet::new(),
        }
    }

    /// Add a table that SQL may read and insert into but not drop or replace.
    pub fn add_protected(&mut self, name: &str, table: Arc<dyn TableProvider>) -> Result<()> {
        self.inner.register_table(name.to_string(), table)?;
        self.protected.insert(name.to_string());
        Ok(())
    }

    fn refuse(&self, name: &str) -> DataFusionError {
        DataFusionError::Plan(format!(
            "{}.{name} is a table of sql/schema.sql stored in the data directory; it cannot be dropped or replaced",
            self.name
        ))
    }
}

#[async_trait]
impl SchemaProvider for DomainSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.inner.table(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.protected.contains(&name) {
            return Err(self.refuse(&name));
        }
        self.inner.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.protected.contains(name) {
            return Err(self.refuse(name));
        }
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}
