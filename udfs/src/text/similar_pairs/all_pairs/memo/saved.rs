//! The layout of [`TokenStore`]s saved beside the tables, and reading it
//! back with every length, id and order checked.

use std::io::{self, Write};

use super::{StoredToken, TokenStore};
use crate::text::saved_bytes::{write_u64, write_values, EndsEarly, SavedBytes};

/// The first bytes of saved tokens (the version of their layout).
pub(super) const SAVED_MAGIC: &[u8] = b"bianzhi similar_pairs tokens 1\n";

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

impl TokenStore {
    /// Writes the store for [`Self::read_saved`]: the magic line and
    /// `fingerprint`, then (little-endian, counts before arrays) the
    /// vocabulary's kinds, bigrams and words, the texts and how many tokens
    /// each has, and the tokens with their counts.
    pub(super) fn write_saved(&self, out: &mut dyn Write, fingerprint: u64) -> io::Result<()> {
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
    pub(super) fn read_saved(
        bytes: &[u8],
        fingerprint: u64,
    ) -> Result<Option<Self>, SavedTokensError> {
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
pub(super) mod tests {
    use super::*;

    pub(in crate::text::similar_pairs::all_pairs::memo) const TEXTS: [&str; 4] = [
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
    pub(in crate::text::similar_pairs::all_pairs::memo) fn spelled(
        store: &TokenStore,
    ) -> Vec<(String, Vec<String>)> {
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
}
