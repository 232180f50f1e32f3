//! 职能分析 (text) functions: similarity of Chinese duty texts and fuzzy
//! search.
//!
//! Three groups:
//! - Chinese-aware, on normalised text (NFKC, Traditional → Simplified,
//!   punctuation and whitespace dropped; see `normalize`): `zh_normalize`,
//!   `zh_tokens`, `text_sim` (set measures over bigrams or jieba words) and
//!   `func_similarity` (IDF-weighted cosine; the weights come from a corpus
//!   of duty texts, [`TokenWeights`]); `func_search`, a table function the
//!   engine registers, ranks documents by BM25 over the same tokens
//!   ([`SearchIndex`], [`SearchCorpus`]).
//! - PostgreSQL pg_trgm, same numbers as PostgreSQL 15 in a UTF-8
//!   database: `similarity`, `word_similarity`, `strict_word_similarity`,
//!   `show_trgm`, and `trgm_match` for the `%` operator.
//! - Edit measures over Unicode characters: `jaro_winkler`, and
//!   `levenshtein` with an optional bound, which deliberately replaces
//!   DataFusion's built-in of that name.
//!
//! Every function gives NULL for a NULL argument.

mod func_search;
mod func_similarity;
mod jaro_winkler;
mod levenshtein;
mod normalize;
mod saved_bytes;
mod search_index;
mod show_trgm;
mod similar_pairs;
mod similarity;
mod strict_word_similarity;
mod support;
mod text_sim;
mod token_weights;
mod trgm_match;
mod trigram;
mod trigram_word_chars;
mod word_similarity;
mod zh_normalize;
mod zh_tokens;

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ScalarUDF;

pub use func_search::{
    func_search_schema, search_document_schema, FuncSearchFunc, SearchCorpus, DEFAULT_TOP_K,
};
pub use func_similarity::{
    func_similarity_with_shared_weights, func_similarity_with_weights, FuncSimilarityFunc,
};
pub use jaro_winkler::JaroWinklerFunc;
pub use levenshtein::LevenshteinFunc;
pub use search_index::{DocumentTerms, SavedIndexError, SearchHit, SearchIndex, BM25_B, BM25_K1};
pub use show_trgm::ShowTrgmFunc;
pub use similar_pairs::{
    similar_pairs, similar_pairs_function, similar_pairs_with_memo, JoinOptions, PairRow,
    PairTokenMemo, SavedPairTokens, SavedTokensError, ScoredPair, SimilarPairsFunc,
};
pub use similarity::SimilarityFunc;
pub use strict_word_similarity::StrictWordSimilarityFunc;
pub use text_sim::TextSimFunc;
pub use token_weights::{CountsError, SharedTokenWeights, TokenWeights};
pub use trgm_match::TrgmMatchFunc;
pub use word_similarity::WordSimilarityFunc;
pub use zh_normalize::ZhNormalizeFunc;
pub use zh_tokens::ZhTokensFunc;

/// Every scalar function of this family; `func_similarity` with uniform
/// weights (see [`func_similarity_with_weights`] for corpus weights).
pub fn all_scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(ZhNormalizeFunc::new())),
        Arc::new(ScalarUDF::from(ZhTokensFunc::new())),
        Arc::new(ScalarUDF::from(TextSimFunc::new())),
        Arc::new(ScalarUDF::from(FuncSimilarityFunc::default())),
        Arc::new(ScalarUDF::from(SimilarityFunc::new())),
        Arc::new(ScalarUDF::from(WordSimilarityFunc::new())),
        Arc::new(ScalarUDF::from(StrictWordSimilarityFunc::new())),
        Arc::new(ScalarUDF::from(ShowTrgmFunc::new())),
        Arc::new(ScalarUDF::from(TrgmMatchFunc::new())),
        Arc::new(ScalarUDF::from(JaroWinklerFunc::new())),
        Arc::new(ScalarUDF::from(LevenshteinFunc::new())),
    ]
}

/// Registers the family; returns how many functions were registered.
/// `levenshtein` replaces DataFusion's built-in of the same name.
pub fn register(registry: &mut dyn FunctionRegistry) -> Result<usize> {
    let mut registered = 0;
    for function in all_scalar_udfs() {
        registry.register_udf(function)?;
        registered += 1;
    }
    Ok(registered)
}

#[cfg(test)]
mod tests;
