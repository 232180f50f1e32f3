//! Errors with PostgreSQL SQLSTATE codes: the one place DataFusion's and
//! bianzhi's errors are classified for clients.

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;

/// Error codes bianzhi sends (PostgreSQL's Appendix A).
pub mod code {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const INVALID_NAME: &str = "42602";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const QUERY_CANCELED: &str = "57014";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const IN_FAILED_TRANSACTION: &str = "25P02";
    pub const NO_ACTIVE_TRANSACTION: &str = "25P01";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const IO_ERROR: &str = "58030";
}

/// An error as a client sees it: SQLSTATE, message, optional detail and hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn canceled() -> Self {
        Self::new(
            code::QUERY_CANCELED,
            "canceling statement due to user request",
        )
    }

    pub fn shutting_down() -> Self {
        Self::new(
            code::ADMIN_SHUTDOWN,
            "terminating connection due to administrator command",
        )
    }

    pub fn timed_out() -> Self {
        Self::new(
            code::QUERY_CANCELED,
            "canceling statement due to statement timeout",
        )
    }
}

/// Classify a DataFusion error.
pub fn from_datafusion(error: &DataFusionError) -> SqlError {
    postgres_wording(classify(error))
}

/// PostgreSQL's wording for the errors people and scripts match on; what
/// DataFusion adds (the valid columns, a close function name) becomes the hint.
fn postgres_wording(mut sql: SqlError) -> SqlError {
    let message = sql.message.clone();
    match sql.code {
        code::DIVISION_BY_ZERO => sql.message = "division by zero".to_string(),
        code::CARDINALITY_VIOLATION => {
            sql.message =
                "more than one row returned by a subquery used as an expression".to_string()
        }
        code::UNDEFINED_TABLE => {
            if let Some(name) = message
                .strip_prefix("table '")
                .and_then(|rest| rest.strip_suffix("' not found"))
            {
                // DataFusion names the table with catalog and schema; the
                // catalog is always this database, public the default schema.
                let parts: Vec<&str> = name.split('.').collect();
                let parts = if parts.len() == 3 {
                    &parts[1..]
                } else {
                    &parts[..]
                };
                let name = match parts {
                    ["public", table] => table.to_string(),
                    _ => parts.join("."),
                };
                sql.message = format!("relation \"{name}\" does not exist");
            }
        }
        code::UNDEFINED_COLUMN => {
            if let Some(rest) = message.strip_prefix("No field named ") {
                let (name, valid) = rest
                    .split_once(".\n")
                    .unwrap_or((rest.trim_end_matches('.'), ""));
                // PostgreSQL quotes a bare name, not a qualified one.
                sql.message = if name.contains('.') {
                    format!("column {name} does not exist")
                } else {
                    format!("column \"{name}\" does not exist")
                };
                if !valid.is_empty() {
                    sql.hint = Some(valid.trim().to_string());
                }
            }
        }
        code::UNDEFINED_FUNCTION => {
            if let Some(rest) = message.strip_prefix("Invalid function '") {
                if let Some((name, suggestion)) = rest.split_once('\'') {
                    sql.message = format!("function {name} does not exist");
                    let suggestion = suggestion.trim_start_matches('.').trim();
                    if !suggestion.is_empty() {
                        sql.hint = Some(suggestion.to_string());
                    }
                }
            }
        }
        _ => {}
    }
    sql
}

fn classify(error: &DataFusionError) -> SqlError {
    // Errors wrapped in context or external boxes carry their cause inside.
    match error {
        DataFusionError::Diagnostic(_, inner) => return classify(inner),
        DataFusionError::Shared(inner) => return classify(inner),
        DataFusionError::Collection(errors) => {
            if let Some(first) = errors.first() {
                return classify(first);
            }
        }
        DataFusionError::Context(_, inner) => return keep_message(error, classify(inner)),
        DataFusionError::External(inner) => {
            if let Some(sql) = inner.downcast_ref::<SqlError>() {
                return sql.clone();
            }
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                return keep_message(error, classify(df));
            }
            if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
                return SqlError::new(from_arrow(arrow), strip(error));
            }
        }
        _ => {}
    }
    let message = strip(error);
    let code = match error {
        DataFusionError::SQL(_, _) => code::SYNTAX_ERROR,
        DataFusionError::ArrowError(arrow, _) => from_arrow(arrow),
        DataFusionError::NotImplemented(_) => code::FEATURE_NOT_SUPPORTED,
        DataFusionError::ResourcesExhausted(_) => code::OUT_OF_MEMORY,
        DataFusionError::SchemaError(schema, _) => match schema.as_ref() {
            SchemaError::FieldNotFound { .. } => code::UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => code::AMBIGUOUS_COLUMN,
            _ => code::SYNTAX_ERROR,
        },
        DataFusionError::Plan(text) | DataFusionError::Execution(text) => from_text(text),
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => code::IO_ERROR,
        DataFusionError::Configuration(text) => {
            if text.contains("Could not find config namespace") || text.contains("Config value") {
                code::UNDEFINED_OBJECT
            } else {
                code::INVALID_PARAMETER_VALUE
            }
        }
        _ => code::INTERNAL_ERROR,
    };
    SqlError::new(code, message)
}

/// Keep the outer message (it has the context) with the inner code.
fn keep_message(outer: &DataFusionError, inner: SqlError) -> SqlError {
    SqlError {
        message: strip(outer),
        ..inner
    }
}

fn from_arrow(error: &ArrowError) -> &'static str {
    match error {
        ArrowError::DivideByZero => code::DIVISION_BY_ZERO,
        ArrowError::CastError(_) | ArrowError::ParseError(_) => code::INVALID_TEXT_REPRESENTATION,
        ArrowError::ArithmeticOverflow(_) => code::NUMERIC_VALUE_OUT_OF_RANGE,
        ArrowError::MemoryError(_) => code::OUT_OF_MEMORY,
        ArrowError::NotYetImplemented(_) => code::FEATURE_NOT_SUPPORTED,
        ArrowError::ExternalError(inner) => {
            if inner.to_string().contains("Divide by zero") {
                code::DIVISION_BY_ZERO
            } else {
                code::INTERNAL_ERROR
            }
        }
        _ => code::INTERNAL_ERROR,
    }
}

/// Plan and execution errors are plain text; classify them by what they say.
fn from_text(text: &str) -> &'static str {
    let lower = text.to_ascii_lowercase();
    if lower.contains("table '") && lower.contains("not found")
        || lower.contains("no table named")
        || lower.contains("doesn't exist")
    {
        code::UNDEFINED_TABLE
    } else if lower.contains("no field named")
        || lower.contains("column") && lower.contains("not found")
    {
        code::UNDEFINED_COLUMN
    } else if lower.contains("invalid function")
        || lower.contains("no function matches")
        || lower.contains("function") && lower.contains("not found")
    {
        code::UNDEFINED_FUNCTION
    } else if lower.contains("divide by zero") || lower.contains("division by zero") {
        code::DIVISION_BY_ZERO
    } else if lower.contains("subquery returned more than one row") {
        code::CARDINALITY_VIOLATION
    } else if lower.contains("cannot cast")
        || lower.contains("cast error")
        || lower.contains("cannot parse")
        || lower.contains("invalid input syntax")
        || lower.contains("error parsing")
    {
        code::INVALID_TEXT_REPRESENTATION
    } else if lower.contains("invalid table name") || lower.contains("invalid schema name") {
        code::INVALID_NAME
    } else if lower.contains("could not serialize access") {
        code::SERIALIZATION_FAILURE
    } else if lower.contains("specified more than once")
        || lower.contains("require unique expression names")
    {
        code::DUPLICATE_COLUMN
    } else if lower.contains("already exists") {
        code::DUPLICATE_TABLE
    } else if lower.contains("cannot be dropped") {
        code::INSUFFICIENT_PRIVILEGE
    } else if lower.contains("cannot be replaced") {
        code::WRONG_OBJECT_TYPE
    } else if lower.contains("coercion")
        || lower.contains("type mismatch")
        || lower.contains("does not support") && lower.contains("type")
    {
        code::DATATYPE_MISMATCH
    } else if lower.contains("unsupported")
        || lower.contains("not supported")
        || lower.contains("not implemented")
    {
        code::FEATURE_NOT_SUPPORTED
    } else if lower.contains("sql error") || lower.contains("expected") && lower.contains("found") {
        code::SYNTAX_ERROR
    } else if lower.contains(" must be ")
        || lower.contains(" must not ")
        || lower.contains("unknown mode")
        || lower.contains("unknown method")
    {
        // bianzhi's functions word a bad argument value as "x must be …".
        code::INVALID_PARAMETER_VALUE
    } else {
        code::INTERNAL_ERROR
    }
}

/// DataFusion's message without its error-kind prefix (`Error during planning: `…).
fn strip(error: &DataFusionError) -> String {
    let text = error.to_string();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "Arrow error: ",
        "SQL error: ",
        "This feature is not implemented: ",
        "Schema error: ",
        "Resources exhausted: ",
        "External error: ",
        "Invalid or Unsupported Configuration: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn code_of(sql: &str) -> &'static str {
        let ctx = SessionContext::new();
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        from_datafusion(&result.expect_err(sql)).code
    }

    async fn error_of(sql: &str) -> SqlError {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE org (org_id BIGINT, tier TEXT)")
            .await
            .unwrap();
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        from_datafusion(&result.expect_err(sql))
    }

    #[tokio::test]
    async fn messages_are_worded_as_postgres_words_them() {
        let table = error_of("SELECT * FROM public.no_such_table").await;
        assert_eq!(table.message, "relation \"no_such_table\" does not exist");
        let column = error_of("SELECT nope FROM org").await;
        assert_eq!(column.message, "column \"nope\" does not exist");
        assert!(
            column
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("org.tier")),
            "{column:?}"
        );
        let qualified = error_of("SELECT o.nope FROM org o").await;
        assert_eq!(qualified.message, "column o.nope does not exist");
        let function = error_of("SELECT nowx()").await;
        assert_eq!(function.message, "function nowx does not exist");
        assert!(
            function.hint.as_deref().is_some_and(|h| h.contains("now")),
            "{function:?}"
        );
        assert_eq!(error_of("SELECT 1/0").await.message, "division by zero");
    }

    #[test]
    fn bad_argument_values_are_invalid_parameter_values() {
        for message in [
            "robust_z: min_n (5) must not exceed lookback (4)",
            "ewma: lambda must be in (0, 1]",
            "zh_tokens: unknown mode 'x'; valid modes are bigram, word, both",
        ] {
            assert_eq!(
                from_text(message),
                code::INVALID_PARAMETER_VALUE,
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn common_errors_get_their_postgres_codes() {
        assert_eq!(
            code_of("SELECT * FROM no_such_table").await,
            code::UNDEFINED_TABLE
        );
        assert_eq!(
            code_of("SELECT no_such_column FROM (SELECT 1 AS a)").await,
            code::UNDEFINED_COLUMN
        );
        assert_eq!(code_of("SELEC 1").await, code::SYNTAX_ERROR);
        assert_eq!(code_of("SELECT 1/0").await, code::DIVISION_BY_ZERO);
        assert_eq!(
            code_of("SELECT (SELECT a FROM (VALUES (1), (2)) AS t(a))").await,
            code::CARDINALITY_VIOLATION
        );
        assert_eq!(
            code_of("SELECT CAST('abc' AS INT)").await,
            code::INVALID_TEXT_REPRESENTATION
        );
        assert_eq!(
            code_of("SELECT no_such_function(1)").await,
            code::UNDEFINED_FUNCTION
        );
    }

    #[test]
    fn prefixes_are_stripped_and_context_keeps_the_code() {
        let inner = DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None);
        let outer = DataFusionError::Context("while computing".into(), Box::new(inner));
        let sql = from_datafusion(&outer);
        assert_eq!(sql.code, code::DIVISION_BY_ZERO);
        assert_eq!(sql.message, "division by zero");
        let plain = from_datafusion(&DataFusionError::Plan("table 'x' not found".into()));
        assert_eq!(plain.message, "relation \"x\" does not exist");
        assert_eq!(plain.code, code::UNDEFINED_TABLE);
        let wrapped = DataFusionError::External(Box::new(SqlError::timed_out()));
        assert_eq!(from_datafusion(&wrapped).code, code::QUERY_CANCELED);
    }
}
