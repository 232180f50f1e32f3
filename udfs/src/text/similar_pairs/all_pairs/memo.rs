//! Tokenised texts kept from one `similar_pairs` call to the next, so that
//! a second join over the same texts does not normalise and segment them
//! again.

use std::sync::{Mutex, MutexGuard};

use datafusion::common::HashMap;

use super::threads::on_chunks;
use crate::text::func_similarity::CountedTokens;

/// Past this many tokens held (about 400 MB with the texts; a million duty
/// texts hold some 32 million), the store is emptied after the call.
const STORE_TOKEN_LIMIT: usize = 48 << 20;

/// The counted tokens of every text `similar_pairs` has tokenised, kept
/// between its calls within one engine. Normalising and segmenting (jieba)
/// is most of what a call spends before joining (0.45 s of 1.3 s at
/// 100,000 texts), and an analyst tries several thresholds, `top_k`s and
/// partitions over the same texts. Tokens depend on the text alone; the
/// corpus weights are applied at each call, so writes that change them
/// leave what is kept valid.
#[derive(Debug, Default)]
pub struct PairTokenMemo {
    store: Mutex<TokenStore>,
}

impl PairTokenMemo {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct texts are held.
    pub fn texts(&self) -> usize {
        self.lock().len()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, TokenStore> {
        match self.store.lock() {
            Ok(store) => store,
            Err(poisoned) => {
                // A call panicked while extending the store, which may be
                // half done: start afresh.
                let mut store = poisoned.into_inner();
                *store = TokenStore::default();
                self.store.clear_poison();
                store
            }
        }
    }
}

/// One token of the store's vocabulary.
#[derive(Debug)]
pub(super) enum StoredToken {
    /// A character bigram, packed (`pack_bigram`).
    Bigram(u64),
    Word(Box<str>),
}

/// Texts' counted tokens over one vocabulary of ids in the order first met.
#[derive(Debug)]
pub(super) struct TokenStore {
    entries: HashMap<Box<str>, u32>,
    /// Entry `e`'s tokens are `tokens[starts[e]..starts[e + 1]]` with their
    /// counts in `counts`: its bigrams by packed value, then its words as
    /// strings, `func_similarity`'s order.
    starts: Vec<usize>,
    tokens: Vec<u32>,
    counts: Vec<u32>,
    pub(super) vocabulary: Vec<StoredToken>,
    bigram_ids: HashMap<u64, u32>,
    word_ids: HashMap<Box<str>, u32>,
}

impl Default for TokenStore {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            starts: vec![0],
            tokens: Vec::new(),
            counts: Vec::new(),
            vocabulary: Vec::new(),
            bigram_ids: HashMap::new(),
            word_ids: HashMap::new(),
        }
    }
}

/// The counted tokens of a contiguous share of the texts to add, with
/// share-local word ids (so that the words of a million texts are not a
/// million string vectors).
struct CountedShare {
    bigrams: Vec<(u64, u32)>,
    /// The share's distinct bigrams, sorted.
    bigram_set: Vec<u64>,
    words: Vec<(u32, u32)>,
    word_names: Vec<String>,
    /// Per text, where its bigrams and its words end.
    ends: Vec<(usize, usize)>,
}

impl CountedShare {
    fn new(texts: &[&str]) -> Self {
        let mut share = CountedShare {
            bigrams: Vec::new(),
            bigram_set: Vec::new(),
            words: Vec::new(),
            word_names: Vec::new(),
            ends: Vec::with_capacity(texts.len()),
        };
        let mut word_ids: HashMap<String, u32> = HashMap::new();
        for text in texts {
            let counted = CountedTokens::new(text);
            share.bigrams.extend_from_slice(&counted.bigrams);
            for (word, count) in counted.words {
                let id = match word_ids.get(word.as_str()) {
                    Some(&id) => id,
                    None => {
                        let id = share.word_names.len() as u32;
                        share.word_names.push(word.clone());
                        word_ids.insert(word, id);
                        id
                    }
                };
                share.words.push((id, count));
            }
            share.ends.push((share.bigrams.len(), share.words.len()));
        }
        share.bigram_set = share.bigrams.iter().map(|(bigram, _)| *bigram).collect();
        share.bigram_set.sort_unstable();
        share.bigram_set.dedup();
        share
    }
}

/// A share's tokens as store ids, ready to append.
struct StoredShare {
    tokens: Vec<u32>,
    counts: Vec<u32>,
    ends: Vec<usize>,
}

impl TokenStore {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `entry`'s token ids and their counts.
    pub(super) fn entry(&self, entry: u32) -> (&[u32], &[u32]) {
        let range = self.starts[entry as usize]..self.starts[entry as usize + 1];
        (&self.tokens[range.clone()], &self.counts[range])
    }

    /// The entry of each of `texts`, tokenising (on `threads` threads) the
    /// texts not held yet.
    pub(super) fn entries_of(&mut self, texts: &[&str], threads: usize) -> Vec<u32> {
        let held = self.len() as u32;
        let mut missing: Vec<&str> = Vec::new();
        let mut missing_entries: HashMap<&str, u32> = HashMap::new();
        let mut entries = Vec::with_capacity(texts.len());
        for &text in texts {
            let entry = match self.entries.get(text) {
                Some(&entry) => entry,
                // New texts are added in the order first met, so their
                // entries are known before they are tokenised.
                None => *missing_entries.entry(text).or_insert_with(|| {
                    missing.push(text);
                    held + missing.len() as u32 - 1
                }),
            };
            entries.push(entry);
        }
        self.add(&missing, threads);
        entries
    }

    /// Tokenises `texts` (none of them held) and appends them in order.
    fn add(&mut self, texts: &[&str], threads: usize) {
        if texts.is_empty() {
            return;
        }
        let share_len = texts.len().div_ceil(threads.max(1)).max(1);
        let shares: Vec<CountedShare> =
            on_chunks(texts.chunks(share_len).collect(), CountedShare::new);
        // New tokens get ids here, once each; every occurrence is then
        // mapped on the threads.
        let word_maps: Vec<Vec<u32>> = shares
            .iter()
            .map(|share| {
                for &bigram in &share.bigram_set {
                    if !self.bigram_ids.contains_key(&bigram) {
                        let id = self.vocabulary.len() as u32;
                        self.vocabulary.push(StoredToken::Bigram(bigram));
                        self.bigram_ids.insert(bigram, id);
                    }
                }
                share
                    .word_names
                    .iter()
                    .map(|word| match self.word_ids.get(word.as_str()) {
                        Some(&id) => id,
                        None => {
                            let id = self.vocabulary.len() as u32;
                            self.vocabulary
                                .push(StoredToken::Word(word.as_str().into()));
                            self.word_ids.insert(word.as_str().into(), id);
                            id
                        }
                    })
                    .collect()
            })
            .collect();
        let bigram_ids = &self.bigram_ids;
        let stored: Vec<StoredShare> = on_chunks(
            shares.iter().zip(&word_maps).collect(),
            |(share, word_map)| {
                let mut stored = StoredShare {
                    tokens: Vec::with_capacity(share.bigrams.len() + share.words.len()),
                    counts: Vec::with_capacity(share.bigrams.len() + share.words.len()),
                    ends: Vec::with_capacity(share.ends.len()),
                };
                let (mut bigram_start, mut word_start) = (0, 0);
                for &(bigram_end, word_end) in &share.ends {
                    for &(bigram, count) in &share.bigrams[bigram_start..bigram_end] {
                        // Every bigram of the share was given an id above.
                        stored
                            .tokens
                            .push(bigram_ids.get(&bigram).copied().unwrap_or(u32::MAX));
                        stored.counts.push(count);
                    }
                    for &(word, count) in &share.words[word_start..word_end] {
                        stored.tokens.push(word_map[word as usize]);
                        stored.counts.push(count);
                    }
                    stored.ends.push(stored.tokens.len());
                    (bigram_start, word_start) = (bigram_end, word_end);
                }
                stored
            },
        );
        let mut texts = texts.iter();
        for share in stored {
            let base = self.tokens.len();
            self.tokens.extend_from_slice(&share.tokens);
            self.counts.extend_from_slice(&share.counts);
            for end in share.ends {
                self.starts.push(base + end);
                if let Some(&text) = texts.next() {
                    let entry = self.entries.len() as u32;
                    self.entries.insert(text.into(), entry);
                }
            }
        }
    }

    /// Empties the store when it holds more than its limit of tokens.
    pub(super) fn keep_within_limit(&mut self) {
        if self.tokens.len() > STORE_TOKEN_LIMIT {
            *self = TokenStore::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_tokenised_once_and_kept_in_order() {
        let mut store = TokenStore::default();
        let first = store.entries_of(&["负责全市道路交通", "组织实施", "负责全市道路交通"], 2);
        assert_eq!(first, vec![0, 1, 0]);
        assert_eq!(store.len(), 2);
        let tokens_after_first = store.tokens.len();
        let second = store.entries_of(&["组织实施", "承担有关工作", "负责全市道路交通"], 3);
        assert_eq!(second, vec![1, 2, 0]);
        assert_eq!(store.len(), 3);
        assert!(store.tokens.len() > tokens_after_first);
        for (entry, text) in ["负责全市道路交通", "组织实施", "承担有关工作"]
            .iter()
            .enumerate()
        {
            let (ids, counts) = store.entry(entry as u32);
            let counted = CountedTokens::new(text);
            let expected: Vec<String> = counted
                .bigrams
                .iter()
                .map(|(bigram, count)| format!("b{bigram}:{count}"))
                .chain(
                    counted
                        .words
                        .iter()
                        .map(|(word, count)| format!("w{word}:{count}")),
                )
                .collect();
            let held: Vec<String> = ids
                .iter()
                .zip(counts)
                .map(|(&id, count)| match &store.vocabulary[id as usize] {
                    StoredToken::Bigram(bigram) => format!("b{bigram}:{count}"),
                    StoredToken::Word(word) => format!("w{word}:{count}"),
                })
                .collect();
            assert_eq!(held, expected, "{text}");
        }
    }

    #[test]
    fn a_store_past_its_limit_is_emptied() {
        let mut store = TokenStore::default();
        store.entries_of(&["负责全市道路交通"], 1);
        store.keep_within_limit();
        assert_eq!(store.len(), 1);
        store.tokens.resize(STORE_TOKEN_LIMIT + 1, 0);
        store.keep_within_limit();
        assert_eq!(store.len(), 0);
        assert_eq!(store.entries_of(&["组织实施"], 1), vec![0]);
    }

    #[test]
    fn a_poisoned_memo_starts_afresh() {
        let memo = PairTokenMemo::new();
        memo.lock().entries_of(&["负责全市道路交通"], 1);
        assert_eq!(memo.texts(), 1);
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _store = memo.lock();
                    panic!("a call panicking while it holds the store");
                })
                .join()
        });
        assert!(result.is_err());
        assert_eq!(memo.texts(), 0);
        assert_eq!(memo.lock().entries_of(&["组织实施"], 1), vec![0]);
    }
}
