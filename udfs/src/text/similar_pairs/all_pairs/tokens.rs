//! Tokenising the rows: every distinct text's weighted tokens as ranks
//! into one vocabulary, and a row spread over it for scoring.

use datafusion::common::HashMap;

use super::threads::on_chunks;
use super::PairRow;
use crate::text::func_similarity::WeightedTokens;
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

/// Weighted tokens of a contiguous chunk of rows, with chunk-local word ids
/// (so that the words of a million rows are not a million string vectors).
pub(super) struct ChunkTokens {
    pub(super) bigrams: Vec<(u64, f64)>,
    /// The chunk's distinct bigrams, sorted.
    pub(super) bigram_set: Vec<u64>,
    pub(super) bigram_offsets: Vec<usize>,
    pub(super) words: Vec<(u32, f64)>,
    pub(super) word_offsets: Vec<usize>,
    pub(super) word_names: Vec<String>,
    pub(super) norms: Vec<f64>,
}

impl ChunkTokens {
    pub(super) fn new(rows: &[PairRow<'_>], weights: &TokenWeights) -> Self {
        let mut chunk = ChunkTokens {
            bigrams: Vec::new(),
            bigram_set: Vec::new(),
            bigram_offsets: vec![0],
            words: Vec::new(),
            word_offsets: vec![0],
            word_names: Vec::new(),
            norms: Vec::with_capacity(rows.len()),
        };
        let mut word_ids: HashMap<String, u32> = HashMap::new();
        for row in rows {
            // The very vectors `func_similarity` scores.
            let weighted = WeightedTokens::new(row.text, weights);
            chunk.bigrams.extend_from_slice(weighted.bigrams());
            chunk.bigram_offsets.push(chunk.bigrams.len());
            for (word, weight) in weighted.words() {
                let id = match word_ids.get(word.as_str()) {
                    Some(&id) => id,
                    None => {
                        let id = word_ids.len() as u32;
                        word_ids.insert(word.clone(), id);
                        chunk.word_names.push(word.clone());
                        id
                    }
                };
                chunk.words.push((id, *weight));
            }
            chunk.word_offsets.push(chunk.words.len());
            chunk.norms.push(weighted.squared_norm());
        }
        chunk.bigram_set = chunk.bigrams.iter().map(|(bigram, _)| *bigram).collect();
        chunk.bigram_set.sort_unstable();
        chunk.bigram_set.dedup();
        chunk
    }

    /// The chunk's tokens as ranks in the corpus vocabulary (bigrams, then
    /// words, each sorted).
    pub(super) fn ranks(
        &self,
        bigram_ranks: &HashMap<u64, u32>,
        word_vocabulary: &[&str],
    ) -> ChunkRanks {
        let bigram_count = bigram_ranks.len() as u32;
        let word_ranks: Vec<u32> = self
            .word_names
            .iter()
            .map(|word| {
                bigram_count + word_vocabulary.partition_point(|w| w < &word.as_str()) as u32
            })
            .collect();
        let mut ranks = ChunkRanks {
            tokens: Vec::with_capacity(self.bigrams.len() + self.words.len()),
            token_weights: Vec::with_capacity(self.bigrams.len() + self.words.len()),
            word_starts: Vec::with_capacity(self.norms.len()),
            ends: Vec::with_capacity(self.norms.len()),
        };
        for row in 0..self.norms.len() {
            // Sorted bigrams map to ascending ranks, and so do words sorted
            // as strings: the order `func_similarity` sums in.
            for &(bigram, weight) in
                &self.bigrams[self.bigram_offsets[row]..self.bigram_offsets[row + 1]]
            {
                // Every bigram of the chunk is in the vocabulary.
                ranks
                    .tokens
                    .push(bigram_ranks.get(&bigram).copied().unwrap_or(bigram_count));
                ranks.token_weights.push(weight);
            }
            ranks.word_starts.push(ranks.tokens.len());
            for &(id, weight) in &self.words[self.word_offsets[row]..self.word_offsets[row + 1]] {
                ranks.tokens.push(word_ranks[id as usize]);
                ranks.token_weights.push(weight);
            }
            ranks.ends.push(ranks.tokens.len());
        }
        ranks
    }
}

/// One chunk's rows as corpus ranks: `ChunkTokens::ranks`.
pub(super) struct ChunkRanks {
    pub(super) tokens: Vec<u32>,
    pub(super) token_weights: Vec<f64>,
    /// Per row, where its words begin and where it ends in `tokens`.
    pub(super) word_starts: Vec<usize>,
    pub(super) ends: Vec<usize>,
}

impl TokenizedRows {
    pub(super) fn new(rows: &[PairRow<'_>], weights: &TokenWeights, threads: usize) -> Self {
        let chunk_len = rows.len().div_ceil(threads.max(1)).max(1);
        let chunks: Vec<ChunkTokens> = on_chunks(rows.chunks(chunk_len).collect(), |chunk| {
            ChunkTokens::new(chunk, weights)
        });
        // Each chunk's distinct bigrams are sorted on its thread; merging
        // those sets leaves only the vocabulary to sort here.
        let mut bigram_vocabulary: Vec<u64> = chunks
            .iter()
            .flat_map(|c| c.bigram_set.iter().copied())
            .collect();
        bigram_vocabulary.sort_unstable();
        bigram_vocabulary.dedup();
        let mut word_vocabulary: Vec<&str> = chunks
            .iter()
            .flat_map(|c| c.word_names.iter().map(String::as_str))
            .collect();
        word_vocabulary.sort_unstable();
        word_vocabulary.dedup();
        let rank_weights: Vec<f64> = bigram_vocabulary
            .iter()
            .map(|&bigram| weights.packed_bigram_weight(bigram))
            .chain(word_vocabulary.iter().map(|word| weights.word_weight(word)))
            .collect();
        // A bigram's rank by hashing: a search of the sorted vocabulary per
        // occurrence missed the cache at every step.
        let bigram_ranks: HashMap<u64, u32> = bigram_vocabulary
            .iter()
            .enumerate()
            .map(|(rank, &bigram)| (bigram, rank as u32))
            .collect();
        let ranked: Vec<ChunkRanks> = on_chunks(chunks.iter().collect(), |chunk| {
            chunk.ranks(&bigram_ranks, &word_vocabulary)
        });
        let token_count: usize = ranked.iter().map(|c| c.tokens.len()).sum();
        let mut tokens = Vec::with_capacity(token_count);
        let mut token_weights = Vec::with_capacity(token_count);
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let mut word_starts = Vec::with_capacity(rows.len());
        for (chunk, ranks) in chunks.iter().zip(&ranked) {
            let base = tokens.len();
            tokens.extend_from_slice(&ranks.tokens);
            token_weights.extend_from_slice(&ranks.token_weights);
            for row in 0..chunk.norms.len() {
                word_starts.push(base + ranks.word_starts[row]);
                offsets.push(base + ranks.ends[row]);
            }
        }
        let norms = chunks.into_iter().flat_map(|c| c.norms).collect();
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
