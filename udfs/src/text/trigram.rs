//! pg_trgm's trigram model, following PostgreSQL 15 `contrib/pg_trgm/trgm_op.c`
//! so that `similarity`, `word_similarity`, `strict_word_similarity` and
//! `show_trgm` give PostgreSQL's numbers, bit for bit (float4).
//!
//! - A *word* is a maximal run of word characters (letters and digits of
//!   the locale; see [`super::trigram_word_chars`]); everything else
//!   separates words and is otherwise ignored.
//! - Each word is lowercased (per character, as `towlower`), padded with two
//!   spaces before and one after, and cut into its trigrams: every three
//!   consecutive characters.
//! - A trigram of three one-byte characters is kept as those three bytes;
//!   any other (a multibyte character in it) is replaced by three bytes of
//!   PostgreSQL's legacy CRC-32 of its UTF-8 bytes. Two different trigrams
//!   can collide this way; PostgreSQL then counts them as equal, and so do
//!   we.
//! - A text's trigram set is sorted by bytes compared as signed `char`
//!   (x86-64 PostgreSQL), duplicates removed; `show_trgm` lists it in that
//!   order.
//! - `similarity` = shared / (|A| + |B| − shared), computed in float4.

use super::trigram_word_chars::is_word_char;

/// Three bytes: a trigram of one-byte characters, or a hash.
pub(crate) type Trigram = [u8; 3];

const LEFT_BOUND: u8 = 0x01;
const RIGHT_BOUND: u8 = 0x02;

/// Buffers reused from text to text within a batch.
#[derive(Debug, Default)]
pub(crate) struct TrigramBuffers {
    padded_word: String,
    boundaries: Vec<usize>,
}

/// Appends the trigrams of every word of `text`, in text order with
/// repeats (`generate_trgm_only`). With `bounds`, also appends for each
/// trigram whether it starts and/or ends its word.
pub(crate) fn extract_trigrams(
    text: &str,
    buffers: &mut TrigramBuffers,
    trigrams: &mut Vec<Trigram>,
    mut bounds: Option<&mut Vec<u8>>,
) {
    let mut rest = text;
    while let Some(start) = rest.find(is_word_char) {
        let word_and_after = &rest[start..];
        let end = word_and_after
            .find(|character: char| !is_word_char(character))
            .unwrap_or(word_and_after.len());
        let word = &word_and_after[..end];
        rest = &word_and_after[end..];

        let first = trigrams.len();
        word_trigrams(word, buffers, trigrams);
        if let Some(bounds) = bounds.as_deref_mut() {
            bounds.resize(trigrams.len(), 0);
            if trigrams.len() > first {
                bounds[first] |= LEFT_BOUND;
                bounds[trigrams.len() - 1] |= RIGHT_BOUND;
            }
        }
    }
}

fn word_trigrams(word: &str, buffers: &mut TrigramBuffers, trigrams: &mut Vec<Trigram>) {
    let padded = &mut buffers.padded_word;
    padded.clear();
    padded.push_str("  ");
    padded.extend(word.chars().map(pg_lowercase));
    padded.push(' ');
    let boundaries = &mut buffers.boundaries;
    boundaries.clear();
    boundaries.extend(padded.char_indices().map(|(offset, _)| offset));
    boundaries.push(padded.len());
    let bytes = padded.as_bytes();
    for window in boundaries.windows(4) {
        trigrams.push(compact_trigram(&bytes[window[0]..window[3]]));
    }
}

/// `towlower` of the reference locale: Unicode's simple lowercase mapping.
/// İ (U+0130), whose full lowercase is two characters, becomes i.
fn pg_lowercase(character: char) -> char {
    if character == '\u{130}' {
        return 'i';
    }
    let mut lower = character.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(lower), None) => lower,
        _ => character,
    }
}

/// `compact_trigram`: three one-byte characters as they are, anything else
/// as the first three bytes (little-endian memory order) of its legacy CRC.
fn compact_trigram(bytes: &[u8]) -> Trigram {
    if let [first, second, third] = bytes {
        return [*first, *second, *third];
    }
    let [first, second, third, _] = legacy_crc32(bytes).to_le_bytes();
    [first, second, third]
}

/// PostgreSQL's `LEGACY_CRC32`: the reflected CRC-32 table driven as if
/// it were a non-reflected one (a historical quirk pg_trgm keeps, since
/// indexes store its hashes).
fn legacy_crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        let index = ((crc >> 24) ^ u32::from(byte)) & 0xFF;
        crc = CRC32_TABLE[index as usize] ^ (crc << 8);
    }
    crc ^ u32::MAX
}

const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut value = index as u32;
        let mut bit = 0;
        while bit < 8 {
            value = if value & 1 != 0 {
                0xEDB8_8320 ^ (value >> 1)
            } else {
                value >> 1
            };
            bit += 1;
        }
        table[index] = value;
        index += 1;
    }
    table
}

/// PostgreSQL's trigram order: bytes compared as (x86-64 signed) `char`.
fn pg_order(trigram: &Trigram) -> [i8; 3] {
    trigram.map(|byte| byte as i8)
}

/// The sorted, distinct trigrams of `text` (`generate_trgm`).
pub(crate) fn trigram_set(text: &str, buffers: &mut TrigramBuffers) -> Vec<Trigram> {
    let mut trigrams = Vec::new();
    extract_trigrams(text, buffers, &mut trigrams, None);
    trigrams.sort_unstable_by_key(pg_order);
    trigrams.dedup();
    trigrams
}

/// `CALCSML`: shared / (len1 + len2 − shared), in float4 as PostgreSQL.
fn calc_similarity(shared: i32, left_len: i32, right_len: i32) -> f32 {
    shared as f32 / (left_len + right_len - shared) as f32
}

/// `cnt_sml` of two trigram sets from [`trigram_set`]; 0 when either is empty.
pub(crate) fn set_similarity(left: &[Trigram], right: &[Trigram]) -> f32 {
    if left.is_empty() || right.is_empty() {
        return 0.0;
    }
    let (mut left_index, mut right_index, mut shared) = (0, 0, 0);
    while left_index < left.len() && right_index < right.len() {
        match pg_order(&left[left_index]).cmp(&pg_order(&right[right_index])) {
            std::cmp::Ordering::Less => left_index += 1,
            std::cmp::Ordering::Greater => right_index += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                left_index += 1;
                right_index += 1;
            }
        }
    }
    calc_similarity(shared, clamp_len(left.len()), clamp_len(right.len()))
}

fn clamp_len(length: usize) -> i32 {
    i32::try_from(length).unwrap_or(i32::MAX)
}

/// `calc_word_similarity`: the greatest similarity between the trigram set
/// of `pattern` and the trigrams of a stretch of `text`. Strict: the stretch
/// must start and end at word bounds of `text`.
pub(crate) fn word_similarity(
    pattern: &str,
    text: &str,
    strict: bool,
    buffers: &mut TrigramBuffers,
) -> f32 {
    let mut pattern_trigrams = Vec::new();
    extract_trigrams(pattern, buffers, &mut pattern_trigrams, None);
    let mut text_trigrams = Vec::new();
    let mut bounds = Vec::new();
    extract_trigrams(
        text,
        buffers,
        &mut text_trigrams,
        strict.then_some(&mut bounds),
    );

    // Number every distinct trigram of either text; `found` marks those of
    // the pattern.
    let mut distinct: Vec<Trigram> = pattern_trigrams
        .iter()
        .chain(&text_trigrams)
        .copied()
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let index_of = |trigram: &Trigram| distinct.binary_search(trigram).unwrap_or(0);
    let mut found = vec![false; distinct.len()];
    for trigram in &pattern_trigrams {
        found[index_of(trigram)] = true;
    }
    let pattern_distinct = clamp_len(found.iter().filter(|&&found| found).count());
    let text_indexes: Vec<usize> = text_trigrams.iter().map(index_of).collect();

    iterate_word_similarity(
        &text_indexes,
        &found,
        pattern_distinct,
        strict.then_some(bounds.as_slice()),
    )
}

/// `iterate_word_similarity`, statement for statement: slides a stretch
/// `[lower, upper]` over the text's trigrams, extending `upper` at each
/// trigram of the pattern (strict: at each word end) and then moving
/// `lower` right while that improves the similarity.
fn iterate_word_similarity(
    text_indexes: &[usize],
    found: &[bool],
    pattern_distinct: i32,
    bounds: Option<&[u8]>,
) -> f32 {
    let mut last_position: Vec<isize> = vec![-1; found.len()];
    let mut stretch_distinct: i32 = 0;
    let mut shared: i32 = 0;
    let mut lower: isize = if bounds.is_some() { 0 } else { -1 };
    let mut best: f32 = 0.0;

    for (position, &index) in text_indexes.iter().enumerate() {
        let position = position as isize;
        if lower >= 0 || found[index] {
            if last_position[index] < 0 {
                stretch_distinct += 1;
                if found[index] {
                    shared += 1;
                }
            }
            last_position[index] = position;
        }

        let extends = match bounds {
            Some(bounds) => bounds[position as usize] & RIGHT_BOUND != 0,
            None => found[index],
        };
        if !extends {
            continue;
        }
        let upper = position;
        if lower == -1 {
            lower = position;
            stretch_distinct = 1;
        }
        let mut current = calc_similarity(shared, pattern_distinct, stretch_distinct);

        // Try moving the lower bound right for a greater similarity.
        let mut candidate_shared = shared;
        let mut candidate_distinct = stretch_distinct;
        let previous_lower = lower;
        let mut candidate_lower = lower;
        while candidate_lower <= upper {
            let may_start = match bounds {
                Some(bounds) => bounds[candidate_lower as usize] & LEFT_BOUND != 0,
                None => true,
            };
            if may_start {
                let candidate =
                    calc_similarity(candidate_shared, pattern_distinct, candidate_distinct);
                if candidate > current {
                    current = candidate;
                    stretch_distinct = candidate_distinct;
                    lower = candidate_lower;
                    shared = candidate_shared;
                }
            }
            let candidate_index = text_indexes[candidate_lower as usize];
            if last_position[candidate_index] == candidate_lower {
                candidate_distinct -= 1;
                if found[candidate_index] {
                    candidate_shared -= 1;
                }
            }
            candidate_lower += 1;
        }

        // C's `Max(a, b)`: `a > b ? a : b`, NaN included.
        best = if best > current { best } else { current };

        for dropped in previous_lower..lower {
            let dropped_index = text_indexes[dropped as usize];
            if last_position[dropped_index] == dropped {
                last_position[dropped_index] = -1;
            }
        }
    }
    best
}

/// How `show_trgm` prints a trigram: as its three characters when they are
/// all ASCII letters, digits or spaces, otherwise as `0x` and six hex digits.
pub(crate) fn display_trigram(trigram: &Trigram) -> String {
    let printable = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b' ';
    if trigram.iter().all(printable) {
        return trigram.iter().map(|&byte| char::from(byte)).collect();
    }
    let [first, second, third] = *trigram;
    format!(
        "0x{:06x}",
        (u32::from(first) << 16) | (u32::from(second) << 8) | u32::from(third)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> Vec<String> {
        trigram_set(text, &mut TrigramBuffers::default())
            .iter()
            .map(display_trigram)
            .collect()
    }

    // Expected values in this module: PostgreSQL 15.18, pg_trgm, C.UTF-8;
    // `SELECT show_trgm(t)` as in tests/pg_trgm_reference.sql.

    #[test]
    fn ascii_trigrams_as_postgres_shows_them() {
        assert_eq!(
            shown("Hello, World!"),
            ["  h", "  w", " he", " wo", "ell", "hel", "ld ", "llo", "lo ", "orl", "rld", "wor"]
        );
        assert_eq!(shown("a"), ["  a", " a "]);
        assert_eq!(shown("Ab"), ["  a", " ab", "ab "]);
        assert_eq!(
            shown("a1 B2-c3"),
            ["  a", "  b", "  c", " a1", " b2", " c3", "a1 ", "b2 ", "c3 "]
        );
        assert_eq!(shown("x y"), ["  x", "  y", " x ", " y "]);
        assert!(shown("").is_empty());
        assert!(shown("...!!!").is_empty());
    }

    #[test]
    fn multibyte_trigrams_are_hashed_like_postgres() {
        assert_eq!(
            shown("负责全市"),
            ["0xaeec81", "0xc03893", "0xcf795b", "0x1f0ab1", "0x7db6e7"]
        );
        assert_eq!(shown("café"), ["0xef5960", "  c", " ca", "0x544980", "caf"]);
        assert_eq!(
            shown("道路 交通"),
            ["0x83c857", "0x978e47", "0xa354e7", "0xc23729", "0xdfe2af", "0x1a7c90"]
        );
        assert_eq!(shown("İ"), ["  i", " i "]);
    }

    #[test]
    fn word_bounds_mark_first_and_last_trigram() {
        let mut trigrams = Vec::new();
        let mut bounds = Vec::new();
        extract_trigrams(
            "ab, c",
            &mut TrigramBuffers::default(),
            &mut trigrams,
            Some(&mut bounds),
        );
        // "  ab " gives 3 trigrams, "  c " gives 2.
        assert_eq!(
            bounds,
            [LEFT_BOUND, 0, RIGHT_BOUND, LEFT_BOUND, RIGHT_BOUND]
        );
    }

    #[test]
    fn legacy_crc_of_a_padded_character() {
        let [first, second, third, _] = legacy_crc32("  负".as_bytes()).to_le_bytes();
        assert_eq!([first, second, third], [0x7d, 0xb6, 0xe7]);
    }
}
