//! The inverted index over one group's prefixes: the group's token order,
//! each member's prefix, and posting lists carrying the numbers the
//! filters read.

use super::threads::{
    even_shares, on_chunks, sort_on_threads, split_at_starts, split_both_at_starts,
};
use super::tokens::{ScatteredRow, TokenizedRows};
use super::SLACK;

/// The length of `member`'s unit vector after the token at `index` (0 after
/// its last token).
#[inline]
pub(super) fn rest_after(
    ordered_rest: &[f64],
    ordered_offsets: &[usize],
    member: usize,
    index: usize,
) -> f64 {
    if index + 1 < ordered_offsets[member + 1] {
        ordered_rest[index + 1]
    } else {
        0.0
    }
}

/// `rest[i] = √(Σ_{j ≥ i} weights[j]²) / length`: what the tail of a vector
/// from `i` on can add to a cosine.
pub(super) fn fill_rest_lengths(weights: &[f64], length: f64, rest: &mut [f64]) {
    let mut squared = 0.0;
    for (weight, rest) in weights.iter().zip(rest.iter_mut()).rev() {
        squared += weight * weight;
        *rest = squared.sqrt() / length;
    }
}

/// One thread's share of a group's members, weighed: `GroupIndex::new`.
pub(super) struct WeighedShare {
    /// Each member's (position, unit weight) pairs, by position, one member
    /// after another; `ends` says where each member ends.
    pub(super) weights: Vec<(u32, f64)>,
    pub(super) ends: Vec<usize>,
    /// Each member's largest unit weight and weight sum.
    pub(super) sizes: Vec<(f64, f64)>,
    /// The largest unit weight of each position over the share.
    pub(super) largest_at_position: Vec<f64>,
}

impl WeighedShare {
    pub(super) fn new(
        corpus: &TokenizedRows,
        rows: &[u32],
        position: &[u32],
        positions: usize,
    ) -> Self {
        let mut share = Self {
            weights: Vec::new(),
            ends: Vec::with_capacity(rows.len()),
            sizes: Vec::with_capacity(rows.len()),
            largest_at_position: vec![0.0; positions],
        };
        for &row in rows {
            let length = corpus.norms[row as usize].sqrt();
            let start = share.weights.len();
            let range = corpus.row_range(row);
            share.weights.extend(
                corpus.tokens[range.clone()]
                    .iter()
                    .zip(&corpus.token_weights[range])
                    .map(|(&token, &weight)| (position[token as usize], weight / length)),
            );
            let member = &mut share.weights[start..];
            member.sort_unstable_by_key(|(position, _)| *position);
            let (mut largest, mut sum) = (0.0f64, 0.0);
            for &(position, unit) in member.iter() {
                let slot = &mut share.largest_at_position[position as usize];
                *slot = slot.max(unit);
                largest = largest.max(unit);
                sum += unit;
            }
            share.sizes.push((largest, sum));
            share.ends.push(share.weights.len());
        }
        share
    }
}

/// Per-vocabulary arrays reused from group to group, reset through the list
/// of ranks a group touched.
pub(super) struct GroupScratch {
    pub(super) frequency: Vec<u32>,
    pub(super) position: Vec<u32>,
    pub(super) touched: Vec<u32>,
    pub(super) scattered: ScatteredRow,
}

impl GroupScratch {
    /// Frees the arrays for the next group: `order` is what the group
    /// touched (`token_order`).
    fn reset(&mut self, mut order: Vec<u32>) {
        for &token in &order {
            self.frequency[token as usize] = 0;
        }
        order.clear();
        self.touched = order;
    }

    pub(super) fn new(vocabulary: usize) -> Self {
        Self {
            frequency: vec![0; vocabulary],
            position: vec![0; vocabulary],
            touched: Vec::new(),
            scattered: ScatteredRow::new(vocabulary),
        }
    }
}

/// What the filters read of one member, together: of the probing member
/// itself, and (rounded, in `Posting` and `PostingBounds`) of the members
/// in its postings.
#[derive(Clone, Copy)]
pub(super) struct MemberBounds {
    /// The largest unit weight and the sum of the unit weights: the size
    /// filter.
    pub(super) largest: f64,
    pub(super) sum: f64,
    /// The first position past the prefix (the group's number of positions
    /// when the whole row is prefix), and the length of the unit vector
    /// from there on.
    pub(super) prefix_end: u32,
    pub(super) prefix_end_rest: f64,
}

/// One entry of a posting list: a member whose prefix holds the position,
/// its unit weight there, the length of its unit vector after it and from
/// its prefix end on (16 bytes, four to a cache line). The numbers are
/// rounded up to `f32`, which only loosens the bounds: candidates are
/// scored in full precision.
#[derive(Clone, Copy, Default)]
pub(super) struct Posting {
    pub(super) member: u32,
    pub(super) unit: f32,
    pub(super) rest: f32,
    /// The length of the member's unit vector from its prefix end on.
    pub(super) end_rest: f32,
}

/// What the check after the walk reads of a candidate beside its posting,
/// in a parallel array read only when a member becomes a candidate (the
/// walk's other decisions need only the posting): read in list order
/// rather than looked up at random in `member_bounds`.
#[derive(Clone, Copy, Default)]
pub(super) struct PostingBounds {
    /// The member's prefix end.
    pub(super) prefix_end: u32,
}

/// The nearest `f32` at or above `value` (which is finite and not negative).
pub(super) fn rounded_up(value: f64) -> f32 {
    let near = value as f32;
    if f64::from(near) < value {
        near.next_up()
    } else {
        near
    }
}

/// Inverted index over the prefixes of one group's rows.
pub(super) struct GroupIndex {
    /// Members (rows of the group) in the order of their token lists.
    pub(super) rows: Vec<u32>,
    pub(super) sides: Vec<u8>,
    /// Members' tokens as positions in the group's token order, ascending:
    /// `ordered[ordered_offsets[m]..]`.
    pub(super) ordered: Vec<u32>,
    pub(super) ordered_offsets: Vec<usize>,
    /// How many leading ordered tokens form each member's prefix.
    pub(super) prefix_lengths: Vec<usize>,
    /// Per ordered token: its unit weight, and the length of the member's
    /// unit vector from that token on.
    pub(super) ordered_units: Vec<f64>,
    pub(super) ordered_rest: Vec<f64>,
    /// What the filters read of each member.
    pub(super) member_bounds: Vec<MemberBounds>,
    /// Posting lists per side: the members (ascending) whose prefix holds
    /// a position, `postings[side][starts[side][p]..starts[side][p + 1]]`.
    pub(super) starts: [Vec<usize>; 2],
    pub(super) postings: [Vec<Posting>; 2],
    pub(super) posting_bounds: [Vec<PostingBounds>; 2],
    /// Per side: the smallest largest unit weight and the smallest sum of
    /// unit weights of its members, so that a probe knows whether the size
    /// filter can drop any of them.
    pub(super) size_floor: [(f64, f64); 2],
    pub(super) two_sided: bool,
    /// The threshold loosened by `SLACK`.
    pub(super) bound: f64,
}

impl GroupIndex {
    /// The index of one group: `rows` of `corpus` (each with tokens),
    /// `sides[row]` their side in a two-sided join, on `threads` threads.
    /// `scratch`'s per-vocabulary arrays are used and left as found.
    pub(super) fn new(
        corpus: &TokenizedRows,
        rows: Vec<u32>,
        sides: &[u8],
        two_sided: bool,
        threshold: f64,
        threads: usize,
        scratch: &mut GroupScratch,
    ) -> Self {
        let order = token_order(corpus, &rows, scratch);
        let positions = order.len();
        let bound = threshold * (1.0 - SLACK);
        let shares = even_shares(rows.len(), threads);
        let members = OrderedMembers::new(
            corpus,
            &rows,
            &scratch.position,
            positions,
            &shares,
            threads,
        );
        let prefix_lengths = members.prefix_lengths(&shares, bound);
        let (ordered_rest, member_bounds) =
            members.rests_and_bounds(&shares, &prefix_lengths, positions);
        let mut index = Self {
            sides: members
                .rows
                .iter()
                .map(|&row| sides[row as usize])
                .collect(),
            rows: members.rows,
            ordered: members.ordered,
            ordered_offsets: members.ordered_offsets,
            prefix_lengths,
            ordered_units: members.ordered_units,
            ordered_rest,
            member_bounds,
            starts: Default::default(),
            postings: Default::default(),
            posting_bounds: Default::default(),
            size_floor: [(f64::INFINITY, f64::INFINITY); 2],
            two_sided,
            bound,
        };
        for side in 0..2 {
            let (starts, postings, posting_bounds) = index.posting_lists(side, positions, threads);
            index.starts[side] = starts;
            index.postings[side] = postings;
            index.posting_bounds[side] = posting_bounds;
        }
        for (bounds, &side) in index.member_bounds.iter().zip(&index.sides) {
            let floor = &mut index.size_floor[usize::from(side)];
            *floor = (floor.0.min(bounds.largest), floor.1.min(bounds.sum));
        }
        scratch.reset(order);
        index
    }

    /// The posting lists of the members of `side`: where each position's
    /// list starts, the entries and their members' bounds. Each thread fills
    /// the lists of a range of positions holding about as many entries as
    /// the others' (reading every member's prefix, writing only its own
    /// lists).
    fn posting_lists(
        &self,
        side: usize,
        positions: usize,
        threads: usize,
    ) -> (Vec<usize>, Vec<Posting>, Vec<PostingBounds>) {
        let of_side = |member: &usize| usize::from(self.sides[*member]) == side;
        let prefix = |member: usize| {
            let begin = self.ordered_offsets[member];
            begin..begin + self.prefix_lengths[member]
        };
        let mut starts = vec![0usize; positions + 1];
        for member in (0..self.rows.len()).filter(of_side) {
            for &position in &self.ordered[prefix(member)] {
                starts[position as usize + 1] += 1;
            }
        }
        for position in 0..positions {
            starts[position + 1] += starts[position];
        }
        let total = starts[positions];
        if total == 0 {
            return (starts, Vec::new(), Vec::new());
        }
        let mut lists = vec![Posting::default(); total];
        let mut lists_bounds = vec![PostingBounds::default(); total];
        // The first position of each share of the entries, then the end.
        let mut position_bounds: Vec<usize> = even_shares(total, threads)
            .iter()
            .map(|share| starts.partition_point(|&start| start < share.start))
            .collect();
        position_bounds.push(positions);
        let entry_starts: Vec<usize> = position_bounds[..position_bounds.len() - 1]
            .iter()
            .map(|&position| starts[position])
            .collect();
        let pieces: Vec<_> = split_both_at_starts(&mut lists, &mut lists_bounds, &entry_starts)
            .into_iter()
            .zip(position_bounds.windows(2).map(|pair| pair[0]..pair[1]))
            .collect();
        on_chunks(pieces, |((entries, entries_bounds), share)| {
            let base = starts[share.start];
            let mut fill: Vec<usize> = starts[share.clone()]
                .iter()
                .map(|start| start - base)
                .collect();
            for member in (0..self.rows.len()).filter(of_side) {
                let MemberBounds {
                    prefix_end,
                    prefix_end_rest,
                    ..
                } = self.member_bounds[member];
                let bounds = PostingBounds { prefix_end };
                let end_rest = rounded_up(prefix_end_rest);
                for index in prefix(member) {
                    // A prefix's positions ascend.
                    let position = self.ordered[index] as usize;
                    if position < share.start {
                        continue;
                    }
                    if position >= share.end {
                        break;
                    }
                    let slot = &mut fill[position - share.start];
                    entries[*slot] = Posting {
                        member: member as u32,
                        unit: rounded_up(self.ordered_units[index]),
                        rest: rounded_up(rest_after(
                            &self.ordered_rest,
                            &self.ordered_offsets,
                            member,
                            index,
                        )),
                        end_rest,
                    };
                    entries_bounds[*slot] = bounds;
                    *slot += 1;
                }
            }
        });
        (starts, lists, lists_bounds)
    }
}

/// The group's token order: rarest within the group first, then heaviest
/// (ties by rank). Each token's position in it is left in
/// `scratch.position`, its frequency in `scratch.frequency` until
/// [`GroupScratch::reset`].
fn token_order(corpus: &TokenizedRows, rows: &[u32], scratch: &mut GroupScratch) -> Vec<u32> {
    for &row in rows {
        for &token in corpus.row_tokens(row) {
            if scratch.frequency[token as usize] == 0 {
                scratch.touched.push(token);
            }
            scratch.frequency[token as usize] += 1;
        }
    }
    let mut order = std::mem::take(&mut scratch.touched);
    order.sort_unstable_by(|&a, &b| {
        scratch.frequency[a as usize]
            .cmp(&scratch.frequency[b as usize])
            .then(corpus.rank_weights[b as usize].total_cmp(&corpus.rank_weights[a as usize]))
            .then(a.cmp(&b))
    });
    for (position, &token) in order.iter().enumerate() {
        scratch.position[token as usize] = position as u32;
    }
    order
}

/// A group's members in the order of their token lists, each with its
/// tokens as ascending positions in the group's token order and its unit
/// weights there.
struct OrderedMembers {
    rows: Vec<u32>,
    /// `ordered[ordered_offsets[m]..ordered_offsets[m + 1]]`, and the unit
    /// weights alike.
    ordered: Vec<u32>,
    ordered_offsets: Vec<usize>,
    ordered_units: Vec<f64>,
    /// Each member's largest unit weight and weight sum.
    sizes: Vec<(f64, f64)>,
    /// The largest unit weight of each position over the group.
    largest_at_position: Vec<f64>,
}

impl OrderedMembers {
    /// `rows` weighed and put in order, a share of them per thread.
    fn new(
        corpus: &TokenizedRows,
        rows: &[u32],
        position: &[u32],
        positions: usize,
        shares: &[std::ops::Range<usize>],
        threads: usize,
    ) -> Self {
        let weighed: Vec<WeighedShare> = on_chunks(shares.to_vec(), |share| {
            WeighedShare::new(corpus, &rows[share], position, positions)
        });
        let mut largest_at_position = vec![0.0f64; positions];
        for share in &weighed {
            for (slot, &largest) in largest_at_position
                .iter_mut()
                .zip(&share.largest_at_position)
            {
                *slot = slot.max(largest);
            }
        }
        let member_weights: Vec<&[(u32, f64)]> = weighed
            .iter()
            .flat_map(|share| {
                share.ends.iter().scan(0, |start, &end| {
                    let member = &share.weights[*start..end];
                    *start = end;
                    Some(member)
                })
            })
            .collect();
        let unsorted_sizes: Vec<(f64, f64)> = weighed
            .iter()
            .flat_map(|share| share.sizes.iter().copied())
            .collect();

        // Members in the order of their token lists, so that texts sharing
        // their rarest tokens are neighbours: the members probed one after
        // the other walk the same postings and meet the same members, which
        // are then still in cache. (Any order finds every pair once; none
        // of the bounds depends on it.)
        let positions_of =
            |member: usize| member_weights[member].iter().map(|(position, _)| *position);
        let by_tokens = sort_on_threads((0..rows.len()).collect(), threads, |&a, &b| {
            positions_of(a)
                .cmp(positions_of(b))
                .then(rows[a].cmp(&rows[b]))
        });
        let mut ordered_offsets = Vec::with_capacity(rows.len() + 1);
        ordered_offsets.push(0);
        for &member in &by_tokens {
            ordered_offsets
                .push(ordered_offsets[ordered_offsets.len() - 1] + member_weights[member].len());
        }
        let token_count = ordered_offsets[rows.len()];
        let mut ordered = vec![0u32; token_count];
        let mut ordered_units = vec![0.0f64; token_count];
        let share_starts: Vec<usize> = shares
            .iter()
            .map(|share| ordered_offsets[share.start])
            .collect();
        let pieces: Vec<_> = split_both_at_starts(&mut ordered, &mut ordered_units, &share_starts)
            .into_iter()
            .zip(shares.iter().cloned())
            .collect();
        on_chunks(pieces, |((positions, units), share)| {
            let mut next = 0;
            for &member in &by_tokens[share] {
                for &(position, unit) in member_weights[member] {
                    positions[next] = position;
                    units[next] = unit;
                    next += 1;
                }
            }
        });
        Self {
            rows: by_tokens.iter().map(|&member| rows[member]).collect(),
            sizes: by_tokens
                .iter()
                .map(|&member| unsorted_sizes[member])
                .collect(),
            ordered,
            ordered_offsets,
            ordered_units,
            largest_at_position,
        }
    }

    /// Where `member`'s tokens lie in `ordered`.
    fn range(&self, member: usize) -> std::ops::Range<usize> {
        self.ordered_offsets[member]..self.ordered_offsets[member + 1]
    }

    /// How many leading tokens form each member's prefix. A prefix ends
    /// where no partner could reach the threshold on the tokens left: by
    /// Cauchy–Schwarz the rest contributes at most the length of the rest
    /// of the unit vector, and at most the sum of its unit weights times
    /// the largest unit weight of the same token in the group.
    fn prefix_lengths(&self, shares: &[std::ops::Range<usize>], bound: f64) -> Vec<usize> {
        on_chunks(shares.to_vec(), |share| {
            let (mut squared_rest, mut product_rest) = (Vec::new(), Vec::new());
            share
                .map(|member| {
                    let range = self.range(member);
                    let (positions, units) =
                        (&self.ordered[range.clone()], &self.ordered_units[range]);
                    squared_rest.clear();
                    squared_rest.resize(units.len() + 1, 0.0);
                    product_rest.clear();
                    product_rest.resize(units.len() + 1, 0.0);
                    for (i, (&position, &unit)) in positions.iter().zip(units).enumerate().rev() {
                        squared_rest[i] = squared_rest[i + 1] + unit * unit;
                        product_rest[i] = product_rest[i + 1]
                            + unit * self.largest_at_position[position as usize];
                    }
                    (1..=units.len())
                        .find(|&length| {
                            squared_rest[length].sqrt().min(product_rest[length]) < bound
                        })
                        .unwrap_or(units.len())
                })
                .collect::<Vec<usize>>()
        })
        .concat()
    }

    /// The length of each member's unit vector from each of its tokens on
    /// (laid out as `ordered`), and what the filters read of each member.
    fn rests_and_bounds(
        &self,
        shares: &[std::ops::Range<usize>],
        prefix_lengths: &[usize],
        positions: usize,
    ) -> (Vec<f64>, Vec<MemberBounds>) {
        let mut ordered_rest = vec![0.0; self.ordered.len()];
        let share_starts: Vec<usize> = shares
            .iter()
            .map(|share| self.ordered_offsets[share.start])
            .collect();
        let pieces: Vec<_> = split_at_starts(&mut ordered_rest, &share_starts)
            .into_iter()
            .zip(shares.iter().cloned())
            .collect();
        let member_bounds = on_chunks(pieces, |(rests, share)| {
            let share_start = self.ordered_offsets[share.start];
            share
                .map(|member| {
                    let range = self.range(member);
                    let (begin, end) = (range.start, range.end);
                    let rest = &mut rests[begin - share_start..end - share_start];
                    fill_rest_lengths(&self.ordered_units[range], 1.0, rest);
                    let prefix_end = prefix_lengths[member];
                    let (prefix_end, prefix_end_rest) = if begin + prefix_end < end {
                        (self.ordered[begin + prefix_end], rest[prefix_end])
                    } else {
                        (positions as u32, 0.0)
                    };
                    let (largest, sum) = self.sizes[member];
                    MemberBounds {
                        largest,
                        sum,
                        prefix_end,
                        prefix_end_rest,
                    }
                })
                .collect::<Vec<MemberBounds>>()
        })
        .concat();
        (ordered_rest, member_bounds)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Random;
    use super::*;

    #[test]
    fn rounded_up_never_rounds_down() {
        let mut random = Random(3);
        let mut values = vec![0.0, 1.0, 0.5, 1e-30, 0.1, 1.0 / 3.0, f64::from(0.7f32)];
        values.extend((0..10_000).map(|_| random.below(1 << 30) as f64 / (1u64 << 30) as f64));
        for value in values {
            let up = rounded_up(value);
            assert!(f64::from(up) >= value, "{value} rounded to {up}");
            // And by at most one step of f32.
            assert!(
                f64::from(up.next_down()) < value || value == 0.0,
                "{value}: {up}"
            );
        }
    }
}
