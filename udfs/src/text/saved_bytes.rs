//! The little-endian layout of the files bianzhi derives from its tables
//! and saves beside them (the `func_search` index, `similar_pairs`'
//! tokens): writing numbers and arrays, and reading them back with every
//! length checked before use.

use std::io::{self, Write};

/// A saved file ended before what its counts announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndsEarly;

pub(crate) fn write_u64(out: &mut impl Write, value: u64) -> io::Result<()> {
    out.write_all(&value.to_le_bytes())
}

/// Writes `values` in one call (per-value writes cost more than the bytes).
pub(crate) fn write_values<T: Copy, const N: usize>(
    out: &mut impl Write,
    values: &[T],
    to_bytes: fn(T) -> [u8; N],
) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(values.len() * N);
    for &value in values {
        bytes.extend_from_slice(&to_bytes(value));
    }
    out.write_all(&bytes)
}

/// What is left to read of a saved file.
pub(crate) struct SavedBytes<'a> {
    pub(crate) bytes: &'a [u8],
}

impl<'a> SavedBytes<'a> {
    pub(crate) fn take(&mut self, length: usize) -> Result<&'a [u8], EndsEarly> {
        if length > self.bytes.len() {
            return Err(EndsEarly);
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], EndsEarly> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// A count of items of at least `item_bytes` bytes each, checked against
    /// the bytes left before anything is allocated for them.
    pub(crate) fn count(&mut self, item_bytes: usize) -> Result<usize, EndsEarly> {
        let count = usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| EndsEarly)?;
        if count.saturating_mul(item_bytes) > self.bytes.len() {
            return Err(EndsEarly);
        }
        Ok(count)
    }

    pub(crate) fn values<T, const N: usize>(
        &mut self,
        count: usize,
        from_bytes: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, EndsEarly> {
        let bytes = self.take(count.saturating_mul(N))?;
        Ok(bytes
            .chunks_exact(N)
            .map(|chunk| {
                let mut array = [0; N];
                array.copy_from_slice(chunk);
                from_bytes(array)
            })
            .collect())
    }
}
