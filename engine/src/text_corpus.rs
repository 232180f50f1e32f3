//! The duty-text corpus behind `func_similarity`'s weights: every clause of
//! `org_duty` (duty_text) and every power item (`power_item.item_name`), read
//! when a data directory is opened. Tokens common in this corpus (负责, 全市,
//! 工作 …) weigh little because they are common here, not because a list says so.

use std::sync::Arc;

use bianzhi_udfs::text::TokenWeights;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::error::Result;

/// The SQL whose rows are the corpus documents.
pub const CORPUS_SQL: &str =
    "SELECT duty_text AS text FROM org_duty UNION ALL SELECT item_name AS text FROM power_item";

/// Document frequencies over the corpus, counted on all cores: each thread
/// counts a share of the texts and the counts are added up (the same numbers
/// as one pass, in any order).
pub async fn corpus_weights(ctx: &SessionContext) -> Result<Arc<TokenWeights>> {
    let mut texts = Vec::new();
    for batch in ctx.sql(CORPUS_SQL).await?.collect().await? {
        texts.push(cast(batch.column(0), &DataType::Utf8)?);
    }
    let weights = tokio::task::spawn_blocking(move || count_documents(&texts))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Arc::new(weights))
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
