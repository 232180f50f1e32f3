//! The exact all-pairs join behind `similar_pairs`: every pair of texts whose
//! `func_similarity` reaches a threshold, without comparing every pair.
//!
//! The measure is the cosine of weighted token vectors: token `t` weighs
//! `x_t = (1 + ln tf) · idf` in text `x`, and with unit vectors
//! `x̂ = x / |x|` the score is `Σ x̂_t ŷ_t`. Following Bayardo, Ma and
//! Srikant, "Scaling up all pairs similarity search" (WWW 2007), and the
//! prefix filter of PPJoin:
//!
//! - **Prefix filter.** Within a group (partition), tokens are put in one
//!   order: rarest in the group first, then heaviest. A row's *prefix* is
//!   its shortest leading run of tokens after which the rest of the row
//!   cannot bring any partner to the threshold: the rest contributes at most
//!   `|x̂_rest|` (Cauchy–Schwarz, as partners are unit vectors) and at most
//!   `Σ_rest x̂_t · m_t`, where `m_t` is the largest unit weight of `t` in
//!   the group. Two matching rows share a token inside both prefixes: the
//!   first token they share, because if it lay outside a row's prefix every
//!   shared token would, and the score would stay below the threshold. Each
//!   row is indexed under its prefix tokens and looks up the earlier rows
//!   indexed under the same tokens.
//! - **Size filter.** `Σ x̂_t ŷ_t ≤ max_t x̂_t · Σ_t ŷ_t`, both ways round,
//!   drops candidates before they are scored.
//! - **Score accumulation.** While a row's prefix tokens are looked up, the
//!   products of the shared tokens found are summed. A shared token not
//!   found lies at or past the end of one of the two prefixes, so a
//!   candidate whose sum plus the product of both rows' unit lengths from
//!   there (Cauchy–Schwarz) falls short is dropped unscored.
//! - **Verification.** Every remaining candidate is scored with the very
//!   weights and the same arithmetic, in the same order, as
//!   `func_similarity` (see `WeightedTokens`), so the scores are
//!   bit-identical and the pair set is exactly the brute-force one; scoring
//!   stops early once the products so far plus both rows' remaining unit
//!   lengths cannot reach the threshold.
//! - **Copies.** Identical texts (same side, same group) are joined once and
//!   their matches given to every copy.
//!
//! The bounds are loosened by a relative `1e-9` so that rounding in the
//! filters can only let more candidates through, never fewer. Tokenising and
//! probing run on all cores (`std::thread::scope`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::text::func_similarity::WeightedTokens;
use crate::text::token_weights::TokenWeights;

/// Relative slack of the filter bounds: rounding errors of sums of a few
/// hundred squared weights are far below it.
const SLACK: f64 = 1e-9;

/// Rows probed per work item: small enough to balance the threads (later
/// rows have longer candidate lists), large enough to keep the counter cold.
const PROBE_BLOCK: usize = 64;

/// One row to join. Rows are only paired within one `group` (the partition).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairRow<'a> {
    pub id: i64,
    pub group: u32,
    pub text: &'a str,
}

/// One result: ids of the left and right rows and their `func_similarity`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub left_id: i64,
    pub right_id: i64,
    pub score: f64,
}

/// What to join and how.
#[derive(Debug, Clone, Copy)]
pub struct JoinOptions {
    /// Pairs scoring at least this, in (0, 1].
    pub threshold: f64,
    /// Keep only the best `k` matches of each left id.
    pub top_k: Option<usize>,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

/// All pairs of `left` × `right` (or of `left` with itself when `right` is
/// `None`) in the same group whose `func_similarity` under `weights` is at
/// least `options.threshold`.
///
/// Self-join: each unordered pair of rows once, as `left_id < right_id`; rows
/// with equal ids are not paired. With `top_k` the self-join gives each row's
/// best `k` neighbours instead, so a pair can appear in both orientations.
/// Results are sorted by left id, then (with `top_k`) by decreasing score,
/// then by right id.
pub fn similar_pairs(
    left: &[PairRow<'_>],
    right: Option<&[PairRow<'_>]>,
    weights: &TokenWeights,
    options: &JoinOptions,
) -> Vec<ScoredPair> {
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        threads => threads,
    };
    let rows: Vec<PairRow<'_>> = left.iter().chain(right.unwrap_or(&[])).copied().collect();
    let side_of = |row: usize| u8::from(right.is_some() && row >= left.len());
    // Identical texts on one side of one group have identical vectors, so
    // identical scores with everything: join one of each (the distinct
    // rows) and give its matches to all its copies afterwards.
    let mut distinct_of: HashMap<(u8, u32, &str), u32> = HashMap::new();
    let mut distinct: Vec<PairRow<'_>> = Vec::new();
    let mut copies: Vec<Vec<u32>> = Vec::new();
    for (row, item) in rows.iter().enumerate() {
        let next = distinct.len() as u32;
        let index = *distinct_of
            .entry((side_of(row), item.group, item.text))
            .or_insert(next);
        if index == next {
            distinct.push(*item);
            copies.push(Vec::new());
        }
        copies[index as usize].push(row as u32);
    }
    let started = std::time::Instant::now();
    let corpus = TokenizedRows::new(&distinct, weights, threads);
    tracing::debug!(
        rows = rows.len(),
        distinct = distinct.len(),
        seconds = started.elapsed().as_secs_f64(),
        "similar_pairs: tokenised"
    );
    let sides: Vec<u8> = copies
        .iter()
        .map(|rows_of| side_of(rows_of[0] as usize))
        .collect();
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
    for (row, item) in distinct.iter().enumerate() {
        if corpus.norms[row] > 0.0 {
            groups.entry(item.group).or_default().push(row as u32);
        }
    }
    let mut groups: Vec<(u32, Vec<u32>)> = groups.into_iter().collect();
    groups.sort_unstable_by_key(|(group, _)| *group);
    let two_sided = right.is_some();
    let mut scratch = GroupScratch::new(corpus.vocabulary_len());
    let mut distinct_matches = Vec::new();
    for (_, members) in groups {
        let group = GroupIndex::new(
            &corpus,
            members,
            &sides,
            two_sided,
            options.threshold,
            &mut scratch,
        );
        group.probe(&corpus, options.threshold, threads, &mut distinct_matches);
    }
    tracing::debug!(
        distinct_matches = distinct_matches.len(),
        seconds = started.elapsed().as_secs_f64(),
        "similar_pairs: joined"
    );
    let matches = with_copies(
        &corpus,
        &copies,
        distinct_matches,
        two_sided,
        options.threshold,
    );
    tracing::debug!(
        matches = matches.len(),
        seconds = started.elapsed().as_secs_f64(),
        "similar_pairs: copies added"
    );
    let left_len = right.map(|_| left.len());
    finish(&rows, left_len, matches, options.top_k)
}

/// The matches of distinct texts as matches of rows: every copy of one
/// text with every copy of the other, and (in a self-join) the copies of one
/// text with each other, scored as `func_similarity` scores a text with
/// itself.
fn with_copies(
    corpus: &TokenizedRows,
    copies: &[Vec<u32>],
    distinct_matches: Vec<(u32, u32, f64)>,
    two_sided: bool,
    threshold: f64,
) -> Vec<(u32, u32, f64)> {
    if copies.iter().all(|rows| rows.len() == 1) {
        return distinct_matches
            .into_iter()
            .map(|(a, b, score)| (copies[a as usize][0], copies[b as usize][0], score))
            .collect();
    }
    let mut matches = Vec::with_capacity(distinct_matches.len());
    for (a, b, score) in distinct_matches {
        for &first in &copies[a as usize] {
            for &second in &copies[b as usize] {
                matches.push((first, second, score));
            }
        }
    }
    if !two_sided {
        for (text, rows) in copies.iter().enumerate() {
            if rows.len() < 2 {
                continue;
            }
            let score = corpus.cosine(text as u32, text as u32);
            if score < threshold {
                continue;
            }
            for (index, &first) in rows.iter().enumerate() {
                for &second in &rows[index + 1..] {
                    matches.push((first, second, score));
                }
            }
        }
    }
    matches
}

/// Orients, filters and orders the matches of row pairs.
fn finish(
    rows: &[PairRow<'_>],
    left_len: Option<usize>,
    matches: Vec<(u32, u32, f64)>,
    top_k: Option<usize>,
) -> Vec<ScoredPair> {
    let mut pairs = Vec::with_capacity(matches.len());
    for (first_row, second_row, score) in matches {
        let (first, second) = (rows[first_row as usize].id, rows[second_row as usize].id);
        if let Some(left_len) = left_len {
            // Either row of the pair may be the left one.
            let (left_id, right_id) = if (first_row as usize) < left_len {
                (first, second)
            } else {
                (second, first)
            };
            pairs.push(ScoredPair {
                left_id,
                right_id,
                score,
            });
        } else if first != second {
            let (low, high) = (first.min(second), first.max(second));
            pairs.push(ScoredPair {
                left_id: low,
                right_id: high,
                score,
            });
            if top_k.is_some() {
                pairs.push(ScoredPair {
                    left_id: high,
                    right_id: low,
                    score,
                });
            }
        }
    }
    match top_k {
        None => {
            pairs.sort_unstable_by(|a, b| {
                (a.left_id, a.right_id)
                    .cmp(&(b.left_id, b.right_id))
                    .then(a.score.total_cmp(&b.score))
            });
            pairs
        }
        Some(k) => {
            pairs.sort_unstable_by(|a, b| {
                a.left_id
                    .cmp(&b.left_id)
                    .then(b.score.total_cmp(&a.score))
                    .then(a.right_id.cmp(&b.right_id))
            });
            let mut kept = Vec::new();
            let mut run = 0;
            for (index, pair) in pairs.iter().enumerate() {
                run = if index > 0 && pairs[index - 1].left_id == pair.left_id {
                    run + 1
                } else {
                    0
                };
                if run < k {
                    kept.push(*pair);
                }
            }
            kept
        }
    }
}

/// Every row's distinct tokens as ranks into one vocabulary ordered like
/// `func_similarity`'s token lists (bigrams by packed value, then words as
/// strings), each with its weight `(1 + ln tf) · idf` in that row, and each
/// row's squared norm as `func_similarity` sums it.
struct TokenizedRows {
    /// Ranks below this are bigrams, the others words.
    bigram_count: u32,
    /// The corpus weight (idf) of each rank: ties in the token order.
    rank_weights: Vec<f64>,
    /// Row `r`'s ranks, ascending, and their weights in that row:
    /// `tokens[offsets[r]..offsets[r + 1]]`, `token_weights[…]` alike.
    tokens: Vec<u32>,
    token_weights: Vec<f64>,
    offsets: Vec<usize>,
    norms: Vec<f64>,
    /// For each token of a row, the length of the row's unit vector from
    /// that token on (`√(Σ_{j ≥ i} w_j²) / |x|`), and 0 after the last:
    /// what the rest of a row can still add to a cosine.
    rest_lengths: Vec<f64>,
}

/// Weighted tokens of a contiguous chunk of rows, with chunk-local word ids
/// (so that the words of a million rows are not a million string vectors).
struct ChunkTokens {
    bigrams: Vec<(u64, f64)>,
    bigram_offsets: Vec<usize>,
    words: Vec<(u32, f64)>,
    word_offsets: Vec<usize>,
    word_names: Vec<String>,
    norms: Vec<f64>,
}

impl ChunkTokens {
    fn new(rows: &[PairRow<'_>], weights: &TokenWeights) -> Self {
        let mut chunk = ChunkTokens {
            bigrams: Vec::new(),
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
                let next = word_ids.len() as u32;
                let id = *word_ids.entry(word.clone()).or_insert(next);
                if id == next {
                    chunk.word_names.push(word.clone());
                }
                chunk.words.push((id, *weight));
            }
            chunk.word_offsets.push(chunk.words.len());
            chunk.norms.push(weighted.squared_norm());
        }
        chunk
    }
}

impl TokenizedRows {
    fn new(rows: &[PairRow<'_>], weights: &TokenWeights, threads: usize) -> Self {
        let chunk_len = rows.len().div_ceil(threads.max(1)).max(1);
        let chunks: Vec<ChunkTokens> = std::thread::scope(|scope| {
            let handles: Vec<_> = rows
                .chunks(chunk_len)
                .map(|chunk| scope.spawn(move || ChunkTokens::new(chunk, weights)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        });
        let mut bigram_vocabulary: Vec<u64> = chunks
            .iter()
            .flat_map(|c| c.bigrams.iter().map(|(bigram, _)| *bigram))
            .collect();
        bigram_vocabulary.sort_unstable();
        bigram_vocabulary.dedup();
        let mut word_vocabulary: Vec<&str> = chunks
            .iter()
            .flat_map(|c| c.word_names.iter().map(String::as_str))
            .collect();
        word_vocabulary.sort_unstable();
        word_vocabulary.dedup();
        let bigram_count = bigram_vocabulary.len() as u32;
        let rank_weights: Vec<f64> = bigram_vocabulary
            .iter()
            .map(|&bigram| weights.packed_bigram_weight(bigram))
            .chain(word_vocabulary.iter().map(|word| weights.word_weight(word)))
            .collect();
        let token_count: usize = chunks.iter().map(|c| c.bigrams.len() + c.words.len()).sum();
        let mut tokens = Vec::with_capacity(token_count);
        let mut token_weights = Vec::with_capacity(token_count);
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let mut norms = Vec::with_capacity(rows.len());
        for chunk in &chunks {
            let word_ranks: Vec<u32> = chunk
                .word_names
                .iter()
                .map(|word| {
                    bigram_count + word_vocabulary.partition_point(|w| w < &word.as_str()) as u32
                })
                .collect();
            for row in 0..chunk.norms.len() {
                // Sorted bigrams map to ascending ranks, and so do words
                // sorted as strings: the order `func_similarity` sums in.
                for &(bigram, weight) in
                    &chunk.bigrams[chunk.bigram_offsets[row]..chunk.bigram_offsets[row + 1]]
                {
                    tokens.push(bigram_vocabulary.partition_point(|v| *v < bigram) as u32);
                    token_weights.push(weight);
                }
                for &(id, weight) in
                    &chunk.words[chunk.word_offsets[row]..chunk.word_offsets[row + 1]]
                {
                    tokens.push(word_ranks[id as usize]);
                    token_weights.push(weight);
                }
                norms.push(chunk.norms[row]);
                offsets.push(tokens.len());
            }
        }
        let mut rest_lengths = vec![0.0; tokens.len()];
        for row in 0..norms.len() {
            let (range, length) = (offsets[row]..offsets[row + 1], norms[row].sqrt());
            if length > 0.0 {
                fill_rest_lengths(
                    &token_weights[range.clone()],
                    length,
                    &mut rest_lengths[range],
                );
            }
        }
        Self {
            bigram_count,
            rank_weights,
            tokens,
            token_weights,
            offsets,
            norms,
            rest_lengths,
        }
    }

    fn vocabulary_len(&self) -> usize {
        self.rank_weights.len()
    }

    fn row_range(&self, row: u32) -> std::ops::Range<usize> {
        self.offsets[row as usize]..self.offsets[row as usize + 1]
    }

    fn row_tokens(&self, row: u32) -> &[u32] {
        &self.tokens[self.row_range(row)]
    }

    /// `WeightedTokens::cosine`, term for term: products of shared bigrams
    /// summed in order, of shared words in order, the two sums added.
    fn cosine(&self, first: u32, second: u32) -> f64 {
        self.cosine_reaching(first, second, f64::NEG_INFINITY)
            .unwrap_or(0.0)
    }
}

impl TokenizedRows {
    /// `cosine(first, second)` when it can reach `bound`, else `None` (also
    /// for a row without tokens) — given
    /// up as soon as the products summed so far plus what the rest of both
    /// rows can add (Cauchy–Schwarz on their remaining unit lengths) fall
    /// short. A score it returns is computed exactly as `cosine` computes it.
    fn cosine_reaching(&self, first: u32, second: u32, bound: f64) -> Option<f64> {
        let (first_norm, second_norm) = (self.norms[first as usize], self.norms[second as usize]);
        if first_norm <= 0.0 || second_norm <= 0.0 {
            return None;
        }
        let scale = 1.0 / (first_norm * second_norm).sqrt();
        let (first_range, second_range) = (self.row_range(first), self.row_range(second));
        let (left, right) = (
            &self.tokens[first_range.clone()],
            &self.tokens[second_range.clone()],
        );
        let (left_rest, right_rest) = (
            &self.rest_lengths[first_range.clone()],
            &self.rest_lengths[second_range.clone()],
        );
        let left_weights = &self.token_weights[first_range];
        let right_weights = &self.token_weights[second_range];
        let (mut left_index, mut right_index) = (0, 0);
        let (mut bigram_dot, mut word_dot) = (0.0, 0.0);
        while left_index < left.len() && right_index < right.len() {
            if (bigram_dot + word_dot) * scale + left_rest[left_index] * right_rest[right_index]
                < bound
            {
                return None;
            }
            let token = left[left_index];
            match token.cmp(&right[right_index]) {
                std::cmp::Ordering::Less => left_index += 1,
                std::cmp::Ordering::Greater => right_index += 1,
                std::cmp::Ordering::Equal => {
                    let product = left_weights[left_index] * right_weights[right_index];
                    if token < self.bigram_count {
                        bigram_dot += product;
                    } else {
                        word_dot += product;
                    }
                    left_index += 1;
                    right_index += 1;
                }
            }
        }
        let dot = bigram_dot + word_dot;
        Some((dot / (first_norm * second_norm).sqrt()).min(1.0))
    }
}

/// `rest[i] = √(Σ_{j ≥ i} weights[j]²) / length`: what the tail of a vector
/// from `i` on can add to a cosine.
fn fill_rest_lengths(weights: &[f64], length: f64, rest: &mut [f64]) {
    let mut squared = 0.0;
    for (weight, rest) in weights.iter().zip(rest.iter_mut()).rev() {
        squared += weight * weight;
        *rest = squared.sqrt() / length;
    }
}

/// Per-vocabulary arrays reused from group to group, reset through the list
/// of ranks a group touched.
struct GroupScratch {
    frequency: Vec<u32>,
    position: Vec<u32>,
    touched: Vec<u32>,
}

impl GroupScratch {
    fn new(vocabulary: usize) -> Self {
        Self {
            frequency: vec![0; vocabulary],
            position: vec![0; vocabulary],
            touched: Vec::new(),
        }
    }
}

/// Inverted index over the prefixes of one group's rows.
struct GroupIndex {
    /// Members (rows of the group) by increasing norm.
    rows: Vec<u32>,
    sides: Vec<u8>,
    /// Members' tokens as positions in the group's token order, ascending:
    /// `ordered[ordered_offsets[m]..]`.
    ordered: Vec<u32>,
    ordered_offsets: Vec<usize>,
    /// How many leading ordered tokens form each member's prefix.
    prefix_lengths: Vec<usize>,
    /// Per ordered token: its unit weight, and the length of the member's
    /// unit vector from that token on.
    ordered_units: Vec<f64>,
    ordered_rest: Vec<f64>,
    /// The first position past each member's prefix (the vocabulary size
    /// when the whole row is prefix).
    prefix_ends: Vec<u32>,
    /// Each member's largest unit weight and the sum of its unit weights:
    /// the size filter.
    largest_unit_weights: Vec<f64>,
    unit_weight_sums: Vec<f64>,
    /// Posting lists per side: members (ascending) whose prefix holds a
    /// position, `postings[side][starts[side][p]..starts[side][p + 1]]`.
    starts: [Vec<usize>; 2],
    postings: [Vec<u32>; 2],
    /// The member's unit weight at the posting's position, alike.
    posting_units: [Vec<f64>; 2],
    two_sided: bool,
    /// The threshold loosened by `SLACK`.
    bound: f64,
}

impl GroupIndex {
    fn new(
        corpus: &TokenizedRows,
        mut rows: Vec<u32>,
        sides: &[u8],
        two_sided: bool,
        threshold: f64,
        scratch: &mut GroupScratch,
    ) -> Self {
        rows.sort_unstable_by(|&a, &b| {
            corpus.norms[a as usize]
                .total_cmp(&corpus.norms[b as usize])
                .then(a.cmp(&b))
        });
        // Token order: rarest within the group first, then heaviest.
        for &row in &rows {
            for &token in corpus.row_tokens(row) {
                if scratch.frequency[token as usize] == 0 {
                    scratch.touched.push(token);
                }
                scratch.frequency[token as usize] += 1;
            }
        }
        let mut order = std::mem::take(&mut scratch.touched);
        order.sort_unstable_by(|&a, &b| {
            scratch.frequency[a as usize]
                .cmp(&scratch.frequency[b as usize])
                .then(corpus.rank_weights[b as usize].total_cmp(&corpus.rank_weights[a as usize]))
                .then(a.cmp(&b))
        });
        for (position, &token) in order.iter().enumerate() {
            scratch.position[token as usize] = position as u32;
        }

        // Each member's (position, unit weight) pairs in token order, and
        // the largest unit weight of each position over the group.
        let mut ordered_weights: Vec<(u32, f64)> = Vec::new();
        let mut ordered_offsets = vec![0];
        let mut largest_at_position = vec![0.0f64; order.len()];
        let mut largest_unit_weights = Vec::with_capacity(rows.len());
        let mut unit_weight_sums = Vec::with_capacity(rows.len());
        for &row in &rows {
            let length = corpus.norms[row as usize].sqrt();
            let start = ordered_weights.len();
            let range = corpus.row_range(row);
            ordered_weights.extend(
                corpus.tokens[range.clone()]
                    .iter()
                    .zip(&corpus.token_weights[range])
                    .map(|(&token, &weight)| (scratch.position[token as usize], weight / length)),
            );
            let member_tokens = &mut ordered_weights[start..];
            member_tokens.sort_unstable_by_key(|(position, _)| *position);
            let (mut largest, mut sum) = (0.0f64, 0.0);
            for &(position, unit) in member_tokens.iter() {
                let slot = &mut largest_at_position[position as usize];
                *slot = slot.max(unit);
                largest = largest.max(unit);
                sum += unit;
            }
            largest_unit_weights.push(largest);
            unit_weight_sums.push(sum);
            ordered_offsets.push(ordered_weights.len());
        }

        // A member's prefix ends where no partner could reach the threshold
        // on the tokens left: by Cauchy–Schwarz the rest contributes at most
        // the length of the rest of the unit vector, and at most the sum of
        // its unit weights times the largest unit weight of the same token
        // in the group.
        let bound = threshold * (1.0 - SLACK);
        let mut prefix_lengths = Vec::with_capacity(rows.len());
        let (mut squared_rest, mut product_rest) = (Vec::new(), Vec::new());
        for member in 0..rows.len() {
            let tokens = &ordered_weights[ordered_offsets[member]..ordered_offsets[member + 1]];
            squared_rest.clear();
            squared_rest.resize(tokens.len() + 1, 0.0);
            product_rest.clear();
            product_rest.resize(tokens.len() + 1, 0.0);
            for (i, &(position, unit)) in tokens.iter().enumerate().rev() {
                squared_rest[i] = squared_rest[i + 1] + unit * unit;
                product_rest[i] =
                    product_rest[i + 1] + unit * largest_at_position[position as usize];
            }
            let length = (1..=tokens.len())
                .find(|&length| squared_rest[length].sqrt().min(product_rest[length]) < bound)
                .unwrap_or(tokens.len());
            prefix_lengths.push(length);
        }

        let member_sides: Vec<u8> = rows.iter().map(|&row| sides[row as usize]).collect();
        let ordered: Vec<u32> = ordered_weights
            .iter()
            .map(|(position, _)| *position)
            .collect();
        let ordered_units: Vec<f64> = ordered_weights.iter().map(|(_, unit)| *unit).collect();
        let mut ordered_rest = vec![0.0; ordered_units.len()];
        let mut prefix_ends = Vec::with_capacity(rows.len());
        for member in 0..rows.len() {
            let (begin, end) = (ordered_offsets[member], ordered_offsets[member + 1]);
            fill_rest_lengths(
                &ordered_units[begin..end],
                1.0,
                &mut ordered_rest[begin..end],
            );
            let prefix_end = begin + prefix_lengths[member];
            prefix_ends.push(if prefix_end < end {
                ordered[prefix_end]
            } else {
                order.len() as u32
            });
        }
        let mut starts = [vec![0usize; order.len() + 1], vec![0usize; order.len() + 1]];
        for member in 0..rows.len() {
            let side = usize::from(member_sides[member]);
            let begin = ordered_offsets[member];
            for &position in &ordered[begin..begin + prefix_lengths[member]] {
                starts[side][position as usize + 1] += 1;
            }
        }
        for side_starts in &mut starts {
            for position in 0..order.len() {
                side_starts[position + 1] += side_starts[position];
            }
        }
        let mut fill = [starts[0].clone(), starts[1].clone()];
        let mut postings = [
            vec![0u32; starts[0][order.len()]],
            vec![0u32; starts[1][order.len()]],
        ];
        let mut posting_units = [
            vec![0.0f64; starts[0][order.len()]],
            vec![0.0f64; starts[1][order.len()]],
        ];
        for member in 0..rows.len() {
            let side = usize::from(member_sides[member]);
            let begin = ordered_offsets[member];
            for index in begin..begin + prefix_lengths[member] {
                let slot = &mut fill[side][ordered[index] as usize];
                postings[side][*slot] = member as u32;
                posting_units[side][*slot] = ordered_units[index];
                *slot += 1;
            }
        }

        for &token in &order {
            scratch.frequency[token as usize] = 0;
        }
        order.clear();
        scratch.touched = order;
        Self {
            rows,
            sides: member_sides,
            ordered,
            ordered_offsets,
            prefix_lengths,
            ordered_units,
            ordered_rest,
            prefix_ends,
            largest_unit_weights,
            unit_weight_sums,
            starts,
            postings,
            posting_units,
            two_sided,
            bound,
        }
    }

    /// Probes every member against the earlier ones and appends the matches
    /// as (later row, earlier row, score).
    fn probe(
        &self,
        corpus: &TokenizedRows,
        threshold: f64,
        threads: usize,
        matches: &mut Vec<(u32, u32, f64)>,
    ) {
        let members = self.rows.len();
        if members < 2 {
            return;
        }
        let next = AtomicUsize::new(0);
        let work = || {
            let mut found = Vec::new();
            let mut seen = vec![u32::MAX; members];
            let mut accumulated = vec![0.0f64; members];
            let mut candidates = Vec::new();
            let mut scored = 0usize;
            loop {
                let block = next.fetch_add(PROBE_BLOCK, Ordering::Relaxed);
                if block >= members {
                    break;
                }
                for member in block..(block + PROBE_BLOCK).min(members) {
                    self.probe_member(member, &mut seen, &mut accumulated, &mut candidates);
                    let row = self.rows[member];
                    scored += candidates.len();
                    for &candidate in &candidates {
                        let other = self.rows[candidate as usize];
                        if let Some(score) = corpus.cosine_reaching(row, other, self.bound) {
                            if score >= threshold {
                                found.push((row, other, score));
                            }
                        }
                    }
                }
            }
            tracing::trace!(
                scored,
                found = found.len(),
                "similar_pairs: candidates of one thread"
            );
            found
        };
        let threads = if members < 1024 { 1 } else { threads.max(1) };
        if threads == 1 {
            matches.extend(work());
            return;
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            for handle in handles {
                matches.extend(
                    handle
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                );
            }
        });
    }

    /// The earlier members sharing a prefix token with `member` that can
    /// still reach the threshold, each once.
    ///
    /// Candidates come from the postings of `member`'s prefix tokens, which
    /// hold the other members' prefixes; the products of the tokens found
    /// there are summed on the way (`accumulated`). A shared token they miss
    /// lies at or past the end of one of the two prefixes, so what the
    /// missed tokens add is at most the product of both rows' unit lengths
    /// from the earlier of the two prefix ends (Cauchy–Schwarz); a
    /// candidate whose sum plus that cannot reach the threshold is dropped
    /// unscored. So is one failing the size filter.
    fn probe_member(
        &self,
        member: usize,
        seen: &mut [u32],
        accumulated: &mut [f64],
        candidates: &mut Vec<u32>,
    ) {
        candidates.clear();
        let side = usize::from(self.sides[member]);
        let other_side = if self.two_sided { 1 - side } else { side };
        let (starts, postings, units) = (
            &self.starts[other_side],
            &self.postings[other_side],
            &self.posting_units[other_side],
        );
        let (largest, sum) = (
            self.largest_unit_weights[member],
            self.unit_weight_sums[member],
        );
        let begin = self.ordered_offsets[member];
        for index in begin..begin + self.prefix_lengths[member] {
            let (position, unit) = (self.ordered[index] as usize, self.ordered_units[index]);
            let range = starts[position]..starts[position + 1];
            let list = &postings[range.clone()];
            let list_units = &units[range];
            let end = list.partition_point(|&other| (other as usize) < member);
            for (&other, &other_unit) in list[..end].iter().zip(list_units) {
                let other_index = other as usize;
                if seen[other_index] != member as u32 {
                    seen[other_index] = member as u32;
                    // Size filter: the dot product of unit vectors is at most
                    // either one's largest weight times the other's weight sum.
                    if largest * self.unit_weight_sums[other_index] < self.bound
                        || self.largest_unit_weights[other_index] * sum < self.bound
                    {
                        accumulated[other_index] = f64::NEG_INFINITY;
                        continue;
                    }
                    accumulated[other_index] = 0.0;
                    candidates.push(other);
                }
                accumulated[other_index] += unit * other_unit;
            }
        }
        let member_end = self.prefix_ends[member];
        candidates.retain(|&other| {
            let other = other as usize;
            let from = member_end.min(self.prefix_ends[other]);
            let rest = self.rest_from(member, from) * self.rest_from(other, from);
            accumulated[other] * (1.0 + SLACK) + rest >= self.bound
        });
    }

    /// The length of `member`'s unit vector on positions `from` and later.
    fn rest_from(&self, member: usize, from: u32) -> f64 {
        let (begin, end) = (
            self.ordered_offsets[member],
            self.ordered_offsets[member + 1],
        );
        let first = begin + self.ordered[begin..end].partition_point(|&p| p < from);
        if first < end {
            self.ordered_rest[first]
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::func_similarity::tests::DUTY_CLAUSES;

    /// A small deterministic generator (xorshift64*), enough for test data.
    struct Random(u64);

    impl Random {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
        }
    }

    /// Texts recombined from duty clauses: pieces of one to three clauses,
    /// some punctuation, and near copies of earlier texts, so that every
    /// threshold has matches and non-matches close to it.
    fn random_texts(count: usize, seed: u64) -> Vec<String> {
        let mut random = Random(seed | 1);
        let clauses: Vec<Vec<char>> = DUTY_CLAUSES.iter().map(|c| c.chars().collect()).collect();
        let mut texts: Vec<String> = Vec::with_capacity(count);
        for _ in 0..count {
            if !texts.is_empty() && random.below(3) == 0 {
                let mut copy: Vec<char> = texts[random.below(texts.len())].chars().collect();
                for _ in 0..random.below(4) {
                    if copy.is_empty() {
                        break;
                    }
                    let at = random.below(copy.len());
                    match random.below(3) {
                        0 => {
                            copy.remove(at);
                        }
                        1 => copy.insert(at, '和'),
                        _ => copy[at] = '，',
                    }
                }
                texts.push(copy.into_iter().collect());
                continue;
            }
            let mut text = String::new();
            for piece in 0..1 + random.below(3) {
                let clause = &clauses[random.below(clauses.len())];
                let start = random.below(clause.len() / 2);
                let end = start + 1 + random.below(clause.len() - start);
                if piece > 0 {
                    text.push(if random.below(2) == 0 { '，' } else { '、' });
                }
                text.extend(&clause[start..end]);
            }
            texts.push(text);
        }
        texts
    }

    fn rows(texts: &[String], groups: u32, id_offset: i64) -> Vec<PairRow<'_>> {
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| PairRow {
                // Some repeated ids, which the self-join must not pair.
                id: id_offset + (index as i64 * 7) % (texts.len() as i64 + 5),
                group: index as u32 % groups,
                text,
            })
            .collect()
    }

    /// Every pair scored with `func_similarity`'s own code.
    fn brute_force(
        left: &[PairRow<'_>],
        right: Option<&[PairRow<'_>]>,
        weights: &TokenWeights,
        threshold: f64,
        top_k: Option<usize>,
    ) -> Vec<ScoredPair> {
        let tokens = |rows: &[PairRow<'_>]| -> Vec<WeightedTokens> {
            rows.iter()
                .map(|r| WeightedTokens::new(r.text, weights))
                .collect()
        };
        let left_tokens = tokens(left);
        let right_rows = right.unwrap_or(left);
        let right_tokens = tokens(right_rows);
        let mut pairs = Vec::new();
        for (i, l) in left.iter().enumerate() {
            for (j, r) in right_rows.iter().enumerate() {
                let keep = match (right, top_k) {
                    (Some(_), _) => true,
                    (None, None) => l.id < r.id,
                    (None, Some(_)) => l.id != r.id,
                };
                if !keep || l.group != r.group {
                    continue;
                }
                let score = left_tokens[i].cosine(&right_tokens[j]);
                if score >= threshold {
                    pairs.push(ScoredPair {
                        left_id: l.id,
                        right_id: r.id,
                        score,
                    });
                }
            }
        }
        match top_k {
            None => {
                pairs.sort_by(|a, b| {
                    (a.left_id, a.right_id)
                        .cmp(&(b.left_id, b.right_id))
                        .then(a.score.total_cmp(&b.score))
                });
                pairs
            }
            Some(k) => {
                pairs.sort_by(|a, b| {
                    a.left_id
                        .cmp(&b.left_id)
                        .then(b.score.total_cmp(&a.score))
                        .then(a.right_id.cmp(&b.right_id))
                });
                let mut kept: Vec<ScoredPair> = Vec::new();
                for pair in pairs {
                    let same = kept
                        .iter()
                        .rev()
                        .take_while(|p| p.left_id == pair.left_id)
                        .count();
                    if same < k {
                        kept.push(pair);
                    }
                }
                kept
            }
        }
    }

    fn assert_same(found: &[ScoredPair], expected: &[ScoredPair], case: &str) {
        assert_eq!(found.len(), expected.len(), "{case}: pair counts differ");
        for (found, expected) in found.iter().zip(expected) {
            assert_eq!(
                (found.left_id, found.right_id, found.score.to_bits()),
                (
                    expected.left_id,
                    expected.right_id,
                    expected.score.to_bits()
                ),
                "{case}"
            );
        }
    }

    #[test]
    fn self_join_equals_brute_force() {
        let texts = random_texts(400, 11);
        let corpus = TokenWeights::from_texts(random_texts(300, 5));
        for weights in [TokenWeights::uniform(), corpus] {
            for groups in [1, 3] {
                let rows = rows(&texts, groups, 0);
                for threshold in [0.3, 0.5, 0.8, 1.0] {
                    for threads in [1, 2] {
                        let options = JoinOptions {
                            threshold,
                            top_k: None,
                            threads,
                        };
                        let found = similar_pairs(&rows, None, &weights, &options);
                        let expected = brute_force(&rows, None, &weights, threshold, None);
                        let case = format!("t={threshold} groups={groups} threads={threads}");
                        assert!(threshold == 1.0 || !expected.is_empty(), "{case}");
                        assert_same(&found, &expected, &case);
                    }
                }
            }
        }
    }

    #[test]
    fn large_group_probes_on_several_threads() {
        // More than 1024 rows in one group: the threaded path.
        let texts = random_texts(1500, 3);
        let rows = rows(&texts, 1, 0);
        let weights = TokenWeights::from_texts(&texts);
        let options = JoinOptions {
            threshold: 0.5,
            top_k: None,
            threads: 3,
        };
        let found = similar_pairs(&rows, None, &weights, &options);
        assert_same(
            &found,
            &brute_force(&rows, None, &weights, 0.5, None),
            "1500 rows",
        );
    }

    #[test]
    fn filters_leave_few_candidates() {
        // The point of the join: at a high threshold only a small share of
        // the pairs is ever scored.
        let texts = random_texts(1500, 3);
        let rows = rows(&texts, 1, 0);
        let weights = TokenWeights::from_texts(&texts);
        let corpus = TokenizedRows::new(&rows, &weights, 1);
        let members: Vec<u32> = (0..rows.len() as u32)
            .filter(|&row| corpus.norms[row as usize] > 0.0)
            .collect();
        let mut scratch = GroupScratch::new(corpus.vocabulary_len());
        let sides = vec![0u8; rows.len()];
        let group = GroupIndex::new(&corpus, members, &sides, false, 0.8, &mut scratch);
        let (mut seen, mut candidates) = (vec![u32::MAX; rows.len()], Vec::new());
        let mut accumulated = vec![0.0; rows.len()];
        let mut scored = 0usize;
        for member in 0..group.rows.len() {
            group.probe_member(member, &mut seen, &mut accumulated, &mut candidates);
            scored += candidates.len();
        }
        let all = group.rows.len() * (group.rows.len() - 1) / 2;
        assert!(scored * 10 < all, "{scored} of {all} pairs scored");
    }

    #[test]
    fn two_table_join_and_top_k_equal_brute_force() {
        let texts = random_texts(500, 23);
        let (left_texts, right_texts) = texts.split_at(200);
        let weights = TokenWeights::from_texts(&texts);
        for groups in [1, 2] {
            let left = rows(left_texts, groups, 0);
            let right = rows(right_texts, groups, 1000);
            for threshold in [0.3, 0.5, 0.8] {
                for top_k in [None, Some(1), Some(3)] {
                    let options = JoinOptions {
                        threshold,
                        top_k,
                        threads: 2,
                    };
                    let case = format!("t={threshold} groups={groups} top_k={top_k:?}");
                    let found = similar_pairs(&left, Some(&right), &weights, &options);
                    let expected = brute_force(&left, Some(&right), &weights, threshold, top_k);
                    assert!(!expected.is_empty(), "{case}");
                    assert_same(&found, &expected, &case);
                    let found = similar_pairs(&left, None, &weights, &options);
                    let expected = brute_force(&left, None, &weights, threshold, top_k);
                    assert_same(&found, &expected, &format!("self {case}"));
                }
            }
        }
    }

    #[test]
    fn copies_of_texts_pair_like_distinct_rows() {
        // Texts repeated up to five times, on both sides and in groups:
        // joined once per distinct text, paired as if every row were
        // scored.
        let base = random_texts(150, 31);
        let mut random = Random(99);
        let mut texts = Vec::new();
        for text in &base {
            for _ in 0..1 + random.below(5) {
                texts.push(text.clone());
            }
        }
        for index in (1..texts.len()).rev() {
            texts.swap(index, random.below(index + 1));
        }
        let weights = TokenWeights::from_texts(&texts);
        let (left_texts, right_texts) = texts.split_at(texts.len() / 2);
        for groups in [1, 2] {
            let all = rows(&texts, groups, 0);
            let left = rows(left_texts, groups, 0);
            let right = rows(right_texts, groups, 10_000);
            for threshold in [0.5, 0.9, 1.0] {
                for top_k in [None, Some(2)] {
                    let options = JoinOptions {
                        threshold,
                        top_k,
                        threads: 2,
                    };
                    let case = format!("t={threshold} groups={groups} top_k={top_k:?}");
                    let found = similar_pairs(&all, None, &weights, &options);
                    let expected = brute_force(&all, None, &weights, threshold, top_k);
                    assert!(!expected.is_empty(), "{case}");
                    assert_same(&found, &expected, &format!("self {case}"));
                    let found = similar_pairs(&left, Some(&right), &weights, &options);
                    let expected = brute_force(&left, Some(&right), &weights, threshold, top_k);
                    assert_same(&found, &expected, &format!("two tables {case}"));
                }
            }
        }
    }

    #[test]
    fn empty_and_tokenless_rows_pair_with_nothing() {
        let texts = ["", "，。", "负责全市档案工作", "负责全市档案工作"].map(String::from);
        let rows = rows(&texts, 1, 0);
        let options = JoinOptions {
            threshold: 0.1,
            top_k: None,
            threads: 0,
        };
        let found = similar_pairs(&rows, None, &TokenWeights::uniform(), &options);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].score, 1.0);
        assert!(similar_pairs(&[], None, &TokenWeights::uniform(), &options).is_empty());
    }
}
