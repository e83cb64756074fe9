//! Built-in corpora generated from a seed, and batching into byte tokens.
//!
//! A sample is a pure function of `(domain, seed, index)`. Whether a sample is held out is a
//! function of its *content* hash, so the same text can never be both a training and a held-out
//! sample, whatever index produced it.

use serde::{Deserialize, Serialize};

use crate::rng::{SplitMix64, mix};
use crate::tensors::blake2b_256;

/// A generated domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// `17+25=42;` additions of small numbers.
    Arithmetic,
    /// `sort:dbca>abcd;` sorting letters.
    Sorting,
    /// `([]{})` balanced bracket strings, `!` closing each.
    Brackets,
}

impl Domain {
    pub fn name(self) -> &'static str {
        match self {
            Domain::Arithmetic => "arithmetic",
            Domain::Sorting => "sorting",
            Domain::Brackets => "brackets",
        }
    }

    fn tag(self) -> u64 {
        match self {
            Domain::Arithmetic => 1,
            Domain::Sorting => 2,
            Domain::Brackets => 3,
        }
    }

    /// The sample at `index` for this seed.
    pub fn sample(self, seed: u64, index: u64) -> String {
        let mut r = SplitMix64::new(mix(&[seed, self.tag(), index]));
        match self {
            Domain::Arithmetic => {
                let a = r.below(100);
                let b = r.below(100);
                format!("{a}+{b}={};", a + b)
            }
            Domain::Sorting => {
                let n = 3 + r.below(5) as usize;
                let mut letters: Vec<u8> = (0..n).map(|_| b'a' + r.below(8) as u8).collect();
                let shown = String::from_utf8(letters.clone()).expect("ascii");
                letters.sort_unstable();
                let sorted = String::from_utf8(letters).expect("ascii");
                format!("sort:{shown}>{sorted};")
            }
            Domain::Brackets => {
                let mut out = String::new();
                let mut stack = vec![];
                let len = 4 + r.below(8);
                for _ in 0..len {
                    if !stack.is_empty() && r.below(2) == 0 {
                        let open: u8 = stack.pop().expect("non-empty");
                        out.push(match open {
                            b'(' => ')',
                            b'[' => ']',
                            _ => '}',
                        });
                    } else {
                        let open = [b'(', b'[', b'{'][r.below(3) as usize];
                        stack.push(open);
                        out.push(open as char);
                    }
                }
                while let Some(open) = stack.pop() {
                    out.push(match open {
                        b'(' => ')',
                        b'[' => ']',
                        _ => '}',
                    });
                }
                out.push('!');
                out
            }
        }
    }
}

/// Which split a sample belongs to: one in `heldout_every` samples, by content hash.
pub fn is_heldout(sample: &str, heldout_every: u64) -> bool {
    let h = blake2b_256(sample.as_bytes());
    let word = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
    word % heldout_every.max(2) == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Heldout,
}

/// A batch of byte tokens: `rows` sequences of `seq_len + 1` tokens (inputs and shifted targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    pub rows: usize,
    pub seq_len: usize,
    /// Row-major `rows × (seq_len + 1)`.
    pub tokens: Vec<u32>,
}

/// Deterministic stream of samples of one split, starting at an index cursor.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub domain: Domain,
    pub seed: u64,
    pub split: Split,
    pub heldout_every: u64,
    /// Next index to look at; the whole sampler state (persisted as the data cursor).
    pub cursor: u64,
}

impl Sampler {
    pub fn new(domain: Domain, seed: u64, split: Split, heldout_every: u64, cursor: u64) -> Self {
        Self {
            domain,
            seed,
            split,
            heldout_every,
            cursor,
        }
    }

    /// The next sample of this split.
    pub fn next_sample(&mut self) -> String {
        loop {
            let s = self.domain.sample(self.seed, self.cursor);
            self.cursor += 1;
            let held = is_heldout(&s, self.heldout_every);
            if held == (self.split == Split::Heldout) {
                return s;
            }
        }
    }

    /// A batch made by concatenating samples into each row until it is full.
    pub fn next_batch(&mut self, rows: usize, seq_len: usize) -> TokenBatch {
        let width = seq_len + 1;
        let mut tokens = Vec::with_capacity(rows * width);
        for _ in 0..rows {
            let mut row: Vec<u32> = Vec::with_capacity(width + 32);
            while row.len() < width {
                row.extend(self.next_sample().bytes().map(u32::from));
            }
            tokens.extend_from_slice(&row[..width]);
        }
        TokenBatch {
            rows,
            seq_len,
            tokens,
        }
    }
}

/// The held-out evaluation batches of a round: the seed (from a block hash) picks where in the
/// held-out stream they start, so miners cannot know them before their submission is bound.
pub fn eval_batches(
    domain: Domain,
    data_seed: u64,
    round_seed: u64,
    heldout_every: u64,
    count: usize,
    rows: usize,
    seq_len: usize,
) -> Vec<TokenBatch> {
    let start = mix(&[round_seed, domain.tag()]) % (1 << 40);
    let mut s = Sampler::new(domain, data_seed, Split::Heldout, heldout_every, start);
    (0..count).map(|_| s.next_batch(rows, seq_len)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn samples_are_deterministic_and_domain_specific() {
        for d in [Domain::Arithmetic, Domain::Sorting, Domain::Brackets] {
            assert_eq!(d.sample(3, 9), d.sample(3, 9));
        }
        assert!(Domain::Arithmetic.sample(1, 0).contains('='));
        assert!(Domain::Sorting.sample(1, 0).starts_with("sort:"));
        assert!(Domain::Brackets.sample(1, 0).ends_with('!'));
    }

    #[test]
    fn arithmetic_is_correct() {
        for i in 0..50 {
            let s = Domain::Arithmetic.sample(5, i);
            let (lhs, rhs) = s.trim_end_matches(';').split_once('=').unwrap();
            let (a, b) = lhs.split_once('+').unwrap();
            assert_eq!(
                a.parse::<u64>().unwrap() + b.parse::<u64>().unwrap(),
                rhs.parse::<u64>().unwrap()
            );
        }
    }

    #[test]
    fn brackets_are_balanced() {
        for i in 0..50 {
            let s = Domain::Brackets.sample(2, i);
            let mut depth = 0i32;
            for c in s.chars() {
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    _ => {}
                }
                assert!(depth >= 0);
            }
            assert_eq!(depth, 0);
        }
    }

    #[test]
    fn no_heldout_sample_is_ever_trained_on() {
        for d in [Domain::Arithmetic, Domain::Sorting, Domain::Brackets] {
            let mut train = Sampler::new(d, 11, Split::Train, 8, 0);
            let train_set: HashSet<String> = (0..4000).map(|_| train.next_sample()).collect();
            let mut held = Sampler::new(d, 11, Split::Heldout, 8, 0);
            for _ in 0..300 {
                let s = held.next_sample();
                assert!(!train_set.contains(&s), "{s} is in both splits");
            }
        }
    }

    #[test]
    fn batches_have_the_promised_shape() {
        let mut s = Sampler::new(Domain::Sorting, 1, Split::Train, 8, 0);
        let b = s.next_batch(4, 16);
        assert_eq!(b.tokens.len(), 4 * 17);
        assert!(b.tokens.iter().all(|t| *t < 256));
    }

    #[test]
    fn eval_batches_depend_on_round_seed() {
        let a = eval_batches(Domain::Arithmetic, 1, 100, 8, 2, 2, 8);
        let b = eval_batches(Domain::Arithmetic, 1, 100, 8, 2, 2, 8);
        let c = eval_batches(Domain::Arithmetic, 1, 101, 8, 2, 2, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
