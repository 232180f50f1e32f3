//! bianzhi's errors as pgwire error responses.

use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};

use crate::sqlstate::SqlError;

/// An error response (severity ERROR).
pub fn to_pgwire(error: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error, "ERROR")))
}

/// A FATAL error response: the connection is closed after it.
pub fn fatal(code: &'static str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(SqlError::new(code, message), "FATAL")))
}

/// The ErrorInfo of an error.
pub fn error_info(error: SqlError, severity: &str) -> ErrorInfo {
    let mut info = ErrorInfo::new(severity.to_string(), error.code.to_string(), error.message);
    info.detail = error.detail;
    info.hint = error.hint;
    info
}
