//! Normalisation and tokenisation of Chinese duty texts, shared by
//! `zh_normalize`, `zh_tokens`, `text_sim` and `func_similarity`.
//!
//! Normalising a text:
//! 1. Unicode NFKC: full-width letters, digits and punctuation become their
//!    ASCII forms, compatibility ideographs their unified forms, the
//!    ideographic space a plain space.
//! 2. Traditional → Simplified Chinese (fast2s, character by character with
//!    its neighbours as context), so 負責 and 负责 compare equal.
//! 3. Lowercase (Latin, Greek, Cyrillic letters).
//! 4. Every character that is not alphanumeric (Unicode Alphabetic or
//!    Numeric: Han characters, letters, digits) is dropped: punctuation,
//!    symbols, whitespace, controls. Whitespace carries no meaning in Chinese
//!    text, so it is removed rather than folded to one space.
//!
//! The kept characters form *runs*, split where something was dropped; the
//! normalised text is the runs concatenated. Tokens never cross a run
//! boundary: `负责A，组织B` gives no bigram `A组`.

use std::sync::OnceLock;

use jieba_rs::Jieba;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// A normalised text and where its runs end (byte offsets into `text`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct NormalizedText {
    text: String,
    run_ends: Vec<usize>,
}

impl NormalizedText {
    pub(crate) fn new(input: &str) -> Self {
        // Most duty texts are NFKC already (Han characters and Chinese
        // punctuation): the quick check spares composing them again.
        let simplified = if is_nfkc_quick(input.chars()) == IsNormalized::Yes {
            fast2s::convert(input)
        } else {
            fast2s::convert(&input.nfkc().collect::<String>())
        };
        let mut normalized = Self {
            text: String::with_capacity(simplified.len()),
            run_ends: Vec::new(),
        };
        let mut in_run = false;
        for character in simplified.chars() {
            if is_common_han(character) {
                // Alphanumeric and without case: the Unicode tables need
                // not be asked.
                normalized.text.push(character);
                in_run = true;
            } else if character.is_alphanumeric() {
                normalized.text.extend(character.to_lowercase());
                in_run = true;
            } else if in_run {
                normalized.run_ends.push(normalized.text.len());
                in_run = false;
            }
        }
        if in_run {
            normalized.run_ends.push(normalized.text.len());
        }
        normalized
    }

    /// The normalised text: the runs without separators.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The runs of kept characters, in text order.
    pub(crate) fn runs(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.run_ends.iter().copied());
        starts
            .zip(self.run_ends.iter().copied())
            .map(|(start, end)| &self.text[start..end])
    }

    /// Character bigrams of every run, in text order with repeats; a run of
    /// one character gives that character.
    pub(crate) fn bigrams(&self) -> impl Iterator<Item = &str> + '_ {
        self.runs().flat_map(run_bigrams)
    }

    /// Words of every run (jieba with its HMM for unknown words), in text order.
    pub(crate) fn words(&self) -> impl Iterator<Item = &str> + '_ {
        let jieba = jieba();
        self.runs().flat_map(move |run| {
            jieba
                .cut(run, true)
                .into_iter()
                .map(|token| token.word)
                .filter(|word| !word.is_empty())
        })
    }

    /// The distinct bigrams, each packed into a `u64` (see [`pack_bigram`]),
    /// sorted.
    pub(crate) fn bigram_set(&self) -> Vec<u64> {
        let mut bigrams: Vec<u64> = self.bigrams().map(pack_bigram).collect();
        bigrams.sort_unstable();
        bigrams.dedup();
        bigrams
    }

    /// The distinct words, sorted.
    pub(crate) fn word_set(&self) -> Vec<String> {
        let mut words: Vec<&str> = self.words().collect();
        words.sort_unstable();
        words.dedup();
        words.into_iter().map(str::to_owned).collect()
    }
}

/// A character of the CJK Unified Ideographs block (U+4E00–U+9FFF), where
/// nearly every character of a duty text lies.
fn is_common_han(character: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&character)
}

/// One jieba instance with the default dictionary for the whole process,
/// built at first use (loading the dictionary takes a while).
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

fn run_bigrams(run: &str) -> RunBigrams<'_> {
    RunBigrams { run, start: 0 }
}

/// Bigrams of one run: each character with the next one, or the lone
/// character of a one-character run.
struct RunBigrams<'a> {
    run: &'a str,
    start: usize,
}

impl<'a> Iterator for RunBigrams<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let mut characters = self.run[self.start..].chars();
        let first = characters.next()?;
        match characters.next() {
            Some(second) => {
                let end = self.start + first.len_utf8() + second.len_utf8();
                let bigram = &self.run[self.start..end];
                self.start += first.len_utf8();
                Some(bigram)
            }
            None if self.start == 0 => {
                self.start = self.run.len();
                Some(self.run)
            }
            None => None,
        }
    }
}

/// A bigram (or the lone character of a one-character run) as a number:
/// the first character in the high half, the second (or 0, which is never
/// alphanumeric) in the low half. Sets of numbers need no allocation per
/// token.
pub(crate) fn pack_bigram(bigram: &str) -> u64 {
    let mut characters = bigram.chars();
    let first = characters.next().map_or(0, u64::from);
    let second = characters.next().map_or(0, u64::from);
    (first << 32) | second
}

/// Which tokens `zh_tokens` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenMode {
    Bigram,
    Word,
    Both,
}

impl TokenMode {
    pub(crate) const NAMES: &'static str = "'bigram', 'word', 'both'";

    /// Case-insensitive; `None` for an unknown mode.
    pub(crate) fn parse(mode: &str) -> Option<Self> {
        match mode.trim().to_ascii_lowercase().as_str() {
            "bigram" => Some(Self::Bigram),
            "word" => Some(Self::Word),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
}

/// Runs of equal items of a sorted vector, as (item, count).
pub(crate) fn counted<T: PartialEq>(sorted: Vec<T>) -> Vec<(T, u32)> {
    let mut runs: Vec<(T, u32)> = Vec::new();
    for item in sorted {
        match runs.last_mut() {
            Some((last, count)) if *last == item => *count += 1,
            _ => runs.push((item, 1)),
        }
    }
    runs
}

/// How many items two sorted, de-duplicated slices share.
pub(crate) fn shared_count<T: Ord>(left: &[T], right: &[T]) -> usize {
    let (mut left_index, mut right_index, mut shared) = (0, 0, 0);
    while left_index < left.len() && right_index < right.len() {
        match left[left_index].cmp(&right[right_index]) {
            std::cmp::Ordering::Less => left_index += 1,
            std::cmp::Ordering::Greater => right_index += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                left_index += 1;
                right_index += 1;
            }
        }
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_and_simplified_normalise_alike() {
        let traditional = NormalizedText::new("負責全市道路交通安全管理工作");
        let simplified = NormalizedText::new("负责全市道路交通安全管理工作");
        assert_eq!(traditional, simplified);
        assert_eq!(simplified.as_str(), "负责全市道路交通安全管理工作");
    }

    #[test]
    fn punctuation_whitespace_and_width_are_folded() {
        let text = NormalizedText::new("负责　全市（道路）交通，ＡＢＣ-12 安全。");
        assert_eq!(text.as_str(), "负责全市道路交通abc12安全");
        let runs: Vec<&str> = text.runs().collect();
        assert_eq!(runs, ["负责", "全市", "道路", "交通", "abc", "12", "安全"]);
        assert_eq!(NormalizedText::new("，。 ！").as_str(), "");
        assert_eq!(NormalizedText::new("").runs().count(), 0);
    }

    #[test]
    fn the_han_shortcut_keeps_what_the_unicode_tables_say() {
        // Every character the shortcut keeps as it is: alphanumeric, and
        // its own lowercase.
        for character in '\u{4e00}'..='\u{9fff}' {
            assert!(is_common_han(character));
            assert!(character.is_alphanumeric(), "{character:?}");
            assert!(character.to_lowercase().eq([character]), "{character:?}");
        }
        assert!(!is_common_han('\u{4dff}') && !is_common_han('\u{a000}'));
        // Texts that are not NFKC still go through it, Han ones too: the
        // compatibility ideograph U+F900 becomes U+8C48.
        assert_eq!(NormalizedText::new("管理ＡＢ①").as_str(), "管理ab1");
        assert_eq!(
            NormalizedText::new("\u{f900}管理"),
            NormalizedText::new("\u{8c48}管理")
        );
        assert_ne!(
            NormalizedText::new("\u{8c48}管理"),
            NormalizedText::new("管理")
        );
    }

    #[test]
    fn bigrams_stay_inside_runs() {
        let text = NormalizedText::new("负责全市，市");
        let bigrams: Vec<&str> = text.bigrams().collect();
        assert_eq!(bigrams, ["负责", "责全", "全市", "市"]);
        let lone = NormalizedText::new("市");
        let single: Vec<&str> = lone.bigrams().collect();
        assert_eq!(single, ["市"]);
        // 全市 twice, once as a bigram and once as part of the lone 市.
        assert_eq!(text.bigram_set().len(), 4);
    }

    #[test]
    fn words_come_from_jieba() {
        let text = NormalizedText::new("负责全市道路交通安全管理工作。");
        let words: Vec<&str> = text.words().collect();
        assert_eq!(words.concat(), "负责全市道路交通安全管理工作");
        assert!(words.contains(&"负责"), "{words:?}");
        assert!(words.contains(&"道路交通"), "{words:?}");
    }

    #[test]
    fn packed_bigrams_differ_from_single_characters() {
        assert_ne!(pack_bigram("市"), pack_bigram("市市"));
        assert_eq!(
            pack_bigram("负责"),
            (u64::from('负') << 32) | u64::from('责')
        );
    }

    #[test]
    fn shared_count_of_sorted_sets() {
        assert_eq!(shared_count(&[1, 3, 5, 7], &[2, 3, 7, 8]), 2);
        assert_eq!(shared_count::<u64>(&[], &[1]), 0);
    }

    #[test]
    fn token_modes() {
        assert_eq!(TokenMode::parse("Bigram"), Some(TokenMode::Bigram));
        assert_eq!(TokenMode::parse("word"), Some(TokenMode::Word));
        assert_eq!(TokenMode::parse(" both "), Some(TokenMode::Both));
        assert_eq!(TokenMode::parse("trigram"), None);
    }
}
