//! Probing the index: each member walks the postings of its prefix
//! tokens, takes candidates past the filters, and scores the survivors.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::index::{rest_after, GroupIndex, MemberBounds, Posting};
use super::threads::on_threads;
use super::tokens::{ScatteredRow, TokenizedRows};
use super::{SHARED_GROUP_SIZE, SLACK};

/// Rows probed per work item: small enough to balance the threads (later
/// rows have longer candidate lists), large enough to keep the counter cold.
pub(super) const PROBE_BLOCK: usize = 64;

/// A marked member's sum is kept in `MARKED_SCALE`ths.
const MARKED_SCALE: f64 = 255.0;

/// `sum` in `MARKED_SCALE`ths, rounded up (a kept sum is below the
/// threshold, so at most 1).
#[inline]
fn marked_sum(sum: f64) -> u8 {
    // Truncated plus one rather than `ceil`, which is a call on baseline
    // x86-64.
    ((sum * (1.0 + SLACK) * MARKED_SCALE) as u32 + 1).min(MARKED_SCALE as u32) as u8
}

/// Per-thread state of a group's probe, reused from one probing member to
/// the next.
pub(super) struct ProbeScratch {
    /// One bit per member: met by the member probed last, as a candidate
    /// or marked. Most posting entries only read this (an eighth of a byte
    /// a member, in cache).
    pub(super) taken: Vec<u64>,
    /// Per member marked by the member probed last (see `probe_member`):
    /// at least the sum of the products of its shared tokens met so far,
    /// in 255ths rounded up (never 0); 0 for every other member. And the
    /// members marked, to clear their entries.
    pub(super) marked_sums: Vec<u8>,
    pub(super) marks: Vec<u32>,
    /// What the member probed last found of each candidate, in the order
    /// taken, and where each is in that list.
    pub(super) met: Vec<Met>,
    pub(super) met_table: CandidateTable,
    /// Per side and position: how many entries of its posting list lie
    /// below the member probed last.
    pub(super) cursors: [Vec<u32>; 2],
    /// The candidates of the member probed last.
    pub(super) candidates: Vec<u32>,
    /// Posting entries walked, and candidates that passed the first-token
    /// and size filters, for the trace log.
    pub(super) walked: usize,
    pub(super) after_size: usize,
    /// Members marked, marked members met again and kept marked, and
    /// marked members taken as candidates, for the trace log.
    pub(super) marked_count: usize,
    pub(super) marked_again: usize,
    pub(super) promoted: usize,
}

#[derive(Clone, Copy)]
pub(super) struct Met {
    /// The candidate.
    pub(super) member: u32,
    /// Index (into `ordered`) of the last shared token found.
    pub(super) last_index: u32,
    /// Products of the shared prefix tokens found (at least their sum, for
    /// a member recorded after a mark).
    pub(super) accumulated: f64,
    /// This member's unit length after the last shared token found.
    pub(super) rest: f32,
    /// This member's prefix end and unit length from there, copied from
    /// the postings where it was taken.
    pub(super) prefix_end: u32,
    pub(super) prefix_end_rest: f32,
}

impl ProbeScratch {
    pub(super) fn new(members: usize, positions: usize) -> Self {
        Self {
            taken: vec![0; members.div_ceil(64)],
            marks: Vec::new(),
            marked_sums: vec![0; members],
            met: Vec::new(),
            met_table: CandidateTable::new(),
            cursors: [vec![0; positions], vec![0; positions]],
            candidates: Vec::new(),
            walked: 0,
            after_size: 0,
            marked_count: 0,
            marked_again: 0,
            promoted: 0,
        }
    }
}

/// Where each candidate of the member being probed is in `ProbeScratch::met`:
/// an open-addressing hash table (linear probing), small enough to stay in
/// cache where an array over all members would not. A slot holds only the
/// index into `met`, whose record names the member (read anyway when the
/// candidate's sum grows), so that more slots share a cache line. Emptied
/// between probes by starting a new generation: a slot of an older one is
/// free.
pub(super) struct CandidateTable {
    pub(super) slots: Vec<CandidateSlot>,
    /// The generation of the taken slots.
    pub(super) generation: u32,
    /// How many slots are taken.
    pub(super) len: usize,
}

#[derive(Clone, Copy)]
pub(super) struct CandidateSlot {
    /// Index into `met`.
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl CandidateTable {
    pub(super) const FREE: CandidateSlot = CandidateSlot {
        index: 0,
        generation: 0,
    };

    pub(super) fn new() -> Self {
        Self {
            slots: vec![Self::FREE; 1024],
            generation: 1,
            len: 0,
        }
    }

    #[inline]
    pub(super) fn home(&self, member: u32) -> usize {
        // Fibonacci hashing: the top bits of the product.
        let bits = self.slots.len().trailing_zeros();
        (u64::from(member).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Records `member` at `index` (`met.len()`, the records before it being
    /// `met`); `member` must not be in the table.
    #[inline]
    pub(super) fn insert(&mut self, member: u32, index: usize, met: &[Met]) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(met);
        }
        self.place(member, index as u32);
        self.len += 1;
    }

    /// Doubles the slots, placing the members recorded again.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, met: &[Met]) {
        let grown = vec![Self::FREE; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, grown);
        let generation = self.generation;
        for slot in old.into_iter().filter(|slot| slot.generation == generation) {
            self.place(met[slot.index as usize].member, slot.index);
        }
    }

    #[inline]
    pub(super) fn place(&mut self, member: u32, index: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(member);
        while self.slots[slot].generation == self.generation {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = CandidateSlot {
            index,
            generation: self.generation,
        };
    }

    /// The index recorded for `member`, which is in the table, `met` being
    /// the records. (No slot is freed within a generation, so none lies
    /// between a member's home and its slot.)
    #[inline]
    pub(super) fn find(&self, member: u32, met: &[Met]) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(member);
        loop {
            let CandidateSlot { index, generation } = self.slots[slot];
            if generation == self.generation && met[index as usize].member == member {
                return index as usize;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Empties the table.
    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Four billion probes later: free the slots for real.
            self.slots.fill(Self::FREE);
            self.generation = 1;
        }
    }
}

/// How many entries of `list` (ascending by member) lie below `member`,
/// given that the first `from` do: an exponential search from there, as
/// the answer is usually close.
#[inline]
pub(super) fn entries_before(list: &[Posting], from: usize, member: u32) -> usize {
    let rest = &list[from..];
    let mut reach = 1;
    while reach < rest.len() && rest[reach - 1].member < member {
        reach *= 2;
    }
    let low = reach / 2;
    let high = reach.min(rest.len());
    from + low + rest[low..high].partition_point(|entry| entry.member < member)
}

impl GroupIndex {
    /// Probes every member against the earlier ones and appends the matches
    /// as (later row, earlier row, score).
    pub(super) fn probe(
        &self,
        corpus: &TokenizedRows,
        threshold: f64,
        threads: usize,
        matches: &mut Vec<(u32, u32, f64)>,
    ) {
        if self.rows.len() < 2 {
            return;
        }
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scattered = ScatteredRow::new(corpus.vocabulary_len());
            self.probe_blocks(corpus, threshold, &next, &mut scattered)
        };
        on_threads(threads, work, matches);
    }

    /// Probes blocks of members, taking the next block from `next` until
    /// none is left, and returns the matches found.
    pub(super) fn probe_blocks(
        &self,
        corpus: &TokenizedRows,
        threshold: f64,
        next: &AtomicUsize,
        scattered: &mut ScatteredRow,
    ) -> Vec<(u32, u32, f64)> {
        let members = self.rows.len();
        let mut found = Vec::new();
        if members < 2 {
            return found;
        }
        let mut probe = self.probe_scratch();
        let mut scored = 0usize;
        loop {
            let block = next.fetch_add(PROBE_BLOCK, Ordering::Relaxed);
            if block >= members {
                break;
            }
            for member in block..(block + PROBE_BLOCK).min(members) {
                self.probe_member(member, &mut probe);
                if probe.candidates.is_empty() {
                    continue;
                }
                let row = self.rows[member];
                scored += probe.candidates.len();
                scattered.load(corpus, row);
                for &candidate in &probe.candidates {
                    let other = self.rows[candidate as usize];
                    let score = corpus.cosine_scattered(row, scattered, other);
                    if score >= threshold {
                        found.push((row, other, score));
                    }
                }
                scattered.unload(corpus, row);
            }
        }
        if members >= SHARED_GROUP_SIZE {
            tracing::trace!(
                walked = probe.walked,
                after_size = probe.after_size,
                marked = probe.marked_count,
                marked_again = probe.marked_again,
                promoted = probe.promoted,
                scored,
                found = found.len(),
                "similar_pairs: candidates of one thread"
            );
        }
        found
    }

    /// The earlier members sharing a prefix token with `member` that can
    /// still reach the threshold, each once.
    ///
    /// Candidates come from the postings of `member`'s prefix tokens, which
    /// hold the other members' prefixes. A member is taken at the first
    /// entry where it passes the first-token and size filters, and the
    /// products of its entries are summed from there (`accumulated`). For a
    /// matching pair that entry is their first shared token: it lies in
    /// both prefixes, and the filters bound the score there. So a member
    /// failing at an entry is not recorded (most entries only read one bit):
    /// if that was their first shared token they cannot match, and whether
    /// it is taken later and then dropped or scored changes nothing.
    ///
    /// For a matching pair, a shared token the walk missed lies at or past
    /// the end of one of the two prefixes, so past the last shared token
    /// found, and what the missed tokens add is at most the product of both
    /// rows' unit lengths after that token (read from the postings, no
    /// lookup) and, tighter, from the earlier of the two prefix ends
    /// (Cauchy–Schwarz); a candidate whose sum plus either cannot reach the
    /// threshold is dropped unscored. The tighter bound needs the unit length
    /// of the row with the later prefix end from the other's prefix end on,
    /// a search in its token list; so first that length is loosened to the
    /// row's length after the last shared token found (no search), and the
    /// search is made only for the candidates this keeps.
    ///
    /// Most members taken this way share only that one prefix token with
    /// `member`, and the check after the walk drops them. So a member is
    /// recorded only if its product plus what tokens at or past either
    /// prefix end can add (`beyond`, from the posting alone) reaches the
    /// threshold; otherwise it is only *marked*: its bit set, and its
    /// product kept in a byte (rounded up). If the walk never meets it
    /// again, that check would have dropped it. Met again, its kept sum plus
    /// the new product is checked the same way: it becomes a candidate with
    /// that sum if it may reach the threshold, and stays marked with the
    /// larger sum if not. Marking costs a bit, a byte and a push, where
    /// recording cost a hash-table slot, a record and its check.
    pub(super) fn probe_member(&self, member: usize, probe: &mut ProbeScratch) {
        let ProbeScratch {
            taken,
            marks,
            marked_sums,
            met,
            met_table,
            cursors,
            candidates,
            walked,
            after_size,
            marked_count,
            marked_again,
            promoted,
        } = probe;
        candidates.clear();
        met.clear();
        marks.clear();
        let MemberBounds {
            largest,
            sum,
            prefix_end: member_end,
            prefix_end_rest: member_end_rest,
        } = self.member_bounds[member];
        let side = usize::from(self.sides[member]);
        let other_side = if self.two_sided { 1 - side } else { side };
        let (starts, postings, posting_bounds) = (
            &self.starts[other_side],
            &self.postings[other_side],
            &self.posting_bounds[other_side],
        );
        // The size filter reads a member's bounds, which lie at random in
        // memory: only when it can drop one of the other side's members (at
        // a threshold of 0.5 it almost never can).
        let (floor_largest, floor_sum) = self.size_floor[other_side];
        let size_filter_may_drop =
            largest * floor_sum < self.bound || floor_largest * sum < self.bound;
        let begin = self.ordered_offsets[member];
        for index in begin..begin + self.prefix_lengths[member] {
            let (position, unit) = (self.ordered[index] as usize, self.ordered_units[index]);
            let member_rest = rest_after(&self.ordered_rest, &self.ordered_offsets, member, index);
            let range = starts[position]..starts[position + 1];
            let (list, list_bounds) = (&postings[range.clone()], &posting_bounds[range]);
            // This thread probes members in ascending order, so each list's
            // end only moves on: search from where it was.
            let cursor = &mut cursors[other_side][position];
            let end = entries_before(list, *cursor as usize, member as u32);
            *cursor = end as u32;
            *walked += end;
            // Most entries neither belong to a candidate nor pass the
            // first-token bound (below): a tight loop skips them, reading
            // only the entry and one bit.
            let unit_loosened = unit * (1.0 + SLACK);
            let (list, list_bounds) = (&list[..end], &list_bounds[..end]);
            let mut next = 0;
            loop {
                // A plain loop, not `position` with a closure: whether the
                // closure was inlined changed with unrelated code elsewhere
                // in the crate (its call cost 10% of the probe).
                let mut skipped = None;
                for (offset, entry) in list[next..].iter().enumerate() {
                    let other = entry.member;
                    if taken[other as usize / 64] & (1u64 << (other % 64)) != 0
                        || unit_loosened * f64::from(entry.unit)
                            + member_rest * f64::from(entry.rest)
                            >= self.bound
                    {
                        skipped = Some(offset);
                        break;
                    }
                }
                let Some(skipped) = skipped else {
                    break;
                };
                let at = next + skipped;
                next = at + 1;
                let entry = &list[at];
                let other = entry.member;
                let (word, bit) = (other as usize / 64, 1u64 << (other % 64));
                let product = unit * f64::from(entry.unit);
                // What shared tokens at or past either prefix end can add to
                // the pair's score: if the other's prefix ends first, at
                // most the member's rest length after this token times the
                // other's from its prefix end, else the member's from its
                // prefix end times the other's after this token. Which one
                // is not known without reading beside the postings: the
                // larger.
                let beyond = (member_rest * f64::from(entry.end_rest))
                    .max(member_end_rest * f64::from(entry.rest));
                let accumulated = if taken[word] & bit == 0 {
                    // Not taken yet, and this entry passed the first-token
                    // bound: if this is their first shared token, every
                    // other shared token lies after it in both rows, so
                    // this product plus both rest lengths bounds the score
                    // (failing it, it was not their first shared token or
                    // they cannot match). Then the size filter: the dot
                    // product of unit vectors is at most either one's
                    // largest weight times the other's weight sum.
                    if size_filter_may_drop {
                        let other_bounds = &self.member_bounds[other as usize];
                        if largest * other_bounds.sum < self.bound
                            || other_bounds.largest * sum < self.bound
                        {
                            continue;
                        }
                    }
                    taken[word] |= bit;
                    if product * (1.0 + SLACK) + beyond < self.bound {
                        // Unless the walk finds another shared token (most
                        // candidates share one), the check after the walk
                        // drops this one: mark it rather than record it.
                        marked_sums[other as usize] = marked_sum(product);
                        marks.push(other);
                        continue;
                    }
                    product
                } else if marked_sums[other as usize] != 0 {
                    // Met again after being marked: record it only if the
                    // sum so far can now reach the threshold.
                    let accumulated =
                        f64::from(marked_sums[other as usize]) / MARKED_SCALE + product;
                    if accumulated * (1.0 + SLACK) + beyond < self.bound {
                        marked_sums[other as usize] = marked_sum(accumulated);
                        *marked_again += 1;
                        continue;
                    }
                    *promoted += 1;
                    marked_sums[other as usize] = 0;
                    accumulated
                } else {
                    let found = met_table.find(other, met);
                    let found = &mut met[found];
                    found.accumulated += product;
                    // The member's prefix is walked in token order: the
                    // last rest lengths written are the smallest.
                    found.last_index = index as u32;
                    found.rest = entry.rest;
                    continue;
                };
                met_table.insert(other, met.len(), met);
                met.push(Met {
                    member: other,
                    last_index: index as u32,
                    accumulated,
                    rest: entry.rest,
                    prefix_end: list_bounds[at].prefix_end,
                    prefix_end_rest: entry.end_rest,
                });
            }
        }
        *after_size += met.len();
        *marked_count += marks.len();
        for found in met.iter() {
            taken[found.member as usize / 64] &= !(1u64 << (found.member % 64));
        }
        for &other in marks.iter() {
            taken[other as usize / 64] &= !(1u64 << (other % 64));
            marked_sums[other as usize] = 0;
        }
        met_table.clear();
        let bound = self.bound;
        // A plain loop rather than `extend` over a `filter` closure: that
        // closure stopped being inlined when unrelated code of the crate
        // changed, and its calls cost 10% of the probe.
        for found in met.iter() {
            let &Met {
                last_index,
                accumulated,
                rest: other_rest,
                prefix_end: other_end,
                prefix_end_rest: other_end_rest,
                member: other,
            } = found;
            let other = other as usize;
            let (other_rest, other_end_rest) = (f64::from(other_rest), f64::from(other_end_rest));
            let found_sum = accumulated * (1.0 + SLACK);
            let member_rest = rest_after(
                &self.ordered_rest,
                &self.ordered_offsets,
                member,
                last_index as usize,
            );
            if found_sum + member_rest * other_rest < bound {
                continue;
            }
            let may_reach = if other_end < member_end {
                found_sum + member_rest * other_end_rest >= bound
                    && found_sum + self.rest_from(member, other_end) * other_end_rest >= bound
            } else {
                found_sum + member_end_rest * other_rest >= bound
                    && found_sum + member_end_rest * self.rest_from(other, member_end) >= bound
            };
            if may_reach {
                candidates.push(other as u32);
            }
        }
    }

    /// A thread's arrays for probing this group.
    pub(super) fn probe_scratch(&self) -> ProbeScratch {
        ProbeScratch::new(self.rows.len(), self.starts[0].len() - 1)
    }

    /// The length of `member`'s unit vector on positions `from` and later.
    pub(super) fn rest_from(&self, member: usize, from: u32) -> f64 {
        let (begin, end) = (
            self.ordered_offsets[member],
            self.ordered_offsets[member + 1],
        );
        let first = begin + self.ordered[begin..end].partition_point(|&p| p < from);
        if first < end {
            self.ordered_rest[first]
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Random;
    use super::*;

    #[test]
    fn candidate_table_finds_every_member_and_empties() {
        // Enough members to grow the table several times, ids spread out.
        let mut random = Random(0x5EED);
        let mut members: Vec<u32> = (0..5000).map(|_| random.below(1 << 30) as u32).collect();
        members.sort_unstable();
        members.dedup();
        let record = |member: u32| Met {
            member,
            last_index: 0,
            accumulated: 0.0,
            rest: 0.0,
            prefix_end: 0,
            prefix_end_rest: 0.0,
        };
        let mut table = CandidateTable::new();
        for round in 0..2 {
            // The second round records the members in another order.
            let order: Vec<u32> = if round == 0 {
                members.clone()
            } else {
                members.iter().rev().copied().collect()
            };
            let mut met = Vec::new();
            for &member in &order {
                table.insert(member, met.len(), &met);
                met.push(record(member));
            }
            for (index, &member) in order.iter().enumerate() {
                assert_eq!(table.find(member, &met), index, "member {member}");
            }
            table.clear();
            assert_eq!(table.len, 0);
            assert!(table
                .slots
                .iter()
                .all(|slot| slot.generation != table.generation));
        }
        // The generation wraps round: every slot is freed for real.
        let met = vec![record(7), record(9)];
        table.insert(7, 0, &met[..0]);
        table.generation = u32::MAX;
        table.insert(9, 1, &met[..1]);
        table.clear();
        assert_eq!(table.generation, 1);
        assert!(table.slots.iter().all(|slot| slot.generation == 0));
        table.insert(9, 1, &met[..1]);
        assert_eq!(table.find(9, &met), 1);
    }

    #[test]
    fn entries_before_equals_a_binary_search() {
        let mut random = Random(77);
        for _ in 0..200 {
            let length = random.below(300);
            let mut members: Vec<u32> = (0..length).map(|_| random.below(1000) as u32).collect();
            members.sort_unstable();
            let list: Vec<Posting> = members
                .iter()
                .map(|&member| Posting {
                    member,
                    ..Posting::default()
                })
                .collect();
            // Probing members in ascending order from a cursor, as a thread does.
            let mut cursor = 0;
            let mut probes: Vec<u32> = (0..20).map(|_| random.below(1100) as u32).collect();
            probes.sort_unstable();
            for member in probes {
                let expected = members.partition_point(|&m| m < member);
                cursor = entries_before(&list, cursor, member);
                assert_eq!(cursor, expected, "member {member} of {members:?}");
            }
        }
    }
}
