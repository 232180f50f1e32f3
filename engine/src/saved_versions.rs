//! What a cache saved beside the tables was made from: the tokenizer and, per
//! table, its Delta version and data files. The corpus token counts
//! (`text_corpus`) and the `func_search` index (`func_search`) start their
//! saved files with these lines, and are used again only for the very rows
//! they were made from (or brought up to date when the tables only gained
//! files since).

use std::collections::HashSet;

use bianzhi_catalog::live_table::{PinnedVersion, Since};
use bianzhi_udfs::text::TokenWeights;
use datafusion::error::Result as DfResult;

/// Per table, in a fixed order of table names: its Delta version (`None`
/// for a table without commits or missing) and its data files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableVersions {
    pub versions: Vec<Option<u64>>,
    /// `None` when not known (token counts saved by an earlier version of
    /// bianzhi, or a file name that cannot be saved).
    pub files: Option<Vec<HashSet<String>>>,
}

impl TableVersions {
    /// Whether a cache made from `self` holds the same rows as one made
    /// from `now`: the same versions and (where known) the same files.
    pub fn same_rows(&self, now: &TableVersions) -> bool {
        self.versions == now.versions
            && match (&self.files, &now.files) {
                (Some(files), Some(now_files)) => files == now_files,
                _ => true,
            }
    }

    /// How each table, `pinned` now (in the same order; `None` for one that
    /// does not exist), stands to the version the cache was made from
    /// ([`PinnedVersion::since`]); `None` for a table missing now, and no
    /// list at all when the files made from are not known.
    pub async fn since(
        &self,
        pinned: &[Option<&PinnedVersion>],
    ) -> DfResult<Option<Vec<Option<Since>>>> {
        let Some(files) = &self.files else {
            return Ok(None);
        };
        let mut since = Vec::new();
        for (index, table) in pinned.iter().enumerate() {
            let Some(table) = table else {
                since.push(None);
                continue;
            };
            let (Some(&version), Some(files)) = (self.versions.get(index), files.get(index)) else {
                return Ok(None);
            };
            since.push(Some(table.since(version, files).await?));
        }
        Ok(Some(since))
    }

    /// The saved lines, without a final line break: the tokenizer and the
    /// versions (the first line), then the files, each as `file`, the index
    /// of its table and the file, tab-separated, after a line with their
    /// number. The files are left out if a name holds a tab or a line break
    /// (Delta's file names do not).
    pub fn header(&self) -> String {
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|version| version.map_or_else(|| "-".to_string(), |v| v.to_string()))
            .collect();
        let mut header = format!(
            "tokenizer {:016x} versions {}",
            TokenWeights::tokenizer_fingerprint(),
            versions.join(" ")
        );
        let Some(table_files) = &self.files else {
            return header;
        };
        let files = table_files.iter().enumerate().flat_map(|(table, files)| {
            let mut files: Vec<&String> = files.iter().collect();
            files.sort_unstable();
            files.into_iter().map(move |file| (table, file))
        });
        let files: Vec<(usize, &String)> = files.collect();
        if files
            .iter()
            .all(|(_, file)| !file.contains(['\t', '\n', '\r']))
        {
            header.push_str(&format!("\nfiles\t{}", files.len()));
            for (table, file) in files {
                header.push_str(&format!("\nfile\t{table}\t{file}"));
            }
        }
        header
    }

    /// Lines written by [`Self::header`] (and its line break) at the start of
    /// `saved`, for `tables` tables, and the bytes after them: `None` if they
    /// are of another tokenizer, an error naming what is wrong if they
    /// cannot be read.
    pub fn parse(saved: &[u8], tables: usize) -> Result<Option<(Self, &[u8])>, String> {
        let mut rest = saved;
        let first = next_line(&mut rest)?;
        let Some((tokenizer, versions)) = first
            .strip_prefix("tokenizer ")
            .and_then(|first| first.split_once(" versions "))
        else {
            return Err("the first line names no tokenizer and versions".to_string());
        };
        if tokenizer != format!("{:016x}", TokenWeights::tokenizer_fingerprint()) {
            return Ok(None);
        }
        let versions: Vec<Option<u64>> = versions
            .split(' ')
            .map(|version| match version {
                "-" => Ok(None),
                number => number.parse().map(Some),
            })
            .collect::<Result<_, _>>()
            .map_err(|_| format!("bad versions in the first line: {versions}"))?;
        if versions.len() != tables {
            return Err(format!("expected {tables} versions"));
        }
        let mut files = None;
        if rest.starts_with(b"files\t") {
            let count = next_line(&mut rest)?;
            let count: usize = count
                .strip_prefix("files\t")
                .and_then(|count| count.parse().ok())
                .ok_or("bad number of files")?;
            let mut table_files = vec![HashSet::new(); tables];
            for _ in 0..count {
                let file_line = next_line(&mut rest)?;
                let mut fields = file_line.splitn(3, '\t');
                let (Some("file"), Some(table), Some(file)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    return Err(format!("expected a file line, found {file_line:?}"));
                };
                table
                    .parse::<usize>()
                    .ok()
                    .and_then(|table| table_files.get_mut(table))
                    .ok_or_else(|| format!("bad table number in {file_line:?}"))?
                    .insert(file.to_string());
            }
            files = Some(table_files);
        }
        Ok(Some((Self { versions, files }, rest)))
    }
}

/// The line at the start of `rest`, which moves past it and its line break.
fn next_line<'a>(rest: &mut &'a [u8]) -> Result<&'a str, String> {
    let end = rest
        .iter()
        .position(|&byte| byte == b'\n')
        .ok_or("a line is not ended")?;
    let (line, after) = rest.split_at(end);
    *rest = &after[1..];
    std::str::from_utf8(line).map_err(|_| "a line is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::TableVersions;

    #[test]
    fn header_reads_back_with_what_follows() {
        let saved = TableVersions {
            versions: vec![Some(3), None],
            files: Some(vec![
                ["b.parquet".to_string(), "a.parquet#dv".to_string()].into(),
                Default::default(),
            ]),
        };
        let mut bytes = saved.header().into_bytes();
        bytes.extend_from_slice(b"\n\x00\xffrest");
        let (read, rest) = TableVersions::parse(&bytes, 2).unwrap().unwrap();
        assert_eq!(read, saved);
        assert_eq!(rest, b"\x00\xffrest");
        assert!(read.same_rows(&saved));
        let without_files = TableVersions {
            files: None,
            ..saved.clone()
        };
        assert!(without_files.same_rows(&saved));
        // Another tokenizer: not read.
        assert_eq!(
            TableVersions::parse(b"tokenizer 0 versions 1 2\n", 2),
            Ok(None)
        );
        let header = saved.header().into_bytes();
        let error = TableVersions::parse(&header, 2).unwrap_err();
        assert_eq!(error, "a line is not ended");
        let mut three = header.clone();
        three.push(b'\n');
        let error = TableVersions::parse(&three, 3).unwrap_err();
        assert_eq!(error, "expected 3 versions");
    }
}
