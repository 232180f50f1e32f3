//! Errors of the engine library.

use datafusion::arrow::error::ArrowError;

/// Result of engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while opening data, running scripts or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] bianzhi_catalog::Error),

    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),

    #[error(transparent)]
    Arrow(#[from] ArrowError),

    /// A statement of a script failed; `statement` is 1-based.
    #[error("{file}: statement {statement} (line {line}) failed: {message}")]
    Statement {
        file: String,
        statement: usize,
        line: usize,
        message: String,
    },

    /// A script could not be split into statements.
    #[error("{file}:{line}: {message}")]
    Script {
        file: String,
        line: usize,
        message: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The evaluation files of `bianzhi eval-text` are missing or malformed.
    #[error("evaluation set: {0}")]
    Eval(String),
}
