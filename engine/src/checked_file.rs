//! The files an engine derives from its tables and saves beside them (token
//! counts, the `func_search` index, `similar_pairs`' tokens) end with a
//! trailer: the length of what precedes it and its CRC-32. Their readers
//! check lengths and ranges, but a flipped bit inside a count or a token id
//! can be in range and would give wrong scores with no error; checked, such
//! a file is set aside and built again instead.

use std::io::{self, Write};
use std::path::Path;

use crate::export::{AtomicFile, ExportError};

/// Bytes of the trailer: the contents' length (u64) and CRC-32 (u32),
/// little-endian.
const TRAILER_BYTES: usize = 12;

/// Why a saved file's contents were not trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DamagedFile {
    #[error("the file is {length} bytes, too short to hold its checksum")]
    TooShort { length: usize },
    #[error(
        "the file does not end with its length and checksum (its last bytes say {said} bytes, \
         it holds {held}): cut short, damaged, or saved by a bianzhi from before checksums"
    )]
    LengthMismatch { said: u64, held: usize },
    #[error("the checksum does not match the contents (CRC-32 {said:08x} saved, {computed:08x} computed)")]
    ChecksumMismatch { said: u32, computed: u32 },
}

/// Replaces `target` with what `write` writes followed by the trailer,
/// whole or not at all (an [`AtomicFile`]).
pub(crate) fn save_checked(
    target: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), ExportError> {
    AtomicFile::write_whole(target, |file| {
        let mut checked = ChecksummingWriter::new(file);
        write(&mut checked)?;
        let (length, checksum) = checked.finish();
        file.write_all(&trailer(length, checksum))
    })
}

/// The contents of a saved file's `bytes`, the trailer taken off, if the
/// trailer matches them.
pub(crate) fn checked_contents(mut bytes: Vec<u8>) -> Result<Vec<u8>, DamagedFile> {
    let length = bytes.len();
    let Some(held) = length.checked_sub(TRAILER_BYTES) else {
        return Err(DamagedFile::TooShort { length });
    };
    let mut said_length = [0; 8];
    said_length.copy_from_slice(&bytes[held..held + 8]);
    let said = u64::from_le_bytes(said_length);
    if usize::try_from(said) != Ok(held) {
        return Err(DamagedFile::LengthMismatch { said, held });
    }
    let mut said_checksum = [0; 4];
    said_checksum.copy_from_slice(&bytes[held + 8..]);
    let said = u32::from_le_bytes(said_checksum);
    let computed = crc32fast::hash(&bytes[..held]);
    if said != computed {
        return Err(DamagedFile::ChecksumMismatch { said, computed });
    }
    bytes.truncate(held);
    Ok(bytes)
}

fn trailer(length: u64, checksum: u32) -> [u8; TRAILER_BYTES] {
    let mut trailer = [0; TRAILER_BYTES];
    trailer[..8].copy_from_slice(&length.to_le_bytes());
    trailer[8..].copy_from_slice(&checksum.to_le_bytes());
    trailer
}

/// Passes bytes on, counting them and their CRC-32.
struct ChecksummingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: crc32fast::Hasher,
    length: u64,
}

impl<'a> ChecksummingWriter<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            hasher: crc32fast::Hasher::new(),
            length: 0,
        }
    }

    fn finish(self) -> (u64, u32) {
        (self.length, self.hasher.finalize())
    }
}

impl Write for ChecksummingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.length += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `contents` with the trailer a saved file would end with: for tests that
/// damage a file's contents and keep its checksum right, to reach the
/// readers' own checks.
#[cfg(test)]
pub(crate) fn with_trailer(contents: &[u8]) -> Vec<u8> {
    [
        contents,
        &trailer(contents.len() as u64, crc32fast::hash(contents))[..],
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_contents_read_back_and_any_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("derived");
        let contents: Vec<u8> = (0..5000u32)
            .flat_map(|i| (i * 7919).to_le_bytes())
            .collect();
        save_checked(&path, |out| {
            // In pieces, as the savers write.
            for piece in contents.chunks(777) {
                out.write_all(piece)?;
            }
            Ok(())
        })
        .unwrap();
        let saved = std::fs::read(&path).unwrap();
        assert_eq!(saved, with_trailer(&contents));
        assert_eq!(checked_contents(saved.clone()).unwrap(), contents);
        assert_eq!(
            checked_contents(with_trailer(&[])).unwrap(),
            Vec::<u8>::new()
        );

        // Every single flipped bit of the contents is found.
        for at in (0..contents.len()).step_by(97) {
            let mut flipped = saved.clone();
            flipped[at] ^= 1 << (at % 8);
            assert!(
                matches!(
                    checked_contents(flipped),
                    Err(DamagedFile::ChecksumMismatch { .. })
                ),
                "byte {at}"
            );
        }
        let mut cut = saved.clone();
        cut.remove(100);
        assert_eq!(
            checked_contents(cut),
            Err(DamagedFile::LengthMismatch {
                said: contents.len() as u64,
                held: contents.len() - 1
            })
        );
        // A file of the format before checksums: its last bytes are not a
        // trailer.
        assert!(matches!(
            checked_contents(contents.clone()),
            Err(DamagedFile::LengthMismatch { .. })
        ));
        assert_eq!(
            checked_contents(vec![0; 11]),
            Err(DamagedFile::TooShort { length: 11 })
        );
        let message = checked_contents(vec![1; 11]).unwrap_err().to_string();
        assert!(message.contains("11 bytes"), "{message}");
    }

    #[test]
    fn a_failed_write_leaves_the_saved_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("derived");
        save_checked(&path, |out| out.write_all(b"first")).unwrap();
        let failed = save_checked(&path, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(
            checked_contents(std::fs::read(&path).unwrap()).unwrap(),
            b"first"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no partial file left");
    }
}
