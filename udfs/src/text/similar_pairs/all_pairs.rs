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
//! - **Marks.** Most rows taken at a first shared token share no other
//!   prefix token with the probing row, and that check drops them. So a
//!   row whose product plus what tokens at or past either prefix end can
//!   add falls short is not recorded but marked (a bit, and its sum so far
//!   in a byte, rounded up); met again, it is recorded with that sum if the
//!   sum plus the new product can now reach the threshold, and stays
//!   marked with the larger sum if not. A row never met again would have
//!   been dropped unscored.
//! - **Verification.** Every remaining candidate is scored with the very
//!   weights and the same arithmetic, in the same order, as
//!   `func_similarity` (see `WeightedTokens`), so the scores are
//!   bit-identical and the pair set is exactly the brute-force one. The
//!   probing row's weights are spread over the vocabulary (`ScatteredRow`),
//!   so a candidate is scored by walking its own tokens only.
//! - **Copies.** Identical texts (same side, same group) are joined once and
//!   their matches given to every copy.
//! - **Tokens kept.** Each distinct text's tokens and counts are kept in a
//!   memo (`memo.rs`) for later calls, and saved by an engine beside its
//!   tables for the next process; the weights are applied at each call.
//! - **Memory.** The walk looks up no member's record at random: a posting
//!   carries the member's unit weight, its rest length there and from its
//!   prefix end (all rounded up to `f32`, which only loosens the bounds),
//!   and a parallel array its prefix end, read only when it becomes a
//!   candidate. The size filter reads the
//!   member's own record, but only in a probe where it can drop one of the
//!   other side's members (the side's smallest numbers say so; at 0.5 it
//!   hardly ever can). Entries that neither belong to a candidate
//!   nor pass the first-token bound (most of them) are skipped by a tight
//!   loop reading only the posting and one bit. The records of the probing
//!   row's candidates are kept in the order taken and found through a
//!   small hash table of indexes into them, which stays in cache where an
//!   array over all members (24 MB at a million, or 4 MB of indexes) did
//!   not; and each thread finds the end of a posting list from where it
//!   ended for its previous probe.
//!
//! The bounds are loosened by a relative `1e-9` so that rounding in the
//! filters can only let more candidates through, never fewer. Tokenising,
//! indexing, probing and sorting run on all cores (`std::thread::scope`): a
//! large group's members are shared among the threads, small groups (a
//! department's clauses) are taken one per thread.

use datafusion::common::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::text::token_weights::TokenWeights;

mod index;
mod memo;
mod probe;
#[cfg(test)]
mod tests;
mod threads;
mod tokens;

use index::{GroupIndex, GroupScratch};
pub use memo::{PairTokenMemo, SavedPairTokens, SavedTokensError};
use threads::{on_threads, sort_on_threads};
use tokens::{ScatteredRow, TokenizedRows};

/// Relative slack of the filter bounds: rounding errors of sums of a few
/// hundred squared weights are far below it.
pub(super) const SLACK: f64 = 1e-9;

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
    similar_pairs_with_memo(left, right, weights, options, &PairTokenMemo::new())
}

/// [`similar_pairs`], tokenising only the texts `memo` does not hold yet
/// and keeping them there for the next call.
pub fn similar_pairs_with_memo(
    left: &[PairRow<'_>],
    right: Option<&[PairRow<'_>]>,
    weights: &TokenWeights,
    options: &JoinOptions,
    memo: &PairTokenMemo,
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
    let corpus = {
        let mut store = memo.lock();
        let held = store.len();
        let corpus = TokenizedRows::new(&distinct, weights, threads, &mut store);
        tracing::debug!(
            rows = rows.len(),
            distinct = distinct.len(),
            tokenised = store.len() - held,
            seconds = started.elapsed().as_secs_f64(),
            "similar_pairs: tokenised"
        );
        memo.after_call(&mut store);
        corpus
    };
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
pub(super) const SHARED_GROUP_SIZE: usize = 1024;

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
