//! The generated domains. Each sample is a pure function of a 64-bit key, and each domain has
//! more than 2^40 distinct samples, so no one can enumerate its held-out split and train on it.
//! Samples stay short (at most [`MAX_SAMPLE_BYTES`]) so a tiny byte-level model can learn them.

use std::ops::RangeInclusive;

use crate::rng::SplitMix64;

/// The longest sample any generated domain produces.
pub const MAX_SAMPLE_BYTES: usize = 40;

/// `arithmetic`: both operands are below this.
const OPERAND_LIMIT: u64 = 10_000_000;
/// `arithmetic`: the operations.
const OPERATIONS: [char; 2] = ['+', '-'];
/// `sorting`: letters come from the first this many of the alphabet.
const SORT_ALPHABET: u8 = 16;
/// `sorting`: how many letters are sorted.
const SORT_LETTERS: RangeInclusive<u64> = 10..=12;
/// `brackets`: how many bracket pairs a sample has.
const BRACKET_PAIRS: RangeInclusive<u64> = 14..=15;
/// `brackets`: the kinds of bracket, as (open, close).
const BRACKETS: [(char, char); 3] = [('(', ')'), ('[', ']'), ('{', '}')];

/// `1234567+89=1234656;` or `12-345=-333;`: an addition or subtraction.
pub fn arithmetic(r: &mut SplitMix64) -> String {
    let a = r.below(OPERAND_LIMIT) as i64;
    let b = r.below(OPERAND_LIMIT) as i64;
    let op = OPERATIONS[r.below(OPERATIONS.len() as u64) as usize];
    let result = if op == '+' { a + b } else { a - b };
    format!("{a}{op}{b}={result};")
}

/// `sort:pdbkaj…>abdjk…;`: letters, then the same letters sorted.
pub fn sorting(r: &mut SplitMix64) -> String {
    let n = r.below(SORT_LETTERS.end() - SORT_LETTERS.start() + 1) + SORT_LETTERS.start();
    let mut letters: Vec<u8> = (0..n)
        .map(|_| b'a' + r.below(u64::from(SORT_ALPHABET)) as u8)
        .collect();
    let shown = String::from_utf8(letters.clone()).expect("ascii");
    letters.sort_unstable();
    let sorted = String::from_utf8(letters).expect("ascii");
    format!("sort:{shown}>{sorted};")
}

/// `([]{(…)})!`: a balanced string of bracket pairs, then `!`. Every balanced string of that
/// many pairs can come out: each step opens or closes at random where both are allowed.
pub fn brackets(r: &mut SplitMix64) -> String {
    let pairs = r.below(BRACKET_PAIRS.end() - BRACKET_PAIRS.start() + 1) + BRACKET_PAIRS.start();
    let (mut out, mut open) = (String::new(), Vec::new());
    let mut to_open = pairs;
    while to_open > 0 || !open.is_empty() {
        let close = to_open == 0 || (!open.is_empty() && r.below(2) == 0);
        if close {
            out.push(open.pop().expect("an open bracket"));
        } else {
            let (o, c) = BRACKETS[r.below(BRACKETS.len() as u64) as usize];
            out.push(o);
            open.push(c);
            to_open -= 1;
        }
    }
    out.push('!');
    out
}

/// log2 of the number of distinct `arithmetic` samples: a sample's text names its operands and
/// operation, so each choice is a different sample.
pub fn arithmetic_bits() -> f64 {
    (OPERATIONS.len() as f64 * (OPERAND_LIMIT as f64).powi(2)).log2()
}

/// log2 of the number of distinct `sorting` samples: every string of each length.
pub fn sorting_bits() -> f64 {
    let count: f64 = SORT_LETTERS
        .map(|n| f64::from(SORT_ALPHABET).powi(n as i32))
        .sum();
    count.log2()
}

/// log2 of the number of distinct `brackets` samples: for `m` pairs, the Catalan number of
/// shapes times the kinds of each of the `m` pairs.
pub fn brackets_bits() -> f64 {
    let kinds = BRACKETS.len() as f64;
    let count: f64 = BRACKET_PAIRS
        .map(|m| catalan(m) * kinds.powi(m as i32))
        .sum();
    count.log2()
}

/// The `m`-th Catalan number (balanced strings of `m` pairs of one kind), as a float.
fn catalan(m: u64) -> f64 {
    // C(0) = 1, C(n + 1) = C(n) · 2(2n + 1) / (n + 2).
    (0..m).fold(1.0, |c, n| c * (2 * (2 * n + 1)) as f64 / (n + 2) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    type Generator = fn(&mut SplitMix64) -> String;
    type SpaceBits = fn() -> f64;
    const ALL: [(&str, Generator, SpaceBits); 3] = [
        ("arithmetic", arithmetic, arithmetic_bits),
        ("sorting", sorting, sorting_bits),
        ("brackets", brackets, brackets_bits),
    ];

    fn samples(g: Generator, n: u64) -> impl Iterator<Item = String> {
        (0..n).map(move |k| g(&mut SplitMix64::new(crate::rng::mix(&[k]))))
    }

    #[test]
    fn catalan_numbers_are_right() {
        let c: Vec<f64> = (0..6).map(catalan).collect();
        assert_eq!(c, [1.0, 1.0, 2.0, 5.0, 14.0, 42.0]);
        assert_eq!(catalan(15), 9_694_845.0);
    }

    #[test]
    fn every_generated_domain_has_at_least_2_pow_40_samples() {
        for (name, _, bits) in ALL {
            assert!(bits() >= 40.0, "{name}: {} bits", bits());
        }
        assert!((arithmetic_bits() - (2e14f64).log2()).abs() < 1e-9);
        assert!((sorting_bits() - (40.0 + 273f64.log2())).abs() < 1e-9);
    }

    #[test]
    fn a_hundred_thousand_samples_are_nearly_all_distinct() {
        for (name, g, _) in ALL {
            let distinct: HashSet<String> = samples(g, 100_000).collect();
            assert!(distinct.len() >= 99_990, "{name}: {}", distinct.len());
        }
    }

    #[test]
    fn samples_are_short_enough_for_a_tiny_model() {
        for (name, g, _) in ALL {
            let longest = samples(g, 10_000).map(|s| s.len()).max().unwrap();
            assert!(longest <= MAX_SAMPLE_BYTES, "{name}: {longest} bytes");
        }
    }

    #[test]
    fn arithmetic_is_correct_for_both_operations() {
        let mut ops = HashSet::new();
        for s in samples(arithmetic, 200) {
            let (lhs, rhs) = s.trim_end_matches(';').split_once('=').unwrap();
            let at = lhs.find(['+', '-']).unwrap();
            let a = lhs[..at].parse::<i64>().unwrap();
            let b = lhs[at + 1..].parse::<i64>().unwrap();
            let op = &lhs[at..=at];
            let want = if op == "+" { a + b } else { a - b };
            assert_eq!(rhs.parse::<i64>().unwrap(), want, "{s}");
            assert!(a < OPERAND_LIMIT as i64 && b < OPERAND_LIMIT as i64);
            ops.insert(op.to_string());
        }
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn sorting_shows_the_letters_then_sorts_them() {
        for s in samples(sorting, 200) {
            let body = s.strip_prefix("sort:").unwrap().strip_suffix(';').unwrap();
            let (shown, sorted) = body.split_once('>').unwrap();
            let mut want: Vec<u8> = shown.bytes().collect();
            want.sort_unstable();
            assert_eq!(sorted.as_bytes(), want.as_slice(), "{s}");
            assert!(SORT_LETTERS.contains(&(shown.len() as u64)));
            assert!(
                shown
                    .bytes()
                    .all(|b| (b'a'..b'a' + SORT_ALPHABET).contains(&b))
            );
        }
    }

    #[test]
    fn brackets_are_balanced_with_the_promised_pairs() {
        for s in samples(brackets, 200) {
            let mut open = vec![];
            for c in s.strip_suffix('!').unwrap().chars() {
                match BRACKETS.iter().find(|(o, _)| *o == c) {
                    Some((_, close)) => open.push(*close),
                    None => assert_eq!(open.pop(), Some(c), "{s}"),
                }
            }
            assert!(open.is_empty(), "{s}");
            assert!(BRACKET_PAIRS.contains(&((s.len() as u64 - 1) / 2)), "{s}");
        }
    }
}
