//! An inverted index over duty texts ranked by Okapi BM25, behind
//! `func_search`.
//!
//! A document's terms are the tokens `func_similarity` compares (see
//! `normalize`): the character bigrams of its normalised text and its jieba
//! words, bigrams and words being distinct terms. Because the text is
//! normalised first, Traditional and Simplified forms are the same terms.
//! Because most of a query's terms are bigrams, a query matches in any word
//! order (燃气管道 finds 管道燃气), and a one-character typo breaks at most two
//! bigrams of the query while the others still match.
//!
//! A document `d` scores, summed over the distinct terms `t` of the query,
//!
//! ```text
//! idf(t) · tf(t, d) · (k1 + 1) / (tf(t, d) + k1 · (1 − b + b · |d| / avgdl))
//! idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//! ```
//!
//! with `k1 = 1.2`, `b = 0.75`, `|d|` the number of terms of `d` (with
//! repeats), `avgdl` their mean over the index, `N` the number of documents and
//! `df(t)` how many contain `t` (the Lucene form of the idf, never negative).

use std::io::{self, Write};

use datafusion::common::HashMap;

use super::func_similarity::CountedTokens;
use super::normalize::NormalizedText;
use super::saved_bytes::{write_u64, write_values, EndsEarly, SavedBytes};

/// BM25 term-frequency saturation.
pub const BM25_K1: f64 = 1.2;
/// BM25 document-length normalisation.
pub const BM25_B: f64 = 0.75;

/// One match: the document's number (the order it was added in, from 0) and
/// its BM25 score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchHit {
    pub document: usize,
    pub score: f64,
}

/// The documents containing one term, in ascending document order, with the
/// term's count in each.
#[derive(Debug, Default, Clone)]
struct Postings {
    documents: Vec<u32>,
    frequencies: Vec<u16>,
}

/// BM25 index over texts, documents numbered in the order they were added.
#[derive(Debug, Default, Clone)]
pub struct SearchIndex {
    bigram_terms: HashMap<u64, u32>,
    word_terms: HashMap<String, u32>,
    postings: Vec<Postings>,
    document_lengths: Vec<u32>,
    total_length: u64,
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of `texts`, the first being document 0.
    pub fn from_texts<I, S>(texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut index = Self::new();
        for text in texts {
            index.add(text.as_ref());
        }
        index
    }

    /// Adds a document and returns its number. A text without terms (empty,
    /// punctuation only) is a document that never matches.
    pub fn add(&mut self, text: &str) -> usize {
        let terms = DocumentTerms::new(text);
        self.add_terms(terms)
    }

    /// Adds a document tokenised beforehand (possibly on another thread, see
    /// [`DocumentTerms`]) and returns its number.
    pub fn add_terms(&mut self, terms: DocumentTerms) -> usize {
        let document = self.document_lengths.len();
        let number = u32::try_from(document).unwrap_or(u32::MAX);
        for (bigram, count) in terms.bigrams {
            let next = self.postings.len() as u32;
            let term = *self.bigram_terms.entry(bigram).or_insert(next);
            self.push_posting(term, number, count);
        }
        for (word, count) in terms.words {
            let next = self.postings.len() as u32;
            let term = *self.word_terms.entry(word).or_insert(next);
            self.push_posting(term, number, count);
        }
        self.document_lengths.push(terms.length);
        self.total_length += u64::from(terms.length);
        document
    }

    fn push_posting(&mut self, term: u32, document: u32, count: u32) {
        if term as usize == self.postings.len() {
            self.postings.push(Postings::default());
        }
        let postings = &mut self.postings[term as usize];
        postings.documents.push(document);
        postings
            .frequencies
            .push(u16::try_from(count).unwrap_or(u16::MAX));
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.document_lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.document_lengths.is_empty()
    }

    /// Number of distinct terms (bigrams and words).
    pub fn distinct_terms(&self) -> usize {
        self.postings.len()
    }

    /// The `top_k` best-scoring documents for `query`, best first; equal
    /// scores in document order. Only documents sharing a term with the query
    /// are returned, so there may be fewer than `top_k`.
    pub fn search(&self, query: &str, top_k: usize) -> Vec<SearchHit> {
        self.search_with_ties(query, top_k, |document| document)
    }

    /// [`Self::search`] with equal scores in the order of `tie_key` of their
    /// documents (then in document order).
    pub fn search_with_ties<K: Ord>(
        &self,
        query: &str,
        top_k: usize,
        tie_key: impl Fn(usize) -> K,
    ) -> Vec<SearchHit> {
        if top_k == 0 || self.is_empty() {
            return Vec::new();
        }
        let normalized = NormalizedText::new(query);
        // The distinct terms in the order of the tokens (bigrams, then words,
        // each sorted), not of the term numbers: those depend on the order
        // the documents were added in, and the sum's rounding would too.
        let terms: Vec<u32> = normalized
            .bigram_set()
            .into_iter()
            .filter_map(|bigram| self.bigram_terms.get(&bigram).copied())
            .chain(
                normalized
                    .word_set()
                    .iter()
                    .filter_map(|word| self.word_terms.get(word).copied()),
            )
            .collect();
        if terms.is_empty() {
            return Vec::new();
        }
        let documents = self.len() as f64;
        let average_length = (self.total_length as f64 / documents).max(1.0);
        let mut scores = vec![0.0f64; self.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in terms {
            let postings = &self.postings[term as usize];
            let document_frequency = postings.documents.len() as f64;
            let idf =
                (1.0 + (documents - document_frequency + 0.5) / (document_frequency + 0.5)).ln();
            for (&document, &frequency) in postings.documents.iter().zip(&postings.frequencies) {
                let frequency = f64::from(frequency);
                let length = f64::from(self.document_lengths[document as usize]);
                let saturation = BM25_K1 * (1.0 - BM25_B + BM25_B * length / average_length);
                let score = &mut scores[document as usize];
                if *score == 0.0 {
                    touched.push(document);
                }
                *score += idf * frequency * (BM25_K1 + 1.0) / (frequency + saturation);
            }
        }
        let better = |left: &u32, right: &u32| {
            scores[*right as usize]
                .total_cmp(&scores[*left as usize])
                .then_with(|| tie_key(*left as usize).cmp(&tie_key(*right as usize)))
                .then(left.cmp(right))
        };
        if touched.len() > top_k {
            // By score alone first (the tie key costs more): every document
            // scoring above the k-th best score is in the top k, and only
            // those scoring exactly it compete by tie key for the rest.
            touched.select_nth_unstable_by(top_k - 1, |left, right| {
                scores[*right as usize].total_cmp(&scores[*left as usize])
            });
            let kth = scores[touched[top_k - 1] as usize];
            touched.retain(|&document| scores[document as usize].total_cmp(&kth).is_ge());
            if touched.len() > top_k {
                touched.select_nth_unstable_by(top_k - 1, better);
                touched.truncate(top_k);
            }
        }
        touched.sort_unstable_by(better);
        touched
            .into_iter()
            .map(|document| SearchHit {
                document: document as usize,
                score: scores[document as usize],
            })
            .collect()
    }
}

/// Why a saved index ([`SearchIndex::write_saved`]) could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedIndexError {
    #[error("the saved search index ends early")]
    Truncated,
    #[error("the saved search index is invalid: {0}")]
    Invalid(&'static str),
}

impl From<EndsEarly> for SavedIndexError {
    fn from(_: EndsEarly) -> Self {
        SavedIndexError::Truncated
    }
}

impl SearchIndex {
    /// Writes the index (little-endian, counts before lists) for
    /// [`Self::read_saved`]: the documents' lengths, each term's postings,
    /// then the bigram and word terms with their numbers.
    pub fn write_saved(&self, out: &mut impl Write) -> io::Result<()> {
        write_u64(out, self.document_lengths.len() as u64)?;
        write_values(out, &self.document_lengths, u32::to_le_bytes)?;
        write_u64(out, self.postings.len() as u64)?;
        for postings in &self.postings {
            write_u64(out, postings.documents.len() as u64)?;
            write_values(out, &postings.documents, u32::to_le_bytes)?;
            write_values(out, &postings.frequencies, u16::to_le_bytes)?;
        }
        write_u64(out, self.bigram_terms.len() as u64)?;
        for (&bigram, &term) in &self.bigram_terms {
            out.write_all(&bigram.to_le_bytes())?;
            out.write_all(&term.to_le_bytes())?;
        }
        write_u64(out, self.word_terms.len() as u64)?;
        for (word, &term) in &self.word_terms {
            write_u64(out, word.len() as u64)?;
            out.write_all(word.as_bytes())?;
            out.write_all(&term.to_le_bytes())?;
        }
        Ok(())
    }

    /// An index written by [`Self::write_saved`], which must be all of
    /// `bytes`. Everything a search relies on is checked (document numbers
    /// in range and ascending in each list, each term numbered once), so a
    /// damaged file is an error, never a wrong answer or a panic.
    pub fn read_saved(bytes: &[u8]) -> Result<Self, SavedIndexError> {
        let mut input = SavedBytes { bytes };
        let documents = input.count(4)?;
        if u32::try_from(documents).is_err() {
            return Err(SavedIndexError::Invalid("too many documents"));
        }
        let document_lengths = input.values(documents, u32::from_le_bytes)?;
        let total_length = document_lengths.iter().map(|&l| u64::from(l)).sum();
        let terms = input.count(8)?;
        let mut postings = Vec::with_capacity(terms);
        for _ in 0..terms {
            let entries = input.count(6)?;
            let list = Postings {
                documents: input.values(entries, u32::from_le_bytes)?,
                frequencies: input.values(entries, u16::from_le_bytes)?,
            };
            let ascending = list.documents.windows(2).all(|pair| pair[0] < pair[1]);
            if !ascending
                || list
                    .documents
                    .last()
                    .is_some_and(|&d| d as usize >= documents)
            {
                return Err(SavedIndexError::Invalid(
                    "a posting list is out of order or range",
                ));
            }
            postings.push(list);
        }
        let mut numbered = vec![false; terms];
        let mut number = |term: u32| match numbered.get_mut(term as usize) {
            Some(seen) if !*seen => {
                *seen = true;
                Ok(term)
            }
            _ => Err(SavedIndexError::Invalid(
                "a term number is out of range or repeated",
            )),
        };
        let bigrams = input.count(12)?;
        let mut bigram_terms = HashMap::with_capacity(bigrams);
        for _ in 0..bigrams {
            let bigram = u64::from_le_bytes(input.array()?);
            bigram_terms.insert(bigram, number(u32::from_le_bytes(input.array()?))?);
        }
        let words = input.count(12)?;
        let mut word_terms = HashMap::with_capacity(words);
        for _ in 0..words {
            let length = input.count(1)?;
            let word = std::str::from_utf8(input.take(length)?)
                .map_err(|_| SavedIndexError::Invalid("a word is not UTF-8"))?
                .to_string();
            word_terms.insert(word, number(u32::from_le_bytes(input.array()?))?);
        }
        if bigram_terms.len() + word_terms.len() != terms {
            return Err(SavedIndexError::Invalid("terms without a bigram or word"));
        }
        if !input.bytes.is_empty() {
            return Err(SavedIndexError::Invalid("bytes after the index"));
        }
        Ok(Self {
            bigram_terms,
            word_terms,
            postings,
            document_lengths,
            total_length,
        })
    }
}

/// The terms of one document with their counts and the document's length,
/// computed apart from the index so that many documents can be tokenised in
/// parallel and then added in order.
#[derive(Debug, Default, Clone)]
pub struct DocumentTerms {
    bigrams: Vec<(u64, u32)>,
    words: Vec<(String, u32)>,
    length: u32,
}

impl DocumentTerms {
    pub fn new(text: &str) -> Self {
        // The very tokens `func_similarity` weighs; the length counts repeats.
        let CountedTokens { bigrams, words } = CountedTokens::new(text);
        let occurrences: u64 = bigrams
            .iter()
            .map(|(_, count)| u64::from(*count))
            .chain(words.iter().map(|(_, count)| u64::from(*count)))
            .sum();
        Self {
            bigrams,
            words,
            length: u32::try_from(occurrences).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::func_similarity::tests::DUTY_CLAUSES;

    fn index() -> SearchIndex {
        SearchIndex::from_texts(DUTY_CLAUSES)
    }

    fn top(index: &SearchIndex, query: &str, k: usize) -> Vec<usize> {
        index
            .search(query, k)
            .into_iter()
            .map(|hit| hit.document)
            .collect()
    }

    #[test]
    fn finds_the_clause_about_the_query() {
        let index = index();
        assert_eq!(index.len(), 30);
        // 负责全市档案监督管理工作 and 组织实施全市档案资料收集整理工作.
        let hits = top(&index, "档案", 10);
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits.contains(&2) && hits.contains(&25), "{hits:?}");
        assert_eq!(top(&index, "住房公积金", 1), [27]);
    }

    #[test]
    fn traditional_script_word_order_and_typos_find_the_same_clause() {
        let index = index();
        // 负责全市住房公积金监督管理工作
        assert_eq!(top(&index, "住房公積金", 1), [27], "Traditional");
        assert_eq!(top(&index, "公积金住房", 1), [27], "word order");
        assert_eq!(top(&index, "住房公基金", 1), [27], "one-character typo");
        // 负责全市特种设备安全监督管理工作
        assert_eq!(top(&index, "特种设备", 1), [7]);
        assert_eq!(top(&index, "特種設備", 1), [7]);
        assert_eq!(top(&index, "设备特种", 1), [7]);
        assert_eq!(top(&index, "特种设被", 1), [7]);
    }

    #[test]
    fn scores_follow_bm25() {
        let index = SearchIndex::from_texts(["交通", "档案", "档案"]);
        // One document of three holds 交通: its single bigram and its word.
        let hits = index.search("交通", 5);
        assert_eq!(hits.len(), 1);
        let idf = (1.0f64 + (3.0 - 1.0 + 0.5) / (1.0 + 0.5)).ln();
        // Every document has length 2 (one bigram, one word): dl = avgdl.
        let per_term = idf * (BM25_K1 + 1.0) / (1.0 + BM25_K1);
        assert!((hits[0].score - 2.0 * per_term).abs() < 1e-12, "{hits:?}");
    }

    #[test]
    fn rare_terms_and_short_documents_rank_first() {
        let index = index();
        let hits = index.search("负责全市道路交通", 3);
        // 道路交通 is rarer than 负责全市, which every clause but a few shares.
        assert_eq!(hits[0].document, 0, "{hits:?}");
        assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
    }

    #[test]
    fn no_match_no_terms_no_documents() {
        let index = index();
        assert!(index.search("，。", 10).is_empty());
        assert!(index.search("量子计算", 10).is_empty());
        assert!(index.search("档案", 0).is_empty());
        assert!(SearchIndex::new().search("档案", 10).is_empty());
        let mut with_empty = SearchIndex::new();
        assert_eq!(with_empty.add("，"), 0);
        assert_eq!(with_empty.add("档案"), 1);
        assert_eq!(top(&with_empty, "档案", 10), [1]);
    }

    fn saved(index: &SearchIndex) -> Vec<u8> {
        let mut bytes = Vec::new();
        index.write_saved(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_saved_index_reads_back_searching_the_same() {
        let mut index = index();
        index.add("，");
        index.add("負責全市档案监督管理工作（含城市快速路）ＡＢＣ");
        let read = SearchIndex::read_saved(&saved(&index)).unwrap();
        assert_eq!(read.len(), index.len());
        assert_eq!(read.distinct_terms(), index.distinct_terms());
        assert_eq!(read.total_length, index.total_length);
        for query in [
            "档案",
            "住房公積金",
            "负责全市道路交通",
            "特种设被",
            "abc",
            "，",
        ] {
            for k in [1, 3, 40] {
                assert_eq!(read.search(query, k), index.search(query, k), "{query} {k}");
            }
        }
        let empty = SearchIndex::read_saved(&saved(&SearchIndex::new())).unwrap();
        assert!(empty.is_empty() && empty.search("档案", 3).is_empty());
    }

    #[test]
    fn a_damaged_saved_index_is_an_error() {
        let bytes = saved(&SearchIndex::from_texts(["档案管理", "价格监督", "档案"]));
        for end in 0..bytes.len() {
            assert!(
                SearchIndex::read_saved(&bytes[..end]).is_err(),
                "cut at {end}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            SearchIndex::read_saved(&longer).unwrap_err(),
            SavedIndexError::Invalid("bytes after the index")
        );
        // Document 2's length is the third u32 after the count; the first
        // posting list's first document follows the term count and the
        // list's length.
        let first_document = 8 + 3 * 4 + 8 + 8;
        let mut out_of_range = bytes.clone();
        out_of_range[first_document..first_document + 4].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            SearchIndex::read_saved(&out_of_range).unwrap_err(),
            SavedIndexError::Invalid("a posting list is out of order or range")
        );
        // A huge count fails before anything is allocated for it.
        let mut huge = bytes;
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            SearchIndex::read_saved(&huge).unwrap_err(),
            SavedIndexError::Truncated
        );
    }

    #[test]
    fn ties_keep_document_order_and_top_k_cuts() {
        let index = SearchIndex::from_texts(["档案管理", "价格", "档案管理", "档案管理"]);
        assert_eq!(top(&index, "档案", 2), [0, 2]);
        assert_eq!(top(&index, "档案", 10), [0, 2, 3]);
    }

    #[test]
    fn every_top_k_is_the_head_of_the_whole_ranking() {
        // Many equal scores at every level, and a tie key unlike document
        // order: cutting at any k gives the first k of the full ranking.
        let texts: Vec<&str> = (0..200)
            .map(|i| match i % 5 {
                0 => "档案管理",
                1 => "档案管理工作",
                2 => "负责档案",
                3 => "价格",
                _ => "档案",
            })
            .collect();
        let index = SearchIndex::from_texts(&texts);
        let tie_key = |document: usize| (document % 7, std::cmp::Reverse(document));
        for query in ["档案", "档案管理", "负责档案管理工作"] {
            let whole = index.search_with_ties(query, texts.len(), tie_key);
            assert!(whole.len() > 100, "{query}");
            for k in [1, 2, 5, 39, 40, 41, 100, whole.len() - 1] {
                let top = index.search_with_ties(query, k, tie_key);
                assert_eq!(top, whole[..k], "{query}, k = {k}");
            }
        }
    }
}
