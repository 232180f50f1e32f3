//! bianzhi-engine: the embedded engine (open a data directory, get a DataFusion
//! session with the 机构编制 tables and functions), the script runner and the
//! PostgreSQL wire server behind the `bianzhi` command.

pub mod engine;
pub mod error;
pub mod metadata;
pub mod output;
pub mod reports;
pub mod run;
pub mod script;

pub use engine::{open, Engine, EngineOptions, CATALOG_NAME};
pub use error::{Error, Result};
