//! The duty-text corpus behind `func_similarity`'s weights: every clause of
//! `org_duty` (duty_text) and every power item (`power_item.item_name`), read
//! when a data directory is opened. Tokens common in this corpus (负责, 全市,
//! 工作 …) weigh little because they are common here, not because a list says so.
//!
//! Counting tokenises every text (seconds at a million), so the counts are
//! saved beside the tables and read back at the next open while the
//! tables' Delta versions and the tokenizer are the ones they were counted
//! from.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use bianzhi_udfs::text::TokenWeights;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use url::Url;

use crate::error::Result;
use crate::export::{AtomicFile, ExportError};

/// The tables the corpus is read from, whose versions key the saved counts.
pub const CORPUS_TABLES: [&str; 2] = ["org_duty", "power_item"];

/// The SQL whose rows are the corpus documents.
pub const CORPUS_SQL: &str =
    "SELECT duty_text AS text FROM org_duty UNION ALL SELECT item_name AS text FROM power_item";

/// The file the counts are saved in, in a local data directory's root: a
/// file, so never taken for a table.
pub const SAVED_COUNTS_FILE: &str = ".bianzhi_token_counts";

/// Document frequencies over the corpus, counted on all cores: each thread
/// counts a share of the texts and the counts are added up (the same numbers
/// as one pass, in any order).
///
/// `versions` are the Delta versions of the corpus tables, read before their
/// rows: saved counts are taken only for the same versions, so counts saved
/// from newer rows than their versions say are counted again, never the
/// other way round. Saving is best effort: a read-only directory only costs
/// the next open a count.
pub async fn corpus_weights(
    ctx: &SessionContext,
    root: &Url,
    versions: &[Option<u64>],
) -> Result<Arc<TokenWeights>> {
    let key = saved_counts_key(versions);
    let path = root
        .to_file_path()
        .ok()
        .map(|dir| dir.join(SAVED_COUNTS_FILE));
    if let Some(path) = &path {
        if let Some(weights) = read_saved_counts(path, &key).await {
            tracing::debug!(path = %path.display(), documents = weights.documents(), "corpus token counts read");
            return Ok(Arc::new(weights));
        }
    }
    let mut texts = Vec::new();
    for batch in ctx.sql(CORPUS_SQL).await?.collect().await? {
        texts.push(cast(batch.column(0), &DataType::Utf8)?);
    }
    let weights = tokio::task::spawn_blocking(move || {
        let weights = count_documents(&texts);
        if let Some(path) = path {
            save_counts(&path, &key, &weights);
        }
        weights
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Arc::new(weights))
}

/// The first line of the saved counts: what they were counted from.
fn saved_counts_key(versions: &[Option<u64>]) -> String {
    let versions: Vec<String> = versions
        .iter()
        .map(|version| version.map_or_else(|| "-".to_string(), |v| v.to_string()))
        .collect();
    format!(
        "tokenizer {:016x} versions {}",
        TokenWeights::tokenizer_fingerprint(),
        versions.join(" ")
    )
}

/// The saved counts, if they are there, whole and of `key`.
async fn read_saved_counts(path: &Path, key: &str) -> Option<TokenWeights> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    let (first, counts) = text.split_once('\n')?;
    if first != key {
        tracing::debug!(path = %path.display(), "saved corpus token counts are of other versions");
        return None;
    }
    match TokenWeights::from_counts_text(counts) {
        Ok(weights) => Some(weights),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "saved corpus token counts unreadable; counting again");
            None
        }
    }
}

/// Saves the counts under `key`, whole or not at all (an [`AtomicFile`]:
/// written aside, then renamed over the old file).
fn save_counts(path: &Path, key: &str, weights: &TokenWeights) {
    let Some(counts) = weights.to_counts_text() else {
        tracing::debug!("a corpus word holds a tab or line break; token counts not saved");
        return;
    };
    let saved = AtomicFile::create(path).and_then(|mut file| {
        file.write_all(format!("{key}\n{counts}").as_bytes())
            .map_err(|source| ExportError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        file.commit()
    });
    if let Err(error) = saved {
        tracing::warn!(%error, "could not save the corpus token counts");
    }
}

fn count_documents(columns: &[ArrayRef]) -> TokenWeights {
    let texts: Vec<&str> = columns
        .iter()
        .flat_map(|column| {
            let texts = column.as_string::<i32>();
            (0..texts.len())
                .filter(|&row| texts.is_valid(row))
                .map(move |row| texts.value(row))
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = texts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let counters: Vec<_> = texts
            .chunks(chunk)
            .map(|share| scope.spawn(move || TokenWeights::from_texts(share.iter().copied())))
            .collect();
        let mut weights = TokenWeights::uniform();
        for counter in counters {
            match counter.join() {
                Ok(counted) => weights.merge(&counted),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        weights
    })
}

#[cfg(test)]
mod tests {
    use super::SAVED_COUNTS_FILE;
    use crate::engine::Engine;

    async fn add_duty(location: &str, duty_id: i64, text: &str) {
        let engine = Engine::open(location).await.unwrap();
        let sql = format!(
            "INSERT INTO org_duty (duty_id, org_id, version_year, seq, duty_text, valid_from) \
             VALUES ({duty_id}, 1, 2024, {duty_id}, '{text}', DATE '2024-01-01')"
        );
        engine
            .session()
            .unwrap()
            .sql(&sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
    }

    async fn documents_at_open(location: &str) -> u64 {
        Engine::open(location)
            .await
            .unwrap()
            .text_weights()
            .documents()
    }

    #[tokio::test]
    async fn counts_are_saved_read_back_and_counted_again_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        add_duty(location, 1, "负责全市档案工作").await;
        add_duty(location, 2, "組織實施交通管理").await;
        let counted = Engine::open(location).await.unwrap().text_weights();
        assert_eq!(counted.documents(), 2);
        let saved = dir.path().join(SAVED_COUNTS_FILE);
        let text = std::fs::read_to_string(&saved).unwrap();
        assert_eq!(
            Engine::open(location).await.unwrap().text_weights(),
            counted
        );
        // What the next open takes is the saved file: an edit there shows.
        std::fs::write(&saved, text.replacen("documents\t2", "documents\t7", 1)).unwrap();
        assert_eq!(documents_at_open(location).await, 7);
        // A write makes a new table version: counted again and saved again.
        add_duty(location, 3, "负责全市价格工作").await;
        assert_eq!(documents_at_open(location).await, 3);
        let text = std::fs::read_to_string(&saved).unwrap();
        assert!(text.contains("\ndocuments\t3\n"), "{text}");
        // Unreadable counts are counted again, not an error.
        std::fs::write(&saved, text.replacen("documents\t3", "documents\tthree", 1)).unwrap();
        assert_eq!(documents_at_open(location).await, 3);
        assert!(std::fs::read_to_string(&saved)
            .unwrap()
            .contains("\ndocuments\t3\n"));
    }
}
