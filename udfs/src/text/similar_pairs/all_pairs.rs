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
//! - **First shared token.** Postings hold each row's unit weight and the
//!   length of its unit vector after the token. At a matching pair's first
//!   shared token every other shared token lies later in both rows, so the
//!   product there plus both lengths after it bounds the score. A probing
//!   row takes another as a candidate at the first posting entry passing
//!   this bound; an entry failing it, if it was their first shared token,
//!   shows that they cannot match, so it is not recorded at all.
//! - **Size filter.** `Σ x̂_t ŷ_t ≤ max_t x̂_t · Σ_t ŷ_t`, both ways round,
//!   drops candidates before they are scored.
//! - **Score accumulation.** While a row's prefix tokens are looked up, the
//!   products of the shared tokens found are summed. A shared token not
//!   found lies after the last one found and at or past the end of one of
//!   the two prefixes, so a candidate whose sum plus the product of both
//!   rows' unit lengths from there (Cauchy–Schwarz) falls short is dropped
//!   unscored.
//! - **Verification.** Every remaining candidate is scored with the very
//!   weights and the same arithmetic, in the same order, as
//!   `func_similarity` (see `WeightedTokens`), so the scores are
//!   bit-identical and the pair set is exactly the brute-force one. The
//!   probing row's weights are spread over the vocabulary (`ScatteredRow`),
//!   so a candidate is scored by walking its own tokens only.
//! - **Copies.** Identical texts (same side, same group) are joined once and
//!   their matches given to every copy.
//! - **Memory.** The walk looks up no member's record at random: a posting
//!   carries the member's unit weight and rest length there, and a
//!   parallel array its size-filter numbers and prefix end (all rounded up
//!   to `f32`, which only loosens the bounds), copied into the candidate's
//!   record when it is taken. Entries that neither belong to a candidate
//!   nor pass the first-token bound (most of them) are skipped by a tight
//!   loop reading only the posting and one bit. The records of the probing
//!   row's candidates are kept in the order taken and found through a
//!   small hash table, which stays in cache where an array over all
//!   members (24 MB at a million) did not; and each thread finds the end
//!   of a posting list from where it ended for its previous probe.
//!
//! The bounds are loosened by a relative `1e-9` so that rounding in the
//! filters can only let more candidates through, never fewer. Tokenising,
//! indexing, probing and sorting run on all cores (`std::thread::scope`): a
//! large group's members are shared among the threads, small groups (a
//! department's clauses) are taken one per thread.

use datafusion::common::HashMap;
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
    let join = GroupJoin {
        corpus: &corpus,
        sides: &sides,
        two_sided,
        threshold: options.threshold,
    };
    // Large groups one after the other, each probed on all cores; small
    // ones (a department's clauses) side by side, one per core at a time.
    let (large, small): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .map(|(_, members)| members)
        .partition(|members| members.len() >= SHARED_GROUP_SIZE);
    let mut distinct_matches = Vec::new();
    let mut scratch = GroupScratch::new(corpus.vocabulary_len());
    for members in large {
        let indexing = std::time::Instant::now();
        let index = join.index(members, threads, &mut scratch);
        let probing = std::time::Instant::now();
        index.probe(&corpus, options.threshold, threads, &mut distinct_matches);
        tracing::debug!(
            members = index.rows.len(),
            index_seconds = (probing - indexing).as_secs_f64(),
            probe_seconds = probing.elapsed().as_secs_f64(),
            prefix_tokens = index.prefix_lengths.iter().sum::<usize>(),
            tokens = index.ordered.len(),
            "similar_pairs: large group joined"
        );
    }
    join.small_groups(small, threads, &mut distinct_matches);
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
    finish(&rows, left_len, matches, options.top_k, threads)
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
        let mut scattered = ScatteredRow::new(corpus.vocabulary_len());
        for (text, rows) in copies.iter().enumerate() {
            if rows.len() < 2 {
                continue;
            }
            let text = text as u32;
            scattered.load(corpus, text);
            let score = corpus.cosine_scattered(text, &scattered, text);
            scattered.unload(corpus, text);
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

/// Groups of at least this many members are probed on all cores at once.
const SHARED_GROUP_SIZE: usize = 1024;

/// What every group of one join shares.
struct GroupJoin<'a> {
    corpus: &'a TokenizedRows,
    sides: &'a [u8],
    two_sided: bool,
    threshold: f64,
}

impl GroupJoin<'_> {
    /// Indexes one group, on `threads` threads.
    fn index(&self, members: Vec<u32>, threads: usize, scratch: &mut GroupScratch) -> GroupIndex {
        GroupIndex::new(
            self.corpus,
            members,
            self.sides,
            self.two_sided,
            self.threshold,
            threads,
            scratch,
        )
    }

    /// Joins each of `groups` on one thread, `threads` groups at a time.
    fn small_groups(
        &self,
        groups: Vec<Vec<u32>>,
        threads: usize,
        matches: &mut Vec<(u32, u32, f64)>,
    ) {
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scratch = GroupScratch::new(self.corpus.vocabulary_len());
            let mut found = Vec::new();
            loop {
                let group = next.fetch_add(1, Ordering::Relaxed);
                let Some(members) = groups.get(group) else {
                    break;
                };
                let index = self.index(members.clone(), 1, &mut scratch);
                let counter = AtomicUsize::new(0);
                found.extend(index.probe_blocks(
                    self.corpus,
                    self.threshold,
                    &counter,
                    &mut scratch.scattered,
                ));
            }
            found
        };
        on_threads(threads.min(groups.len()), work, matches);
    }
}

/// Runs `work` on `threads` threads at once (on this one when there is one)
/// and appends what each returns to `matches`; the threads share their work
/// through counters inside `work`.
fn on_threads<W>(threads: usize, work: W, matches: &mut Vec<(u32, u32, f64)>)
where
    W: Fn() -> Vec<(u32, u32, f64)> + Sync,
{
    if threads <= 1 {
        matches.extend(work());
        return;
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(&work)).collect();
        for handle in handles {
            matches.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
    });
}

/// Orients, filters and orders the matches of row pairs.
fn finish(
    rows: &[PairRow<'_>],
    left_len: Option<usize>,
    matches: Vec<(u32, u32, f64)>,
    top_k: Option<usize>,
    threads: usize,
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
        None => sort_on_threads(pairs, threads, |a, b| {
            (a.left_id, a.right_id)
                .cmp(&(b.left_id, b.right_id))
                .then(a.score.total_cmp(&b.score))
        }),
        Some(k) => {
            let pairs = sort_on_threads(pairs, threads, |a, b| {
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

/// `items` sorted by `order`: one share per thread sorted at once, then the
/// sorted shares merged (tens of millions of pairs at low thresholds).
fn sort_on_threads<T, F>(mut items: Vec<T>, threads: usize, order: F) -> Vec<T>
where
    T: Copy + Send,
    F: Fn(&T, &T) -> std::cmp::Ordering + Sync,
{
    const SORT_ALONE_BELOW: usize = 1 << 16;
    if threads < 2 || items.len() < SORT_ALONE_BELOW {
        items.sort_unstable_by(&order);
        return items;
    }
    let share = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for chunk in items.chunks_mut(share) {
            scope.spawn(|| chunk.sort_unstable_by(&order));
        }
    });
    let shares: Vec<&[T]> = items.chunks(share).collect();
    let mut runs: Vec<Vec<T>> = shares
        .chunks(2)
        .map(|two| match two {
            [first, second] => merge_sorted(first, second, &order),
            one => one.concat(),
        })
        .collect();
    drop(items);
    while runs.len() > 1 {
        let mut merged = Vec::with_capacity(runs.len().div_ceil(2));
        let mut pending = runs.into_iter();
        while let Some(first) = pending.next() {
            merged.push(match pending.next() {
                Some(second) => merge_sorted(&first, &second, &order),
                None => first,
            });
        }
        runs = merged;
    }
    runs.pop().unwrap_or_default()
}

fn merge_sorted<T: Copy>(
    first: &[T],
    second: &[T],
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut merged = Vec::with_capacity(first.len() + second.len());
    let (mut i, mut j) = (0, 0);
    while i < first.len() && j < second.len() {
        if order(&second[j], &first[i]).is_lt() {
            merged.push(second[j]);
            j += 1;
        } else {
            merged.push(first[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&first[i..]);
    merged.extend_from_slice(&second[j..]);
    merged
}

/// Every row's distinct tokens as ranks into one vocabulary ordered like
/// `func_similarity`'s token lists (bigrams by packed value, then words as
/// strings), each with its weight `(1 + ln tf) · idf` in that row, and each
/// row's squared norm as `func_similarity` sums it.
struct TokenizedRows {
    /// The corpus weight (idf) of each rank: ties in the token order.
    rank_weights: Vec<f64>,
    /// Row `r`'s ranks, ascending, and their weights in that row:
    /// `tokens[offsets[r]..offsets[r + 1]]`, `token_weights[…]` alike.
    tokens: Vec<u32>,
    token_weights: Vec<f64>,
    offsets: Vec<usize>,
    /// Where each row's words begin in `tokens` (its bigrams come first).
    word_starts: Vec<usize>,
    norms: Vec<f64>,
}

/// Weighted tokens of a contiguous chunk of rows, with chunk-local word ids
/// (so that the words of a million rows are not a million string vectors).
struct ChunkTokens {
    bigrams: Vec<(u64, f64)>,
    /// The chunk's distinct bigrams, sorted.
    bigram_set: Vec<u64>,
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
    fn ranks(&self, bigram_ranks: &HashMap<u64, u32>, word_vocabulary: &[&str]) -> ChunkRanks {
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
struct ChunkRanks {
    tokens: Vec<u32>,
    token_weights: Vec<f64>,
    /// Per row, where its words begin and where it ends in `tokens`.
    word_starts: Vec<usize>,
    ends: Vec<usize>,
}

/// `work` applied to each item on a thread of its own (on this one when
/// there is only one item), results in order.
fn on_chunks<I: Send, R: Send>(items: Vec<I>, work: impl Fn(I) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    })
}

impl TokenizedRows {
    fn new(rows: &[PairRow<'_>], weights: &TokenWeights, threads: usize) -> Self {
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

    fn vocabulary_len(&self) -> usize {
        self.rank_weights.len()
    }

    fn row_range(&self, row: u32) -> std::ops::Range<usize> {
        self.offsets[row as usize]..self.offsets[row as usize + 1]
    }

    fn row_tokens(&self, row: u32) -> &[u32] {
        &self.tokens[self.row_range(row)]
    }
}

/// The length of `member`'s unit vector after the token at `index` (0 after
/// its last token).
fn rest_after(ordered_rest: &[f64], ordered_offsets: &[usize], member: usize, index: usize) -> f64 {
    if index + 1 < ordered_offsets[member + 1] {
        ordered_rest[index + 1]
    } else {
        0.0
    }
}

/// One row's weights spread over the whole vocabulary (0 for tokens it lacks),
/// so that many partners can be scored against it without merging token
/// lists: one load per partner token, no unpredictable branches.
struct ScatteredRow {
    weights: Vec<f64>,
}

impl ScatteredRow {
    fn new(vocabulary: usize) -> Self {
        Self {
            weights: vec![0.0; vocabulary],
        }
    }

    fn load(&mut self, corpus: &TokenizedRows, row: u32) {
        let range = corpus.row_range(row);
        for (&token, &weight) in corpus.tokens[range.clone()]
            .iter()
            .zip(&corpus.token_weights[range])
        {
            self.weights[token as usize] = weight;
        }
    }

    fn unload(&mut self, corpus: &TokenizedRows, row: u32) {
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
    fn cosine_scattered(&self, row: u32, scattered: &ScatteredRow, other: u32) -> f64 {
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

/// `rest[i] = √(Σ_{j ≥ i} weights[j]²) / length`: what the tail of a vector
/// from `i` on can add to a cosine.
fn fill_rest_lengths(weights: &[f64], length: f64, rest: &mut [f64]) {
    let mut squared = 0.0;
    for (weight, rest) in weights.iter().zip(rest.iter_mut()).rev() {
        squared += weight * weight;
        *rest = squared.sqrt() / length;
    }
}

/// `count` items split into `threads` consecutive shares of (nearly) equal
/// size; one share when there is nothing to split.
fn even_shares(count: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let share = count.div_ceil(threads.max(1)).max(1);
    (0..count.div_ceil(share).max(1))
        .map(|index| index * share..((index + 1) * share).min(count))
        .collect()
}

/// `data` cut into consecutive pieces beginning at `starts` (ascending, the
/// first 0).
fn split_at_starts<'a, T>(mut data: &'a mut [T], starts: &[usize]) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::with_capacity(starts.len());
    for (index, &start) in starts.iter().enumerate() {
        let end = starts
            .get(index + 1)
            .map_or(start + data.len(), |&next| next);
        let (piece, rest) = std::mem::take(&mut data).split_at_mut(end - start);
        pieces.push(piece);
        data = rest;
    }
    pieces
}

/// Two arrays laid out alike, cut alike (`split_at_starts`), piece by piece.
fn split_both_at_starts<'a, A, B>(
    first: &'a mut [A],
    second: &'a mut [B],
    starts: &[usize],
) -> Vec<(&'a mut [A], &'a mut [B])> {
    split_at_starts(first, starts)
        .into_iter()
        .zip(split_at_starts(second, starts))
        .collect()
}

/// One thread's share of a group's members, weighed: `GroupIndex::new`.
struct WeighedShare {
    /// Each member's (position, unit weight) pairs, by position, one member
    /// after another; `ends` says where each member ends.
    weights: Vec<(u32, f64)>,
    ends: Vec<usize>,
    /// Each member's largest unit weight and weight sum.
    sizes: Vec<(f64, f64)>,
    /// The largest unit weight of each position over the share.
    largest_at_position: Vec<f64>,
}

impl WeighedShare {
    fn new(corpus: &TokenizedRows, rows: &[u32], position: &[u32], positions: usize) -> Self {
        let mut share = Self {
            weights: Vec::new(),
            ends: Vec::with_capacity(rows.len()),
            sizes: Vec::with_capacity(rows.len()),
            largest_at_position: vec![0.0; positions],
        };
        for &row in rows {
            let length = corpus.norms[row as usize].sqrt();
            let start = share.weights.len();
            let range = corpus.row_range(row);
            share.weights.extend(
                corpus.tokens[range.clone()]
                    .iter()
                    .zip(&corpus.token_weights[range])
                    .map(|(&token, &weight)| (position[token as usize], weight / length)),
            );
            let member = &mut share.weights[start..];
            member.sort_unstable_by_key(|(position, _)| *position);
            let (mut largest, mut sum) = (0.0f64, 0.0);
            for &(position, unit) in member.iter() {
                let slot = &mut share.largest_at_position[position as usize];
                *slot = slot.max(unit);
                largest = largest.max(unit);
                sum += unit;
            }
            share.sizes.push((largest, sum));
            share.ends.push(share.weights.len());
        }
        share
    }
}

/// Per-vocabulary arrays reused from group to group, reset through the list
/// of ranks a group touched.
struct GroupScratch {
    frequency: Vec<u32>,
    position: Vec<u32>,
    touched: Vec<u32>,
    scattered: ScatteredRow,
}

impl GroupScratch {
    fn new(vocabulary: usize) -> Self {
        Self {
            frequency: vec![0; vocabulary],
            position: vec![0; vocabulary],
            touched: Vec::new(),
            scattered: ScatteredRow::new(vocabulary),
        }
    }
}

/// Per-thread state of a group's probe, reused from one probing member to
/// the next.
struct ProbeScratch {
    /// One bit per member: taken as a candidate by the member probed last.
    /// Most posting entries only read this (a few kilobytes, in cache).
    taken: Vec<u64>,
    /// What the member probed last found of each candidate, in the order
    /// taken, and where each is in that list.
    met: Vec<Met>,
    met_table: CandidateTable,
    /// Per side and position: how many entries of its posting list lie
    /// below the member probed last.
    cursors: [Vec<u32>; 2],
    /// The candidates of the member probed last.
    candidates: Vec<u32>,
    /// Posting entries walked, and candidates that passed the first-token
    /// and size filters, for the trace log.
    walked: usize,
    after_size: usize,
}

#[derive(Clone, Copy)]
struct Met {
    /// The candidate.
    member: u32,
    /// Index (into `ordered`) of the last shared token found.
    last_index: u32,
    /// Products of the shared prefix tokens found.
    accumulated: f64,
    /// This member's unit length after the last shared token found.
    rest: f32,
    /// This member's prefix end and unit length from there, copied from
    /// the postings where it was taken.
    prefix_end: u32,
    prefix_end_rest: f32,
}

impl ProbeScratch {
    fn new(members: usize, positions: usize) -> Self {
        Self {
            taken: vec![0; members.div_ceil(64)],
            met: Vec::new(),
            met_table: CandidateTable::new(),
            cursors: [vec![0; positions], vec![0; positions]],
            candidates: Vec::new(),
            walked: 0,
            after_size: 0,
        }
    }
}

/// Where each candidate of the member being probed is in `ProbeScratch::met`:
/// an open-addressing hash table (linear probing), small enough to stay in
/// cache where an array over all members would not. Emptied between probes
/// by starting a new generation: a slot of an older one is free.
struct CandidateTable {
    slots: Vec<CandidateSlot>,
    /// The generation of the taken slots.
    generation: u32,
    /// How many slots are taken.
    len: usize,
}

#[derive(Clone, Copy)]
struct CandidateSlot {
    member: u32,
    /// Index into `met`.
    index: u32,
    generation: u32,
}

impl CandidateTable {
    const FREE: CandidateSlot = CandidateSlot {
        member: 0,
        index: 0,
        generation: 0,
    };

    fn new() -> Self {
        Self {
            slots: vec![Self::FREE; 1024],
            generation: 1,
            len: 0,
        }
    }

    fn home(&self, member: u32) -> usize {
        // Fibonacci hashing: the top bits of the product.
        let bits = self.slots.len().trailing_zeros();
        (u64::from(member).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Records `member` at `index`; `member` must not be in the table.
    fn insert(&mut self, member: u32, index: usize) {
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![Self::FREE; self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, grown);
            let generation = self.generation;
            for slot in old.into_iter().filter(|slot| slot.generation == generation) {
                self.place(slot.member, slot.index);
            }
        }
        self.place(member, index as u32);
        self.len += 1;
    }

    fn place(&mut self, member: u32, index: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(member);
        while self.slots[slot].generation == self.generation {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = CandidateSlot {
            member,
            index,
            generation: self.generation,
        };
    }

    /// The index recorded for `member`, which is in the table. (No slot
    /// is freed within a generation, so none lies between a member's home
    /// and its slot.)
    fn find(&self, member: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(member);
        loop {
            let CandidateSlot {
                member: found,
                index,
                generation,
            } = self.slots[slot];
            if found == member && generation == self.generation {
                return index as usize;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Empties the table.
    fn clear(&mut self) {
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Four billion probes later: free the slots for real.
            self.slots.fill(Self::FREE);
            self.generation = 1;
        }
    }
}

/// What the filters read of one member, together: of the probing member
/// itself, and (rounded, in `PostingBounds`) of the members in its
/// postings.
#[derive(Clone, Copy)]
struct MemberBounds {
    /// The largest unit weight and the sum of the unit weights: the size
    /// filter.
    largest: f64,
    sum: f64,
    /// The first position past the prefix (the group's number of positions
    /// when the whole row is prefix), and the length of the unit vector
    /// from there on.
    prefix_end: u32,
    prefix_end_rest: f64,
}

/// One entry of a posting list: a member whose prefix holds the position,
/// its unit weight there and the length of its unit vector after it. The
/// numbers are rounded up to `f32`, which only loosens the bounds:
/// candidates are scored in full precision.
#[derive(Clone, Copy, Default)]
struct Posting {
    member: u32,
    unit: f32,
    rest: f32,
}

/// What the candidate checks read of a posting's member, beside the
/// posting (in a parallel array, read only for the entries that pass the
/// first-token bound): walked in list order rather than looked up at random
/// in `member_bounds`. Rounded up to `f32` like `Posting`.
#[derive(Clone, Copy, Default)]
struct PostingBounds {
    /// The member's largest unit weight and the sum of its unit weights
    /// (the size filter).
    largest: f32,
    sum: f32,
    /// The member's prefix end and its unit length from there.
    prefix_end: u32,
    prefix_end_rest: f32,
}

/// The nearest `f32` at or above `value` (which is finite and not negative).
fn rounded_up(value: f64) -> f32 {
    let near = value as f32;
    if f64::from(near) < value {
        near.next_up()
    } else {
        near
    }
}

/// How many entries of `list` (ascending by member) lie below `member`,
/// given that the first `from` do: an exponential search from there, as
/// the answer is usually close.
fn entries_before(list: &[Posting], from: usize, member: u32) -> usize {
    let rest = &list[from..];
    let mut reach = 1;
    while reach < rest.len() && rest[reach - 1].member < member {
        reach *= 2;
    }
    let low = reach / 2;
    let high = reach.min(rest.len());
    from + low + rest[low..high].partition_point(|entry| entry.member < member)
}

/// Inverted index over the prefixes of one group's rows.
struct GroupIndex {
    /// Members (rows of the group) in the order of their token lists.
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
    /// What the filters read of each member.
    member_bounds: Vec<MemberBounds>,
    /// Posting lists per side: the members (ascending) whose prefix holds
    /// a position, `postings[side][starts[side][p]..starts[side][p + 1]]`.
    starts: [Vec<usize>; 2],
    postings: [Vec<Posting>; 2],
    posting_bounds: [Vec<PostingBounds>; 2],
    two_sided: bool,
    /// The threshold loosened by `SLACK`.
    bound: f64,
}

impl GroupIndex {
    fn new(
        corpus: &TokenizedRows,
        rows: Vec<u32>,
        sides: &[u8],
        two_sided: bool,
        threshold: f64,
        threads: usize,
        scratch: &mut GroupScratch,
    ) -> Self {
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

        let bound = threshold * (1.0 - SLACK);
        let shares = even_shares(rows.len(), threads);

        // Each member's (position, unit weight) pairs in token order, its
        // largest unit weight and weight sum, and the largest unit weight of
        // each position over the group; a share of the members per thread.
        let weighed: Vec<WeighedShare> = on_chunks(shares.clone(), |share| {
            WeighedShare::new(corpus, &rows[share], &scratch.position, order.len())
        });
        let mut largest_at_position = vec![0.0f64; order.len()];
        for share in &weighed {
            for (slot, &largest) in largest_at_position
                .iter_mut()
                .zip(&share.largest_at_position)
            {
                *slot = slot.max(largest);
            }
        }
        let member_weights: Vec<&[(u32, f64)]> = weighed
            .iter()
            .flat_map(|share| {
                share.ends.iter().scan(0, |start, &end| {
                    let member = &share.weights[*start..end];
                    *start = end;
                    Some(member)
                })
            })
            .collect();
        let unsorted_sizes: Vec<(f64, f64)> = weighed
            .iter()
            .flat_map(|share| share.sizes.iter().copied())
            .collect();

        // Members in the order of their token lists, so that texts sharing
        // their rarest tokens are neighbours: the members probed one after
        // the other walk the same postings and meet the same members, which
        // are then still in cache. (Any order finds every pair once; none
        // of the bounds depends on it.)
        let positions =
            |member: usize| member_weights[member].iter().map(|(position, _)| *position);
        let by_tokens = sort_on_threads((0..rows.len()).collect(), threads, |&a, &b| {
            positions(a).cmp(positions(b)).then(rows[a].cmp(&rows[b]))
        });
        let mut ordered_offsets = Vec::with_capacity(rows.len() + 1);
        ordered_offsets.push(0);
        for &member in &by_tokens {
            ordered_offsets
                .push(ordered_offsets[ordered_offsets.len() - 1] + member_weights[member].len());
        }
        let token_count = ordered_offsets[rows.len()];
        let mut ordered = vec![0u32; token_count];
        let mut ordered_units = vec![0.0f64; token_count];
        let share_starts: Vec<usize> = shares
            .iter()
            .map(|share| ordered_offsets[share.start])
            .collect();
        let pieces: Vec<_> = split_both_at_starts(&mut ordered, &mut ordered_units, &share_starts)
            .into_iter()
            .zip(shares.iter().cloned())
            .collect();
        on_chunks(pieces, |((positions, units), share)| {
            let mut next = 0;
            for &member in &by_tokens[share] {
                for &(position, unit) in member_weights[member] {
                    positions[next] = position;
                    units[next] = unit;
                    next += 1;
                }
            }
        });
        let rows: Vec<u32> = by_tokens.iter().map(|&member| rows[member]).collect();
        drop(member_weights);
        drop(weighed);

        // A member's prefix ends where no partner could reach the threshold
        // on the tokens left: by Cauchy–Schwarz the rest contributes at most
        // the length of the rest of the unit vector, and at most the sum of
        // its unit weights times the largest unit weight of the same token
        // in the group.
        let prefix_lengths: Vec<usize> = on_chunks(shares.clone(), |share| {
            let (mut squared_rest, mut product_rest) = (Vec::new(), Vec::new());
            share
                .map(|member| {
                    let range = ordered_offsets[member]..ordered_offsets[member + 1];
                    let (positions, units) = (&ordered[range.clone()], &ordered_units[range]);
                    squared_rest.clear();
                    squared_rest.resize(units.len() + 1, 0.0);
                    product_rest.clear();
                    product_rest.resize(units.len() + 1, 0.0);
                    for (i, (&position, &unit)) in positions.iter().zip(units).enumerate().rev() {
                        squared_rest[i] = squared_rest[i + 1] + unit * unit;
                        product_rest[i] =
                            product_rest[i + 1] + unit * largest_at_position[position as usize];
                    }
                    (1..=units.len())
                        .find(|&length| {
                            squared_rest[length].sqrt().min(product_rest[length]) < bound
                        })
                        .unwrap_or(units.len())
                })
                .collect::<Vec<usize>>()
        })
        .concat();
        let member_sides: Vec<u8> = rows.iter().map(|&row| sides[row as usize]).collect();
        let mut ordered_rest = vec![0.0; token_count];
        let pieces: Vec<_> = split_at_starts(&mut ordered_rest, &share_starts)
            .into_iter()
            .zip(shares.iter().cloned())
            .collect();
        let member_bounds: Vec<MemberBounds> = on_chunks(pieces, |(rests, share)| {
            let share_start = ordered_offsets[share.start];
            share
                .map(|member| {
                    let (begin, end) = (ordered_offsets[member], ordered_offsets[member + 1]);
                    let rest = &mut rests[begin - share_start..end - share_start];
                    fill_rest_lengths(&ordered_units[begin..end], 1.0, rest);
                    let prefix_end = prefix_lengths[member];
                    let (prefix_end, prefix_end_rest) = if begin + prefix_end < end {
                        (ordered[begin + prefix_end], rest[prefix_end])
                    } else {
                        (order.len() as u32, 0.0)
                    };
                    let (largest, sum) = unsorted_sizes[by_tokens[member]];
                    MemberBounds {
                        largest,
                        sum,
                        prefix_end,
                        prefix_end_rest,
                    }
                })
                .collect::<Vec<MemberBounds>>()
        })
        .concat();
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
        // Each thread fills the lists of a range of positions holding about
        // as many entries as the others' (reading every member's prefix,
        // writing only its own lists).
        let mut postings: [Vec<Posting>; 2] = Default::default();
        let mut posting_bounds: [Vec<PostingBounds>; 2] = Default::default();
        for side in 0..2 {
            let side_starts = &starts[side];
            let total = side_starts[order.len()];
            if total == 0 {
                continue;
            }
            let mut lists = vec![Posting::default(); total];
            let mut lists_bounds = vec![PostingBounds::default(); total];
            // The first position of each share of the entries, then the end.
            let mut position_bounds: Vec<usize> = even_shares(total, threads)
                .iter()
                .map(|share| side_starts.partition_point(|&start| start < share.start))
                .collect();
            position_bounds.push(order.len());
            let entry_starts: Vec<usize> = position_bounds[..position_bounds.len() - 1]
                .iter()
                .map(|&position| side_starts[position])
                .collect();
            let pieces: Vec<_> = split_both_at_starts(&mut lists, &mut lists_bounds, &entry_starts)
                .into_iter()
                .zip(position_bounds.windows(2).map(|pair| pair[0]..pair[1]))
                .collect();
            on_chunks(pieces, |((entries, entries_bounds), positions)| {
                let base = side_starts[positions.start];
                let mut fill: Vec<usize> = side_starts[positions.clone()]
                    .iter()
                    .map(|start| start - base)
                    .collect();
                for member in 0..rows.len() {
                    if usize::from(member_sides[member]) != side {
                        continue;
                    }
                    let begin = ordered_offsets[member];
                    let MemberBounds {
                        largest,
                        sum,
                        prefix_end,
                        prefix_end_rest,
                    } = member_bounds[member];
                    let bounds = PostingBounds {
                        largest: rounded_up(largest),
                        sum: rounded_up(sum),
                        prefix_end,
                        prefix_end_rest: rounded_up(prefix_end_rest),
                    };
                    for index in begin..begin + prefix_lengths[member] {
                        // A prefix's positions ascend.
                        let position = ordered[index] as usize;
                        if position < positions.start {
                            continue;
                        }
                        if position >= positions.end {
                            break;
                        }
                        let slot = &mut fill[position - positions.start];
                        entries[*slot] = Posting {
                            member: member as u32,
                            unit: rounded_up(ordered_units[index]),
                            rest: rounded_up(rest_after(
                                &ordered_rest,
                                &ordered_offsets,
                                member,
                                index,
                            )),
                        };
                        entries_bounds[*slot] = bounds;
                        *slot += 1;
                    }
                }
            });
            postings[side] = lists;
            posting_bounds[side] = lists_bounds;
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
            member_bounds,
            starts,
            postings,
            posting_bounds,
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
        if self.rows.len() < 2 {
            return;
        }
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scattered = ScatteredRow::new(corpus.vocabulary_len());
            self.probe_blocks(corpus, threshold, &next, &mut scattered)
        };
        on_threads(threads, work, matches);
    }

    /// Probes blocks of members, taking the next block from `next` until
    /// none is left, and returns the matches found.
    fn probe_blocks(
        &self,
        corpus: &TokenizedRows,
        threshold: f64,
        next: &AtomicUsize,
        scattered: &mut ScatteredRow,
    ) -> Vec<(u32, u32, f64)> {
        let members = self.rows.len();
        let mut found = Vec::new();
        if members < 2 {
            return found;
        }
        let mut probe = self.probe_scratch();
        let mut scored = 0usize;
        loop {
            let block = next.fetch_add(PROBE_BLOCK, Ordering::Relaxed);
            if block >= members {
                break;
            }
            for member in block..(block + PROBE_BLOCK).min(members) {
                self.probe_member(member, &mut probe);
                if probe.candidates.is_empty() {
                    continue;
                }
                let row = self.rows[member];
                scored += probe.candidates.len();
                scattered.load(corpus, row);
                for &candidate in &probe.candidates {
                    let other = self.rows[candidate as usize];
                    let score = corpus.cosine_scattered(row, scattered, other);
                    if score >= threshold {
                        found.push((row, other, score));
                    }
                }
                scattered.unload(corpus, row);
            }
        }
        if members >= SHARED_GROUP_SIZE {
            tracing::trace!(
                walked = probe.walked,
                after_size = probe.after_size,
                scored,
                found = found.len(),
                "similar_pairs: candidates of one thread"
            );
        }
        found
    }

    /// The earlier members sharing a prefix token with `member` that can
    /// still reach the threshold, each once.
    ///
    /// Candidates come from the postings of `member`'s prefix tokens, which
    /// hold the other members' prefixes. A member is taken at the first
    /// entry where it passes the first-token and size filters, and the
    /// products of its entries are summed from there (`accumulated`). For a
    /// matching pair that entry is their first shared token: it lies in
    /// both prefixes, and the filters bound the score there. So a member
    /// failing at an entry is not recorded (most entries only read one bit):
    /// if that was their first shared token they cannot match, and whether
    /// it is taken later and then dropped or scored changes nothing.
    ///
    /// For a matching pair, a shared token the walk missed lies at or past
    /// the end of one of the two prefixes, so past the last shared token
    /// found, and what the missed tokens add is at most the product of both
    /// rows' unit lengths after that token (read from the postings, no
    /// lookup) and, tighter, from the earlier of the two prefix ends
    /// (Cauchy–Schwarz); a candidate whose sum plus either cannot reach the
    /// threshold is dropped unscored. The tighter bound needs the unit length
    /// of the row with the later prefix end from the other's prefix end on,
    /// a search in its token list; so first that length is loosened to the
    /// row's length after the last shared token found (no search), and the
    /// search is made only for the candidates this keeps.
    fn probe_member(&self, member: usize, probe: &mut ProbeScratch) {
        let ProbeScratch {
            taken,
            met,
            met_table,
            cursors,
            candidates,
            walked,
            after_size,
        } = probe;
        candidates.clear();
        met.clear();
        let side = usize::from(self.sides[member]);
        let other_side = if self.two_sided { 1 - side } else { side };
        let (starts, postings, posting_bounds) = (
            &self.starts[other_side],
            &self.postings[other_side],
            &self.posting_bounds[other_side],
        );
        let MemberBounds { largest, sum, .. } = self.member_bounds[member];
        let begin = self.ordered_offsets[member];
        for index in begin..begin + self.prefix_lengths[member] {
            let (position, unit) = (self.ordered[index] as usize, self.ordered_units[index]);
            let member_rest = rest_after(&self.ordered_rest, &self.ordered_offsets, member, index);
            let range = starts[position]..starts[position + 1];
            let (list, list_bounds) = (&postings[range.clone()], &posting_bounds[range]);
            // This thread probes members in ascending order, so each list's
            // end only moves on: search from where it was.
            let cursor = &mut cursors[other_side][position];
            let end = entries_before(list, *cursor as usize, member as u32);
            *cursor = end as u32;
            *walked += end;
            // Most entries neither belong to a candidate nor pass the
            // first-token bound (below): a tight loop skips them, reading
            // only the entry and one bit.
            let unit_loosened = unit * (1.0 + SLACK);
            let (list, list_bounds) = (&list[..end], &list_bounds[..end]);
            let mut next = 0;
            loop {
                let taken_words: &[u64] = taken;
                let skipped = list[next..].iter().position(|entry| {
                    let other = entry.member;
                    taken_words[other as usize / 64] & (1u64 << (other % 64)) != 0
                        || unit_loosened * f64::from(entry.unit)
                            + member_rest * f64::from(entry.rest)
                            >= self.bound
                });
                let Some(skipped) = skipped else {
                    break;
                };
                let at = next + skipped;
                next = at + 1;
                let (entry, other_bounds) = (&list[at], &list_bounds[at]);
                let other = entry.member;
                let (word, bit) = (other as usize / 64, 1u64 << (other % 64));
                let product = unit * f64::from(entry.unit);
                if taken[word] & bit != 0 {
                    let found = &mut met[met_table.find(other)];
                    found.accumulated += product;
                    // The member's prefix is walked in token order: the
                    // last rest lengths written are the smallest.
                    found.last_index = index as u32;
                    found.rest = entry.rest;
                    continue;
                }
                // Not taken yet, and this entry passed the first-token
                // bound: if this is their first shared token, every other
                // shared token lies after it in both rows, so this product
                // plus both rest lengths bounds the score (failing it, it
                // was not their first shared token or they cannot match).
                // Then the size filter: the dot product of unit vectors is
                // at most either one's largest weight times the other's
                // weight sum.
                if largest * f64::from(other_bounds.sum) < self.bound
                    || f64::from(other_bounds.largest) * sum < self.bound
                {
                    continue;
                }
                taken[word] |= bit;
                met_table.insert(other, met.len());
                met.push(Met {
                    member: other,
                    last_index: index as u32,
                    accumulated: product,
                    rest: entry.rest,
                    prefix_end: other_bounds.prefix_end,
                    prefix_end_rest: other_bounds.prefix_end_rest,
                });
            }
        }
        *after_size += met.len();
        for found in met.iter() {
            taken[found.member as usize / 64] &= !(1u64 << (found.member % 64));
        }
        met_table.clear();
        let MemberBounds {
            prefix_end: member_end,
            prefix_end_rest: member_end_rest,
            ..
        } = self.member_bounds[member];
        let bound = self.bound;
        candidates.extend(
            met.iter()
                .filter(|found| {
                    let &Met {
                        last_index,
                        accumulated,
                        rest: other_rest,
                        prefix_end: other_end,
                        prefix_end_rest: other_end_rest,
                        member: other,
                    } = *found;
                    let other = other as usize;
                    let (other_rest, other_end_rest) =
                        (f64::from(other_rest), f64::from(other_end_rest));
                    let found = accumulated * (1.0 + SLACK);
                    let member_rest = rest_after(
                        &self.ordered_rest,
                        &self.ordered_offsets,
                        member,
                        last_index as usize,
                    );
                    if found + member_rest * other_rest < bound {
                        return false;
                    }
                    if other_end < member_end {
                        found + member_rest * other_end_rest >= bound
                            && found + self.rest_from(member, other_end) * other_end_rest >= bound
                    } else {
                        found + member_end_rest * other_rest >= bound
                            && found + member_end_rest * self.rest_from(other, member_end) >= bound
                    }
                })
                .map(|found| found.member),
        );
    }

    /// A thread's arrays for probing this group.
    fn probe_scratch(&self) -> ProbeScratch {
        ProbeScratch::new(self.rows.len(), self.starts[0].len() - 1)
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
        // More than SHARED_GROUP_SIZE rows in one group: the threaded path.
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
        // One large group beside many small ones, joined side by side.
        let mut mixed = rows.clone();
        for (index, row) in mixed.iter_mut().enumerate().skip(1100) {
            row.group = 1 + index as u32 % 40;
        }
        assert_same(
            &similar_pairs(&mixed, None, &weights, &options),
            &brute_force(&mixed, None, &weights, 0.5, None),
            "1100 rows in one group, 400 in 40",
        );
    }

    #[test]
    fn candidate_table_finds_every_member_and_empties() {
        // Enough members to grow the table several times, ids spread out.
        let mut random = Random(0x5EED);
        let mut members: Vec<u32> = (0..5000).map(|_| random.below(1 << 30) as u32).collect();
        members.sort_unstable();
        members.dedup();
        let mut table = CandidateTable::new();
        for round in 0..2 {
            for (index, &member) in members.iter().enumerate() {
                table.insert(member, index + round);
            }
            for (index, &member) in members.iter().enumerate() {
                assert_eq!(table.find(member), index + round, "member {member}");
            }
            table.clear();
            assert_eq!(table.len, 0);
            assert!(table
                .slots
                .iter()
                .all(|slot| slot.generation != table.generation));
        }
        // The generation wraps round: every slot is freed for real.
        table.insert(7, 3);
        table.generation = u32::MAX;
        table.insert(9, 4);
        table.clear();
        assert_eq!(table.generation, 1);
        assert!(table.slots.iter().all(|slot| slot.generation == 0));
        table.insert(9, 5);
        assert_eq!(table.find(9), 5);
    }

    #[test]
    fn entries_before_equals_a_binary_search() {
        let mut random = Random(77);
        for _ in 0..200 {
            let length = random.below(300);
            let mut members: Vec<u32> = (0..length).map(|_| random.below(1000) as u32).collect();
            members.sort_unstable();
            let list: Vec<Posting> = members
                .iter()
                .map(|&member| Posting {
                    member,
                    ..Posting::default()
                })
                .collect();
            // Probing members in ascending order from a cursor, as a thread does.
            let mut cursor = 0;
            let mut probes: Vec<u32> = (0..20).map(|_| random.below(1100) as u32).collect();
            probes.sort_unstable();
            for member in probes {
                let expected = members.partition_point(|&m| m < member);
                cursor = entries_before(&list, cursor, member);
                assert_eq!(cursor, expected, "member {member} of {members:?}");
            }
        }
    }

    #[test]
    fn rounded_up_never_rounds_down() {
        let mut random = Random(3);
        let mut values = vec![0.0, 1.0, 0.5, 1e-30, 0.1, 1.0 / 3.0, f64::from(0.7f32)];
        values.extend((0..10_000).map(|_| random.below(1 << 30) as f64 / (1u64 << 30) as f64));
        for value in values {
            let up = rounded_up(value);
            assert!(f64::from(up) >= value, "{value} rounded to {up}");
            // And by at most one step of f32.
            assert!(
                f64::from(up.next_down()) < value || value == 0.0,
                "{value}: {up}"
            );
        }
    }

    #[test]
    fn index_and_tokens_are_the_same_on_any_number_of_threads() {
        // Tokenising and indexing split the rows among threads and merge
        // what each found: the arrays must not depend on the split.
        let texts = random_texts(700, 5);
        let rows = rows(&texts, 1, 0);
        let weights = TokenWeights::from_texts(&texts);
        let built = |threads: usize| {
            let corpus = TokenizedRows::new(&rows, &weights, threads);
            let members: Vec<u32> = (0..rows.len() as u32)
                .filter(|&row| corpus.norms[row as usize] > 0.0)
                .collect();
            let mut scratch = GroupScratch::new(corpus.vocabulary_len());
            let sides = vec![0u8; rows.len()];
            let group =
                GroupIndex::new(&corpus, members, &sides, false, 0.5, threads, &mut scratch);
            let postings: Vec<(u32, f32, f32, u32, f32)> = group.postings[0]
                .iter()
                .zip(&group.posting_bounds[0])
                .map(|(entry, bounds)| {
                    let (member, unit, rest) = (entry.member, entry.unit, entry.rest);
                    (
                        member,
                        unit,
                        rest,
                        bounds.prefix_end,
                        bounds.prefix_end_rest,
                    )
                })
                .collect();
            (
                (corpus.tokens, corpus.token_weights, corpus.offsets),
                (corpus.word_starts, corpus.norms, corpus.rank_weights),
                (group.rows, group.ordered, group.ordered_units),
                (group.ordered_rest, group.prefix_lengths, group.starts),
                postings,
            )
        };
        let alone = built(1);
        assert!(alone.4.len() > 1000, "a real index: {}", alone.4.len());
        for threads in [2, 3, 7] {
            assert!(built(threads) == alone, "{threads} threads");
        }
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
        let group = GroupIndex::new(&corpus, members, &sides, false, 0.8, 2, &mut scratch);
        let mut probe = group.probe_scratch();
        let mut scored = 0usize;
        for member in 0..group.rows.len() {
            group.probe_member(member, &mut probe);
            scored += probe.candidates.len();
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
    fn sorting_on_threads_equals_one_sort() {
        let mut random = Random(0x5eed);
        // Above the size sorted alone, with repeats so ties occur, and
        // lengths that do not divide evenly among the threads.
        for length in [10, 70_001, 200_003] {
            let items: Vec<(u32, u32)> = (0..length)
                .map(|index| (random.below(5000) as u32, index as u32))
                .collect();
            let mut expected = items.clone();
            expected.sort_unstable_by_key(|item| item.0);
            for threads in [1, 2, 3, 5] {
                let sorted = sort_on_threads(items.clone(), threads, |a, b| a.0.cmp(&b.0));
                assert_eq!(sorted.len(), length, "{threads} threads");
                let keys: Vec<u32> = sorted.iter().map(|item| item.0).collect();
                let expected_keys: Vec<u32> = expected.iter().map(|item| item.0).collect();
                assert_eq!(keys, expected_keys, "{threads} threads, {length} items");
                let mut all = sorted.clone();
                all.sort_unstable();
                let mut original = items.clone();
                original.sort_unstable();
                assert_eq!(all, original, "the same items, {threads} threads");
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
