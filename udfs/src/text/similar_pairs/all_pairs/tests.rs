//! The join against brute force (pair sets and score bits), and what its
//! parts build.

use super::index::GroupScratch;
use super::memo::TokenStore;
use super::tokens::TokenizedRows;
use super::*;
use crate::text::func_similarity::tests::DUTY_CLAUSES;
use crate::text::func_similarity::WeightedTokens;

/// A small deterministic generator (xorshift64*), enough for test data.
pub(super) struct Random(pub(super) u64);

impl Random {
    pub(super) fn below(&mut self, bound: usize) -> usize {
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

/// One group's index over `rows` (those with tokens), as the join builds
/// it, with the tokenised rows it was built from.
fn group_index(
    rows: &[PairRow<'_>],
    weights: &TokenWeights,
    sides: &[u8],
    two_sided: bool,
    threshold: f64,
    threads: usize,
) -> (TokenizedRows, GroupIndex) {
    let corpus = TokenizedRows::new(rows, weights, threads, &mut TokenStore::default());
    let members: Vec<u32> = (0..rows.len() as u32)
        .filter(|&row| corpus.norms[row as usize] > 0.0)
        .collect();
    let mut scratch = GroupScratch::new(corpus.vocabulary_len());
    let group = GroupIndex::new(
        &corpus,
        members,
        sides,
        two_sided,
        threshold,
        threads,
        &mut scratch,
    );
    (corpus, group)
}

#[test]
fn index_and_tokens_are_the_same_on_any_number_of_threads() {
    // Tokenising and indexing split the rows among threads and merge
    // what each found: the arrays must not depend on the split.
    let texts = random_texts(700, 5);
    let rows = rows(&texts, 1, 0);
    let weights = TokenWeights::from_texts(&texts);
    let sides = vec![0u8; rows.len()];
    let built = |threads: usize| {
        let (corpus, group) = group_index(&rows, &weights, &sides, false, 0.5, threads);
        let postings: Vec<(u32, f32, f32, u32, f32)> = group.postings[0]
            .iter()
            .zip(&group.posting_bounds[0])
            .map(|(entry, bounds)| {
                let (member, unit, rest) = (entry.member, entry.unit, entry.rest);
                (member, unit, rest, bounds.prefix_end, entry.end_rest)
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
fn tokens_through_a_store_holding_other_texts_are_the_same() {
    // A store filled by earlier calls holds other texts, in another order,
    // with ids for tokens these rows lack: the rows' arrays must be those
    // of a fresh store, bit for bit.
    let texts = random_texts(600, 21);
    let others = random_texts(500, 22);
    let rows = rows(&texts, 1, 0);
    let weights = TokenWeights::from_texts(&texts);
    let arrays = |corpus: TokenizedRows| {
        let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
        (
            (corpus.tokens, bits(&corpus.token_weights), corpus.offsets),
            (
                corpus.word_starts,
                bits(&corpus.norms),
                bits(&corpus.rank_weights),
            ),
        )
    };
    let fresh = arrays(TokenizedRows::new(
        &rows,
        &weights,
        2,
        &mut TokenStore::default(),
    ));
    let mut store = TokenStore::default();
    let mut earlier: Vec<&str> = others.iter().map(String::as_str).collect();
    // Half of these rows' texts too, last to first.
    earlier.extend(texts.iter().rev().step_by(2).map(String::as_str));
    store.entries_of(&earlier, 3);
    let held = store.len();
    let warm = arrays(TokenizedRows::new(&rows, &weights, 2, &mut store));
    assert!(fresh == warm);
    assert!(store.len() > held && store.len() < held + texts.len());
    // And again, all held now.
    let held = store.len();
    assert!(arrays(TokenizedRows::new(&rows, &weights, 1, &mut store)) == fresh);
    assert_eq!(store.len(), held);
}

#[test]
fn joins_sharing_a_memo_equal_brute_force() {
    // An analyst's session: one memo across calls over overlapping texts,
    // with the corpus weights changing between them (a write) and another
    // partition of the same texts.
    let texts = random_texts(500, 31);
    let memo = PairTokenMemo::new();
    let options = JoinOptions {
        threshold: 0.5,
        top_k: None,
        threads: 2,
    };
    let first_weights = TokenWeights::from_texts(&texts[..300]);
    let first = rows(&texts[..300], 1, 0);
    assert_same(
        &similar_pairs_with_memo(&first, None, &first_weights, &options, &memo),
        &brute_force(&first, None, &first_weights, 0.5, None),
        "first call",
    );
    let distinct = |texts: &[String]| texts.iter().collect::<std::collections::HashSet<_>>().len();
    assert_eq!(memo.texts(), distinct(&texts[..300]));
    let second_weights = TokenWeights::from_texts(&texts);
    for groups in [1, 4] {
        let all = rows(&texts, groups, 0);
        let case = format!("second call, {groups} groups");
        assert_same(
            &similar_pairs_with_memo(&all, None, &second_weights, &options, &memo),
            &brute_force(&all, None, &second_weights, 0.5, None),
            &case,
        );
    }
    assert_eq!(memo.texts(), distinct(&texts));
    let (left, right) = (rows(&texts[..200], 2, 0), rows(&texts[250..], 2, 1000));
    assert_same(
        &similar_pairs_with_memo(&left, Some(&right), &second_weights, &options, &memo),
        &brute_force(&left, Some(&right), &second_weights, 0.5, None),
        "two tables",
    );
}

#[test]
fn filters_leave_few_candidates() {
    // The point of the join: at a high threshold only a small share of
    // the pairs is ever scored.
    let texts = random_texts(1500, 3);
    let rows = rows(&texts, 1, 0);
    let weights = TokenWeights::from_texts(&texts);
    let sides = vec![0u8; rows.len()];
    let (_, group) = group_index(&rows, &weights, &sides, false, 0.8, 2);
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

#[test]
fn size_floor_holds_each_sides_smallest_bounds() {
    // A probe reads a candidate's size-filter numbers only when the other
    // side's floor says the filter can drop one; the floors must be the
    // true minima, and at a high threshold some probes must read them (so
    // the brute-force tests at 0.9 and 1.0 go through that branch).
    let texts = random_texts(600, 21);
    let rows = rows(&texts, 1, 0);
    let weights = TokenWeights::from_texts(&texts);
    let sides: Vec<u8> = (0..rows.len()).map(|row| (row % 2) as u8).collect();
    let (_, group) = group_index(&rows, &weights, &sides, true, 0.9, 1);
    for side in 0..2u8 {
        let of_side = || {
            group
                .member_bounds
                .iter()
                .zip(&group.sides)
                .filter(move |(_, &s)| s == side)
                .map(|(bounds, _)| bounds)
        };
        let smallest_largest = of_side().map(|b| b.largest).fold(f64::INFINITY, f64::min);
        let smallest_sum = of_side().map(|b| b.sum).fold(f64::INFINITY, f64::min);
        assert!(smallest_largest.is_finite(), "side {side} has members");
        assert_eq!(
            group.size_floor[usize::from(side)],
            (smallest_largest, smallest_sum),
            "side {side}"
        );
    }
    let reading = group
        .member_bounds
        .iter()
        .zip(&group.sides)
        .filter(|(bounds, &side)| {
            let (floor_largest, floor_sum) = group.size_floor[1 - usize::from(side)];
            bounds.largest * floor_sum < group.bound || floor_largest * bounds.sum < group.bound
        })
        .count();
    assert!(reading > 0, "no probe can drop by size at 0.9");
}

#[test]
fn probes_keep_every_match_through_marks() {
    // A member met at its first shared token whose sum cannot reach the
    // threshold unless the walk meets it again is only marked; met again,
    // it stays marked or becomes a candidate. Whatever the path, every
    // earlier member matching the probing one must be a candidate, and
    // every path must be taken here.
    let texts = random_texts(900, 41);
    let rows = rows(&texts, 1, 0);
    let weights = TokenWeights::from_texts(&texts);
    let sides = vec![0u8; rows.len()];
    for threshold in [0.3, 0.5, 0.7] {
        let (_, group) = group_index(&rows, &weights, &sides, false, threshold, 1);
        let tokens: Vec<WeightedTokens> = group
            .rows
            .iter()
            .map(|&row| WeightedTokens::new(rows[row as usize].text, &weights))
            .collect();
        let mut probe = group.probe_scratch();
        let mut matches = 0;
        for member in 0..group.rows.len() {
            group.probe_member(member, &mut probe);
            for earlier in 0..member {
                if tokens[member].cosine(&tokens[earlier]) >= threshold {
                    matches += 1;
                    assert!(
                        probe.candidates.contains(&(earlier as u32)),
                        "t={threshold}: member {member} misses {earlier}"
                    );
                }
            }
        }
        assert!(matches > 100, "t={threshold}: {matches} matches");
        let case = format!(
            "t={threshold}: {} marked, {} marked again, {} taken after a mark",
            probe.marked_count, probe.marked_again, probe.promoted
        );
        assert!(probe.marked_count > 1000, "{case}");
        assert!(probe.marked_again > 10, "{case}");
        assert!(probe.promoted > 10, "{case}");
    }
}
