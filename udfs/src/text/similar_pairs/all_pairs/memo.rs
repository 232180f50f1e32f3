//! Tokenised texts kept from one `similar_pairs` call to the next, so that
//! a second join over the same texts does not normalise and segment them
//! again; saved (by an engine, beside its tables) for the next process.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::common::HashMap;

use super::threads::on_chunks;
use crate::text::func_similarity::CountedTokens;
use crate::text::saved_bytes::{write_u64, write_values, EndsEarly, SavedBytes};
use crate::text::token_weights::TokenWeights;

/// Past this many tokens held (about 400 MB with the texts; a million duty
/// texts hold some 32 million), the store is emptied after the call.
const STORE_TOKEN_LIMIT: usize = 48 << 20;

/// The saved tokens are replaced once the texts added since they were saved
/// are this share (1/n) of all held: saving rewrites the whole file.
const SAVE_AFTER_ADDED: usize = 10;

/// The first bytes of saved tokens (the version of their layout).
const SAVED_MAGIC: &[u8] = b"bianzhi similar_pairs tokens 1\n";

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

/// Why saved tokens were not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedTokensError {
    #[error("the saved similar_pairs tokens end early")]
    EndsEarly,
    #[error("the saved similar_pairs tokens are invalid: {0}")]
    Invalid(&'static str),
}

impl From<EndsEarly> for SavedTokensError {
    fn from(_: EndsEarly) -> Self {
        SavedTokensError::EndsEarly
    }
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
                        tracing::warn!(%error, "similar_pairs: saved tokens not used")
                    }
                }
            }
        }
        store
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

    /// Writes the store for [`Self::read_saved`]: the magic line and
    /// `fingerprint`, then (little-endian, counts before arrays) the
    /// vocabulary's kinds, bigrams and words, the texts and how many tokens
    /// each has, and the tokens with their counts.
    fn write_saved(&self, out: &mut dyn Write, fingerprint: u64) -> io::Result<()> {
        let mut out = out;
        out.write_all(SAVED_MAGIC)?;
        write_u64(&mut out, fingerprint)?;
        let mut kinds = Vec::with_capacity(self.vocabulary.len());
        let (mut bigrams, mut word_lengths, mut word_bytes) = (Vec::new(), Vec::new(), Vec::new());
        for token in &self.vocabulary {
            match token {
                StoredToken::Bigram(bigram) => {
                    kinds.push(0u8);
                    bigrams.push(*bigram);
                }
                StoredToken::Word(word) => {
                    kinds.push(1u8);
                    word_lengths.push(word.len() as u32);
                    word_bytes.extend_from_slice(word.as_bytes());
                }
            }
        }
        write_u64(&mut out, kinds.len() as u64)?;
        out.write_all(&kinds)?;
        write_u64(&mut out, bigrams.len() as u64)?;
        write_values(&mut out, &bigrams, u64::to_le_bytes)?;
        write_u64(&mut out, word_lengths.len() as u64)?;
        write_values(&mut out, &word_lengths, u32::to_le_bytes)?;
        write_u64(&mut out, word_bytes.len() as u64)?;
        out.write_all(&word_bytes)?;
        let mut texts: Vec<&str> = vec![""; self.len()];
        for (text, &entry) in &self.entries {
            texts[entry as usize] = text;
        }
        let text_lengths: Vec<u32> = texts.iter().map(|text| text.len() as u32).collect();
        write_u64(&mut out, texts.len() as u64)?;
        write_values(&mut out, &text_lengths, u32::to_le_bytes)?;
        write_u64(&mut out, text_lengths.iter().map(|&l| u64::from(l)).sum())?;
        for text in &texts {
            out.write_all(text.as_bytes())?;
        }
        let token_lengths: Vec<u32> = self
            .starts
            .windows(2)
            .map(|pair| (pair[1] - pair[0]) as u32)
            .collect();
        write_values(&mut out, &token_lengths, u32::to_le_bytes)?;
        write_u64(&mut out, self.tokens.len() as u64)?;
        write_values(&mut out, &self.tokens, u32::to_le_bytes)?;
        write_values(&mut out, &self.counts, u32::to_le_bytes)?;
        Ok(())
    }

    /// The store [`Self::write_saved`] wrote; `None` when it was written by
    /// another tokenizer (or layout). Every length, id and order is checked,
    /// so damaged bytes give an error, never tokens out of order or out of
    /// range.
    fn read_saved(bytes: &[u8], fingerprint: u64) -> Result<Option<Self>, SavedTokensError> {
        let invalid = SavedTokensError::Invalid;
        let Some(rest) = bytes.strip_prefix(SAVED_MAGIC) else {
            return Ok(None);
        };
        let mut input = SavedBytes { bytes: rest };
        if u64::from_le_bytes(input.array()?) != fingerprint {
            return Ok(None);
        }
        let mut store = TokenStore {
            read_saved: true,
            ..TokenStore::default()
        };
        let kinds_len = input.count(1)?;
        let kinds = input.take(kinds_len)?;
        let bigram_count = input.count(8)?;
        let bigrams = input.values(bigram_count, u64::from_le_bytes)?;
        let word_count = input.count(4)?;
        let word_lengths = input.values(word_count, u32::from_le_bytes)?;
        let word_bytes_len = input.count(1)?;
        let word_bytes = input.take(word_bytes_len)?;
        if bigram_count + word_count != kinds.len() {
            return Err(invalid(
                "the vocabulary's kinds and tokens differ in number",
            ));
        }
        let (mut next_bigram, mut next_word, mut word_at) = (0, 0, 0);
        for (id, &kind) in kinds.iter().enumerate() {
            let id = id as u32;
            match kind {
                0 => {
                    let bigram = *bigrams.get(next_bigram).ok_or(invalid(
                        "the vocabulary's kinds and tokens differ in number",
                    ))?;
                    next_bigram += 1;
                    if store.bigram_ids.insert(bigram, id).is_some() {
                        return Err(invalid("a bigram is in the vocabulary twice"));
                    }
                    store.vocabulary.push(StoredToken::Bigram(bigram));
                }
                1 => {
                    let length = *word_lengths.get(next_word).ok_or(invalid(
                        "the vocabulary's kinds and tokens differ in number",
                    ))? as usize;
                    next_word += 1;
                    let word = word_bytes
                        .get(word_at..word_at + length)
                        .ok_or(SavedTokensError::EndsEarly)?;
                    word_at += length;
                    let word =
                        std::str::from_utf8(word).map_err(|_| invalid("a word is not UTF-8"))?;
                    if store.word_ids.insert(word.into(), id).is_some() {
                        return Err(invalid("a word is in the vocabulary twice"));
                    }
                    store.vocabulary.push(StoredToken::Word(word.into()));
                }
                _ => return Err(invalid("a token of no known kind")),
            }
        }
        if word_at != word_bytes.len() {
            return Err(invalid("the words' bytes and lengths differ"));
        }
        let text_count = input.count(4)?;
        let text_lengths = input.values(text_count, u32::from_le_bytes)?;
        let text_bytes_len = input.count(1)?;
        let text_bytes = input.take(text_bytes_len)?;
        let token_lengths = input.values(text_count, u32::from_le_bytes)?;
        let token_count = input.count(8)?;
        store.tokens = input.values(token_count, u32::from_le_bytes)?;
        store.counts = input.values(token_count, u32::from_le_bytes)?;
        if !input.bytes.is_empty() {
            return Err(invalid("bytes after the tokens"));
        }
        let mut text_at = 0;
        store.starts.reserve(text_count);
        for (entry, (&text_length, &tokens)) in text_lengths.iter().zip(&token_lengths).enumerate()
        {
            let text = text_bytes
                .get(text_at..text_at + text_length as usize)
                .ok_or(SavedTokensError::EndsEarly)?;
            text_at += text_length as usize;
            let text = std::str::from_utf8(text).map_err(|_| invalid("a text is not UTF-8"))?;
            if store.entries.insert(text.into(), entry as u32).is_some() {
                return Err(invalid("a text is saved twice"));
            }
            let start = store.starts[entry];
            let end = start + tokens as usize;
            if end > token_count {
                return Err(invalid("more tokens than saved"));
            }
            store.starts.push(end);
            store.check_entry_order(entry as u32)?;
        }
        if text_at != text_bytes.len() || store.starts.last() != Some(&token_count) {
            return Err(invalid("the texts and their tokens differ in length"));
        }
        store.saved_len = store.len();
        Ok(Some(store))
    }

    /// Entry `entry`'s tokens are known, counted, and in the order the
    /// scores are summed in: bigrams ascending, then words ascending.
    fn check_entry_order(&self, entry: u32) -> Result<(), SavedTokensError> {
        let (ids, counts) = self.entry(entry);
        if counts.contains(&0) {
            return Err(SavedTokensError::Invalid("a token counted 0 times"));
        }
        let mut previous: Option<&StoredToken> = None;
        for &id in ids {
            let token = self
                .vocabulary
                .get(id as usize)
                .ok_or(SavedTokensError::Invalid("a token not in the vocabulary"))?;
            let in_order = match (previous, token) {
                (None, _) => true,
                (Some(StoredToken::Bigram(a)), StoredToken::Bigram(b)) => a < b,
                (Some(StoredToken::Bigram(_)), StoredToken::Word(_)) => true,
                (Some(StoredToken::Word(a)), StoredToken::Word(b)) => a < b,
                (Some(StoredToken::Word(_)), StoredToken::Bigram(_)) => false,
            };
            if !in_order {
                return Err(SavedTokensError::Invalid("a text's tokens out of order"));
            }
            previous = Some(token);
        }
        Ok(())
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

    const TEXTS: [&str; 4] = [
        "负责全市道路交通安全管理工作",
        "組織實施道路交通秩序管理",
        "承担有关工作",
        "ab12",
    ];

    fn saved_bytes(store: &TokenStore, fingerprint: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        store.write_saved(&mut bytes, fingerprint).unwrap();
        bytes
    }

    /// Every entry's text with its tokens and counts, spelled out.
    fn spelled(store: &TokenStore) -> Vec<(String, Vec<String>)> {
        let mut texts: Vec<(&str, u32)> = store
            .entries
            .iter()
            .map(|(text, &entry)| (&**text, entry))
            .collect();
        texts.sort_by_key(|&(_, entry)| entry);
        texts
            .into_iter()
            .map(|(text, entry)| {
                let (ids, counts) = store.entry(entry);
                let tokens = ids
                    .iter()
                    .zip(counts)
                    .map(|(&id, count)| match &store.vocabulary[id as usize] {
                        StoredToken::Bigram(bigram) => format!("b{bigram}:{count}"),
                        StoredToken::Word(word) => format!("w{word}:{count}"),
                    })
                    .collect();
                (text.to_string(), tokens)
            })
            .collect()
    }

    #[test]
    fn saved_tokens_read_back_the_same() {
        let mut store = TokenStore::default();
        store.entries_of(&TEXTS, 2);
        let bytes = saved_bytes(&store, 7);
        let read = TokenStore::read_saved(&bytes, 7).unwrap().unwrap();
        assert_eq!(spelled(&read), spelled(&store));
        assert_eq!(read.len(), TEXTS.len());
        assert_eq!(read.saved_len, TEXTS.len());
        // Held texts are found, new ones get the next entries.
        let mut read = read;
        assert_eq!(
            read.entries_of(&["承担有关工作", "新的职责"], 1),
            vec![2, 4]
        );
        // Another tokenizer, or another layout: not an error, not used.
        assert!(matches!(TokenStore::read_saved(&bytes, 8), Ok(None)));
        assert!(matches!(
            TokenStore::read_saved(b"something else", 7),
            Ok(None)
        ));
        // An empty store too.
        let empty = saved_bytes(&TokenStore::default(), 7);
        assert_eq!(TokenStore::read_saved(&empty, 7).unwrap().unwrap().len(), 0);
    }

    #[test]
    fn damaged_saved_tokens_are_errors() {
        let mut store = TokenStore::default();
        store.entries_of(&TEXTS, 1);
        let bytes = saved_bytes(&store, 7);
        for end in SAVED_MAGIC.len() + 8..bytes.len() {
            assert!(
                TokenStore::read_saved(&bytes[..end], 7).is_err(),
                "cut at {end} of {}",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TokenStore::read_saved(&longer, 7).is_err());
        // A text's tokens out of order would sum its score in another
        // order: swap the first text's first two token ids.
        let tokens = store.tokens.len();
        let ids_at = bytes.len() - 8 * tokens;
        let mut swapped = bytes.clone();
        let (first, second) = (ids_at..ids_at + 4, ids_at + 4..ids_at + 8);
        let first_id = bytes[first.clone()].to_vec();
        swapped.copy_within(second.clone(), first.start);
        swapped[second].copy_from_slice(&first_id);
        assert_eq!(
            TokenStore::read_saved(&swapped, 7).err(),
            Some(SavedTokensError::Invalid("a text's tokens out of order"))
        );
        // A huge count is refused before anything is allocated for it.
        let mut huge = bytes.clone();
        let kinds_at = SAVED_MAGIC.len() + 8;
        huge[kinds_at..kinds_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(TokenStore::read_saved(&huge, 7).is_err());
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
