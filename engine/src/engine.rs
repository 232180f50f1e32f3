//! The embedded engine: a data directory opened once, and DataFusion sessions
//! over it with every table and function registered.

use std::sync::Arc;

use bianzhi_catalog::live_table::LiveDeltaTable;
use bianzhi_catalog::schema::PUBLIC_SCHEMA;
use bianzhi_catalog::{DataDir, TableDef};
use datafusion::catalog::{MemTable, MemorySchemaProvider, TableProvider};
use datafusion::common::TableReference;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use crate::metadata::{self, META_SCHEMA};

/// The catalog (database) name clients see.
pub const CATALOG_NAME: &str = "bianzhi";

/// Knobs for the sessions an [`Engine`] makes.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Partitions per query; `None` means one per core.
    pub target_partitions: Option<usize>,
}

/// An opened data directory, ready to hand out sessions.
#[derive(Debug, Clone)]
pub struct Engine {
    data: Arc<DataDir>,
    tables: Vec<(TableDef, Arc<LiveDeltaTable>)>,
    meta_tables: Arc<MemTable>,
    meta_columns: Arc<MemTable>,
    runtime: Arc<RuntimeEnv>,
    options: EngineOptions,
}

impl Engine {
    /// Open (creating if new) the data directory at `location`.
    pub async fn open(location: &str) -> Result<Engine> {
        Self::open_with(location, EngineOptions::default()).await
    }

    /// [`Engine::open`] with explicit options.
    pub async fn open_with(location: &str, options: EngineOptions) -> Result<Engine> {
        let data = DataDir::open(location).await?;
        let mut tables = Vec::new();
        for def in data.catalog().tables() {
            let delta = data.load(&def.qualified_name()).await?;
            let live = LiveDeltaTable::try_new(def, delta).await?;
            tables.push((def.clone(), Arc::new(live)));
        }
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        let meta_tables = Arc::new(metadata::tables(data.catalog())?);
        let meta_columns = Arc::new(metadata::columns(data.catalog())?);
        Ok(Engine {
            data: Arc::new(data),
            tables,
            meta_tables,
            meta_columns,
            runtime,
            options,
        })
    }

    /// The data directory behind this engine.
    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    /// Every table with its definition from schema.sql.
    pub fn tables(&self) -> impl Iterator<Item = (&TableDef, Arc<dyn TableProvider>)> {
        self.tables
            .iter()
            .map(|(def, table)| (def, table.clone() as Arc<dyn TableProvider>))
    }

    /// The session configuration every session starts from.
    pub fn session_config(&self) -> SessionConfig {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG_NAME, PUBLIC_SCHEMA)
            .with_create_default_catalog_and_schema(true);
        if let Some(partitions) = self.options.target_partitions {
            config = config.with_target_partitions(partitions.max(1));
        }
        config
    }

    /// A new, independent session: its settings and temporary objects are its own,
    /// the tables and the memory pool are shared.
    pub fn session(&self) -> Result<SessionContext> {
        self.session_with_config(self.session_config())
    }

    /// A new session with a caller-adjusted configuration.
    pub fn session_with_config(&self, config: SessionConfig) -> Result<SessionContext> {
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        if let Some(catalog) = ctx.catalog(CATALOG_NAME) {
            for schema in self.data.catalog().extra_schemas() {
                catalog.register_schema(&schema, Arc::new(MemorySchemaProvider::new()))?;
            }
            catalog.register_schema(META_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
        }
        ctx.register_table(
            TableReference::full(CATALOG_NAME, META_SCHEMA, "tables"),
            self.meta_tables.clone(),
        )?;
        ctx.register_table(
            TableReference::full(CATALOG_NAME, META_SCHEMA, "columns"),
            self.meta_columns.clone(),
        )?;
        for (def, table) in &self.tables {
            let reference =
                TableReference::full(CATALOG_NAME, def.schema.as_str(), def.name.as_str());
            ctx.register_table(reference, table.clone())?;
        }
        bianzhi_udfs::register_all(&mut ctx)?;
        Ok(ctx)
    }
}

/// Open `location` and return one session over it: the shortest way to embed bianzhi.
pub async fn open(location: &str) -> Result<SessionContext> {
    Engine::open(location).await?.session()
}
