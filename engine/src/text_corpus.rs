//! The duty-text corpus behind `func_similarity`'s weights: every clause of
//! `org_duty` (duty_text) and every power item (`power_item.item_name`), read
//! when a data directory is opened. Tokens common in this corpus (负责, 全市,
//! 工作 …) weigh little because they are common here, not because a list says so.

use std::sync::Arc;

use bianzhi_udfs::text::TokenWeights;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::error::Result;

/// The SQL whose rows are the corpus documents.
pub const CORPUS_SQL: &str =
    "SELECT duty_text AS text FROM org_duty UNION ALL SELECT item_name AS text FROM power_item";

/// Document frequencies over the corpus, streamed batch by batch.
pub async fn corpus_weights(ctx: &SessionContext) -> Result<Arc<TokenWeights>> {
    let mut weights = TokenWeights::uniform();
    let mut stream = ctx.sql(CORPUS_SQL).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let column = cast(batch.column(0), &DataType::Utf8)?;
        let texts = column.as_string::<i32>();
        for row in 0..texts.len() {
            if texts.is_valid(row) {
                weights.add_text(texts.value(row));
            }
        }
    }
    Ok(Arc::new(weights))
}
