//! A small, fully specified random number generator, so that the same seed gives
//! the same tables on every platform and with every dependency version.
//!
//! Each item (an org, a person, a month of a pool) draws from its own stream,
//! derived from (seed, stream name, index); the order in which items are generated
//! — or the thread that generates them — never changes what they get.

/// SplitMix64 stepping with xoshiro-style output mixing: fast and good enough
/// for synthetic data (not for cryptography).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a stream name.
fn stream_hash(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

impl Rng {
    /// The stream `stream` for item `index` under `seed`.
    pub fn new(seed: u64, stream: &str, index: u64) -> Rng {
        let state = mix(seed ^ mix(stream_hash(stream)) ^ mix(index.wrapping_add(GOLDEN)));
        Rng { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant here.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in [low, high] (inclusive).
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        low + self.below((high - low + 1) as u64) as i64
    }

    /// Uniform real in [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// One element, uniformly. `items` must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given non-negative weights (0 if all are zero).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return 0;
        }
        let mut target = self.unit() * total;
        for (index, weight) in weights.iter().enumerate() {
            if target < *weight {
                return index;
            }
            target -= weight;
        }
        weights.len() - 1
    }

    /// Round a non-negative real to an integer, up with probability equal to
    /// its fraction, so that expected totals are kept at small scales.
    pub fn round_stochastic(&mut self, value: f64) -> i64 {
        let floor = value.floor();
        floor as i64 + i64::from(self.chance(value - floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..5).map(|_| Rng::new(7, "x", 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut one = Rng::new(7, "x", 1);
        let mut two = Rng::new(7, "x", 2);
        let mut three = Rng::new(7, "y", 1);
        let mut four = Rng::new(8, "x", 1);
        let first = one.next_u64();
        assert_ne!(first, two.next_u64());
        assert_ne!(first, three.next_u64());
        assert_ne!(first, four.next_u64());
    }

    #[test]
    fn draws_stay_in_range_and_have_the_right_mean() {
        let mut rng = Rng::new(1, "test", 0);
        let mut sum = 0.0;
        for _ in 0..20_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            sum += u;
            let r = rng.range(3, 5);
            assert!((3..=5).contains(&r));
            assert!(rng.below(10) < 10);
        }
        assert!((sum / 20_000.0 - 0.5).abs() < 0.01);
        let mean_exp: f64 = (0..20_000).map(|_| rng.exponential(2.0)).sum::<f64>() / 20_000.0;
        assert!((mean_exp - 2.0).abs() < 0.1, "{mean_exp}");
        let counts = (0..10_000).fold([0usize; 3], |mut acc, _| {
            acc[rng.weighted(&[1.0, 0.0, 3.0])] += 1;
            acc
        });
        assert_eq!(counts[1], 0);
        assert!((counts[2] as f64 / 10_000.0 - 0.75).abs() < 0.03);
    }
}
