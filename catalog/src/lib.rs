//! bianzhi-catalog: the 机构编制 domain schema (parsed from `sql/schema.sql`), the
//! data directory of Delta Lake tables, and the synthetic Shenzhen data generator.

pub mod data_dir;
pub mod dict;
pub mod error;
pub mod generator;
pub mod live_table;
pub mod schema;

pub use data_dir::{DataDir, TableWriter, DEFAULT_DATA_DIR};
pub use error::{Error, Result};
pub use schema::{Catalog, ColumnDef, TableDef};
