//! Domains of training data (generated tasks and text corpora) and batching into byte tokens.
//!
//! A sample is a pure function of `(domain, seed, index)`. Whether a sample is held out is a
//! function of its *content* hash, so the same text can never be both a training and a held-out
//! sample, whatever index produced it.

mod corpus;

pub use corpus::{CHUNK_BYTES, CorpusError, MAX_FILE_BYTES, TextCorpus};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::rng::{SplitMix64, mix};
use crate::tensors::blake2b_256;

/// A domain: generated from a seed, or text read from files. In TOML a generated domain is its
/// name (`"arithmetic"`), a corpus is a table naming a file or directory (`{ text = "docs/" }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// `17+25=42;` additions of small numbers.
    Arithmetic,
    /// `sort:dbca>abcd;` sorting letters.
    Sorting,
    /// `([]{})` balanced bracket strings, `!` closing each.
    Brackets,
    /// Chunks of the text of a file or of every file under a directory.
    Text(TextCorpus),
}

impl Domain {
    pub fn name(&self) -> String {
        match self {
            Domain::Arithmetic => "arithmetic".into(),
            Domain::Sorting => "sorting".into(),
            Domain::Brackets => "brackets".into(),
            Domain::Text(c) => format!("text:{}", c.path().display()),
        }
    }

    fn tag(&self) -> u64 {
        match self {
            Domain::Arithmetic => 1,
            Domain::Sorting => 2,
            Domain::Brackets => 3,
            Domain::Text(c) => c.tag(),
        }
    }

    /// Reads a text corpus (a no-op for generated domains); relative paths resolve against
    /// `base`.
    pub fn load(&self, base: &std::path::Path, heldout_every: u64) -> Result<Self, CorpusError> {
        match self {
            Domain::Text(c) => Ok(Domain::Text(c.load(base, heldout_every)?)),
            other => Ok(other.clone()),
        }
    }

    /// A text corpus named but not read yet.
    pub fn unloaded_corpus(&self) -> Option<&std::path::Path> {
        match self {
            Domain::Text(c) if !c.is_loaded() => Some(c.path()),
            _ => None,
        }
    }

    /// The sample at `index` for this seed, as text (lossy for non-UTF-8 corpus bytes).
    pub fn sample(&self, seed: u64, index: u64) -> String {
        String::from_utf8_lossy(&self.sample_bytes(seed, index)).into_owned()
    }

    /// The sample at `index` for this seed.
    pub fn sample_bytes(&self, seed: u64, index: u64) -> Cow<'_, [u8]> {
        let key = mix(&[seed, self.tag(), index]);
        if let Domain::Text(c) = self {
            return Cow::Borrowed(c.chunk(key));
        }
        Cow::Owned(self.generate(key).into_bytes())
    }

    fn generate(&self, key: u64) -> String {
        let mut r = SplitMix64::new(key);
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
            Domain::Text(_) => unreachable!("text samples are chunks, not generated"),
        }
    }
}

/// Which split a sample belongs to: one in `heldout_every` samples, by content hash.
pub fn is_heldout(sample: &[u8], heldout_every: u64) -> bool {
    crate::tensors::hash_u64(&blake2b_256(sample)).is_multiple_of(heldout_every.max(2))
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

    /// The next sample of this split, as text.
    pub fn next_sample(&mut self) -> String {
        String::from_utf8_lossy(&self.next_sample_bytes()).into_owned()
    }

    /// The next sample of this split. (Every domain has samples in both splits: generated ones
    /// by construction, corpora are checked when loaded.)
    pub fn next_sample_bytes(&mut self) -> Vec<u8> {
        loop {
            let s = self.domain.sample_bytes(self.seed, self.cursor);
            self.cursor += 1;
            let held = is_heldout(&s, self.heldout_every);
            if held == (self.split == Split::Heldout) {
                return s.into_owned();
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
                row.extend(self.next_sample_bytes().into_iter().map(u32::from));
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
    domain: &Domain,
    data_seed: u64,
    round_seed: u64,
    heldout_every: u64,
    count: usize,
    rows: usize,
    seq_len: usize,
) -> Vec<TokenBatch> {
    let start = mix(&[round_seed, domain.tag()]) % (1 << 40);
    let mut s = Sampler::new(
        domain.clone(),
        data_seed,
        Split::Heldout,
        heldout_every,
        start,
    );
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
            let mut train = Sampler::new(d.clone(), 11, Split::Train, 8, 0);
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
        let a = eval_batches(&Domain::Arithmetic, 1, 100, 8, 2, 2, 8);
        let b = eval_batches(&Domain::Arithmetic, 1, 100, 8, 2, 2, 8);
        let c = eval_batches(&Domain::Arithmetic, 1, 101, 8, 2, 2, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// A temporary directory with a three-file corpus under `corpus/` (and a hidden file).
    fn corpus_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("corpus");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        for (name, words) in [
            ("a.txt", "alpha beta"),
            ("b.md", "gamma delta"),
            ("sub/c.rs", "fn x() {}"),
        ] {
            let text: String = (0..400).map(|i| format!("{words} {i}\n")).collect();
            std::fs::write(root.join(name), text).unwrap();
        }
        std::fs::write(root.join(".hidden"), "secret").unwrap();
        dir
    }

    fn corpus(dir: &tempfile::TempDir) -> Domain {
        Domain::Text(TextCorpus::unloaded("corpus"))
            .load(dir.path(), 8)
            .unwrap()
    }

    #[test]
    fn a_text_corpus_loads_from_a_directory_deterministically() {
        let dir = corpus_dir();
        let d = Domain::Text(TextCorpus::unloaded("corpus"));
        assert_eq!(d.unloaded_corpus(), Some(std::path::Path::new("corpus")));
        let (a, b) = (corpus(&dir), corpus(&dir));
        assert_eq!(a.unloaded_corpus(), None);
        let Domain::Text(c) = &a else { unreachable!() };
        let (files, bytes, chunks) = c.size().unwrap();
        assert_eq!(files, 3, "hidden files are skipped");
        // Each file's last chunk is short: chunks never span files.
        assert!(chunks > bytes / CHUNK_BYTES && chunks <= bytes / CHUNK_BYTES + 3);
        for i in 0..20 {
            assert_eq!(a.sample_bytes(3, i), b.sample_bytes(3, i));
            assert!(a.sample_bytes(3, i).len() <= CHUNK_BYTES);
        }
        let all: String = (0..50).map(|i| a.sample(3, i)).collect();
        for w in ["alpha beta", "gamma delta", "fn x() {}"] {
            assert!(all.contains(w), "{w} never sampled");
        }
        assert_ne!(a.tag(), Domain::Arithmetic.tag());
        assert_eq!(a.name(), "text:corpus");
    }

    #[test]
    fn no_heldout_corpus_chunk_is_ever_trained_on() {
        let dir = corpus_dir();
        let d = corpus(&dir);
        let mut train = Sampler::new(d.clone(), 1, Split::Train, 8, 0);
        let train_set: HashSet<Vec<u8>> = (0..3000).map(|_| train.next_sample_bytes()).collect();
        let mut held = Sampler::new(d.clone(), 1, Split::Heldout, 8, 0);
        let held_set: HashSet<Vec<u8>> = (0..200).map(|_| held.next_sample_bytes()).collect();
        assert!(held_set.len() > 1);
        assert!(train_set.is_disjoint(&held_set));
        // No training chunk occurs inside a held-out evaluation row.
        for b in eval_batches(&d, 1, 7, 8, 3, 2, 300) {
            for row in b.tokens.chunks(301) {
                let row: Vec<u8> = row.iter().map(|t| *t as u8).collect();
                for t in train_set.iter().filter(|t| t.len() >= 64) {
                    assert!(!row.windows(t.len()).any(|w| w == t.as_slice()));
                }
            }
        }
    }

    #[test]
    fn bad_corpora_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let load = |p: &str| TextCorpus::unloaded(p).load(dir.path(), 8);
        assert!(matches!(load("missing"), Err(CorpusError::Io { .. })));
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::write(dir.path().join("empty/zero.txt"), "").unwrap();
        assert!(matches!(load("empty"), Err(CorpusError::Empty(_))));
        std::fs::write(dir.path().join("tiny.txt"), "just one chunk").unwrap();
        assert!(matches!(
            load("tiny.txt"),
            Err(CorpusError::TooSmall { chunks: 1, .. })
        ));
    }

    #[test]
    fn domains_parse_from_toml_names_and_tables() {
        #[derive(Deserialize)]
        struct C {
            domains: Vec<Domain>,
        }
        let c: C = toml::from_str("domains = [\"sorting\", { text = \"docs/\" }]").unwrap();
        assert_eq!(c.domains[0], Domain::Sorting);
        assert_eq!(
            c.domains[1].unloaded_corpus(),
            Some(std::path::Path::new("docs/"))
        );
        assert!(toml::from_str::<C>("domains = [\"poetry\"]").is_err());
    }
}
