//! bianzhi-engine: the embedded engine (open a data directory, get a DataFusion
//! session with the 机构编制 tables and functions), the script runner and the
//! PostgreSQL wire server behind the `bianzhi` command.

mod checked_file;
pub mod distinct_scans;
pub mod domain_schema;
pub mod engine;
pub mod error;
pub mod export;
pub mod func_search;
pub mod import;
pub mod maintenance;
pub mod metadata;
pub mod monitor;
pub mod output;
pub mod pair_tokens;
pub mod pg_compat;
pub mod reports;
pub mod run;
mod saved_versions;
pub mod script;
pub mod server;
pub mod session;
pub mod settings;
pub mod sqlstate;
pub mod text_corpus;
pub mod text_eval;
pub mod time_travel;
pub mod user_tables;
pub mod views;

pub use engine::{open, Engine, EngineOptions, CATALOG_NAME};
pub use error::{Error, Result};
pub use pg_compat::SessionIdentity;
pub use session::Session;
pub use settings::Settings;
