//! The embedded engine: a data directory opened once, and DataFusion sessions
//! over it. All sessions share one catalog (the Delta tables, pg_catalog,
//! information_schema, meta, and views sessions create); each has its own
//! settings, functions and memory budget.

use std::collections::BTreeMap;
use std::sync::Arc;

use bianzhi_catalog::live_table::LiveDeltaTable;
use bianzhi_catalog::schema::PUBLIC_SCHEMA;
use bianzhi_catalog::{DataDir, TableDef};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, TableFunctionImpl, TableProvider,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;

use crate::distinct_scans::DistinctScans;
use crate::domain_schema::DomainSchema;
use crate::error::Result;
use crate::func_search::{self, FuncSearchFunction};
use crate::metadata::{self, META_SCHEMA};
use crate::pg_compat::{PgCompat, SessionIdentity};
use crate::settings::Settings;
use crate::text_corpus::{self, CorpusWeights};
use crate::time_travel;
use crate::user_tables::UserTables;
use crate::views;
use bianzhi_udfs::text::{
    func_similarity_with_shared_weights, similar_pairs_function, PairTokenMemo, TokenWeights,
};

/// The catalog (database) name clients see.
pub const CATALOG_NAME: &str = "bianzhi";

/// Knobs for the sessions an [`Engine`] makes.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Partitions per query; `None` means one per core.
    pub target_partitions: Option<usize>,
    /// Memory one session's query may use, in bytes; `None` means unlimited.
    pub query_memory_limit: Option<usize>,
}

/// An opened data directory, ready to hand out sessions.
#[derive(Debug, Clone)]
pub struct Engine {
    data: Arc<DataDir>,
    tables: Vec<(TableDef, Arc<LiveDeltaTable>)>,
    catalogs: Arc<dyn CatalogProviderList>,
    compat: Arc<PgCompat>,
    runtime: Arc<RuntimeEnv>,
    options: EngineOptions,
    /// Table functions (over the built-in views, `func_search`, and the
    /// time travel of `table_at`/`table_history`), registered in every session.
    table_functions: Vec<(String, Arc<dyn TableFunctionImpl>)>,
    /// Token weights of the duty-text corpus: counted at open, and again
    /// before a statement scoring with them once the corpus tables changed.
    text_weights: Arc<CorpusWeights>,
    /// Texts `similar_pairs` has tokenised, kept for its later calls in any
    /// session.
    pub(crate) pair_tokens: Arc<PairTokenMemo>,
    /// The Delta tables `CREATE TABLE` made.
    user_tables: Arc<UserTables>,
    /// `func_search` (also in `table_functions`), when its tables exist.
    search: Option<FuncSearchFunction>,
}

impl Engine {
    /// Open (creating if new) the data directory at `location`.
    pub async fn open(location: &str) -> Result<Engine> {
        Self::open_with(location, EngineOptions::default()).await
    }

    /// [`Engine::open`] with explicit options.
    pub async fn open_with(location: &str, options: EngineOptions) -> Result<Engine> {
        // Reading the saved corpus counts needs the tokenizer's fingerprint,
        // whose first computation loads jieba's dictionary (about 0.1 s):
        // start it now, beside opening the tables. If no thread can be
        // started, the counts' check computes it when it gets there.
        let _ = std::thread::Builder::new()
            .name("bianzhi-tokenizer".into())
            .spawn(TokenWeights::tokenizer_fingerprint);
        let data = DataDir::open(location).await?;
        let mut tables = Vec::new();
        let mut schemas: BTreeMap<String, DomainSchema> = BTreeMap::new();
        for def in data.catalog().tables() {
            let delta = data.load(&def.qualified_name()).await?;
            let live = Arc::new(LiveDeltaTable::try_new(def, delta).await?);
            schemas
                .entry(def.schema.clone())
                .or_insert_with(|| DomainSchema::new(&def.schema))
                .add_protected(&def.name, live.clone() as Arc<dyn TableProvider>)?;
            tables.push((def.clone(), live));
        }
        let (user_tables, found) = UserTables::open(data.root()).await;
        let mut user_tables_found = Vec::new();
        for table in found {
            let schema = schemas
                .entry(table.schema.clone())
                .or_insert_with(|| DomainSchema::new(&table.schema));
            if datafusion::catalog::SchemaProvider::table_exist(schema, &table.name) {
                tracing::warn!(schema = %table.schema, table = %table.name, "a table made by SQL has the name of a table of schema.sql; skipped");
                continue;
            }
            user_tables_found.push(table);
        }
        let catalogs: Arc<dyn CatalogProviderList> = Arc::new(MemoryCatalogProviderList::new());
        let catalog: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
        catalogs.register_catalog(CATALOG_NAME.to_string(), catalog.clone());
        for (name, schema) in schemas {
            catalog.register_schema(&name, Arc::new(schema))?;
        }
        let meta = MemorySchemaProvider::new();
        datafusion::catalog::SchemaProvider::register_table(
            &meta,
            "tables".into(),
            Arc::new(metadata::tables(data.catalog())?) as Arc<dyn TableProvider>,
        )?;
        datafusion::catalog::SchemaProvider::register_table(
            &meta,
            "columns".into(),
            Arc::new(metadata::columns(data.catalog())?) as Arc<dyn TableProvider>,
        )?;
        catalog.register_schema(META_SCHEMA, Arc::new(meta))?;
        let compat = Arc::new(PgCompat::install(catalogs.clone(), &catalog, CATALOG_NAME)?);
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        let corpus_tables =
            text_corpus::CORPUS_TABLES.map(|name| find_live_table(&tables, name).cloned());
        let pair_tokens = Arc::new(crate::pair_tokens::memo_saved_in(
            data.root().to_file_path().ok().as_deref(),
        ));
        let text_weights = Arc::new(CorpusWeights::new(
            corpus_tables,
            data.root().clone(),
            runtime.clone(),
            Arc::clone(&pair_tokens),
        ));
        let mut engine = Engine {
            data: Arc::new(data),
            tables,
            catalogs,
            compat,
            runtime,
            options,
            table_functions: Vec::new(),
            text_weights,
            pair_tokens,
            user_tables: Arc::new(user_tables),
            search: None,
        };
        let ctx = engine.session()?;
        engine.table_functions = views::create_all(&ctx).await?;
        // Tables made by SQL come last: a built-in view keeps its name even
        // if a table of that name was made after the view was dropped.
        for table in user_tables_found {
            let Some(schema) = catalog.schema(&table.schema) else {
                continue;
            };
            if schema.table_exist(&table.name) {
                tracing::warn!(schema = %table.schema, table = %table.name, "a table made by SQL has the name of a built-in view or table; skipped");
                continue;
            }
            schema.register_table(table.name, table.table as Arc<dyn TableProvider>)?;
        }
        let search_tables = func_search::SOURCE_TABLES
            .iter()
            .filter_map(|name| engine.live_table(name).cloned())
            .collect::<Vec<_>>();
        if search_tables.len() == func_search::SOURCE_TABLES.len() {
            let search = FuncSearchFunction::new(
                search_tables,
                engine.data.root().to_file_path().ok().as_deref(),
            );
            engine.table_functions.push((
                "func_search".to_string(),
                Arc::new(search.clone()) as Arc<dyn TableFunctionImpl>,
            ));
            engine.search = Some(search);
        }
        engine.table_functions.extend(time_travel::table_functions(
            engine.data.clone(),
            &engine.tables,
        ));
        engine.text_weights.refresh().await?;
        engine
            .compat
            .load_descriptions(&ctx, engine.data.catalog())
            .await?;
        Ok(engine)
    }

    /// The data directory behind this engine.
    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    /// Every table of schema.sql with its definition.
    pub fn tables(&self) -> impl Iterator<Item = (&TableDef, Arc<dyn TableProvider>)> {
        self.tables
            .iter()
            .map(|(def, table)| (def, table.clone() as Arc<dyn TableProvider>))
    }

    /// The schema.sql table `name`.
    pub(crate) fn live_table(&self, name: &str) -> Option<&Arc<LiveDeltaTable>> {
        find_live_table(&self.tables, name)
    }

    /// Token weights of the duty-text corpus (org_duty, power_item) in
    /// place now: as counted at open or at the last [`Self::refresh_text_weights`].
    pub fn text_weights(&self) -> Arc<TokenWeights> {
        self.text_weights.current()
    }

    /// Counts the corpus again if org_duty or power_item has a new version
    /// since the weights in place were counted, and returns the weights.
    /// [`crate::Session`] does this before every statement using
    /// `func_similarity` or `similar_pairs`; a caller running SQL on
    /// [`Self::session`]'s contexts directly calls it after writing.
    pub async fn refresh_text_weights(&self) -> Result<Arc<TokenWeights>> {
        Ok(self.text_weights.refresh().await?)
    }

    /// How many distinct texts `similar_pairs` keeps tokenised for its
    /// later calls in any session of this engine.
    pub fn similar_pairs_texts_held(&self) -> usize {
        self.pair_tokens.texts()
    }

    /// Reads `similar_pairs`' saved tokens on a thread of its own, if no
    /// call has read them yet. A server does this as it starts, so that its
    /// first join finds the texts tokenised in memory rather than reading
    /// the file then (0.1 s at 100,000 texts, about 1.5 s at a million), at the
    /// price of holding them from the start. `None` if the thread could not
    /// be started (the first call then reads them, as without this).
    pub fn read_saved_pair_tokens_in_background(&self) -> Option<std::thread::JoinHandle<()>> {
        let memo = Arc::clone(&self.pair_tokens);
        let started = std::thread::Builder::new()
            .name("bianzhi-pair-tokens".to_string())
            .spawn(move || memo.read_saved());
        match started {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "could not start reading the saved similar_pairs tokens");
                None
            }
        }
    }

    /// Reads the `func_search` index saved beside the tables, if no search
    /// has made one yet, for the first search to take (after checking it
    /// against the tables, as it checks the file). A server does this as it
    /// starts (0.6–0.7 s at a million items), so that its first search
    /// answers in milliseconds, at the price of holding the index from the
    /// start.
    pub async fn read_saved_search_index(&self) {
        if let Some(search) = &self.search {
            search.read_saved_ahead().await;
        }
    }

    /// The corpus weights every session of this engine scores with.
    pub(crate) fn corpus_weights(&self) -> Arc<CorpusWeights> {
        self.text_weights.clone()
    }

    /// The Delta tables made by `CREATE TABLE`, shared by every session.
    pub fn user_tables(&self) -> Arc<UserTables> {
        self.user_tables.clone()
    }

    /// The options this engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The session configuration every session starts from.
    pub fn session_config(&self) -> SessionConfig {
        let mut config = SessionConfig::new()
            .with_information_schema(false)
            .with_default_catalog_and_schema(CATALOG_NAME, PUBLIC_SCHEMA)
            .with_create_default_catalog_and_schema(false);
        // `1.5` is an exact numeric in PostgreSQL, not a double.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        if let Some(partitions) = self.options.target_partitions {
            config = config.with_target_partitions(partitions.max(1));
        }
        config
    }

    /// A new session with default settings: the shortest way to query.
    pub fn session(&self) -> Result<SessionContext> {
        self.session_for(&Settings::default(), &SessionIdentity::default())
    }

    /// A new session whose PostgreSQL functions see `settings` and `identity`.
    pub fn session_for(
        &self,
        settings: &Settings,
        identity: &SessionIdentity,
    ) -> Result<SessionContext> {
        self.session_with_config(self.session_config(), settings, identity)
    }

    /// A new session with a caller-adjusted configuration.
    pub fn session_with_config(
        &self,
        config: SessionConfig,
        settings: &Settings,
        identity: &SessionIdentity,
    ) -> Result<SessionContext> {
        let runtime = match self.options.query_memory_limit {
            // A memory pool per session: one client's query cannot starve the others.
            Some(limit) => RuntimeEnvBuilder::new()
                .with_memory_limit(limit, 1.0)
                .build_arc()?,
            None => self.runtime.clone(),
        };
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_catalog_list(self.catalogs.clone())
            .with_default_features()
            .with_type_planner(Arc::new(PgOidTypePlanner))
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        self.compat.register_functions(&ctx, settings, identity);
        bianzhi_udfs::register_all(&mut ctx)?;
        // func_similarity weighs tokens by this data directory's corpus.
        ctx.register_udf(func_similarity_with_shared_weights(
            self.text_weights.shared(),
        ));
        // similar_pairs scores with the same weights, so its pairs are func_similarity's.
        ctx.register_udtf(
            "similar_pairs",
            DistinctScans::wrap(
                "similar_pairs",
                similar_pairs_function(self.text_weights.shared(), self.pair_tokens.clone()),
            ),
        );
        for (name, function) in &self.table_functions {
            ctx.register_udtf(name, DistinctScans::wrap(name, function.clone()));
        }
        Ok(ctx)
    }
}

/// The schema.sql table `name` among `tables`.
fn find_live_table<'a>(
    tables: &'a [(TableDef, Arc<LiveDeltaTable>)],
    name: &str,
) -> Option<&'a Arc<LiveDeltaTable>> {
    tables
        .iter()
        .find(|(def, _)| def.name == name)
        .map(|(_, table)| table)
}

/// Open `location` and return one session over it: the shortest way to embed bianzhi.
pub async fn open(location: &str) -> Result<SessionContext> {
    Engine::open(location).await?.session()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_share_tables_but_not_settings_and_domain_tables_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        let a = engine.session().unwrap();
        let b = engine.session().unwrap();
        a.sql("CREATE VIEW v AS SELECT 1 AS one").await.unwrap();
        let rows = b
            .sql("SELECT one FROM v")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(rows[0].num_rows(), 1, "views are shared like a database's");
        a.sql("SET datafusion.execution.batch_size = 100")
            .await
            .unwrap();
        assert_eq!(
            b.state().config().batch_size(),
            8192,
            "settings are per session"
        );
        // DataFusion reports a refused DROP as "doesn't exist"; the table stays.
        assert!(a.sql("DROP TABLE org").await.is_err());
        assert!(b.sql("SELECT count(*) FROM org").await.is_ok());
    }

    #[tokio::test]
    async fn bianzhi_functions_are_in_pg_proc_with_their_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        let ctx = engine.session().unwrap();
        let sql = "SELECT p.prokind, n.nspname, pg_get_function_arguments(p.oid) AS arguments, \
                   obj_description(p.oid, 'pg_proc') AS description \
                   FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
                   WHERE p.proname = 'hoover'";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let formatted = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(formatted.contains("| a "), "{formatted}");
        assert!(formatted.contains("public"), "{formatted}");
        assert!(formatted.contains("value, weight"), "{formatted}");
        assert!(formatted.contains("Hoover index"), "{formatted}");
    }

    #[tokio::test]
    async fn postgres_catalog_has_the_chinese_comments() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        let ctx = engine.session().unwrap();
        let sql = "SELECT obj_description(c.oid, 'pg_class') AS t, col_description(c.oid, 2) AS c \
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relname = 'org' AND n.nspname = 'public'";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let formatted = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(formatted.contains("机构"), "{formatted}");
        assert!(formatted.contains("机构名称"), "{formatted}");
        let version = ctx
            .sql("SELECT version()")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let formatted = datafusion::arrow::util::pretty::pretty_format_batches(&version)
            .unwrap()
            .to_string();
        assert!(formatted.contains("PostgreSQL 16."), "{formatted}");
        let columns = ctx
            .sql("SELECT data_type FROM information_schema.columns WHERE table_name = 'org' AND column_name = 'valid_from'")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let formatted = datafusion::arrow::util::pretty::pretty_format_batches(&columns)
            .unwrap()
            .to_string();
        assert!(formatted.contains("| date "), "{formatted}");
    }
}
