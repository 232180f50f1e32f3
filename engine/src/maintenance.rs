//! Table maintenance: compaction of small files into larger ones (each
//! compaction is one commit; readers see the same rows before and after),
//! and vacuum of data files no version newer than the retention period
//! still needs (after which time travel cannot reach back past it).

use bianzhi_catalog::DataDir;

use crate::error::Result;

/// What `bianzhi compact` did to one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Compaction {
    pub table: String,
    pub files_removed: u64,
    pub files_added: u64,
    /// The version after the compaction (`None`: nothing to do, no commit).
    pub version: Option<u64>,
}

/// What `bianzhi vacuum` did to one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Vacuum {
    pub table: String,
    /// Data files deleted (or that would be, in a dry run).
    pub files: usize,
    pub dry_run: bool,
}

/// The tables named, or every table of the catalog when none are.
fn tables(data: &DataDir, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(data
            .catalog()
            .tables()
            .iter()
            .map(|t| t.qualified_name())
            .collect());
    }
    names
        .iter()
        .map(|name| Ok(data.catalog().table(name)?.qualified_name()))
        .collect()
}

fn delta_error(table: &str, error: deltalake::DeltaTableError) -> crate::error::Error {
    bianzhi_catalog::Error::Delta {
        table: table.to_string(),
        source: Box::new(error),
    }
    .into()
}

/// Rewrites the small files of each table into files of about
/// `target_bytes` (deltalake's default of 100 MiB when `None`).
pub async fn compact(
    data: &DataDir,
    names: &[String],
    target_bytes: Option<u64>,
) -> Result<Vec<Compaction>> {
    let mut done = Vec::new();
    for table in tables(data, names)? {
        let delta = data.load(&table).await?;
        if delta.version().is_none() {
            continue;
        }
        let before = delta.version();
        let mut builder = delta.optimize();
        if let Some(target) = target_bytes.and_then(std::num::NonZeroU64::new) {
            builder = builder.with_target_size(target);
        }
        let (after, metrics) = builder.await.map_err(|e| delta_error(&table, e))?;
        tracing::info!(%table, removed = metrics.num_files_removed, added = metrics.num_files_added, "compacted");
        done.push(Compaction {
            table,
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
            version: (after.version() != before)
                .then(|| after.version())
                .flatten(),
        });
    }
    Ok(done)
}

/// Deletes the data files of each table that no version committed within
/// the last `retention_hours` needs. Below the table's retention setting
/// (7 days by default) only when `force` is set: versions older than the
/// retention can then no longer be read with `table_at`.
pub async fn vacuum(
    data: &DataDir,
    names: &[String],
    retention_hours: Option<u32>,
    force: bool,
    dry_run: bool,
) -> Result<Vec<Vacuum>> {
    let mut done = Vec::new();
    for table in tables(data, names)? {
        let delta = data.load(&table).await?;
        if delta.version().is_none() {
            continue;
        }
        let mut builder = delta
            .vacuum()
            .with_dry_run(dry_run)
            .with_enforce_retention_duration(!force);
        if let Some(hours) = retention_hours {
            builder = builder.with_retention_period(chrono::Duration::hours(i64::from(hours)));
        }
        let (_, metrics) = builder.await.map_err(|e| delta_error(&table, e))?;
        tracing::info!(%table, files = metrics.files_deleted.len(), dry_run, "vacuumed");
        done.push(Vacuum {
            table,
            files: metrics.files_deleted.len(),
            dry_run,
        });
    }
    Ok(done)
}
