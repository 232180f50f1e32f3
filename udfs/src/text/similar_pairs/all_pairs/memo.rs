//! Tokenised texts kept from one `similar_pairs` call to the next, so that
//! a second join over the same texts does not normalise and segment them
//! again; saved (by an engine, beside its tables) for the next process.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::common::HashMap;

use super::threads::on_chunks;
use crate::text::func_similarity::CountedTokens;
use crate::text::token_weights::TokenWeights;

mod saved;

pub use saved::SavedTokensError;

/// Past this many tokens held (about 400 MB with the texts; a million duty
/// texts hold some 32 million), the store is emptied after the call.
const STORE_TOKEN_LIMIT: usize = 48 << 20;

/// The saved tokens are replaced once the texts added since they were saved
/// are this share (1/n) of all held: saving rewrites the whole file.
const SAVE_AFTER_ADDED: usize = 10;

/// Where a memo's tokens are kept from one process to the next: an engine
/// keeps them in a file beside its tables.
pub trait SavedPairTokens: std::fmt::Debug + Send + Sync {
    /// The bytes saved last; `None` when nothing is saved or it cannot be
    /// read.
    fn read(&self) -> Option<Vec<u8>>;

    /// Replaces what is saved with the bytes `write` writes, whole or not
    /// at all; whether it did.
    fn save(&self, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> bool;
}

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
    saved: Option<Arc<dyn SavedPairTokens>>,
}

impl PairTokenMemo {
    /// A memo for this process only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A memo that starts from the tokens `saved` holds (read at its first
    /// use, ignored when damaged or of another tokenizer) and saves its
    /// tokens there after calls that added many texts.
    pub fn saved_in(saved: Arc<dyn SavedPairTokens>) -> Self {
        Self {
            store: Mutex::default(),
            saved: Some(saved),
        }
    }

    /// Reads the saved tokens now if they have not been read yet (otherwise
    /// the first use does): a server does this on a thread of its own as it
    /// starts, so that its first join does not wait for the file.
    pub fn read_saved(&self) {
        drop(self.lock());
    }

    /// Whether the memo has looked for saved tokens (and read them if any
    /// were there); asking does not look.
    pub fn saved_read(&self) -> bool {
        self.store.lock().is_ok_and(|store| store.read_saved)
    }

    /// How many distinct texts are held.
    pub fn texts(&self) -> usize {
        self.lock().len()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, TokenStore> {
        let mut store = match self.store.lock() {
            Ok(store) => store,
            Err(poisoned) => {
                // A call panicked while extending the store, which may be
                // half done: start afresh.
                let mut store = poisoned.into_inner();
                *store = TokenStore::default();
                self.store.clear_poison();
                store
            }
        };
        if !store.read_saved {
            store.read_saved = true;
            if let Some(bytes) = self.saved.as_ref().and_then(|saved| saved.read()) {
                let started = std::time::Instant::now();
                match TokenStore::read_saved(&bytes, TokenWeights::tokenizer_fingerprint()) {
                    Ok(Some(saved)) => {
                        *store = saved;
                        tracing::debug!(
                            texts = store.len(),
                            seconds = started.elapsed().as_secs_f64(),
                            "similar_pairs: read the saved tokens"
                        );
                    }
                    Ok(None) => tracing::debug!("similar_pairs: saved tokens of another tokenizer"),
                    Err(error) => {
                        tracing::warn!(
                            %error,
                            "similar_pairs: saved tokens not used; the next call saves them anew"
                        )
                    }
                }
            }
        }
        store
    }

    /// The document frequencies of a corpus, given each distinct text once
    /// with how often it occurs: what [`TokenWeights::from_distinct_texts`]
    /// counts, with the texts tokenised through the memo on `threads`
    /// threads. Texts it holds are not segmented again, and the others are
    /// kept (and saved by the memo's rule), so that a later `similar_pairs`
    /// over the corpus's texts finds them tokenised: an engine counts its
    /// corpus (the duty texts) when it opens after a change.
    pub fn count_documents(&self, texts: &[(&str, u64)], threads: usize) -> TokenWeights {
        let mut store = self.lock();
        let distinct: Vec<&str> = texts.iter().map(|&(text, _)| text).collect();
        let entries = store.entries_of(&distinct, threads);
        let weights = store.document_frequencies(
            entries
                .iter()
                .zip(texts)
                .map(|(&entry, &(_, occurrences))| (entry, occurrences)),
        );
        self.after_call(&mut store);
        weights
    }

    /// After a call: empties a store past its limit, and saves one that
    /// gained many texts since it was saved or read.
    pub(super) fn after_call(&self, store: &mut TokenStore) {
        store.keep_within_limit();
        let Some(saved) = &self.saved else {
            return;
        };
        let added = store.len().saturating_sub(store.saved_len);
        if added == 0 || added * SAVE_AFTER_ADDED < store.len() {
            return;
        }
        let started = std::time::Instant::now();
        let fingerprint = TokenWeights::tokenizer_fingerprint();
        let done = saved.save(&mut |out| store.write_saved(out, fingerprint));
        // Failed (a directory that cannot be written to), it is tried again
        // only once as many texts more were added, not at every call.
        store.saved_len = store.len();
        if done {
            tracing::debug!(
                texts = store.len(),
                seconds = started.elapsed().as_secs_f64(),
                "similar_pairs: saved the tokens"
            );
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
    /// Whether the saved tokens were read (or there were none to read).
    read_saved: bool,
    /// How many of the entries are saved.
    saved_len: usize,
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
            read_saved: false,
            saved_len: 0,
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

    /// Document frequencies over `entries`, each counted as that many
    /// documents. As [`TokenWeights`] counts them: a text is a document
    /// when it has a bigram (its bigrams come first), and each of its
    /// distinct tokens occurs in it once.
    fn document_frequencies(&self, entries: impl Iterator<Item = (u32, u64)>) -> TokenWeights {
        let mut frequencies = vec![0u64; self.vocabulary.len()];
        let mut documents = 0;
        for (entry, occurrences) in entries {
            let (tokens, _) = self.entry(entry);
            let has_bigram = tokens.first().is_some_and(|&token| {
                matches!(self.vocabulary[token as usize], StoredToken::Bigram(_))
            });
            if !has_bigram || occurrences == 0 {
                continue;
            }
            documents += occurrences;
            for &token in tokens {
                frequencies[token as usize] += occurrences;
            }
        }
        let (mut bigrams, mut words) = (HashMap::new(), HashMap::new());
        for (token, &frequency) in self.vocabulary.iter().zip(&frequencies) {
            if frequency == 0 {
                continue;
            }
            match token {
                StoredToken::Bigram(bigram) => {
                    bigrams.insert(*bigram, frequency);
                }
                StoredToken::Word(word) => {
                    words.insert(word.to_string(), frequency);
                }
            }
        }
        TokenWeights::from_document_frequencies(documents, bigrams, words)
    }

    /// Empties the store when it holds more than its limit of tokens.
    pub(super) fn keep_within_limit(&mut self) {
        if self.tokens.len() > STORE_TOKEN_LIMIT {
            // What is saved stays for the next process; this one does not
            // read it again.
            *self = TokenStore {
                read_saved: true,
                ..TokenStore::default()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::saved::tests::{spelled, TEXTS};
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
        // Each entry holds its text's tokens and counts, in order.
        let expected: Vec<(String, Vec<String>)> = ["负责全市道路交通", "组织实施", "承担有关工作"]
            .iter()
            .map(|text| {
                let counted = CountedTokens::new(text);
                let bigrams = counted
                    .bigrams
                    .iter()
                    .map(|(bigram, count)| format!("b{bigram}:{count}"));
                let words = counted
                    .words
                    .iter()
                    .map(|(word, count)| format!("w{word}:{count}"));
                (text.to_string(), bigrams.chain(words).collect())
            })
            .collect();
        assert_eq!(spelled(&store), expected);
    }

    #[test]
    fn documents_counted_through_the_memo_equal_the_corpus_counts() {
        // Repeats, a one-character text (the character is its bigram),
        // Traditional script, and texts without tokens (punctuation only,
        // empty), which are no documents.
        let corpus: Vec<(&str, u64)> = vec![
            ("负责全市道路交通安全管理工作", 3),
            ("組織實施道路交通秩序管理", 1),
            ("组织实施道路交通秩序管理", 2),
            ("交", 4),
            ("，。", 2),
            ("", 1),
            ("承办市政府交办的其他事项", 1),
        ];
        let expected = TokenWeights::from_distinct_texts(corpus.iter().copied());
        assert_eq!(expected.documents(), 3 + 1 + 2 + 4 + 1);
        let memo = PairTokenMemo::new();
        assert_eq!(memo.count_documents(&corpus, 2), expected);
        assert_eq!(memo.texts(), corpus.len());
        // Again through a memo holding some of the texts and others: the
        // same counts, and only the new texts are added.
        let memo = PairTokenMemo::new();
        memo.lock()
            .entries_of(&["组织实施道路交通秩序管理", "负责全市档案工作", "交"], 1);
        assert_eq!(memo.count_documents(&corpus, 3), expected);
        assert_eq!(memo.texts(), corpus.len() + 1);
        assert_eq!(
            memo.count_documents(&[], 2),
            TokenWeights::uniform(),
            "no texts, no documents"
        );
        // A wider corpus, against the counts of every text one by one.
        let corpus: Vec<(&str, u64)> = crate::text::func_similarity::tests::DUTY_CLAUSES
            .iter()
            .enumerate()
            .map(|(index, &text)| (text, index as u64 % 3 + 1))
            .collect();
        assert!(corpus.len() > 20);
        let one_by_one = TokenWeights::from_texts(
            corpus
                .iter()
                .flat_map(|&(text, copies)| std::iter::repeat_n(text, copies as usize)),
        );
        assert_eq!(PairTokenMemo::new().count_documents(&corpus, 2), one_by_one);
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

    /// Saved bytes kept in memory, as a file would keep them.
    #[derive(Debug, Default)]
    struct InMemory {
        bytes: Mutex<Option<Vec<u8>>>,
        saves: Mutex<usize>,
    }

    impl SavedPairTokens for InMemory {
        fn read(&self) -> Option<Vec<u8>> {
            self.bytes.lock().unwrap().clone()
        }

        fn save(&self, write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> bool {
            let mut bytes = Vec::new();
            if write(&mut bytes).is_err() {
                return false;
            }
            *self.bytes.lock().unwrap() = Some(bytes);
            *self.saves.lock().unwrap() += 1;
            true
        }
    }

    #[test]
    fn a_memo_saves_after_many_new_texts_and_the_next_starts_from_them() {
        let saved = Arc::new(InMemory::default());
        let memo = PairTokenMemo::saved_in(saved.clone());
        assert_eq!(memo.texts(), 0);
        let many: Vec<String> = (0..40).map(|i| format!("负责第{i}项管理工作")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        {
            let mut store = memo.lock();
            store.entries_of(&many, 2);
            memo.after_call(&mut store);
        }
        assert_eq!(*saved.saves.lock().unwrap(), 1);
        // Three more are under a tenth: not saved yet.
        {
            let mut store = memo.lock();
            store.entries_of(&["甲项", "乙项", "丙项"], 1);
            memo.after_call(&mut store);
        }
        assert_eq!(*saved.saves.lock().unwrap(), 1);
        // Two more make 5 of 45 added since the save: saved.
        {
            let mut store = memo.lock();
            store.entries_of(&["丁项", "戊项"], 1);
            memo.after_call(&mut store);
        }
        assert_eq!(*saved.saves.lock().unwrap(), 2);
        let next = PairTokenMemo::saved_in(saved.clone());
        assert_eq!(next.texts(), 45);
        assert_eq!(spelled(&next.lock()), spelled(&memo.lock()));
        // Read, not changed: nothing to save.
        {
            let mut store = next.lock();
            store.entries_of(&many, 2);
            next.after_call(&mut store);
        }
        assert_eq!(*saved.saves.lock().unwrap(), 2);
    }

    /// A place that cannot be written to.
    #[derive(Debug, Default)]
    struct Unwritable {
        attempts: Mutex<usize>,
    }

    impl SavedPairTokens for Unwritable {
        fn read(&self) -> Option<Vec<u8>> {
            None
        }

        fn save(&self, _write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>) -> bool {
            *self.attempts.lock().unwrap() += 1;
            false
        }
    }

    #[test]
    fn a_failed_save_is_not_tried_again_at_every_call() {
        let saved = Arc::new(Unwritable::default());
        let memo = PairTokenMemo::saved_in(saved.clone());
        let many: Vec<String> = (0..40).map(|i| format!("负责第{i}项管理工作")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        for texts in [&many[..], &TEXTS[..1]] {
            let mut store = memo.lock();
            store.entries_of(texts, 1);
            memo.after_call(&mut store);
        }
        // The second call added one text to forty: under a tenth since the
        // failed attempt.
        assert_eq!(*saved.attempts.lock().unwrap(), 1);
        assert_eq!(memo.texts(), 41);
        // The tokens are still there for this process.
        let mut store = memo.lock();
        assert_eq!(store.entries_of(&many[..2], 1), vec![0, 1]);
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
