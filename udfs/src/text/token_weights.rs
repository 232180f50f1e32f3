//! Document frequencies of duty-text tokens, turned into IDF weights for
//! `func_similarity`.

use std::collections::HashMap;

use super::normalize::{pack_bigram, NormalizedText};

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

    /// Counts one more document.
    pub fn add_text(&mut self, text: &str) {
        let normalized = NormalizedText::new(text);
        let bigrams = normalized.bigram_set();
        if bigrams.is_empty() {
            return;
        }
        self.documents += 1;
        for bigram in bigrams {
            *self.bigram_documents.entry(bigram).or_default() += 1;
        }
        for word in normalized.word_set() {
            *self.word_documents.entry(word).or_default() += 1;
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
    fn merged_counts_equal_one_pass() {
        let texts = ["负责全市档案工作", "负责全市价格工作", "组织实施交通管理"];
        let mut merged = TokenWeights::from_texts(&texts[..1]);
        merged.merge(&TokenWeights::from_texts(&texts[1..]));
        assert_eq!(merged, TokenWeights::from_texts(texts));
    }
}
