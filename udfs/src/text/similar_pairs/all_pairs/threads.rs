//! Running the join's work on all cores: scoped threads over shares of
//! the work, and sorting and splitting arrays for them.

/// Runs `work` on `threads` threads at once (on this one when there is one)
/// and appends what each returns to `matches`; the threads share their work
/// through counters inside `work`.
pub(super) fn on_threads<W>(threads: usize, work: W, matches: &mut Vec<(u32, u32, f64)>)
where
    W: Fn() -> Vec<(u32, u32, f64)> + Sync,
{
    if threads <= 1 {
        matches.extend(work());
        return;
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(&work)).collect();
        for handle in handles {
            matches.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
    });
}

/// `items` sorted by `order`: one share per thread sorted at once, then the
/// sorted shares merged (tens of millions of pairs at low thresholds).
pub(super) fn sort_on_threads<T, F>(mut items: Vec<T>, threads: usize, order: F) -> Vec<T>
where
    T: Copy + Send,
    F: Fn(&T, &T) -> std::cmp::Ordering + Sync,
{
    pub(super) const SORT_ALONE_BELOW: usize = 1 << 16;
    if threads < 2 || items.len() < SORT_ALONE_BELOW {
        items.sort_unstable_by(&order);
        return items;
    }
    let share = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for chunk in items.chunks_mut(share) {
            scope.spawn(|| chunk.sort_unstable_by(&order));
        }
    });
    let shares: Vec<&[T]> = items.chunks(share).collect();
    let mut runs: Vec<Vec<T>> = shares
        .chunks(2)
        .map(|two| match two {
            [first, second] => merge_sorted(first, second, &order),
            one => one.concat(),
        })
        .collect();
    drop(items);
    while runs.len() > 1 {
        let mut merged = Vec::with_capacity(runs.len().div_ceil(2));
        let mut pending = runs.into_iter();
        while let Some(first) = pending.next() {
            merged.push(match pending.next() {
                Some(second) => merge_sorted(&first, &second, &order),
                None => first,
            });
        }
        runs = merged;
    }
    runs.pop().unwrap_or_default()
}

pub(super) fn merge_sorted<T: Copy>(
    first: &[T],
    second: &[T],
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut merged = Vec::with_capacity(first.len() + second.len());
    let (mut i, mut j) = (0, 0);
    while i < first.len() && j < second.len() {
        if order(&second[j], &first[i]).is_lt() {
            merged.push(second[j]);
            j += 1;
        } else {
            merged.push(first[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&first[i..]);
    merged.extend_from_slice(&second[j..]);
    merged
}

/// `work` applied to each item on a thread of its own (on this one when
/// there is only one item), results in order.
pub(super) fn on_chunks<I: Send, R: Send>(items: Vec<I>, work: impl Fn(I) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    })
}

/// `count` items split into `threads` consecutive shares of (nearly) equal
/// size; one share when there is nothing to split.
pub(super) fn even_shares(count: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let share = count.div_ceil(threads.max(1)).max(1);
    (0..count.div_ceil(share).max(1))
        .map(|index| index * share..((index + 1) * share).min(count))
        .collect()
}

/// `data` cut into consecutive pieces beginning at `starts` (ascending, the
/// first 0).
pub(super) fn split_at_starts<'a, T>(mut data: &'a mut [T], starts: &[usize]) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::with_capacity(starts.len());
    for (index, &start) in starts.iter().enumerate() {
        let end = starts
            .get(index + 1)
            .map_or(start + data.len(), |&next| next);
        let (piece, rest) = std::mem::take(&mut data).split_at_mut(end - start);
        pieces.push(piece);
        data = rest;
    }
    pieces
}

/// Two arrays laid out alike, cut alike (`split_at_starts`), piece by piece.
pub(super) fn split_both_at_starts<'a, A, B>(
    first: &'a mut [A],
    second: &'a mut [B],
    starts: &[usize],
) -> Vec<(&'a mut [A], &'a mut [B])> {
    split_at_starts(first, starts)
        .into_iter()
        .zip(split_at_starts(second, starts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::Random;
    use super::*;

    #[test]
    fn sorting_on_threads_equals_one_sort() {
        let mut random = Random(0x5eed);
        // Above the size sorted alone, with repeats so ties occur, and
        // lengths that do not divide evenly among the threads.
        for length in [10, 70_001, 200_003] {
            let items: Vec<(u32, u32)> = (0..length)
                .map(|index| (random.below(5000) as u32, index as u32))
                .collect();
            let mut expected = items.clone();
            expected.sort_unstable_by_key(|item| item.0);
            for threads in [1, 2, 3, 5] {
                let sorted = sort_on_threads(items.clone(), threads, |a, b| a.0.cmp(&b.0));
                assert_eq!(sorted.len(), length, "{threads} threads");
                let keys: Vec<u32> = sorted.iter().map(|item| item.0).collect();
                let expected_keys: Vec<u32> = expected.iter().map(|item| item.0).collect();
                assert_eq!(keys, expected_keys, "{threads} threads, {length} items");
                let mut all = sorted.clone();
                all.sort_unstable();
                let mut original = items.clone();
                original.sort_unstable();
                assert_eq!(all, original, "the same items, {threads} threads");
            }
        }
    }
}
