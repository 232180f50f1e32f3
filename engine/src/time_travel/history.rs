//! A Delta table's commits, read from its `_delta_log/<version>.json` files:
//! when each was made, by what operation, and how many rows it added and
//! removed. `table_history` shows them and `table_at(table, timestamp)`
//! resolves a time to a version with them, so the two always agree.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deltalake::logstore::{commit_uri_from_version, read_commit_entry};
use deltalake::{DeltaTable, ObjectMeta, ObjectStore};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

/// One commit of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub version: u64,
    /// The commit's time in milliseconds since the epoch: its
    /// `commitInfo.inCommitTimestamp`, else `commitInfo.timestamp` (the
    /// writer's clock when it committed; both travel with the log when a data
    /// directory is copied), else the commit file's modification time.
    pub committed_at_ms: i64,
    /// `commitInfo.operation`: `CREATE TABLE`, `WRITE`, `MERGE`, `OPTIMIZE` …
    pub operation: Option<String>,
    /// `commitInfo.operationParameters` as a JSON object, e.g. `{"mode":"Append"}`.
    pub parameters: Option<String>,
    /// `commitInfo.operationMetrics` as a JSON object: what the writer
    /// measured, e.g. `num_deleted_rows` of a DELETE.
    pub metrics: Option<String>,
    /// Data files the commit added (`add` actions) and removed (`remove` actions).
    pub files_added: u64,
    pub files_removed: u64,
    /// Rows in the files the commit added (their `numRecords` statistics, less
    /// rows a deletion vector hides); `None` when a file has no statistics.
    pub rows_added: Option<u64>,
    /// Rows in the files the commit removed, as an earlier commit added them;
    /// `None` when that commit is no longer in the log or had no statistics.
    pub rows_removed: Option<u64>,
    /// Rows in the table once the commit is applied: the running sum of
    /// `rows_added - rows_removed` from the first commit in the log; `None`
    /// from the first unknown count on, or when the log no longer starts at 0.
    pub row_count: Option<u64>,
}

impl Commit {
    pub fn committed_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.committed_at_ms)
    }
}

/// The versions whose commit files are in the table's log, oldest first, with
/// each file's metadata (its modification time is the fallback commit time).
pub async fn list_commits(table: &DeltaTable) -> deltalake::DeltaResult<Vec<(u64, ObjectMeta)>> {
    let store = table.object_store();
    let log = deltalake::Path::from("_delta_log");
    let mut commits: Vec<(u64, ObjectMeta)> = store
        .list(Some(&log))
        .try_filter_map(|meta| async move {
            Ok(commit_version(meta.location.as_ref()).map(|version| (version, meta)))
        })
        .try_collect()
        .await?;
    commits.sort_by_key(|(version, _)| *version);
    Ok(commits)
}

/// `_delta_log/00000000000000000012.json` → 12; anything else (checkpoints,
/// `_last_checkpoint`, temporary and staged commit files) → `None`.
fn commit_version(location: &str) -> Option<u64> {
    let name = location.strip_prefix("_delta_log/")?;
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every commit still in the log, oldest first.
pub async fn read_history(table: &DeltaTable) -> deltalake::DeltaResult<Vec<Commit>> {
    let commits = list_commits(table).await?;
    let store = table.object_store();
    let store: &dyn ObjectStore = store.as_ref();
    let first_is_zero = commits.first().is_some_and(|(version, _)| *version == 0);
    let entries: Vec<(u64, i64, Option<bytes::Bytes>)> =
        futures::stream::iter(commits.into_iter().map(|(version, meta)| async move {
            let bytes = read_commit_entry(store, version).await?;
            Ok::<_, deltalake::DeltaTableError>((
                version,
                meta.last_modified.timestamp_millis(),
                bytes,
            ))
        }))
        .buffered(8)
        .try_collect()
        .await?;
    // Rows of each live file by path, to count what a `remove` takes away.
    let mut file_rows: HashMap<String, Option<u64>> = HashMap::new();
    let mut row_count = first_is_zero.then_some(0u64);
    let mut history = Vec::with_capacity(entries.len());
    for (version, modified_ms, bytes) in entries {
        // Removed between listing and reading (log cleanup): not history any more.
        let Some(bytes) = bytes else { continue };
        let actions = CommitActions::parse(&bytes).map_err(|e| {
            deltalake::DeltaTableError::Generic(format!(
                "{}: {e}",
                commit_uri_from_version(Some(version))
            ))
        })?;
        let mut rows_removed = Some(0u64);
        for path in &actions.removed {
            let rows = file_rows.remove(path).flatten();
            rows_removed = rows_removed.zip(rows).map(|(sum, rows)| sum + rows);
        }
        let mut rows_added = Some(0u64);
        for (path, rows) in &actions.added {
            rows_added = rows_added.zip(*rows).map(|(sum, rows)| sum + rows);
            file_rows.insert(path.clone(), *rows);
        }
        row_count = match (row_count, rows_added, rows_removed) {
            (Some(count), Some(added), Some(removed)) => (count + added).checked_sub(removed),
            _ => None,
        };
        history.push(Commit {
            version,
            committed_at_ms: actions.timestamp_ms.unwrap_or(modified_ms),
            operation: actions.operation,
            parameters: actions.parameters,
            metrics: actions.metrics,
            files_added: actions.added.len() as u64,
            files_removed: actions.removed.len() as u64,
            rows_added,
            rows_removed,
            row_count,
        });
    }
    Ok(history)
}

/// What one commit file says, as far as history needs it.
#[derive(Debug, Default)]
struct CommitActions {
    timestamp_ms: Option<i64>,
    operation: Option<String>,
    parameters: Option<String>,
    metrics: Option<String>,
    /// (path, rows) of each `add`.
    added: Vec<(String, Option<u64>)>,
    /// path of each `remove`.
    removed: Vec<String>,
}

impl CommitActions {
    /// Parse newline-delimited actions; kinds other than commitInfo, add and
    /// remove (protocol, metaData, txn …) are skipped, whatever their shape.
    fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let mut out = CommitActions::default();
        for action in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
            let action = action?;
            if let Some(info) = action.get("commitInfo") {
                out.timestamp_ms = info
                    .get("inCommitTimestamp")
                    .and_then(Value::as_i64)
                    .or_else(|| info.get("timestamp").and_then(Value::as_i64));
                out.operation = info
                    .get("operation")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                out.parameters = info
                    .get("operationParameters")
                    .filter(|p| !p.is_null())
                    .map(Value::to_string);
                out.metrics = info
                    .get("operationMetrics")
                    .filter(|m| !m.is_null())
                    .map(Value::to_string);
            } else if let Some(add) = action.get("add") {
                if let Some(path) = add.get("path").and_then(Value::as_str) {
                    out.added.push((path.to_string(), file_rows(add)));
                }
            } else if let Some(remove) = action.get("remove") {
                if let Some(path) = remove.get("path").and_then(Value::as_str) {
                    out.removed.push(path.to_string());
                }
            }
        }
        Ok(out)
    }
}

/// Rows an `add` makes visible: `numRecords` of its statistics (a JSON text)
/// less the cardinality of its deletion vector.
fn file_rows(add: &Value) -> Option<u64> {
    let stats: Value = serde_json::from_str(add.get("stats")?.as_str()?).ok()?;
    let records = stats.get("numRecords")?.as_u64()?;
    let deleted = add
        .get("deletionVector")
        .and_then(|dv| dv.get("cardinality"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    records.checked_sub(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_top_level_commit_files_have_versions() {
        assert_eq!(
            commit_version("_delta_log/00000000000000000012.json"),
            Some(12)
        );
        assert_eq!(
            commit_version("_delta_log/00000000000000000010.checkpoint.parquet"),
            None
        );
        assert_eq!(commit_version("_delta_log/_last_checkpoint"), None);
        assert_eq!(
            commit_version("_delta_log/_commits/00000000000000000013.json"),
            None
        );
        assert_eq!(commit_version("_delta_log/_commit_1f3a.json.tmp"), None);
        assert_eq!(commit_version("part-0001.json"), None);
    }

    #[test]
    fn a_commit_file_gives_time_operation_files_and_rows() {
        let text = concat!(
            r#"{"commitInfo":{"timestamp":1700000000123,"operation":"WRITE","operationParameters":{"mode":"Overwrite"},"operationMetrics":{"num_added_rows":7}}}"#,
            "\n",
            r#"{"add":{"path":"a.parquet","stats":"{\"numRecords\":10}","deletionVector":{"cardinality":3}}}"#,
            "\n",
            r#"{"add":{"path":"b.parquet"}}"#,
            "\n",
            r#"{"remove":{"path":"old.parquet","dataChange":true}}"#,
            "\n",
            r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#,
            "\n"
        );
        let actions = CommitActions::parse(text.as_bytes()).unwrap();
        assert_eq!(actions.timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(actions.operation.as_deref(), Some("WRITE"));
        assert_eq!(
            actions.parameters.as_deref(),
            Some(r#"{"mode":"Overwrite"}"#)
        );
        assert_eq!(actions.metrics.as_deref(), Some(r#"{"num_added_rows":7}"#));
        assert_eq!(
            actions.added,
            vec![
                ("a.parquet".to_string(), Some(7)),
                ("b.parquet".to_string(), None)
            ]
        );
        assert_eq!(actions.removed, vec!["old.parquet".to_string()]);
    }

    #[test]
    fn in_commit_timestamps_win_over_the_writer_clock() {
        let text = r#"{"commitInfo":{"timestamp":5,"inCommitTimestamp":7}}"#;
        let actions = CommitActions::parse(text.as_bytes()).unwrap();
        assert_eq!(actions.timestamp_ms, Some(7));
        assert_eq!(actions.operation, None);
        assert!(CommitActions::parse(b"{not json").is_err());
    }
}
