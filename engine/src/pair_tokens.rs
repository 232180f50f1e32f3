//! `similar_pairs`' tokenised texts saved beside the tables
//! ([`SAVED_PAIR_TOKENS_FILE`]), so that a new process's first call over
//! texts an earlier one joined skips normalising and segmenting them.
//!
//! The file maps texts to their tokens, which depend on the text and the
//! tokenizer alone (its fingerprint is in the file), so it stays valid
//! whatever the tables do: a text no longer in any table only takes room
//! until the memo is emptied at its limit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bianzhi_udfs::text::{PairTokenMemo, SavedPairTokens};

use crate::checked_file::{checked_contents, save_checked};

/// The file in a local data directory's root holding the tokens.
pub const SAVED_PAIR_TOKENS_FILE: &str = ".bianzhi_pair_tokens";

/// The memo of an engine whose data directory's root is `root` (when local):
/// saved there as [`SAVED_PAIR_TOKENS_FILE`].
pub(crate) fn memo_saved_in(root: Option<&Path>) -> PairTokenMemo {
    match root {
        Some(root) => PairTokenMemo::saved_in(Arc::new(PairTokensFile {
            path: root.join(SAVED_PAIR_TOKENS_FILE),
        })),
        None => PairTokenMemo::new(),
    }
}

/// The saved tokens as a file, replaced whole and ending with a checksum
/// (`checked_file`). Best effort both ways: a file that cannot be read or
/// written, or is damaged, only costs tokenising again.
#[derive(Debug)]
struct PairTokensFile {
    path: PathBuf,
}

impl SavedPairTokens for PairTokensFile {
    fn read(&self) -> Option<Vec<u8>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "could not read the saved similar_pairs tokens");
                return None;
            }
        };
        match checked_contents(bytes) {
            Ok(contents) => Some(contents),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "saved similar_pairs tokens damaged; tokenising again");
                None
            }
        }
    }

    fn save(&self, write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>) -> bool {
        match save_checked(&self.path, |file| write(file)) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "could not save the similar_pairs tokens");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};

    use bianzhi_udfs::text::TokenWeights;

    use super::SAVED_PAIR_TOKENS_FILE;
    use crate::checked_file::checked_contents;
    use crate::engine::Engine;
    use crate::session::{Output, Session};
    use crate::{SessionIdentity, Settings};

    const DUTIES: [&str; 6] = [
        "负责全市档案监督管理工作",
        "负责全市药品监督管理工作",
        "組織實施全市檔案資料收集整理工作",
        "组织实施全市档案资料收集整理工作",
        "负责全市档案馆建设",
        "承办市政府交办的其他事项",
    ];

    const PAIRS: &str = "SELECT left_id, right_id, score \
        FROM similar_pairs('org_duty', 'duty_id', 'duty_text', 0.2) ORDER BY 1, 2";

    /// Every pair `PAIRS` returns, with the score's bits.
    async fn pairs(engine: &Engine) -> Vec<(i64, i64, u64)> {
        let session = Session::new(engine, Settings::default(), SessionIdentity::default())
            .expect("a session");
        let Output::Rows { batches, .. } = session.run_one(PAIRS).await.expect("pairs") else {
            panic!("rows expected");
        };
        let mut found = Vec::new();
        for batch in batches {
            let (left, right, score) = (
                batch.column(0).as_primitive::<Int64Type>(),
                batch.column(1).as_primitive::<Int64Type>(),
                batch.column(2).as_primitive::<Float64Type>(),
            );
            for row in 0..batch.num_rows() {
                found.push((
                    left.value(row),
                    right.value(row),
                    score.value(row).to_bits(),
                ));
            }
        }
        found
    }

    /// Inserts `DUTIES` into `org_duty`.
    /// Appends one duty row (id 100) and runs a statement that brings the
    /// corpus counts up to date with it.
    async fn append_duty_and_count(engine: &Engine, text: &str) {
        let session =
            Session::new(engine, Settings::default(), SessionIdentity::default()).unwrap();
        session
            .run_one(&format!(
                "INSERT INTO org_duty (duty_id, org_id, version_year, seq, duty_text, valid_from) \
                 VALUES (100, 2, 2024, 1, '{text}', DATE '2024-01-01')"
            ))
            .await
            .unwrap();
        session
            .run_one("SELECT func_similarity('档案', '档案馆')")
            .await
            .unwrap();
    }

    async fn insert_duties(engine: &Engine) {
        let session =
            Session::new(engine, Settings::default(), SessionIdentity::default()).unwrap();
        let rows: Vec<String> = DUTIES
            .iter()
            .enumerate()
            .map(|(i, text)| format!("({i}, 1, 2024, {i}, '{text}', DATE '2024-01-01')"))
            .collect();
        session
            .run_one(&format!(
                "INSERT INTO org_duty (duty_id, org_id, version_year, seq, duty_text, valid_from) \
                 VALUES {}",
                rows.join(", ")
            ))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn counting_the_corpus_leaves_its_texts_tokenised_for_similar_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let saved = dir.path().join(SAVED_PAIR_TOKENS_FILE);
        let first = Engine::open(location).await.unwrap();
        insert_duties(&first).await;
        let expected = pairs(&first).await;
        drop(first);
        // Without saved counts or tokens, opening counts the duty texts
        // and keeps (and saves) their tokens: before any join.
        std::fs::remove_file(&saved).unwrap();
        std::fs::remove_file(dir.path().join(crate::text_corpus::SAVED_COUNTS_FILE)).unwrap();
        let engine = Engine::open(location).await.unwrap();
        assert_eq!(
            engine.corpus_weights().last_count(),
            Some(crate::text_corpus::CountKind::Whole)
        );
        assert!(saved.exists());
        assert_eq!(engine.similar_pairs_texts_held(), DUTIES.len());
        // The join tokenises nothing more, and its pairs are the same.
        assert_eq!(pairs(&engine).await, expected);
        assert_eq!(engine.similar_pairs_texts_held(), DUTIES.len());
        // An append is counted with its texts kept too.
        append_duty_and_count(&engine, "负责全市档案监督管理").await;
        assert_eq!(
            engine.corpus_weights().last_count(),
            Some(crate::text_corpus::CountKind::Added { documents: 1 })
        );
        assert_eq!(engine.similar_pairs_texts_held(), DUTIES.len() + 1);
    }

    #[tokio::test]
    async fn counting_an_append_in_a_new_engine_leaves_the_saved_tokens_unread() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let first = Engine::open(location).await.unwrap();
        insert_duties(&first).await;
        assert!(!pairs(&first).await.is_empty());
        assert!(dir.path().join(SAVED_PAIR_TOKENS_FILE).exists());
        drop(first);
        // Another process appends a row: its count of that row alone does
        // not read the saved tokens of the whole corpus.
        let engine = Engine::open(location).await.unwrap();
        let appended = "负责全市档案监督管理";
        append_duty_and_count(&engine, appended).await;
        assert_eq!(
            engine.corpus_weights().last_count(),
            Some(crate::text_corpus::CountKind::Added { documents: 1 })
        );
        assert!(!engine.pair_tokens.saved_read());
        assert_eq!(
            *engine.text_weights(),
            TokenWeights::from_texts(DUTIES.iter().copied().chain([appended]))
        );
        // A join then reads them and tokenises only the appended text.
        assert!(!pairs(&engine).await.is_empty());
        assert!(engine.pair_tokens.saved_read());
        assert_eq!(engine.similar_pairs_texts_held(), DUTIES.len() + 1);
    }

    #[tokio::test]
    async fn the_saved_tokens_are_read_by_the_next_engine() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        let saved = dir.path().join(SAVED_PAIR_TOKENS_FILE);
        let first = Engine::open(location).await.unwrap();
        insert_duties(&first).await;
        assert!(!saved.exists());
        let expected = pairs(&first).await;
        assert!(expected.len() >= 2, "{expected:?}");
        assert!(saved.exists());
        assert_eq!(first.similar_pairs_texts_held(), DUTIES.len());
        drop(first);

        // A new engine starts with the texts tokenised, and its pairs are
        // the same, score bits included.
        let second = Engine::open(location).await.unwrap();
        assert_eq!(second.similar_pairs_texts_held(), DUTIES.len());
        assert_eq!(pairs(&second).await, expected);
        drop(second);
        // Read ahead of any call, as a server does at its start.
        let third = Engine::open(location).await.unwrap();
        assert!(!third.pair_tokens.saved_read());
        let reading = third.read_saved_pair_tokens_in_background().unwrap();
        reading.join().unwrap();
        assert!(third.pair_tokens.saved_read());
        assert_eq!(third.similar_pairs_texts_held(), DUTIES.len());
        assert_eq!(pairs(&third).await, expected);
        drop(third);

        // Damaged, or of another tokenizer: not used, the pairs are still
        // right, and the file is written anew. The readers' own checks are
        // reached with the checksum made right again; a changed number
        // still in range (a token counted twice) only the checksum finds.
        let bytes = std::fs::read(&saved).unwrap();
        let contents = checked_contents(bytes.clone()).unwrap();
        let sealed = |contents: &[u8]| crate::checked_file::with_trailer(contents);
        let magic_end = contents.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut other_tokenizer = contents.clone();
        other_tokenizer[magic_end] ^= 1;
        // The contents end with the token count (u64), the tokens' ids and
        // their counts (u32 each).
        let len = contents.len();
        let tokens = (1..len / 8)
            .find(|&t| contents[len - 8 * t - 8..len - 8 * t] == (t as u64).to_le_bytes())
            .unwrap();
        let mut out_of_range = contents.clone();
        let last_id = len - 4 * tokens - 4;
        out_of_range[last_id..last_id + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut counted_zero = contents.clone();
        counted_zero[len - 4..].copy_from_slice(&0u32.to_le_bytes());
        let mut counted_twice = bytes.clone();
        counted_twice[len - 4..len].copy_from_slice(&2u32.to_le_bytes());
        for (case, damaged) in [
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("other tokenizer", sealed(&other_tokenizer)),
            ("a token id out of range", sealed(&out_of_range)),
            ("a token counted 0 times", sealed(&counted_zero)),
            (
                "bytes after the end",
                sealed(&[contents.clone(), vec![0]].concat()),
            ),
            ("a token counted twice, checksum not", counted_twice),
            ("the format before checksums", contents.clone()),
        ] {
            std::fs::write(&saved, &damaged).unwrap();
            let engine = Engine::open(location).await.unwrap();
            assert_eq!(engine.similar_pairs_texts_held(), 0, "{case}");
            assert_eq!(pairs(&engine).await, expected, "{case}");
            assert_eq!(std::fs::read(&saved).unwrap(), bytes, "{case}: saved anew");
        }
    }
}
