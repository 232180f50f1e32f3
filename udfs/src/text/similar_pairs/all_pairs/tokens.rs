//! Tokenising the rows: every distinct text's weighted tokens as ranks
//! into one vocabulary, and a row spread over it for scoring.

use super::memo::{StoredToken, TokenStore};
use super::threads::on_chunks;
use super::PairRow;
use crate::text::func_similarity::{log_tf, sum_of_squares};
use crate::text::token_weights::TokenWeights;

/// Every row's distinct tokens as ranks into one vocabulary ordered like
/// `func_similarity`'s token lists (bigrams by packed value, then words as
/// strings), each with its weight `(1 + ln tf) · idf` in that row, and each
/// row's squared norm as `func_similarity` sums it.
pub(super) struct TokenizedRows {
    /// The corpus weight (idf) of each rank: ties in the token order.
    pub(super) rank_weights: Vec<f64>,
    /// Row `r`'s ranks, ascending, and their weights in that row:
    /// `tokens[offsets[r]..offsets[r + 1]]`, `token_weights[…]` alike.
    pub(super) tokens: Vec<u32>,
    pub(super) token_weights: Vec<f64>,
    pub(super) offsets: Vec<usize>,
    /// Where each row's words begin in `tokens` (its bigrams come first).
    pub(super) word_starts: Vec<usize>,
    pub(super) norms: Vec<f64>,
}

impl TokenizedRows {
    /// `rows` tokenised through `store` (only texts it does not hold yet
    /// are normalised and segmented), weighted by `weights`.
    pub(super) fn new(
        rows: &[PairRow<'_>],
        weights: &TokenWeights,
        threads: usize,
        store: &mut TokenStore,
    ) -> Self {
        let texts: Vec<&str> = rows.iter().map(|row| row.text).collect();
        let entries = store.entries_of(&texts, threads);
        let store = &*store;
        let RowVocabulary {
            rank_of,
            rank_weights,
            bigram_count,
        } = RowVocabulary::new(store, &entries, weights);
        let shares: Vec<&[u32]> = entries
            .chunks(entries.len().div_ceil(threads.max(1)).max(1))
            .collect();
        let weighted: Vec<WeightedShare> = on_chunks(shares, |share| {
            WeightedShare::new(share, store, &rank_of, &rank_weights, bigram_count)
        });
        let token_count: usize = weighted.iter().map(|share| share.tokens.len()).sum();
        let mut tokens = Vec::with_capacity(token_count);
        let mut token_weights = Vec::with_capacity(token_count);
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let mut word_starts = Vec::with_capacity(rows.len());
        let mut norms = Vec::with_capacity(rows.len());
        for share in weighted {
            let base = tokens.len();
            tokens.extend_from_slice(&share.tokens);
            token_weights.extend_from_slice(&share.token_weights);
            word_starts.extend(share.word_starts.iter().map(|start| base + start));
            offsets.extend(share.ends.iter().map(|end| base + end));
            norms.extend_from_slice(&share.norms);
        }
        Self {
            rank_weights,
            tokens,
            token_weights,
            offsets,
            word_starts,
            norms,
        }
    }

    pub(super) fn vocabulary_len(&self) -> usize {
        self.rank_weights.len()
    }

    pub(super) fn row_range(&self, row: u32) -> std::ops::Range<usize> {
        self.offsets[row as usize]..self.offsets[row as usize + 1]
    }

    pub(super) fn row_tokens(&self, row: u32) -> &[u32] {
        &self.tokens[self.row_range(row)]
    }
}

/// The vocabulary of some rows alone, ranked: bigrams by packed value, then
/// words as strings, the order `func_similarity` sums in. A row's tokens are
/// held in that order, so their ranks ascend.
struct RowVocabulary {
    /// The rank of each store token id the rows hold.
    rank_of: Vec<u32>,
    /// The corpus weight (idf) of each rank.
    rank_weights: Vec<f64>,
    /// Ranks below this are bigrams, the others words.
    bigram_count: u32,
}

impl RowVocabulary {
    fn new(store: &TokenStore, entries: &[u32], weights: &TokenWeights) -> Self {
        let mut used = vec![false; store.vocabulary.len()];
        for &entry in entries {
            for &token in store.entry(entry).0 {
                used[token as usize] = true;
            }
        }
        let mut bigrams: Vec<(u32, u64)> = Vec::new();
        let mut words: Vec<(u32, &str)> = Vec::new();
        for (id, token) in store.vocabulary.iter().enumerate() {
            if used[id] {
                match token {
                    StoredToken::Bigram(bigram) => bigrams.push((id as u32, *bigram)),
                    StoredToken::Word(word) => words.push((id as u32, word)),
                }
            }
        }
        bigrams.sort_unstable_by_key(|&(_, bigram)| bigram);
        words.sort_unstable_by_key(|&(_, word)| word);
        let mut rank_of = vec![u32::MAX; store.vocabulary.len()];
        for (rank, id) in bigrams
            .iter()
            .map(|(id, _)| id)
            .chain(words.iter().map(|(id, _)| id))
            .enumerate()
        {
            rank_of[*id as usize] = rank as u32;
        }
        let rank_weights = bigrams
            .iter()
            .map(|&(_, bigram)| weights.packed_bigram_weight(bigram))
            .chain(words.iter().map(|(_, word)| weights.word_weight(word)))
            .collect();
        Self {
            rank_of,
            rank_weights,
            bigram_count: bigrams.len() as u32,
        }
    }
}

/// A share of the rows as ranks with their weights in each row, and each
/// row's squared norm as `func_similarity` sums it.
struct WeightedShare {
    tokens: Vec<u32>,
    token_weights: Vec<f64>,
    /// Per row, where its words begin and where it ends in `tokens`.
    word_starts: Vec<usize>,
    ends: Vec<usize>,
    norms: Vec<f64>,
}

impl WeightedShare {
    fn new(
        entries: &[u32],
        store: &TokenStore,
        rank_of: &[u32],
        rank_weights: &[f64],
        bigram_count: u32,
    ) -> Self {
        let mut share = WeightedShare {
            tokens: Vec::new(),
            token_weights: Vec::new(),
            word_starts: Vec::with_capacity(entries.len()),
            ends: Vec::with_capacity(entries.len()),
            norms: Vec::with_capacity(entries.len()),
        };
        for &entry in entries {
            let start = share.tokens.len();
            let (ids, counts) = store.entry(entry);
            for (&id, &count) in ids.iter().zip(counts) {
                let rank = rank_of[id as usize];
                // The very weight `func_similarity` gives the token.
                share.tokens.push(rank);
                share
                    .token_weights
                    .push(log_tf(count) * rank_weights[rank as usize]);
            }
            let words_at =
                start + share.tokens[start..].partition_point(|&rank| rank < bigram_count);
            let row_weights = &share.token_weights[start..];
            let words_in_row = words_at - start;
            // Summed as `WeightedTokens` sums it: bigrams, then words, then
            // the two sums added.
            share.norms.push(
                sum_of_squares(row_weights[..words_in_row].iter().copied())
                    + sum_of_squares(row_weights[words_in_row..].iter().copied()),
            );
            share.word_starts.push(words_at);
            share.ends.push(share.tokens.len());
        }
        share
    }
}

/// One row's weights spread over the whole vocabulary (0 for tokens it lacks),
/// so that many partners can be scored against it without merging token
/// lists: one load per partner token, no unpredictable branches.
pub(super) struct ScatteredRow {
    pub(super) weights: Vec<f64>,
}

impl ScatteredRow {
    pub(super) fn new(vocabulary: usize) -> Self {
        Self {
            weights: vec![0.0; vocabulary],
        }
    }

    pub(super) fn load(&mut self, corpus: &TokenizedRows, row: u32) {
        let range = corpus.row_range(row);
        for (&token, &weight) in corpus.tokens[range.clone()]
            .iter()
            .zip(&corpus.token_weights[range])
        {
            self.weights[token as usize] = weight;
        }
    }

    pub(super) fn unload(&mut self, corpus: &TokenizedRows, row: u32) {
        for &token in corpus.row_tokens(row) {
            self.weights[token as usize] = 0.0;
        }
    }
}

impl TokenizedRows {
    /// `cosine(row, other)` with `row` loaded in `scattered`, bit for bit:
    /// walking `other`'s tokens in order adds the same products in the same
    /// order, and the products of tokens `row` lacks are `+0.0`, which
    /// leave a sum of positive terms unchanged.
    pub(super) fn cosine_scattered(&self, row: u32, scattered: &ScatteredRow, other: u32) -> f64 {
        let (first_norm, second_norm) = (self.norms[row as usize], self.norms[other as usize]);
        if first_norm <= 0.0 || second_norm <= 0.0 {
            return 0.0;
        }
        let range = self.row_range(other);
        let words_start = self.word_starts[other as usize];
        let dot_over = |range: std::ops::Range<usize>| {
            let mut dot = 0.0;
            for (&token, &weight) in self.tokens[range.clone()]
                .iter()
                .zip(&self.token_weights[range])
            {
                dot += scattered.weights[token as usize] * weight;
            }
            dot
        };
        let dot = dot_over(range.start..words_start) + dot_over(words_start..range.end);
        (dot / (first_norm * second_norm).sqrt()).min(1.0)
    }
}
