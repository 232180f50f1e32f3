//! Document frequencies of duty-text tokens, turned into IDF weights for
//! `func_similarity`.

use datafusion::common::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use super::normalize::{pack_bigram, NormalizedText};

/// First line of [`TokenWeights::to_counts_text`]'s format.
const COUNTS_HEADER: &str = "bianzhi token counts 1";

/// A counts text [`TokenWeights::from_counts_text`] cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("token counts, line {line}: {problem}")]
pub struct CountsError {
    pub line: usize,
    pub problem: &'static str,
}

/// Texts whose tokens change when normalising or segmenting changes: a
/// count saved by another tokenizer must not be taken for this one's.
const FINGERPRINT_TEXTS: [&str; 4] = [
    "負責全市道路交通安全管理工作（含城市快速路）",
    "组织实施机构编制实名制管理，ＡＢＣ 12３",
    "拟订自然资源和国土空间规划及测绘、极地、深海等法律法规草案",
    "承担市委、市政府交办的其他任务。",
];

/// How many documents (duty clauses) contain each token, over a corpus of
/// `documents` texts. Bigrams and jieba words are counted separately: the
/// bigram 负责 and the word 负责 are different tokens.
///
/// A token's weight is a smoothed inverse document frequency,
/// `idf = ln((N + 1) / (df + 1)) + 1`, where N is the number of documents and
/// df the number containing the token. Frequent boilerplate (负责, 全市,
/// 工作, 组织实施) gets a weight near 1, a rare token more, and a token in no
/// document (one only the compared texts have) the maximum, `ln(N + 1) + 1`. The
/// `+ 1` inside keeps unseen tokens finite, the `+ 1` outside keeps a token
/// present everywhere from vanishing. With no documents every weight is 1,
/// which makes `func_similarity` a plain cosine: that is [`Self::uniform`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenWeights {
    documents: u64,
    bigram_documents: HashMap<u64, u64>,
    word_documents: HashMap<String, u64>,
}

impl TokenWeights {
    /// No corpus: every token weighs 1.
    pub fn uniform() -> Self {
        Self::default()
    }

    /// Document frequencies over `texts`, one document per text. Texts
    /// without any token (empty, punctuation only) are not counted as
    /// documents.
    pub fn from_texts<I, S>(texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut weights = Self::default();
        for text in texts {
            weights.add_text(text.as_ref());
        }
        weights
    }

    /// The counts [`Self::from_texts`] gives over every occurrence of the
    /// texts, given each distinct text once with how often it occurs:
    /// tokenised once, counted that many times.
    pub fn from_distinct_texts<'a, I>(texts: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, u64)>,
    {
        let mut weights = Self::default();
        for (text, occurrences) in texts {
            weights.add_copies(text, occurrences);
        }
        weights
    }

    /// Counts made elsewhere: `documents` documents, and how many of them
    /// hold each bigram (packed) and each word.
    pub(crate) fn from_document_frequencies(
        documents: u64,
        bigram_documents: HashMap<u64, u64>,
        word_documents: HashMap<String, u64>,
    ) -> Self {
        Self {
            documents,
            bigram_documents,
            word_documents,
        }
    }

    /// Counts one more document.
    pub fn add_text(&mut self, text: &str) {
        self.add_copies(text, 1);
    }

    /// Counts `copies` documents of one text.
    fn add_copies(&mut self, text: &str, copies: u64) {
        if copies == 0 {
            return;
        }
        let normalized = NormalizedText::new(text);
        let bigrams = normalized.bigram_set();
        if bigrams.is_empty() {
            return;
        }
        self.documents += copies;
        for bigram in bigrams {
            *self.bigram_documents.entry(bigram).or_default() += copies;
        }
        for word in normalized.word_set() {
            *self.word_documents.entry(word).or_default() += copies;
        }
    }

    /// Adds the counts of another corpus (built over other rows in parallel).
    pub fn merge(&mut self, other: &TokenWeights) {
        self.documents += other.documents;
        for (bigram, count) in &other.bigram_documents {
            *self.bigram_documents.entry(*bigram).or_default() += count;
        }
        for (word, count) in &other.word_documents {
            *self.word_documents.entry(word.clone()).or_default() += count;
        }
    }

    /// Number of documents counted.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Number of distinct tokens (bigrams and words) seen.
    pub fn distinct_tokens(&self) -> usize {
        self.bigram_documents.len() + self.word_documents.len()
    }

    /// `ln((N + 1) / (df + 1)) + 1`.
    pub fn idf(&self, document_frequency: u64) -> f64 {
        let documents = self.documents as f64;
        ((documents + 1.0) / (document_frequency as f64 + 1.0)).ln() + 1.0
    }

    /// Weight of a character bigram (or single character), given normalised.
    pub fn bigram_weight(&self, bigram: &str) -> f64 {
        self.packed_bigram_weight(pack_bigram(bigram))
    }

    /// Weight of a jieba word, given normalised.
    pub fn word_weight(&self, word: &str) -> f64 {
        self.idf(self.word_documents.get(word).copied().unwrap_or(0))
    }

    pub(crate) fn packed_bigram_weight(&self, bigram: u64) -> f64 {
        self.idf(self.bigram_documents.get(&bigram).copied().unwrap_or(0))
    }

    /// The counts as text, one token a line (sorted, so equal counts give
    /// equal texts), for saving: see [`Self::from_counts_text`]. `None` if a
    /// word holds a tab or a line break (normalised words never do).
    pub fn to_counts_text(&self) -> Option<String> {
        let mut text = format!("{COUNTS_HEADER}\ndocuments\t{}\n", self.documents);
        let mut bigrams: Vec<_> = self.bigram_documents.iter().collect();
        bigrams.sort_unstable();
        for (bigram, count) in bigrams {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "b\t{bigram}\t{count}");
        }
        let mut words: Vec<_> = self.word_documents.iter().collect();
        words.sort_unstable();
        for (word, count) in words {
            if word.contains(['\t', '\n', '\r']) {
                return None;
            }
            let _ = writeln!(text, "w\t{word}\t{count}");
        }
        Some(text)
    }

    /// Counts saved by [`Self::to_counts_text`].
    pub fn from_counts_text(text: &str) -> Result<Self, CountsError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line));
        let problem = |line, problem| CountsError { line, problem };
        match lines.next() {
            Some((_, COUNTS_HEADER)) => {}
            _ => return Err(problem(1, "not a token counts text")),
        }
        let documents = match lines.next() {
            Some((_, line)) => line
                .strip_prefix("documents\t")
                .and_then(|count| count.parse().ok())
                .ok_or(problem(2, "expected documents and a count"))?,
            None => return Err(problem(2, "expected documents and a count")),
        };
        let mut weights = Self {
            documents,
            ..Self::default()
        };
        for (number, line) in lines {
            let mut fields = line.split('\t');
            let (Some(kind), Some(token), Some(count), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(problem(number, "expected kind, token and count"));
            };
            let count: u64 = count
                .parse()
                .map_err(|_| problem(number, "count is not a number"))?;
            match kind {
                "b" => {
                    let bigram = token
                        .parse()
                        .map_err(|_| problem(number, "bigram is not a packed number"))?;
                    weights.bigram_documents.insert(bigram, count);
                }
                "w" => {
                    weights.word_documents.insert(token.to_string(), count);
                }
                _ => return Err(problem(number, "kind is neither b nor w")),
            }
        }
        Ok(weights)
    }

    /// A number that changes when the tokens of texts change (normalising,
    /// segmenting, packing bigrams), to tell saved counts of another
    /// tokenizer. FNV-1a over the tokens of fixed texts: the same on every
    /// platform and build. Computed once a process; the first call loads
    /// jieba's dictionary (about 0.1 s), so an engine opening a data
    /// directory makes it on a thread of its own while the tables open.
    pub fn tokenizer_fingerprint() -> u64 {
        static FINGERPRINT: OnceLock<u64> = OnceLock::new();
        *FINGERPRINT.get_or_init(|| tokens_fingerprint(&FINGERPRINT_TEXTS))
    }
}

/// Token weights that can be replaced while the functions scoring with them
/// stay registered: the engine puts in new counts when the corpus tables
/// change, and `func_similarity` and `similar_pairs` read the weights in
/// place when they run.
#[derive(Debug, Default)]
pub struct SharedTokenWeights {
    current: RwLock<Arc<TokenWeights>>,
}

impl SharedTokenWeights {
    pub fn new(weights: Arc<TokenWeights>) -> Self {
        Self {
            current: RwLock::new(weights),
        }
    }

    /// The weights in place now.
    pub fn current(&self) -> Arc<TokenWeights> {
        // A writer cannot panic while holding the lock (it only swaps an
        // `Arc`), so a poisoned lock still holds whole weights.
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&current)
    }

    /// Puts `weights` in place for every later read.
    pub fn replace(&self, weights: Arc<TokenWeights>) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = weights;
    }
}

/// FNV-1a over the bigrams and words of `texts`, in order.
fn tokens_fingerprint(texts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |bytes: &[u8]| {
        for &byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for text in texts {
        let normalized = NormalizedText::new(text);
        for bigram in normalized.bigram_set() {
            add(&bigram.to_le_bytes());
        }
        for word in normalized.word_set() {
            add(word.as_bytes());
            add(&[0]);
        }
        add(&[1]);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_tokens_weigh_less() {
        let weights = TokenWeights::from_texts([
            "负责全市档案工作",
            "负责全市价格工作",
            "負責全市交通工作",
            "，。",
        ]);
        assert_eq!(weights.documents(), 3);
        // 负责 in every document: ln(4/4) + 1.
        assert_eq!(weights.bigram_weight("负责"), 1.0);
        assert_eq!(weights.word_weight("负责"), 1.0);
        let rare = weights.bigram_weight("档案");
        assert!((rare - ((4.0f64 / 2.0).ln() + 1.0)).abs() < 1e-15);
        let unseen = weights.bigram_weight("编制");
        assert!((unseen - (4.0f64.ln() + 1.0)).abs() < 1e-15);
        assert!(unseen > rare && rare > 1.0);
    }

    #[test]
    fn uniform_weights_are_one() {
        let weights = TokenWeights::uniform();
        assert_eq!(weights.bigram_weight("负责"), 1.0);
        assert_eq!(weights.word_weight("机构编制"), 1.0);
    }

    #[test]
    fn counts_text_round_trips_and_names_bad_lines() {
        let weights = TokenWeights::from_texts(["负责全市档案工作", "組織實施交通管理", "。"]);
        let text = weights.to_counts_text().unwrap();
        assert_eq!(TokenWeights::from_counts_text(&text), Ok(weights.clone()));
        assert_eq!(
            TokenWeights::from_counts_text(&TokenWeights::uniform().to_counts_text().unwrap()),
            Ok(TokenWeights::uniform())
        );
        let bad = text.replacen("\nw\t", "\nw\tx\t", 1);
        let line = bad.lines().position(|l| l.starts_with("w\tx\t")).unwrap() + 1;
        assert_eq!(
            TokenWeights::from_counts_text(&bad),
            Err(CountsError {
                line,
                problem: "expected kind, token and count"
            })
        );
        assert_eq!(
            TokenWeights::from_counts_text("something else")
                .unwrap_err()
                .line,
            1
        );
        assert_eq!(
            TokenWeights::from_counts_text(&text.replace("documents\t2", "documents\tmany"))
                .unwrap_err()
                .line,
            2
        );
        // The fingerprint is of tokens: another spelling of the same tokens
        // (Traditional, full-width) hashes alike, other tokens do not.
        assert_eq!(
            tokens_fingerprint(&FINGERPRINT_TEXTS),
            TokenWeights::tokenizer_fingerprint()
        );
        assert_eq!(
            tokens_fingerprint(&["負責全市交通", "ＡＢＣ"]),
            tokens_fingerprint(&["负责全市交通", "ABC"])
        );
        assert_ne!(
            tokens_fingerprint(&["负责全市交通"]),
            tokens_fingerprint(&["负责全区交通"])
        );
        assert_ne!(
            tokens_fingerprint(&["负责", "全市交通"]),
            tokens_fingerprint(&["负责全市", "交通"])
        );
    }

    #[test]
    fn merged_counts_equal_one_pass() {
        let texts = ["负责全市档案工作", "负责全市价格工作", "组织实施交通管理"];
        let mut merged = TokenWeights::from_texts(&texts[..1]);
        merged.merge(&TokenWeights::from_texts(&texts[1..]));
        assert_eq!(merged, TokenWeights::from_texts(texts));
    }

    #[test]
    fn distinct_texts_with_occurrences_count_like_every_occurrence() {
        let every = [
            "负责全市档案工作",
            "。",
            "负责全市档案工作",
            "组织实施交通管理",
        ];
        let distinct = [
            ("负责全市档案工作", 2),
            ("。", 1),
            ("组织实施交通管理", 1),
            ("负责全市价格工作", 0),
        ];
        let counted = TokenWeights::from_distinct_texts(distinct);
        assert_eq!(counted, TokenWeights::from_texts(every));
        assert_eq!(counted.documents(), 3);
    }
}
