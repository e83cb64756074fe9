//! Domains of training data (generated tasks, byte text corpora, tokenized document corpora)
//! and batching into token rows. Generated domains and text corpora are bytes as tokens (tiny
//! presets); document corpora are tokenized with a Hugging Face tokenizer.
//!
//! A sample is a pure function of `(domain, seed, index)`. Whether a sample is held out is a
//! function of its *content* hash, so the same text can never be both a training and a held-out
//! sample, whatever index produced it. The content hash is public, so the held-out split must be
//! too large to enumerate: each generated domain has more than 2^40 samples
//! ([`Domain::space_bits`]), and a round's evaluation rows start at a point of the 64-bit index
//! space that only the round seed names.

mod corpus;
mod docs;
mod generated;
mod parquet_docs;

pub use corpus::{CHUNK_BYTES, CorpusError, MAX_FILE_BYTES, TextCorpus};
pub use docs::{DocCorpus, DocsError, DocsSpec, MAX_DOC_BYTES};
pub use generated::MAX_SAMPLE_BYTES;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::rng::{SplitMix64, mix};
use crate::tensors::blake2b_256;

/// A domain: generated from a seed, or text read from files. In TOML a generated domain is its
/// name (`"arithmetic"`), a byte corpus is a table naming a file or directory
/// (`{ text = "docs/" }`), a document corpus names its files and tokenizer
/// (`{ docs = { path = "c4/", tokenizer = "tokenizer.json", text_column = "text" } }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// `1234567+89=1234656;`, `12-345=-333;`: additions and subtractions of numbers below 10^7.
    Arithmetic,
    /// `sort:pdbkajcfee>abcdeefjkp;`: 10 to 12 letters of `a..=p`, sorted.
    Sorting,
    /// `([]{()})!`: balanced strings of 14 or 15 bracket pairs of three kinds, `!` closing each.
    Brackets,
    /// Chunks of the text of a file or of every file under a directory.
    Text(TextCorpus),
    /// Documents of JSON-lines or Parquet files, tokenized with a Hugging Face tokenizer.
    Docs(DocCorpus),
}

impl Domain {
    pub fn name(&self) -> String {
        match self {
            Domain::Arithmetic => "arithmetic".into(),
            Domain::Sorting => "sorting".into(),
            Domain::Brackets => "brackets".into(),
            Domain::Text(c) => format!("text:{}", c.path().display()),
            Domain::Docs(c) => format!("docs:{}", c.spec().path.display()),
        }
    }

    fn tag(&self) -> u64 {
        match self {
            Domain::Arithmetic => 1,
            Domain::Sorting => 2,
            Domain::Brackets => 3,
            Domain::Text(c) => c.tag(),
            Domain::Docs(c) => c.tag(),
        }
    }

    /// Reads a text corpus (a no-op for generated domains); relative paths resolve against
    /// `base`.
    pub fn load(&self, base: &std::path::Path, heldout_every: u64) -> Result<Self, CorpusError> {
        match self {
            Domain::Text(c) => Ok(Domain::Text(c.load(base, heldout_every)?)),
            Domain::Docs(c) => Ok(Domain::Docs(c.load(base, heldout_every)?)),
            other => Ok(other.clone()),
        }
    }

    /// A text corpus named but not read yet.
    pub fn unloaded_corpus(&self) -> Option<&std::path::Path> {
        match self {
            Domain::Text(c) if !c.is_loaded() => Some(c.path()),
            Domain::Docs(c) if !c.is_loaded() => Some(&c.spec().path),
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
        match self {
            Domain::Text(c) => return Cow::Borrowed(c.chunk(key)),
            Domain::Docs(c) => return Cow::Borrowed(c.doc(key).as_bytes()),
            _ => {}
        }
        Cow::Owned(self.generate(key).into_bytes())
    }

    fn generate(&self, key: u64) -> String {
        let mut r = SplitMix64::new(key);
        match self {
            Domain::Arithmetic => generated::arithmetic(&mut r),
            Domain::Sorting => generated::sorting(&mut r),
            Domain::Brackets => generated::brackets(&mut r),
            Domain::Text(_) | Domain::Docs(_) => {
                unreachable!("corpus samples are read, not generated")
            }
        }
    }

    /// log2 of the number of distinct samples a generated domain has (at least 40, so its
    /// held-out split cannot be enumerated); `None` for a text corpus, whose text is public.
    pub fn space_bits(&self) -> Option<f64> {
        match self {
            Domain::Arithmetic => Some(generated::arithmetic_bits()),
            Domain::Sorting => Some(generated::sorting_bits()),
            Domain::Brackets => Some(generated::brackets_bits()),
            Domain::Text(_) | Domain::Docs(_) => None,
        }
    }

    /// Token ids this domain's rows use are below this: 256 for bytes, the tokenizer's
    /// vocabulary for a loaded document corpus (`None` before it is loaded).
    pub fn vocab(&self) -> Option<usize> {
        match self {
            Domain::Docs(c) => c.vocab(),
            _ => Some(256),
        }
    }

    /// The tokens of a sample's content: its bytes, or for a document corpus its document
    /// tokenized.
    pub fn tokens(&self, content: &[u8]) -> Vec<u32> {
        match self {
            Domain::Docs(c) => c.encode(&String::from_utf8_lossy(content)),
            _ => content.iter().map(|b| u32::from(*b)).collect(),
        }
    }
}

/// Mixed into the seed that picks where a held-out text sample starts.
const OFFSET_TAG: u64 = 0x6f66_6673_6574;

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
    /// by construction, corpora are checked when loaded.) The cursor wraps at `u64::MAX`.
    pub fn next_sample_bytes(&mut self) -> Vec<u8> {
        loop {
            let index = self.cursor;
            self.cursor = self.cursor.wrapping_add(1);
            let s = self.domain.sample_bytes(self.seed, index);
            let held = is_heldout(&s, self.heldout_every);
            if held == (self.split == Split::Heldout) {
                return self.piece(&s, index).to_vec();
            }
        }
    }

    /// What the sample at `index` contributes: all of it, except that a held-out text chunk
    /// starts at an offset the index picks, so evaluation rows start anywhere in the held-out
    /// text rather than at the chunks' first bytes only.
    fn piece<'a>(&self, sample: &'a [u8], index: u64) -> &'a [u8] {
        match (&self.domain, self.split) {
            (Domain::Text(_), Split::Heldout) if !sample.is_empty() => {
                let offset = mix(&[self.seed, index, OFFSET_TAG]) % sample.len() as u64;
                &sample[offset as usize..]
            }
            _ => sample,
        }
    }

    /// The next sample of this split as tokens ([`Domain::tokens`]).
    pub fn next_sample_tokens(&mut self) -> Vec<u32> {
        let content = self.next_sample_bytes();
        self.domain.tokens(&content)
    }

    /// A batch made by packing samples into each row until it is full (`seq_len + 1` tokens;
    /// a sample's tokens beyond the row are dropped).
    pub fn next_batch(&mut self, rows: usize, seq_len: usize) -> TokenBatch {
        let width = seq_len + 1;
        let mut tokens = Vec::with_capacity(rows * width);
        for _ in 0..rows {
            let mut row: Vec<u32> = Vec::with_capacity(width + 32);
            while row.len() < width {
                row.extend(self.next_sample_tokens());
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

/// Where in the index space a round's held-out stream starts: anywhere among the 2^64 indices.
fn eval_start(domain: &Domain, round_seed: u64) -> u64 {
    mix(&[round_seed, domain.tag()])
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
    let start = eval_start(domain, round_seed);
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
    fn generated_domains_are_too_large_to_enumerate_and_corpora_have_no_space_size() {
        for d in [Domain::Arithmetic, Domain::Sorting, Domain::Brackets] {
            let bits = d.space_bits().unwrap();
            assert!(bits >= 40.0, "{}: {bits} bits", d.name());
        }
        let corpus = Domain::Text(TextCorpus::unloaded("docs"));
        assert_eq!(corpus.space_bits(), None);
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

    #[test]
    fn eval_starts_anywhere_in_the_64_bit_index_space() {
        // Below 2^40 for all of 16 seeds would happen with probability 2^-384.
        let starts: Vec<u64> = (0..16).map(|s| eval_start(&Domain::Sorting, s)).collect();
        assert!(starts.iter().any(|s| *s >= 1 << 40), "{starts:?}");
        // A stream that starts at the end of the index space wraps instead of overflowing.
        let mut s = Sampler::new(Domain::Arithmetic, 1, Split::Heldout, 8, u64::MAX - 1);
        s.next_batch(4, 32);
        assert!(s.cursor < 1 << 20, "wrapped to {}", s.cursor);
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
    fn heldout_text_rows_start_at_offsets_inside_heldout_chunks() {
        let dir = corpus_dir();
        let d = corpus(&dir);
        let held: HashSet<Vec<u8>> = (0..2000)
            .map(|i| d.sample_bytes(1, i).into_owned())
            .filter(|c| is_heldout(c, 8))
            .collect();
        let mut starts = HashSet::new();
        for seed in 0..8 {
            for b in eval_batches(&d, 1, seed, 8, 2, 8, 16) {
                for row in b.tokens.chunks(17) {
                    let row: Vec<u8> = row.iter().map(|t| *t as u8).collect();
                    starts.insert(row[..8].to_vec());
                }
            }
        }
        // Rows starting at chunk boundaries would have one start per held-out chunk.
        assert!(
            starts.len() > 4 * held.len(),
            "{} {}",
            starts.len(),
            held.len()
        );
        let inside = |s: &Vec<u8>| held.iter().any(|c| c.windows(8).any(|w| w == s.as_slice()));
        let inside = starts.iter().filter(|s| inside(s)).count();
        // A row may start in the last few bytes of a chunk and continue into the next.
        assert!(
            inside * 10 >= starts.len() * 8,
            "{inside} of {}",
            starts.len()
        );
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
