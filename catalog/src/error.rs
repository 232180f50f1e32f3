//! Errors of the catalog crate: schema parsing, the data directory, imports and the generator.

use std::path::PathBuf;

/// Result of catalog operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the catalog crate, with the context a user
/// needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// schema.sql (or another SQL definition file) could not be understood.
    #[error("{file}: {message}")]
    SchemaDefinition { file: String, message: String },

    /// A stored table's schema does not match schema.sql.
    #[error(
        "the data directory {location} does not match sql/schema.sql:\n{}",
        differences.join("\n")
    )]
    SchemaMismatch {
        location: String,
        differences: Vec<String>,
    },

    /// The data directory location is not a path or URL we can open.
    #[error("cannot use {location} as a data directory: {reason}")]
    Location { location: String, reason: String },

    /// A table that schema.sql does not define was asked for.
    #[error("no table {0} in sql/schema.sql")]
    UnknownTable(String),

    /// Reading or writing a Delta table failed.
    #[error("Delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },

    /// DataFusion or Arrow failed while building or reading data.
    #[error("{context}: {source}")]
    DataFusion {
        context: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },

    /// Local file I/O.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A generator argument is out of range.
    #[error("generator: {0}")]
    Generator(String),
}

impl Error {
    pub(crate) fn delta(table: impl Into<String>, source: deltalake::DeltaTableError) -> Self {
        Self::Delta {
            table: table.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn datafusion(
        context: impl Into<String>,
        source: impl Into<datafusion::error::DataFusionError>,
    ) -> Self {
        Self::DataFusion {
            context: context.into(),
            source: Box::new(source.into()),
        }
    }
}
